//! The solver: an assignment of bits to every movable unit that changes the fewest settings.
//!
//! **Method: exact enumeration with pruning.** The problem is small (a node runs a dozen
//! mark-using programs, each with zero to three knobs), so the solver tries every set of knobs
//! to change in order of size — none, then each single knob, then each pair, … — and for each
//! set searches assignments by backtracking, checking every candidate against the units already
//! placed. A set is skipped without search when some pair of units that conflict at their
//! defaults has neither member in it (a hitting-set prune). The first set that admits an
//! assignment has the fewest changes, so the minimum is exact; ties are broken by enumeration
//! order (the request's order) and by each knob's candidate order, which prefers values close
//! to the default. A SAT or ILP solver would add a dependency for a search space this pruning
//! keeps to microseconds (`scripts/bench.sh` plans 12 software).
//!
//! Candidates per knob: a **bit** knob tries every other bit, nearest first; a **value** knob
//! tries every single-bit value (a value's bits are what it occupies, so one bit is the least
//! any value can take), the default's own bits first; a **mask** knob is placed after the bits
//! and values and tries the default's bits that are still free, then every run of free bits
//! from the default's size down to its minimum, highest first, then all free bits. With at most
//! one mask knob in play (Calico's is the registry's only allocating mask) this is complete:
//! a mask fits exactly when the free bits hold its minimum (as one run when it must be
//! contiguous), and those candidates include one whenever one exists. With several mask knobs
//! the search is exact over these candidates.
//!
//! **Conflicts.** Two units conflict when they occupy a common bit of the same field in the
//! same network namespace, unless they share an owner (or their owners share bits by design,
//! `cooperates_with`) and already share bits at their defaults.
//!
//! **Infeasibility.** When even changing every movable knob admits no assignment, the solver
//! shrinks the set of units one by one, dropping each unit whose removal leaves the rest still
//! infeasible: what remains is a smallest set (no unit can go) that cannot coexist. It then
//! tries, for each owner in that set, the other value of each on/off setting its claims depend
//! on and each release where one of its claims appears or goes away, and lists those that make
//! the whole request feasible.

use crate::model::hex;
use crate::registry::schema::Namespace;
use crate::registry::Registry;

use super::remap::Move;
use super::types::{
    field_word, slot_parts, Allocation, Conflict, MoveKind, Plan, PlannedSetting, Request, SetKnob,
    SlotBits, Wanted,
};
use super::units::{self, Unit, UnitSet};
use super::version::{Range, Version};

/// Whether units `a` and `b` may not share bits. Units of one owner, or of owners that share
/// bits by design (`cooperates_with`), may keep sharing the bits they already share by default
/// (Tailscale's rules and its socket mark); any other pair must stay apart (kubelet's drop bit
/// and its masquerade bit, kube-proxy's and WireGuard's).
fn rivals(registry: &Registry, a: &Unit, b: &Unit) -> bool {
    let friendly = a.owners.iter().any(|x| b.owners.contains(x))
        || a.owners
            .iter()
            .all(|x| b.owners.iter().all(|y| registry.by_design(x, y)));
    !(friendly && overlap(&a.default, &b.default))
}

fn overlap(a: &[u32; 4], b: &[u32; 4]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

/// A unit's bits when its knob takes `value`.
fn occupancy(u: &Unit, value: u32) -> [u32; 4] {
    match &u.mover {
        Some(m) => {
            let mv = Move::new(m.kind, m.default, value);
            u.default.map(|x| if x == 0 { 0 } else { mv.bits(x) })
        }
        None => u.default,
    }
}

/// The search over one problem.
struct Search<'a> {
    units: &'a [Unit],
    /// Precomputed rivalry, `units.len()²`.
    rival: Vec<bool>,
}

