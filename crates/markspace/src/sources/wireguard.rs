//! WireGuard devices: `wg show all fwmark` (`wg0\t0xca6c` or `off`), `wg show` (`interface: wg0`
//! … `fwmark: 0xca6c`), and `wg showconf` / wg-quick `.conf` files (`FwMark = 51820`,
//! `Table = …`).
//!
//! The device fwmark sets `skb->mark = wg->fwmark` on every encrypted packet and is the flow
//! mark of their route lookup (`drivers/net/wireguard/socket.c`, `send4`/`send6`): a whole-mark
//! write of V at the device, subsystem [`Subsystem::Wireguard`].
//!
//! wg-quick (`wireguard-tools` `src/wg-quick/linux.bash`, `add_route`/`add_default`): when an
//! `AllowedIPs` entry is a default route (`/0`) and `Table` is unset or `auto`, it sets the
//! fwmark to `FwMark`, or 51820 (0xca6c) when none is configured (one more while table 51820
//! is busy), and adds `ip rule add not fwmark F table F` and
//! `ip rule add table main suppress_prefixlength 0`. A `.conf` file therefore implies that
//! write and that rule even without `FwMark`; both are recorded at the `AllowedIPs` line.

use crate::diagnostic::Diagnostic;
use crate::model::{Field, MarkOp, MarkWrite, ALL_BITS};
use crate::source::{SourceId, Span};
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

use super::iprule::{IpRule, Target};
use super::sink::Sink;
use super::text::{c_u32, first_line, prompt_command, words, FirstLine, LineAt};

/// wg-quick's default fwmark and table.
pub(crate) const WG_QUICK_FWMARK: u32 = 51820;

/// Whether a text is WireGuard output or configuration.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => {
            matches!(cmd.split_whitespace().next(), Some("wg" | "wg-quick"))
        }
        Some(FirstLine::Line(_, l)) => {
            if l == "[Interface]" || l.starts_with("interface: ") {
                return true;
            }
            let ws: Vec<&str> = l.split_whitespace().collect();
            ws.len() == 2 && (ws[1] == "off" || ws[1].starts_with("0x")) && !ws[0].contains(':')
        }
        None => false,
    }
}

fn device_write(span: Span, device: Option<String>, mark: u32) -> Touchpoint {
    Touchpoint {
        subsystem: Subsystem::Wireguard,
        span,
        ops: vec![MarkOp::Write(MarkWrite::set_xmark(
            Field::Mark,
            mark,
            ALL_BITS,
        ))],
        context: TouchContext {
            device,
            ..TouchContext::default()
        },
    }
}

/// A fwmark value: `off`/`0` is none.
fn fwmark_value(s: &str) -> Result<Option<u32>, ()> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    c_u32(s).map(|v| (v != 0).then_some(v)).ok_or(())
}

const HINT: &str = "a fwmark is a number (`51820`, `0xca6c`) or `off`";

/// What a `.conf` file's `[Interface]` says.
#[derive(Default)]
struct Conf {
    fwmark: Option<(u32, Span)>,
    table: Option<String>,
    default_route: Option<(Span, bool)>,
}

