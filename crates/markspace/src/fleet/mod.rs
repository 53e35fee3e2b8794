//! Many nodes at once: each node's audit reduced to its bit layout, nodes grouped by layout,
//! and the groups that differ from the majority described as outliers.
//!
//! A node's **layout** is the set of `(owner, field, bits read, bits written)` of every owner
//! that uses a bit ([`NodeAudit::of`]). Two nodes with the same software on the same bits have
//! the same layout, whatever their rule counts; a node that gained Tailscale, or whose Calico
//! mask was changed, has another. Layouts are numbered from the largest group (ties: the group
//! whose first node sorts first); the largest is the **majority** when it is larger than every
//! other (among equals there is none), and then every other group is an outlier, described by what it has that the
//! majority has not and which majority owners its new bits overlap: "3 of 40 nodes have
//! tailscale on packet mark 0x00ff0000 next to calico (0x000f0000)".
//!
//! # JSON contract (version 1, `schema/fleet.json`)
//!
//! ```text
//! {
//!   "version": 1, "markspace": "0.1.0", "registry": {…},
//!   "nodes":   [{"name": "…", "layout": 1, "errors": 1, "warnings": 0, "infos": 2,
//!                "incomplete": false, "error": null}],          // layout null when unreadable
//!   "layouts": [{"id": 1, "count": 37, "majority": true, "nodes": ["…"],
//!                "owners": [{"owner": "calico", "field": "mark", "reads": "0x…", "writes": "0x…"}],
//!                "findings": [{"code": "MS001", "severity": "error", "owners": ["…"],
//!                              "field": "mark", "bits": "0x…", "title": "…", "nodes": 37}],
//!                "differences": ["tailscale on packet mark 0x00ff0000 (absent from layout 1)"]}],
//!   "outliers": [{"layout": 2, "count": 3, "of": 40, "summary": "3 of 40 nodes have …",
//!                 "nodes": ["…"]}],
//!   "summary": {"nodes": 40, "unreadable": 0, "incomplete": 0, "layouts": 2,
//!               "outlier_nodes": 3, "nodes_with_errors": 40}
//! }
//! ```
//!
//! Layout ids start at 1, largest group first. Fields are only ever added in a version.

pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analysis::Severity;
use crate::model::{Bits, Field};
use crate::report::Report;

/// The fleet JSON contract version.
pub const VERSION: u32 = 1;

/// One owner's use of one field on a node.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OwnerBits {
    /// Registry id or `unknown`.
    pub owner: String,
    /// The field.
    pub field: Field,
    /// Bits it reads.
    pub reads: Bits,
    /// Bits it writes.
    pub writes: Bits,
}

impl OwnerBits {
    /// Bits read or written.
    pub fn used(&self) -> u32 {
        self.reads.0 | self.writes.0
    }
}

/// A finding, as the fleet compares them (without evidence).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FindingKey {
    /// `MS001`…
    pub code: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Owners involved.
    pub owners: Vec<String>,
    /// The field.
    pub field: Field,
    /// The bits.
    pub bits: Bits,
    /// One line.
    pub title: String,
}

/// What the fleet keeps of one node's audit.
#[derive(Clone, Debug)]
pub struct NodeAudit {
    /// The node's name (its path as given).
    pub name: String,
    /// Its layout, sorted.
    pub layout: Vec<OwnerBits>,
    /// Its findings.
    pub findings: Vec<FindingKey>,
    /// A source it needs was not read.
    pub incomplete: bool,
}

impl NodeAudit {
    /// The layout and findings of a node's report.
    pub fn of(name: &str, report: &Report) -> NodeAudit {
        let mut layout = Vec::new();
        for o in &report.owners {
            for field in Field::BOTH {
                let (reads, writes) = (o.reads.get(field), o.writes.get(field));
                if reads | writes != 0 {
                    layout.push(OwnerBits {
                        owner: o.id.clone(),
                        field,
                        reads: Bits(reads),
                        writes: Bits(writes),
                    });
                }
            }
        }
        layout.sort();
        let mut findings: Vec<FindingKey> = report
            .findings
            .iter()
            .map(|f| FindingKey {
                code: f.code.as_str(),
                severity: f.severity,
                owners: f.owners.clone(),
                field: f.field,
                bits: Bits(f.bits),
                title: f.title.clone(),
            })
            .collect();
        findings.sort();
        NodeAudit {
            name: name.to_string(),
            layout,
            findings,
            incomplete: report.summary.incomplete,
        }
    }
}

