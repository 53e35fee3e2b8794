//! The catalogue of findings: every code once, with its stable name, the severities it can be
//! reported with and when it is reported ([`FINDINGS`]).
//!
//! This is the one list of findings. The README's "Findings" table is generated from it (a test
//! in `analysis::checks` fails when they differ), and each check in [`super::checks::CHECKS`]
//! says which of these codes it emits.

use std::fmt;

use serde::Serialize;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Packets are or will be mishandled.
    Error,
    /// Likely trouble, or a practice that breaks when software is added.
    Warning,
    /// Worth knowing.
    Info,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A finding code. Its spelling (`MS001`), name and documentation are its entry in
/// [`FINDINGS`]; the declaration order is the catalogue's order (and the code's sort order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // each variant is documented by its catalogue entry
pub enum Code {
    SharedBits,
    ForeignRead,
    WholeMarkWrite,
    UnmaskedConnmark,
    WholeMarkMatch,
    NeverMatches,
    UnknownOwner,
    OutsideClaim,
    UnreachableRules,
    RpFilterIgnoresMark,
    SrcValidMarkForced,
    FwmarkAcceptOff,
    ImpliedWrite,
    ShadowedMarkRule,
    MarkAfterRouting,
    MarkSurvives,
}

impl Code {
    /// Its catalogue entry.
    pub fn info(self) -> &'static CodeInfo {
        &FINDINGS[self as usize]
    }

    /// The stable code (`MS001`).
    pub fn as_str(self) -> &'static str {
        self.info().code
    }

    /// The stable short name (`shared-bits`).
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One entry of the catalogue.
#[derive(Debug)]
pub struct CodeInfo {
    /// The code it documents.
    pub id: Code,
    /// Stable code (`MS001`).
    pub code: &'static str,
    /// Stable short name (`shared-bits`).
    pub name: &'static str,
    /// The severities it can be reported with.
    pub severities: &'static [Severity],
    /// Which severity when (one line, Markdown).
    pub severity_doc: &'static str,
    /// When it is reported (one line, Markdown).
    pub when: &'static str,
}

use Severity::{Error, Info, Warning};

/// Every finding, in [`Code`] order.
pub static FINDINGS: [CodeInfo; 16] = [
    CodeInfo {
        id: Code::SharedBits,
        code: "MS001",
        name: "shared-bits",
        severities: &[Error, Info],
        severity_doc: "error; info when their uses never share a packet path (\"overloaded on different paths\") or the registry says they share by design",
        when: "two owners write the same bits; the finding shows the path where they meet, hook by hook, and flags a clobber (one owner's write lands between the other's write and its read)",
    },
    CodeInfo {
        id: Code::ForeignRead,
        code: "MS002",
        name: "foreign-read",
        severities: &[Warning, Info],
        severity_doc: "warning (info on different paths)",
        when: "an owner's rules test bits another owner writes (unless the registry records the cooperation, like flannel reading kube-proxy's 0x4000)",
    },
    CodeInfo {
        id: Code::WholeMarkWrite,
        code: "MS003",
        name: "whole-mark-write",
        severities: &[Error, Warning, Info],
        severity_doc: "error (others use the field), info (alone, or a device's or socket's configured mark that carries no other owner's bits), warning (data-dependent: HMARK, NFQUEUE, socket restore)",
        when: "a write replaces all 32 bits",
    },
    CodeInfo {
        id: Code::UnmaskedConnmark,
        code: "MS004",
        name: "unmasked-connmark",
        severities: &[Error, Warning],
        severity_doc: "error (others use the field), warning (alone)",
        when: "`CONNMARK --save-mark`/`--restore-mark` without masks",
    },
    CodeInfo {
        id: Code::WholeMarkMatch,
        code: "MS005",
        name: "whole-mark-match",
        severities: &[Error],
        severity_doc: "error",
        when: "an exact 32-bit match (`-m mark --mark V`) while others write bits: it silently stops matching",
    },
    CodeInfo {
        id: Code::NeverMatches,
        code: "MS006",
        name: "never-matches",
        severities: &[Warning],
        severity_doc: "warning",
        when: "a match whose value has bits outside its mask",
    },
    CodeInfo {
        id: Code::UnknownOwner,
        code: "MS007",
        name: "unknown-owner",
        severities: &[Warning],
        severity_doc: "warning",
        when: "rules no registry entry recognises use bits",
    },
    CodeInfo {
        id: Code::OutsideClaim,
        code: "MS008",
        name: "outside-claim",
        severities: &[Warning],
        severity_doc: "warning",
        when: "an owner uses bits outside what the registry says it uses",
    },
    CodeInfo {
        id: Code::UnreachableRules,
        code: "MS009",
        name: "unreachable-rules",
        severities: &[Info],
        severity_doc: "info",
        when: "mark rules in chains no hook reaches (left out of the map)",
    },
    CodeInfo {
        id: Code::RpFilterIgnoresMark,
        code: "MS010",
        name: "rp-filter-ignores-mark",
        severities: &[Warning],
        severity_doc: "warning",
        when: "strict `rp_filter` without `src_valid_mark` while `ip rule fwmark` rules route: the reverse-path check ignores the mark and drops replies",
    },
    CodeInfo {
        id: Code::SrcValidMarkForced,
        code: "MS011",
        name: "src-valid-mark-forced",
        severities: &[Warning, Info],
        severity_doc: "warning (several owners route by mark), info",
        when: "`src_valid_mark=1` on `all` next to fwmark policy routing (Tailscale 1.98, tailscale#19796)",
    },
    CodeInfo {
        id: Code::FwmarkAcceptOff,
        code: "MS012",
        name: "fwmark-accept-off",
        severities: &[Info],
        severity_doc: "info",
        when: "`tcp_fwmark_accept=0` while fwmark rules route and no connmark restore puts the mark back on accepted sockets' replies",
    },
    CodeInfo {
        id: Code::ImpliedWrite,
        code: "MS013",
        name: "implied-write",
        severities: &[Error, Warning],
        severity_doc: "error (the other owner tests the bits), warning (it only writes them)",
        when: "a selector requires bits its owner never visibly writes (eBPF), and another owner uses them: Cilium's xfrm `mark 0x9e00/0xff00` next to kubelet's drop bit",
    },
    CodeInfo {
        id: Code::ShadowedMarkRule,
        code: "MS020",
        name: "shadowed-mark-rule",
        severities: &[Warning, Info],
        severity_doc: "warning for connmark saves/restores, info for packet-mark writes",
        when: "an owner's ACCEPT in a base chain comes before another owner's mark writes in the same base chain: for the packets it accepts they never happen (Calico's mangle PREROUTING ACCEPT before AWS VPC CNI's CONNMARK restore)",
    },
    CodeInfo {
        id: Code::MarkAfterRouting,
        code: "MS021",
        name: "mark-after-routing",
        severities: &[Warning],
        severity_doc: "warning",
        when: "bits that `ip rule` selectors route by are written only after the routing decision (FORWARD, INPUT, POSTROUTING, or an OUTPUT chain that does not re-route)",
    },
    CodeInfo {
        id: Code::MarkSurvives,
        code: "MS022",
        name: "mark-survives",
        severities: &[Warning],
        severity_doc: "warning",
        when: "an owner's bits select packets for NAT in POSTROUTING and are never cleared: a packet that re-enters the stack is translated twice (tailscale#12407; kube-proxy clears its bit since kubernetes#92035)",
    },
];
