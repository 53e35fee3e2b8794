//! Where two owners' uses of the same bits meet on a packet path ([`super::path`]).
//!
//! Each use sits in chains reachable from some hooks; a hook has a place on each path
//! (ingress: PREROUTING, INPUT; forward: PREROUTING, FORWARD, POSTROUTING; output: OUTPUT,
//! POSTROUTING) and its base chain a priority, so uses on one path are ordered. The strongest
//! evidence of a collision is a clobber: one owner writes the bits, the other writes them next,
//! and the first reads them after that (Calico's mangle POSTROUTING clearing 0xf0000 between
//! Tailscale's FORWARD mark and its nat POSTROUTING masquerade). Owners whose uses of the bits
//! never share a path overload the bits safely ("different paths").

use crate::model::{hex, Field, MarkOp};
use crate::ruleset::Hook;

use super::finding::Ctx;
use super::path::{PathEvidence, PathStep, PATHS};
use super::usage::{fi, Site, Use};

/// Ordering key of a use at a hook of a path.
fn key(cx: &Ctx<'_>, u: &Use, hook_index: usize, hook: Hook) -> (usize, u32, usize) {
    match u.site {
        Site::Rule(id) => (hook_index, cx.order(hook)[id.0 as usize], u.op_index),
        Site::Touchpoint(i) => (hook_index, u32::MAX, i),
    }
}

fn is_write(u: &Use, field: Field, bits: u32) -> bool {
    u.writes[fi(field)] & bits != 0 && matches!(u.op, MarkOp::Write(w) if !w.is_whole())
}

/// The bits a constant write sets to 1 (its xor part).
fn set_bits(u: &Use) -> u32 {
    match u.op {
        MarkOp::Write(w) => match w.op {
            crate::model::WriteOp::Const { xor, .. } => xor,
            _ => 0,
        },
        MarkOp::Read(_) => 0,
    }
}

fn is_read(u: &Use, field: Field, bits: u32) -> bool {
    u.reads[fi(field)] & bits != 0 && matches!(u.op, MarkOp::Read(_))
}

fn step(cx: &Ctx<'_>, u: &Use, hook: Hook, field: Field, bits: u32) -> Option<PathStep> {
    let Site::Rule(id) = u.site else { return None };
    let rule = cx.set.rule(id);
    let table = cx.set.rule_table(rule);
    let action = if is_write(u, field, bits) {
        format!("writes {}", hex(u.writes[fi(field)] & bits))
    } else {
        format!("reads {}", hex(u.reads[fi(field)] & bits))
    };
    Some(PathStep {
        hook,
        table: format!("{} {}", table.family.as_str(), table.name),
        chain: cx.set.chain(rule.chain).name.to_string(),
        file: cx.sources.name(rule.span).to_string(),
        line: rule.span.line,
        owner: cx.usage.owners[u.owner].id.clone(),
        action,
    })
}

/// How two owners' uses of some bits relate along the packet paths.
pub(crate) enum Meeting {
    /// On this path one owner's write lands between the other's write and read.
    Clobber(PathEvidence),
    /// Both use the bits on this path.
    Shared(PathEvidence),
    /// Some use has no known hook (a touchpoint, or a rule of a truncated input): assume they meet.
    Unplaced,
    /// Their uses never share a path.
    Disjoint,
}

/// How owners `a` and `b` meet on `bits` of `field`.
pub(crate) fn meeting(cx: &Ctx<'_>, a: usize, b: usize, field: Field, bits: u32) -> Meeting {
    let relevant: Vec<&Use> = cx
        .usage
        .uses
        .iter()
        .filter(|u| {
            (u.owner == a || u.owner == b) && (u.reads[fi(field)] | u.writes[fi(field)]) & bits != 0
        })
        .collect();
    // Uses with no known hook (touchpoints, rules of truncated inputs) could be anywhere.
    let unplaced = relevant.iter().any(|u| u.hooks.is_empty());
    let mut shared: Option<PathEvidence> = None;
    for (path, hooks) in PATHS {
        let mut events: Vec<((usize, u32, usize), &Use, Hook)> = Vec::new();
        for u in &relevant {
            for (i, h) in hooks.iter().enumerate() {
                if u.hooks.contains(*h) {
                    events.push((key(cx, u, i, *h), u, *h));
                }
            }
        }
        events.sort_by_key(|e| e.0);
        let has = |o: usize| events.iter().any(|e| e.1.owner == o);
        if !(has(a) && has(b)) {
            continue;
        }
        // Look for X writes, then Y writes, then X reads the bits both wrote. The best witness
        // is one where X's write sets the bits it later reads (a mark that is set, clobbered,
        // then tested), rather than one where X only cleared them.
        let mut best: Option<(u8, [usize; 3])> = None;
        for (x, y) in [(a, b), (b, a)] {
            for (i, e1) in events.iter().enumerate() {
                if e1.1.owner != x || !is_write(e1.1, field, bits) {
                    continue;
                }
                for (j, e2) in events.iter().enumerate().skip(i + 1) {
                    if e2.1.owner != y || !is_write(e2.1, field, bits) {
                        continue;
                    }
                    let both = e1.1.writes[fi(field)] & e2.1.writes[fi(field)] & bits;
                    let found = events[j + 1..]
                        .iter()
                        .position(|e3| e3.1.owner == x && is_read(e3.1, field, both));
                    if let Some(k) = found {
                        let k = j + 1 + k;
                        let sets = set_bits(e1.1) & events[k].1.reads[fi(field)] & both != 0;
                        let score = if sets { 2 } else { 1 };
                        if best.is_none_or(|(s, _)| score > s) {
                            best = Some((score, [i, j, k]));
                        }
                    }
                }
            }
        }
        if let Some((_, idx)) = best {
            let steps = idx
                .iter()
                .filter_map(|&n| step(cx, events[n].1, events[n].2, field, bits))
                .collect();
            return Meeting::Clobber(PathEvidence {
                path,
                clobber: true,
                steps,
            });
        }
        if shared.is_none() {
            let first = |o: usize| events.iter().find(|e| e.1.owner == o);
            let steps = [first(a), first(b)]
                .into_iter()
                .flatten()
                .filter_map(|e| step(cx, e.1, e.2, field, bits))
                .collect();
            shared = Some(PathEvidence {
                path,
                clobber: false,
                steps,
            });
        }
    }
    match shared {
        Some(p) => Meeting::Shared(p),
        None if unplaced => Meeting::Unplaced,
        None => Meeting::Disjoint,
    }
}
