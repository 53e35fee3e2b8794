//! Differential tests of `markspace trace` against the real kernel (issue #6).
//!
//! Every scenario builds a small network of namespaces joined by veth pairs:
//!
//! ```text
//! client 10.0.1.2   eth0 ── vc  10.0.1.1    ┐
//!        fd00:1::2               fd00:1::1  │ node ── vs 192.168.2.1 ── eth0 192.168.2.2 server
//!                                           │         fd00:2::1             fd00:2::2
//!                                           └──────── vx 192.168.3.1 ── eth0 192.168.3.2 server2
//! ```
//!
//! (`server2` only where a scenario routes by mark), loads a real ruleset on the node
//! (`iptables-restore`, `ip6tables-restore`, `ip rule`/`ip route`), sends real UDP datagrams and
//! watches what the kernel did through probes markspace never sees: a foreign nft table `inet
//! msprobe` (which `iptables-save` does not print) in every namespace records, for each datagram
//! carrying the payload magic `MSPK`,
//!
//! - on the node, at postrouting priority 500 (after srcnat) and at input priority 500 (after every
//!   iptables chain): the egress or ingress interface with the packet mark, and the connmark (a
//!   packet without a conntrack entry records none);
//! - everywhere, at prerouting priority -500: the source address it arrived with (delivery, and
//!   whether it was masqueraded).
//!
//! Then the node's ruleset is dumped (`iptables-save`, `ip6tables-save`, `ip rule show`, and the
//! native nft tables of a scenario with `nft list table` or `nft -j list table`) into a temporary
//! directory, and a second time with the iptables tables as `iptables -t T -nvL` listings (the
//! form sosreports hold), and `markspace trace --format json` runs on both with the same packet
//! (the connmark of a later packet is the one `conntrack -L` shows before it is sent). The kernel and
//! the trace must agree on delivery, the final mark and connmark, source NAT and, when the
//! scenario routes by mark, the routing table — from either snapshot.
//!
//! Datagrams are sent by this test binary itself, re-run inside a namespace with
//! `ip netns exec` and [`SEND_ENV`] set (the [`udp_send_helper`] test), because replies need a
//! fixed source port and bash's `/dev/udp` cannot bind one. Needs root (CI runs as root); as another
//! user it says so and returns.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use netns_testkit::{is_root, run, Netns};

use crate::util::Dir;

/// Set to `SRC SPORT DST DPORT` to make [`udp_send_helper`] send one datagram.
const SEND_ENV: &str = "MARKSPACE_TRACE_SEND";
/// The payload every probed datagram starts with.
const MAGIC: &[u8; 4] = b"MSPK";

// ---------------------------------------------------------------------------------------------
// Scenarios

/// A namespace of the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    Client,
    Node,
    Server,
    Server2,
}

/// One datagram: how it is sent, and the same packet for `markspace trace`.
#[derive(Clone, Copy, Debug)]
struct Check {
    label: &'static str,
    /// Who sends it.
    from: Host,
    /// Source address it is bound to (`0.0.0.0`: the kernel chooses; the trace gets none).
    src: &'static str,
    sport: u16,
    dst: &'static str,
    dport: u16,
    /// `forward`, `ingress` or `output`.
    path: &'static str,
    /// The node's input interface (forward, ingress).
    iif: Option<&'static str>,
    /// The node's output interface (forward, output), as the main table routes it.
    oif: Option<&'static str>,
    /// `new`, `established` or `reply`; for the last two the trace starts from the connmark
    /// the kernel's conntrack entry holds.
    state: &'static str,
    /// When the scenario routes by mark: the routing table each egress interface means.
    tables: &'static [(&'static str, &'static str)],
}

/// A forwarded client → server datagram, the default shape of a check.
const FWD: Check = Check {
    label: "client -> server",
    from: Host::Client,
    src: "10.0.1.2",
    sport: 40000,
    dst: "192.168.2.2",
    dport: 5000,
    path: "forward",
    iif: Some("vc"),
    oif: Some("vs"),
    state: "new",
    tables: &[],
};

/// The server's reply to [`FWD`].
const REPLY: Check = Check {
    label: "server -> client (reply)",
    from: Host::Server,
    src: "192.168.2.2",
    sport: 5000,
    dst: "10.0.1.2",
    dport: 40000,
    path: "forward",
    iif: Some("vs"),
    oif: Some("vc"),
    state: "reply",
    tables: &[],
};

struct Scenario {
    name: &'static str,
    /// Name of the node's interface towards the client.
    client_if: &'static str,
    /// Whether the node has a third link (`vx`, to `server2`).
    server2: bool,
    /// `iptables-restore` input for the node.
    iptables: &'static str,
    /// `ip6tables-restore` input for the node (empty: none).
    ip6tables: &'static str,
    /// `nft -f` input for the node: native nft tables (empty: none). Dumped table by table
    /// (`nft list table`, never the probes), as text or, with `nft_json`, as `nft -j`.
    nft: &'static str,
    nft_json: bool,
    /// Extra `ip -batch` commands for the node (policy routing), IPv4 and IPv6.
    node_ip: &'static str,
    node_ip6: &'static str,
    checks: Vec<Check>,
}

impl Scenario {
    const fn new(name: &'static str, iptables: &'static str) -> Scenario {
        Scenario {
            name,
            client_if: "vc",
            server2: false,
            iptables,
            ip6tables: "",
            nft: "",
            nft_json: false,
            node_ip: "",
            node_ip6: "",
            checks: Vec::new(),
        }
    }

    fn checks(mut self, checks: &[Check]) -> Scenario {
        self.checks = checks.to_vec();
        self
    }
}