/// A node in the fleet report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeEntry {
    /// Its name.
    pub name: String,
    /// Its layout's id; `None` when it could not be read.
    pub layout: Option<usize>,
    /// Error findings.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
    /// Info findings.
    pub infos: usize,
    /// A source it needs was not read.
    pub incomplete: bool,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// A finding within a layout, with how many of its nodes have it.
#[derive(Clone, Debug, Serialize)]
pub struct GroupFinding {
    /// The finding.
    #[serde(flatten)]
    pub finding: FindingKey,
    /// Nodes of the layout that have it.
    pub nodes: usize,
}

/// Nodes sharing one layout.
#[derive(Clone, Debug, Serialize)]
pub struct Layout {
    /// 1 = the largest group.
    pub id: usize,
    /// How many nodes.
    pub count: usize,
    /// Whether it is the majority layout (id 1, larger than every other).
    pub majority: bool,
    /// The nodes, sorted.
    pub nodes: Vec<String>,
    /// The layout.
    pub owners: Vec<OwnerBits>,
    /// Findings of its nodes.
    pub findings: Vec<GroupFinding>,
    /// How it differs from the majority layout (empty for the majority).
    pub differences: Vec<String>,
}

/// A group of nodes that differs from the majority.
#[derive(Clone, Debug, Serialize)]
pub struct Outlier {
    /// Its layout id.
    pub layout: usize,
    /// How many nodes.
    pub count: usize,
    /// Out of how many read.
    pub of: usize,
    /// One sentence.
    pub summary: String,
    /// The nodes.
    pub nodes: Vec<String>,
}

/// Counts.
#[derive(Clone, Debug, Serialize)]
pub struct FleetSummary {
    /// Nodes given.
    pub nodes: usize,
    /// Nodes that could not be read.
    pub unreadable: usize,
    /// Nodes whose audit is incomplete.
    pub incomplete: usize,
    /// Distinct layouts.
    pub layouts: usize,
    /// Nodes outside the majority layout.
    pub outlier_nodes: usize,
    /// Nodes with at least one error finding.
    pub nodes_with_errors: usize,
}

/// The fleet report.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    /// Contract version.
    pub version: u32,
    /// markspace's version.
    pub markspace: &'static str,
    /// The registry used (set by the caller).
    pub registry: Option<crate::registry::RegistryVersion>,
    /// Every node, in the order given.
    pub nodes: Vec<NodeEntry>,
    /// Layouts, largest first.
    pub layouts: Vec<Layout>,
    /// Every non-majority layout, described against the majority.
    pub outliers: Vec<Outlier>,
    /// Counts.
    pub summary: FleetSummary,
}

