//! `tc -j filter show`: an array of filter objects,
//! `{"protocol":"all","pref":1,"kind":"fw","chain":0,"options":{"handle":"0x6",…,"actions":[…]}}`.
//!
//! The fw handle appears as `"handle":"0x6"` or `"0x6/0xff"`, or — after the 2024 iproute2 fix of
//! the fw JSON output — as `"fw":{"mark":…,"mask":…}`; both are accepted, as numbers or hex
//! strings. Actions carry `"kind"` and their fields: skbedit `"mark"`/`"mask"`, ct
//! `"mark"`/`"mark_mask"`, ctinfo `"cpmark"`. bpf filters carry `"bpf_name"` and
//! `"prog":{"name":…}`.

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;
use crate::model::{MarkOp, ALL_BITS};
use crate::source::SourceId;
use crate::sources::sink::Sink;
use crate::sources::text::{c_u32, json_elements, line_of, span_in, value_mask};
use crate::touchpoint::{Observation, Subsystem, TouchContext, Touchpoint};

use super::{
    copy_from_ct, ct_mark_set, direction_of_parent, flower_ct_mark, from_file_name, fw_read,
    skbedit_mark,
};

/// Whether a text is `tc -j filter show` output.
pub(crate) fn detect(text: &str) -> bool {
    let head: String = text
        .trim_start()
        .chars()
        .take(200)
        .filter(|c| !c.is_whitespace())
        .collect();
    head.starts_with("[{\"protocol\":") || head.starts_with("[{\"parent\":")
}

fn num(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => c_u32(s),
        _ => None,
    }
}

/// The mark operations of one filter object, or an error message.
fn ops_of(o: &Map<String, Value>) -> Result<Vec<MarkOp>, String> {
    let mut ops = Vec::new();
    let empty = Map::new();
    let opts = o
        .get("options")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    match o.get("kind").and_then(Value::as_str) {
        Some("fw") => {
            if let Some(fw) = opts.get("fw").and_then(Value::as_object) {
                let v = num(fw.get("mark")).ok_or("invalid fw mark")?;
                ops.push(fw_read(v, num(fw.get("mask"))));
            } else if let Some(h) = opts.get("handle") {
                let (v, m) = match h {
                    Value::String(s) => value_mask(s, c_u32),
                    other => num(Some(other)).map(|v| (v, None)),
                }
                .ok_or_else(|| format!("invalid fw handle {h}"))?;
                ops.push(fw_read(v, m.or_else(|| num(opts.get("mask")))));
            }
        }
        Some("flower") => {
            if let Some(v) = num(opts.get("keys").and_then(|k| k.get("ct_mark"))) {
                let m = num(opts.get("keys").and_then(|k| k.get("ct_mark_mask")));
                ops.push(flower_ct_mark(v, m));
            }
        }
        _ => {}
    }
    for a in opts
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match a.get("kind").and_then(Value::as_str) {
            Some("skbedit") if a.get("mark").is_some() => {
                let v = num(a.get("mark")).ok_or("invalid skbedit mark")?;
                ops.push(skbedit_mark(v, num(a.get("mask"))));
            }
            Some("connmark") => ops.push(copy_from_ct(ALL_BITS)),
            Some("ctinfo") if a.get("cpmark").is_some() => {
                let m = num(a.get("cpmark")).ok_or("invalid ctinfo cpmark")?;
                ops.push(copy_from_ct(m));
            }
            Some("ct") if a.get("mark").is_some() => {
                let v = num(a.get("mark")).ok_or("invalid ct mark")?;
                ops.extend(ct_mark_set(v, num(a.get("mark_mask"))));
            }
            _ => {}
        }
    }
    Ok(ops)
}

/// Reads `tc -j filter show` output.
pub(crate) fn parse(text: &str, source: SourceId, name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let (device, dir) = from_file_name(name);
    let mut diags = Vec::new();
    let Some(elements) = json_elements(text) else {
        let end = text.trim_end().len();
        diags.push(
            Diagnostic::error(
                span_in(source, text, (end.saturating_sub(1), end), ""),
                "unbalanced JSON: the `tc -j filter show` output is truncated",
            )
            .with_hint("older iproute2 printed invalid JSON for fw filters; read the text form (`tc filter show`) instead"),
        );
        return diags;
    };
    for range in elements {
        let span = span_in(source, text, range, "\"kind\"");
        let value: Value = match serde_json::from_str(&text[range.0..range.1]) {
            Ok(v) => v,
            Err(e) => {
                diags.push(Diagnostic::error(span, format!("invalid JSON: {e}")).with_hint(
                    "older iproute2 printed invalid JSON for fw filters; read the text form (`tc filter show`) instead",
                ));
                continue;
            }
        };
        let Some(o) = value.as_object() else { continue };
        let device = o
            .get("dev")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| device.clone());
        let dir = o
            .get("parent")
            .and_then(Value::as_str)
            .and_then(direction_of_parent)
            .or(dir);
        if o.get("kind").and_then(Value::as_str) == Some("bpf") {
            let opts = o.get("options");
            let name = opts
                .and_then(|p| p.get("prog"))
                .and_then(|p| p.get("name"))
                .or_else(|| opts.and_then(|p| p.get("bpf_name")))
                .and_then(Value::as_str);
            if let Some(name) = name {
                sink.observations.push((
                    source,
                    Observation::BpfProgram {
                        name: name.to_string(),
                        attach: dir.map_or_else(|| "tc".to_string(), |d| format!("tc {d}")),
                        device: device.clone(),
                        line: line_of(text, range.0).0,
                    },
                ));
            }
        }
        match ops_of(o) {
            Ok(ops) if !ops.is_empty() => sink.touchpoints.push(Touchpoint {
                subsystem: Subsystem::Tc,
                span,
                ops,
                context: TouchContext {
                    priority: num(o.get("pref")),
                    device,
                    ..TouchContext::default()
                },
            }),
            Ok(_) => {}
            Err(message) => diags.push(
                Diagnostic::error(span, message)
                    .with_hint("marks are numbers or hex strings such as \"0x80\""),
            ),
        }
    }
    diags
}
