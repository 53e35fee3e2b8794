//! Who reads and writes which bits: every mark operation of every rule that can run, attributed.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use serde::Serialize;

use crate::model::{CopySource, Field, MarkOp, Node};
use crate::registry::{Found, Pattern, Registry, UNKNOWN};
use crate::ruleset::{HookSet, RuleId};
use crate::touchpoint::{attach_lines, placements, Attach, AttachLines, Subsystem, Touchpoint};

/// Where a mark operation sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// A netfilter rule.
    Rule(RuleId),
    /// A touchpoint outside netfilter (index into `Node::touchpoints`).
    Touchpoint(u32),
}

/// One mark operation of one rule or touchpoint, attributed.
#[derive(Clone, Debug)]
pub struct Use {
    /// Where it sits.
    pub site: Site,
    /// Index of the operation in the rule.
    pub op_index: u32,
    /// The operation.
    pub op: MarkOp,
    /// Index of the owner in [`Usage::owners`].
    pub owner: usize,
    /// The hooks the rule runs in (empty for rules of incomplete tables whose jumps are missing,
    /// and for touchpoints).
    pub hooks: HookSet,
    /// Where a touchpoint runs on the packet paths ([`super::path::position`]); empty when
    /// unknown (it may run anywhere) and for rules.
    pub places: Places,
    /// Bits read, per field (`[mark, ctmark]`).
    pub reads: [u32; 2],
    /// Bits written, per field.
    pub writes: [u32; 2],
}

/// Where a touchpoint runs: each attach point at most once, in the order found. Inline (six
/// bytes, no allocation): every use has one, and a large node has hundreds of thousands of
/// uses, all of rules, whose places are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Places {
    len: u8,
    items: [Attach; 5],
}

impl Default for Places {
    fn default() -> Self {
        Places {
            len: 0,
            items: [Attach::TcIngress; 5],
        }
    }
}

impl Places {
    /// Adds an attach point unless it is there already.
    pub fn insert(&mut self, a: Attach) {
        if !self.contains(&a) {
            // Five attach points: never more than five distinct ones.
            if let Some(slot) = self.items.get_mut(self.len as usize) {
                *slot = a;
                self.len += 1;
            }
        }
    }
}

impl std::ops::Deref for Places {
    type Target = [Attach];

    fn deref(&self) -> &[Attach] {
        &self.items[..self.len as usize]
    }
}

impl<'a> IntoIterator for &'a Places {
    type Item = &'a Attach;
    type IntoIter = std::slice::Iter<'a, Attach>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// An owner seen on the node.
#[derive(Clone, Debug, Serialize)]
pub struct Owner {
    /// Registry id or `unknown`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Bits read per field (`[mark, ctmark]`).
    #[serde(skip)]
    pub reads: [u32; 2],
    /// Bits written per field.
    #[serde(skip)]
    pub writes: [u32; 2],
    /// Bits the registry says it uses, per field.
    #[serde(skip)]
    pub claimed: [u32; 2],
    /// Number of rules with mark operations.
    pub rules: usize,
    /// How its rules were recognised: signature kind and pattern, with counts.
    #[serde(skip)]
    pub recognised_by: BTreeMap<String, usize>,
}

impl Owner {
    /// Bits read or written in a field.
    pub fn used(&self, field: Field) -> u32 {
        self.reads[field as usize] | self.writes[field as usize]
    }
}

/// The attributed uses of a node.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Owners, sorted by id with `unknown` last.
    pub owners: Vec<Owner>,
    /// All uses, in rule order.
    pub uses: Vec<Use>,
    /// Per owner (by index), the indices of its uses in `uses`, in rule order: the checks ask
    /// for one owner's uses per owner pair, and filtering all uses each time would be
    /// quadratic in owners times uses.
    pub(crate) by_owner: Vec<Vec<u32>>,
    /// Per owner, per field, the bits of [`Self::masked_writes`] and [`Self::masked_reads`]:
    /// `[[writes; 2], [reads; 2]]`, found while the uses are numbered (the checks ask for them
    /// per owner and field, and each asking scanned all of that owner's uses).
    pub(crate) masked: Vec<[[u32; 2]; 2]>,
    /// Rules with mark operations that can never run (in no chain reachable from a hook of a
    /// complete table).
    pub unreachable: Vec<RuleId>,
}

impl Use {
    /// Whether it is a write that replaces all 32 bits of its field.
    pub fn is_whole_write(&self) -> bool {
        matches!(self.op, MarkOp::Write(w) if w.is_whole())
    }
}

