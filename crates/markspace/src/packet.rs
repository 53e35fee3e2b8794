//! A concrete packet and the non-mark conditions rules test on it: one typed condition model for
//! every input format.
//!
//! Parsers do not keep these conditions in the model (a million-rule audit does not need them):
//! each format with rules registers a [`DetailDecoder`] in the format table, and `trace` (or any
//! check) asks for a rule's [`RuleDetails`] when the rule is on the packet's path. iptables
//! `-i eth0`, nft `iifname "eth0"` and `{"match": {"left": {"meta": {"key": "iifname"}}, …}}` all
//! decode to the same [`Cond::InIface`].

use std::net::IpAddr;

use serde::Serialize;

use crate::source::Span;

/// Which way the packet goes through the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    /// Arrives on an interface and is delivered to a local socket (PREROUTING, INPUT).
    Ingress,
    /// Arrives on one interface and leaves on another (PREROUTING, FORWARD, POSTROUTING).
    Forward,
    /// Sent by a local socket (OUTPUT, POSTROUTING).
    Output,
}

/// The conntrack state of the packet's connection, as iptables names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtState {
    /// First packet of a connection (NAT chains run).
    New,
    /// A later packet in the original direction.
    Established,
    /// A packet in the reply direction (also ESTABLISHED to iptables).
    Reply,
}

/// The packet being traced.
#[derive(Clone, Debug, Serialize)]
pub struct Packet {
    /// Input interface (ingress and forward paths).
    pub in_iface: Option<String>,
    /// Output interface (forward and output paths).
    pub out_iface: Option<String>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp).
    pub proto: Option<u8>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// The path.
    pub path: PathKind,
    /// The conntrack state.
    pub state: CtState,
}

impl Packet {
    /// Whether the packet is IPv6 (by its addresses; IPv4 when none is given).
    pub fn is_ipv6(&self) -> bool {
        matches!(self.src.or(self.dst), Some(IpAddr::V6(_)))
    }
}

/// An address prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `10.1.2.3` (host), `fe80::/10`, and iptables' `0.0.0.0/0` and dotted
    /// netmasks (`10.0.0.0/255.0.0.0`).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => match l.parse::<std::net::Ipv4Addr>() {
                    Ok(mask) => u32::from(mask).count_ones() as u8,
                    Err(_) => return None,
                },
            },
        };
        Some(Cidr { addr, len })
    }

    /// Whether an address lies inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len))
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len))
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A condition of a rule other than its mark operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    /// `-p PROTO`.
    Proto(u8),
    /// `-s CIDR`.
    Src(Cidr),
    /// `-d CIDR`.
    Dst(Cidr),
    /// `-i IFACE` (a trailing `+` is a prefix).
    InIface(String),
    /// `-o IFACE`.
    OutIface(String),
    /// `--sport`/`--sports` ranges.
    Sport(Vec<(u16, u16)>),
    /// `--dport`/`--dports` ranges.
    Dport(Vec<(u16, u16)>),
    /// `--ctstate`/`--state` list (NEW, ESTABLISHED, RELATED, INVALID, UNTRACKED).
    CtState(Vec<String>),
    /// `-m conntrack --ctdir ORIGINAL|REPLY`.
    CtDir(bool),
    /// `-m addrtype --src-type|--dst-type TYPES`: only `LOCAL` is decided, from the path (a
    /// forwarded packet's destination is not local; an output packet's source is).
    AddrType {
        /// Tests the destination (else the source).
        dst: bool,
        /// The types, upper case.
        types: Vec<String>,
    },
    /// Any one of several conditions (an nft anonymous set: `iifname { "eth0", "eth1" }`).
    Any(Vec<Cond>),
    /// The packet's family: IPv6 (true) or IPv4 (nft `meta nfproto`, `ether type`).
    Ipv6(bool),
    /// Something trace cannot evaluate (ipsets, `statistic`, `socket`, address types,
    /// unknown matches): the name says what, for `--assume`.
    Unknown(String),
}

