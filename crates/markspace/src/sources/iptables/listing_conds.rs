//! The non-mark conditions of an `iptables -L` listing rule (`-L`, `-nvL`, `--line-numbers`,
//! `-x`), decoded on demand for `trace` like the save form's (`super::conds`).
//!
//! A rule line is `[num] [pkts bytes] target prot opt [in out] source destination [extensions]`;
//! which columns are there is judged from the line itself, as the listing reader judges a line
//! pasted without its header (`super::listing::guess_columns`). The
//! extension text is each match's print (`libxt_*.c` `print`): decoded are `tcp|udp|sctp
//! spt:|dpt:|spts:|dpts:`, `multiport sports|dports`, `ctstate`/`state`, `ctdir`, `ADDRTYPE
//! match src-type|dst-type LOCAL`; `mark match` and `connmark match` are the algebra's; the
//! target's own print (`to:10.0.0.1:80`, `redir ports 8080`, `reject-with …`, `MARK set …`)
//! ends the conditions. Anything else (`match-set`, `statistic`, `limit:`, host names of a
//! listing without `-n`) is an unknown condition named after its first word.

use super::listing::{cut_comments, guess_columns, is_opt};
use crate::packet::{proto_number, Cidr, Cond, NatTo, RuleDetails, Test};

/// Words that start a target's print: the conditions are over.
const TARGET_PRINTS: &[&str] = &[
    "MARK",
    "CONNMARK",
    "TPROXY",
    "CT",
    "NOTRACK",
    "LOG",
    "NFLOG",
    "NFQUEUE",
    "HMARK",
    "redir",
    "reject-with",
    "random",
    "random-fully",
    "persistent",
    "masq",
    "TCPMSS",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "CHECKSUM",
    "SET",
];

/// Port ranges of a listing print: `80`, `1000:2000`, `80,443` (multiport).
fn port_ranges(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|p| match p.split_once(':') {
            Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
            None => p.parse().ok().map(|n| (n, n)),
        })
        .collect()
}

