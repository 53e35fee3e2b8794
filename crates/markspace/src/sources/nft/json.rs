//! `nft -j list ruleset` (libnftables JSON, `libnftables-json(5)`, `src/json.c` and
//! `src/parser_json.c`).
//!
//! The `nftables` crate's serde types were evaluated and not used: its `Statement` and
//! `Expression` enums are closed (an object nft adds in a later release, or one the crate does
//! not model yet such as `tproxy`, `synproxy`, `last` or `xt`, fails the whole document, where
//! markspace must keep unknown syntax opaque), deserialising gives no positions for
//! `file:line:column` diagnostics and evidence, and it would add `schemars`, `strum` and
//! `serde_path_to_error` to the dependencies. Instead the document is checked with
//! `serde_json` (whose errors carry line and column), each element of the `nftables` array is
//! located by a small scanner so rules have spans, and `serde_json::Value`s are walked into the
//! same syntax tree as the text form.

use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::ruleset::{BaseChain, RulesetBuilder};
use crate::source::{SourceId, Span};

use super::ast::{BinOp, Expr, MapData, MarkSrc, RelOp, Stmt, VerdictAst, VmapData};
use super::build::NftBuild;
use super::lower::lower;

/// Whether a text is libnftables JSON (an object with an `nftables` member near the start).
pub(crate) fn detect(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('{')
        && t.get(..t.len().min(512))
            .is_some_and(|h| h.contains("\"nftables\""))
}

