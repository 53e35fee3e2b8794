//! The findings: each a stable code, a severity, the owners and bits involved, the rules that
//! prove it, and a fix.
//!
//! | code  | name                 | when |
//! |-------|----------------------|------|
//! | MS001 | shared-bits          | two owners write the same bits (masked writes); info when their uses never share a packet path |
//! | MS002 | foreign-read         | an owner's rules test bits another owner writes, without the registry saying it cooperates |
//! | MS003 | whole-mark-write     | a write replaces all 32 bits while others use bits of that field |
//! | MS004 | unmasked-connmark    | a connmark save/restore copies all 32 bits |
//! | MS005 | whole-mark-match     | an exact 32-bit match while others write bits (it silently stops matching) |
//! | MS006 | never-matches        | a match whose value has bits outside its mask |
//! | MS007 | unknown-owner        | rules no registry entry recognises use bits |
//! | MS008 | outside-claim        | an owner uses bits outside what the registry says it uses |
//! | MS009 | unreachable-rules    | mark rules in chains no hook reaches (they never run) |
//! | MS010 | rp-filter-ignores-mark | strict rp_filter without src_valid_mark while fwmark ip rules route (replies dropped) |
//! | MS011 | src-valid-mark-forced  | src_valid_mark=1 on all interfaces next to other software's fwmark policy routing |
//! | MS012 | fwmark-accept-off      | tcp_fwmark_accept=0 while fwmark ip rules route and no connmark restore puts marks back |
//! | MS013 | implied-write          | a selector requires bits its owner never visibly writes, and another owner uses them |
//!
//! MS010-MS012 come from sysctl observations ([`super::sysctls`]); MS013 from selector values
//! ([`super::implied`]).

use serde::Serialize;

use crate::model::{hex, CopySource, Field, MarkOp, WriteOp, ALL_BITS};
use crate::registry::{Registry, UNKNOWN};
use crate::ruleset::{RuleId, Ruleset};
use crate::source::SourceMap;

use super::fix;
use super::path::{meeting, Meeting, PathEvidence};
use super::usage::{fi, Site, Usage, Use};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Packets are or will be mishandled.
    Error,
    /// Likely trouble, or a practice that breaks when software is added.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One piece of evidence: a rule (file, line, text) or a registry claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceItem {
    /// The input file, or `registry/<id>.toml` for a registry claim.
    pub file: String,
    /// 1-based line, absent for registry claims.
    pub line: Option<u32>,
    /// The rule as written, or the claim described.
    pub text: String,
    /// The owner of the rule or claim.
    pub owner: String,
}

/// A known incident a finding reproduces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentRef {
    /// Incident id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Links.
    pub links: Vec<String>,
}

impl From<&crate::registry::Incident> for IncidentRef {
    fn from(i: &crate::registry::Incident) -> Self {
        IncidentRef {
            id: i.id.clone(),
            title: i.title.clone(),
            links: i.links.clone(),
        }
    }
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable code (`MS001`).
    pub code: &'static str,
    /// Stable short name (`shared-bits`).
    pub name: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Owner ids involved.
    pub owners: Vec<String>,
    /// The field.
    pub field: Field,
    /// The bits involved.
    #[serde(serialize_with = "ser_hex")]
    pub bits: u32,
    /// One line.
    pub title: String,
    /// The rules (or registry claims) that prove it.
    pub evidence: Vec<EvidenceItem>,
    /// Evidence left out to keep the report short.
    pub evidence_omitted: usize,
    /// A concrete fix.
    pub fix: String,
    /// Known incidents this reproduces.
    pub incidents: Vec<IncidentRef>,
    /// The packet path on which the owners meet, hook by hook (absent when not path-specific).
    pub path: Option<PathEvidence>,
}

fn ser_hex<S: serde::Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(*v))
}

/// Evidence rows per owner before the rest is counted as omitted.
const EVIDENCE_PER_OWNER: usize = 3;

/// What the finding rules need.
pub(crate) struct Ctx<'a> {
    pub(crate) node: &'a crate::model::Node,
    pub(crate) set: &'a Ruleset,
    pub(crate) sources: &'a SourceMap,
    pub(crate) registry: &'a Registry,
    pub(crate) usage: &'a Usage,
    /// Rule traversal order per hook, computed when a finding needs it.
    pub(crate) orders: [std::cell::OnceCell<Vec<u32>>; 7],
}

