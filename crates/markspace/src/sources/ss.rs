//! Socket marks: `ss -e` output (`ss -tuanpe`, sosreport's `ss -peaonmi`).
//!
//! `misc/ss.c` (`sock_details_print`) appends ` fwmark:0x%x` **only when the mark is nonzero**;
//! the kernel exports it (`INET_DIAG_MARK`) only to CAP_NET_ADMIN. A socket mark (`SO_MARK`,
//! `net/core/sock.c`) becomes `skb->mark` of every packet the socket sends and the flow mark of
//! its route lookups (`ip_route_output`, `flowi4_mark = sk->sk_mark`): a whole-mark write of V
//! at the socket, `MarkWrite::set_xmark(Mark, V, 0xffffffff)`. The process comes from
//! `users:(("tailscaled",pid=761,fd=21))`.
//!
//! One touchpoint per (process, mark): a daemon with a hundred marked sockets is one use, its
//! first socket the evidence.

use std::collections::HashSet;

use crate::diagnostic::Diagnostic;
use crate::model::{Field, MarkOp, MarkWrite, ALL_BITS};
use crate::source::SourceId;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

use super::sink::Sink;
use super::text::{c_u32, first_line, words, FirstLine, LineAt};

const NETIDS: &[&str] = &[
    "tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl", "mptcp", "sctp",
    "tipc", "xdp", "icmp6", "v_str", "v_dgr",
];
const STATES: &[&str] = &[
    "ESTAB",
    "LISTEN",
    "UNCONN",
    "TIME-WAIT",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "LAST-ACK",
    "CLOSING",
    "UNKNOWN",
];

fn is_socket_line(l: &str) -> bool {
    let mut w = l.split_whitespace();
    match w.next() {
        Some(first) if NETIDS.contains(&first) => w.next().is_some_and(|s| STATES.contains(&s)),
        Some(first) => {
            STATES.contains(&first) && w.next().is_some_and(|n| n.parse::<u64>().is_ok())
        }
        None => false,
    }
}

fn is_header(l: &str) -> bool {
    (l.starts_with("Netid") || l.starts_with("State")) && l.contains("Recv-Q")
}

/// Whether a text is `ss` output.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => cmd.split_whitespace().next() == Some("ss"),
        Some(FirstLine::Line(_, l)) => is_header(l) || is_socket_line(l),
        None => false,
    }
}

/// The first process name of `users:(("name",pid=…,fd=…),…)`.
fn process_of(l: &str) -> Option<String> {
    let rest = &l[l.find("users:((\"")? + "users:((\"".len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// Reads `ss -e` output.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut seen: HashSet<(Option<String>, u32)> = HashSet::new();
    // `ss -p` may print the process on the socket line and the details on a continuation line.
    let mut last_process: Option<String> = None;
    for (at, line) in LineAt::lines(text, source) {
        let l = line.trim();
        if l.starts_with('#') {
            continue;
        }
        if is_socket_line(l) {
            last_process = process_of(l);
        } else if let Some(p) = process_of(l) {
            last_process = Some(p);
        }
        for w in words(line) {
            let Some(v) = w.text.strip_prefix("fwmark:") else {
                continue;
            };
            let Some(mark) = c_u32(v) else {
                diags.push(
                    Diagnostic::error(
                        at.span(w.at, w.text.len()),
                        format!("invalid socket mark `{}`", w.text),
                    )
                    .with_hint("ss prints the socket mark as `fwmark:0x80000`"),
                );
                continue;
            };
            if !seen.insert((last_process.clone(), mark)) {
                continue;
            }
            sink.touchpoints.push(Touchpoint {
                subsystem: Subsystem::Socket,
                span: at.trimmed(line),
                ops: vec![MarkOp::Write(MarkWrite::set_xmark(
                    Field::Mark,
                    mark,
                    ALL_BITS,
                ))],
                context: TouchContext {
                    process: last_process.clone(),
                    ipv6: l.contains('['),
                    ..TouchContext::default()
                },
            });
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tailscaled_socket_mark_is_one_whole_write() {
        let text = "## ss -uanpe\nudp   UNCONN 0      0          0.0.0.0:41641      0.0.0.0:*    users:((\"tailscaled\",pid=761,fd=21)) ino:17843 sk:1003 fwmark:0x80000 cgroup:/system.slice/tailscaled.service <->\nudp   UNCONN 0      0             [::]:41641         [::]:*    users:((\"tailscaled\",pid=761,fd=20)) ino:17842 sk:1004 fwmark:0x80000 cgroup:/system.slice/tailscaled.service v6\nudp UNCONN 0 0 0.0.0.0:1 0.0.0.0:* users:((\"openvpn\",pid=9,fd=3)) ino:1 sk:1 fwmark:0xca6c\ntcp ESTAB 0 0 1.1.1.1:1 2.2.2.2:2 ino:1 sk:2\n";
        assert!(detect(text));
        let mut sink = Sink::default();
        let d = parse(text, SourceId(0), "ss", &mut sink);
        assert!(d.is_empty());
        assert_eq!(sink.touchpoints.len(), 2);
        let t = &sink.touchpoints[0];
        assert_eq!(t.span.line, 2);
        assert_eq!(t.context.process.as_deref(), Some("tailscaled"));
        let MarkOp::Write(w) = t.ops[0] else { panic!() };
        assert!(w.is_whole());
        assert_eq!(w, MarkWrite::constant(Field::Mark, 0, 0x80000));
        assert_eq!(
            sink.touchpoints[1].context.process.as_deref(),
            Some("openvpn")
        );
    }

    #[test]
    fn bad_mark_is_an_error() {
        let mut sink = Sink::default();
        let d = parse(
            "udp UNCONN 0 0 0.0.0.0:1 0.0.0.0:* fwmark:0xzz\n",
            SourceId(0),
            "ss",
            &mut sink,
        );
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn detection() {
        assert!(detect(
            "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
        ));
        assert!(detect("ESTAB 0 0 10.0.0.1:22 10.0.0.2:5000 ino:1\n"));
        assert!(!detect("0:\tfrom all lookup local\n"));
    }
}