/// Byte ranges of the elements of the top-level `"nftables": [ … ]` array.
fn element_ranges(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let Some(key) = text.find("\"nftables\"") else {
        return Vec::new();
    };
    let Some(open) = text[key..].find('[').map(|n| key + n) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = open + 1;
    let mut depth = 0usize;
    let mut start = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                start.get_or_insert(i);
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => {
                start.get_or_insert(i);
                depth += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    if let Some(s) = start.take() {
                        out.push((s, i + 1));
                    }
                }
            }
            b']' => {
                if let Some(s) = start.take() {
                    out.push((s, text[..i].trim_end().len()));
                }
                break;
            }
            b',' if depth == 0 => {
                if let Some(s) = start.take() {
                    out.push((s, text[..i].trim_end().len()));
                }
            }
            c if !c.is_ascii_whitespace() => {
                start.get_or_insert(i);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads one input into the builder.
pub(crate) fn parse(
    text: &str,
    source: SourceId,
    _name: &str,
    b: &mut RulesetBuilder,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.line().max(1);
            let line_start = text
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum::<usize>();
            let col: usize = text[line_start..]
                .chars()
                .take(e.column().saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            diags.push(
                Diagnostic::error(
                    Span {
                        source,
                        line: line as u32,
                        start: (line_start + col).min(text.len()) as u32,
                        len: 1,
                    },
                    format!("invalid JSON: {e}"),
                )
                .with_hint("expected the output of `nft -j list ruleset`"),
            );
            return diags;
        }
    };
    let Some(items) = doc.get("nftables").and_then(Value::as_array) else {
        diags.push(
            Diagnostic::error(
                Span {
                    source,
                    line: 1,
                    start: 0,
                    len: 1,
                },
                "JSON without an `nftables` array",
            )
            .with_hint("expected the output of `nft -j list ruleset`: {\"nftables\": [ … ]}"),
        );
        return diags;
    };
    let ranges = element_ranges(text);
    let ranges = if ranges.len() == items.len() {
        ranges
    } else {
        vec![(0, 0); items.len()]
    };
    let mut nft = NftBuild::new(b, source);
    // Line numbers counted incrementally: the elements are in text order.
    let (mut line, mut counted) = (1u32, 0usize);
    for (item, (start, end)) in items.iter().zip(ranges) {
        if start >= counted {
            line += memchr::memchr_iter(b'\n', &text.as_bytes()[counted..start]).count() as u32;
            counted = start;
        }
        let first_line_end = memchr::memchr(b'\n', &text.as_bytes()[start..end.max(start)])
            .map_or(end, |n| start + n);
        let span = Span {
            source,
            line,
            start: start as u32,
            len: (first_line_end.max(start) - start) as u32,
        };
        object(item, span, &mut nft, &mut diags);
    }
    nft.finish();
    diags
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// One element of the `nftables` array (commands such as `{"add": {"rule": …}}` unwrapped).
fn object(item: &Value, span: Span, nft: &mut NftBuild<'_>, diags: &mut Vec<Diagnostic>) {
    let Some(obj) = item.as_object() else { return };
    for (kind, body) in obj {
        match kind.as_str() {
            "add" | "create" | "insert" | "replace" => object(body, span, nft, diags),
            "table" => {
                let (Some(family), Some(name)) = (
                    str_of(body, "family").and_then(super::family),
                    str_of(body, "name"),
                ) else {
                    continue;
                };
                let t = nft.table(family, name);
                nft.listed(t);
                let flags = body.get("flags");
                let dormant = match flags {
                    Some(Value::String(s)) => s == "dormant",
                    Some(Value::Array(a)) => a.iter().any(|f| f == "dormant"),
                    _ => false,
                };
                if dormant {
                    nft.dormant(t);
                }
            }
            "chain" => {
                let (Some(family), Some(table), Some(name)) = (
                    str_of(body, "family").and_then(super::family),
                    str_of(body, "table"),
                    str_of(body, "name"),
                ) else {
                    continue;
                };
                let t = nft.table(family, table);
                let hook = str_of(body, "hook").and_then(super::hook);
                let prio = match body.get("prio") {
                    Some(Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
                    Some(Value::String(s)) => super::priority(family, s),
                    _ => None,
                };
                let base = match (hook, prio) {
                    (Some(hook), Some(priority)) => Some(BaseChain {
                        hook,
                        priority,
                        kind: super::chain_type(str_of(body, "type").unwrap_or("filter")),
                    }),
                    _ => None,
                };
                nft.chain(t, name, base);
                if let Some(p) = str_of(body, "policy") {
                    nft.policy(t, name, p);
                }
            }
            "map" => {
                let (Some(family), Some(table), Some(name)) = (
                    str_of(body, "family").and_then(super::family),
                    str_of(body, "table"),
                    str_of(body, "name"),
                ) else {
                    continue;
                };
                let t = nft.table(family, table);
                let verdicts: Vec<VerdictAst> = body
                    .get("elem")
                    .and_then(Value::as_array)
                    .map(|els| {
                        els.iter()
                            .filter_map(|e| e.as_array().and_then(|kv| kv.get(1)))
                            .filter_map(verdict)
                            .collect()
                    })
                    .unwrap_or_default();
                if !verdicts.is_empty() {
                    nft.vmap(t, name, verdicts);
                }
            }
            "element" => {
                let (Some(family), Some(table), Some(name)) = (
                    str_of(body, "family").and_then(super::family),
                    str_of(body, "table"),
                    str_of(body, "name"),
                ) else {
                    continue;
                };
                let t = nft.table(family, table);
                let verdicts: Vec<VerdictAst> = body
                    .get("elem")
                    .and_then(Value::as_array)
                    .map(|els| {
                        els.iter()
                            .filter_map(|e| e.as_array().and_then(|kv| kv.get(1)))
                            .filter_map(verdict)
                            .collect()
                    })
                    .unwrap_or_default();
                if !verdicts.is_empty() {
                    nft.vmap(t, name, verdicts);
                }
            }
            "rule" => {
                let (Some(family), Some(table), Some(chain)) = (
                    str_of(body, "family").and_then(super::family),
                    str_of(body, "table"),
                    str_of(body, "chain"),
                ) else {
                    continue;
                };
                let t = nft.table(family, table);
                let mut stmts: Vec<Stmt> = body
                    .get("expr")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(statement).collect())
                    .unwrap_or_default();
                if let Some(c) = str_of(body, "comment") {
                    stmts.push(Stmt::Comment(c.to_string()));
                }
                nft.rule(t, chain, span, lower(&stmts), kind == "insert", diags);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
/// A rule's statement list, as the conformance tests read it.
pub(crate) fn statements(v: &Value) -> Vec<Stmt> {
    match v {
        Value::Array(a) => a.iter().map(statement).collect(),
        other => vec![statement(other)],
    }
}

fn verdict(v: &Value) -> Option<VerdictAst> {
    let (k, body) = v.as_object()?.iter().next()?;
    let target = || str_of(body, "target").map(str::to_string);
    Some(match k.as_str() {
        "accept" => VerdictAst::Accept,
        "drop" => VerdictAst::Drop,
        "continue" => VerdictAst::Continue,
        "return" => VerdictAst::Return,
        "jump" => VerdictAst::Jump(target()?),
        "goto" => VerdictAst::Goto(target()?),
        _ => return None,
    })
}

fn statement(v: &Value) -> Stmt {
    let Some((k, body)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Stmt::Other(vec![]);
    };
    if let Some(vd) = verdict(v) {
        return Stmt::Verdict(vd);
    }
    match k.as_str() {
        "match" => {
            let left = expr(body.get("left").unwrap_or(&Value::Null));
            let right_v = body.get("right").unwrap_or(&Value::Null);
            let right = expr(right_v);
            let op = match str_of(body, "op").unwrap_or("==") {
                "!=" => RelOp::Ne,
                "<" | ">" | "<=" | ">=" => RelOp::Order,
                _ => RelOp::Eq,
            };
            let key = body
                .get("left")
                .and_then(|l| l.get("meta"))
                .and_then(|m| str_of(m, "key"));
            if let (Some("iifname" | "oifname" | "iif" | "oif"), RelOp::Eq, Some(name)) =
                (key, op, right_v.as_str())
            {
                // An interface match reads no mark; only the name is kept, for attribution.
                return Stmt::Interface(name.to_string());
            }
            Stmt::Match { left, op, right }
        }
        "mangle" => {
            let key = expr(body.get("key").unwrap_or(&Value::Null));
            let value = expr(body.get("value").unwrap_or(&Value::Null));
            match key {
                Expr::Mark(MarkSrc::Meta) => Stmt::SetMark {
                    field: crate::model::Field::Mark,
                    value,
                },
                Expr::Mark(MarkSrc::Ct) => Stmt::SetMark {
                    field: crate::model::Field::CtMark,
                    value,
                },
                _ => Stmt::Other(vec![value]),
            }
        }
        "vmap" => {
            let key = expr(body.get("key").unwrap_or(&Value::Null));
            let data = match body.get("data") {
                Some(Value::String(s)) => VmapData::Named(s.trim_start_matches('@').to_string()),
                Some(d) => VmapData::Elements(
                    d.get("set")
                        .and_then(Value::as_array)
                        .map(|els| {
                            els.iter()
                                .filter_map(|e| {
                                    let kv = e.as_array()?;
                                    Some((expr(kv.first()?), verdict(kv.get(1)?)?))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                None => VmapData::Elements(Vec::new()),
            };
            Stmt::Vmap { key, data }
        }
        "xt" => Stmt::Xt {
            target: str_of(body, "type") == Some("target"),
            name: str_of(body, "name").unwrap_or("").to_string(),
        },
        "queue" | "reject" | "masquerade" | "snat" | "dnat" | "redirect" | "synproxy" => {
            Stmt::Verdict(VerdictAst::Terminal(k.clone()))
        }
        _ => Stmt::Other(children(body)),
    }
}

/// Expressions nested anywhere in a JSON value (for statements markspace does not model).
fn children(v: &Value) -> Vec<Expr> {
    match v {
        // A one-member object may itself be an expression (`{"map": …}`).
        Value::Object(o) if o.len() == 1 => vec![expr(v)],
        Value::Object(o) => o.values().map(expr).collect(),
        Value::Array(a) => a.iter().map(expr).collect(),
        _ => Vec::new(),
    }
}

fn num_of(v: Option<&Value>) -> u32 {
    v.and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// One JSON expression.
pub(crate) fn expr(v: &Value) -> Expr {
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map_or_else(|| Expr::data(vec![]), Expr::Num),
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('@') {
                return Expr::Named(name.to_string());
            }
            let l = super::lex::lex(s);
            match l.tokens.as_slice() {
                [t] => match t.word() {
                    Some(w) if w.starts_with(|c: char| c.is_ascii_digit()) => number_word(w),
                    _ => Expr::data(vec![]),
                },
                _ => Expr::data(vec![]),
            }
        }
        Value::Array(a) => Expr::Set(a.iter().map(expr).collect()),
        Value::Object(o) => {
            let Some((k, body)) = o.iter().next() else {
                return Expr::data(vec![]);
            };
            let key = str_of(body, "key");
            match k.as_str() {
                "meta" if key == Some("mark") => Expr::Mark(MarkSrc::Meta),
                "ct" if key == Some("mark") => Expr::Mark(MarkSrc::Ct),
                "socket" if key == Some("mark") => Expr::Mark(MarkSrc::Socket),
                "meta" | "ct" | "socket" | "payload" | "exthdr" | "rt" | "osf" | "ipsec" => {
                    Expr::data(vec![])
                }
                "&" | "|" | "^" | "<<" | ">>" => {
                    let op = match k.as_str() {
                        "&" => BinOp::And,
                        "|" => BinOp::Or,
                        "^" => BinOp::Xor,
                        "<<" => BinOp::Shl,
                        _ => BinOp::Shr,
                    };
                    let mut it = body.as_array().into_iter().flatten().map(expr);
                    let first = it.next().unwrap_or_else(|| Expr::data(vec![]));
                    it.fold(first, |a, b| Expr::binop(op, a, b))
                }
                "set" => match body {
                    Value::Array(a) => Expr::Set(
                        a.iter()
                            .map(|e| match e.as_array() {
                                Some(kv) if kv.len() == 2 => {
                                    Expr::Concat(vec![expr(&kv[0]), expr(&kv[1])])
                                }
                                _ => expr(e),
                            })
                            .collect(),
                    ),
                    other => Expr::Set(vec![expr(other)]),
                },
                "elem" => expr(body.get("val").unwrap_or(&Value::Null)),
                "range" => {
                    let a = body.as_array();
                    let lo = a
                        .and_then(|a| a.first())
                        .map_or_else(|| Expr::data(vec![]), expr);
                    let hi = a
                        .and_then(|a| a.get(1))
                        .map_or_else(|| Expr::data(vec![]), expr);
                    Expr::Range(Box::new(lo), Box::new(hi))
                }
                "prefix" => Expr::Prefix(
                    Box::new(expr(body.get("addr").unwrap_or(&Value::Null))),
                    num_of(body.get("len")),
                ),
                "concat" => Expr::Concat(body.as_array().into_iter().flatten().map(expr).collect()),
                "map" => {
                    let key = expr(body.get("key").unwrap_or(&Value::Null));
                    let data = match body.get("data") {
                        Some(Value::String(s)) => {
                            MapData::Named(s.trim_start_matches('@').to_string())
                        }
                        Some(d) => MapData::Elements(
                            d.get("set")
                                .and_then(Value::as_array)
                                .map(|els| {
                                    els.iter()
                                        .filter_map(|e| {
                                            let kv = e.as_array()?;
                                            Some((expr(kv.first()?), expr(kv.get(1)?)))
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        None => MapData::Named(String::new()),
                    };
                    Expr::Map(Box::new(key), data)
                }
                "jhash" | "symhash" | "numgen" => {
                    let modulus = num_of(body.get("mod"));
                    let offset = num_of(body.get("offset"));
                    let max = offset.saturating_add(modulus.saturating_sub(1));
                    let bits = if max == 0 {
                        0
                    } else {
                        u32::MAX >> max.leading_zeros()
                    };
                    let inputs = body.get("expr").map(expr).into_iter().collect();
                    Expr::Hash { inputs, bits }
                }
                "fib" => {
                    let mark = body
                        .get("flags")
                        .map(|f| match f {
                            Value::Array(a) => a.iter().any(|x| x == "mark"),
                            Value::String(s) => s == "mark",
                            _ => false,
                        })
                        .unwrap_or(false);
                    Expr::Data(if mark {
                        vec![Expr::Mark(MarkSrc::Meta)]
                    } else {
                        vec![]
                    })
                }
                _ => Expr::Data(children(body)),
            }
        }
        _ => Expr::data(vec![]),
    }
}

/// A number, `lo-hi` or `value/len` given as a JSON string.
fn number_word(w: &str) -> Expr {
    let l = super::lex::lex(w);
    match super::rule::parse_rule(&l.tokens, w.len()) {
        Ok(stmts) => match stmts.into_iter().next() {
            Some(Stmt::Other(mut v)) if v.len() == 1 => {
                v.pop().unwrap_or_else(|| Expr::data(vec![]))
            }
            _ => Expr::data(vec![]),
        },
        Err(_) => Expr::data(vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_ranges_find_each_object() {
        let t = r#"{"nftables": [{"a": "]"}, {"b": [1, {"c": 2}]}, 3]}"#;
        let r = element_ranges(t);
        assert_eq!(r.len(), 3);
        assert_eq!(&t[r[0].0..r[0].1], r#"{"a": "]"}"#);
        assert_eq!(&t[r[1].0..r[1].1], r#"{"b": [1, {"c": 2}]}"#);
        assert_eq!(&t[r[2].0..r[2].1], "3");
    }
}
