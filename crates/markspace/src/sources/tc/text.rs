//! `tc filter show` text (`tc/tc_filter.c` `print_filter`, then the classifier's and each
//! action's print function):
//!
//! ```text
//! filter parent ffff: protocol all pref 2 fw chain 0 handle 0x6/0xff classid 1:1
//!     action order 1: skbedit  mark 33554432/0x2000000 pipe
//!      index 2 ref 1 bind 1
//! filter protocol all pref 1 bpf chain 0 handle 0x1 cil_from_netdev-eth0 direct-action not_in_hw id 1169 name cil_from_netdev tag 91a9 jited
//! ```

use crate::diagnostic::Diagnostic;
use crate::source::SourceId;
use crate::sources::sink::Sink;
use crate::sources::text::{
    c_u32, first_line, prompt_command, value_mask, words, FirstLine, LineAt, Word,
};
use crate::touchpoint::{Observation, Subsystem, TouchContext, Touchpoint};

use super::{
    copy_from_ct, ct_mark_set, direction_of_parent, flower_ct_mark, from_file_name, fw_read,
    skbedit_mark,
};

fn is_filter_line(line: &str) -> bool {
    !line.starts_with(char::is_whitespace) && line.starts_with("filter ")
}

fn is_tc_filter_command(cmd: &str) -> bool {
    let mut w = cmd.split_whitespace();
    w.next().is_some_and(|t| t.rsplit('/').next() == Some("tc"))
        && w.any(|t| matches!(t, "filter" | "filt" | "f"))
}

/// Whether a text is `tc filter show` output: the first meaningful line is a `filter …` line or a
/// `tc filter` prompt.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => is_tc_filter_command(cmd),
        Some(FirstLine::Line(line, l)) => {
            is_filter_line(line)
                && l.split_whitespace()
                    .any(|w| w == "pref" || w == "protocol" || w == "parent")
        }
        None => false,
    }
}

