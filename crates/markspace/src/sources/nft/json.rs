//! `nft -j list ruleset` (libnftables JSON, `libnftables-json(5)`, `src/json.c` and
//! `src/parser_json.c`).
//!
//! The `nftables` crate's serde types were evaluated and not used: its `Statement` and
//! `Expression` enums are closed (an object nft adds in a later release, or one the crate does
//! not model yet such as `tproxy`, `synproxy`, `last` or `xt`, fails the whole document, where
//! markspace must keep unknown syntax opaque), deserialising gives no positions for
//! `file:line:column` diagnostics and evidence, and it would add `schemars`, `strum` and
//! `serde_path_to_error` to the dependencies. Instead the document is parsed with `serde_json`
//! (whose errors carry line and column), one element of the `nftables` array at a time, into a
//! [`Val`] that borrows its strings; each element is walked into the same syntax tree as the
//! text form and lowered, then dropped. Rules have spans: the elements are located from where
//! their first keys are in the input, or by a small scanner.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::diagnostic::Diagnostic;
use crate::ruleset::{BaseChain, Family, RulesetBuilder};
use crate::source::{SourceId, Span};

use super::ast::{
    terminal_action, BinOp, Expr, MapData, MarkSrc, RelOp, Stmt, VerdictAst, VmapData,
};
use super::build::NftBuild;
use super::lower::{lower, Lowered};
use super::tape::{Arr, Key, Parse, Tape, Val, View, J};
use crate::ruleset::Action;

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

/// The ranges [`element_ranges`] finds, without scanning the text (a scan byte by byte took a
/// seventh of the time of an audit): serde_json gives no positions, but a key without escapes
/// is a slice of the input, so where the first key of each element is tells where the element
/// starts, and the element ends at the `}` before the comma before the next one. `None` unless
/// the document is `{"nftables": [ … ]}` with every element an object whose first key has no
/// escapes, as `nft -j` writes it: then the array parsed is the one `element_ranges` scans.
fn ranges_from_keys(text: &str, elements: &Elements<'_>) -> Option<Vec<(usize, usize)>> {
    if !elements.sole_member {
        return None;
    }
    text.trim_start()
        .strip_prefix('{')?
        .trim_start()
        .strip_prefix("\"nftables\"")?
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('[')?;
    // The `]` closing the array.
    let close = text
        .trim_end()
        .strip_suffix('}')?
        .trim_end()
        .strip_suffix(']')?
        .len();
    let base = text.as_ptr() as usize;
    let mut starts = Vec::with_capacity(elements.first_keys.len());
    for &key in &elements.first_keys {
        let key = key?;
        // The `{` before the key's opening quote.
        let quote = (key.as_ptr() as usize).checked_sub(base)?.checked_sub(1)?;
        let brace = text.get(..quote)?.trim_end().len().checked_sub(1)?;
        if text.as_bytes().get(brace) != Some(&b'{') {
            return None;
        }
        starts.push(brace);
    }
    let mut ranges = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let before_next = match starts.get(i + 1) {
            Some(&next) => text[..next].trim_end().strip_suffix(',')?,
            None => &text[..close],
        };
        let end = before_next.trim_end().len();
        if end <= start || text.as_bytes()[end - 1] != b'}' {
            return None;
        }
        ranges.push((start, end));
    }
    Some(ranges)
}

/// What one element of the `nftables` array adds to the ruleset, read and lowered; added once
/// the whole document has parsed (a syntax error anywhere adds nothing).
enum Item<'a> {
    Table {
        family: Family,
        name: Cow<'a, str>,
        dormant: bool,
    },
    Chain {
        family: Family,
        table: Cow<'a, str>,
        name: Cow<'a, str>,
        base: Option<BaseChain>,
        policy: Option<Cow<'a, str>>,
    },
    /// A map or its elements (only verdict maps keep anything).
    Map {
        family: Family,
        table: Cow<'a, str>,
        name: Cow<'a, str>,
        verdicts: Vec<VerdictAst>,
    },
    Rule {
        family: Family,
        table: Cow<'a, str>,
        chain: Cow<'a, str>,
        lowered: Lowered,
        insert: bool,
    },
}

