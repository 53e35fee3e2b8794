//! Fixes checked by the model: "a suggestion is a claim".
//!
//! A check that proposes a rule change does not print it directly: it registers a [`Proposal`]
//! (one or more [`Candidate`]s, each a text and the [`Rewrite`]s that say the same thing in the
//! algebra) with [`Ctx::propose`]. [`settle`] then applies each candidate to a copy of the node,
//! audits the copy again and prints the first candidate that
//!
//! - removes its finding (or brings it down to information: a device's configured mark moved
//!   off other owners' bits),
//! - creates no finding the node did not already have (no MS006 never-true match, no new shared
//!   bits, no new whole-field operation, …; a finding is "already there" when one of the same
//!   code and field, with the same or more owners and the same or more bits, existed before),
//! - writes no bit another owner uses, and
//! - keeps every rewritten operation meaning the same thing on the owner's own bits (the bits
//!   it uses that no other owner does), unless the candidate says it moves the owner's value
//!   through its registry knob.
//!
//! When no candidate passes, the finding says that no verified rule change exists and why.

use std::collections::BTreeMap;

use crate::model::{
    hex, CopySource, Field, MarkOp, MarkRead, Node, ReadTest, Rewrite, RewriteSite, WriteOp,
    ALL_BITS,
};
use crate::registry::schema::KnobDefault;

use super::catalogue::Code;
use super::finding::{Ctx, Finding};
pub(crate) use super::proposal::{Candidate, Proposal};
use super::usage::{fi, Site};

/// A fix whose rule changes were applied to a copy of the node and audited again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFix {
    /// Index of the finding in the analysis' findings.
    pub finding: usize,
    /// The rule changes the printed fix makes, in the algebra.
    pub rewrites: Vec<Rewrite>,
}

/// Bits other owners than `owner` read or write, in both fields.
pub(crate) fn others_used(cx: &Ctx<'_>, owner: usize) -> u32 {
    cx.usage
        .owners
        .iter()
        .enumerate()
        .filter(|&(o, _)| o != owner)
        .fold(0, |a, (_, o)| {
            a | o.used(Field::Mark) | o.used(Field::CtMark)
        })
}

/// The owner ids of other owners using any of `bits`, joined for text.
pub(crate) fn users_of(cx: &Ctx<'_>, owner: usize, bits: u32) -> String {
    let ids: Vec<&str> = cx
        .usage
        .owners
        .iter()
        .enumerate()
        .filter(|&(o, w)| o != owner && (w.used(Field::Mark) | w.used(Field::CtMark)) & bits != 0)
        .map(|(_, w)| w.id.as_str())
        .collect();
    ids.join(", ")
}

