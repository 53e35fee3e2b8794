//! The analysis: bit maps of both fields and the findings, from the ruleset and the registry.
//!
//! It knows neither input syntax nor output format: [`analyze`] takes the model and returns an
//! [`Analysis`] that the reports render.
//!
//! - `usage`: who reads and writes which bits (attributed uses and owners).
//! - `path`, `meeting`: packet paths through the hooks, and where two owners meet on them.
//! - `catalogue`: every finding code once ([`FINDINGS`]: code, name, severities, when).
//! - `finding`: the [`Finding`] type, its evidence, and the context the checks run in.
//! - `checks`: the checks, one row each in a table (the codes it reports and its function),
//!   and the run that sorts their findings. `fix` words the fixes they share.
//! - `proposal`, `verify`: rule-changing fixes are proposed with their rewrite in the algebra,
//!   applied to a copy of the node ([`Node::apply_rewrite`]) and audited again; only those that
//!   pass are printed ([`Analysis::verified_fixes`]).
//! - `incidents`: known incidents attach to the findings whose owners and mechanism are theirs.

mod catalogue;
mod checks;
mod derived;
mod finding;
mod fix;
mod incidents;
mod meeting;
#[cfg(test)]
pub(crate) mod oracle_tests;
mod path;
mod proposal;
mod usage;
mod verify;

use serde::Serialize;

#[cfg(test)]
pub(crate) use crate::model::constant_values;
pub use catalogue::{Code, CodeInfo, Severity, FINDINGS};
pub use finding::{evidence_of, EvidenceItem, Finding, IncidentRef};
pub use path::{PathEvidence, PathStep};
pub use usage::{Owner, Places, Site, Usage, Use};
pub use verify::VerifiedFix;

use crate::model::{Field, Node};
use crate::registry::Registry;

/// Who reads and writes one bit of a field.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BitUse {
    /// Bit number, 0 = least significant.
    pub bit: u8,
    /// Owner ids that read it.
    pub readers: Vec<String>,
    /// Owner ids that write it.
    pub writers: Vec<String>,
}

/// The result of analysing a node.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Attributed uses and owners.
    pub usage: Usage,
    /// Per field (`[mark, ctmark]`), 32 entries from bit 0 up.
    pub bitmap: [Vec<BitUse>; 2],
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// The findings whose printed fix changes rules, with those changes in the algebra: each was
    /// applied to a copy of the node and audited again before it was printed.
    pub verified_fixes: Vec<VerifiedFix>,
}

impl Analysis {
    /// The bit map of one field.
    pub fn bits(&self, field: Field) -> &[BitUse] {
        &self.bitmap[field as usize]
    }
}

/// Analyses a node.
pub fn analyze(node: &Node, registry: &Registry) -> Analysis {
    analyze_with(node, registry, true)
}

/// Analyses a node; with `verify`, every rule-changing fix is applied to a copy of the node and
/// audited again before it is printed (`verify` is off while auditing such a copy).
pub(crate) fn analyze_with(node: &Node, registry: &Registry, verify: bool) -> Analysis {
    let usage = usage::collect(node, registry);
    let bitmap = [bitmap(&usage, Field::Mark), bitmap(&usage, Field::CtMark)];
    let reaudit = |n: &Node| analyze_with(n, registry, false).findings;
    let (findings, verified_fixes) = checks::run_all(
        &finding::Ctx {
            set: &node.ruleset,
            sources: &node.sources,
            node,
            registry,
            usage: &usage,
            orders: Default::default(),
            whole_aware: Default::default(),
            path_events: Default::default(),
            proposals: Default::default(),
            verify,
        },
        &reaudit,
    );
    Analysis {
        usage,
        bitmap,
        findings,
        verified_fixes,
    }
}

fn bitmap(usage: &Usage, field: Field) -> Vec<BitUse> {
    (0..32u8)
        .map(|bit| {
            let m = 1u32 << bit;
            let f = field as usize;
            BitUse {
                bit,
                readers: usage
                    .owners
                    .iter()
                    .filter(|o| o.reads[f] & m != 0)
                    .map(|o| o.id.clone())
                    .collect(),
                writers: usage
                    .owners
                    .iter()
                    .filter(|o| o.writes[f] & m != 0)
                    .map(|o| o.id.clone())
                    .collect(),
            }
        })
        .collect()
}