/// What the walk knows of the packet's connection at a rule, beyond the packet itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Whether the packet has a conntrack entry (false after `NOTRACK` / `CT --notrack`).
    pub tracked: bool,
    /// Whether the connection's destination was rewritten (conntrack status `DNAT`, set by a
    /// DNAT/REDIRECT rule in the first packet's nat chains); `None` when unknown (a later
    /// packet: its connection's first packet is not in the trace).
    pub dnat: Option<bool>,
    /// The same for the source (`SNAT`: SNAT or MASQUERADE).
    pub snat: Option<bool>,
}

impl Flow {
    /// A tracked connection whose first packet this is, before any NAT rule.
    pub fn new_connection() -> Flow {
        Flow {
            tracked: true,
            dnat: Some(false),
            snat: Some(false),
        }
    }
}

/// The conntrack state test of `-m conntrack --ctstate` / `-m state --state` (before `!`), as
/// `xt_conntrack.c` / `xt_state.c` compute it: an untracked packet is `UNTRACKED` and nothing
/// else; a tracked one is `NEW` or `ESTABLISHED` (a reply is `ESTABLISHED`), plus the virtual
/// states `SNAT` / `DNAT` when its connection was NATed. `None` when a NAT state is asked and
/// not known.
fn ct_state(states: &[String], p: &Packet, flow: &Flow) -> Option<bool> {
    if !flow.tracked {
        return Some(states.iter().any(|s| s == "UNTRACKED"));
    }
    let have = match p.state {
        CtState::New => "NEW",
        CtState::Established | CtState::Reply => "ESTABLISHED",
    };
    let mut unknown = false;
    for s in states {
        let nat = match s.as_str() {
            x if x == have => return Some(true),
            "DNAT" => flow.dnat,
            "SNAT" => flow.snat,
            _ => Some(false),
        };
        match nat {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

/// One condition with its `!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Test {
    /// The condition.
    pub cond: Cond,
    /// Whether it is negated.
    pub invert: bool,
}

/// The outcome of testing a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Matches.
    Yes,
    /// Does not match.
    No,
    /// Cannot be decided; the string names the condition (`statistic`, `set`, …).
    Unknown(String),
}

fn iface_matches(pattern: &str, name: Option<&str>) -> Option<bool> {
    let name = name?;
    Some(match pattern.strip_suffix('+') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    })
}

fn in_ranges(ranges: &[(u16, u16)], port: Option<u16>) -> Option<bool> {
    let p = port?;
    Some(ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&p)))
}

impl Test {
    /// Tests the condition on a packet of a connection. A field the packet does not carry (no
    /// ports given, say) makes the condition unknown rather than false.
    pub fn eval(&self, p: &Packet, flow: &Flow) -> Outcome {
        let r: Option<bool> = match &self.cond {
            Cond::Proto(n) => p.proto.map(|x| x == *n),
            Cond::Src(c) => p.src.map(|a| c.contains(a)),
            Cond::Dst(c) => p.dst.map(|a| c.contains(a)),
            Cond::InIface(i) => iface_matches(i, p.in_iface.as_deref()),
            Cond::OutIface(i) => iface_matches(i, p.out_iface.as_deref()),
            Cond::Sport(r) => in_ranges(r, p.sport),
            Cond::Dport(r) => in_ranges(r, p.dport),
            Cond::CtState(states) => ct_state(states, p, flow),
            // xt_conntrack: without a conntrack entry every test but the state fails, `!` or
            // not.
            Cond::CtDir(_) if !flow.tracked => return Outcome::No,
            Cond::CtDir(reply) => Some(*reply == (p.state == CtState::Reply)),
            Cond::AddrType { dst, types } => {
                let local = match (dst, p.path) {
                    (true, PathKind::Ingress) | (false, PathKind::Output) => Some(true),
                    (true, PathKind::Forward)
                    | (false, PathKind::Forward)
                    | (false, PathKind::Ingress) => Some(false),
                    (true, PathKind::Output) => None,
                };
                match local {
                    Some(true) if types.iter().all(|t| t == "LOCAL") => Some(true),
                    Some(false) if types.iter().all(|t| t == "LOCAL") => Some(false),
                    _ => None,
                }
            }
            Cond::Ipv6(v6) => Some(p.is_ipv6() == *v6),
            Cond::Any(conds) => {
                let mut unknown = None;
                let mut hit = false;
                for c in conds {
                    match (Test {
                        cond: c.clone(),
                        invert: false,
                    })
                    .eval(p, flow)
                    {
                        Outcome::Yes => {
                            hit = true;
                            break;
                        }
                        Outcome::No => {}
                        Outcome::Unknown(name) => unknown = unknown.or(Some(name)),
                    }
                }
                match (hit, unknown) {
                    (true, _) => Some(true),
                    (false, None) => Some(false),
                    (false, Some(name)) => return Outcome::Unknown(name),
                }
            }
            Cond::Unknown(name) => return Outcome::Unknown(name.clone()),
        };
        match r {
            Some(b) if b != self.invert => Outcome::Yes,
            Some(_) => Outcome::No,
            None => Outcome::Unknown(
                match &self.cond {
                    Cond::Proto(_) => "protocol",
                    Cond::Src(_) => "source address",
                    Cond::Dst(_) => "destination address",
                    Cond::InIface(_) => "input interface",
                    Cond::OutIface(_) => "output interface",
                    Cond::Sport(_) => "source port",
                    Cond::Dport(_) => "destination port",
                    Cond::AddrType { .. } => "addrtype",
                    Cond::CtState(_) => "conntrack nat state",
                    _ => "condition",
                }
                .to_string(),
            ),
        }
    }
}