/// Groups nodes by layout. `nodes` holds each node's audit, or why it could not be read.
pub fn group(nodes: Vec<(String, Result<NodeAudit, String>)>) -> FleetReport {
    // Layout → indexes of its nodes, in the order given.
    let mut by_layout: BTreeMap<Vec<OwnerBits>, Vec<usize>> = BTreeMap::new();
    for (i, (_, n)) in nodes.iter().enumerate() {
        if let Ok(a) = n {
            by_layout.entry(a.layout.clone()).or_default().push(i);
        }
    }
    let name_of = |i: &usize| nodes[*i].0.clone();
    let mut groups: Vec<(Vec<OwnerBits>, Vec<usize>)> = by_layout.into_iter().collect();
    groups.sort_by(|a, b| {
        b.1.len()
            .cmp(&a.1.len())
            .then_with(|| min_name(&a.1, &nodes).cmp(min_name(&b.1, &nodes)))
    });
    let read = groups.iter().map(|g| g.1.len()).sum::<usize>();
    // A majority only when one group is larger than every other: among equals, no node's layout
    // is the odd one out.
    let has_majority =
        groups.len() == 1 || (groups.len() > 1 && groups[0].1.len() > groups[1].1.len());
    let majority = groups.first().map(|g| g.0.clone()).unwrap_or_default();
    let mut layout_of = vec![None; nodes.len()];
    let mut layouts = Vec::new();
    let mut outliers = Vec::new();
    for (k, (owners, members)) in groups.into_iter().enumerate() {
        let id = k + 1;
        for &i in &members {
            layout_of[i] = Some(id);
        }
        let mut counted: BTreeMap<&FindingKey, usize> = BTreeMap::new();
        for &i in &members {
            if let (_, Ok(a)) = &nodes[i] {
                let mut seen = a.findings.iter().collect::<Vec<_>>();
                seen.dedup();
                for f in seen {
                    *counted.entry(f).or_default() += 1;
                }
            }
        }
        let mut findings: Vec<GroupFinding> = counted
            .into_iter()
            .map(|(f, n)| GroupFinding {
                finding: f.clone(),
                nodes: n,
            })
            .collect();
        findings.sort_by(|a, b| {
            a.finding
                .severity
                .cmp(&b.finding.severity)
                .then_with(|| b.nodes.cmp(&a.nodes))
                .then_with(|| a.finding.cmp(&b.finding))
        });
        let mut names: Vec<String> = members.iter().map(name_of).collect();
        names.sort();
        let differences = if id == 1 || !has_majority {
            Vec::new()
        } else {
            differences(&owners, &majority)
        };
        if id > 1 && has_majority {
            outliers.push(Outlier {
                layout: id,
                count: members.len(),
                of: read,
                summary: format!(
                    "{} of {read} node{} {} {}",
                    members.len(),
                    if read == 1 { "" } else { "s" },
                    if members.len() == 1 { "has" } else { "have" },
                    sentence(&owners, &majority)
                ),
                nodes: names.clone(),
            });
        }
        layouts.push(Layout {
            id,
            count: members.len(),
            majority: id == 1 && has_majority,
            nodes: names,
            owners,
            findings,
            differences,
        });
    }
    let entries: Vec<NodeEntry> = nodes
        .into_iter()
        .enumerate()
        .map(|(i, (name, n))| match n {
            Ok(a) => {
                let count = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
                NodeEntry {
                    name,
                    layout: layout_of[i],
                    errors: count(Severity::Error),
                    warnings: count(Severity::Warning),
                    infos: count(Severity::Info),
                    incomplete: a.incomplete,
                    error: None,
                }
            }
            Err(e) => NodeEntry {
                name,
                layout: None,
                errors: 0,
                warnings: 0,
                infos: 0,
                incomplete: true,
                error: Some(e),
            },
        })
        .collect();
    let summary = FleetSummary {
        nodes: entries.len(),
        unreadable: entries.iter().filter(|e| e.error.is_some()).count(),
        incomplete: entries
            .iter()
            .filter(|e| e.incomplete && e.error.is_none())
            .count(),
        layouts: layouts.len(),
        outlier_nodes: outliers.iter().map(|o| o.count).sum(),
        nodes_with_errors: entries.iter().filter(|e| e.errors > 0).count(),
    };
    FleetReport {
        version: VERSION,
        markspace: env!("CARGO_PKG_VERSION"),
        registry: None,
        nodes: entries,
        layouts,
        outliers,
        summary,
    }
}

fn min_name<'a>(members: &[usize], nodes: &'a [(String, Result<NodeAudit, String>)]) -> &'a str {
    members
        .iter()
        .map(|&i| nodes[i].0.as_str())
        .min()
        .unwrap_or("")
}

/// "packet mark" / "connmark".
pub(crate) fn field_words(field: Field) -> &'static str {
    match field {
        Field::Mark => "packet mark",
        Field::CtMark => "connmark",
    }
}

/// Each owner-field of `layout` that the majority lacks or has on other bits, then each the
/// majority has and `layout` lacks.
fn differences(layout: &[OwnerBits], majority: &[OwnerBits]) -> Vec<String> {
    let mut out = Vec::new();
    let find = |set: &[OwnerBits], o: &OwnerBits| {
        set.iter()
            .find(|m| m.owner == o.owner && m.field == o.field)
            .cloned()
    };
    for o in layout {
        let f = field_words(o.field);
        match find(majority, o) {
            None => out.push(format!(
                "{} on {f} {} (absent from layout 1)",
                o.owner,
                Bits(o.used())
            )),
            Some(m) if m != *o => out.push(format!(
                "{} on {f} {} instead of {}",
                o.owner,
                Bits(o.used()),
                Bits(m.used())
            )),
            Some(_) => {}
        }
    }
    for m in majority {
        if find(layout, m).is_none() {
            out.push(format!(
                "no {} on {} (layout 1 has it on {})",
                m.owner,
                field_words(m.field),
                Bits(m.used())
            ));
        }
    }
    out
}

