//! Where two owners' uses of the same bits meet on a packet path.
//!
//! Each use sits in chains reachable from some hooks; a hook has a place on each path
//! (ingress: PREROUTING, INPUT; forward: PREROUTING, FORWARD, POSTROUTING; output: OUTPUT,
//! POSTROUTING) and its base chain a priority, so uses on one path are ordered. The strongest
//! evidence of a collision is a clobber: one owner writes the bits, the other writes them next,
//! and the first reads them after that (Calico's mangle POSTROUTING clearing 0xf0000 between
//! Tailscale's FORWARD mark and its nat POSTROUTING masquerade). Owners whose uses of the bits
//! never share a path overload the bits safely ("different paths").

use serde::Serialize;

use crate::model::{hex, Field, MarkOp};
use crate::packet::PathKind;
use crate::ruleset::{Hook, Ruleset};

use super::findings::Ctx;
use super::usage::{fi, Site, Use};

/// The hooks of each path, in order.
pub(crate) const PATHS: [(PathKind, &[Hook]); 3] = [
    (PathKind::Ingress, &[Hook::Prerouting, Hook::Input]),
    (
        PathKind::Forward,
        &[Hook::Prerouting, Hook::Forward, Hook::Postrouting],
    ),
    (PathKind::Output, &[Hook::Output, Hook::Postrouting]),
];

/// One use on the path shown by a finding.
#[derive(Clone, Debug, Serialize)]
pub struct PathStep {
    /// The hook.
    pub hook: Hook,
    /// `ip mangle`, `inet kube-proxy`…
    pub table: String,
    /// The chain.
    pub chain: String,
    /// Input file.
    pub file: String,
    /// Line.
    pub line: u32,
    /// Owner.
    pub owner: String,
    /// What it does with the bits (`writes 0x00040000`, `reads 0x00040000`).
    pub action: String,
}

/// The path on which a finding's owners meet.
#[derive(Clone, Debug, Serialize)]
pub struct PathEvidence {
    /// `ingress`, `forward` or `output`.
    pub path: PathKind,
    /// True when one owner's write lands between the other's write and its read of the bits.
    pub clobber: bool,
    /// The uses in path order.
    pub steps: Vec<PathStep>,
}

/// The order in which the rules reachable from a hook's base chains run: base chains in
/// priority order, each rule in chain order, a jump's target at the jump (each chain entered
/// once). Iterative, so deep jump graphs cannot overflow the stack; linear in rules.
pub(crate) fn traversal_order(set: &Ruleset, hook: Hook) -> Vec<u32> {
    let mut order = vec![u32::MAX; set.rules.len()];
    let mut entered = vec![false; set.chains.len()];
    let mut bases: Vec<(i32, u32)> = set
        .chains
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            c.base
                .filter(|b| b.hook == hook)
                .map(|b| (b.priority, i as u32))
        })
        .collect();
    bases.sort();
    let mut counter = 0u32;
    for (_, base) in bases {
        walk_base_chain(set, crate::ruleset::ChainId(base), &mut entered, |rule| {
            if order[rule.0 as usize] == u32::MAX {
                order[rule.0 as usize] = counter;
                counter += 1;
            }
        });
    }
    order
}

/// Visits the rules a base chain runs, in order: each rule of a chain in turn, a jump's target
/// (every chain of a verdict map, in map order) at the jump, each chain entered once (`entered`
/// is shared across base chains by callers that walk several). Iterative, so deep jump graphs
/// cannot overflow the stack.
pub(crate) fn walk_base_chain(
    set: &Ruleset,
    base: crate::ruleset::ChainId,
    entered: &mut [bool],
    mut visit: impl FnMut(crate::ruleset::RuleId),
) {
    entered[base.0 as usize] = true;
    let mut stack = vec![(base, 0usize)];
    while let Some((chain, idx)) = stack.last_mut() {
        let Some(rule) = set.chain(*chain).rules.get(*idx).copied() else {
            stack.pop();
            continue;
        };
        *idx += 1;
        visit(rule);
        for to in set.rule(rule).verdict.targets().into_iter().rev() {
            if !entered[to.0 as usize] {
                entered[to.0 as usize] = true;
                stack.push((to, 0));
            }
        }
    }
}

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