impl Ctx<'_> {
    /// The traversal order of rules at a hook (see [`super::path::traversal_order`]).
    pub(crate) fn order(&self, hook: crate::ruleset::Hook) -> &[u32] {
        self.orders[hook as usize].get_or_init(|| super::path::traversal_order(self.set, hook))
    }

    pub(super) fn owner_id(&self, i: usize) -> &str {
        &self.usage.owners[i].id
    }

    /// Evidence for a rule: its file, line and text (prefixed with its table and chain when the
    /// line does not say them, as nft rule lines do not).
    pub(super) fn rule_evidence(&self, id: RuleId, owner: &str) -> EvidenceItem {
        let rule = self.set.rule(id);
        let text = self.sources.text(rule.span).trim();
        let text = if text.starts_with("-A") || text.starts_with("-I") || text.starts_with('[') {
            text.to_string()
        } else {
            let table = self.set.rule_table(rule);
            format!(
                "[{} {}] {}",
                table.name,
                self.set.chain(rule.chain).name,
                text
            )
        };
        EvidenceItem {
            file: self.sources.name(rule.span).to_string(),
            line: Some(rule.span.line),
            text,
            owner: owner.to_string(),
        }
    }

    pub(super) fn evidence_of(&self, u: &Use) -> EvidenceItem {
        let owner = self.owner_id(u.owner);
        match u.site {
            Site::Rule(id) => self.rule_evidence(id, owner),
            Site::Touchpoint(i) => {
                let tp = &self.node.touchpoints[i];
                EvidenceItem {
                    file: self.sources.name(tp.span).to_string(),
                    line: Some(tp.span.line),
                    text: format!(
                        "[{}] {}",
                        tp.subsystem.as_str(),
                        self.sources.text(tp.span).trim()
                    ),
                    owner: owner.to_string(),
                }
            }
        }
    }

    /// Evidence for an owner: its uses whose bits in `field` meet `bits`, filtered by `pick`,
    /// one row per rule. Rules that set (rather than clear or test) the bits come first: they
    /// are the ones that show the collision.
    fn evidence(
        &self,
        owner: usize,
        field: Field,
        bits: u32,
        pick: impl Fn(&Use) -> bool,
        out: &mut Vec<EvidenceItem>,
        omitted: &mut usize,
    ) {
        let f = fi(field);
        let mut picked: Vec<&Use> = Vec::new();
        for u in self.usage.uses.iter().filter(|u| u.owner == owner) {
            if (u.reads[f] | u.writes[f]) & bits == 0 || !pick(u) {
                continue;
            }
            if picked.last().is_some_and(|p| p.site == u.site) {
                continue;
            }
            picked.push(u);
        }
        let sets = |u: &Use| match u.op {
            MarkOp::Write(w) => match w.op {
                WriteOp::Const { xor, .. } => xor & bits != 0,
                _ => true,
            },
            MarkOp::Read(_) => false,
        };
        picked.sort_by_key(|u| !sets(u));
        for u in picked.iter().take(EVIDENCE_PER_OWNER) {
            out.push(self.evidence_of(u));
        }
        *omitted += picked.len().saturating_sub(EVIDENCE_PER_OWNER);
    }

    pub(super) fn incidents(&self, owners: &[&str], field: Field, bits: u32) -> Vec<IncidentRef> {
        self.registry
            .incidents_for(owners, field, bits)
            .map(IncidentRef::from)
            .collect()
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

fn is_whole_write(u: &Use) -> bool {
    matches!(u.op, MarkOp::Write(w) if w.is_whole())
}

fn path_name(p: &PathEvidence) -> &'static str {
    match p.path {
        crate::packet::PathKind::Ingress => "ingress",
        crate::packet::PathKind::Forward => "forward",
        crate::packet::PathKind::Output => "output",
    }
}

fn field_name(f: Field) -> &'static str {
    match f {
        Field::Mark => "packet mark",
        Field::CtMark => "connmark",
    }
}