impl<'a> Search<'a> {
    fn new(registry: &'a Registry, units: &'a [Unit]) -> Search<'a> {
        let n = units.len();
        let mut rival = vec![false; n * n];
        for i in 0..n {
            for j in 0..n {
                rival[i * n + j] = i != j && rivals(registry, &units[i], &units[j]);
            }
        }
        Search { units, rival }
    }

    fn rival(&self, i: usize, j: usize) -> bool {
        self.rival[i * self.units.len() + j]
    }

    /// Candidates of unit `i` given what is placed, in order of preference; `with_default`
    /// puts the default first.
    fn candidates(&self, i: usize, placed: &[Option<[u32; 4]>], with_default: bool) -> Vec<u32> {
        let u = &self.units[i];
        let Some(m) = &u.mover else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if with_default {
            out.push(m.default);
        }
        match m.kind {
            MoveKind::Bit => {
                let d = m.default as i64;
                let mut bits: Vec<u32> = (0..32).filter(|b| *b != m.default).collect();
                bits.sort_by_key(|b| ((*b as i64 - d).abs(), *b));
                out.extend(bits);
            }
            MoveKind::Value => {
                let own = (0..32).filter(|b| m.default & (1 << b) != 0);
                let other = (0..32).filter(|b| m.default & (1 << b) == 0);
                out.extend(
                    own.chain(other)
                        .map(|b| 1u32 << b)
                        .filter(|v| *v != m.default),
                );
            }
            MoveKind::Mask => {
                let mut taken = 0u32;
                for (j, p) in placed.iter().enumerate() {
                    if let Some(occ) = p {
                        if self.rival(i, j) {
                            for (d, o) in u.default.iter().zip(occ) {
                                if *d != 0 {
                                    taken |= o;
                                }
                            }
                        }
                    }
                }
                let free = !taken;
                let fits = |c: u32| {
                    c.count_ones() >= m.min_bits && (!m.contiguous || is_run(c)) && c != m.default
                };
                let push = |c: u32, out: &mut Vec<u32>| {
                    if fits(c) && !out.contains(&c) {
                        out.push(c);
                    }
                };
                push(m.default & free, &mut out);
                for len in (m.min_bits.max(1)..=m.default.count_ones().max(m.min_bits)).rev() {
                    for start in (0..=32u32.saturating_sub(len)).rev() {
                        let run = (((1u64 << len) - 1) << start) as u32;
                        if run & !free == 0 {
                            push(run, &mut out);
                        }
                    }
                }
                if !m.contiguous {
                    push(free, &mut out);
                }
            }
        }
        out
    }

    /// Backtracking over `order` (indices of units to assign); `placed` holds the others.
    fn assign(
        &self,
        order: &[usize],
        placed: &mut Vec<Option<[u32; 4]>>,
        values: &mut Vec<(usize, u32)>,
        with_default: bool,
    ) -> bool {
        let Some((&i, rest)) = order.split_first() else {
            return true;
        };
        for c in self.candidates(i, placed, with_default) {
            let occ = occupancy(&self.units[i], c);
            let clash = placed.iter().enumerate().any(|(j, p)| {
                p.as_ref()
                    .is_some_and(|o| self.rival(i, j) && overlap(&occ, o))
            });
            if clash {
                continue;
            }
            placed[i] = Some(occ);
            values.push((i, c));
            if self.assign(rest, placed, values, with_default) {
                return true;
            }
            values.pop();
            placed[i] = None;
        }
        false
    }

    /// Indices of `set` with masks last.
    fn ordered(&self, set: &[usize]) -> Vec<usize> {
        let mut order: Vec<usize> = set.to_vec();
        order.sort_by_key(|&i| {
            self.units[i]
                .mover
                .as_ref()
                .is_some_and(|m| m.kind == MoveKind::Mask)
        });
        order
    }

    /// Values for the units in `change` (all others at their defaults), if any exist.
    fn try_change(&self, change: &[usize], within: &[usize]) -> Option<Vec<(usize, u32)>> {
        let mut placed: Vec<Option<[u32; 4]>> = vec![None; self.units.len()];
        for &i in within {
            if !change.contains(&i) {
                placed[i] = Some(self.units[i].default);
            }
        }
        // Units at their defaults must not clash among themselves.
        for (a, &i) in within.iter().enumerate() {
            for &j in &within[a + 1..] {
                if let (Some(x), Some(y)) = (&placed[i], &placed[j]) {
                    if self.rival(i, j) && overlap(x, y) {
                        return None;
                    }
                }
            }
        }
        let mut values = Vec::new();
        self.assign(&self.ordered(change), &mut placed, &mut values, false)
            .then_some(values)
    }

    /// Whether the units `within` admit any assignment (movable ones free to move).
    fn feasible(&self, within: &[usize]) -> bool {
        let movable: Vec<usize> = within
            .iter()
            .copied()
            .filter(|&i| self.units[i].mover.is_some())
            .collect();
        let mut placed: Vec<Option<[u32; 4]>> = vec![None; self.units.len()];
        for &i in within {
            if self.units[i].mover.is_none() {
                placed[i] = Some(self.units[i].default);
            }
        }
        for (a, &i) in within.iter().enumerate() {
            for &j in &within[a + 1..] {
                if let (Some(x), Some(y)) = (&placed[i], &placed[j]) {
                    if self.rival(i, j) && overlap(x, y) {
                        return false;
                    }
                }
            }
        }
        self.assign(&self.ordered(&movable), &mut placed, &mut Vec::new(), true)
    }

    /// The fewest changes: sets of movable units by size, pruned by the default conflicts.
    fn minimum(&self) -> Option<Vec<(usize, u32)>> {
        let all: Vec<usize> = (0..self.units.len()).collect();
        let movable: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| self.units[i].mover.is_some())
            .collect();
        let mut clashes = Vec::new();
        for i in 0..self.units.len() {
            for j in i + 1..self.units.len() {
                if self.rival(i, j) && overlap(&self.units[i].default, &self.units[j].default) {
                    clashes.push((i, j));
                }
            }
        }
        for k in 0..=movable.len() {
            let mut found = None;
            combinations(movable.len(), k, &mut |pick| {
                let change: Vec<usize> = pick.iter().map(|&p| movable[p]).collect();
                if clashes
                    .iter()
                    .any(|(a, b)| !change.contains(a) && !change.contains(b))
                {
                    return false;
                }
                found = self.try_change(&change, &all);
                found.is_some()
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// A smallest infeasible subset, by deletion.
    fn core(&self) -> Vec<usize> {
        let mut core: Vec<usize> = (0..self.units.len()).collect();
        let mut k = 0;
        while k < core.len() {
            let mut without = core.clone();
            without.remove(k);
            if self.feasible(&without) {
                k += 1;
            } else {
                core = without;
            }
        }
        core
    }
}

/// Whether `x` is one run of set bits.
fn is_run(x: u32) -> bool {
    x != 0 && {
        let shifted = x >> x.trailing_zeros();
        shifted & (shifted.wrapping_add(1)) == 0
    }
}

/// Calls `f` with every `k`-subset of `0..n` in lexicographic order until it returns true.
fn combinations(n: usize, k: usize, f: &mut dyn FnMut(&[usize]) -> bool) -> bool {
    fn go(
        start: usize,
        n: usize,
        k: usize,
        cur: &mut Vec<usize>,
        f: &mut dyn FnMut(&[usize]) -> bool,
    ) -> bool {
        if cur.len() == k {
            return f(cur);
        }
        for i in start..n {
            if n - i < k - cur.len() {
                break;
            }
            cur.push(i);
            if go(i + 1, n, k, cur, f) {
                return true;
            }
            cur.pop();
        }
        false
    }
    go(0, n, k, &mut Vec::with_capacity(k), f)
}

/// Solves the units of `request` into a [`Plan`].
pub fn solve(registry: &Registry, request: &Request, set: &UnitSet) -> Plan {
    let search = Search::new(registry, &set.units);
    let found = search.minimum();
    let values: Vec<Option<u32>> = (0..set.units.len())
        .map(|i| {
            found
                .as_ref()
                .and_then(|v| v.iter().find(|(j, _)| *j == i).map(|(_, c)| *c))
        })
        .collect();
    let allocations: Vec<Allocation> = set
        .units
        .iter()
        .zip(&values)
        .map(|(u, v)| allocation(u, *v))
        .collect();
    let mut settings = Vec::new();
    for (u, v) in set.units.iter().zip(&values) {
        let Some(m) = &u.mover else { continue };
        for (sw, knob) in &m.knobs {
            if let Some(s) = planned_setting(
                registry,
                sw,
                knob,
                m.kind,
                m.default,
                v.unwrap_or(m.default),
            ) {
                settings.push(s);
            }
        }
    }
    let feasible = found.is_some();
    let conflict = (!feasible).then(|| conflict(registry, request, &search));
    Plan {
        software: set.software.clone(),
        feasible,
        changes: settings.iter().filter(|s| s.changed).count(),
        settings,
        allocations,
        hazards: set.hazards.clone(),
        conflict,
        notes: set.notes.clone(),
    }
}

fn allocation(u: &Unit, value: Option<u32>) -> Allocation {
    let planned = value.map_or(u.default, |v| occupancy(u, v));
    Allocation {
        owner: u.owners.join("+"),
        claims: u.claims.clone(),
        knob: u.mover.as_ref().map(|m| {
            m.knobs
                .iter()
                .map(|(s, k)| format!("{s}/{k}"))
                .collect::<Vec<_>>()
                .join(" = ")
        }),
        fixed: u.fixed.clone(),
        bits: (0..4)
            .filter(|&s| u.default[s] | planned[s] != 0)
            .map(|s| {
                let (field, namespace) = slot_parts(s);
                SlotBits {
                    field,
                    namespace,
                    default: u.default[s].into(),
                    planned: planned[s].into(),
                }
            })
            .collect(),
        sources: u.sources.clone(),
    }
}

/// A knob's value as the plan prints it: bit numbers in decimal, masks and values in hex.
pub(crate) fn show(kind: MoveKind, v: u32) -> String {
    match kind {
        MoveKind::Bit => v.to_string(),
        MoveKind::Mask | MoveKind::Value => hex(v),
    }
}

fn planned_setting(
    registry: &Registry,
    sw: &str,
    knob: &str,
    kind: MoveKind,
    default: u32,
    value: u32,
) -> Option<PlannedSetting> {
    let k = registry.get(sw)?.knobs.iter().find(|k| k.id == knob)?;
    Some(PlannedSetting {
        software: sw.to_string(),
        knob: knob.to_string(),
        name: k.name.clone(),
        location: k.location.clone(),
        kind: kind.name(),
        default: show(kind, default),
        value: show(kind, value),
        changed: value != default,
        snippets: k
            .plan
            .set
            .iter()
            .map(|s| super::render::snippet(s, kind, value))
            .collect(),
        source: k.source.clone(),
    })
}

fn conflict(registry: &Registry, request: &Request, search: &Search<'_>) -> Conflict {
    let core = search.core();
    let units: Vec<&Unit> = core.iter().map(|&i| &search.units[i]).collect();
    let mut clashes = Vec::new();
    for (a, u) in units.iter().enumerate() {
        for v in &units[a + 1..] {
            for s in 0..4 {
                let both = u.default[s] & v.default[s];
                if both != 0 && rivals(registry, u, v) {
                    let (field, ns) = slot_parts(s);
                    clashes.push(format!(
                        "{} and {} both need {} of the {} ({} namespace)",
                        u.claims.join(", "),
                        v.claims.join(", "),
                        hex(both),
                        field_word(field),
                        match ns {
                            Namespace::Host => "host",
                            Namespace::Pod => "pod",
                        }
                    ));
                }
            }
        }
    }
    let reason = if clashes.is_empty() {
        format!(
            "{} cannot all fit: every assignment of their movable bits overlaps another owner's",
            units
                .iter()
                .flat_map(|u| u.claims.iter().cloned())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("{}; none of them can move", clashes.join("; "))
    };
    Conflict {
        core: core
            .iter()
            .map(|&i| allocation(&search.units[i], None))
            .collect(),
        reason,
        remedies: remedies(registry, request, &units),
    }
}

/// Settings and versions that make the request feasible, each tried by planning again.
fn remedies(registry: &Registry, request: &Request, core: &[&Unit]) -> Vec<String> {
    let mut owners: Vec<&str> = core
        .iter()
        .flat_map(|u| u.owners.iter().map(String::as_str))
        .filter(|o| request.software.iter().any(|w| w.id == *o))
        .collect();
    owners.sort_unstable();
    owners.dedup();
    let mut out = Vec::new();
    let try_plan = |req: &Request| -> Option<usize> {
        let set = units::build(registry, req).ok()?;
        let search = Search::new(registry, &set.units);
        let found = search.minimum()?;
        Some(
            found
                .iter()
                .filter(|(i, v)| {
                    set.units[*i]
                        .mover
                        .as_ref()
                        .is_some_and(|m| m.default != *v)
                })
                .count(),
        )
    };
    for owner in owners {
        let Some(sw) = registry.get(owner) else {
            continue;
        };
        let core_claims: Vec<&str> = core
            .iter()
            .flat_map(|u| u.claims.iter())
            .filter_map(|c| c.strip_prefix(&format!("{owner}/")))
            .collect();
        // On/off settings the core's claims depend on.
        let mut flips: Vec<(String, String)> = Vec::new();
        for c in sw
            .claims
            .iter()
            .filter(|c| core_claims.contains(&c.id.as_str()))
        {
            for cond in &c.when {
                let (knob, want, negate) = match cond.split_once("!=") {
                    Some((k, v)) => (k.trim(), v.trim(), true),
                    None => match cond.split_once('=') {
                        Some((k, v)) => (k.trim(), v.trim(), false),
                        None => continue,
                    },
                };
                let other = if negate {
                    want.to_string()
                } else {
                    match want {
                        "true" => "false".into(),
                        "false" => "true".into(),
                        _ => continue,
                    }
                };
                if !flips.contains(&(knob.to_string(), other.clone())) {
                    flips.push((knob.to_string(), other));
                }
            }
        }
        for (knob, value) in flips {
            let mut req = request.clone();
            req.settings
                .retain(|s| !(s.software == owner && s.knob == knob));
            req.settings.push(SetKnob {
                software: owner.to_string(),
                knob: knob.clone(),
                value: value.clone(),
            });
            if let Some(n) = try_plan(&req) {
                let name = sw
                    .knobs
                    .iter()
                    .find(|k| k.id == knob)
                    .map_or(knob.as_str(), |k| k.name.as_str());
                out.push(format!(
                    "set {owner} {name} to {value} (--set {owner}.{knob}={value}): a plan exists with {n} change(s)"
                ));
            }
        }
        // Releases where one of its claims appears or goes away.
        let mut versions: Vec<Version> = sw
            .claims
            .iter()
            .filter_map(|c| c.versions.as_deref().and_then(Range::parse))
            .flat_map(|r| r.bounds())
            .collect();
        versions.dedup();
        let current = request
            .software
            .iter()
            .find(|w| w.id == owner)
            .and_then(|w| w.version.clone());
        let mut seen = Vec::new();
        for v in versions {
            if seen.contains(&v) || current.as_ref() == Some(&v) {
                continue;
            }
            seen.push(v.clone());
            let mut req = request.clone();
            for w in &mut req.software {
                if w.id == owner {
                    *w = Wanted {
                        id: owner.to_string(),
                        version: Some(v.clone()),
                    };
                }
            }
            if let Some(n) = try_plan(&req) {
                out.push(format!(
                    "run {owner} {v} ({owner}@{v}): a plan exists with {n} change(s)"
                ));
            }
        }
    }
    out
}
