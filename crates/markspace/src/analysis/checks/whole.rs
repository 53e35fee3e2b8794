//! Whole-field operations: MS003 whole-mark-write and MS004 unmasked-connmark (a write that
//! replaces all 32 bits), MS005 whole-mark-match (an exact 32-bit match).

use crate::model::{hex, CopySource, Field, MarkOp, MarkWrite, Shift, WriteOp, ALL_BITS};

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{field_name, Ctx, EvidenceItem, Finding, EVIDENCE_PER_OWNER};
use crate::analysis::usage::{fi, Site, Use};
use crate::analysis::verify::{
    move_value, others_used, own_bits, rewrite_owner, users_of, Candidate, Proposal,
};
use crate::model::{MarkRead, ReadTest};

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
                let other_bits = others
                    .iter()
                    .fold(0, |a, &o| a | cx.usage.owners[o].used(field));
                // A device's or socket's configured mark starts its own packets (WireGuard's
                // outer UDP packets, a socket's packets): when the value carries no other
                // owner's bits, the bits it clears were never set on them.
                let own_value = !is_copy
                    && group.iter().all(|u| {
                        value_write_site(cx, u)
                            && matches!(u.op, MarkOp::Write(w) if matches!(w.op, WriteOp::Const { xor, .. } if xor & other_bits == 0))
                    });
                let severity = match (others.is_empty(), is_copy, data_dependent) {
                    _ if own_value => Severity::Info,
                    (false, _, false) => Severity::Error,
                    (false, _, true) => Severity::Warning,
                    (true, true, _) => Severity::Warning,
                    (true, false, _) => Severity::Info,
                };
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
                        copy_title(id, field, dir, &group),
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
                        } else if own_value && !others.is_empty() {
                            format!(
                                "{id} sets the whole {} of its own packets to a configured value that carries no other owner's bits",
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
                if let Some(p) = write_proposal(cx, i, field, is_copy, &group) {
                    cx.propose(out.len(), p);
                }
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
            let values: Vec<u32> = matches
                .iter()
                .filter_map(|u| match u.op {
                    MarkOp::Read(r) => match r.test {
                        crate::model::ReadTest::Equals { value, .. } => Some(value),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            let proposal = match_proposal(cx, i, field, &values);
            let fix = proposal.first_text();
            cx.propose(out.len(), proposal);
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
                fix,
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
            cx.node.touchpoints[i as usize].subsystem,
            Subsystem::Wireguard | Subsystem::Socket | Subsystem::Device
        ),
        Site::Rule(_) => false,
    }
}

/// MS005's fixes: match only the owner's own bits, or move its value through its knob.
fn match_proposal(cx: &Ctx<'_>, owner: usize, field: Field, values: &[u32]) -> Proposal {
    let id = cx.owner_id(owner).to_string();
    let own = own_bits(cx, owner);
    let others = others_used(cx, owner);
    let (flag, nft) = match field {
        Field::Mark => ("mark", "meta mark"),
        Field::CtMark => ("connmark", "ct mark"),
    };
    let mut candidates = Vec::new();
    if own != 0 && values.iter().all(|v| v & !own == 0) {
        let rewrites = rewrite_owner(cx, owner, |op| match *op {
            MarkOp::Read(r) if r.field == field && r.is_whole_equality() => {
                let ReadTest::Equals { value, .. } = r.test else {
                    return None;
                };
                Some(MarkOp::Read(MarkRead {
                    test: ReadTest::Equals { value, mask: own },
                    ..r
                }))
            }
            _ => None,
        });
        let v = values.first().copied().unwrap_or(0);
        candidates.push(Candidate {
            text: format!(
                "Match only {id}'s bits: `-m {flag} --mark {}/{}` (nft: `{nft} and {} == {}`), so other software's bits do not change the result.",
                hex(v),
                hex(own),
                hex(own),
                hex(v)
            ),
            rewrites,
            moves_value: false,
        });
    }
    if let Some(c) = move_value(cx, owner, false) {
        candidates.push(c);
    }
    let clash = values.iter().fold(0, |a, v| a | v) & others;
    Proposal {
        owner,
        candidates,
        none: if clash != 0 {
            format!(
                "No rule change keeps {}'s match: its value has bits {} that {} use, and {}; change the value by hand to bits no other owner uses.",
                who(&id),
                hex(clash),
                users_of(cx, owner, clash),
                no_knob(cx, &id, values)
            )
        } else {
            format!("No masked match for {id} passed markspace's re-audit; match only bits no other owner uses.")
        },
    }
}

/// MS004's title: every bit copied (`--restore-mark` without a mask), or only some source bits
/// copied with every other destination bit cleared (nft `meta mark set ct mark & 0x80`).
fn copy_title(id: &str, field: Field, dir: &str, group: &[&Use]) -> String {
    let (from, to) = if field == Field::Mark {
        ("connmark", "packet mark")
    } else {
        ("packet mark", "connmark")
    };
    let copied = group.iter().fold(0u32, |a, u| match u.op {
        MarkOp::Write(MarkWrite {
            op: WriteOp::Copy { src_mask, .. },
            ..
        }) => a | src_mask,
        _ => a,
    });
    if copied == ALL_BITS {
        format!(
            "{id} copies all 32 bits of the {from} into the {to} with an unmasked connmark {dir}"
        )
    } else {
        format!(
            "{id} sets all 32 bits of the {to} from the {from}'s bits {}: every other bit of the {to} is cleared",
            hex(copied)
        )
    }
}

/// A copy that takes only some bits of its source and clears the rest of the destination
/// (nft `meta mark set ct mark & 0x80`): keep the destination's other bits and copy the same
/// bits, `--nfmask S --ctmask S` (`meta mark set meta mark & ~S | ct mark & S`); it means the same
/// on those bits, which the re-audit checks.
fn partial_copy_candidate(
    cx: &Ctx<'_>,
    owner: usize,
    field: Field,
    group: &[&Use],
) -> Option<Candidate> {
    let copied = group.iter().fold(0u32, |a, u| match u.op {
        MarkOp::Write(MarkWrite {
            op:
                WriteOp::Copy {
                    src_mask,
                    shift: Shift::None,
                    ..
                },
            ..
        }) if src_mask != ALL_BITS => a | src_mask,
        _ => a,
    });
    if copied == 0 {
        return None;
    }
    let rewrites = rewrite_owner(cx, owner, |op| match *op {
        MarkOp::Write(mut w) if w.field == field && w.is_whole() && w.is_connmark_copy() => {
            match w.op {
                WriteOp::Copy {
                    src,
                    src_mask,
                    shift: Shift::None,
                    ..
                } if src_mask != ALL_BITS => {
                    w.op = WriteOp::Copy {
                        src,
                        src_mask,
                        shift: Shift::None,
                        keep: !src_mask,
                    };
                    Some(MarkOp::Write(w))
                }
                _ => None,
            }
        }
        _ => None,
    });
    let (flag, nft) = if field == Field::Mark {
        (
            "--restore-mark",
            "meta mark set meta mark & ~S | ct mark & S",
        )
    } else {
        ("--save-mark", "ct mark set ct mark & ~S | meta mark & S")
    };
    let s = hex(copied);
    Some(Candidate {
        text: format!(
            "Keep the other bits and copy only bits {s}: `-j CONNMARK {flag} --nfmask {s} --ctmask {s}` (nft: `{}`).",
            nft.replace('S', &s)
        ),
        rewrites,
        moves_value: false,
    })
}

/// MS003's and MS004's fixes for constant whole writes and whole connmark copies: mask them to
/// the owner's own bits, or move its value through its knob.
fn write_proposal(
    cx: &Ctx<'_>,
    owner: usize,
    field: Field,
    is_copy: bool,
    group: &[&Use],
) -> Option<Proposal> {
    let consts = group.iter().all(
        |u| matches!(u.op, MarkOp::Write(w) if matches!(w.op, WriteOp::Const { keep: 0, .. })),
    );
    if !is_copy && !consts {
        return None;
    }
    let id = cx.owner_id(owner).to_string();
    let own = own_bits(cx, owner);
    let values: Vec<u32> = group
        .iter()
        .filter_map(|u| match u.op {
            MarkOp::Write(w) => match w.op {
                WriteOp::Const { xor, .. } => Some(xor),
                _ => None,
            },
            MarkOp::Read(_) => None,
        })
        .collect();
    let owner_values = crate::model::constant_values(
        &cx.usage
            .uses
            .iter()
            .filter(|u| u.owner == owner)
            .map(|u| u.op)
            .collect::<Vec<_>>(),
    );
    let fits = own != 0 && owner_values.iter().chain(&values).all(|v| v & !own == 0);
    let value_site = group.iter().all(|u| value_write_site(cx, u));
    let mut candidates = Vec::new();
    if fits && !value_site {
        let rewrites = rewrite_owner(cx, owner, |op| match *op {
            MarkOp::Write(mut w) if w.field == field && w.is_whole() => {
                match w.op {
                    WriteOp::Const { xor, .. } if !is_copy => {
                        w.op = WriteOp::Const { keep: !own, xor }
                    }
                    WriteOp::Copy {
                        src,
                        shift,
                        src_mask: ALL_BITS,
                        ..
                    } if is_copy && w.is_connmark_copy() => {
                        w.op = WriteOp::Copy {
                            src,
                            src_mask: own,
                            shift,
                            keep: !own,
                        }
                    }
                    _ => return None,
                }
                Some(MarkOp::Write(w))
            }
            _ => None,
        });
        let text = if is_copy {
            let (flag, nft) = if field == Field::Mark {
                (
                    "--restore-mark",
                    "meta mark set meta mark & ~M | ct mark & M",
                )
            } else {
                ("--save-mark", "ct mark set ct mark & ~M | meta mark & M")
            };
            format!(
                "Give the copy a mask covering only {id}'s bits: `-j CONNMARK {flag} --mask {}` (nft: `{}`).",
                hex(own),
                nft.replace('M', &hex(own))
            )
        } else {
            let v = values.first().copied().unwrap_or(0);
            format!(
                "Write only {id}'s bits: `-j {} --set-xmark {}/{}` (nft: `{} set {} and {} or {}`).",
                if field == Field::Mark { "MARK" } else { "CONNMARK" },
                hex(v),
                hex(own),
                if field == Field::Mark { "meta mark" } else { "ct mark" },
                if field == Field::Mark { "meta mark" } else { "ct mark" },
                hex(!own),
                hex(v)
            )
        };
        candidates.push(Candidate {
            text,
            rewrites,
            moves_value: false,
        });
    }
    if is_copy && !value_site {
        candidates.extend(partial_copy_candidate(cx, owner, field, group));
    }
    if let Some(c) = move_value(cx, owner, is_copy) {
        candidates.push(c);
    }
    let clash = owner_values.iter().fold(0, |a, v| a | v) & others_used(cx, owner);
    Some(Proposal {
        owner,
        candidates,
        none: if clash != 0 {
            format!(
                "No masked rule keeps {} working: its value has bits {} that {} use, and {}; give it a value in bits no other owner uses, then mask its rules to that value.",
                who(&id),
                hex(clash),
                users_of(cx, owner, clash),
                no_knob(cx, &id, &owner_values)
            )
        } else {
            format!(
                "Mask {id}'s whole-field operations to the bits {id} uses; markspace found no such mask that passed its re-audit."
            )
        },
    })
}

/// How fix texts name an owner: its id, or what `unknown` means.
fn who(id: &str) -> String {
    if id == crate::registry::UNKNOWN {
        "the rules no registry entry recognises".to_string()
    } else {
        id.to_string()
    }
}

/// Why no knob moves an owner's value: the registry's `[[fixed]]` reason and source for the
/// claim holding one of `values`, when it has one.
fn no_knob(cx: &Ctx<'_>, id: &str, values: &[u32]) -> String {
    if id == crate::registry::UNKNOWN {
        return "without a registry entry markspace knows no setting that moves it".to_string();
    }
    let fixed = cx.registry.get(id).and_then(|s| {
        s.claims
            .iter()
            .filter(|c| {
                values
                    .iter()
                    .any(|&v| c.values.iter().any(|x| x.value.0 == v))
            })
            .find_map(|c| s.fixed_for(&c.id))
    });
    match fixed {
        Some(f) => format!(
            "markspace found no registered knob of {id} that moves it to free bits: {}",
            f.sourced()
        ),
        None => format!("markspace found no registered knob of {id} that moves it to free bits"),
    }
}
