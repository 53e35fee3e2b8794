//! Open vSwitch: `ovs-ofctl dump-flows BRIDGE` output (and `add-flow` commands).
//!
//! A flow is `cookie=…, duration=…, table=T, n_packets=…, priority=P,MATCH… actions=ACTIONS`
//! (`lib/ofp-flow.c`, `ofputil_flow_stats_format`). `pkt_mark` is the kernel datapath's
//! `skb->mark` (`OVS_KEY_ATTR_SKB_MARK`; "platform-independent name for skb mark", OVS 2.0
//! `NEWS`), `ct_mark` the connmark (`OVS_KEY_ATTR_CT_MARK`).
//!
//! | printed | meaning |
//! |---|---|
//! | `pkt_mark=V[/M]`, `ct_mark=V[/M]` | read `(x & M) == (V & M)`: `match_set_pkt_mark_masked` stores `V & M` (`lib/match.c`); no mask = all 32 bits |
//! | `set_field:V[/M]->pkt_mark` (`->ct_mark` inside `ct(commit,exec(…))`) | write `x = (x & ~M) \| (V & M)` (`lib/ofp-actions.c` set_field, masked `set_masked` datapath action) |
//! | `load:V->NXM_NX_PKT_MARK[]`, `[a..b]`, `[n]` (`NXM_NX_CT_MARK` likewise) | write V into bits a..b (all 32 for `[]`) |
//! | `move:SRC->NXM_NX_PKT_MARK[a..b]` | data-dependent write of bits a..b |
//! | `ct(commit)` | commits the connection; no mark operation by itself |
//!
//! Context: the bridge (prompt line `ovs-ofctl dump-flows breth0`, or the file name
//! `ovs-ofctl_dump-flows_br-int` as sosreport writes it), the OpenFlow table and priority.

use crate::diagnostic::Diagnostic;
use crate::model::{Field, MarkOp, MarkRead, MarkWrite, WriteOp, ALL_BITS};
use crate::source::SourceId;
use crate::touchpoint::{Subsystem, TouchContext, Touchpoint};

use super::sink::Sink;
use super::text::{c_u32, first_line, prompt_command, value_mask, FirstLine, LineAt};

/// The flow text of a line: without a leading list number (`1. table=…`) or indentation.
fn flow_text(line: &str) -> &str {
    let l = line.trim();
    match l.split_once(". ") {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => l,
    }
}

fn is_flow(l: &str) -> bool {
    l.contains("actions=")
        && (l.starts_with("cookie=") || l.starts_with("table=") || l.starts_with("priority="))
}

fn is_ofctl(cmd: &str) -> bool {
    cmd.split_whitespace()
        .next()
        .is_some_and(|c| c.rsplit('/').next() == Some("ovs-ofctl"))
}

/// Whether a text is `ovs-ofctl dump-flows` output.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => is_ofctl(cmd),
        Some(FirstLine::Line(_, l)) => {
            is_flow(flow_text(l))
                || l.starts_with("NXST_FLOW reply")
                || l.starts_with("OFPST_FLOW reply")
                || (is_ofctl(l) && l.contains("add-flow"))
        }
        None => false,
    }
}

