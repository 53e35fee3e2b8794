//! Packet paths through the hooks: the hooks of each path, the order in which a hook's rules
//! run, and [`PathEvidence`], the path a finding shows. Where two owners meet on these paths is
//! in [`super::meeting`].

use serde::Serialize;

use crate::packet::PathKind;
use crate::ruleset::{Hook, Ruleset};

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
