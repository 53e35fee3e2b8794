//! The non-mark conditions of an iptables rule, for `trace` (parsed on demand from the rule's
//! text; the audit never needs them).
//!
//! Evaluated: `-p`, `-s`, `-d`, `-i`, `-o` (with `!`), `--sport`/`--dport` (tcp, udp, sctp),
//! `-m multiport --sports/--dports/--ports`, `-m conntrack --ctstate/--ctdir`, `-m state
//! --state`. Everything else that can make a rule not match (`-m set`, `-m statistic`, `-m
//! socket`, `-m addrtype`, `-m physdev`, unknown modules) is [`Cond::Unknown`] named after its
//! module, for `--assume`. `-m comment`, `-m mark`/`-m connmark` (the algebra handles them) and
//! purely informative modules add nothing.

use crate::packet::{proto_number, Cidr, Cond, NatTo, RuleDetails, Test};

use super::tokens::tokenize;

/// Modules that never make a rule fail to match, or whose test is already in the mark algebra.
const NEUTRAL_MODULES: &[&str] = &[
    "comment",
    "mark",
    "connmark",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "icmpv6",
    "multiport",
    "conntrack",
    "state",
    "addrtype",
];

fn ports(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|part| {
            let (lo, hi) = part.split_once(':').unwrap_or((part, part));
            let lo = if lo.is_empty() { 0 } else { lo.parse().ok()? };
            let hi = if hi.is_empty() {
                u16::MAX
            } else {
                hi.parse().ok()?
            };
            Some((lo, hi))
        })
        .collect()
}

/// The conditions of an `iptables-save`/`-S` rule line and where its `DNAT`/`REDIRECT` sends
/// the packet.
pub(crate) fn details(line: &str) -> RuleDetails {
    let Ok(tokens) = tokenize(line) else {
        return RuleDetails::unknown("unparsable rule");
    };
    let words: Vec<&str> = tokens.iter().map(|t| t.text.as_ref()).collect();
    let target = words
        .iter()
        .position(|w| matches!(*w, "-j" | "--jump"))
        .and_then(|k| words.get(k + 1).copied());
    let nat_to = match target {
        Some("DNAT") => {
            let (addr, port) = dnat_to(line);
            Some(NatTo { addr, port })
        }
        // The input interface's address; `--to-ports` sets the port.
        Some("REDIRECT") => Some(NatTo {
            addr: None,
            port: words
                .iter()
                .position(|w| *w == "--to-ports")
                .and_then(|k| words.get(k + 1))
                .map(|p| p.parse::<u16>().ok()),
        }),
        _ => None,
    };
    RuleDetails {
        tests: conditions(line),
        nat_to,
    }
}

/// The conditions of an `iptables-save`/`-S` rule line. Malformed parts become unknown
/// conditions rather than errors: the line was already accepted by the parser.
pub(crate) fn conditions(line: &str) -> Vec<Test> {
    let Ok(tokens) = tokenize(line) else {
        return vec![Test {
            cond: Cond::Unknown("unparsable rule".into()),
            invert: false,
        }];
    };
    let words: Vec<&str> = tokens.iter().map(|t| t.text.as_ref()).collect();
    let mut out = Vec::new();
    let mut invert = false;
    let mut module = "";
    let mut i = 0;
    let mut push = |cond: Cond, invert: &mut bool| {
        out.push(Test {
            cond,
            invert: *invert,
        });
        *invert = false;
    };
    while i < words.len() {
        let w = words[i];
        let arg = words.get(i + 1).copied();
        match w {
            "!" => {
                invert = true;
                i += 1;
                continue;
            }
            "-A" | "-I" | "-C" | "-D" | "-t" | "--table" | "-c" => {
                i += if w == "-c" { 3 } else { 2 };
                if w == "-I" && words.get(i).is_some_and(|n| n.parse::<u32>().is_ok()) {
                    i += 1;
                }
                continue;
            }
            "-j" | "--jump" | "-g" | "--goto" => break,
            "-m" | "--match" => {
                module = arg.unwrap_or("");
                if !NEUTRAL_MODULES.contains(&module) {
                    push(Cond::Unknown(module.to_string()), &mut invert);
                }
                i += 2;
                continue;
            }
            "-p" | "--protocol" => {
                if let Some(Some(Some(n))) = arg.map(proto_number) {
                    push(Cond::Proto(n), &mut invert);
                } else if arg.and_then(proto_number).is_none() {
                    push(
                        Cond::Unknown(format!("protocol {}", arg.unwrap_or(""))),
                        &mut invert,
                    );
                } else {
                    invert = false;
                }
                i += 2;
                continue;
            }
            "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" => {
                let cidr = arg.and_then(Cidr::parse);
                let cond = match (cidr, w.starts_with("-s") || w.starts_with("--s")) {
                    (Some(c), true) => Cond::Src(c),
                    (Some(c), false) => Cond::Dst(c),
                    (None, _) => Cond::Unknown(format!("address {}", arg.unwrap_or(""))),
                };
                push(cond, &mut invert);
                i += 2;
                continue;
            }
            "-i" | "--in-interface" => {
                push(Cond::InIface(arg.unwrap_or("").to_string()), &mut invert);
                i += 2;
                continue;
            }
            "-o" | "--out-interface" => {
                push(Cond::OutIface(arg.unwrap_or("").to_string()), &mut invert);
                i += 2;
                continue;
            }
            "--sport"
            | "--source-port"
            | "--sports"
            | "--source-ports"
            | "--dport"
            | "--destination-port"
            | "--dports"
            | "--destination-ports"
            | "--ports"
                if matches!(module, "tcp" | "udp" | "sctp" | "multiport") || module.is_empty() =>
            {
                let ranges = arg.and_then(ports);
                let src = w.starts_with("--s");
                match ranges {
                    // `--ports` matches either port: not one condition in this model.
                    Some(_) if w == "--ports" => push(
                        Cond::Unknown(format!("ports {}", arg.unwrap_or(""))),
                        &mut invert,
                    ),
                    Some(r) if src => push(Cond::Sport(r), &mut invert),
                    Some(r) => push(Cond::Dport(r), &mut invert),
                    None => push(
                        Cond::Unknown(format!("port {}", arg.unwrap_or(""))),
                        &mut invert,
                    ),
                }
                i += 2;
                continue;
            }
            "--ctstate" | "--state" if matches!(module, "conntrack" | "state") => {
                let states = arg
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.to_ascii_uppercase())
                    .collect();
                push(Cond::CtState(states), &mut invert);
                i += 2;
                continue;
            }
            "--src-type" | "--dst-type" if module == "addrtype" => {
                let types = arg
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.to_ascii_uppercase())
                    .collect();
                push(
                    Cond::AddrType {
                        dst: w == "--dst-type",
                        types,
                    },
                    &mut invert,
                );
                i += 2;
                continue;
            }
            "--ctdir" if module == "conntrack" => {
                push(
                    Cond::CtDir(arg.is_some_and(|d| d.eq_ignore_ascii_case("REPLY"))),
                    &mut invert,
                );
                i += 2;
                continue;
            }
            _ => {
                if w.starts_with('-') && (module == "conntrack" || module == "state") {
                    // Other conntrack tests (--ctorigdst …) are not evaluated.
                    push(Cond::Unknown(format!("conntrack {w}")), &mut invert);
                }
                invert = false;
                i += 1;
            }
        }
    }
    out
}

