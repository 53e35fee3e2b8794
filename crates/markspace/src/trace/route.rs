//! The routing decision of a trace: the `ip rule` fwmark rules of the snapshot in priority
//! order, as `fib_rules_lookup` walks them.
//!
//! `fib_rule_match` (`net/core/fib_rules.c`) ANDs every selector of a rule — `iif`, `oif`, the
//! fwmark, and the family's `from`/`to`, `ipproto`, `sport`/`dport` — and `not` inverts the
//! whole. Only rules that read the mark are in the snapshot's touchpoints, so the first of them
//! that matches decides (a rule without fwmark, or a lookup that finds no route and falls through,
//! is not seen). A rule applies to its own family only (`ip -6 rule` to IPv6 packets).
//!
//! The selectors other than the fwmark are read from the rule's text (`ip rule show` lines and
//! `ip rule add` commands; a JSON rule's span holds no selectors, so its are not tested). A
//! selector trace cannot decide (an address the user did not give, `uidrange`, `tos`) is taken as
//! matching, and a note says so.

use crate::model::{hex, Field, MarkOp, Node};
use crate::packet::{proto_number, Cidr, Packet, PathKind};
use crate::touchpoint::{Subsystem, Touchpoint};

use super::steps::{PathTrace, Step};

/// The selectors of a rule line besides its fwmark: whether it has `not`, and whether the
/// selectors match the packet (`Err`: a selector cannot be decided; the text says which).
pub(super) fn selectors(text: &str, p: &Packet) -> (bool, Result<bool, String>) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut not = false;
    let mut all = Ok(true);
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let arg = words.get(i + 1).copied().unwrap_or("");
        let test: Option<Result<bool, String>> = match w {
            "not" => {
                not = true;
                None
            }
            "from" | "to" if arg == "all" => Some(Ok(true)),
            "from" | "to" => {
                let addr = if w == "from" { p.src } else { p.dst };
                Some(match (Cidr::parse(arg), addr) {
                    (Some(c), Some(a)) => Ok(c.contains(a)),
                    _ => Err(format!("{w} {arg}")),
                })
            }
            // A locally generated packet is looked up with iif lo.
            "iif" | "dev" => Some(match (p.path, p.in_iface.as_deref()) {
                (PathKind::Output, _) => Ok(arg == "lo"),
                (_, Some(i)) => Ok(i == arg),
                (_, None) => Err(format!("{w} {arg}")),
            }),
            // Input lookups carry no output interface; output ones the socket's bound device.
            "oif" => Some(match p.path {
                PathKind::Output => Err(format!("oif {arg}")),
                _ => Ok(false),
            }),
            "ipproto" => Some(match (proto_number(arg), p.proto) {
                (Some(Some(n)), Some(x)) => Ok(n == x),
                _ => Err(format!("ipproto {arg}")),
            }),
            "sport" | "dport" => {
                let port = if w == "sport" { p.sport } else { p.dport };
                let (lo, hi) = arg.split_once('-').unwrap_or((arg, arg));
                Some(match (lo.parse::<u16>(), hi.parse::<u16>(), port) {
                    (Ok(lo), Ok(hi), Some(x)) => Ok((lo..=hi).contains(&x)),
                    _ => Err(format!("{w} {arg}")),
                })
            }
            "uidrange" | "tos" | "dsfield" | "l3mdev" | "tun_id" => Some(Err(format!("{w} {arg}"))),
            _ => None,
        };
        if let Some(t) = test {
            all = match (all, t) {
                (Ok(false), _) | (_, Ok(false)) => Ok(false),
                (Err(e), _) | (_, Err(e)) => Err(e),
                (Ok(true), Ok(true)) => Ok(true),
            };
            i += if w == "l3mdev" { 1 } else { 2 };
        } else {
            i += 1;
        }
    }
    (not, all)
}

/// Whether a fwmark rule matches the packet with this mark; a note when a selector was not
/// decided.
fn matches(node: &Node, t: &Touchpoint, p: &Packet, mark: u32) -> (bool, Option<String>) {
    if t.context.ipv6 != p.is_ipv6() {
        return (false, None);
    }
    // The parser folds `not` into the read; the kernel inverts the AND of all selectors:
    // `!(sel && !read)` with the read already inverted, that is `!sel || read`.
    let read = t.ops.iter().all(|op| match op {
        MarkOp::Read(r) if r.field == Field::Mark => r.eval(mark).unwrap_or(false),
        _ => true,
    });
    let (not, sel) = selectors(node.sources.text(t.span), p);
    let (sel, note) = match sel {
        Ok(b) => (b, None),
        Err(what) => (
            true,
            Some(format!(
                "ip rule selector `{what}` not decided: taken as matching"
            )),
        ),
    };
    let hit = if not { !sel || read } else { sel && read };
    (hit, note)
}

