//! Kernel settings that decide who sees the mark: `sysctl -a` output and `sysctl.conf` /
//! `sysctl.d` files (`key = value`, `key=value`, `#`/`;` comments, `/` or `.` separators).
//!
//! Recorded as [`Observation::Sysctl`] (only the keys below; the rest of `sysctl -a` is
//! skipped):
//!
//! - `net.ipv4.conf.{all,default,IF}.src_valid_mark`: `fib_validate_source` (rp_filter) uses
//!   `skb->mark` only when set (`IN_DEV_SRC_VMARK`, an OR of `all` and the interface;
//!   `net/ipv4/fib_frontend.c`);
//! - `net.ipv4.conf.*.rp_filter`: 0 off, 1 strict, 2 loose (the maximum of `all` and the
//!   interface counts, `IN_DEV_RPFILTER`);
//! - `net.ipv4.fwmark_reflect`, `net.ipv6.fwmark_reflect`: kernel replies (RST, ICMP) carry the
//!   mark of the packet they answer (`IP4_REPLY_MARK`), otherwise 0;
//! - `net.ipv4.tcp_fwmark_accept`: accepted sockets inherit the SYN's mark when the listener has
//!   none (`inet_request_mark`).
//!
//! The findings over them live in `analysis::checks::sysctls` (MS010-MS012).

use crate::diagnostic::Diagnostic;
use crate::source::{Lines, SourceId};
use crate::touchpoint::Observation;

use super::sink::Sink;
use super::text::{first_line, FirstLine};

/// Whether a key is one markspace records.
pub(crate) fn relevant(key: &str) -> bool {
    key.ends_with(".src_valid_mark")
        || key.ends_with(".rp_filter")
        || key == "net.ipv4.fwmark_reflect"
        || key == "net.ipv6.fwmark_reflect"
        || key == "net.ipv4.tcp_fwmark_accept"
}

/// `key = value` with a dotted (or slashed) key, normalised to dots.
fn key_value(l: &str) -> Option<(String, &str)> {
    let (k, v) = l.split_once('=')?;
    let k = k.trim().trim_start_matches('-');
    let ok = k.contains(['.', '/'])
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'*'));
    ok.then(|| (k.replace('/', "."), v.trim()))
}

/// Whether a text is `sysctl -a` output or a sysctl configuration file.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#', ';']) {
        Some(FirstLine::Command(cmd)) => cmd.split_whitespace().next() == Some("sysctl"),
        Some(FirstLine::Line(_, l)) => key_value(l).is_some(),
        None => false,
    }
}

/// Reads sysctl output or configuration.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    for (line_no, _, line) in Lines::new(text) {
        let l = line.trim();
        if l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some((key, value)) = key_value(l) {
            if relevant(&key) {
                sink.observations.push((
                    source,
                    Observation::Sysctl {
                        key,
                        value: value.to_string(),
                        line: line_no,
                    },
                ));
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_mark_related_keys() {
        let text = "abi.vsyscall32 = 1\nnet.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.all.src_valid_mark = 0\nnet.ipv4.conf.eth0.src_valid_mark = 1\nnet.ipv4.fwmark_reflect = 0\nnet.ipv4.tcp_fwmark_accept=1\n# net.ipv6.fwmark_reflect = 1\nnet/ipv6/fwmark_reflect = 1\nnet.ipv4.ip_forward = 1\n";
        assert!(detect(text));
        let mut sink = Sink::default();
        assert!(parse(text, SourceId(0), "sysctl", &mut sink).is_empty());
        let keys: Vec<_> = sink
            .observations
            .iter()
            .map(|(_, o)| match o {
                Observation::Sysctl { key, value, line } => format!("{line}:{key}={value}"),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                "2:net.ipv4.conf.all.rp_filter=1",
                "3:net.ipv4.conf.all.src_valid_mark=0",
                "4:net.ipv4.conf.eth0.src_valid_mark=1",
                "5:net.ipv4.fwmark_reflect=0",
                "6:net.ipv4.tcp_fwmark_accept=1",
                "8:net.ipv6.fwmark_reflect=1",
            ]
        );
    }

    #[test]
    fn detection() {
        assert!(!detect("[Interface]\nFwMark = 1\n"));
        assert!(!detect("PrivateKey = abc\n"));
        assert!(!detect("0:\tfrom all lookup local\n"));
    }
}