/// Where a destination NAT sends the packet (iptables `--to-destination`, nft `dnat to`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatTo {
    /// The new destination address; `None` when the rule leaves it to a range (the kernel
    /// picks one) or to the kernel (REDIRECT: the input interface's address).
    pub addr: Option<IpAddr>,
    /// The new port: `None` unchanged, `Some(None)` changed to a value not known here.
    pub port: Option<Option<u16>>,
}

impl NatTo {
    /// Parses a NAT destination as iptables (`--to-destination`) and nft (`dnat to`) write it:
    /// `10.0.0.1:80`, `10.0.0.1`, `[fd00::1]:80`, `[fd00::1]`, `fd00::1`, `:80`. A range of
    /// addresses or ports leaves that part to the kernel (`None`, `Some(None)`).
    pub fn parse(to: &str) -> NatTo {
        let (addr, port) = if let Some(rest) = to.strip_prefix('[') {
            match rest.split_once(']') {
                Some((a, p)) => (a, p.strip_prefix(':')),
                None => (rest, None),
            }
        } else if to.matches(':').count() == 1 {
            let (a, p) = to.split_once(':').unwrap_or((to, ""));
            (a, Some(p))
        } else {
            (to, None)
        };
        NatTo {
            addr: addr.parse().ok(),
            port: port.map(|p| p.parse::<u16>().ok()),
        }
    }
}

/// What a rule tests besides its mark operations, and where its NAT sends the packet, as the
/// rule's format decodes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleDetails {
    /// The conditions, in rule order; all must hold for the rule to match.
    pub tests: Vec<Test>,
    /// The destination of a DNAT or REDIRECT, when the rule has one.
    pub nat_to: Option<NatTo>,
}

impl RuleDetails {
    /// Details that say only that nothing could be decoded: one unknown condition.
    pub fn unknown(name: impl Into<String>) -> RuleDetails {
        RuleDetails {
            tests: vec![Test {
                cond: Cond::Unknown(name.into()),
                invert: false,
            }],
            nat_to: None,
        }
    }
}

/// Decodes one rule's [`RuleDetails`] from the whole text of its input and the rule's span
/// (a format reads as much text after the span as the rule takes: nft JSON rules span lines).
pub type DetailDecoder = fn(text: &str, span: Span) -> RuleDetails;

/// The names of conditions that are undecidable whatever the packet (`--assume` settles them),
/// besides the ones named after rules' modules and selectors.
pub const FIELD_CONDITION_NAMES: &[&str] = &[
    "protocol",
    "source address",
    "destination address",
    "input interface",
    "output interface",
    "source port",
    "destination port",
    "addrtype",
    "conntrack nat state",
    "condition",
];