impl Item<'_> {
    fn add(self, span: Span, nft: &mut NftBuild<'_>, diags: &mut Vec<Diagnostic>) {
        match self {
            Item::Table {
                family,
                name,
                dormant,
            } => {
                let t = nft.table(family, &name);
                nft.listed(t);
                if dormant {
                    nft.dormant(t);
                }
            }
            Item::Chain {
                family,
                table,
                name,
                base,
                policy,
            } => {
                let t = nft.table(family, &table);
                nft.chain(t, &name, base);
                if let Some(p) = policy {
                    nft.policy(t, &name, &p);
                }
            }
            Item::Map {
                family,
                table,
                name,
                verdicts,
            } => {
                let t = nft.table(family, &table);
                if !verdicts.is_empty() {
                    nft.vmap(t, &name, verdicts);
                }
            }
            Item::Rule {
                family,
                table,
                chain,
                lowered,
                insert,
            } => {
                let t = nft.table(family, &table);
                nft.rule(t, &chain, span, lowered, insert, diags);
            }
        }
    }
}

/// What the `nftables` array holds.
struct Elements<'a> {
    /// The items, each with the index of its element.
    items: Vec<(usize, Item<'a>)>,
    /// For each element, its first key if it is an object and the key is a slice of the input.
    first_keys: Vec<Option<&'a str>>,
    /// Whether the array is the only member of the document.
    sole_member: bool,
}

/// Scalars where the document or the `nftables` member is expected: valid JSON without rules.
macro_rules! scalars_hold_no_rules {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    };
}

/// The whole document: the items of its (last) `nftables` member, if that is an array. Every
/// other value is parsed as `serde_json::Value` would be, so a document is rejected exactly
/// when `serde_json::from_str::<Value>` rejects it, with the same error.
struct Document;

impl<'de> Visitor<'de> for Document {
    type Value = Option<Elements<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON document")
    }

    scalars_hold_no_rules!();

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Parse(&mut Tape::default()).visit_seq(seq).map(|_| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: Option<Elements<'de>> = None;
        let mut members = 0;
        while let Some(Key(k)) = map.next_key()? {
            members += 1;
            if k == "nftables" {
                found = map.next_value_seed(NftablesArray)?;
            } else {
                map.next_value_seed(Parse(&mut Tape::default()))?;
            }
        }
        Ok(found.map(|e| Elements {
            sole_member: members == 1,
            ..e
        }))
    }
}

/// The value of the `nftables` member: each element is read, turned into items and dropped
/// before the next one is parsed.
struct NftablesArray;

impl<'de> DeserializeSeed<'de> for NftablesArray {
    type Value = Option<Elements<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NftablesArray {
    type Value = Option<Elements<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the nftables array")
    }