/// The scenarios that need nothing beyond iptables (routing is not asserted).
fn scenarios() -> Vec<Scenario> {
    vec![
        // 1. kube-proxy: a Service VIP DNATed to an endpoint, KUBE-MARK-MASQ sets 0x4000, and
        //    KUBE-POSTROUTING (nat, priority 100) clears it and masquerades.
        Scenario::new(
            "kube-proxy masquerade (forward)",
            "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SEP-IT2ZTR26TO4XFPTO - [0:0]
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE
-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment \"kube-system/kube-dns:dns cluster IP\" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SVC-TCOU7JCQXEZGVUNU ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment \"kube-system/kube-dns:dns cluster IP\" -m udp --dport 53 -j KUBE-MARK-MASQ
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment \"kube-system/kube-dns:dns -> 192.168.2.2:5000\" -j KUBE-SEP-IT2ZTR26TO4XFPTO
-A KUBE-SEP-IT2ZTR26TO4XFPTO -p udp -m comment --comment \"kube-system/kube-dns:dns\" -m udp -j DNAT --to-destination 192.168.2.2:5000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -m comment --comment \"kubernetes forwarding rules\" -j ACCEPT
COMMIT
",
        )
        .checks(&[Check {
            label: "client -> Service VIP",
            dst: "10.96.0.10",
            dport: 53,
            ..FWD
        }]),
        // 2. Tailscale next to Calico: ts-forward sets 0x40000/0xff0000, Calico's mangle
        //    POSTROUTING clears 0xf0000 before nat POSTROUTING, so ts-postrouting never
        //    masquerades.
        Scenario {
            client_if: "tailscale0",
            ..Scenario::new(
                "tailscale + calico: mark cleared before masquerade (forward)",
                "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:cali-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment \"cali:O3lYWMrLQYEMJtB5\" -j cali-POSTROUTING
-A cali-POSTROUTING -m comment --comment \"cali:Z-c7XtVd2Bq7s_hA\" -j MARK --set-xmark 0x0/0xf0000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ts-forward - [0:0]
:ts-input - [0:0]
-A FORWARD -j ts-forward
-A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000
-A ts-forward -m mark --mark 0x40000/0xff0000 -j ACCEPT
-A ts-forward -s 100.64.0.0/10 -o tailscale0 -j DROP
-A ts-forward -o tailscale0 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ts-postrouting - [0:0]
-A POSTROUTING -j ts-postrouting
-A ts-postrouting -m mark --mark 0x40000/0xff0000 -j MASQUERADE
COMMIT
",
            )
        }
        .checks(&[Check {
            label: "tailscale0 -> subnet route",
            iif: Some("tailscale0"),
            ..FWD
        }]),
        // 3. CONNMARK --save-mark on the original direction, --restore-mark on the reply.
        Scenario::new(
            "connmark save on original, restore on reply",
            "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -m conntrack --ctstate NEW -j MARK --set-xmark 0x2000/0x2000
-A PREROUTING -m mark --mark 0x2000/0x2000 -j CONNMARK --save-mark --nfmask 0x2000 --ctmask 0x2000
-A PREROUTING -i vs -j CONNMARK --restore-mark --nfmask 0x2000 --ctmask 0x2000
-A FORWARD -i vs -m mark --mark 0x2000/0x2000 -j MARK --set-xmark 0x1/0x1
COMMIT
",
        )
        .checks(&[FWD, REPLY]),
        // 5. A whole-mark write by one owner breaks another owner's exact (whole) match.
        Scenario::new(
            "whole-mark write breaks an exact match",
            "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -m comment --comment \"owner-a: allowed clients\" -j MARK --set-xmark 0x4000/0x4000
-A FORWARD -p udp -m udp --dport 5000 -m comment --comment \"owner-b: classify\" -j MARK --set-mark 0x1
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m mark --mark 0x4000 -m comment --comment \"owner-a: exact match\" -j ACCEPT
-A FORWARD -p udp -m udp --dport 5001 -j ACCEPT
COMMIT
",
        )
        .checks(&[
            Check {
                label: "dport 5000: owner-b overwrites the mark",
                ..FWD
            },
            Check {
                label: "dport 5001: mark kept, exact match",
                sport: 40001,
                dport: 5001,
                ..FWD
            },
        ]),
        // 6. A terminating ACCEPT in a shared base chain keeps a later owner's rule from running.
        Scenario::new(
            "terminating ACCEPT skips a later owner's mark",
            "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -m comment --comment \"owner-a: trusted\" -j ACCEPT
-A PREROUTING -i vc -p udp -m comment --comment \"owner-b: mark\" -j MARK --set-xmark 0x8/0x8
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m mark --mark 0x8/0x8 -j ACCEPT
COMMIT
",
        )
        .checks(&[
            Check {
                label: "dport 5000: ACCEPTed before owner-b",
                ..FWD
            },
            Check {
                label: "dport 5002: owner-b marks",
                sport: 40002,
                dport: 5002,
                ..FWD
            },
        ]),
        // 7. NOTRACK in raw: the connmark operations later on the path do nothing, a connmark
        //    match on an untracked packet never matches (not even negated), its state is
        //    UNTRACKED, not NEW, and the nat chains never see it.
        Scenario::new(
            "NOTRACK makes CONNMARK a no-op",
            "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j NOTRACK
-A PREROUTING -i vc -p udp -m udp --dport 5003 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -j MARK --set-xmark 0x5/0xff
-A PREROUTING -i vc -j CONNMARK --save-mark --nfmask 0xff --ctmask 0xff
-A PREROUTING -i vc -j CONNMARK --set-xmark 0x700/0xf00
-A FORWARD -m connmark ! --mark 0x1/0x1 -j MARK --set-xmark 0x100/0x100
-A FORWARD -m connmark --mark 0x5/0xff -j MARK --set-xmark 0x200/0x200
-A FORWARD -m conntrack --ctstate UNTRACKED -j MARK --set-xmark 0x400/0x400
-A FORWARD -m state --state NEW -j MARK --set-xmark 0x800/0x800
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -j MARK --set-xmark 0x1000/0x1000
COMMIT
",
        )
        .checks(&[
            Check {
                label: "NOTRACK",
                ..FWD
            },
            Check {
                label: "CT --notrack",
                sport: 40003,
                dport: 5003,
                ..FWD
            },
            Check {
                label: "tracked",
                sport: 40004,
                dport: 5004,
                ..FWD
            },
        ]),
        // 8. NAT chains see only the first packet of a connection.
        Scenario::new(
            "NAT chains only on the first packet",
            "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j MARK --set-xmark 0x20/0x20
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j CONNMARK --set-xmark 0x3/0x3
-A POSTROUTING -m mark --mark 0x20/0x20 -j MARK --set-xmark 0x40/0x40
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A FORWARD -m connmark --mark 0x3/0x3 -j MARK --set-xmark 0x1000/0x1000
COMMIT
",
        )
        .checks(&[
            Check {
                label: "first packet (new)",
                ..FWD
            },
            REPLY,
            Check {
                label: "second packet (established)",
                state: "established",
                ..FWD
            },
        ]),
        // 9. Ingress to a local socket: marks set in PREROUTING, changed in mangle INPUT and
        //    checked in filter INPUT.
        Scenario::new(
            "ingress to a local socket with INPUT mark checks",
            "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.0.1.1/32 -p udp -m udp --dport 5000 -j MARK --set-xmark 0x300/0xf00
-A INPUT -m mark --mark 0x300/0xf00 -j MARK --set-xmark 0x0/0x100
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m mark --mark 0x200/0xf00 -j ACCEPT
-A INPUT -p udp -m udp --dport 5000:5010 -j DROP
COMMIT
",
        )
        .checks(&[
            Check {
                label: "dport 5000: marked, accepted",
                dst: "10.0.1.1",
                path: "ingress",
                oif: None,
                ..FWD
            },
            Check {
                label: "dport 5005: unmarked, dropped",
                dst: "10.0.1.1",
                sport: 40005,
                dport: 5005,
                path: "ingress",
                oif: None,
                ..FWD
            },
        ]),
        // 10. ip6tables next to iptables: each family's rules apply to its own packets only.
        //     (No nft format in `sources::ALL` yet, so the scenario is ip6tables.)
        Scenario {
            ip6tables: "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j MARK --set-xmark 0x60000/0xf0000
-A POSTROUTING -j CONNMARK --save-mark --nfmask 0xf0000 --ctmask 0xf0000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m mark --mark 0x60000/0xf0000 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
",
            ..Scenario::new(
                "ip6tables and iptables side by side",
                "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m mark --mark 0x60000/0xf0000 -j ACCEPT
COMMIT
",
            )
        }
        .checks(&[
            Check {
                label: "IPv6: marked by ip6tables, accepted",
                src: "fd00:1::2",
                dst: "fd00:2::2",
                ..FWD
            },
            Check {
                label: "IPv6 reply: established",
                src: "fd00:2::2",
                dst: "fd00:1::2",
                ..REPLY
            },
            Check {
                label: "IPv4: no mark, dropped",
                sport: 40006,
                ..FWD
            },
        ]),
        // 11. Output path: mangle OUTPUT marks, mangle POSTROUTING saves it; the reply is
        //     restored in PREROUTING and accepted by mark under an INPUT policy of DROP.
        Scenario::new(
            "output mark saved, restored on the reply to a local socket",
            "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -j CONNMARK --restore-mark --mask 0xff
-A OUTPUT -p udp -m udp --dport 5000 -j MARK --set-xmark 0x11/0xff
-A POSTROUTING -o vs -j CONNMARK --save-mark --mask 0xff
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m mark --mark 0x11/0xff -j ACCEPT
COMMIT
",
        )
        .checks(&[
            Check {
                label: "node -> server (output)",
                from: Host::Node,
                src: "192.168.2.1",
                path: "output",
                iif: None,
                ..FWD
            },
            Check {
                label: "server -> node (reply, ingress)",
                from: Host::Server,
                src: "192.168.2.2",
                sport: 5000,
                dst: "192.168.2.1",
                dport: 40000,
                path: "ingress",
                iif: Some("vs"),
                oif: None,
                state: "reply",
                tables: &[],
            },
        ]),
        // 12. Priority order across tables and user chains: raw (-300) marks, mangle (-150)
        //     goes to a chain whose RETURN comes back to the base chain, nat (-100) DNATs by the
        //     mark the two built; filter FORWARD and mangle POSTROUTING see the DNAT state.
        Scenario::new(
            "raw, mangle and nat in priority order with goto and RETURN",
            "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i vc -j MARK --set-xmark 0x1/0x1
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CHAIN-A - [0:0]
:CHAIN-B - [0:0]
-A PREROUTING -i vc -j CHAIN-A
-A PREROUTING -i vc -j MARK --set-xmark 0x10/0x10
-A CHAIN-A -m mark --mark 0x1/0x1 -g CHAIN-B
-A CHAIN-A -j MARK --set-xmark 0x100/0x100
-A CHAIN-B -p udp -m udp --dport 7000 -j MARK --set-xmark 0x2/0x2
-A CHAIN-B -j RETURN
-A CHAIN-B -j MARK --set-xmark 0x4/0x4
-A POSTROUTING -m conntrack --ctstate DNAT -j MARK --set-xmark 0x1000/0x1000
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 192.168.7.7/32 -p udp -m mark --mark 0x13 -j DNAT --to-destination 192.168.2.2:5000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
",
        )
        .checks(&[Check {
            label: "client -> 192.168.7.7:7000 (DNAT by mark)",
            dst: "192.168.7.7",
            dport: 7000,
            ..FWD
        }]),
        // 13. Rules after a DNAT see the new destination: mangle PREROUTING (-150) the Service
        //     address, mangle and filter FORWARD the endpoint's.
        Scenario::new(
            "rules after a DNAT see the endpoint",
            "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j MARK --set-xmark 0x100/0x100
-A FORWARD -d 192.168.2.2/32 -p udp -m udp --dport 5000 -j MARK --set-xmark 0x7/0xff
-A FORWARD -d 10.96.0.10/32 -j MARK --set-xmark 0x8000/0x8000
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 10.96.0.10/32 -p udp -m udp --dport 53 -j DNAT --to-destination 192.168.2.2:5000
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A FORWARD -d 192.168.2.2/32 -p udp -m udp --dport 5000 -j ACCEPT
COMMIT
",
        )
        .checks(&[Check {
            label: "client -> 10.96.0.10:53 (DNAT to 192.168.2.2:5000)",
            dst: "10.96.0.10",
            dport: 53,
            ..FWD
        }]),
    ]
}