impl Usage {
    /// An owner's uses, in rule order.
    pub(crate) fn of(&self, owner: usize) -> impl Iterator<Item = &Use> + '_ {
        self.by_owner
            .get(owner)
            .into_iter()
            .flatten()
            .map(|&i| &self.uses[i as usize])
    }

    /// The bits an owner writes in a field with masked writes (whole writes are reported on
    /// their own).
    pub(crate) fn masked_writes(&self, owner: usize, field: Field) -> u32 {
        self.masked.get(owner).map_or(0, |m| m[0][fi(field)])
    }

    /// The bits an owner reads in a field, except by whole-field matches and as the source of
    /// whole copies (reported on their own: MS005, MS003/MS004; counting them here would
    /// repeat those findings).
    pub(crate) fn masked_reads(&self, owner: usize, field: Field) -> u32 {
        self.masked.get(owner).map_or(0, |m| m[1][fi(field)])
    }

    /// [`Self::masked_writes`] by a scan of the owner's uses, as it was before
    /// [`Self::masked`]: the reference of `oracle_tests`.
    #[cfg(test)]
    pub(crate) fn masked_writes_scan(&self, owner: usize, field: Field) -> u32 {
        self.of(owner)
            .filter(|u| !u.is_whole_write())
            .fold(0, |acc, u| acc | u.writes[fi(field)])
    }

    /// [`Self::masked_reads`] by a scan of the owner's uses ([`Self::masked_writes_scan`]).
    #[cfg(test)]
    pub(crate) fn masked_reads_scan(&self, owner: usize, field: Field) -> u32 {
        self.of(owner).fold(0, |acc, u| {
            let whole_read =
                matches!(u.op, MarkOp::Read(r) if r.is_whole_equality()) || u.is_whole_write();
            if whole_read {
                acc
            } else {
                acc | u.reads[fi(field)]
            }
        })
    }
}

/// Field index for per-field arrays.
pub(crate) fn fi(field: Field) -> usize {
    field as usize
}

fn src_field(src: CopySource) -> Option<Field> {
    match src {
        CopySource::Mark => Some(Field::Mark),
        CopySource::CtMark => Some(Field::CtMark),
        CopySource::Socket => None,
    }
}

/// Collects and attributes every mark operation of rules and touchpoints.
///
/// Each rule's owner is found without an allocation ([`Registry::rule_hit`]): its uses are
/// pushed with the registry index of the owner (a slot; the last slot is `unknown`), and the
/// slots are renumbered into [`Usage::owners`] order once every rule has been seen. Signature
/// counts are kept by the match's own parts and formatted once per distinct pattern.
pub(crate) fn collect(node: &Node, registry: &Registry) -> Usage {
    let set = &node.ruleset;
    let software = &registry.software;
    let unknown = software.len();
    let mut usage = Usage::default();
    let mut scratch = crate::registry::RuleScratch::default();
    // Per slot: rules, bits read and written.
    let mut rules = vec![0usize; unknown + 1];
    let mut reads = vec![[0u32; 2]; unknown + 1];
    let mut writes = vec![[0u32; 2]; unknown + 1];
    let mut recognised = Recognised::default();
    let attached = attach_lines(&node.observations);
    for (i, rule) in set.rules.iter().enumerate() {
        let ops = rule.ops();
        if ops.is_empty() {
            continue;
        }
        let id = RuleId(i as u32);
        if set.is_duplicate(rule) {
            continue;
        }
        if !set.rule_may_run(rule) {
            usage.unreachable.push(id);
            continue;
        }
        let found = registry.rule_hit(set, id, node.sources.text(rule.span), &mut scratch);
        let slot = found.as_ref().map_or(unknown, |f| f.0);
        recognised.count(slot, found);
        rules[slot] += 1;
        push_uses(
            &mut usage.uses,
            Site::Rule(id),
            ops,
            slot,
            set.chain(rule.chain).hooks,
            Places::default(),
            (&mut reads[slot], &mut writes[slot]),
        );
    }
    for (i, tp) in node.touchpoints.iter().enumerate() {
        if tp.ops.is_empty() {
            continue;
        }
        let values = crate::model::constant_values(&tp.ops);
        let found = registry.touchpoint_hit(tp.subsystem, &tp.context, &values);
        let slot = found.as_ref().map_or(unknown, |f| f.0);
        recognised.count(slot, found);
        rules[slot] += 1;
        push_uses(
            &mut usage.uses,
            Site::Touchpoint(i as u32),
            &tp.ops,
            slot,
            HookSet::EMPTY,
            places(tp, &attached),
            (&mut reads[slot], &mut writes[slot]),
        );
    }
    // Owners sorted by id, unknown last, so indices are stable in reports; entries with the
    // same id (none in a validated registry) are one owner, as they were when owners were
    // found by their id.
    let id_of = |slot: usize| software.get(slot).map_or(UNKNOWN, |s| s.id.as_str());
    let mut ids: Vec<&str> = (0..=unknown)
        .filter(|&s| rules[s] > 0)
        .map(id_of)
        .collect::<FxHashSet<&str>>()
        .into_iter()
        .collect();
    ids.sort_by_key(|id| (*id == UNKNOWN, *id));
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    for id in ids {
        let sw = registry.get(id);
        index.insert(id, usage.owners.len());
        usage.owners.push(Owner {
            id: id.to_string(),
            name: sw.map_or_else(|| "unrecognised rules".to_string(), |s| s.name.clone()),
            reads: [0; 2],
            writes: [0; 2],
            claimed: sw.map_or([0; 2], |s| {
                [s.claimed(Field::Mark), s.claimed(Field::CtMark)]
            }),
            rules: 0,
            recognised_by: BTreeMap::new(),
        });
    }
    let owner_of: Vec<usize> = (0..=unknown)
        .map(|s| {
            if rules[s] == 0 {
                return usize::MAX;
            }
            let o = index[id_of(s)];
            let owner = &mut usage.owners[o];
            owner.rules += rules[s];
            for f in 0..2 {
                owner.reads[f] |= reads[s][f];
                owner.writes[f] |= writes[s][f];
            }
            o
        })
        .collect();
    usage.by_owner = vec![Vec::new(); usage.owners.len()];
    usage.masked = vec![[[0; 2]; 2]; usage.owners.len()];
    for (k, u) in usage.uses.iter_mut().enumerate() {
        u.owner = owner_of[u.owner];
        usage.by_owner[u.owner].push(k as u32);
        // Whole writes and whole-field matches are reported on their own (MS003/MS004/MS005).
        let whole_write = u.is_whole_write();
        let whole_read = whole_write || matches!(u.op, MarkOp::Read(r) if r.is_whole_equality());
        let [writes, reads] = &mut usage.masked[u.owner];
        if !whole_write {
            *writes = [writes[0] | u.writes[0], writes[1] | u.writes[1]];
        }
        if !whole_read {
            *reads = [reads[0] | u.reads[0], reads[1] | u.reads[1]];
        }
    }
    for ((slot, signature, pattern), n) in recognised.finish() {
        let key = if signature == "none" {
            "no signature".to_string()
        } else {
            format!("{signature} {pattern}")
        };
        *usage.owners[owner_of[slot]]
            .recognised_by
            .entry(key)
            .or_default() += n;
    }
    usage
}

