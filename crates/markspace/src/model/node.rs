//! Everything read from one node, whatever the inputs were: the data every later stage
//! (registry, analysis, trace, report) reads. Building one from files is
//! [`crate::snapshot::NodeLoader`]'s job; this module does no I/O.

use crate::diagnostic::Diagnostic;
use crate::ruleset::Ruleset;
use crate::source::{SourceId, SourceMap};
use crate::touchpoint::{Observation, Touchpoint};

/// Everything read from a node.
#[derive(Debug, Default)]
pub struct Node {
    /// The texts.
    pub sources: SourceMap,
    /// The netfilter model.
    pub ruleset: Ruleset,
    /// Mark touchpoints outside netfilter.
    pub touchpoints: Vec<Touchpoint>,
    /// Facts that are not operations.
    pub observations: Vec<(SourceId, Observation)>,
    /// Problems found while parsing.
    pub diagnostics: Vec<Diagnostic>,
    /// Files in directories that no format recognised.
    pub skipped: Vec<String>,
    /// The detected format of each input, by display name.
    pub formats: Vec<(String, &'static str)>,
    /// Bundles recognised by their layout (sosreport, Cilium sysdump).
    pub bundles: Vec<String>,
    /// The format of each input, indexed by its `SourceId`.
    pub source_formats: Vec<&'static str>,
}