/// The scenarios that route by mark: they need the `ip rule` parser.
fn routing_scenarios() -> Vec<Scenario> {
    const TABLES: &[(&str, &str)] = &[("vs", "main"), ("vx", "100")];
    vec![
        // 4. A mangle OUTPUT mark re-routes through `ip rule fwmark` to another table.
        Scenario {
            server2: true,
            node_ip: "route add 192.168.9.0/24 via 192.168.2.2 dev vs
route add 192.168.9.0/24 via 192.168.3.2 dev vx table 100
rule add fwmark 0x10/0xff lookup 100 priority 100
",
            ..Scenario::new(
                "mangle OUTPUT mark re-routes by ip rule fwmark (output)",
                "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -d 192.168.9.9/32 -p udp -m udp --dport 5000 -j MARK --set-xmark 0x10/0xff
COMMIT
",
            )
        }
        .checks(&[
            Check {
                label: "dport 5000: marked, re-routed to table 100",
                from: Host::Node,
                src: "0.0.0.0",
                dst: "192.168.9.9",
                path: "output",
                iif: None,
                tables: TABLES,
                ..FWD
            },
            Check {
                label: "dport 5001: unmarked, main table",
                from: Host::Node,
                src: "0.0.0.0",
                sport: 40001,
                dst: "192.168.9.9",
                dport: 5001,
                path: "output",
                iif: None,
                tables: TABLES,
                ..FWD
            },
        ]),
        // 4b. The same on the forward path: a PREROUTING mark picks the table.
        Scenario {
            server2: true,
            node_ip: "route add 192.168.9.0/24 via 192.168.2.2 dev vs
route add 192.168.9.0/24 via 192.168.3.2 dev vx table 100
rule add not fwmark 0x10/0x10 lookup main priority 90
rule add fwmark 0x10/0xff lookup 100 priority 100
",
            ..Scenario::new(
                "PREROUTING mark routes by ip rule fwmark (forward)",
                "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j MARK --set-xmark 0x10/0xff
COMMIT
",
            )
        }
        .checks(&[
            Check {
                label: "dport 5000: marked, table 100",
                dst: "192.168.9.9",
                oif: Some("vx"),
                tables: TABLES,
                ..FWD
            },
            Check {
                label: "dport 5001: unmarked, main table",
                sport: 40001,
                dst: "192.168.9.9",
                dport: 5001,
                tables: TABLES,
                ..FWD
            },
        ]),
        // 4c. Only the rule of the packet's family, with all its selectors, decides: an
        //     `ip -6 rule`, a `from`, an `iif` and a `not from` rule ahead of the one that
        //     matches. Table 200 is unreachable, so choosing it drops the packet.
        Scenario {
            server2: true,
            node_ip: "route add 192.168.9.0/24 via 192.168.2.2 dev vs
route add 192.168.9.0/24 via 192.168.3.2 dev vx table 100
route add unreachable 192.168.9.0/24 table 200
rule add from 192.168.99.0/24 fwmark 0x10/0xff lookup 200 priority 60
rule add iif vs fwmark 0x10/0xff lookup 200 priority 70
rule add not from 10.0.1.0/24 fwmark 0x10/0xff lookup 200 priority 75
rule add fwmark 0x10/0xff lookup 100 priority 100
",
            node_ip6: "route add fd00:9::/64 via fd00:2::2 dev vs
route add fd00:9::/64 via fd00:3::2 dev vx table 200
rule add fwmark 0x10/0xff lookup 200 priority 50
",
            ip6tables: "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j MARK --set-xmark 0x10/0xff
COMMIT
",
            ..Scenario::new(
                "ip rule selectors and families (forward)",
                "*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i vc -p udp -m udp --dport 5000 -j MARK --set-xmark 0x10/0xff
COMMIT
",
            )
        }
        .checks(&[
            Check {
                label: "IPv4 marked: the fwmark rule at 100",
                dst: "192.168.9.9",
                oif: Some("vx"),
                tables: TABLES,
                ..FWD
            },
            Check {
                label: "IPv6 marked: the ip -6 rule at 50",
                src: "fd00:1::2",
                dst: "fd00:9::9",
                oif: Some("vx"),
                tables: &[("vs", "main"), ("vx", "200")],
                ..FWD
            },
        ]),
    ]
}

