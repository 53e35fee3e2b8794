//! Whole-field operations: MS003 whole-mark-write and MS004 unmasked-connmark (a write that
//! replaces all 32 bits), MS005 whole-mark-match (an exact 32-bit match).

use crate::model::{hex, CopySource, Field, MarkOp, WriteOp, ALL_BITS};

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{field_name, Ctx, EvidenceItem, Finding, EVIDENCE_PER_OWNER};
use crate::analysis::usage::{fi, Site, Use};

/// MS003 whole-mark-write and MS004 unmasked-connmark.
pub(super) fn whole_writes(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, owner) in cx.usage.owners.iter().enumerate() {
        for field in Field::BOTH {
            let whole: Vec<&Use> = cx
                .usage
                .of(i)
                .filter(|u| {
                    u.is_whole_write() && matches!(u.op, MarkOp::Write(w) if w.field == field)
                })
                .collect();
            if whole.is_empty() {
                continue;
            }
            let others: Vec<usize> = (0..cx.usage.owners.len())
                .filter(|&o| o != i && cx.usage.owners[o].used(field) != 0)
                .collect();
            // Split connmark copies from the rest: they have their own code and fix.
            let (copies, plain): (Vec<&Use>, Vec<&Use>) = whole
                .into_iter()
                .partition(|u| matches!(u.op, MarkOp::Write(w) if w.is_connmark_copy()));
            for (group, is_copy) in [(copies, true), (plain, false)] {
                if group.is_empty() {
                    continue;
                }
                let data_dependent = group.iter().all(|u| {
                    matches!(u.op, MarkOp::Write(w) if matches!(w.op, WriteOp::DataDependent { .. } | WriteOp::Copy { src: CopySource::Socket, .. }))
                });
                let severity = match (others.is_empty(), is_copy, data_dependent) {
                    (false, _, false) => Severity::Error,
                    (false, _, true) => Severity::Warning,
                    (true, true, _) => Severity::Warning,
                    (true, false, _) => Severity::Info,
                };
                let other_bits = others
                    .iter()
                    .fold(0, |a, &o| a | cx.usage.owners[o].used(field));
                let mut evidence: Vec<EvidenceItem> = Vec::new();
                let mut omitted = 0;
                for u in group.iter() {
                    if evidence.len() < EVIDENCE_PER_OWNER {
                        let e = cx.evidence_of(u);
                        if !evidence.contains(&e) {
                            evidence.push(e);
                        }
                    } else {
                        omitted += 1;
                    }
                }
                for &o in &others {
                    cx.evidence(o, field, ALL_BITS, |_| true, &mut evidence, &mut omitted);
                }
                let mut owners = vec![owner.id.clone()];
                owners.extend(others.iter().map(|&o| cx.owner_id(o).to_string()));
                let id = &owner.id;
                let (code, title, fix) = if is_copy {
                    let (dir, flag) = if field == Field::Mark {
                        ("restore", "--restore-mark")
                    } else {
                        ("save", "--save-mark")
                    };
                    (
                        Code::UnmaskedConnmark,
                        format!("{id} copies all 32 bits of the {} with an unmasked connmark {dir}", if field == Field::Mark { "connmark into the packet mark" } else { "packet mark into the connmark" }),
                        format!(
                            "Give the copy a mask covering only {id}'s bits: `-j CONNMARK {flag} --mask {mask}` (nft: `{nft}`).{today}",
                            mask = if owner.claimed[fi(field)] != 0 { hex(owner.claimed[fi(field)]) } else { "<your bits>".to_string() },
                            nft = if field == Field::Mark { "meta mark set meta mark & ~M | ct mark & M" } else { "ct mark set ct mark & ~M | meta mark & M" },
                            today = if others.is_empty() {
                                String::new()
                            } else {
                                format!(" Today it overwrites bits {} used by {}.", hex(other_bits), others.iter().map(|&o| cx.owner_id(o)).collect::<Vec<_>>().join(", "))
                            }
                        ),
                    )
                } else {
                    (
                        Code::WholeMarkWrite,
                        if data_dependent {
                            format!(
                                "{id} may replace the whole {} (data-dependent write)",
                                field_name(field)
                            )
                        } else {
                            format!("{id} replaces all 32 bits of the {}", field_name(field))
                        },
                        if others.is_empty() {
                            "Nothing else uses this field today, but any software added later loses its bits here: write with a mask (`--set-xmark V/M`, nft `meta mark set meta mark & ~M | V`).".to_string()
                        } else if group.iter().all(|u| value_write_site(cx, u)) {
                            // A device or socket mark cannot be masked: only its value can move.
                            format!(
                                "The whole mark is set to a configured value here (WireGuard `FwMark` / `wg set IF fwmark`, a socket's SO_MARK, a tunnel's `fwmark`): choose a value without bits {} so that {} do not see their bits on these packets.",
                                hex(other_bits),
                                others.iter().map(|&o| cx.owner_id(o)).collect::<Vec<_>>().join(", ")
                            )
                        } else {
                            format!(
                                "Write only {id}'s bits with a mask, e.g. `-j MARK --set-xmark V/M` with M inside {}, so bits {} of {} survive.",
                                hex(!other_bits),
                                hex(other_bits),
                                others.iter().map(|&o| cx.owner_id(o)).collect::<Vec<_>>().join(", ")
                            )
                        },
                    )
                };
                out.push(Finding {
                    code,
                    severity,
                    owners,
                    field,
                    bits: ALL_BITS,
                    title,
                    evidence,
                    evidence_omitted: omitted,
                    fix,
                    incidents: Vec::new(),
                    path: None,
                });
            }
        }
    }
}