/// Signature counts per owner slot, signature and pattern.
#[derive(Default)]
struct Recognised<'p> {
    counts: FxHashMap<(usize, &'static str, Pattern<'p>), usize>,
    /// The key of the last rule and how many rules in a row had it: neighbouring rules are
    /// mostly recognised alike (a Calico policy chain by its comment prefix), and comparing
    /// with the last key (the same pointers, usually) is cheaper than hashing it.
    last: Option<((usize, &'static str, Pattern<'p>), usize)>,
}

impl<'p> Recognised<'p> {
    /// Counts one attribution's signature and pattern for its owner's slot.
    fn count(&mut self, slot: usize, found: Option<Found<'p>>) {
        let (signature, pattern) = found.map_or(("none", Pattern::Str("")), |(_, s, p)| (s, p));
        let key = (slot, signature, pattern);
        match &mut self.last {
            Some((last, n))
                if last.0 == slot && same(last.1, signature) && last.2.same(&pattern) =>
            {
                *n += 1
            }
            _ => {
                if let Some((last, n)) = self.last.replace((key, 1)) {
                    *self.counts.entry(last).or_default() += n;
                }
            }
        }
    }

    /// The counts, the last run included.
    fn finish(mut self) -> FxHashMap<(usize, &'static str, Pattern<'p>), usize> {
        if let Some((last, n)) = self.last.take() {
            *self.counts.entry(last).or_default() += n;
        }
        self.counts
    }
}

/// Two strings equal, compared by pointer first.
fn same(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// Pushes the uses of one rule or touchpoint, owned by `owner` (a slot until renumbered), and
/// adds their bits to the owner's.
fn push_uses(
    uses: &mut Vec<Use>,
    site: Site,
    ops: &[MarkOp],
    owner: usize,
    hooks: HookSet,
    places: Places,
    (owner_reads, owner_writes): (&mut [u32; 2], &mut [u32; 2]),
) {
    for (k, op) in ops.iter().enumerate() {
        let mut reads = [0u32; 2];
        let mut writes = [0u32; 2];
        match op {
            MarkOp::Read(r) => reads[fi(r.field)] |= r.bits(),
            MarkOp::Write(w) => {
                writes[fi(w.field)] |= w.bits();
                if let Some((src, mask)) = w.source_read() {
                    if let Some(f) = src_field(src) {
                        reads[fi(f)] |= mask;
                    }
                }
            }
        }
        for f in 0..2 {
            owner_reads[f] |= reads[f];
            owner_writes[f] |= writes[f];
        }
        uses.push(Use {
            site,
            op_index: k as u32,
            op: *op,
            owner,
            hooks,
            places,
            reads,
            writes,
        });
    }
}

/// Where a touchpoint runs ([`crate::touchpoint::placements`]); empty (anywhere) when unknown
/// and for subsystems other than eBPF.
fn places(tp: &Touchpoint, lines: &AttachLines<'_>) -> Places {
    let mut out = Places::default();
    if tp.subsystem != Subsystem::Bpf {
        return out;
    }
    for (a, _) in placements(tp.context.attach, tp.context.program.as_deref(), lines) {
        out.insert(a);
    }
    out
}
