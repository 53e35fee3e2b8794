//! Tunnel device marks: `ip -d link` / `ip -d address` (sosreport `ip_-s_-d_link`).
//!
//! ipip/sit/gre/ip6tnl/ip6gre devices print ` fwmark 0xV` when `IFLA_IPTUN_FWMARK` (or
//! `IFLA_GRE_FWMARK`) is nonzero (`ip/link_iptnl.c`, `link_gre.c`, `link_ip6tnl.c`; ip6tnl may
//! print `fwmark inherit`). `ip_tunnel_xmit` routes the encapsulated packet with that mark as
//! its flow mark (`ip_tunnel_init_flow(…, tunnel->fwmark, …)`, `net/ipv4/ip_tunnel.c`), so the
//! policy routing of the outer packet sees exactly V: recorded as a whole write of V at the
//! device ([`Subsystem::Device`]). (The skb keeps its mark for netfilter; `fwmark inherit` and
//! collect-metadata tunnels route by `skb->mark` and write nothing.)

use crate::diagnostic::Diagnostic;
use crate::model::{Field, MarkOp, MarkWrite, ALL_BITS};
use crate::source::SourceId;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

use super::sink::Sink;
use super::text::{c_u32, first_line, words, FirstLine, LineAt};

/// `N: NAME[@LINK]: <FLAGS> …`: the device name.
fn device_line(l: &str) -> Option<&str> {
    let mut w = l.split_whitespace();
    let idx = w.next()?.strip_suffix(':')?;
    if idx.is_empty() || !idx.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = w.next()?.strip_suffix(':')?;
    w.next()?
        .starts_with('<')
        .then(|| name.split('@').next().unwrap_or(name))
}

/// Whether a text is `ip link` / `ip address` output.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => {
            let ws: Vec<&str> = cmd.split_whitespace().collect();
            ws.first() == Some(&"ip")
                && ws
                    .iter()
                    .any(|w| matches!(*w, "link" | "l" | "address" | "addr" | "a"))
        }
        Some(FirstLine::Line(_, l)) => device_line(l).is_some(),
        None => false,
    }
}

/// Reads `ip -d link` output.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut device: Option<String> = None;
    for (at, line) in LineAt::lines(text, source) {
        if let Some(d) = device_line(line) {
            device = Some(d.to_string());
            continue;
        }
        let ws = words(line);
        for (i, w) in ws.iter().enumerate() {
            if w.text != "fwmark" {
                continue;
            }
            let Some(v) = ws.get(i + 1) else { continue };
            if v.text == "inherit" {
                continue;
            }
            match c_u32(v.text) {
                Some(0) => {}
                Some(mark) => sink.touchpoints.push(Touchpoint {
                    subsystem: Subsystem::Device,
                    span: at.trimmed(line),
                    ops: vec![MarkOp::Write(MarkWrite::set_xmark(
                        Field::Mark,
                        mark,
                        ALL_BITS,
                    ))],
                    context: TouchContext {
                        device: device.clone(),
                        ..TouchContext::default()
                    },
                }),
                None => diags.push(
                    Diagnostic::error(
                        at.span(v.at, v.text.len()),
                        format!("invalid tunnel fwmark `{}`", v.text),
                    )
                    .with_hint(
                        "ip -d link prints tunnel marks as `fwmark 0x5` or `fwmark inherit`",
                    ),
                ),
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_fwmark() {
        let text = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0\n6: gre1@NONE: <POINTOPOINT,NOARP> mtu 1476 qdisc noop state DOWN mode DEFAULT group default qlen 1000\n    link/gre 10.0.0.1 peer 10.0.0.2 promiscuity 0 minmtu 0 maxmtu 0\n    gre remote 10.0.0.2 local 10.0.0.1 ttl inherit fwmark 0x5 erspan_ver 0 addrgenmode eui64\n7: t6: <NOARP> mtu 1452\n    ip6tnl ip6ip6 remote ::1 local ::2 fwmark inherit\n";
        assert!(detect(text));
        let mut sink = Sink::default();
        assert!(parse(text, SourceId(0), "ip-d-link", &mut sink).is_empty());
        assert_eq!(sink.touchpoints.len(), 1);
        assert_eq!(sink.touchpoints[0].span.line, 5);
        assert_eq!(sink.touchpoints[0].context.device.as_deref(), Some("gre1"));
    }

    #[test]
    fn detection() {
        assert!(!detect("0:\tfrom all lookup local\n"));
        assert!(!detect("1169: sched_cls  name x  tag 0\n"));
    }
}