/// Runs every finding rule.
pub(crate) fn find(cx: &Ctx<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    shared_bits(cx, &mut out);
    whole_writes(cx, &mut out);
    whole_matches(cx, &mut out);
    never_matches(cx, &mut out);
    unknown_owner(cx, &mut out);
    outside_claim(cx, &mut out);
    unreachable(cx, &mut out);
    super::sysctls::find(cx, &mut out);
    super::implied::find(cx, &mut out);
    super::pathfindings::find(cx, &mut out);
    out.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.code.cmp(b.code))
            .then(a.field.cmp(&b.field))
            .then(a.owners.cmp(&b.owners))
            .then(a.bits.cmp(&b.bits))
    });
    out
}

/// Masked writes of one owner per field (whole writes are reported on their own).
fn masked_writes(cx: &Ctx<'_>, owner: usize, field: Field) -> u32 {
    cx.usage
        .uses
        .iter()
        .filter(|u| u.owner == owner && !is_whole_write(u))
        .fold(0, |acc, u| acc | u.writes[fi(field)])
}

fn masked_reads(cx: &Ctx<'_>, owner: usize, field: Field) -> u32 {
    cx.usage
        .uses
        .iter()
        .filter(|u| u.owner == owner)
        .fold(0, |acc, u| {
            // Whole-field matches and the source side of whole copies are reported on their
            // own (MS005, MS003/MS004); counting them here would repeat those findings.
            let whole_read =
                matches!(u.op, MarkOp::Read(r) if r.is_whole_equality()) || is_whole_write(u);
            if whole_read {
                acc
            } else {
                acc | u.reads[fi(field)]
            }
        })
}

/// MS001 shared-bits and MS002 foreign-read.
fn shared_bits(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let n = cx.usage.owners.len();
    for field in Field::BOTH {
        let writes: Vec<u32> = (0..n).map(|i| masked_writes(cx, i, field)).collect();
        let reads: Vec<u32> = (0..n).map(|i| masked_reads(cx, i, field)).collect();
        for a in 0..n {
            for b in (a + 1)..n {
                let shared = writes[a] & writes[b];
                if shared != 0 {
                    let (ia, ib) = (cx.owner_id(a), cx.owner_id(b));
                    let met = meeting(cx, a, b, field, shared);
                    let by_design = cx.registry.by_design(ia, ib);
                    let mut evidence = Vec::new();
                    let mut omitted = 0;
                    for o in [a, b] {
                        cx.evidence(
                            o,
                            field,
                            shared,
                            |u| u.writes[fi(field)] & shared != 0 && !is_whole_write(u),
                            &mut evidence,
                            &mut omitted,
                        );
                    }
                    out.push(Finding {
                        code: "MS001",
                        name: "shared-bits",
                        // Software the registry says shares these bits by design (kubelet and
                        // kube-proxy) is reported, but not as a collision.
                        // Owners whose uses never share a packet path overload the bits safely.
                        severity: if by_design || matches!(met, Meeting::Disjoint) {
                            Severity::Info
                        } else {
                            Severity::Error
                        },
                        owners: vec![ia.to_string(), ib.to_string()],
                        field,
                        bits: shared,
                        title: match &met {
                            Meeting::Disjoint => format!(
                                "{ia} and {ib} both write {} bits {}, but on different packet paths",
                                field_name(field),
                                hex(shared)
                            ),
                            Meeting::Clobber(p) => format!(
                                "{ia} and {ib} both write {} bits {}: on the {} path one overwrites the other's bits before they are read",
                                field_name(field),
                                hex(shared),
                                path_name(p)
                            ),
                            _ => format!("{ia} and {ib} both write {} bits {}", field_name(field), hex(shared)),
                        },
                        evidence,
                        evidence_omitted: omitted,
                        fix: fix::separate(cx, a, b, field, shared),
                        incidents: cx.incidents(&[ia, ib], field, shared),
                        path: match met {
                            Meeting::Clobber(p) | Meeting::Shared(p) => Some(p),
                            _ => None,
                        },
                    });
                }
                // A writes what B reads (and B does not write it itself).
                for (w, r) in [(a, b), (b, a)] {
                    let foreign = writes[w] & reads[r] & !writes[r];
                    if foreign == 0 {
                        continue;
                    }
                    let (iw, ir) = (cx.owner_id(w), cx.owner_id(r));
                    if cx.registry.cooperates(ir, iw, field, foreign) {
                        continue;
                    }
                    let met = meeting(cx, r, w, field, foreign);
                    let mut evidence = Vec::new();
                    let mut omitted = 0;
                    cx.evidence(
                        r,
                        field,
                        foreign,
                        |u| u.reads[fi(field)] & foreign != 0,
                        &mut evidence,
                        &mut omitted,
                    );
                    cx.evidence(
                        w,
                        field,
                        foreign,
                        |u| u.writes[fi(field)] & foreign != 0,
                        &mut evidence,
                        &mut omitted,
                    );
                    out.push(Finding {
                        code: "MS002",
                        name: "foreign-read",
                        severity: if matches!(met, Meeting::Disjoint) { Severity::Info } else { Severity::Warning },
                        owners: vec![ir.to_string(), iw.to_string()],
                        field,
                        bits: foreign,
                        title: format!("{ir} tests {} bits {} that {iw} writes", field_name(field), hex(foreign)),
                        evidence,
                        evidence_omitted: omitted,
                        fix: format!(
                            "If {ir} means to react to {iw}'s bits, record it as `reads_from` in {ir}'s registry entry; otherwise move one of them: {}",
                            fix::separate(cx, r, w, field, foreign)
                        ),
                        incidents: cx.incidents(&[ir, iw], field, foreign),
                        path: match met {
                            Meeting::Clobber(p) | Meeting::Shared(p) => Some(p),
                            _ => None,
                        },
                    });
                }
            }
        }
    }
}