/// The outlier sentence: what the group has that the majority has not (or has elsewhere),
/// next to which majority owners on overlapping bits; else what it lacks.
fn sentence(layout: &[OwnerBits], majority: &[OwnerBits]) -> String {
    let mut parts = Vec::new();
    for o in layout {
        let same = majority
            .iter()
            .find(|m| m.owner == o.owner && m.field == o.field);
        if same == Some(o) {
            continue;
        }
        let mut part = format!("{} on {} {}", o.owner, field_words(o.field), Bits(o.used()));
        if let Some(m) = same {
            part.push_str(&format!(" (not {})", Bits(m.used())));
        }
        let near: Vec<String> = layout
            .iter()
            .filter(|n| n.owner != o.owner && n.field == o.field && n.used() & o.used() != 0)
            .map(|n| format!("{} ({})", n.owner, Bits(n.used() & o.used())))
            .collect();
        if !near.is_empty() {
            part.push_str(&format!(" next to {}", near.join(", ")));
        }
        parts.push(part);
    }
    for m in majority {
        if !layout
            .iter()
            .any(|o| o.owner == m.owner && o.field == m.field)
        {
            parts.push(format!(
                "no {} on {} (the majority has it on {})",
                m.owner,
                field_words(m.field),
                Bits(m.used())
            ));
        }
    }
    if parts.is_empty() {
        "the majority layout".to_string()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str, field: Field, reads: u32, writes: u32) -> OwnerBits {
        OwnerBits {
            owner: id.into(),
            field,
            reads: Bits(reads),
            writes: Bits(writes),
        }
    }

    fn node(name: &str, layout: Vec<OwnerBits>) -> (String, Result<NodeAudit, String>) {
        let mut layout = layout;
        layout.sort();
        (
            name.into(),
            Ok(NodeAudit {
                name: name.into(),
                layout,
                findings: Vec::new(),
                incomplete: false,
            }),
        )
    }

    #[test]
    fn groups_by_layout_and_names_the_outlier() {
        let calico = owner("calico", Field::Mark, 0x70000, 0xf0000);
        let kp = owner("kube-proxy", Field::Mark, 0x4000, 0x4000);
        let ts = owner("tailscale", Field::Mark, 0xff0000, 0xff0000);
        let mut nodes = Vec::new();
        for i in 0..37 {
            nodes.push(node(&format!("n{i:02}"), vec![calico.clone(), kp.clone()]));
        }
        for i in 37..40 {
            nodes.push(node(
                &format!("n{i:02}"),
                vec![calico.clone(), kp.clone(), ts.clone()],
            ));
        }
        nodes.push(("broken".into(), Err("bad.txt:3:1: error".into())));
        let r = group(nodes);
        assert_eq!(r.layouts.len(), 2);
        assert_eq!(r.layouts[0].count, 37);
        assert!(r.layouts[0].majority);
        assert_eq!(r.layouts[1].nodes, vec!["n37", "n38", "n39"]);
        assert_eq!(
            r.outliers[0].summary,
            "3 of 40 nodes have tailscale on packet mark 0x00ff0000 next to calico (0x000f0000)"
        );
        assert_eq!(
            r.layouts[1].differences,
            vec!["tailscale on packet mark 0x00ff0000 (absent from layout 1)"]
        );
        assert_eq!(r.summary.unreadable, 1);
        assert_eq!(r.summary.outlier_nodes, 3);
        assert_eq!(r.nodes[40].layout, None);
        assert_eq!(r.nodes[39].layout, Some(2));
    }

    #[test]
    fn changed_and_missing_owners_are_described() {
        let kp = owner("kube-proxy", Field::Mark, 0x4000, 0x4000);
        let kp2 = owner("kube-proxy", Field::Mark, 0x8000, 0x8000);
        let aws = owner("aws-vpc-cni", Field::CtMark, 0x80, 0x80);
        let r = group(vec![
            node("a", vec![kp.clone(), aws.clone()]),
            node("b", vec![kp.clone(), aws.clone()]),
            node("c", vec![kp2]),
        ]);
        assert_eq!(
            r.outliers[0].summary,
            "1 of 3 nodes has kube-proxy on packet mark 0x00008000 (not 0x00004000); no aws-vpc-cni on connmark (the majority has it on 0x00000080)"
        );
    }

    /// Equal groups: numbered by their first node's name, whatever the order given, and none
    /// is the majority, so none is an outlier.
    #[test]
    fn equal_groups_have_no_majority_and_number_by_name() {
        let a = owner("a", Field::Mark, 1, 1);
        let b = owner("b", Field::Mark, 2, 2);
        let r1 = group(vec![node("y", vec![b.clone()]), node("x", vec![a.clone()])]);
        let r2 = group(vec![node("x", vec![a]), node("y", vec![b])]);
        for r in [r1, r2] {
            assert_eq!(r.layouts[0].nodes, vec!["x"]);
            assert!(r
                .layouts
                .iter()
                .all(|l| !l.majority && l.differences.is_empty()));
            assert!(r.outliers.is_empty());
        }
    }
}
