//! Where two owners' uses of the same bits meet on a packet path ([`super::path`]).
//!
//! Each use sits in chains reachable from some hooks; a hook has a place on each path
//! (ingress: PREROUTING, INPUT; forward: PREROUTING, FORWARD, POSTROUTING; output: OUTPUT,
//! POSTROUTING) and its base chain a priority, so uses on one path are ordered. The strongest
//! evidence of a collision is a clobber: one owner writes the bits, the other writes them next,
//! and the first reads them after that (Calico's mangle POSTROUTING clearing 0xf0000 between
//! Tailscale's FORWARD mark and its nat POSTROUTING masquerade). Owners whose uses of the bits
//! never share a path overload the bits safely ("different paths").

use crate::model::{hex, Field};
use crate::ruleset::Hook;

use super::derived::{Event, Key, PathEvents};
use super::finding::Ctx;
use super::path::{on_path, position, PathEvidence, PathStep, PATHS};
use super::usage::{fi, Site, Use};

fn key(cx: &Ctx<'_>, u: &Use, hook_index: usize, hook: Hook, rank: i8) -> Key {
    // A path has at most three hooks.
    let hook_index = hook_index as u8;
    match u.site {
        Site::Rule(id) => (hook_index, 0, cx.order(hook)[id.0 as usize], u.op_index),
        Site::Touchpoint(i) => (hook_index, rank, 0, i),
    }
}