/// Native nft rulesets loaded with `nft -f` (not iptables-nft): their conditions are nft's
/// (`iifname`, `udp dport`, `ct state`, `ip daddr`), decoded by the nft reader, and the trace
/// must not fork on them.
fn nft_scenarios() -> Vec<Scenario> {
    vec![
        // n1. Marks set by interface and port in an inet prerouting chain; a forward chain with
        //     policy drop accepts by mark and by conntrack state.
        Scenario {
            nft: r#"table inet ms {
	chain ms_pre {
		type filter hook prerouting priority mangle; policy accept;
		meta mark set meta mark | 0x00000100
		iifname "vc" udp dport 5000 meta mark set meta mark | 0x00000010
		iifname "vc" udp dport 5001 meta mark set 0x00000020
		iifname "vs" meta mark set meta mark & 0xfffffeff
	}
	chain ms_forward {
		type filter hook forward priority filter; policy drop;
		meta mark & 0x00000010 == 0x00000010 accept
		ct state established,related accept
	}
}
"#,
            ..Scenario::new(
                "nft: marks by interface and port, forward by mark (inet)",
                "",
            )
        }
        .checks(&[
            FWD,
            Check {
                label: "dport 5001: whole mark 0x20, dropped by policy",
                sport: 40001,
                dport: 5001,
                ..FWD
            },
            REPLY,
        ]),
        // n2. Connmark save on the original direction, restore on the reply, with nft's own
        //     expressions (`ct mark set meta mark & …`, `meta mark set ct mark`).
        Scenario {
            nft: r#"table ip ms {
	chain ms_pre {
		type filter hook prerouting priority mangle; policy accept;
		iifname "vc" ct state new meta mark set meta mark | 0x00002000
		meta mark & 0x00002000 == 0x00002000 ct mark set ct mark | 0x00002000
		iifname "vs" meta mark set ct mark & 0x00002000
	}
	chain ms_forward {
		type filter hook forward priority mangle; policy accept;
		iifname "vs" meta mark & 0x00002000 == 0x00002000 meta mark set meta mark | 0x00000001
	}
}
"#,
            ..Scenario::new("nft: connmark save and restore across directions", "")
        }
        .checks(&[FWD, REPLY]),
        // n3. nft NAT: a Service address DNATed with a mark, masqueraded by mark at srcnat, and
        //     a filter chain that sees the new destination. Dumped as `nft -j`.
        Scenario {
            nft: r#"table ip msnat {
	chain ms_pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.96.0.10 udp dport 53 meta mark set meta mark | 0x00004000 dnat to 192.168.2.2:5000
	}
	chain ms_post {
		type nat hook postrouting priority srcnat; policy accept;
		meta mark & 0x00004000 == 0x00004000 meta mark set meta mark ^ 0x00004000 masquerade
	}
}
table ip msfilter {
	chain ms_forward {
		type filter hook forward priority filter; policy drop;
		ip daddr 192.168.2.2 udp dport 5000 accept
		ct state established accept
	}
}
"#,
            nft_json: true,
            ..Scenario::new("nft: DNAT with a mark, masquerade by mark (nft -j)", "")
        }
        .checks(&[
            Check {
                label: "client -> Service address",
                dst: "10.96.0.10",
                dport: 53,
                ..FWD
            },
            Check {
                label: "client -> server port 5001 directly: not DNATed, dropped",
                sport: 40002,
                dport: 5001,
                ..FWD
            },
        ]),
    ]
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn trace_of_native_nft_rules_agrees_with_the_kernel() {
    differential("n", nft_scenarios(), 3);
}

