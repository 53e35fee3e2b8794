//! `ip -j rule show`: an array of objects, one per rule (iproute2 `ip/iprule.c` `print_rule`
//! with `PRINT_JSON`). Mark keys are hex strings: `"fwmark":"0xca6c"`, `"fwmask":"0xff0000"`
//! (`print_0xhex`; zero prints as `"0"`); `fwmask` is absent when the mask is 0xffffffff, exactly
//! as in the text form. `"not":null` marks an inverted rule; the target is `"table"`, `"goto"` or
//! `"action"`. `ip -j rule; ip -6 -j rule` pasted together give two arrays, which are both read.

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::source::SourceId;
use crate::sources::sink::Sink;
use crate::sources::text::{c_u32, json_elements, span_in};

use super::rule::{fwmark_mask, IpRule, LineForm, Target};

/// Whether a text is `ip -j rule` output: a JSON array whose first object has a `priority` key
/// (empty arrays are not claimed: they carry nothing).
pub(crate) fn detect(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('[') && {
        let head: String = t.chars().take(200).filter(|c| !c.is_whitespace()).collect();
        head.starts_with("[{\"priority\":")
    }
}

/// A 32-bit value given as a hex string (`"0x80"`, `"0"`) or a number.
fn mark_value(v: &Value) -> Option<u32> {
    match v {
        Value::String(s) => c_u32(s),
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
}

/// One rule object.
pub(crate) fn rule_of(obj: &Value) -> Result<IpRule, String> {
    let o = obj
        .as_object()
        .ok_or_else(|| "an `ip -j rule` element is not an object".to_string())?;
    let str_of = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let mut rule = IpRule {
        priority: o
            .get("priority")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        not: o.contains_key("not"),
        iif: str_of("iif"),
        oif: str_of("oif"),
        l3mdev: o.contains_key("l3mdev"),
        suppress_prefixlength: o
            .get("suppress_prefixlen")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        ..IpRule::default()
    };
    let mark = o.get("fwmark");
    let mask = o.get("fwmask");
    if mark.is_some() || mask.is_some() {
        let v = match mark {
            Some(m) => mark_value(m).ok_or_else(|| format!("invalid fwmark {m}"))?,
            None => 0,
        };
        let m = match mask {
            Some(m) => Some(mark_value(m).ok_or_else(|| format!("invalid fwmask {m}"))?),
            None => None,
        };
        rule.fwmark = Some((v, fwmark_mask(v, m, LineForm::Listing)));
    }
    rule.target = if let Some(t) = o.get("table") {
        let name = match t {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        rule.l3mdev |= name == "[l3mdev-table]";
        Some(Target::Lookup(name))
    } else if let Some(g) = o.get("goto").and_then(Value::as_u64) {
        Some(Target::Goto(u32::try_from(g).unwrap_or(u32::MAX)))
    } else {
        str_of("action").map(Target::Action)
    };
    Ok(rule)
}

/// Reads `ip -j rule` output.
pub(crate) fn parse(text: &str, source: SourceId, name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let base = name.rsplit('/').next().unwrap_or(name);
    let v6 = base.contains("-6") || base.contains("ip6") || base.contains("inet6");
    let Some(elements) = json_elements(text) else {
        let end = text.trim_end().len();
        diags.push(
            Diagnostic::error(
                span_in(source, text, (end.saturating_sub(1), end), ""),
                "unbalanced JSON: the `ip -j rule` output is truncated",
            )
            .with_hint("capture the whole output of `ip -j rule show`"),
        );
        return diags;
    };
    for range in elements {
        let piece = &text[range.0..range.1];
        let span = span_in(source, text, range, "\"fwmark\"");
        let value: Value = match serde_json::from_str(piece) {
            Ok(v) => v,
            Err(e) => {
                diags.push(
                    Diagnostic::error(span, format!("invalid JSON: {e}"))
                        .with_hint("expected the output of `ip -j rule show`"),
                );
                continue;
            }
        };
        match rule_of(&value) {
            Ok(mut rule) => {
                rule.ipv6 |= v6;
                if let Some(tp) = rule.touchpoint(span) {
                    sink.touchpoints.push(tp);
                }
            }
            Err(message) => diags.push(
                Diagnostic::error(span, message)
                    .with_hint("fwmark and fwmask are hex strings such as \"0x80\""),
            ),
        }
    }
    diags
}
