//! Where parsers put what they read: one sink for every format (kept apart from the format
//! table so that formats and the table that lists them do not import each other).

use crate::ruleset::RulesetBuilder;
use crate::source::SourceId;
use crate::touchpoint::{LoadedProgram, Observation, Touchpoint};

/// Where parsers put what they read.
#[derive(Debug, Default)]
pub struct Sink {
    /// Netfilter tables, chains and rules.
    pub ruleset: RulesetBuilder,
    /// Mark touchpoints outside netfilter.
    pub touchpoints: Vec<Touchpoint>,
    /// Facts that are not operations, with the input they came from.
    pub observations: Vec<(SourceId, Observation)>,
    /// eBPF programs with mark operations, for `trace`.
    pub programs: Vec<LoadedProgram>,
    /// Set while a fragment or a paste section is read: rules without a table or chain go to
    /// an unknown table and chain (`(unknown)`) instead of being errors or guesses.
    pub fragment: bool,
}