#[test]
fn trace_agrees_with_the_kernel() {
    differential("k", scenarios(), 10);
}

// The trace's routing decision reads the `ip rule` touchpoints of the dumped `ip rule show`.
#[test]
fn trace_routing_by_mark_agrees_with_the_kernel() {
    differential("r", routing_scenarios(), 3);
}

/// Not a test: when [`SEND_ENV`] is set (by [`Lab::send`], inside a namespace), sends one
/// datagram and returns; otherwise does nothing.
#[test]
fn udp_send_helper() {
    let Ok(spec) = std::env::var(SEND_ENV) else {
        return;
    };
    let f: Vec<&str> = spec.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{SEND_ENV}={spec}: want SRC SPORT DST DPORT");
    let src: IpAddr = f[0].parse().unwrap();
    let dst: IpAddr = f[2].parse().unwrap();
    let sock = UdpSocket::bind(SocketAddr::new(src, f[1].parse().unwrap())).unwrap();
    let mut payload = MAGIC.to_vec();
    payload.extend_from_slice(b" markspace trace");
    sock.send_to(&payload, SocketAddr::new(dst, f[3].parse().unwrap()))
        .unwrap();
}

/// Runs scenarios; `tag` keeps the namespace names of two tests apart.
fn differential(tag: &str, scenarios: Vec<Scenario>, at_least: usize) {
    if !is_root() {
        eprintln!("trace differential SKIPPED: not root (CI runs as root)");
        return;
    }
    let start = Instant::now();
    let total = scenarios.len();
    assert!(total >= at_least, "{total} scenarios, want {at_least}");
    let mut agree = 0;
    let mut report = String::new();
    for (i, s) in scenarios.iter().enumerate() {
        let lab = Lab::new(&format!("{tag}{i}"), s);
        let mut ok = true;
        let mut lines = String::new();
        for c in &s.checks {
            let (good, line) = lab.check(c);
            ok &= good;
            let _ = writeln!(lines, "    {} {}: {line}", mark(good), c.label);
        }
        agree += usize::from(ok);
        let _ = write!(
            report,
            "trace differential: {} {}\n{lines}",
            if ok { "agree   " } else { "DISAGREE" },
            s.name
        );
    }
    let _ = writeln!(
        report,
        "trace differential: {agree}/{total} scenarios agree with the kernel ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    println!("{report}");
    assert_eq!(agree, total, "\n{report}");
}

fn mark(good: bool) -> &'static str {
    if good {
        "ok "
    } else {
        "BAD"
    }
}

// ---------------------------------------------------------------------------------------------
// The lab

/// The nft probes loaded in every namespace (see the module documentation).
const PROBES: &str = "table inet msprobe {
  set post { type ifname . mark; flags dynamic; }
  set postct { type mark; flags dynamic; }
  set inp { type ifname . mark; flags dynamic; }
  set inpct { type mark; flags dynamic; }
  set src4 { type ipv4_addr; flags dynamic; }
  set src6 { type ipv6_addr; flags dynamic; }
  chain pre {
    type filter hook prerouting priority -500;
    meta nfproto ipv4 meta l4proto udp @th,64,32 0x4d53504b add @src4 { ip saddr }
    meta nfproto ipv6 meta l4proto udp @th,64,32 0x4d53504b add @src6 { ip6 saddr }
  }
  chain post {
    type filter hook postrouting priority 500;
    meta l4proto udp @th,64,32 0x4d53504b add @post { oifname . meta mark }
    meta l4proto udp @th,64,32 0x4d53504b add @postct { ct mark }
  }
  chain inp {
    type filter hook input priority 500;
    meta l4proto udp @th,64,32 0x4d53504b add @inp { iifname . meta mark }
    meta l4proto udp @th,64,32 0x4d53504b add @inpct { ct mark }
  }
}
";

const FLUSH: &str = "flush set inet msprobe post
flush set inet msprobe postct
flush set inet msprobe inp
flush set inet msprobe inpct
flush set inet msprobe src4
flush set inet msprobe src6
";

