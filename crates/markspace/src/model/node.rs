//! Everything read from one node, whatever the inputs were: the data every later stage
//! (registry, analysis, trace, report) reads. Building one from files is
//! [`crate::snapshot::NodeLoader`]'s job; this module does no I/O.

use crate::diagnostic::Diagnostic;
use crate::model::MarkOp;
use crate::packet::{DetailDecoder, RuleDetails};
use crate::ruleset::{RuleId, Ruleset};
use crate::source::{SourceId, SourceMap};
use crate::touchpoint::{LoadedProgram, Observation, Touchpoint};

/// Where a [`Rewrite`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RewriteSite {
    /// A netfilter rule.
    Rule(RuleId),
    /// A touchpoint outside netfilter (index into [`Node::touchpoints`]).
    Touchpoint(usize),
}

/// New mark operations for one rule or touchpoint: a proposed fix, in the algebra.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// The rule or touchpoint.
    pub site: RewriteSite,
    /// Its mark operations after the fix, in kernel order.
    pub ops: Vec<MarkOp>,
}

/// Everything read from a node.
#[derive(Clone, Debug, Default)]
pub struct Node {
    /// The texts.
    pub sources: SourceMap,
    /// The netfilter model.
    pub ruleset: Ruleset,
    /// Mark touchpoints outside netfilter.
    pub touchpoints: Vec<Touchpoint>,
    /// Facts that are not operations.
    pub observations: Vec<(SourceId, Observation)>,
    /// eBPF programs with mark operations, as `trace` runs them.
    pub programs: Vec<LoadedProgram>,
    /// Problems found while parsing.
    pub diagnostics: Vec<Diagnostic>,
    /// Files in directories that no format recognised.
    pub skipped: Vec<String>,
    /// Lines of pastes and fragments that could not be read and were skipped (each is also a
    /// warning diagnostic).
    pub skipped_lines: usize,
    /// The detected format of each input, by display name.
    pub formats: Vec<(String, &'static str)>,
    /// Bundles recognised by their layout (sosreport, Cilium sysdump).
    pub bundles: Vec<String>,
    /// The `manifest.json` of collected snapshots read from archives, by archive node name
    /// (a directory's manifest is read from the directory by whoever checks it).
    pub manifests: Vec<(String, Vec<u8>)>,
    /// The format of each input, indexed by its `SourceId`.
    pub source_formats: Vec<&'static str>,
    /// The decoder of each input's rule conditions (from its format), indexed by its
    /// `SourceId`.
    pub rule_decoders: Vec<Option<DetailDecoder>>,
}

impl Node {
    /// Applies a rewrite of one site's mark operations and returns the rewrite that undoes it.
    /// This is how a proposed fix is applied to a copy of the node and audited again; it never
    /// changes the texts, so evidence still points at the rules as written.
    pub fn apply_rewrite(&mut self, rewrite: &Rewrite) -> Rewrite {
        let old = match rewrite.site {
            RewriteSite::Rule(id) => {
                self.ruleset.rules[id.0 as usize].replace_ops(rewrite.ops.clone())
            }
            RewriteSite::Touchpoint(i) => {
                std::mem::replace(&mut self.touchpoints[i].ops, rewrite.ops.clone())
            }
        };
        Rewrite {
            site: rewrite.site,
            ops: old,
        }
    }

    /// A rule's non-mark conditions and where its NAT sends the packet, decoded by its input's
    /// format (an unknown condition when the format has no decoder).
    pub fn rule_details(&self, rule: RuleId) -> RuleDetails {
        let span = self.ruleset.rule(rule).span;
        let i = span.source.0 as usize;
        match self.rule_decoders.get(i).copied().flatten() {
            Some(decode) => decode(&self.sources.file(span.source).text, span),
            None => RuleDetails::unknown(format!(
                "conditions of {} rules",
                self.source_formats.get(i).copied().unwrap_or("unknown")
            )),
        }
    }
}