/// The details of one listing rule line.
pub(crate) fn details(line: &str) -> RuleDetails {
    let (text, _) = cut_comments(line);
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = RuleDetails::default();
    let unknown = |name: &str| Test {
        cond: Cond::Unknown(name.to_string()),
        invert: false,
    };

    // The columns before the target, judged from the line as the listing reader does for a
    // line pasted without its header.
    let cols = guess_columns(&text);
    let mut k = usize::from(cols.num) + 2 * usize::from(cols.counters);
    let target = match (words.get(k), words.get(k + 1)) {
        // An empty target column: the protocol comes first.
        (Some(_), Some(next)) if is_opt(next) => None,
        (Some(t), _) => {
            k += 1;
            Some(*t)
        }
        _ => return RuleDetails::unknown("iptables-list rule"),
    };
    // A column's condition, negated by a leading `!`.
    let col = |cond: Cond, word: &str| Test {
        cond,
        invert: word.starts_with('!'),
    };
    // Protocol and the `opt` column.
    if let Some(prot) = words.get(k) {
        let name = prot.trim_start_matches('!');
        match proto_number(name) {
            Some(Some(n)) => out.tests.push(col(Cond::Proto(n), prot)),
            Some(None) => {}
            None => out.tests.push(unknown(&format!("protocol {name}"))),
        }
        k += 1;
    }
    if words.get(k).is_some_and(|w| is_opt(w)) {
        k += 1;
    }
    if cols.interfaces {
        for input in [true, false] {
            let Some(w) = words.get(k) else { break };
            let name = w.trim_start_matches('!');
            if name != "*" && name != "any" {
                let cond = if input {
                    Cond::InIface(name.to_string())
                } else {
                    Cond::OutIface(name.to_string())
                };
                out.tests.push(col(cond, w));
            }
            k += 1;
        }
    }
    for source in [true, false] {
        let Some(w) = words.get(k) else { break };
        let addr = w.trim_start_matches('!');
        if !matches!(addr, "anywhere" | "0.0.0.0/0" | "::/0") {
            match Cidr::parse(addr) {
                Some(c) if source => out.tests.push(col(Cond::Src(c), w)),
                Some(c) => out.tests.push(col(Cond::Dst(c), w)),
                None => out.tests.push(unknown(&format!("address {addr}"))),
            }
        }
        k += 1;
    }
    // Extension prints.
    let mut lost = false;
    while k < words.len() {
        let w = words[k];
        let next = words.get(k + 1).copied().unwrap_or("");
        if Some(w) == target || TARGET_PRINTS.contains(&w) || w.starts_with("to:") {
            break;
        }
        match w {
            "tcp" | "udp" | "sctp" | "udplite" | "[goto]" => k += 1,
            "multiport" if matches!(next, "sports" | "dports") => {
                let arg = words.get(k + 2).copied().unwrap_or("");
                let (invert, arg) = match arg.strip_prefix('!') {
                    Some(a) => (true, a),
                    None => (false, arg),
                };
                match port_ranges(arg) {
                    Some(r) => out.tests.push(Test {
                        cond: if next == "sports" {
                            Cond::Sport(r)
                        } else {
                            Cond::Dport(r)
                        },
                        invert,
                    }),
                    None => out.tests.push(unknown("multiport")),
                }
                k += 3;
            }
            "ctstate" | "state" => {
                let states = next.split(',').map(str::to_ascii_uppercase).collect();
                out.tests.push(Test {
                    cond: Cond::CtState(states),
                    invert: false,
                });
                k += 2;
            }
            "ctdir" => {
                out.tests.push(Test {
                    cond: Cond::CtDir(next == "REPLY"),
                    invert: false,
                });
                k += 2;
            }
            "ADDRTYPE" if next == "match" => {
                k += 2;
                while let Some(kind) = words.get(k).and_then(|x| {
                    x.strip_prefix("dst-type")
                        .map(|_| true)
                        .or_else(|| x.strip_prefix("src-type").map(|_| false))
                }) {
                    let types = words.get(k + 1).copied().unwrap_or("");
                    out.tests.push(Test {
                        cond: Cond::AddrType {
                            dst: kind,
                            types: types.split(',').map(str::to_string).collect(),
                        },
                        invert: false,
                    });
                    k += 2;
                }
            }
            "mark" | "connmark" if next == "match" => {
                // The algebra's: `mark match [!] V[/M]`.
                k += if words.get(k + 2) == Some(&"!") { 4 } else { 3 };
            }
            _ => {
                let ports = ["spt:", "dpt:", "spts:", "dpts:"]
                    .iter()
                    .find_map(|p| w.strip_prefix(p).map(|arg| (*p, arg)));
                match ports {
                    Some((p, arg)) => {
                        let (invert, arg) = match arg.strip_prefix('!') {
                            Some(a) => (true, a),
                            None => (false, arg),
                        };
                        match port_ranges(arg) {
                            Some(r) => out.tests.push(Test {
                                cond: if p.starts_with('s') {
                                    Cond::Sport(r)
                                } else {
                                    Cond::Dport(r)
                                },
                                invert,
                            }),
                            None => out.tests.push(unknown(&format!("port {arg}"))),
                        }
                    }
                    None if !lost => {
                        // A match this reader does not know: its arguments follow, so the rest
                        // of the line is one unknown condition.
                        out.tests.push(unknown(w.trim_end_matches(':')));
                        lost = true;
                    }
                    None => {}
                }
                k += 1;
            }
        }
    }
    out.nat_to = match target {
        Some("DNAT") => Some(
            words[k.min(words.len())..]
                .iter()
                .find_map(|w| w.strip_prefix("to:"))
                .map_or(
                    NatTo {
                        addr: None,
                        port: Some(None),
                    },
                    NatTo::parse,
                ),
        ),
        Some("REDIRECT") => Some(NatTo {
            addr: None,
            port: words
                .iter()
                .position(|w| *w == "ports")
                .and_then(|i| words.get(i + 1))
                .map(|p| p.parse().ok()),
        }),
        _ => None,
    };
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn t(cond: Cond, invert: bool) -> Test {
        Test { cond, invert }
    }

    #[test]
    fn plain_and_verbose_listings() {
        let plain = details(
            "ACCEPT     udp  --  10.0.1.0/24          0.0.0.0/0            udp dpt:5000 ctstate NEW",
        );
        let verbose = details(
            "   12  1008 ACCEPT     udp  --  vc     *       10.0.1.0/24          0.0.0.0/0            udp dpt:5000 ctstate NEW",
        );
        let common = vec![
            t(Cond::Proto(17), false),
            t(Cond::Src(Cidr::parse("10.0.1.0/24").unwrap()), false),
            t(Cond::Dport(vec![(5000, 5000)]), false),
            t(Cond::CtState(vec!["NEW".into()]), false),
        ];
        assert_eq!(plain.tests, common);
        let mut with_if = common.clone();
        with_if.insert(1, t(Cond::InIface("vc".into()), false));
        assert_eq!(verbose.tests, with_if);
        // --line-numbers and -v together.
        let numbered = details(
            "1       12  1008 ACCEPT     udp  --  vc     *       10.0.1.0/24          0.0.0.0/0            udp dpt:5000 ctstate NEW",
        );
        assert_eq!(numbered.tests, with_if);
    }

    #[test]
    fn empty_targets_numeric_protocols_and_gotos() {
        let d = details(
            "    0     0            0    --  vc      *       0.0.0.0/0            0.0.0.0/0            mark match ! 0x4000/0x4000",
        );
        assert_eq!(d.tests, vec![t(Cond::InIface("vc".into()), false)]);
        let d = details(
            "    0     0 CHAIN-B    0    --  *      *       0.0.0.0/0            0.0.0.0/0           [goto]  mark match 0x1/0x1",
        );
        assert_eq!(d.tests, vec![]);
    }

    #[test]
    fn marks_comments_and_target_prints_add_nothing() {
        let d = details(
            "MARK       all  --  0.0.0.0/0            0.0.0.0/0            /* kubernetes: mark */ mark match ! 0x4000/0x4000 MARK or 0x4000",
        );
        assert_eq!(d.tests, vec![]);
        let d = details(
            "DNAT       tcp  --  0.0.0.0/0            0.0.0.0/0            /* default/web */ tcp to:10.244.1.5:8080",
        );
        assert_eq!(d.tests, vec![t(Cond::Proto(6), false)]);
        assert_eq!(
            d.nat_to,
            Some(NatTo {
                addr: Some("10.244.1.5".parse().unwrap()),
                port: Some(Some(8080)),
            })
        );
    }

    #[test]
    fn unknown_matches_and_negations() {
        let d = details(
            "DROP       all  --  !10.244.0.0/16        0.0.0.0/0            match-set KUBE-X src statistic mode random",
        );
        assert_eq!(
            d.tests,
            vec![
                t(Cond::Src(Cidr::parse("10.244.0.0/16").unwrap()), true),
                t(Cond::Unknown("match-set".into()), false),
            ]
        );
        let d = details(
            "RETURN     all  --  0.0.0.0/0            0.0.0.0/0            ADDRTYPE match dst-type LOCAL",
        );
        assert_eq!(
            d.tests,
            vec![t(
                Cond::AddrType {
                    dst: true,
                    types: vec!["LOCAL".into()]
                },
                false
            )]
        );
    }
}