/// A namespace of the lab and the host it plays (deleted on drop, even when the test fails).
struct Ns {
    ns: Netns,
    host: Host,
}

impl Ns {
    fn new(tag: &str, host: Host) -> Ns {
        let ns = Netns::new(tag);
        ns.exec(
            &[
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ],
            None,
        );
        ns.exec(&["nft", "-f", "-"], Some(PROBES));
        Ns { ns, host }
    }

    fn name(&self) -> &str {
        self.ns.name()
    }

    fn exec(&self, argv: &[&str], stdin: Option<&str>) -> String {
        self.ns.exec(argv, stdin)
    }

    /// `ip -batch` commands in this namespace.
    fn ip(&self, batch: &str) {
        if !batch.trim().is_empty() {
            run(&["ip", "-n", self.name(), "-batch", "-"], Some(batch));
        }
    }

    /// `ip -6 -batch` commands in this namespace.
    fn ip6(&self, batch: &str) {
        if !batch.trim().is_empty() {
            run(&["ip", "-6", "-n", self.name(), "-batch", "-"], Some(batch));
        }
    }
}

/// One side of a veth link: interface, MAC, IPv4 and IPv6 address.
struct End {
    ns: usize,
    iface: &'static str,
    mac: &'static str,
    v4: &'static str,
    v6: &'static str,
}

/// What the probes saw of one datagram.
#[derive(Debug, Default)]
struct Seen {
    /// Node, postrouting: egress interface and mark.
    post: Option<(String, u32)>,
    post_ct: Option<u32>,
    /// Node, input: ingress interface and mark.
    input: Option<(String, u32)>,
    input_ct: Option<u32>,
    /// Namespaces it arrived in (prerouting), with its source address there.
    arrived: Vec<(Host, IpAddr)>,
}

/// The namespaces of one scenario, and the node's ruleset dump.
struct Lab {
    nss: Vec<Ns>,
    dir: Dir,
    /// The same snapshot with the iptables tables as `iptables -t T -nvL` listings (the form
    /// sosreports hold) instead of `iptables-save`.
    listing: Dir,
}

