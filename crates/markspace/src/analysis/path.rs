//! Packet paths through the hooks: the hooks of each path, the order in which a hook's rules
//! run, and [`PathEvidence`], the path a finding shows. Where two owners meet on these paths is
//! in [`super::meeting`].

use serde::Serialize;

use crate::packet::PathKind;
use crate::ruleset::{Hook, Ruleset, Verdict};
use crate::touchpoint::Attach;

/// The hooks of each path, in order.
pub(crate) const PATHS: [(PathKind, &[Hook]); 3] = [
    (PathKind::Ingress, &[Hook::Prerouting, Hook::Input]),
    (
        PathKind::Forward,
        &[Hook::Prerouting, Hook::Forward, Hook::Postrouting],
    ),
    (PathKind::Output, &[Hook::Output, Hook::Postrouting]),
];

/// Where an attach point runs relative to a hook's rules: the hook, and a rank (negative:
/// before every rule of the hook; positive: after them all, lower ranks first). The kernel
/// functions behind each are on [`Attach`].
pub(crate) fn position(a: Attach) -> (Hook, i8) {
    match a {
        Attach::TcIngress => (Hook::Prerouting, -1),
        Attach::SockCreate => (Hook::Output, -1),
        Attach::CgroupSkbIngress => (Hook::Input, 1),
        Attach::CgroupSkbEgress => (Hook::Postrouting, 1),
        Attach::TcEgress => (Hook::Postrouting, 2),
    }
}

/// Whether an attach point runs on a path: where its hook is, except cgroup_skb egress, which
/// runs for packets of local sockets only (not forwarded ones).
pub(crate) fn on_path(a: Attach, path: PathKind) -> bool {
    let (hook, _) = position(a);
    let hooks = PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map_or(&[][..], |(_, h)| *h);
    hooks.contains(&hook) && (a != Attach::CgroupSkbEgress || path == PathKind::Output)
}

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
        let mut enter = |to: crate::ruleset::ChainId| {
            if !entered[to.0 as usize] {
                entered[to.0 as usize] = true;
                stack.push((to, 0));
            }
        };
        // A jump or goto without `targets`' vector: most rules of a large node jump.
        match &set.rule(rule).verdict {
            Verdict::Jump(to) | Verdict::Goto(to) => enter(*to),
            v @ Verdict::Map(_) => v.targets().into_iter().rev().for_each(enter),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_points_sit_around_their_hooks_on_their_paths() {
        use PathKind::{Forward, Ingress, Output};
        let on = |a| {
            [Ingress, Forward, Output]
                .into_iter()
                .filter(|p| on_path(a, *p))
                .collect::<Vec<_>>()
        };
        assert_eq!(on(Attach::TcIngress), [Ingress, Forward]);
        assert_eq!(on(Attach::TcEgress), [Forward, Output]);
        assert_eq!(on(Attach::CgroupSkbIngress), [Ingress]);
        assert_eq!(on(Attach::CgroupSkbEgress), [Output]);
        assert_eq!(on(Attach::SockCreate), [Output]);
        // Before PREROUTING's and OUTPUT's rules; after POSTROUTING's, cgroup before tc.
        assert!(position(Attach::TcIngress).1 < 0 && position(Attach::SockCreate).1 < 0);
        assert!(position(Attach::CgroupSkbEgress).1 > 0);
        assert!(position(Attach::TcEgress).1 > position(Attach::CgroupSkbEgress).1);
    }
}