    scalars_hold_no_rules!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Elements {
            items: Vec::new(),
            first_keys: Vec::new(),
            sole_member: false,
        };
        let mut tape = Tape::default();
        while let Some(val) = seq.next_element_seed(Parse(&mut tape))? {
            let j = J {
                tape: &tape,
                val: &val,
            };
            object(j, out.first_keys.len(), false, &mut out.items);
            let is_object = matches!(val, Val::Obj(..));
            out.first_keys
                .push(tape.first_key.flatten().filter(|_| is_object));
            tape.clear();
        }
        Ok(Some(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Parse(&mut Tape::default()).visit_map(map).map(|_| None)
    }
}

/// Reads one input into the builder.
pub(crate) fn parse(
    text: &str,
    source: SourceId,
    _name: &str,
    b: &mut RulesetBuilder,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de
        .deserialize_any(Document)
        .and_then(|doc| de.end().map(|()| doc));
    let elements = match parsed {
        Ok(Some(elements)) => elements,
        Ok(None) => {
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
        }
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
    let ranges = ranges_from_keys(text, &elements).unwrap_or_else(|| {
        let count = elements.first_keys.len();
        let ranges = element_ranges(text);
        if ranges.len() == count {
            ranges
        } else {
            vec![(0, 0); count]
        }
    });
    let mut nft = NftBuild::new(b, source);
    // Line numbers counted incrementally: the elements are in text order.
    let (mut line, mut counted) = (1u32, 0usize);
    for (index, item) in elements.items {
        let (start, end) = ranges[index];
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
        item.add(span, &mut nft, &mut diags);
    }
    nft.finish();
    diags
}

fn str_of<'t>(v: J<'t, '_>, key: &str) -> Option<&'t str> {
    v.get(key).and_then(J::as_str)
}

/// A string member, borrowed from the input when it is.
fn cow_of<'a>(v: J<'_, 'a>, key: &str) -> Option<Cow<'a, str>> {
    v.get(key).and_then(J::as_cow)
}

/// `family`, `table` and the name member `name` of a chain, map, element or rule object.
fn table_and<'a>(body: J<'_, 'a>, name: &str) -> Option<(Family, Cow<'a, str>, Cow<'a, str>)> {
    let family = str_of(body, "family").and_then(super::family)?;
    Some((family, cow_of(body, "table")?, cow_of(body, name)?))
}

/// The verdicts of a map's `elem` list.
fn elem_verdicts(body: J<'_, '_>) -> Vec<VerdictAst> {
    body.get("elem")
        .and_then(J::as_array)
        .map(|els| {
            els.iter()
                .filter_map(|e| e.as_array().and_then(|kv| kv.get(1)))
                .filter_map(verdict)
                .collect()
        })
        .unwrap_or_default()
}

/// One element of the `nftables` array (commands such as `{"add": {"rule": …}}` unwrapped;
/// `inserted` is set inside an `insert` command, whose rule goes to the front of its chain).
fn object<'a>(item: J<'_, 'a>, index: usize, inserted: bool, out: &mut Vec<(usize, Item<'a>)>) {
    for (kind, body) in item.sorted_members() {
        match kind {
            "add" | "create" | "replace" => object(body, index, inserted, out),
            "insert" => object(body, index, true, out),
            "table" => {
                let (Some(family), Some(name)) = (
                    str_of(body, "family").and_then(super::family),
                    cow_of(body, "name"),
                ) else {
                    continue;
                };
                let dormant = body.get("flags").is_some_and(|f| match f.view() {
                    View::Str(s) => s == "dormant",
                    View::Arr(a) => a.iter().any(|f| f.is_str("dormant")),
                    _ => false,
                });
                out.push((
                    index,
                    Item::Table {
                        family,
                        name,
                        dormant,
                    },
                ));
            }
            "chain" => {
                let Some((family, table, name)) = table_and(body, "name") else {
                    continue;
                };
                let hook = str_of(body, "hook").and_then(super::hook);
                let prio = body.get("prio").and_then(|p| match p.as_str() {
                    Some(s) => super::priority(family, s),
                    None => p.as_i64().and_then(|n| i32::try_from(n).ok()),
                });
                let base = match (hook, prio) {
                    (Some(hook), Some(priority)) => Some(BaseChain {
                        hook,
                        priority,
                        kind: super::chain_type(str_of(body, "type").unwrap_or("filter")),
                    }),
                    _ => None,
                };
                let policy = cow_of(body, "policy");
                out.push((
                    index,
                    Item::Chain {
                        family,
                        table,
                        name,
                        base,
                        policy,
                    },
                ));
            }
            "map" | "element" => {
                let Some((family, table, name)) = table_and(body, "name") else {
                    continue;
                };
                let verdicts = elem_verdicts(body);
                out.push((
                    index,
                    Item::Map {
                        family,
                        table,
                        name,
                        verdicts,
                    },
                ));
            }
            "rule" => {
                let Some((family, table, chain)) = table_and(body, "chain") else {
                    continue;
                };
                let mut stmts: Vec<Stmt> = body
                    .get("expr")
                    .and_then(J::as_array)
                    .map(|a| a.iter().map(statement).collect())
                    .unwrap_or_default();
                if let Some(c) = str_of(body, "comment") {
                    stmts.push(Stmt::Comment(c.to_string()));
                }
                out.push((
                    index,
                    Item::Rule {
                        family,
                        table,
                        chain,
                        lowered: lower(&stmts),
                        insert: inserted,
                    },
                ));
            }
            _ => {}
        }
    }
}