/// MS003 whole-mark-write and MS004 unmasked-connmark.
fn whole_writes(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, owner) in cx.usage.owners.iter().enumerate() {
        for field in Field::BOTH {
            let whole: Vec<&Use> = cx
                .usage
                .uses
                .iter()
                .filter(|u| {
                    u.owner == i
                        && is_whole_write(u)
                        && matches!(u.op, MarkOp::Write(w) if w.field == field)
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
                let (code, name, title, fix) = if is_copy {
                    let (dir, flag) = if field == Field::Mark {
                        ("restore", "--restore-mark")
                    } else {
                        ("save", "--save-mark")
                    };
                    (
                        "MS004",
                        "unmasked-connmark",
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
                        "MS003",
                        "whole-mark-write",
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
                    name,
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
fn whole_matches(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, owner) in cx.usage.owners.iter().enumerate() {
        for field in Field::BOTH {
            let matches: Vec<&Use> = cx
                .usage
                .uses
                .iter()
                .filter(|u| u.owner == i && matches!(u.op, MarkOp::Read(r) if r.field == field && r.is_whole_equality()))
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
                code: "MS005",
                name: "whole-mark-match",
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

/// MS006 never-matches.
fn never_matches(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for u in &cx.usage.uses {
        let MarkOp::Read(r) = u.op else { continue };
        if !r.never_matches() {
            continue;
        }
        let crate::model::ReadTest::Equals { value, mask } = r.test else {
            continue;
        };
        let id = cx.owner_id(u.owner).to_string();
        out.push(Finding {
            code: "MS006",
            name: "never-matches",
            severity: Severity::Warning,
            owners: vec![id.clone()],
            field: r.field,
            bits: value & !mask,
            title: format!(
                "{id}'s match {}/{} can never be true: the value has bits {} outside its mask",
                hex(value),
                hex(mask),
                hex(value & !mask)
            ),
            evidence: vec![cx.evidence_of(u)],
            evidence_omitted: 0,
            fix: format!(
                "Use a value inside the mask ({}/{}) or widen the mask to {}.",
                hex(value & mask),
                hex(mask),
                hex(mask | value)
            ),
            incidents: Vec::new(),
            path: None,
        });
    }
}

/// MS007 unknown-owner.
fn unknown_owner(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let Some(i) = cx.usage.owners.iter().position(|o| o.id == UNKNOWN) else {
        return;
    };
    let owner = &cx.usage.owners[i];
    for field in Field::BOTH {
        let bits = owner.used(field);
        if bits == 0 {
            continue;
        }
        let mut evidence = Vec::new();
        let mut omitted = 0;
        cx.evidence(i, field, bits, |_| true, &mut evidence, &mut omitted);
        out.push(Finding {
            code: "MS007",
            name: "unknown-owner",
            severity: Severity::Warning,
            owners: vec![UNKNOWN.to_string()],
            field,
            bits,
            title: format!("rules no registry entry recognises use {} bits {}", field_name(field), hex(bits)),
            evidence,
            evidence_omitted: omitted,
            fix: "Find which software installs these rules (chain names, comments) and add it to the registry (`--registry DIR`), so its bits are checked against the others.".to_string(),
            incidents: Vec::new(),
            path: None,
        });
    }
}

/// MS008 outside-claim.
fn outside_claim(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, owner) in cx.usage.owners.iter().enumerate() {
        let Some(sw) = cx.registry.get(&owner.id) else {
            continue;
        };
        for field in Field::BOTH {
            let cooperative: u32 = sw
                .reads_from
                .iter()
                .filter(|r| r.kind.field() == field)
                .fold(0, |a, r| a | r.bits.0);
            let writes = masked_writes(cx, i, field);
            let reads = masked_reads(cx, i, field) & !cooperative;
            let outside = (writes | reads) & !owner.claimed[fi(field)];
            if outside == 0 {
                continue;
            }
            let mut evidence = Vec::new();
            let mut omitted = 0;
            cx.evidence(
                i,
                field,
                outside,
                |u| !is_whole_write(u),
                &mut evidence,
                &mut omitted,
            );
            let file = cx.registry.files.get(&owner.id).map_or_else(
                || format!("registry/{}.toml", owner.id),
                |f| {
                    let base = f.rsplit('/').next().unwrap_or(f);
                    format!("registry/{base}")
                },
            );
            evidence.push(EvidenceItem {
                file,
                line: None,
                text: format!(
                    "{} claims {} bits {}",
                    sw.name,
                    field_name(field),
                    hex(owner.claimed[fi(field)])
                ),
                owner: owner.id.clone(),
            });
            let others: Vec<&str> = cx
                .registry
                .software
                .iter()
                .filter(|s| s.id != owner.id && s.claimed(field) & outside != 0)
                .map(|s| s.id.as_str())
                .collect();
            let knobs: Vec<String> = sw
                .knobs
                .iter()
                .map(|k| format!("{} ({}, default {})", k.name, k.location, k.default))
                .collect();
            out.push(Finding {
                code: "MS008",
                name: "outside-claim",
                severity: Severity::Warning,
                owners: vec![owner.id.clone()],
                field,
                bits: outside,
                title: format!(
                    "{} uses {} bits {} outside its registered bits {}{}",
                    owner.id,
                    field_name(field),
                    hex(outside),
                    hex(owner.claimed[fi(field)]),
                    match others.len() {
                        0 => String::new(),
                        1..=4 => format!(" (registered by {})", others.join(", ")),
                        n => format!(" (registered by {} and {} more)", others[..4].join(", "), n - 4),
                    }
                ),
                evidence,
                evidence_omitted: omitted,
                fix: if knobs.is_empty() {
                    format!("Check {}'s version and configuration; if this layout is real, update registry/{}.toml.", sw.name, owner.id)
                } else {
                    format!("Check {}'s configuration ({}); if the layout is intended, record it in the registry with `--registry DIR`.", sw.name, knobs.join("; "))
                },
                incidents: Vec::new(),
                path: None,
            });
        }
    }
}

/// MS009 unreachable-rules.
fn unreachable(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if cx.usage.unreachable.is_empty() {
        return;
    }
    let mut fields = [0u32; 2];
    for r in &cx.usage.unreachable {
        for op in cx.set.rule(*r).ops() {
            let f = op.field();
            fields[fi(f)] |= match op {
                MarkOp::Read(r) => r.bits(),
                MarkOp::Write(w) => w.bits(),
            };
        }
    }
    let evidence = cx
        .usage
        .unreachable
        .iter()
        .take(EVIDENCE_PER_OWNER)
        .map(|r| cx.rule_evidence(*r, UNKNOWN))
        .collect();
    let field = if fields[0] != 0 {
        Field::Mark
    } else {
        Field::CtMark
    };
    out.push(Finding {
        code: "MS009",
        name: "unreachable-rules",
        severity: Severity::Info,
        owners: Vec::new(),
        field,
        bits: fields[fi(field)],
        title: format!("{} mark rule(s) sit in chains no hook reaches; they never run and are left out of the map", cx.usage.unreachable.len()),
        evidence,
        evidence_omitted: cx.usage.unreachable.len().saturating_sub(EVIDENCE_PER_OWNER),
        fix: "Nothing to fix for marks; remove the dead chains to keep the ruleset readable.".to_string(),
        incidents: Vec::new(),
        path: None,
    });
}