/// Reads WireGuard output or configuration.
pub(crate) fn parse(text: &str, source: SourceId, name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let file_device = base.strip_suffix(".conf").map(str::to_string).or_else(|| {
        let ws: Vec<&str> = base.split(['_', ' ', '-']).collect();
        let i = ws.iter().position(|w| *w == "show")?;
        ws.get(i + 1)
            .filter(|d| **d != "all")
            .map(|d| d.to_string())
    });
    let mut diags = Vec::new();
    let mut device = file_device.clone();
    let mut in_wg = true;
    let mut section = String::new();
    let mut conf = Conf::default();
    for (at, line) in LineAt::lines(text, source) {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(cmd) = prompt_command(l) {
            let ws: Vec<&str> = cmd.split_whitespace().collect();
            in_wg = matches!(ws.first(), Some(&"wg") | Some(&"wg-quick"));
            device = ws
                .get(2)
                .filter(|d| !matches!(**d, "all" | "interfaces"))
                .map(|d| d.to_string())
                .or_else(|| file_device.clone());
            continue;
        }
        if !in_wg || l.starts_with('#') {
            continue;
        }
        if l.starts_with('[') && l.ends_with(']') {
            section = l.to_ascii_lowercase();
            continue;
        }
        let ws = words(line);
        // `key = value` configuration lines.
        if let Some((k, v)) = l.split_once('=') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            let eq = line.find('=').map_or(0, |i| i + 1);
            let v_at = eq + (line[eq..].len() - line[eq..].trim_start().len());
            match (section.as_str(), k.as_str()) {
                ("[interface]", "fwmark") => match fwmark_value(v) {
                    Ok(Some(mark)) => conf.fwmark = Some((mark, at.trimmed(line))),
                    Ok(None) => {}
                    Err(()) => diags.push(
                        Diagnostic::error(at.span(v_at, v.len()), format!("invalid FwMark `{v}`"))
                            .with_hint(HINT),
                    ),
                },
                ("[interface]", "table") => conf.table = Some(v.to_string()),
                ("[peer]", "allowedips") => {
                    for ip in v.split(',').map(str::trim) {
                        if ip.ends_with("/0") && conf.default_route.is_none() {
                            conf.default_route = Some((at.trimmed(line), ip.contains(':')));
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        // `wg show`: `interface: wg0`, then `  fwmark: 0xca6c`.
        if let Some(dev) = l.strip_prefix("interface: ") {
            device = Some(dev.trim().to_string());
            continue;
        }
        let (dev, value) = match ws.as_slice() {
            [k, v] if k.text == "fwmark:" => (device.clone(), v),
            [d, v] if !d.text.ends_with(':') => (Some(d.text.to_string()), v),
            [v] if !v.text.ends_with(':') => (device.clone(), v),
            _ => continue,
        };
        match fwmark_value(value.text) {
            Ok(Some(mark)) => sink
                .touchpoints
                .push(device_write(at.trimmed(line), dev, mark)),
            Ok(None) => {}
            Err(()) => diags.push(
                Diagnostic::error(
                    at.span(value.at, value.text.len()),
                    format!("invalid fwmark `{}`", value.text),
                )
                .with_hint(HINT),
            ),
        }
    }
    finish_conf(conf, file_device, sink);
    diags
}

/// The writes and rules a wg-quick configuration implies.
fn finish_conf(conf: Conf, device: Option<String>, sink: &mut Sink) {
    let table_auto = !matches!(conf.table.as_deref(), Some(t) if !t.eq_ignore_ascii_case("auto"));
    match (conf.default_route, table_auto) {
        (Some((span, v6)), true) => {
            let mark = conf.fwmark.map_or(WG_QUICK_FWMARK, |(m, _)| m);
            let write_span = conf.fwmark.map_or(span, |(_, s)| s);
            sink.touchpoints
                .push(device_write(write_span, device.clone(), mark));
            let rule = IpRule {
                not: true,
                fwmark: Some((mark, ALL_BITS)),
                target: Some(Target::Lookup(mark.to_string())),
                ipv6: v6,
                ..IpRule::default()
            };
            sink.touchpoints.extend(rule.touchpoint(span));
        }
        _ => {
            if let Some((mark, span)) = conf.fwmark {
                sink.touchpoints.push(device_write(span, device, mark));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MarkRead;

    fn run(text: &str, name: &str) -> (Sink, Vec<Diagnostic>) {
        assert!(detect(text), "not detected");
        let mut sink = Sink::default();
        let d = parse(text, SourceId(0), name, &mut sink);
        (sink, d)
    }

    fn whole(tp: &Touchpoint) -> u32 {
        let MarkOp::Write(w) = tp.ops[0] else {
            panic!()
        };
        assert!(w.is_whole());
        w.bits()
            & match w.op {
                crate::model::WriteOp::Const { xor, .. } => xor,
                _ => panic!(),
            }
    }

    #[test]
    fn show_all_fwmark() {
        let (sink, d) = run("wg0\t0xca6c\nwg1\toff\n", "wg-show-all-fwmark");
        assert!(d.is_empty());
        assert_eq!(sink.touchpoints.len(), 1);
        assert_eq!(whole(&sink.touchpoints[0]), 0xca6c);
        assert_eq!(sink.touchpoints[0].context.device.as_deref(), Some("wg0"));
        assert_eq!(sink.touchpoints[0].subsystem, Subsystem::Wireguard);
    }

    #[test]
    fn wg_show_and_single_value() {
        let (sink, _) = run(
            "interface: wg0\n  public key: x\n  private key: (hidden)\n  listening port: 51820\n  fwmark: 0xca6c\n\npeer: y\n  endpoint: 1.2.3.4:51820\n",
            "x",
        );
        assert_eq!(sink.touchpoints.len(), 1);
        assert_eq!(sink.touchpoints[0].span.line, 5);
        let (sink, _) = run("$ wg show wg7 fwmark\n0x1234\n", "x");
        assert_eq!(sink.touchpoints[0].context.device.as_deref(), Some("wg7"));
    }

    #[test]
    fn wg_quick_conf_implies_default_fwmark_and_rule() {
        let text = "[Interface]\nPrivateKey = abc=\nAddress = 10.0.0.2/32\n\n[Peer]\nPublicKey = def=\nAllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = 1.2.3.4:51820\n";
        let (sink, d) = run(text, "/etc/wireguard/wg0.conf");
        assert!(d.is_empty());
        assert_eq!(sink.touchpoints.len(), 2);
        assert_eq!(whole(&sink.touchpoints[0]), 51820);
        assert_eq!(sink.touchpoints[0].span.line, 7);
        assert_eq!(sink.touchpoints[0].context.device.as_deref(), Some("wg0"));
        let rule = &sink.touchpoints[1];
        assert_eq!(rule.subsystem, Subsystem::IpRule);
        assert_eq!(
            rule.ops[0],
            MarkOp::Read(MarkRead::equals(Field::Mark, 51820, ALL_BITS, true))
        );
        assert_eq!(rule.context.table.as_deref(), Some("51820"));
        // An explicit FwMark with Table = off: only the device write.
        let (sink, _) = run(
            "[Interface]\nFwMark = 0x1234\nTable = off\n[Peer]\nAllowedIPs = 0.0.0.0/0\n",
            "wg1.conf",
        );
        assert_eq!(sink.touchpoints.len(), 1);
        assert_eq!(whole(&sink.touchpoints[0]), 0x1234);
        assert_eq!(sink.touchpoints[0].span.line, 2);
        let (_, d) = run("[Interface]\nFwMark = nope\n", "wg2.conf");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span.line, 2);
    }

    #[test]
    fn detection() {
        assert!(!detect("0:\tfrom all lookup local\n"));
        assert!(!detect("net.ipv4.fwmark_reflect = 0\n"));
        assert!(!detect("src 1.1.1.1 dst 2.2.2.2\n"));
    }
}