/// Where a `DNAT` rule sends the packet: `--to-destination ADDR[-ADDR][:PORT[-PORT]]`
/// (`[v6]:port` for IPv6). Each part is `None` when the rule leaves it to a range (the kernel
/// picks one) or does not give it; the outer `None` for the port means unchanged.
pub(crate) fn dnat_to(line: &str) -> (Option<std::net::IpAddr>, Option<Option<u16>>) {
    let Ok(tokens) = tokenize(line) else {
        return (None, Some(None));
    };
    let words: Vec<&str> = tokens.iter().map(|t| t.text.as_ref()).collect();
    let Some(to) = words
        .iter()
        .position(|w| *w == "--to-destination" || *w == "--to")
        .and_then(|i| words.get(i + 1))
    else {
        return (None, Some(None));
    };
    let to = NatTo::parse(to);
    (to.addr, to.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kube_proxy_service_rule() {
        let c = conditions(
            r#"-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-X"#,
        );
        assert_eq!(
            c,
            vec![
                Test {
                    cond: Cond::Dst(Cidr::parse("10.96.0.10/32").unwrap()),
                    invert: false
                },
                Test {
                    cond: Cond::Proto(17),
                    invert: false
                },
                Test {
                    cond: Cond::Dport(vec![(53, 53)]),
                    invert: false
                },
            ]
        );
    }

    #[test]
    fn statistic_and_sets_are_unknown() {
        let c =
            conditions("-A KUBE-SVC-X -m statistic --mode random --probability 0.5 -j KUBE-SEP-Y");
        assert_eq!(
            c,
            vec![Test {
                cond: Cond::Unknown("statistic".into()),
                invert: false
            }]
        );
        let c = conditions("-A X ! -i cali+ -m set --match-set s src -j ACCEPT");
        assert_eq!(
            c[0],
            Test {
                cond: Cond::InIface("cali+".into()),
                invert: true
            }
        );
        assert_eq!(c[1].cond, Cond::Unknown("set".into()));
    }

    #[test]
    fn multiport_and_ctstate() {
        let c = conditions("-A X -p tcp -m multiport --dports 80,8000:8080 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        assert_eq!(c[1].cond, Cond::Dport(vec![(80, 80), (8000, 8080)]));
        assert_eq!(
            c[2].cond,
            Cond::CtState(vec!["RELATED".into(), "ESTABLISHED".into()])
        );
    }

    #[test]
    fn dnat_destinations() {
        let ip = |s: &str| Some(s.parse().unwrap());
        let d = |l: &str| dnat_to(l);
        assert_eq!(
            d("-A X -p udp -j DNAT --to-destination 192.168.2.2:5000"),
            (ip("192.168.2.2"), Some(Some(5000)))
        );
        assert_eq!(
            d("-A X -j DNAT --to-destination 10.0.0.1"),
            (ip("10.0.0.1"), None)
        );
        assert_eq!(
            d("-A X -j DNAT --to-destination [fd00::1]:80"),
            (ip("fd00::1"), Some(Some(80)))
        );
        assert_eq!(
            d("-A X -j DNAT --to-destination fd00::1"),
            (ip("fd00::1"), None)
        );
        // Ranges: the kernel chooses.
        assert_eq!(
            d("-A X -p tcp -j DNAT --to-destination 10.0.0.1-10.0.0.9:80-90"),
            (None, Some(None))
        );
    }
}