/// A routing decision by the `ip rule` fwmark rules of the snapshot, in priority order.
pub(super) fn route(node: &Node, p: &Packet, mark: u32, path: &mut PathTrace, stage: &'static str) {
    let mut rules: Vec<&Touchpoint> = node
        .touchpoints
        .iter()
        .filter(|t| t.subsystem == Subsystem::IpRule)
        .collect();
    rules.sort_by_key(|t| t.context.priority.unwrap_or(u32::MAX));
    let mut chosen = None;
    for t in rules {
        let (hit, note) = matches(node, t, p, mark);
        if let Some(text) = note {
            path.steps.push(Step::Note { text });
        }
        if hit {
            chosen = Some(t);
            break;
        }
    }
    let (rule, table) = match chosen {
        Some(t) => (
            Some(node.sources.text(t.span).trim().to_string()),
            t.context.table.clone().unwrap_or_else(|| "main".into()),
        ),
        None => (None, "main".into()),
    };
    path.table = Some(table.clone());
    path.steps.push(Step::Route {
        stage: stage.to_string(),
        mark: hex(mark),
        rule,
        table,
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{MarkRead, MarkState};
    use crate::packet::CtState;
    use crate::registry::Registry;
    use crate::snapshot::NodeLoader;
    use crate::source::Span;
    use crate::touchpoint::TouchContext;
    use crate::trace::{trace, Options};

    fn packet(src: &str, dst: &str) -> Packet {
        Packet {
            in_iface: Some("vc".into()),
            out_iface: Some("vx".into()),
            src: Some(src.parse().unwrap()),
            dst: Some(dst.parse().unwrap()),
            proto: Some(17),
            sport: Some(40000),
            dport: Some(5000),
            path: PathKind::Forward,
            state: CtState::New,
        }
    }

    #[test]
    fn selectors_of_rule_lines() {
        let p = packet("10.0.1.2", "192.168.9.9");
        let sel = |text: &str| selectors(text, &p);
        assert_eq!(
            sel("100:\tfrom all fwmark 0x10/0xff lookup 100"),
            (false, Ok(true))
        );
        assert_eq!(
            sel("60:\tfrom 192.168.99.0/24 fwmark 0x10/0xff lookup 200"),
            (false, Ok(false))
        );
        assert_eq!(
            sel("75:\tnot from 10.0.1.0/24 fwmark 0x10/0xff lookup 200"),
            (true, Ok(true))
        );
        assert_eq!(
            sel("70:\tfrom all iif vs fwmark 0x10 lookup 200"),
            (false, Ok(false))
        );
        assert_eq!(
            sel("70:\tfrom all iif vc fwmark 0x10 lookup 200"),
            (false, Ok(true))
        );
        // A forwarded packet's lookup has no output interface.
        assert_eq!(
            sel("71:\tfrom all oif vx fwmark 0x10 lookup 200"),
            (false, Ok(false))
        );
        assert_eq!(
            sel("ip rule add to 192.168.9.0/24 ipproto udp dport 5000-5010 fwmark 0x10 table 7"),
            (false, Ok(true))
        );
        assert_eq!(
            sel("72:\tfrom all fwmark 0x10 uidrange 0-99 lookup 200").1,
            Err("uidrange 0-99".to_string())
        );
        // A locally generated packet is looked up with iif lo.
        let out = Packet {
            path: PathKind::Output,
            in_iface: None,
            ..packet("10.0.1.1", "192.168.9.9")
        };
        assert_eq!(
            selectors("9:\tfrom all iif lo lookup 9", &out),
            (false, Ok(true))
        );
    }

    /// Found by the trace differential test (scenario "ip rule selectors and families"): an
    /// `ip -6 rule` and rules whose other selectors do not match decided an IPv4 packet's table.
    #[test]
    fn only_matching_rules_of_the_family_decide() {
        let mut l = NodeLoader::new();
        l.add_text(
            "iptables-save.txt",
            b"*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x10/0xff\nCOMMIT\n"
                .to_vec(),
            true,
        )
        .unwrap();
        let mut node = l.finish();
        let text = "50:\tfrom all fwmark 0x10/0xff lookup 200\n\
                    60:\tfrom 192.168.99.0/24 fwmark 0x10/0xff lookup 200\n\
                    75:\tnot from 10.0.1.0/24 fwmark 0x10/0xff lookup 200\n\
                    100:\tfrom all fwmark 0x10/0xff lookup 100\n";
        let source = node.sources.add("ip-rule.txt", text.to_string());
        let mut start = 0;
        for (i, line) in text.lines().enumerate() {
            let prio: u32 = line.split(':').next().unwrap().parse().unwrap();
            node.touchpoints.push(Touchpoint {
                subsystem: Subsystem::IpRule,
                span: Span {
                    source,
                    line: i as u32 + 1,
                    start,
                    len: line.len() as u32,
                },
                ops: vec![MarkOp::Read(MarkRead::equals(
                    Field::Mark,
                    0x10,
                    0xff,
                    line.contains("not "),
                ))],
                context: TouchContext {
                    table: line.rsplit(' ').next().map(str::to_string),
                    priority: Some(prio),
                    // The first rule is an `ip -6 rule`.
                    ipv6: prio == 50,
                    ..TouchContext::default()
                },
            });
            start += line.len() as u32 + 1;
        }
        let table = |p: Packet| {
            let t = trace(
                &node,
                &Registry::default(),
                p,
                // Marked on arrival (the iptables rule marks IPv4 only).
                MarkState {
                    mark: 0x10,
                    ..MarkState::default()
                },
                &Options::default(),
            );
            t.paths[0].table.clone().unwrap()
        };
        assert_eq!(table(packet("10.0.1.2", "192.168.9.9")), "100");
        assert_eq!(table(packet("fd00:1::2", "fd00:9::9")), "200");
        // From outside 10.0.1.0/24 the `not from` rule matches.
        assert_eq!(table(packet("10.0.2.2", "192.168.9.9")), "200");
    }
}
