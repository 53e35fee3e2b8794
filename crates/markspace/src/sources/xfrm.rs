//! IPsec: `ip xfrm policy` and `ip [-s] xfrm state` listings.
//!
//! Records span several lines: `src A dst B` at the left margin, then tab-indented attribute
//! lines (iproute2 `ip/ipxfrm.c`, `xfrm_policy_info_print` / `xfrm_state_info_print`):
//!
//! ```text
//! src 10.84.1.32 dst 10.84.0.30
//!     proto esp spi 0x00000003 reqid 1 mode tunnel
//!     mark 0x3cb23e00/0xffffff00 output-mark 0xe00/0xf00
//! ```
//!
//! - `mark V/M` (`XFRMA_MARK`, mask always printed) is a selector: `xfrm_policy_match` and the
//!   state lookups test `(m & M) == V` with V **not** masked (`net/xfrm/xfrm_policy.c`,
//!   `xfrm_state.c`), like `xt_mark`.
//! - `output-mark V[/M]` (`XFRMA_SET_MARK`/`_MASK`; the mask defaults to 0xffffffff in
//!   `xfrm_smark_init`, `net/xfrm/xfrm_user.c`) is a write applied after encryption
//!   (`xfrm_output_one`) and after decryption (`xfrm_input`): `xfrm_smark_get` gives
//!   `m = (m & ~M) | (V & M)`. Older iproute2 prints it without a mask.
//! - `if_id` (xfrm interfaces) selects by interface instead of mark; it is not a mark operation.
//!
//! The touchpoint's span is the line with the mark, never the key lines (`ip xfrm state` prints
//! keys; evidence quotes only the mark line).

use crate::diagnostic::Diagnostic;
use crate::model::{Field, MarkOp, MarkRead, MarkWrite, ALL_BITS};
use crate::source::SourceId;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

use super::sink::Sink;
use super::text::{c_u32, first_line, prompt_command, value_mask, words, FirstLine, LineAt};

/// Whether a text is `ip xfrm policy` or `ip xfrm state` output: the first record line is
/// `src A dst B` (possibly after an `ip xfrm` prompt).
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => {
            let ws: Vec<&str> = cmd.split_whitespace().collect();
            ws.first() == Some(&"ip") && ws.contains(&"xfrm")
        }
        Some(FirstLine::Line(line, _)) => is_record_start(line),
        None => false,
    }
}

fn is_record_start(line: &str) -> bool {
    let mut w = line.split_whitespace();
    !line.starts_with(char::is_whitespace)
        && w.next() == Some("src")
        && w.next().is_some()
        && w.next() == Some("dst")
}

const MARK_HINT: &str = "xfrm prints `mark 0xV/0xM` and `output-mark 0xV[/0xM]`";