/// Protocol number of a name or number (`tcp`, `6`, `all` is none).
pub fn proto_number(s: &str) -> Option<Option<u8>> {
    Some(Some(match s.to_ascii_lowercase().as_str() {
        "all" | "0" => return Some(None),
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        "esp" => 50,
        "ah" => 51,
        "gre" => 47,
        "ipencap" | "ipip" => 4,
        other => return other.parse().ok().map(Some),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let c = Cidr::parse("10.244.0.0/16").unwrap();
        assert!(c.contains("10.244.3.4".parse().unwrap()));
        assert!(!c.contains("10.245.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert_eq!(Cidr::parse("10.0.0.0/255.0.0.0").unwrap().len, 8);
        assert!(Cidr::parse("fe80::/10")
            .unwrap()
            .contains("fe80::1".parse().unwrap()));
    }

    #[test]
    fn unknown_fields_stay_unknown() {
        let p = Packet {
            in_iface: Some("eth0".into()),
            out_iface: None,
            src: None,
            dst: None,
            proto: Some(6),
            sport: None,
            dport: Some(80),
            path: PathKind::Forward,
            state: CtState::New,
        };
        let t = |cond, invert| Test { cond, invert }.eval(&p, &Flow::new_connection());
        assert_eq!(t(Cond::InIface("eth+".into()), false), Outcome::Yes);
        assert_eq!(t(Cond::InIface("eth+".into()), true), Outcome::No);
        assert_eq!(t(Cond::Dport(vec![(80, 80)]), false), Outcome::Yes);
        assert!(matches!(
            t(Cond::Src(Cidr::parse("1.2.3.4").unwrap()), false),
            Outcome::Unknown(_)
        ));
        assert_eq!(t(Cond::CtState(vec!["NEW".into()]), false), Outcome::Yes);
    }

    #[test]
    fn conntrack_states_of_untracked_and_nated_packets() {
        let mut p = Packet {
            in_iface: None,
            out_iface: None,
            src: None,
            dst: None,
            proto: Some(17),
            sport: None,
            dport: None,
            path: PathKind::Forward,
            state: CtState::New,
        };
        let states = |s: &[&str]| Cond::CtState(s.iter().map(|x| x.to_string()).collect());
        let t = |cond, invert, p: &Packet, flow: &Flow| Test { cond, invert }.eval(p, flow);
        let untracked = Flow {
            tracked: false,
            ..Flow::new_connection()
        };
        // After NOTRACK the state is UNTRACKED, never NEW (found by the trace differential test).
        assert_eq!(t(states(&["NEW"]), false, &p, &untracked), Outcome::No);
        assert_eq!(
            t(states(&["UNTRACKED"]), false, &p, &untracked),
            Outcome::Yes
        );
        assert_eq!(t(states(&["UNTRACKED"]), true, &p, &untracked), Outcome::No);
        // --ctdir fails on an untracked packet even negated.
        assert_eq!(t(Cond::CtDir(true), true, &p, &untracked), Outcome::No);
        // DNAT is a virtual state: known on the first packet, unknown later.
        let dnat = Flow {
            dnat: Some(true),
            ..Flow::new_connection()
        };
        assert_eq!(t(states(&["DNAT"]), false, &p, &dnat), Outcome::Yes);
        assert_eq!(
            t(states(&["DNAT"]), false, &p, &Flow::new_connection()),
            Outcome::No
        );
        assert_eq!(t(states(&["SNAT", "NEW"]), false, &p, &dnat), Outcome::Yes);
        p.state = CtState::Reply;
        let later = Flow {
            tracked: true,
            dnat: None,
            snat: None,
        };
        assert!(matches!(
            t(states(&["DNAT"]), false, &p, &later),
            Outcome::Unknown(_)
        ));
        assert_eq!(
            t(states(&["DNAT", "ESTABLISHED"]), false, &p, &later),
            Outcome::Yes
        );
    }
}
