//! Who reads and writes which bits: every mark operation of every rule that can run, attributed.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use serde::Serialize;

use crate::model::{CopySource, Field, MarkOp, Node};
use crate::registry::{Attribution, Registry, UNKNOWN};
use crate::ruleset::{HookSet, RuleId};
use crate::touchpoint::{attach_lines, placements, Attach, AttachLines, Subsystem, Touchpoint};

/// Where a mark operation sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// A netfilter rule.
    Rule(RuleId),
    /// A touchpoint outside netfilter (index into `Node::touchpoints`).
    Touchpoint(usize),
}

/// One mark operation of one rule or touchpoint, attributed.
#[derive(Clone, Debug)]
pub struct Use {
    /// Where it sits.
    pub site: Site,
    /// Index of the operation in the rule.
    pub op_index: usize,
    /// The operation.
    pub op: MarkOp,
    /// Index of the owner in [`Usage::owners`].
    pub owner: usize,
    /// The hooks the rule runs in (empty for rules of incomplete tables whose jumps are missing,
    /// and for touchpoints).
    pub hooks: HookSet,
    /// Where a touchpoint runs on the packet paths ([`super::path::position`]); empty when
    /// unknown (it may run anywhere) and for rules.
    pub places: Vec<Attach>,
    /// Bits read, per field (`[mark, ctmark]`).
    pub reads: [u32; 2],
    /// Bits written, per field.
    pub writes: [u32; 2],
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
        self.of(owner)
            .filter(|u| !u.is_whole_write())
            .fold(0, |acc, u| acc | u.writes[fi(field)])
    }

    /// The bits an owner reads in a field, except by whole-field matches and as the source of
    /// whole copies (reported on their own: MS005, MS003/MS004; counting them here would
    /// repeat those findings).
    pub(crate) fn masked_reads(&self, owner: usize, field: Field) -> u32 {
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
pub(crate) fn collect(node: &Node, registry: &Registry) -> Usage {
    let set = &node.ruleset;
    let mut usage = Usage::default();
    let mut attributions: Vec<(Site, Attribution)> = Vec::new();
    for (i, rule) in set.rules.iter().enumerate() {
        if rule.ops().is_empty() {
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
        attributions.push((
            Site::Rule(id),
            registry.attribute_rule(set, id, node.sources.text(rule.span)),
        ));
    }
    for (i, tp) in node.touchpoints.iter().enumerate() {
        if tp.ops.is_empty() {
            continue;
        }
        let values = crate::model::constant_values(&tp.ops);
        attributions.push((
            Site::Touchpoint(i),
            registry.attribute_touchpoint(tp.subsystem, &tp.context, &values),
        ));
    }
    // Owners sorted by id, unknown last, so indices are stable in reports. The few distinct
    // ids are found by hashing before they are sorted (sorting every rule's id compared
    // strings n log n times), and looked up by hash.
    let mut ids: Vec<&str> = attributions
        .iter()
        .map(|(_, a)| a.owner.as_str())
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
    usage.by_owner = vec![Vec::new(); usage.owners.len()];
    // Signature counts per owner, keyed by the attribution's own parts: formatting the key
    // of every rule cost a fifth of the analysis of a large Calico node.
    let mut recognised: Vec<FxHashMap<(&'static str, &str), usize>> =
        vec![FxHashMap::default(); usage.owners.len()];
    let attached = attach_lines(&node.observations);
    for (site, attr) in &attributions {
        let site = *site;
        let (ops, hooks, places) = match site {
            Site::Rule(id) => {
                let rule = set.rule(id);
                (rule.ops(), set.chain(rule.chain).hooks, Vec::new())
            }
            Site::Touchpoint(i) => {
                let tp = &node.touchpoints[i];
                (&tp.ops[..], HookSet::EMPTY, places(tp, &attached))
            }
        };
        let owner = index[attr.owner.as_str()];
        usage.owners[owner].rules += 1;
        *recognised[owner]
            .entry((attr.evidence.signature, attr.evidence.pattern.as_str()))
            .or_default() += 1;
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
            let o = &mut usage.owners[owner];
            usage.by_owner[owner].push(usage.uses.len() as u32);
            for f in 0..2 {
                o.reads[f] |= reads[f];
                o.writes[f] |= writes[f];
            }
            usage.uses.push(Use {
                site,
                op_index: k,
                op: *op,
                owner,
                hooks,
                places: places.clone(),
                reads,
                writes,
            });
        }
    }
    for (o, counts) in usage.owners.iter_mut().zip(recognised) {
        for ((signature, pattern), n) in counts {
            let key = if signature == "none" {
                "no signature".to_string()
            } else {
                format!("{signature} {pattern}")
            };
            *o.recognised_by.entry(key).or_default() += n;
        }
    }
    usage
}

/// Where a touchpoint runs ([`crate::touchpoint::placements`]); empty (anywhere) when unknown
/// and for subsystems other than eBPF.
fn places(tp: &Touchpoint, lines: &AttachLines<'_>) -> Vec<Attach> {
    if tp.subsystem != Subsystem::Bpf {
        return Vec::new();
    }
    let mut out: Vec<Attach> = Vec::new();
    for (a, _) in placements(tp.context.attach, tp.context.program.as_deref(), lines) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}
