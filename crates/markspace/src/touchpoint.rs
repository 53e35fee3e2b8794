//! Mark touchpoints outside netfilter rulesets: policy routing, xfrm, tc, Open vSwitch, sockets,
//! WireGuard devices, IPVS, eBPF programs.
//!
//! Each is reduced to the same algebra as netfilter rules ([`MarkOp`]) and carries what
//! attribution needs (routing table and priority, device, program, process). Facts that are not
//! operations (sysctls, observed connmark values) are [`Observation`]s.

use serde::Serialize;

use crate::model::MarkOp;
use crate::source::Span;

/// The kernel subsystem a touchpoint belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subsystem {
    /// eBPF programs (tc, cgroup, XDP): opaque unless the registry knows them.
    Bpf,
    /// Device-level marks (tunnel or device fwmark from `ip -d link`).
    Device,
    /// `ip rule` fwmark selectors.
    IpRule,
    /// IPVS fwmark virtual services.
    Ipvs,
    /// Open vSwitch `pkt_mark` / `ct_mark`.
    Ovs,
    /// Socket marks (`SO_MARK`, `ss -e`).
    Socket,
    /// tc classifiers and actions.
    Tc,
    /// WireGuard device fwmark.
    Wireguard,
    /// xfrm (IPsec) policies and states.
    Xfrm,
}

impl Subsystem {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Subsystem::Bpf => "bpf",
            Subsystem::Device => "device",
            Subsystem::IpRule => "ip-rule",
            Subsystem::Ipvs => "ipvs",
            Subsystem::Ovs => "ovs",
            Subsystem::Socket => "socket",
            Subsystem::Tc => "tc",
            Subsystem::Wireguard => "wireguard",
            Subsystem::Xfrm => "xfrm",
        }
    }
}

/// What attribution can use about a touchpoint. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TouchContext {
    /// Routing table (`ip rule … lookup T`), as written (`52`, `main`).
    pub table: Option<String>,
    /// Rule priority (`ip rule`) or filter priority (tc).
    pub priority: Option<u32>,
    /// Interface or bridge.
    pub device: Option<String>,
    /// eBPF program name.
    pub program: Option<String>,
    /// Process name (sockets).
    pub process: Option<String>,
    /// IPv6 (for `ip -6 rule`, xfrm with v6 selectors).
    pub ipv6: bool,
}

/// One mark operation site outside netfilter.
#[derive(Clone, Debug)]
pub struct Touchpoint {
    /// The subsystem.
    pub subsystem: Subsystem,
    /// Its line in its input.
    pub span: Span,
    /// Its mark operations in the algebra (a selector is a read, a set-mark a write).
    pub ops: Vec<MarkOp>,
    /// Attribution context.
    pub context: TouchContext,
}

/// A fact about the node that is not a mark operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Observation {
    /// A sysctl value (`net.ipv4.conf.all.src_valid_mark = 1`).
    Sysctl {
        /// The key, dotted.
        key: String,
        /// The value as written.
        value: String,
        /// 1-based line.
        line: u32,
    },
    /// A connmark value seen on a live connection (`conntrack -L … mark=N`).
    ConnmarkValue {
        /// The value.
        value: u32,
        /// How many entries carried it.
        count: u32,
    },
    /// An eBPF program attached where it may read and write `__sk_buff->mark` (tc, tcx,
    /// cgroup_skb, lwt). Its mark operations are not visible; attribution names its owner from
    /// the registry's `programs` (Cilium's `cil_from_netdev`).
    BpfProgram {
        /// The program name (`cil_from_netdev`), or the object and section tc prints
        /// (`bpf_lxc.o:[from-container]`) when it has no name.
        name: String,
        /// Where it is attached: `tc ingress`, `tc egress`, `tcx/ingress`, `cgroup_skb`, … or
        /// the program type when only `bpftool prog show` was read.
        attach: String,
        /// The device it is attached to, if known.
        device: Option<String>,
        /// 1-based line.
        line: u32,
    },
}