/// Splits at top-level commas (not inside parentheses or brackets), with offsets.
fn split_top(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push((start, &s[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push((start, &s[start..]));
    }
    out
}

/// The field an OpenFlow field name stands for.
fn field_of(name: &str) -> Option<Field> {
    match name {
        "pkt_mark" | "NXM_NX_PKT_MARK" => Some(Field::Mark),
        "ct_mark" | "NXM_NX_CT_MARK" | "OXM_OF_CT_MARK" => Some(Field::CtMark),
        _ => None,
    }
}

/// `NAME[]`, `NAME[a..b]`, `NAME[n]`: the field and the bits, or `None` if not a mark field.
fn subfield(s: &str) -> Option<Result<(Field, u32, u32), ()>> {
    let (name, range) = match s.split_once('[') {
        Some((n, r)) => (n, Some(r.strip_suffix(']').unwrap_or(r))),
        None => (s, None),
    };
    let field = field_of(name)?;
    let (lo, hi) = match range {
        None | Some("") => (0, 31),
        Some(r) => {
            let parse = |x: &str| x.parse::<u32>().ok().filter(|&n| n < 32);
            match r.split_once("..") {
                Some((a, b)) => match (parse(a), parse(b)) {
                    (Some(a), Some(b)) if a <= b => (a, b),
                    _ => return Some(Err(())),
                },
                None => match parse(r) {
                    Some(n) => (n, n),
                    None => return Some(Err(())),
                },
            }
        }
    };
    let width = hi - lo + 1;
    let mask = if width == 32 {
        ALL_BITS
    } else {
        ((1u32 << width) - 1) << lo
    };
    Some(Ok((field, lo, mask)))
}

/// What reading one flow found.
struct Flow {
    ops: Vec<MarkOp>,
    table: Option<String>,
    priority: Option<u32>,
    /// Errors: byte offset in the line, message, and whether it is only a shell variable.
    problems: Vec<(usize, String, bool)>,
}

const HINT: &str =
    "OVS prints `pkt_mark=0xV[/0xM]`, `set_field:0xV[/0xM]->pkt_mark`, `load:0xV->NXM_NX_PKT_MARK[a..b]`";

fn number(flow: &mut Flow, at: usize, text: &str, what: &str) -> Option<(u32, Option<u32>)> {
    let r = value_mask(text, c_u32);
    if r.is_none() {
        flow.problems.push((
            at,
            if text.starts_with('$') {
                format!("{what} `{text}` is a shell variable")
            } else {
                format!("invalid {what} `{text}`")
            },
            text.starts_with('$'),
        ));
    }
    r
}

/// Reads the actions (recursively into `ct(…)` and `exec(…)`).
fn actions(flow: &mut Flow, base: usize, s: &str) {
    for (off, a) in split_top(s) {
        let at = base + off;
        let a_trim = a.trim();
        if let Some(inner) = a_trim
            .strip_prefix("ct(")
            .or_else(|| a_trim.strip_prefix("exec("))
            .and_then(|x| x.strip_suffix(')'))
        {
            let skip = a.find('(').map_or(0, |i| i + 1);
            actions(flow, at + skip, inner);
            continue;
        }
        let (kind, rest) = match a_trim.split_once(':') {
            Some(p) => p,
            None => continue,
        };
        let Some((src, dst)) = rest.split_once("->") else {
            continue;
        };
        let arg_at = at + kind.len() + 1;
        match kind {
            "set_field" => {
                let Some(field) = field_of(dst) else { continue };
                if let Some((v, m)) = number(flow, arg_at, src, "set_field value") {
                    flow.ops.push(MarkOp::Write(MarkWrite::masked_set(
                        field,
                        v,
                        m.unwrap_or(ALL_BITS),
                    )));
                }
            }
            "load" | "move" => {
                let Some(sub) = subfield(dst) else { continue };
                let Ok((field, lo, mask)) = sub else {
                    flow.problems.push((
                        arg_at + src.len() + 2,
                        format!("invalid subfield `{dst}`"),
                        false,
                    ));
                    continue;
                };
                if kind == "move" {
                    flow.ops.push(MarkOp::Write(MarkWrite {
                        field,
                        op: WriteOp::DataDependent { bits: mask },
                    }));
                } else if let Some((v, _)) = number(flow, arg_at, src, "load value") {
                    let v = v.checked_shl(lo).unwrap_or(0);
                    flow.ops
                        .push(MarkOp::Write(MarkWrite::masked_set(field, v, mask)));
                }
            }
            _ => {}
        }
    }
}

/// Reads one flow line (without list number).
fn flow(l: &str) -> Flow {
    let mut f = Flow {
        ops: Vec::new(),
        table: None,
        priority: None,
        problems: Vec::new(),
    };
    let (matches, acts) = match l.find("actions=") {
        Some(i) => (
            &l[..i],
            Some((i + "actions=".len(), &l[i + "actions=".len()..])),
        ),
        None => (l, None),
    };
    for (off, m) in split_top(matches) {
        let lead = m.len() - m.trim_start().len();
        let m = m.trim();
        let Some((k, v)) = m.split_once('=') else {
            continue;
        };
        let v_at = off + lead + k.len() + 1;
        match k {
            "table" => f.table = Some(v.to_string()),
            "priority" => f.priority = v.parse().ok(),
            "pkt_mark" | "ct_mark" => {
                let field = if k == "pkt_mark" {
                    Field::Mark
                } else {
                    Field::CtMark
                };
                if let Some((val, mask)) = number(&mut f, v_at, v, k) {
                    let mask = mask.unwrap_or(ALL_BITS);
                    f.ops.push(MarkOp::Read(MarkRead::equals(
                        field,
                        val & mask,
                        mask,
                        false,
                    )));
                }
            }
            _ => {}
        }
    }
    if let Some((at, a)) = acts {
        let a = a.trim_end_matches(['"', '\'']);
        actions(&mut f, at, a);
    }
    f
}

/// The bridge a command names (`ovs-ofctl [-O…] dump-flows BRIDGE`).
fn bridge_of(cmd: &str) -> Option<String> {
    let ws: Vec<&str> = cmd.split_whitespace().collect();
    let i = ws
        .iter()
        .position(|w| matches!(*w, "dump-flows" | "add-flow" | "add-flows" | "mod-flows"))?;
    ws.get(i + 1)
        .filter(|b| !b.starts_with('$') && !b.starts_with('-') && !b.contains('='))
        .map(|b| b.to_string())
}

/// Reads `ovs-ofctl dump-flows` output.
pub(crate) fn parse(text: &str, source: SourceId, name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let default_bridge = base
        .split_once("dump-flows_")
        .map(|(_, b)| b.trim_end_matches(".md").to_string());
    let mut bridge = default_bridge.clone();
    let mut in_ovs = true;
    let mut diags = Vec::new();
    for (at, line) in LineAt::lines(text, source) {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let prompt = prompt_command(l);
        if let Some(cmd) = prompt {
            in_ovs = is_ofctl(cmd);
            bridge = bridge_of(cmd).or_else(|| default_bridge.clone());
            continue;
        }
        if !in_ovs || l.starts_with('#') {
            continue;
        }
        // `ovs-ofctl … add-flow BRIDGE "FLOW"`: the flow is the quoted argument.
        let (text_at, ftext) = if is_ofctl(l) {
            match l.find(['"', '\'']) {
                Some(q) => {
                    if let Some(b) = bridge_of(&l[..q]) {
                        bridge = Some(b);
                    }
                    (q + 1, &l[q + 1..])
                }
                None => continue,
            }
        } else {
            let f = flow_text(line);
            (f.as_ptr() as usize - line.as_ptr() as usize, f)
        };
        if !ftext.contains("actions=") && !ftext.contains("pkt_mark") && !ftext.contains("ct_mark")
        {
            continue;
        }
        let lead = if is_ofctl(l) {
            line.len() - line.trim_start().len()
        } else {
            0
        };
        let f = flow(ftext);
        for (off, message, variable) in f.problems {
            let span = at.span(lead + text_at + off, 1);
            diags.push(if variable {
                Diagnostic::warning(span, message)
                    .with_hint("substitute the value to audit this command")
            } else {
                Diagnostic::error(span, message).with_hint(HINT)
            });
        }
        if !f.ops.is_empty() {
            sink.touchpoints.push(Touchpoint {
                subsystem: Subsystem::Ovs,
                span: at.trimmed(line),
                ops: f.ops,
                context: TouchContext {
                    table: f.table,
                    priority: f.priority,
                    device: bridge.clone(),
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
    use crate::model::MarkState;

    fn run(text: &str, name: &str) -> (Sink, Vec<Diagnostic>) {
        assert!(detect(text), "not detected");
        let mut sink = Sink::default();
        let d = parse(text, SourceId(0), name, &mut sink);
        (sink, d)
    }

    fn apply(op: &MarkOp, s: MarkState) -> MarkState {
        let MarkOp::Write(w) = op else { panic!() };
        let mut s = s;
        s.apply(w);
        s
    }

    #[test]
    fn dump_flows_with_ct_mark_load_and_pkt_mark_match() {
        let text = "root@n:/# ovs-ofctl dump-flows breth0 | grep 10.x.x.99\n cookie=0xdeff105, duration=161371.465s, table=0, n_packets=21311, n_bytes=1559651, idle_age=249, priority=105,pkt_mark=0xc350,ip,in_port=2,dl_src=50:6b:8d:de:2d:a9 actions=ct(commit,zone=64000,nat(src=10.x.x.99),exec(load:0x4->NXM_NX_CT_MARK[])),output:1\n";
        let (sink, d) = run(text, "x");
        assert!(d.is_empty(), "{d:?}");
        let tp = &sink.touchpoints[0];
        assert_eq!(tp.context.device.as_deref(), Some("breth0"));
        assert_eq!(tp.context.priority, Some(105));
        assert_eq!(tp.context.table.as_deref(), Some("0"));
        assert_eq!(
            tp.ops[0],
            MarkOp::Read(MarkRead::equals(Field::Mark, 0xc350, ALL_BITS, false))
        );
        let s = apply(
            &tp.ops[1],
            MarkState {
                ctmark: 0xff,
                ..Default::default()
            },
        );
        assert_eq!(s.ctmark, 4, "load into [] replaces the whole ct_mark");
    }

    #[test]
    fn set_field_masked_and_bit_loads() {
        let text = "5. table=EgressMark, priority=200,ct_state=+new+trk,ip,tun_dst=192.168.77.112 actions=set_field:0x1/0xff->pkt_mark,set_field:0x20/0xf0->reg0,goto_table:L2ForwardingCalc\ncookie=0x3030000000000, table=SNATMark, priority=200,ct_state=+new+trk,ip,reg0=0x22/0xff actions=ct(commit,table=SNAT,zone=65520,exec(load:0x1->NXM_NX_CT_MARK[5],load:0x1->NXM_NX_CT_MARK[6]))\n1. table=IngressSecurityClassifier, priority=210,pkt_mark=0x80000000/0x80000000,ct_state=-rpl+trk,ip actions=goto_table:ConntrackCommit\n";
        let (sink, d) = run(text, "sos_commands/openvswitch/ovs-ofctl_dump-flows_br-int");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(sink.touchpoints.len(), 3);
        assert_eq!(
            sink.touchpoints[0].context.device.as_deref(),
            Some("br-int")
        );
        assert_eq!(
            sink.touchpoints[0].context.table.as_deref(),
            Some("EgressMark")
        );
        let s = apply(
            &sink.touchpoints[0].ops[0],
            MarkState {
                mark: 0xabcd,
                ..Default::default()
            },
        );
        assert_eq!(s.mark, 0xab01);
        let ops = &sink.touchpoints[1].ops;
        let mut s = MarkState::default();
        for op in ops {
            s = apply(op, s);
        }
        assert_eq!(s.ctmark, 0x60);
        let MarkOp::Write(w) = ops[0] else { panic!() };
        assert_eq!(w.bits(), 0x20);
        assert_eq!(
            sink.touchpoints[2].ops[0],
            MarkOp::Read(MarkRead::equals(
                Field::Mark,
                0x8000_0000,
                0x8000_0000,
                false
            ))
        );
    }

    #[test]
    fn add_flow_template_warns_about_variables() {
        let text = "ovs-ofctl $node_name add-flow $bridge \"cookie=$cookie,priority=105,pkt_mark=0x3f0,$proto,in_port=$ofport,dl_src=$lrp_mac,actions=ct(commit,zone=64000,exec(set_field:$ct_mark->ct_mark)),output:1\"\n";
        let (sink, d) = run(text, "x");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].level, crate::diagnostic::Level::Warning);
        assert_eq!(&text[d[0].span.start as usize..][..9], "$ct_mark-");
        assert_eq!(sink.touchpoints[0].ops.len(), 1);
    }

    #[test]
    fn malformed_values() {
        let (_, d) = run("table=0, priority=1,pkt_mark=0xzz actions=drop\n", "x");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].level, crate::diagnostic::Level::Error);
        let (_, d) = run(
            "table=0, priority=1 actions=load:0x1->NXM_NX_PKT_MARK[40]\n",
            "x",
        );
        assert!(d[0].message.contains("invalid subfield"));
    }

    #[test]
    fn detection() {
        assert!(!detect("filter protocol all pref 1 fw\n"));
        assert!(detect(
            "NXST_FLOW reply (xid=0x4):\n cookie=0x0, table=0, actions=NORMAL\n"
        ));
    }
}