/// Reads `ip xfrm policy` / `ip xfrm state` output.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut ipv6 = false;
    let mut in_xfrm = true;
    for (at, line) in LineAt::lines(text, source) {
        let l = line.trim();
        if let Some(cmd) = prompt_command(l) {
            in_xfrm = cmd.split_whitespace().any(|w| w == "xfrm");
            continue;
        }
        if !in_xfrm || l.is_empty() || l.starts_with('#') {
            continue;
        }
        if is_record_start(line) {
            ipv6 = line.contains(':');
            continue;
        }
        let ws = words(line);
        let mut ops = Vec::new();
        let mut i = 0;
        while i < ws.len() {
            let key = ws[i].text;
            if key != "mark" && key != "output-mark" {
                i += 1;
                continue;
            }
            let Some(arg) = ws.get(i + 1) else {
                diags.push(
                    Diagnostic::error(
                        at.span(ws[i].at, key.len()),
                        format!("`{key}` without a value"),
                    )
                    .with_hint(MARK_HINT),
                );
                break;
            };
            let Some((v, m)) = value_mask(arg.text, c_u32) else {
                diags.push(
                    Diagnostic::error(
                        at.span(arg.at, arg.text.len()),
                        format!("invalid {key} `{}`", arg.text),
                    )
                    .with_hint(MARK_HINT),
                );
                break;
            };
            i += 2;
            // `output-mark V mask M`, as typed in commands.
            let mut mask = m;
            if mask.is_none() && ws.get(i).is_some_and(|w| w.text == "mask") {
                mask = ws.get(i + 1).and_then(|w| c_u32(w.text));
                i += 2;
            }
            let mask = mask.unwrap_or(ALL_BITS);
            ops.push(if key == "mark" {
                MarkOp::Read(MarkRead::equals(Field::Mark, v, mask, false))
            } else {
                MarkOp::Write(MarkWrite::masked_set(Field::Mark, v, mask))
            });
        }
        if !ops.is_empty() {
            sink.touchpoints.push(Touchpoint {
                subsystem: Subsystem::Xfrm,
                span: at.trimmed(line),
                ops,
                context: TouchContext {
                    ipv6,
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
    use crate::model::ReadTest;

    fn run(text: &str) -> (Sink, Vec<Diagnostic>) {
        assert!(detect(text));
        let mut sink = Sink::default();
        let d = parse(text, SourceId(0), "ip-xfrm", &mut sink);
        (sink, d)
    }

    #[test]
    fn state_with_mark_and_output_mark() {
        let text = "src 10.84.1.32 dst 10.84.0.30\n\tproto esp spi 0x00000003 reqid 1 mode tunnel\n\treplay-window 0\n\tmark 0x3cb23e00/0xffffff00 output-mark 0xe00/0xf00\n\taead rfc4106(gcm(aes)) 0x64ad37a9d8a8f20fb2e74ef6000f9d580898719f 128\n";
        let (sink, d) = run(text);
        assert!(d.is_empty());
        assert_eq!(sink.touchpoints.len(), 1);
        let tp = &sink.touchpoints[0];
        assert_eq!(tp.span.line, 4);
        assert_eq!(
            &text[tp.span.range()],
            "mark 0x3cb23e00/0xffffff00 output-mark 0xe00/0xf00"
        );
        assert_eq!(
            tp.ops[0],
            MarkOp::Read(MarkRead::equals(Field::Mark, 0x3cb23e00, 0xffffff00, false))
        );
        let MarkOp::Write(w) = tp.ops[1] else {
            panic!("write")
        };
        assert_eq!(w, MarkWrite::constant(Field::Mark, !0xf00, 0xe00));
        assert_eq!(w.bits(), 0xf00);
    }

    #[test]
    fn policy_v6_and_unmasked_output_mark() {
        let text = "src ::/0 dst fd00::/64 \n\tdir in priority 0 ptype main \n\tmark 0xd00/0xf00 \n\ttmpl src fd00::1 dst fd00::2\n\t\tproto esp reqid 1 mode tunnel\n\tif_id 0x7\nsrc 10.0.0.1 dst 10.0.0.2\n\toutput-mark 0xd00\n";
        let (sink, d) = run(text);
        assert!(d.is_empty());
        assert_eq!(sink.touchpoints.len(), 2);
        assert!(sink.touchpoints[0].context.ipv6);
        assert!(!sink.touchpoints[1].context.ipv6);
        let MarkOp::Write(w) = sink.touchpoints[1].ops[0] else {
            panic!()
        };
        assert!(w.is_whole(), "output-mark without a mask replaces all bits");
        // The policy selector value is not masked: 0x9e00/0xff00 reads bit 0x8000.
        let (s, _) = run("src 0.0.0.0/0 dst 0.0.0.0/0\n\tmark 0x9e00/0xff00\n");
        let MarkOp::Read(r) = s.touchpoints[0].ops[0] else {
            panic!()
        };
        assert_eq!(
            r.test,
            ReadTest::Equals {
                value: 0x9e00,
                mask: 0xff00
            }
        );
        assert_eq!(r.eval(0x9e00), Some(true));
        assert_eq!(r.eval(0x1e00), Some(false));
    }

    #[test]
    fn malformed_mark_is_an_error() {
        let (_, d) = run("src 1.1.1.1 dst 2.2.2.2\n\tmark 0xzz/0xf00\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span.line, 2);
        assert!(d[0].message.contains("invalid mark"));
    }

    #[test]
    fn detection() {
        assert!(!detect("0:\tfrom all lookup local\n"));
        assert!(detect("$ ip xfrm policy\nsrc ::/0 dst ::/0\n"));
        assert!(!detect("\tsrc 1 dst 2\n"));
    }
}