fn step(cx: &Ctx<'_>, e: &Event, field: Field, bits: u32) -> Option<PathStep> {
    let (u, hook) = (&cx.usage.uses[e.use_index as usize], e.hook);
    let action = if e.writes[fi(field)] & bits != 0 {
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
fn clobber(events: &[Event], a: usize, b: usize, field: Field, bits: u32) -> Option<[usize; 3]> {
    let (sets_ab, any_ab) = witnesses(events, a, b, field, bits);
    let (sets_ba, any_ba) = witnesses(events, b, a, field, bits);
    sets_ab.or(sets_ba).or(any_ab).or(any_ba)
}

/// For X = `x` and Y = `y`: the first witness whose write sets the bits read, and the first
/// witness of any kind (see [`clobber`]).
fn witnesses(
    events: &[Event],
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
        if e.is_of(x) && e.writes[f] & bits != 0 {
            let w = e.writes[f] & bits;
            let s = e.sets & w;
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
        if e.is_of(y) && e.writes[f] & bits != 0 {
            let wj = e.writes[f];
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
                if s & events[k].reads[f] & both != 0 {
                    sets[c] = Some((j, k));
                }
            }
        } else if e.is_of(x) && e.reads[f] != 0 {
            let mut rest = e.reads[f];
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
    /// Set by tests to select witnesses with [`naive_clobber`] and path events with
    /// [`sorted_events`], the oracles of [`clobber`] and [`merged_events`].
    pub(crate) static NAIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The witness selection as it was first written: every X write, every later Y write, then a
/// scan for X's read (cubic in events). The oracle for [`clobber`].
#[cfg(test)]
fn naive_clobber(
    events: &[Event],
    a: usize,
    b: usize,
    field: Field,
    bits: u32,
) -> Option<[usize; 3]> {
    let mut best: Option<(u8, [usize; 3])> = None;
    for (x, y) in [(a, b), (b, a)] {
        for (i, e1) in events.iter().enumerate() {
            if !e1.is_of(x) || e1.writes[fi(field)] & bits == 0 {
                continue;
            }
            for (j, e2) in events.iter().enumerate().skip(i + 1) {
                if !e2.is_of(y) || e2.writes[fi(field)] & bits == 0 {
                    continue;
                }
                let both = e1.writes[fi(field)] & e2.writes[fi(field)] & bits;
                let found = events[j + 1..]
                    .iter()
                    .position(|e3| e3.is_of(x) && e3.reads[fi(field)] & both != 0);
                if let Some(k) = found {
                    let k = j + 1 + k;
                    let sets = e1.sets & events[k].reads[fi(field)] & both != 0;
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

/// Every owner's uses in path order, once per analysis: a meeting of two owners then merges
/// two ordered lists instead of sorting both owners' uses for every pair, field and bit group
/// (that sort made the meetings the one pass of the analysis that grew faster than the node).
///
/// The order is that of a stable sort by [`key`] of each owner's events listed use by use (a
/// use's rule hook before its attach points), i.e. by (key, use index). Rule events, nearly
/// all of them, come out in that order without sorting: the rules at each hook are walked in
/// traversal order (the inverse of [`Ctx::order`]) and each rule's uses taken in turn (a
/// rule's uses are consecutive and in operation order: [`super::usage::Usage::uses`]).
/// The rest are few; they are sorted and merged in by [`owner_path_events`].
fn path_events<'s>(cx: &'s Ctx<'_>) -> &'s PathEvents {
    cx.path_events.get_or_init(|| {
        let usage = cx.usage;
        let owners = usage.owners.len();
        // Per rule, the range of its uses.
        let mut of_rule = vec![0u32..0u32; cx.set.rules.len()];
        for (k, u) in usage.uses.iter().enumerate() {
            if let Site::Rule(id) = u.site {
                let range = &mut of_rule[id.0 as usize];
                if range.start == range.end {
                    *range = k as u32..k as u32;
                }
                debug_assert_eq!(range.end as usize, k, "a rule's uses are not consecutive");
                range.end += 1;
            }
        }
        let mut walked: [Vec<Vec<u32>>; 7] = Default::default();
        for h in Hook::ALL.into_iter().filter(|h| on_some_path(*h)) {
            // The traversal numbers the rules it reaches 0, 1, 2…: invert it.
            let order = cx.order(h);
            let reached = order.iter().filter(|&&o| o != u32::MAX).count();
            let mut by_order = vec![0u32; reached];
            for (r, &o) in order.iter().enumerate() {
                if o != u32::MAX {
                    by_order[o as usize] = r as u32;
                }
            }
            let mut per_owner: Vec<Vec<u32>> = vec![Vec::new(); owners];
            for r in by_order {
                for k in of_rule[r as usize].clone() {
                    let u = &usage.uses[k as usize];
                    if u.hooks.contains(h) {
                        per_owner[u.owner].push(k);
                    }
                }
            }
            walked[h as usize] = per_owner;
        }
        let in_walk = |u: &Use, h: Hook| match u.site {
            Site::Rule(id) => cx.order(h)[id.0 as usize] != u32::MAX,
            Site::Touchpoint(_) => false,
        };
        let mut aside: Vec<[Vec<Event>; PATHS.len()]> = vec![Default::default(); owners];
        for (k, u) in usage.uses.iter().enumerate() {
            if u.places.is_empty() && u.hooks.iter().all(|h| !on_some_path(h) || in_walk(u, h)) {
                continue;
            }
            for (p, (path, hooks)) in PATHS.iter().enumerate() {
                for (i, h) in hooks.iter().enumerate() {
                    let k = k as u32;
                    if u.hooks.contains(*h) && !in_walk(u, *h) {
                        aside[u.owner][p].push(Event::new(key(cx, u, i, *h, 0), k, u, *h));
                    }
                    for &a in &u.places {
                        let (at, rank) = position(a);
                        if at == *h && on_path(a, *path) {
                            let key = key(cx, u, i, *h, rank);
                            aside[u.owner][p].push(Event::new(key, k, u, *h));
                        }
                    }
                }
            }
        }
        for lists in &mut aside {
            for list in lists {
                list.sort_by_key(|e| (e.key, e.use_index));
            }
        }
        PathEvents { walked, aside }
    })
}

/// Owner `o`'s events on path `p` whose uses pass `keep`, in path order: (key, use index).
fn owner_path_events(cx: &Ctx<'_>, o: usize, p: usize, keep: impl Fn(&Use) -> bool) -> Vec<Event> {
    let all = path_events(cx);
    let mut walked = Vec::new();
    for (i, h) in PATHS[p].1.iter().enumerate() {
        for &k in &all.walked[*h as usize][o] {
            let u = &cx.usage.uses[k as usize];
            if keep(u) {
                walked.push(Event::new(key(cx, u, i, *h, 0), k, u, *h));
            }
        }
    }
    let aside = &all.aside[o][p];
    if aside.is_empty() {
        return walked;
    }
    let uses = &cx.usage.uses;
    merge(
        &walked,
        aside.iter().filter(|e| keep(&uses[e.use_index as usize])),
        |x, y| (y.key, y.use_index) < (x.key, x.use_index),
    )
}

/// Whether a use reads or writes any of `bits` of `field`.
fn touches(u: &Use, field: Field, bits: u32) -> bool {
    (u.reads[fi(field)] | u.writes[fi(field)]) & bits != 0
}

/// Whether a hook is on some packet path of [`PATHS`].
fn on_some_path(h: Hook) -> bool {
    PATHS.iter().any(|(_, hooks)| hooks.contains(&h))
}

/// Merges two lists ordered alike, taking from `xs` unless `y_first(x, y)`.
fn merge<'e>(
    xs: impl IntoIterator<Item = &'e Event>,
    ys: impl IntoIterator<Item = &'e Event>,
    y_first: impl Fn(&Event, &Event) -> bool,
) -> Vec<Event> {
    let mut xs = xs.into_iter().peekable();
    let mut ys = ys.into_iter().peekable();
    let mut out = Vec::new();
    loop {
        let next = match (xs.peek(), ys.peek()) {
            (Some(x), Some(y)) if y_first(x, y) => ys.next(),
            (Some(_), _) => xs.next(),
            (None, _) => ys.next(),
        };
        match next {
            Some(e) => out.push(*e),
            None => return out,
        }
    }
}

/// The events of owners `a` and `b` on path `p` whose uses touch `bits` of `field`, in path
/// order: the merge of the two owners' sorted lists, `a`'s first on equal keys (the order a
/// stable sort of `a`'s events followed by `b`'s gives).
fn merged_events(
    cx: &Ctx<'_>,
    a: usize,
    b: usize,
    p: usize,
    field: Field,
    bits: u32,
) -> Vec<Event> {
    let touches = |u: &Use| touches(u, field, bits);
    #[cfg(test)]
    if NAIVE.get() {
        return sorted_events(cx, [a, b], PATHS[p], touches);
    }
    merge(
        &owner_path_events(cx, a, p, touches),
        &owner_path_events(cx, b, p, touches),
        |x, y| y.key < x.key,
    )
}

/// The events as they were first listed: both owners' uses touching the bits, each use's
/// rule hook then attach points, stably sorted by [`key`]. The oracle for [`merged_events`].
#[cfg(test)]
fn sorted_events(
    cx: &Ctx<'_>,
    [a, b]: [usize; 2],
    (path, hooks): (crate::packet::PathKind, &[Hook]),
    touches_bits: impl Fn(&Use) -> bool,
) -> Vec<Event> {
    let usage = cx.usage;
    let mut events = Vec::new();
    for &k in usage.by_owner[a].iter().chain(&usage.by_owner[b]) {
        let u = &usage.uses[k as usize];
        if !touches_bits(u) {
            continue;
        }
        for (i, h) in hooks.iter().enumerate() {
            if u.hooks.contains(*h) {
                events.push(Event::new(key(cx, u, i, *h, 0), k, u, *h));
            }
            for &at in &u.places {
                let (hook, rank) = position(at);
                if hook == *h && on_path(at, path) {
                    events.push(Event::new(key(cx, u, i, *h, rank), k, u, *h));
                }
            }
        }
    }
    events.sort_by_key(|e| e.key);
    events
}

/// How owners `a` and `b` meet on `bits` of `field`.
pub(crate) fn meeting(cx: &Ctx<'_>, a: usize, b: usize, field: Field, bits: u32) -> Meeting {
    // Uses with no known hook (touchpoints not placed, rules of truncated inputs) could be
    // anywhere.
    let unplaced = cx
        .usage
        .of(a)
        .chain(cx.usage.of(b))
        .any(|u| touches(u, field, bits) && u.hooks.is_empty() && u.places.is_empty());
    let mut shared: Option<PathEvidence> = None;
    for (p, (path, _)) in PATHS.iter().enumerate() {
        let path = *path;
        let events = merged_events(cx, a, b, p, field, bits);
        let has = |o: usize| events.iter().any(|e| e.is_of(o));
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
                .filter_map(|&n| step(cx, &events[n], field, bits))
                .collect();
            return Meeting::Clobber(PathEvidence {
                path,
                clobber: true,
                steps,
            });
        }
        if shared.is_none() {
            let first = |o: usize| events.iter().find(|e| e.is_of(o));
            let steps = [first(a), first(b)]
                .into_iter()
                .flatten()
                .filter_map(|e| step(cx, e, field, bits))
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
    use crate::model::{MarkOp, MarkRead, MarkWrite};
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
            let events: Vec<Event> = uses
                .iter()
                .enumerate()
                .map(|(i, u)| Event::new((0, 0, i as u32, 0), i as u32, u, Hook::Forward))
                .collect();
            for bits in [0xf0, 0x30, 0x80] {
                let fast = clobber(&events, 0, 1, Field::Mark, bits);
                let naive = naive_clobber(&events, 0, 1, Field::Mark, bits);
                assert_eq!(fast, naive, "seed {seed}, bits {bits:#x}");
                if let Some([i, _, k]) = fast {
                    let sets = events[i].sets & events[k].reads[0] & bits != 0;
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