/// MS005 whole-mark-match.
pub(super) fn whole_matches(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, owner) in cx.usage.owners.iter().enumerate() {
        for field in Field::BOTH {
            let matches: Vec<&Use> = cx
                .usage
                .of(i)
                .filter(|u| matches!(u.op, MarkOp::Read(r) if r.field == field && r.is_whole_equality()))
                .collect();
            if matches.is_empty() {
                continue;
            }
            let writers: Vec<usize> = (0..cx.usage.owners.len())
                .filter(|&o| o != i && cx.usage.owners[o].writes[fi(field)] != 0)
                .collect();
            if writers.is_empty() {
                continue;
            }
            let bits = writers
                .iter()
                .fold(0, |a, &o| a | cx.usage.owners[o].writes[fi(field)]);
            let mut evidence = Vec::new();
            let mut omitted = 0;
            for u in &matches {
                if evidence.len() < EVIDENCE_PER_OWNER {
                    evidence.push(cx.evidence_of(u));
                } else {
                    omitted += 1;
                }
            }
            for &o in &writers {
                cx.evidence(
                    o,
                    field,
                    bits,
                    |u| u.writes[fi(field)] != 0,
                    &mut evidence,
                    &mut omitted,
                );
            }
            let mut owners = vec![owner.id.clone()];
            owners.extend(writers.iter().map(|&o| cx.owner_id(o).to_string()));
            let id = &owner.id;
            let values: Vec<String> = matches
                .iter()
                .filter_map(|u| match u.op {
                    MarkOp::Read(r) => match r.test {
                        crate::model::ReadTest::Equals { value, .. } => Some(hex(value)),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            let base = if owner.claimed[fi(field)] != 0 {
                owner.claimed[fi(field)]
            } else {
                ALL_BITS
            };
            let mask_hint = hex(base & !bits);
            out.push(Finding {
                code: Code::WholeMarkMatch,
                severity: Severity::Error,
                owners,
                field,
                bits,
                title: format!(
                    "{id} matches the whole {} exactly while {} write{} bits {}: the match silently stops matching",
                    field_name(field),
                    writers.iter().map(|&o| cx.owner_id(o)).collect::<Vec<_>>().join(", "),
                    if writers.len() == 1 { "s" } else { "" },
                    hex(bits)
                ),
                evidence,
                evidence_omitted: omitted,
                fix: format!(
                    "Match with a mask: `-m {} --mark {}/{mask_hint}` (nft: `{} and {mask_hint} == …`) so other software's bits do not change the result.",
                    if field == Field::Mark { "mark" } else { "connmark" },
                    values.first().cloned().unwrap_or_else(|| "V".into()),
                    if field == Field::Mark { "meta mark" } else { "ct mark" },
                ),
                incidents: writers
                    .iter()
                    .flat_map(|&o| cx.incidents(&[id.as_str(), cx.owner_id(o)], field, bits))
                    .collect(),
                path: None,
            });
        }
    }
}

/// Whether a use is a whole-mark write of a configured value outside netfilter (WireGuard
/// device, socket, tunnel device), where the fix is another value rather than a mask.
fn value_write_site(cx: &Ctx<'_>, u: &Use) -> bool {
    use crate::touchpoint::Subsystem;
    match u.site {
        Site::Touchpoint(i) => matches!(
            cx.node.touchpoints[i].subsystem,
            Subsystem::Wireguard | Subsystem::Socket | Subsystem::Device
        ),
        Site::Rule(_) => false,
    }
}
