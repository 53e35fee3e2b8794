//! IPVS: `ipvsadm -Ln` fwmark virtual services (`FWM  256 rr`).
//!
//! A fwmark service is looked up by the packet mark: `__ip_vs_svc_fwm_find` compares
//! `svc->fwmark == fwmark` with `fwmark = skb->mark` (`net/netfilter/ipvs/ip_vs_ctl.c`,
//! `ip_vs_service_find`): a read of all 32 bits for equality, so any other bit set on the packet
//! makes the service miss it.

use crate::diagnostic::Diagnostic;
use crate::model::{Field, MarkOp, MarkRead, ALL_BITS};
use crate::source::SourceId;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

use super::sink::Sink;
use super::text::{c_u32, first_line, words, FirstLine, LineAt};

/// Whether a text is `ipvsadm -L` output.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => cmd.split_whitespace().next() == Some("ipvsadm"),
        Some(FirstLine::Line(_, l)) => l.starts_with("IP Virtual Server version"),
        None => false,
    }
}

/// Reads `ipvsadm -Ln` output.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (at, line) in LineAt::lines(text, source) {
        let ws = words(line);
        if ws.first().map(|w| w.text) != Some("FWM") || line.starts_with(char::is_whitespace) {
            continue;
        }
        let Some(v) = ws.get(1) else { continue };
        let Some(mark) = c_u32(v.text) else {
            diags.push(
                Diagnostic::error(
                    at.span(v.at, v.text.len()),
                    format!("invalid fwmark service `{}`", v.text),
                )
                .with_hint("ipvsadm -Ln prints fwmark services as `FWM  256 rr`"),
            );
            continue;
        };
        sink.touchpoints.push(Touchpoint {
            subsystem: Subsystem::Ipvs,
            span: at.trimmed(line),
            ops: vec![MarkOp::Read(MarkRead::equals(
                Field::Mark,
                mark,
                ALL_BITS,
                false,
            ))],
            context: TouchContext {
                ipv6: ws.iter().any(|w| w.text == "IPv6"),
                ..TouchContext::default()
            },
        });
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fwmark_services_are_whole_reads() {
        let text = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  10.96.0.1:443 rr\n  -> 172.18.0.2:6443              Masq    1      0          0\nFWM  256 rr\n  -> 10.0.0.1:80                  Route   1      0          0\n";
        assert!(detect(text));
        let mut sink = Sink::default();
        assert!(parse(text, SourceId(0), "ipvsadm", &mut sink).is_empty());
        assert_eq!(sink.touchpoints.len(), 1);
        assert_eq!(sink.touchpoints[0].span.line, 6);
        let MarkOp::Read(r) = sink.touchpoints[0].ops[0] else {
            panic!()
        };
        assert!(r.is_whole_equality());
        assert_eq!(r.eval(256), Some(true));
        assert_eq!(r.eval(256 | 0x4000), Some(false));
    }
}
