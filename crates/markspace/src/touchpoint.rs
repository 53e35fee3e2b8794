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
    /// Where an eBPF program runs, when its section name says (`tc/egress`); live programs
    /// are placed by the `tc filter show` / `bpftool net` lines that name them instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<Attach>,
}

/// An eBPF program as `trace` runs it: its name, where its section says it runs, the line
/// that names it, and its code.
#[derive(Clone, Debug)]
pub struct LoadedProgram {
    /// The program name.
    pub name: String,
    /// Its attach point, when its section name gives one.
    pub attach: Option<Attach>,
    /// Its `program` line in its input.
    pub span: Span,
    /// Its code, run on a concrete mark.
    pub code: std::sync::Arc<dyn RunMark>,
}

/// A program that can be run on a concrete entry mark.
pub trait RunMark: std::fmt::Debug + Send + Sync {
    /// The mark when the program ends, for an entry mark: `(known, value)`, the bits every
    /// path fixes and their values (`known` is 0 for bits that depend on data other than the
    /// mark); `None` when no path ends.
    fn exit_mark(&self, mark: u32) -> Option<(u32, u32)>;
}

/// Attach points and devices by program name ([`attach_lines`]).
pub type AttachLines<'a> =
    std::collections::HashMap<&'a str, Vec<(Option<Attach>, Option<&'a str>)>>;

/// Where the node's attach lines (`tc filter show`, `bpftool net`) put each eBPF program, by
/// program name: the attach point (`None` when it has no known place, `tc` without a
/// direction) and the device.
pub fn attach_lines(observations: &[(crate::source::SourceId, Observation)]) -> AttachLines<'_> {
    let mut by_name = AttachLines::new();
    for (_, o) in observations {
        if let Observation::BpfProgram {
            name,
            attach,
            device,
            ..
        } = o
        {
            // `bpftool prog show` lines name the program type, not where it runs.
            if attach.contains(' ') || attach.contains('/') || attach == "tc" {
                by_name
                    .entry(name.as_str())
                    .or_default()
                    .push((Attach::from_name(attach), device.as_deref()));
            }
        }
    }
    by_name
}

/// Where a program runs: where its section says, else every place the node's attach lines
/// give it (with the device); empty (anywhere) when any of those has no known place, or none
/// is known.
pub fn placements<'a>(
    section: Option<Attach>,
    name: Option<&str>,
    lines: &AttachLines<'a>,
) -> Vec<(Attach, Option<&'a str>)> {
    if let Some(a) = section {
        return vec![(a, None)];
    }
    let Some(seen) = name.and_then(|n| lines.get(n)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (a, dev) in seen {
        match a {
            Some(a) if !out.contains(&(*a, *dev)) => out.push((*a, *dev)),
            Some(_) => {}
            None => return Vec::new(),
        }
    }
    out
}

/// An eBPF attach point whose place on the packet paths is known (kernel v6.12):
///
/// - tc and tcx ingress run in `__netif_receive_skb_core` (`sch_handle_ingress`,
///   `net/core/dev.c`), before `ip_rcv` reaches `NF_INET_PRE_ROUTING`;
/// - tc and tcx egress run in `__dev_queue_xmit` (`sch_handle_egress`), which
///   `ip_finish_output2` reaches after `ip_output`'s `NF_INET_POST_ROUTING` hook;
/// - cgroup_skb egress runs in `ip_finish_output` (`BPF_CGROUP_RUN_PROG_INET_EGRESS`,
///   `net/ipv4/ip_output.c`), the okfn of that POSTROUTING hook, so after it and before tc
///   egress, and only for packets of a local full socket (`sk == skb->sk`): the output path;
/// - cgroup_skb ingress runs in `sk_filter_trim_cap` (`BPF_CGROUP_RUN_PROG_INET_INGRESS`,
///   `net/core/filter.c`) when a socket receives, after `ip_local_deliver`'s `NF_INET_LOCAL_IN`;
/// - cgroup/sock_create sets `sk->sk_mark` when the socket is created; its packets carry it
///   from `ip_make_skb` / `ip_queue_xmit` on, before `NF_INET_LOCAL_OUT`.
///
/// Other attach points (bare `tc` or `classifier` sections, whose direction is chosen by
/// `tc filter add … ingress|egress`; socket filters, which may sit on packet sockets; lwt;
/// sk_skb) are not placed: they may run anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attach {
    /// tc / tcx ingress.
    TcIngress,
    /// tc / tcx egress.
    TcEgress,
    /// `cgroup_skb/ingress`.
    CgroupSkbIngress,
    /// `cgroup_skb/egress`.
    CgroupSkbEgress,
    /// `cgroup/sock_create`.
    SockCreate,
}

impl Attach {
    /// The attach point an ELF section name (libbpf's `section_defs`: `tc/ingress`,
    /// `tcx/egress`, `cgroup_skb/egress`, `cgroup/sock_create`) or an attach point as
    /// `tc filter show` / `bpftool net` print it (`tc ingress`, `clsact/egress`, `tcx/ingress`)
    /// names, if it names one with a known place.
    pub fn from_name(name: &str) -> Option<Attach> {
        Some(match name {
            "tc/ingress" | "tcx/ingress" | "tc ingress" | "clsact/ingress" => Attach::TcIngress,
            "tc/egress" | "tcx/egress" | "tc egress" | "clsact/egress" => Attach::TcEgress,
            "cgroup_skb/ingress" => Attach::CgroupSkbIngress,
            "cgroup_skb/egress" => Attach::CgroupSkbEgress,
            "cgroup/sock_create" => Attach::SockCreate,
            _ => return None,
        })
    }

    /// The name used in reports (`tc egress`).
    pub fn as_str(self) -> &'static str {
        match self {
            Attach::TcIngress => "tc ingress",
            Attach::TcEgress => "tc egress",
            Attach::CgroupSkbIngress => "cgroup_skb ingress",
            Attach::CgroupSkbEgress => "cgroup_skb egress",
            Attach::SockCreate => "cgroup sock_create",
        }
    }
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

#[cfg(test)]
mod tests {
    use super::Attach;

    #[test]
    fn attach_points_from_section_names_and_attach_lines() {
        for (name, want) in [
            ("tc/ingress", Some(Attach::TcIngress)),
            ("tcx/ingress", Some(Attach::TcIngress)),
            ("tc ingress", Some(Attach::TcIngress)),
            ("clsact/ingress", Some(Attach::TcIngress)),
            ("tc/egress", Some(Attach::TcEgress)),
            ("tcx/egress", Some(Attach::TcEgress)),
            ("tc egress", Some(Attach::TcEgress)),
            ("clsact/egress", Some(Attach::TcEgress)),
            ("cgroup_skb/ingress", Some(Attach::CgroupSkbIngress)),
            ("cgroup_skb/egress", Some(Attach::CgroupSkbEgress)),
            ("cgroup/sock_create", Some(Attach::SockCreate)),
            // No direction, or no single place.
            ("tc", None),
            ("classifier", None),
            ("action", None),
            ("cgroup/skb", None),
            ("cgroup/sock", None),
            ("cgroup/sock_release", None),
            ("socket", None),
            ("sk_skb", None),
            ("lwt_xmit", None),
            ("xdp", None),
            ("from-container", None),
            ("sched_cls", None),
        ] {
            assert_eq!(Attach::from_name(name), want, "{name}");
        }
    }
}