impl Lab {
    fn new(id: &str, s: &Scenario) -> Lab {
        let mut hosts = vec![(Host::Node, "n"), (Host::Client, "c"), (Host::Server, "s")];
        if s.server2 {
            hosts.push((Host::Server2, "x"));
        }
        let nss: Vec<Ns> = hosts
            .into_iter()
            .map(|(h, tag)| Ns::new(&format!("tr-{id}{tag}"), h))
            .collect();
        let node = &nss[0];
        node.exec(
            &[
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
            None,
        );
        let mut links = vec![
            (
                End {
                    ns: 0,
                    iface: s.client_if,
                    mac: "02:00:00:00:01:01",
                    v4: "10.0.1.1/24",
                    v6: "fd00:1::1/64",
                },
                End {
                    ns: 1,
                    iface: "eth0",
                    mac: "02:00:00:00:01:02",
                    v4: "10.0.1.2/24",
                    v6: "fd00:1::2/64",
                },
            ),
            (
                End {
                    ns: 0,
                    iface: "vs",
                    mac: "02:00:00:00:02:01",
                    v4: "192.168.2.1/24",
                    v6: "fd00:2::1/64",
                },
                End {
                    ns: 2,
                    iface: "eth0",
                    mac: "02:00:00:00:02:02",
                    v4: "192.168.2.2/24",
                    v6: "fd00:2::2/64",
                },
            ),
        ];
        if s.server2 {
            links.push((
                End {
                    ns: 0,
                    iface: "vx",
                    mac: "02:00:00:00:03:01",
                    v4: "192.168.3.1/24",
                    v6: "fd00:3::1/64",
                },
                End {
                    ns: 3,
                    iface: "eth0",
                    mac: "02:00:00:00:03:02",
                    v4: "192.168.3.2/24",
                    v6: "fd00:3::2/64",
                },
            ));
        }
        let mut batches = vec![String::new(); nss.len()];
        for (a, b) in &links {
            let _ = writeln!(
                batches[a.ns],
                "link add {} address {} type veth peer name {} address {} netns {}",
                a.iface,
                a.mac,
                b.iface,
                b.mac,
                nss[b.ns].name()
            );
        }
        // Links first (the peers must exist before the other namespaces configure them).
        nss[0].ip(&batches[0]);
        let mut batches = vec![String::new(); nss.len()];
        for (a, b) in &links {
            for (me, peer) in [(a, b), (b, a)] {
                let ip = |cidr: &str| cidr.split('/').next().unwrap_or("").to_string();
                let _ = write!(
                    batches[me.ns],
                    "addr add {} dev {i}\naddr add {} dev {i} nodad\nlink set {i} up\n\
                     neigh add {} lladdr {} dev {i} nud permanent\n\
                     neigh add {} lladdr {} dev {i} nud permanent\n",
                    me.v4,
                    me.v6,
                    ip(peer.v4),
                    peer.mac,
                    ip(peer.v6),
                    peer.mac,
                    i = me.iface,
                );
                if me.ns != 0 {
                    // Every other namespace routes everything through the node.
                    let _ = write!(
                        batches[me.ns],
                        "route add default via {}\nroute add default via {}\n",
                        ip(peer.v4),
                        ip(peer.v6)
                    );
                }
            }
        }
        for (ns, batch) in nss.iter().zip(&batches) {
            ns.ip(batch);
        }
        let node = &nss[0];
        node.ip(s.node_ip);
        node.ip6(s.node_ip6);
        node.exec(&["iptables-restore"], Some(s.iptables));
        if !s.ip6tables.is_empty() {
            node.exec(&["ip6tables-restore"], Some(s.ip6tables));
        }
        if !s.nft.is_empty() {
            node.exec(&["nft", "-f", "-"], Some(s.nft));
        }
        // The snapshot markspace reads: what `markspace collect` would capture of these.
        let dir = Dir::new();
        let listing = Dir::new();
        let v4 = node.exec(&["iptables-save"], None);
        dir.file("iptables-save.txt", &v4);
        let v6 = node.exec(&["ip6tables-save"], None);
        if !v6.trim().is_empty() {
            dir.file("ip6tables-save.txt", &v6);
        }
        for (cmd, save) in [("iptables", &v4), ("ip6tables", &v6)] {
            // Only the tables the rules use: listing another would create it.
            for table in save.lines().filter_map(|l| l.strip_prefix('*')) {
                let text = node.exec(&[cmd, "-t", table, "-nvL"], None);
                listing.file(&format!("{cmd}_-t_{table}_-nvL"), &text);
            }
        }
        for (k, table) in nft_tables(s.nft).iter().enumerate() {
            let mut argv = vec!["nft"];
            if s.nft_json {
                argv.push("-j");
            }
            argv.extend(["list", "table", table.0, table.1]);
            let ext = if s.nft_json { "json" } else { "nft" };
            let text = node.exec(&argv, None);
            dir.file(&format!("nft-{k}.{ext}"), &text);
            listing.file(&format!("nft-{k}.{ext}"), &text);
        }
        for d in [&dir, &listing] {
            d.file("ip-rule.txt", &node.exec(&["ip", "rule", "show"], None));
            d.file(
                "ip-6-rule.txt",
                &node.exec(&["ip", "-6", "rule", "show"], None),
            );
        }
        Lab { nss, dir, listing }
    }

    fn ns(&self, host: Host) -> &Ns {
        self.nss
            .iter()
            .find(|n| n.host == host)
            .expect("the scenario has this namespace")
    }

    /// Sends one datagram from `host` and reads the probes.
    fn send(&self, c: &Check) -> Seen {
        for ns in &self.nss {
            ns.exec(&["nft", "-f", "-"], Some(FLUSH));
        }
        let exe = std::env::current_exe().expect("the test binary");
        let exe = exe.to_string_lossy();
        let spec = format!("{} {} {} {}", c.src, c.sport, c.dst, c.dport);
        let out = Command::new("ip")
            .args(["netns", "exec", self.ns(c.from).name()])
            .args([&*exe, "--exact", "trace_kernel::udp_send_helper"])
            .args(["--test-threads", "1", "--quiet"])
            .env(SEND_ENV, &spec)
            .output()
            .expect("the test binary runs");
        assert!(
            out.status.success(),
            "sending {spec} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // veth delivery is synchronous in practice; allow a little time anyway, and more when
        // nothing was seen yet (a drop is only known by waiting).
        let complete = |s: &Seen| match c.path {
            "ingress" => s.input.is_some(),
            _ => s
                .arrived
                .iter()
                .any(|(h, _)| *h != Host::Node && *h != c.from),
        };
        let deadline = Instant::now() + Duration::from_millis(250);
        loop {
            std::thread::sleep(Duration::from_millis(10));
            let seen = self.read();
            if complete(&seen) || Instant::now() > deadline {
                return seen;
            }
        }
    }

    fn read(&self) -> Seen {
        let mut seen = Seen::default();
        for ns in &self.nss {
            let sets = nft_sets(&ns.exec(&["nft", "list", "table", "inet", "msprobe"], None));
            let first = |name: &str| sets.iter().find(|(n, _)| n == name).map(|(_, e)| e);
            let src = ["src4", "src6"]
                .iter()
                .find_map(|set| first(set)?.first()?.parse::<IpAddr>().ok());
            if let Some(src) = src {
                seen.arrived.push((ns.host, src));
            }
            if ns.host != Host::Node {
                continue;
            }
            let if_mark = |name: &str| {
                let e = first(name)?.first()?;
                let (i, m) = e.split_once(" . ")?;
                Some((i.trim_matches('"').to_string(), parse_hex(m)?))
            };
            let mark = |name: &str| parse_hex(first(name)?.first()?);
            seen.post = if_mark("post");
            seen.input = if_mark("inp");
            seen.post_ct = mark("postct");
            seen.input_ct = mark("inpct");
        }
        seen
    }

    /// The connmark of the node's conntrack entry holding this datagram's ports, if any.
    fn conntrack_mark(&self, c: &Check) -> Option<u32> {
        let out = self.ns(Host::Node).exec(&["conntrack", "-L"], None);
        let fwd = format!("sport={} dport={} ", c.sport, c.dport);
        let rev = format!("sport={} dport={} ", c.dport, c.sport);
        let line = out.lines().find(|l| l.contains(&fwd) || l.contains(&rev))?;
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("mark="))
            .and_then(|m| m.parse().ok())
    }

    /// Sends the datagram, traces the same packet, and compares.
    fn check(&self, c: &Check) -> (bool, String) {
        let ctmark = if c.state == "new" {
            0
        } else {
            match self.conntrack_mark(c) {
                Some(m) => m,
                None => return (false, "no conntrack entry before a later packet".into()),
            }
        };
        let seen = self.send(c);
        let tr = self.trace(c, ctmark, &self.dir);
        let from_listing = self.trace(c, ctmark, &self.listing);
        let mut problems = Vec::new();

        // The kernel's view.
        let (delivered, k_mark, k_ct, egress) = match c.path {
            "ingress" => (
                seen.input.is_some(),
                seen.input.as_ref().map(|x| x.1),
                seen.input_ct,
                None,
            ),
            _ => (
                seen.arrived
                    .iter()
                    .any(|(h, _)| *h != Host::Node && *h != c.from),
                seen.post.as_ref().map(|x| x.1),
                seen.post_ct,
                seen.post.as_ref().map(|x| x.0.clone()),
            ),
        };
        let arrived_src = seen
            .arrived
            .iter()
            .find(|(h, _)| *h != c.from && (c.path == "ingress") == (*h == Host::Node))
            .map(|x| x.1);
        let k_snat = match (arrived_src, c.src.parse::<IpAddr>()) {
            (Some(a), Ok(s)) if !s.is_unspecified() => Some(a != s),
            _ => None,
        };

        let kernel = KernelView {
            delivered,
            mark: k_mark,
            ct: k_ct,
            egress,
            snat: k_snat,
        };
        let mut line = String::new();
        for (form, tr) in [("", &tr), ("from iptables -L: ", &from_listing)] {
            let mut found = Vec::new();
            let mut text = String::new();
            if !compare(c, &kernel, ctmark, tr, &mut text, &mut found) {
                return (false, format!("{form}{}", found.join("; ")));
            }
            if form.is_empty() {
                line = text;
            }
            problems.extend(found.into_iter().map(|p| format!("{form}{p}")));
        }
        if problems.is_empty() {
            (true, line + "; trace agrees")
        } else {
            (false, format!("{line}; {}", problems.join("; ")))
        }
    }

    /// `markspace trace --format json` on the node's dump with the datagram's packet.
    fn trace(&self, c: &Check, ctmark: u32, snapshot: &Dir) -> serde_json::Value {
        let dir = snapshot.path().display().to_string();
        let sport = c.sport.to_string();
        let dport = c.dport.to_string();
        let ct = format!("{ctmark:#x}");
        let mut args = vec![
            "trace", &dir, "--format", "json", "--path", c.path, "--state", c.state, "--proto",
            "udp", "--sport", &sport, "--dport", &dport, "--dst", c.dst, "--ctmark", &ct,
        ];
        if c.src != "0.0.0.0" {
            args.extend(["--src", c.src]);
        }
        if let Some(i) = c.iif {
            args.extend(["--in", i]);
        }
        if let Some(o) = c.oif {
            args.extend(["--out", o]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_markspace"))
            .args(&args)
            .output()
            .expect("markspace runs");
        assert!(
            out.status.success(),
            "markspace {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("trace JSON")
    }
}

/// What the kernel did with a datagram, read from the probes.
struct KernelView {
    delivered: bool,
    mark: Option<u32>,
    ct: Option<u32>,
    egress: Option<String>,
    snat: Option<bool>,
}

/// Compares one trace (`markspace trace --format json`) with the kernel's view: the summary
/// goes to `line`, each disagreement to `problems`; false when the trace has no path at all.
fn compare(
    c: &Check,
    kernel: &KernelView,
    ctmark: u32,
    tr: &serde_json::Value,
    line: &mut String,
    problems: &mut Vec<String>,
) -> bool {
    let KernelView {
        delivered,
        mark: k_mark,
        ct: k_ct,
        egress,
        snat: k_snat,
    } = kernel;
    let (delivered, k_mark, k_ct, k_snat) = (*delivered, *k_mark, *k_ct, *k_snat);
    // The trace's view.
    let paths = tr["paths"].as_array().cloned().unwrap_or_default();
    if paths.len() != 1 {
        problems.push(format!("trace gave {} paths", paths.len()));
    }
    let Some(p) = paths.first() else {
        return false;
    };
    let t_delivered = p["verdict"] == "ACCEPT";
    let t_mark = p["mark"].as_str().and_then(parse_hex);
    let t_ct = p["ctmark"].as_str().and_then(parse_hex);
    let t_snat = p["steps"].as_array().is_some_and(|steps| {
        steps.iter().any(|s| {
            s["kind"] == "rule"
                && s["matched"] == true
                && matches!(s["verdict"].as_str(), Some("MASQUERADE" | "SNAT"))
        })
    });
    let t_table = p["table"].as_str().map(str::to_string);

    *line = if delivered {
        format!(
            "kernel delivered, mark {} ct {}",
            opt_hex(k_mark),
            k_ct.map_or("untracked".into(), |v| format!("{v:#x}")),
        )
    } else {
        "kernel dropped".to_string()
    };
    if delivered != t_delivered {
        problems.push(format!("trace verdict {}", p["verdict"]));
    }
    if delivered {
        if k_mark != t_mark {
            problems.push(format!("trace mark {}", opt_hex(t_mark)));
        }
        // Untracked: the trace must have left the connmark alone.
        let want_ct = k_ct.unwrap_or(ctmark);
        if Some(want_ct) != t_ct {
            problems.push(format!("trace ctmark {}", opt_hex(t_ct)));
        }
        if c.state != "reply" {
            if let Some(k) = k_snat {
                let _ = write!(line, " snat {}", yes(k));
                if k != t_snat {
                    problems.push(format!("trace snat {}", yes(t_snat)));
                }
            }
        }
        if !c.tables.is_empty() {
            let k_table = egress.as_deref().and_then(|e| {
                c.tables
                    .iter()
                    .find(|(i, _)| *i == e)
                    .map(|(_, t)| t.to_string())
            });
            let _ = write!(
                line,
                " via {} (table {})",
                egress.as_deref().unwrap_or("?"),
                k_table.as_deref().unwrap_or("?")
            );
            if k_table != t_table {
                problems.push(format!("trace table {t_table:?}"));
            }
        } else if let (Some(e), Some(o)) = (&egress, c.oif) {
            if e != o {
                problems.push(format!("lab: left through {e}, expected {o}"));
            }
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/// The (family, name) of every `table FAMILY NAME {` of an nft script.
fn nft_tables(script: &str) -> Vec<(&str, &str)> {
    script
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("table")).then_some(())?;
            Some((w.next()?, w.next()?))
        })
        .collect()
}

/// The elements of every set in `nft list table` output, by set name.
fn nft_sets(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut collecting: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("set ") {
            out.push((rest.trim_end_matches('{').trim().to_string(), Vec::new()));
            continue;
        }
        let body = if let Some(rest) = t.strip_prefix("elements = {") {
            collecting = Some(String::new());
            rest
        } else if collecting.is_some() {
            t
        } else {
            continue;
        };
        let (part, end) = match body.split_once('}') {
            Some((p, _)) => (p, true),
            None => (body, false),
        };
        if let Some(acc) = collecting.as_mut() {
            acc.push_str(part);
            acc.push(' ');
        }
        if end {
            let acc = collecting.take().unwrap_or_default();
            if let Some(last) = out.last_mut() {
                last.1 = acc
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect();
            }
        }
    }
    out
}

fn parse_hex(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn opt_hex(v: Option<u32>) -> String {
    v.map_or("-".into(), |v| format!("{v:#x}"))
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
