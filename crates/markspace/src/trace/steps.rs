//! What a trace reports: its options, the steps of each path, and the whole result.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::MarkState;
use crate::packet::Packet;
use crate::ruleset::{Hook, Origin};

/// How undecidable conditions are settled.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Per condition name (`statistic`, `set`, `socket`, `source address`…, or `all`): whether
    /// it matches.
    pub assume: HashMap<String, bool>,
    /// Most paths to explore before undecided conditions are taken as not matching.
    pub max_paths: usize,
}

/// One thing that happened to the packet.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Step {
    /// The packet reaches a hook.
    Hook {
        /// The hook.
        hook: Hook,
    },
    /// A base chain starts.
    Chain {
        /// `ip filter`, `inet kube-proxy`…
        table: String,
        /// Chain name.
        chain: String,
        /// Priority.
        priority: i32,
        /// Where it came from.
        origin: Origin,
    },
    /// A rule that matched, or that tests or changes a mark.
    Rule {
        /// Input file.
        file: String,
        /// Line.
        line: u32,
        /// Chain.
        chain: String,
        /// The rule as written.
        text: String,
        /// Its owner.
        owner: String,
        /// Whether it matched.
        matched: bool,
        /// Packet mark before and after.
        mark: (String, String),
        /// Connmark before and after.
        ctmark: (String, String),
        /// The verdict it gave, when it matched and gave one.
        verdict: Option<String>,
        /// Conditions assumed to decide it.
        assumed: Vec<String>,
    },
    /// An eBPF program run at its attach point.
    Program {
        /// Program name.
        program: String,
        /// `tc ingress`, `tc egress`, `cgroup_skb ingress`, `cgroup_skb egress`.
        attach: String,
        /// The device it is attached to (from the attach lines), else the packet's.
        device: Option<String>,
        /// Input file (the listing).
        file: String,
        /// Its `program` line.
        line: u32,
        /// Its owner.
        owner: String,
        /// Packet mark before and after.
        mark: (String, String),
        /// Bits of the mark after it that depend on data other than the mark (left as they
        /// were), if any.
        unknown: Option<String>,
    },
    /// A base chain ended by its policy.
    Policy {
        /// Chain.
        chain: String,
        /// `ACCEPT` or `DROP`.
        policy: String,
    },
    /// A routing decision.
    Route {
        /// `input`, `output` or `re-route`.
        stage: String,
        /// The packet mark it saw.
        mark: String,
        /// The `ip rule` chosen (text), if a fwmark rule decided it.
        rule: Option<String>,
        /// The routing table.
        table: String,
    },
    /// Something worth saying.
    Note {
        /// What.
        text: String,
    },
}

impl Step {
    /// A program step in one line: `bpf cil_to_netdev at tc egress dev eth0 (cilium) file:7
    /// mark 0x00000000 -> 0x00000a00`, with the bits left unknown; `None` for other steps.
    pub fn program_line(&self) -> Option<String> {
        let Step::Program {
            program,
            attach,
            device,
            file,
            line,
            owner,
            mark,
            unknown,
        } = self
        else {
            return None;
        };
        let dev = device
            .as_deref()
            .map(|d| format!(" dev {d}"))
            .unwrap_or_default();
        let unknown = unknown
            .as_deref()
            .map(|u| format!(" (bits {u} depend on other data: left as they were)"))
            .unwrap_or_default();
        Some(format!(
            "bpf {program} at {attach}{dev} ({owner}) {file}:{line}  mark {} -> {}{unknown}",
            mark.0, mark.1
        ))
    }
}

/// One path through the pipeline.
#[derive(Clone, Debug, Serialize)]
pub struct PathTrace {
    /// What happened, in order.
    pub steps: Vec<Step>,
    /// `ACCEPT` (delivered or sent), `DROP`, or the terminal target (`NFQUEUE`, `REJECT`…).
    pub verdict: String,
    /// Marks at the end.
    pub mark: String,
    /// Connmark at the end.
    pub ctmark: String,
    /// The routing table of the last routing decision.
    pub table: Option<String>,
    /// Assumptions this path made.
    pub assumptions: Vec<String>,
}

/// The whole trace.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    /// The packet.
    pub packet: Packet,
    /// The starting marks.
    pub start: MarkState,
    /// Every path (one unless a condition forked the walk).
    pub paths: Vec<PathTrace>,
    /// Whether the fork bound was reached.
    pub truncated: bool,
}
