//! Input formats: each knows its syntax and turns text into the ruleset model.
//!
//! Every format registers in [`ALL`] with a name, a detector and a parser. Parsers do no I/O:
//! they take a text, its [`SourceId`] and display name, and add to a [`RulesetBuilder`],
//! returning diagnostics. Reading files and directories lives in [`crate::snapshot`].

pub mod iptables;
pub(crate) mod lines;

use crate::diagnostic::Diagnostic;
use crate::ruleset::RulesetBuilder;
use crate::source::SourceId;
use crate::touchpoint::{Observation, Touchpoint};

/// Where parsers put what they read.
#[derive(Debug, Default)]
pub struct Sink {
    /// Netfilter tables, chains and rules.
    pub ruleset: RulesetBuilder,
    /// Mark touchpoints outside netfilter.
    pub touchpoints: Vec<Touchpoint>,
    /// Facts that are not operations, with the input they came from.
    pub observations: Vec<(SourceId, Observation)>,
}

/// One input format.
pub struct Format {
    /// Short name used in messages and `--format-of` overrides (`iptables-save`).
    pub name: &'static str,
    /// What it is, for `--help` and errors.
    pub description: &'static str,
    /// Whether a text is in this format (looks at the first lines only).
    pub detect: fn(&str) -> bool,
    /// Reads a text of this format.
    pub parse: fn(&str, SourceId, &str, &mut Sink) -> Vec<Diagnostic>,
}

/// Every supported format, in detection order.
pub const ALL: &[Format] = &[
    Format {
        name: "iptables-save",
        description:
            "iptables-save / ip6tables-save output, `iptables -S` output, or iptables commands",
        detect: iptables::save::detect,
        parse: |text, id, name, sink| iptables::save::parse(text, id, name, &mut sink.ruleset),
    },
    Format {
        name: "iptables-list",
        description: "iptables -L listings (-L, -nvL, --line-numbers, -x)",
        detect: iptables::listing::detect,
        parse: |text, id, name, sink| iptables::listing::parse(text, id, name, &mut sink.ruleset),
    },
];

/// The format of a text, if any format recognises it.
pub fn detect(text: &str) -> Option<&'static Format> {
    ALL.iter().find(|f| (f.detect)(text))
}

/// A format by name.
pub fn by_name(name: &str) -> Option<&'static Format> {
    ALL.iter().find(|f| f.name == name)
}