/// The `[key, value]` pairs of an anonymous map's `{"set": [...]}` (`map` and `vmap` data);
/// pairs whose value does not read are left out.
fn map_elements<T>(data: J<'_, '_>, value: impl Fn(J<'_, '_>) -> Option<T>) -> Vec<(Expr, T)> {
    data.get("set")
        .and_then(J::as_array)
        .map(|els| {
            els.iter()
                .filter_map(|e| {
                    let kv = e.as_array()?;
                    Some((expr(kv.first()?), value(kv.get(1)?)?))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A rule's statement list (a JSON array of statements, or one statement), as the conformance
/// tests read it.
#[cfg(test)]
pub(crate) fn statements(json: &str) -> serde_json::Result<Vec<Stmt>> {
    let mut tape = Tape::default();
    let mut de = serde_json::Deserializer::from_str(json);
    let val = Parse(&mut tape).deserialize(&mut de)?;
    de.end()?;
    let v = J {
        tape: &tape,
        val: &val,
    };
    Ok(match v.as_array() {
        Some(a) => a.iter().map(statement).collect(),
        None => vec![statement(v)],
    })
}

fn verdict(v: J<'_, '_>) -> Option<VerdictAst> {
    let (k, body) = v.first_member()?;
    let target = || str_of(body, "target").map(str::to_string);
    Some(match k {
        "accept" => VerdictAst::Accept,
        "drop" => VerdictAst::Drop,
        "continue" => VerdictAst::Continue,
        "return" => VerdictAst::Return,
        "jump" => VerdictAst::Jump(target()?),
        "goto" => VerdictAst::Goto(target()?),
        _ => return None,
    })
}

/// The expression of a member, opaque when there is none (as `null` is).
fn expr_of(v: Option<J<'_, '_>>) -> Expr {
    v.map_or_else(|| Expr::data(vec![]), expr)
}

fn statement(v: J<'_, '_>) -> Stmt {
    let Some((k, body)) = v.first_member() else {
        return Stmt::Other(vec![]);
    };
    if let Some(vd) = verdict(v) {
        return Stmt::Verdict(vd);
    }
    match k {
        "match" => {
            let left = expr_of(body.get("left"));
            let right_v = body.get("right");
            let right = expr_of(right_v);
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
                (key, op, right_v.and_then(J::as_str))
            {
                // An interface match reads no mark; only the name is kept, for attribution.
                return Stmt::Interface(name.to_string());
            }
            Stmt::Match { left, op, right }
        }
        "mangle" => {
            let key = expr_of(body.get("key"));
            let value = expr_of(body.get("value"));
            let ct_key = body
                .get("key")
                .and_then(|k| k.get("ct"))
                .and_then(|c| str_of(c, "key"));
            if ct_key == Some("zone") && !value.has_mark() {
                return Stmt::Effect(Action::CtZone);
            }
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
            let key = expr_of(body.get("key"));
            let data = match body.get("data") {
                Some(d) => match d.as_str() {
                    Some(s) => VmapData::Named(s.trim_start_matches('@').to_string()),
                    None => VmapData::Elements(map_elements(d, verdict)),
                },
                None => VmapData::Elements(Vec::new()),
            };
            Stmt::Vmap { key, data }
        }
        "xt" => Stmt::Xt {
            target: str_of(body, "type") == Some("target"),
            name: str_of(body, "name").unwrap_or("").to_string(),
        },
        "queue" | "reject" | "masquerade" | "snat" | "dnat" | "redirect" | "synproxy" => {
            Stmt::Verdict(VerdictAst::Terminal(terminal_action(k)))
        }
        "notrack" => Stmt::Effect(Action::Notrack),
        "log" => Stmt::Effect(Action::Log),
        "ct helper" => Stmt::Effect(Action::CtHelper),
        _ => Stmt::Other(children(body)),
    }
}

/// Expressions nested anywhere in a JSON value (for statements markspace does not model).
fn children(v: J<'_, '_>) -> Vec<Expr> {
    match v.view() {
        // A one-member object may itself be an expression (`{"map": …}`).
        View::Obj(_) => match v.sorted_members().as_slice() {
            [_] => vec![expr(v)],
            members => members.iter().map(|&(_, m)| expr(m)).collect(),
        },
        View::Arr(a) => a.iter().map(expr).collect(),
        View::Str(_) | View::Scalar => Vec::new(),
    }
}

fn num_of(v: Option<J<'_, '_>>) -> u32 {
    v.and_then(J::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

/// One JSON expression.
fn expr(v: J<'_, '_>) -> Expr {
    match v.view() {
        View::Scalar => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map_or_else(|| Expr::data(vec![]), Expr::Num),
        View::Str(s) => {
            if let Some(name) = s.strip_prefix('@') {
                return Expr::Named(name.to_string());
            }
            // A number, `lo-hi` or `value/len` given as a string, read as the rule text `s` is
            // (`parse_rule` reads one digit-led word with `digit_word`; called directly, neither
            // lexing nor parsing runs for every address and name in the document).
            match super::lex::single_word(s) {
                Some(w) if w.starts_with(|c: char| c.is_ascii_digit()) => {
                    super::rule::digit_word(w).0
                }
                _ => Expr::data(vec![]),
            }
        }
        View::Arr(a) => Expr::Set(a.iter().map(expr).collect()),
        View::Obj(_) => {
            let Some((k, body)) = v.first_member() else {
                return Expr::data(vec![]);
            };
            let key = str_of(body, "key");
            match k {
                "meta" if key == Some("mark") => Expr::Mark(MarkSrc::Meta),
                "ct" if key == Some("mark") => Expr::Mark(MarkSrc::Ct),
                "socket" if key == Some("mark") => Expr::Mark(MarkSrc::Socket),
                "meta" | "ct" | "socket" | "payload" | "exthdr" | "rt" | "osf" | "ipsec" => {
                    Expr::data(vec![])
                }
                op @ ("&" | "|" | "^" | "<<" | ">>") => {
                    let op = match op {
                        "&" => BinOp::And,
                        "|" => BinOp::Or,
                        "^" => BinOp::Xor,
                        "<<" => BinOp::Shl,
                        _ => BinOp::Shr,
                    };
                    let mut it = body.as_array().into_iter().flat_map(Arr::iter).map(expr);
                    let first = it.next().unwrap_or_else(|| Expr::data(vec![]));
                    it.fold(first, |a, b| Expr::binop(op, a, b))
                }
                "set" => match body.as_array() {
                    Some(a) => Expr::Set(
                        a.iter()
                            .map(|e| match e.as_array() {
                                Some(kv) if kv.len() == 2 => {
                                    Expr::Concat(vec![expr_of(kv.first()), expr_of(kv.get(1))])
                                }
                                _ => expr(e),
                            })
                            .collect(),
                    ),
                    None => Expr::Set(vec![expr(body)]),
                },
                "elem" => expr_of(body.get("val")),
                "range" => {
                    let a = body.as_array();
                    let lo = expr_of(a.and_then(Arr::first));
                    let hi = expr_of(a.and_then(|a| a.get(1)));
                    Expr::Range(Box::new(lo), Box::new(hi))
                }
                "prefix" => {
                    Expr::Prefix(Box::new(expr_of(body.get("addr"))), num_of(body.get("len")))
                }
                "concat" => Expr::Concat(
                    body.as_array()
                        .into_iter()
                        .flat_map(Arr::iter)
                        .map(expr)
                        .collect(),
                ),
                "map" => {
                    let key = expr_of(body.get("key"));
                    let data = match body.get("data") {
                        Some(d) => match d.as_str() {
                            Some(s) => MapData::Named(s.trim_start_matches('@').to_string()),
                            None => MapData::Elements(map_elements(d, |v| Some(expr(v)))),
                        },
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
                    let mark = body.get("flags").is_some_and(|f| match f.view() {
                        View::Arr(a) => a.iter().any(|x| x.is_str("mark")),
                        View::Str(s) => s == "mark",
                        _ => false,
                    });
                    Expr::Data(if mark {
                        vec![Expr::Mark(MarkSrc::Meta)]
                    } else {
                        vec![]
                    })
                }
                _ => Expr::Data(children(body)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(text: &str) -> Elements<'_> {
        let mut de = serde_json::Deserializer::from_str(text);
        de.deserialize_any(Document)
            .and_then(|doc| de.end().map(|()| doc))
            .expect("valid")
            .expect("an nftables array")
    }

    #[test]
    fn ranges_from_keys_as_scanned() {
        let texts = [
            r#"{"nftables": [{"a": "]"}, {"b": [1, {"c": 2}]}, {"d": {}}]}"#,
            "  {\n \"nftables\" :\n [\n  {\"a\": \"x\\\"]\"} ,\n\t{ \"b\": [] }\n ]\n}\n",
            r#"{"nftables": []}"#,
        ];
        for t in texts {
            let e = elements(t);
            assert_eq!(ranges_from_keys(t, &e), Some(element_ranges(t)), "{t}");
        }
        // Documents `element_ranges` would scan differently, or elements without a key to go by.
        for t in [
            r#"{"x": 1, "nftables": [{"a": 1}]}"#,
            r#"{"nftables": [{"a": 1}], "nftables": [{"b": 2}]}"#,
            r#"{"nftables": [{"a": 1}, 2]}"#,
            r#"{"nftables": [{"a": 1}, {}]}"#,
            r#"{"nftables": [{"\u0061": 1}]}"#,
            r#"{"nft\u0061bles": [{"a": 1}]}"#,
        ] {
            assert_eq!(ranges_from_keys(t, &elements(t)), None, "{t}");
        }
        // The JSON dumps of nft's shell tests.
        let dir = crate::sources::iptables::conformance_tests::corpus_dir()
            .join("nftables")
            .join("shell-dumps");
        let mut dumps = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus") {
            let path = entry.expect("readable").path();
            if !path.to_string_lossy().ends_with(".json-nft") {
                continue;
            }
            let t = std::fs::read_to_string(&path).expect("readable");
            let e = elements(&t);
            assert_eq!(
                ranges_from_keys(&t, &e),
                Some(element_ranges(&t)),
                "{path:?}"
            );
            dumps += 1;
        }
        assert!(dumps > 30, "expected the corpus JSON dumps, found {dumps}");
    }

    /// `{"insert": {"rule": …}}` puts the rule at the front of its chain (`nft insert rule`);
    /// it was read as an append before.
    #[test]
    fn insert_commands_go_to_the_front() {
        let t = r#"{"nftables": [
            {"add": {"table": {"family": "inet", "name": "t"}}},
            {"add": {"chain": {"family": "inet", "table": "t", "name": "c"}}},
            {"add": {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
                {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}]}}},
            {"insert": {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
                {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 2}}]}}}
        ]}"#;
        let mut b = RulesetBuilder::new();
        let diags = parse(t, SourceId(0), "x.json", &mut b);
        assert!(diags.is_empty(), "{diags:?}");
        let set = b.finish();
        let c = set
            .chains
            .iter()
            .find(|c| &*c.name == "c")
            .expect("chain c");
        let values: Vec<Vec<u32>> = c
            .rules
            .iter()
            .map(|r| crate::model::constant_values(set.rule(*r).ops()))
            .collect();
        assert_eq!(values, vec![vec![2], vec![1]]);
    }

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