/// The constants an owner compares and writes, in both fields.
fn values_of(cx: &Ctx<'_>, owner: usize) -> Vec<u32> {
    let mut v: Vec<u32> = cx
        .usage
        .uses
        .iter()
        .filter(|u| u.owner == owner)
        .flat_map(|u| crate::model::constant_values(std::slice::from_ref(&u.op)))
        .filter(|&v| v != 0)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The owner's own bits: what the registry says it uses (unless that is the whole field),
/// its constants and the bits of its masked operations, minus every bit another owner uses.
pub(crate) fn own_bits(cx: &Ctx<'_>, owner: usize) -> u32 {
    let o = &cx.usage.owners[owner];
    let mut own = 0;
    for f in Field::BOTH {
        if o.claimed[fi(f)] != ALL_BITS {
            own |= o.claimed[fi(f)];
        }
    }
    for u in cx.usage.uses.iter().filter(|u| u.owner == owner) {
        own |= match u.op {
            MarkOp::Read(r) if r.bits() != ALL_BITS => r.bits(),
            MarkOp::Write(w) if !w.is_whole() => w.bits(),
            _ => 0,
        };
    }
    for v in values_of(cx, owner) {
        own |= v;
    }
    own & !others_used(cx, owner)
}

/// Bits free for `owner`: no other owner uses them and no other owner's registry entry claims
/// them (a whole-field claim does not count: it says nothing about which bits).
pub(crate) fn free_for(cx: &Ctx<'_>, owner: usize) -> u32 {
    let mut taken = others_used(cx, owner);
    for (o, w) in cx.usage.owners.iter().enumerate() {
        if o == owner {
            continue;
        }
        for f in Field::BOTH {
            if w.claimed[fi(f)] != ALL_BITS {
                taken |= w.claimed[fi(f)];
            }
        }
    }
    !taken
}

/// The current operations of a site.
fn site_ops(node: &Node, site: Site) -> Vec<MarkOp> {
    match site {
        Site::Rule(id) => node.ruleset.rule(id).ops().to_vec(),
        Site::Touchpoint(i) => node.touchpoints[i as usize].ops.clone(),
    }
}

fn rewrite_site(site: Site) -> RewriteSite {
    match site {
        Site::Rule(id) => RewriteSite::Rule(id),
        Site::Touchpoint(i) => RewriteSite::Touchpoint(i as usize),
    }
}

/// Rewrites every site of `owner` whose operations `change` alters (`change` maps one
/// operation to its replacement, or `None` to keep it).
pub(crate) fn rewrite_owner(
    cx: &Ctx<'_>,
    owner: usize,
    change: impl Fn(&MarkOp) -> Option<MarkOp>,
) -> Vec<Rewrite> {
    let mut sites: BTreeMap<(u8, usize), Site> = BTreeMap::new();
    for u in cx.usage.uses.iter().filter(|u| u.owner == owner) {
        let key = match u.site {
            Site::Rule(id) => (0, id.0 as usize),
            Site::Touchpoint(i) => (1, i as usize),
        };
        sites.insert(key, u.site);
    }
    let mut out = Vec::new();
    for site in sites.into_values() {
        let old = site_ops(cx.node, site);
        let new: Vec<MarkOp> = old.iter().map(|op| change(op).unwrap_or(*op)).collect();
        if new != old {
            out.push(Rewrite {
                site: rewrite_site(site),
                ops: new,
            });
        }
    }
    out
}

/// A candidate that moves the owner's one conflicting value through a registry knob to free
/// bits, and masks its whole matches (and, with `mask_copies`, its whole connmark copies) to
/// its bits. `None` when the owner has no such knob or no single conflicting value.
pub(crate) fn move_value(cx: &Ctx<'_>, owner: usize, mask_copies: bool) -> Option<Candidate> {
    let others = others_used(cx, owner);
    let conflicting: Vec<u32> = values_of(cx, owner)
        .into_iter()
        .filter(|v| v & others != 0)
        .collect();
    let [v] = conflicting[..] else { return None };
    let free = free_for(cx, owner);
    let sw = cx.registry.get(&cx.usage.owners[owner].id)?;
    let (knob, new, shown) = sw.knobs.iter().find_map(|k| {
        if k.claims.is_empty() {
            return None;
        }
        match k.typed_default {
            KnobDefault::Value(_) => {
                let kept = v & free;
                let new = if kept != 0 {
                    kept
                } else {
                    free & free.wrapping_neg()
                };
                (new != 0).then(|| (k, new, hex(new)))
            }
            KnobDefault::Bit(_) if v.count_ones() == 1 && free != 0 => {
                let bit = free.trailing_zeros();
                Some((k, 1 << bit, bit.to_string()))
            }
            _ => None,
        }
    })?;
    let own = (own_bits(cx, owner) & !v) | new;
    let rewrites = rewrite_owner(cx, owner, |op| match *op {
        MarkOp::Read(r) => match r.test {
            ReadTest::Equals { value, mask } if value & v == v => {
                let mask = if mask == ALL_BITS {
                    new | (own & value)
                } else {
                    (mask & !v) | new
                };
                Some(MarkOp::Read(MarkRead {
                    test: ReadTest::Equals {
                        value: (value & !v) | new,
                        mask,
                    },
                    ..r
                }))
            }
            _ => None,
        },
        MarkOp::Write(mut w) => match w.op {
            WriteOp::Const { keep, xor } if xor & v == v => {
                let keep = if keep == 0 { 0 } else { !((!keep & !v) | new) };
                w.op = WriteOp::Const {
                    keep,
                    xor: (xor & !v) | new,
                };
                Some(MarkOp::Write(w))
            }
            WriteOp::Copy {
                src: src @ (CopySource::Mark | CopySource::CtMark),
                shift,
                keep: 0,
                src_mask: ALL_BITS,
            } if mask_copies && w.is_connmark_copy() => {
                w.op = WriteOp::Copy {
                    src,
                    src_mask: own,
                    shift,
                    keep: !own,
                };
                Some(MarkOp::Write(w))
            }
            _ => None,
        },
    });
    if rewrites.is_empty() {
        return None;
    }
    let id = &cx.usage.owners[owner].id;
    let users = users_of(cx, owner, v & others);
    let mut then = Vec::new();
    let changed: Vec<&MarkOp> = rewrites.iter().flat_map(|r| &r.ops).collect();
    if changed
        .iter()
        .any(|op| matches!(op, MarkOp::Read(r) if matches!(r.test, ReadTest::Equals { value, .. } if value & new == new)))
    {
        then.push(format!(
            "its match then reads `-m mark --mark {}/{}`",
            hex(new),
            hex(new | (own & v))
        ));
    }
    if mask_copies {
        then.push(format!("its connmark copies `--mask {}`", hex(own)));
    }
    Some(Candidate {
        text: format!(
            "{id}'s value {} has bits {} that {users} use{}, so no masked rule keeps its meaning: move it with {}'s {} ({}) to {shown} (bits free on this node: {}){}.",
            hex(v),
            hex(v & others),
            if users.contains(", ") { "" } else { "s" },
            sw.name,
            knob.name,
            knob.location,
            hex(free),
            if then.is_empty() {
                String::new()
            } else {
                format!("; {}", then.join(" and "))
            }
        ),
        rewrites,
        moves_value: true,
    })
}

/// How a read behaves on field values that only have bits in `own`: exact, comparable.
fn read_on(r: &MarkRead, own: u32) -> (bool, u8, u32, u32) {
    match r.test {
        ReadTest::Equals { value, mask } => {
            let m = mask & own;
            if value & !m != 0 {
                (r.invert, 0, 0, 0)
            } else {
                (r.invert, 1, value, m)
            }
        }
        ReadTest::AnyBit { mask } => (r.invert, 2, 0, mask & own),
        ReadTest::Opaque { mask } => (r.invert, 3, 0, mask & own),
    }
}

/// Whether two operations do the same thing on the bits in `own`.
fn same_on(a: &MarkOp, b: &MarkOp, own: u32) -> bool {
    match (a, b) {
        (MarkOp::Read(x), MarkOp::Read(y)) => {
            x.field == y.field && read_on(x, own) == read_on(y, own)
        }
        (MarkOp::Write(x), MarkOp::Write(y)) => {
            if x.field != y.field {
                return false;
            }
            match (x.op, y.op) {
                (WriteOp::Const { keep: k1, xor: x1 }, WriteOp::Const { keep: k2, xor: x2 }) => {
                    k1 & own == k2 & own && x1 & own == x2 & own
                }
                (
                    WriteOp::Copy {
                        src: s1,
                        src_mask: m1,
                        shift: h1,
                        keep: k1,
                    },
                    WriteOp::Copy {
                        src: s2,
                        src_mask: m2,
                        shift: h2,
                        keep: k2,
                    },
                ) => {
                    s1 == s2
                        && h1 == h2
                        && k1 & own == k2 & own
                        && h1.apply(m1) & own == h2.apply(m2) & own
                }
                (p, q) => p == q,
            }
        }
        _ => false,
    }
}

/// Whether `after` was already reported before the fix (the same code and field, owners and
/// bits within one finding of `before`, no more severe).
fn already_there(after: &Finding, before: &[Finding]) -> bool {
    before.iter().any(|b| {
        b.code == after.code
            && b.field == after.field
            && after.owners.iter().all(|o| b.owners.contains(o))
            && after.bits & !b.bits == 0
            && after.severity >= b.severity
    })
}

/// Whether `after` is the finding `target` (same code, field, first owner; for findings about
/// one rule, the same first evidence line).
fn is_same(after: &Finding, target: &Finding) -> bool {
    after.code == target.code
        && after.field == target.field
        && after.owners.first() == target.owners.first()
        && (target.code != Code::NeverMatches
            || after.evidence.first().map(|e| (&e.file, e.line))
                == target.evidence.first().map(|e| (&e.file, e.line)))
}

/// Why a candidate fails, or `None` when it passes.
pub(crate) fn check(
    cx: &Ctx<'_>,
    node: &mut Node,
    before: &[Finding],
    target: &Finding,
    owner: usize,
    c: &Candidate,
    reaudit: &dyn Fn(&Node) -> Vec<Finding>,
) -> Option<String> {
    let others = others_used(cx, owner);
    let own = own_bits(cx, owner);
    for rw in &c.rewrites {
        let site = match rw.site {
            RewriteSite::Rule(id) => Site::Rule(id),
            RewriteSite::Touchpoint(i) => Site::Touchpoint(i as u32),
        };
        let old = site_ops(node, site);
        // A rewrite keeps the rule's operations, changed one for one; it may only append writes
        // after them (clearing bits once the rule has used them, MS022), and those must leave
        // every other owner's bits alone.
        if rw.ops.len() < old.len() {
            return Some("the rewrite changes the number of operations".into());
        }
        if rw.ops.len() > old.len() {
            if rw.ops[..old.len()] != old[..] {
                return Some("the rewrite changes operations and adds others".into());
            }
            for extra in &rw.ops[old.len()..] {
                let MarkOp::Write(w) = extra else {
                    return Some("the rewrite adds a test".into());
                };
                if w.bits() & others != 0 {
                    return Some(format!(
                        "it writes bits {} of another owner",
                        hex(w.bits() & others)
                    ));
                }
            }
        }
        for (a, b) in old.iter().zip(&rw.ops) {
            if a == b {
                continue;
            }
            if let MarkOp::Write(w) = b {
                // A whole write that stays whole (a device's or socket's configured mark, moved
                // to another value) is judged by the bits it sets; any other rewritten write
                // must not touch another owner's bits at all.
                let stays_whole = w.is_whole() && matches!(a, MarkOp::Write(o) if o.is_whole());
                let touched = match (stays_whole, w.op) {
                    (true, WriteOp::Const { xor, .. }) => xor & others,
                    _ => w.bits() & others,
                };
                if touched != 0 {
                    return Some(format!("it writes bits {} of another owner", hex(touched)));
                }
            }
            if !c.moves_value && !same_on(a, b, own) {
                return Some(format!(
                    "it changes what the rule means on its own bits {}",
                    hex(own)
                ));
            }
        }
    }
    let undo: Vec<Rewrite> = c.rewrites.iter().map(|rw| node.apply_rewrite(rw)).collect();
    let after = reaudit(node);
    for rw in undo.iter().rev() {
        node.apply_rewrite(rw);
    }
    // Gone, or down to information (a configured mark moved off others' bits).
    let info = super::catalogue::Severity::Info;
    if let Some(f) = after
        .iter()
        .find(|f| is_same(f, target) && !(f.severity == info && target.severity != info))
    {
        return Some(format!("{} is still reported: {}", f.code, f.title));
    }
    if let Some(f) = after.iter().find(|f| !already_there(f, before)) {
        return Some(format!("it would cause {}: {}", f.code, f.title));
    }
    None
}

/// Tries every proposal on a copy of the node; sets each finding's fix to its first candidate
/// that passes, or to the proposal's `none` text. Returns the fixes printed.
/// `reaudit` runs the analysis on a node without checking fixes again.
pub(crate) fn settle(
    cx: &Ctx<'_>,
    findings: &mut [Finding],
    reaudit: &dyn Fn(&Node) -> Vec<Finding>,
) -> Vec<VerifiedFix> {
    let proposals = cx.proposals.take();
    if proposals.is_empty() {
        return Vec::new();
    }
    let mut node = cx.node.clone();
    let before = findings.to_vec();
    let mut out = Vec::new();
    for (idx, p) in proposals {
        let Some(target) = before.get(idx) else {
            continue;
        };
        let mut why = Vec::new();
        let mut chosen = None;
        for c in p.candidates {
            match check(cx, &mut node, &before, target, p.owner, &c, reaudit) {
                None => {
                    chosen = Some(c);
                    break;
                }
                Some(reason) => why.push(reason),
            }
        }
        match chosen {
            Some(c) => {
                findings[idx].fix = c.text;
                out.push(VerifiedFix {
                    finding: idx,
                    rewrites: c.rewrites,
                });
            }
            None => {
                findings[idx].fix = if why.is_empty() {
                    p.none
                } else {
                    format!(
                        "{} (markspace tried a rule change and rejected it: {}.)",
                        p.none,
                        why.join("; ")
                    )
                };
            }
        }
    }
    out
}
