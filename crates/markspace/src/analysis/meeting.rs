//! Where two owners' uses of the same bits meet on a packet path ([`super::path`]).
//!
//! Each use sits in chains reachable from some hooks; a hook has a place on each path
//! (ingress: PREROUTING, INPUT; forward: PREROUTING, FORWARD, POSTROUTING; output: OUTPUT,
//! POSTROUTING) and its base chain a priority, so uses on one path are ordered. The strongest
//! evidence of a collision is a clobber: one owner writes the bits, the other writes them next,
//! and the first reads them after that (Calico's mangle POSTROUTING clearing 0xf0000 between
//! Tailscale's FORWARD mark and its nat POSTROUTING masquerade). Owners whose uses of the bits
//! never share a path overload the bits safely ("different paths").

use crate::model::{hex, Field, MarkOp, ALL_BITS};
use crate::ruleset::Hook;

use super::finding::Ctx;
use super::path::{on_path, position, PathEvidence, PathStep, PATHS};
use super::usage::{fi, Site, Use};

/// Ordering key of a use at a hook of a path: the hook's place, the rank of a placed
/// touchpoint around the hook's rules ([`position`]; 0 for rules), the rule's order, the
/// operation.
type Key = (usize, i8, u32, usize);

fn key(cx: &Ctx<'_>, u: &Use, hook_index: usize, hook: Hook, rank: i8) -> Key {
    match u.site {
        Site::Rule(id) => (
            hook_index,
            0,
            cx.order(hook)[id.0 as usize],
            u.op_index as usize,
        ),
        Site::Touchpoint(i) => (hook_index, rank, 0, i as usize),
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
    let action = if is_write(u, field, bits) {
        format!("writes {}", hex(u.writes[fi(field)] & bits))
    } else {
        format!("reads {}", hex(u.reads[fi(field)] & bits))
    };
    let id = match u.site {
        Site::Rule(id) => id,
        // A placed eBPF program: table `bpf`, chain its attach point and program.
        Site::Touchpoint(i) => {
            let tp = &cx.node.touchpoints[i as usize];
            let attach = u.places.iter().find(|a| position(**a).0 == hook)?;
            return Some(PathStep {
                hook,
                table: tp.subsystem.as_str().to_string(),
                chain: match &tp.context.program {
                    Some(p) => format!("{} {p}", attach.as_str()),
                    None => attach.as_str().to_string(),
                },
                file: cx.sources.name(tp.span).to_string(),
                line: tp.span.line,
                owner: cx.usage.owners[u.owner].id.clone(),
                action,
            });
        }
    };
    let rule = cx.set.rule(id);
    let table = cx.set.rule_table(rule);
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

/// One use placed at a hook of a path: its ordering key, the use, the hook.
type Event<'u> = (Key, &'u Use, Hook);

/// The clobber witness among a path's events (in path order), as positions `[i, j, k]`: owner X
/// writes the bits at `i`, owner Y writes some of them at `j`, and X reads bits both wrote at
/// `k`, the first such read after `j`. The best witness is one where X's write sets the bits it
/// later reads (a mark that is set, clobbered, then tested; score 2) rather than one where X
/// only cleared them (score 1); among equals the first in (X = a before X = b, `i`, `j`) order.
///
/// What `i` contributes is its class: the bits it writes and the bits it sets, within `bits`.
/// Two writes of one class give the same witnesses for every later `j`, so only the first write
/// of each class can be the earliest `i`. One backward sweep keeps, per bit, the next read of
/// X, so every Y write is tried against each class in `O(classes × 32)`: linear in events for
/// the handful of masks an owner writes.
fn clobber(
    events: &[Event<'_>],
    a: usize,
    b: usize,
    field: Field,
    bits: u32,
) -> Option<[usize; 3]> {
    let (sets_ab, any_ab) = witnesses(events, a, b, field, bits);
    let (sets_ba, any_ba) = witnesses(events, b, a, field, bits);
    sets_ab.or(sets_ba).or(any_ab).or(any_ba)
}

/// For X = `x` and Y = `y`: the first witness whose write sets the bits read, and the first
/// witness of any kind (see [`clobber`]).
fn witnesses(
    events: &[Event<'_>],
    x: usize,
    y: usize,
    field: Field,
    bits: u32,
) -> (Option<[usize; 3]>, Option<[usize; 3]>) {
    let f = fi(field);
    // The first write of each class (written bits, set bits), in path order.
    let mut seen = std::collections::HashSet::new();
    let mut classes: Vec<(usize, u32, u32)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.1.owner == x && is_write(e.1, field, bits) {
            let w = e.1.writes[f] & bits;
            let s = set_bits(e.1) & w;
            if seen.insert((w, s)) {
                classes.push((i, w, s));
            }
        }
    }
    // Per class, the best (j, k) found so far: the sweep runs backwards, so the last one
    // recorded has the smallest j.
    let mut sets: Vec<Option<(usize, usize)>> = vec![None; classes.len()];
    let mut any: Vec<Option<(usize, usize)>> = vec![None; classes.len()];
    let mut next_read = [usize::MAX; 32];
    for (j, e) in events.iter().enumerate().rev() {
        let u = e.1;
        if u.owner == y && is_write(u, field, bits) {
            let wj = u.writes[f];
            for (c, &(i, w, s)) in classes.iter().enumerate() {
                if i >= j {
                    break;
                }
                let both = w & wj;
                let mut k = usize::MAX;
                let mut rest = both;
                while rest != 0 {
                    k = k.min(next_read[rest.trailing_zeros() as usize]);
                    rest &= rest - 1;
                }
                if k == usize::MAX {
                    continue;
                }
                any[c] = Some((j, k));
                if s & events[k].1.reads[f] & both != 0 {
                    sets[c] = Some((j, k));
                }
            }
        } else if u.owner == x && is_read(u, field, ALL_BITS) {
            let mut rest = u.reads[f];
            while rest != 0 {
                next_read[rest.trailing_zeros() as usize] = j;
                rest &= rest - 1;
            }
        }
    }
    let first = |found: &[Option<(usize, usize)>]| {
        classes
            .iter()
            .zip(found)
            .find_map(|(&(i, _, _), jk)| jk.map(|(j, k)| [i, j, k]))
    };
    (first(&sets), first(&any))
}

#[cfg(test)]
thread_local! {
    /// Set by tests to select witnesses with [`naive_clobber`], the oracle [`clobber`] replaced.
    pub(crate) static NAIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The witness selection as it was first written: every X write, every later Y write, then a
/// scan for X's read (cubic in events). The oracle for [`clobber`].
#[cfg(test)]
fn naive_clobber(
    events: &[Event<'_>],
    a: usize,
    b: usize,
    field: Field,
    bits: u32,
) -> Option<[usize; 3]> {
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
    best.map(|(_, w)| w)
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
        .of(a)
        .chain(cx.usage.of(b))
        .filter(|u| (u.reads[fi(field)] | u.writes[fi(field)]) & bits != 0)
        .collect();
    // Uses with no known hook (touchpoints not placed, rules of truncated inputs) could be
    // anywhere.
    let unplaced = relevant
        .iter()
        .any(|u| u.hooks.is_empty() && u.places.is_empty());
    let mut shared: Option<PathEvidence> = None;
    for (path, hooks) in PATHS {
        let mut events: Vec<Event<'_>> = Vec::new();
        for u in &relevant {
            for (i, h) in hooks.iter().enumerate() {
                if u.hooks.contains(*h) {
                    events.push((key(cx, u, i, *h, 0), u, *h));
                }
                for &a in &u.places {
                    let (at, rank) = position(a);
                    if at == *h && on_path(a, path) {
                        events.push((key(cx, u, i, *h, rank), u, *h));
                    }
                }
            }
        }
        events.sort_by_key(|e| e.0);
        let has = |o: usize| events.iter().any(|e| e.1.owner == o);
        if !(has(a) && has(b)) {
            continue;
        }
        let best = clobber(&events, a, b, field, bits);
        #[cfg(test)]
        let best = if NAIVE.get() {
            naive_clobber(&events, a, b, field, bits)
        } else {
            best
        };
        if let Some(idx) = best {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MarkRead, MarkWrite};
    use crate::ruleset::{HookSet, RuleId};

    /// A pseudo-random path of two owners' writes (setting and clearing bits) and reads over
    /// four bits, so that witnesses of both scores and of both directions occur.
    fn uses(seed: u64, n: usize) -> Vec<Use> {
        let mut x = seed;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        (0..n)
            .map(|i| {
                let bits = (1 + next(15) as u32) << 4;
                let op = match next(3) {
                    0 => MarkOp::Write(MarkWrite::set_xmark(Field::Mark, bits, bits)),
                    1 => MarkOp::Write(MarkWrite::set_xmark(Field::Mark, 0, bits)),
                    _ => MarkOp::Read(MarkRead::equals(Field::Mark, bits, bits, false)),
                };
                let (reads, writes) = match op {
                    MarkOp::Read(_) => ([bits, 0], [0, 0]),
                    MarkOp::Write(_) => ([0, 0], [bits, 0]),
                };
                Use {
                    site: Site::Rule(RuleId(i as u32)),
                    op_index: 0,
                    op,
                    owner: next(2) as usize,
                    hooks: HookSet::EMPTY,
                    places: Default::default(),
                    reads,
                    writes,
                }
            })
            .collect()
    }

    #[test]
    fn clobber_matches_the_naive_scan() {
        let mut found = [0usize; 2];
        for seed in 0..400u64 {
            let uses = uses(seed, 2 + (seed % 40) as usize);
            let events: Vec<Event<'_>> = uses
                .iter()
                .enumerate()
                .map(|(i, u)| ((0, 0, i as u32, 0), u, Hook::Forward))
                .collect();
            for bits in [0xf0, 0x30, 0x80] {
                let fast = clobber(&events, 0, 1, Field::Mark, bits);
                let naive = naive_clobber(&events, 0, 1, Field::Mark, bits);
                assert_eq!(fast, naive, "seed {seed}, bits {bits:#x}");
                if let Some([i, _, k]) = fast {
                    let sets = set_bits(events[i].1) & events[k].1.reads[0] & bits != 0;
                    found[usize::from(sets)] += 1;
                }
            }
        }
        assert!(
            found[0] > 20 && found[1] > 20,
            "the paths do not exercise both kinds of witness: {found:?}"
        );
    }
}