/// Device and direction named by a prompt or header line (`tc filter show dev eth0 ingress`,
/// `parent ffff:`).
fn device_of(ws: &[Word<'_>]) -> (Option<String>, Option<&'static str>) {
    let mut device = None;
    let mut dir = None;
    for (i, w) in ws.iter().enumerate() {
        match w.text {
            "dev" => {
                device = ws
                    .get(i + 1)
                    .map(|d| d.text.trim_end_matches(':').to_string())
            }
            "ingress" | "ingress:" => dir = Some("ingress"),
            "egress" | "egress:" => dir = Some("egress"),
            "parent" => {
                if let Some(d) = ws.get(i + 1).and_then(|p| direction_of_parent(p.text)) {
                    dir = Some(d);
                }
            }
            _ => {}
        }
    }
    (device, dir)
}

const MARK_HINT: &str =
    "tc prints `handle 0xV[/0xM]` (fw), `skbedit  mark V[/0xM]`, `ct … mark V[/0xM]`, `cpmark 0xM`";

/// Per-input reading state.
struct State {
    default_device: Option<String>,
    default_dir: Option<&'static str>,
    device: Option<String>,
    dir: Option<&'static str>,
    in_tc: bool,
    pref: Option<u32>,
    kind: Option<String>,
    action: Option<String>,
}

/// Reads `tc filter show` output.
pub(crate) fn parse(text: &str, source: SourceId, name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let (device, dir) = from_file_name(name);
    let mut st = State {
        default_device: device.clone(),
        default_dir: dir,
        device,
        dir,
        in_tc: true,
        pref: None,
        kind: None,
        action: None,
    };
    let mut diags = Vec::new();
    for (at, line) in LineAt::lines(text, source) {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(cmd) = prompt_command(l) {
            st.in_tc = is_tc_filter_command(cmd);
            let (d, r) = device_of(&words(cmd));
            st.device = d.or_else(|| st.default_device.clone());
            st.dir = r.or(st.default_dir);
            st.kind = None;
            st.action = None;
            continue;
        }
        if !st.in_tc {
            continue;
        }
        let ws = words(line);
        if !line.starts_with(char::is_whitespace) && !is_filter_line(line) {
            // A header (`dev eth0 ingress:`, `## tc filter ls dev X parent ffff:`) or a stray
            // line: a header naming a device or `tc` restarts the device and direction.
            if ws.iter().any(|w| matches!(w.text, "dev" | "tc")) {
                let (d, r) = device_of(&ws);
                st.device = d.or_else(|| st.default_device.clone());
                st.dir = r.or(st.default_dir);
            }
            st.kind = None;
            st.action = None;
            if l.starts_with('#') {
                continue;
            }
        }
        let mut ops = Vec::new();
        let mut i = 0;
        if is_filter_line(line) {
            st.action = None;
            st.kind = None;
            st.pref = None;
            while i < ws.len() {
                match ws[i].text {
                    "dev" => {
                        st.device = ws.get(i + 1).map(|d| d.text.to_string());
                        i += 1;
                    }
                    "parent" => {
                        if let Some(d) = ws.get(i + 1).and_then(|p| direction_of_parent(p.text)) {
                            st.dir = Some(d);
                        }
                        i += 1;
                    }
                    "protocol" => i += 1,
                    "pref" => {
                        st.pref = ws.get(i + 1).and_then(|p| p.text.parse().ok());
                        st.kind = ws.get(i + 2).map(|k| k.text.to_string());
                        i += 3;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
            match st.kind.as_deref() {
                Some("fw") => {
                    if let Some(h) = ws.iter().position(|w| w.text == "handle") {
                        match ws.get(h + 1).map(|w| (w, value_mask(w.text, c_u32))) {
                            Some((_, Some((v, m)))) => ops.push(fw_read(v, m)),
                            Some((w, None)) => diags.push(
                                Diagnostic::error(
                                    at.span(w.at, w.text.len()),
                                    format!("invalid fw handle `{}`", w.text),
                                )
                                .with_hint(MARK_HINT),
                            ),
                            None => {}
                        }
                    }
                }
                Some("bpf") => bpf_program(&ws, &st, at.line, source, sink),
                _ => {}
            }
        }
        // Actions (possibly on the filter line itself) and classifier option lines.
        while i < ws.len() {
            let w = ws[i].text;
            if w == "action"
                && ws.get(i + 1).is_some_and(|o| o.text == "order")
                && ws.get(i + 2).is_some_and(|n| n.text.ends_with(':'))
            {
                st.action = ws.get(i + 3).map(|k| k.text.to_string());
                if st.action.as_deref() == Some("connmark") {
                    ops.push(copy_from_ct(crate::model::ALL_BITS));
                }
                i += 4;
                continue;
            }
            let arg = ws.get(i + 1);
            let parsed = arg.map(|a| (a, value_mask(a.text, c_u32)));
            let mut bad = |a: &Word<'_>, what: &str| {
                diags.push(
                    Diagnostic::error(
                        at.span(a.at, a.text.len()),
                        format!("invalid {what} `{}`", a.text),
                    )
                    .with_hint(MARK_HINT),
                );
            };
            match (st.action.as_deref(), st.kind.as_deref(), w) {
                (Some("skbedit"), _, "mark") => match parsed {
                    Some((_, Some((v, m)))) => ops.push(skbedit_mark(v, m)),
                    Some((a, None)) => bad(a, "skbedit mark"),
                    None => {}
                },
                (Some("ct"), _, "mark") => match parsed {
                    Some((_, Some((v, m)))) => ops.extend(ct_mark_set(v, m)),
                    Some((a, None)) => bad(a, "ct mark"),
                    None => {}
                },
                (Some("ctinfo"), _, "cpmark") => match parsed {
                    Some((_, Some((m, _)))) => ops.push(copy_from_ct(m)),
                    Some((a, None)) => bad(a, "cpmark mask"),
                    None => {}
                },
                (None, Some("flower"), "ct_mark") => match parsed {
                    Some((_, Some((v, m)))) => ops.push(flower_ct_mark(v, m)),
                    Some((a, None)) => bad(a, "ct_mark"),
                    None => {}
                },
                _ => {}
            }
            i += 1;
        }
        if !ops.is_empty() {
            sink.touchpoints.push(Touchpoint {
                subsystem: Subsystem::Tc,
                span: at.trimmed(line),
                ops,
                context: TouchContext {
                    priority: st.pref,
                    device: st.device.clone(),
                    ..TouchContext::default()
                },
            });
        }
    }
    diags
}

/// Records a `bpf` filter's program.
fn bpf_program(ws: &[Word<'_>], st: &State, line: u32, source: SourceId, sink: &mut Sink) {
    let after = |key: &str| {
        ws.iter()
            .position(|w| w.text == key)
            .and_then(|i| ws.get(i + 1))
            .map(|w| w.text.to_string())
    };
    // `name NAME` (program info, newer tc) beats the section name after the handle.
    let name = after("name").or_else(|| {
        after("handle")
            .and_then(|_| {
                let h = ws.iter().position(|w| w.text == "handle")?;
                ws.get(h + 2).map(|w| w.text.to_string())
            })
            .filter(|n| n != "direct-action" && n != "not_in_hw" && n != "id")
    });
    let Some(name) = name else { return };
    sink.observations.push((
        source,
        Observation::BpfProgram {
            name,
            attach: match st.dir {
                Some(d) => format!("tc {d}"),
                None => "tc".to_string(),
            },
            device: st.device.clone(),
            line,
        },
    ));
}
