//! nft rule text (`src/parser_bison.y`'s `rule`) into statements.
//!
//! Only the grammar that decides where an expression starts and ends is followed exactly:
//! selectors (`meta mark`, `ct [original|reply] KEY`, `PROTO FIELD`, `fib`, `jhash`, `numgen`,
//! `symhash`, `socket`), nft's operator precedence (`<< >>` over `&` over `^` over `|` over `.`
//! over `map`, keyword forms `lshift rshift and xor or`), sets `{ … }`, maps and verdict maps,
//! relational operators (explicit, keyword or implicit) and verdicts. Other statements (`counter`,
//! `log`, `limit`, `nat`, `tproxy`…) are skipped with their arguments; anything unknown is kept as
//! an opaque value or statement, never an error. Errors are only for text that cannot be nft:
//! an unbalanced bracket, `jump` without a chain, or a mark compared with or set to a malformed
//! number.

use super::ast::{
    terminal_action, BinOp, Expr, MapData, MarkSrc, RelOp, Stmt, VerdictAst, VmapData,
};
use super::lex::{Tok, Token};
use crate::model::{Bits, Field, ParseBitsError};
use crate::ruleset::Action;

/// A rule that cannot be nft syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RuleError {
    /// Byte offset in the text.
    pub(crate) offset: usize,
    /// What is wrong.
    pub(crate) message: String,
    /// How to fix it.
    pub(crate) hint: Option<String>,
}

/// Statement keywords: they never start a value, so they end an implicit relational.
const STATEMENTS: &[&str] = &[
    "accept",
    "drop",
    "continue",
    "return",
    "jump",
    "goto",
    "queue",
    "reject",
    "masquerade",
    "snat",
    "dnat",
    "redirect",
    "tproxy",
    "counter",
    "comment",
    "log",
    "limit",
    "quota",
    "notrack",
    "dup",
    "fwd",
    "add",
    "update",
    "delete",
    "flow",
    "last",
    "xt",
    "synproxy",
    "meter",
    "meta",
    "ct",
    "vmap",
    "map",
    "set",
];

/// Meta keys usable without `meta` (`src/parser_bison.y`, `meta_key_unqualified`).
pub(crate) const META_UNQUALIFIED: &[&str] = &[
    "mark",
    "iif",
    "iifname",
    "iiftype",
    "oif",
    "oifname",
    "oiftype",
    "skuid",
    "skgid",
    "nftrace",
    "rtclassid",
    "ibriport",
    "obriport",
    "ibrname",
    "obrname",
    "pkttype",
    "cpu",
    "iifgroup",
    "oifgroup",
    "cgroup",
    "ipsec",
    "time",
    "day",
    "hour",
];

/// Payload and header expression heads followed by a field name.
pub(crate) const PROTOCOLS: &[&str] = &[
    "ip", "ip6", "tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "igmp", "ether",
    "vlan", "arp", "ah", "esp", "comp", "ipcomp", "th", "gre", "gretap", "geneve", "vxlan", "rt0",
    "rt2", "srh", "hbh", "frag", "dst", "mh", "exthdr", "osf", "ipsec", "tunnel", "rt", "dscp",
];

fn is_statement(w: &str) -> bool {
    STATEMENTS.contains(&w)
}

/// A digit-led word: a number, `lo-hi`, `value/len`, or something else (an address, a time).
/// With `Some(too_big)` when it is a malformed number, or one too large for 32 bits.
pub(crate) fn digit_word(w: &str) -> (Expr, Option<bool>) {
    // nft's scanner numbers (`{digit}+` with a leading `0` octal, `0[xX]{hexdigit}+`): see
    // `Bits::parse`.
    match Bits::parse(w) {
        Ok(n) => return (Expr::Num(n.0), None),
        Err(ParseBitsError::TooLarge) => return (Expr::data(vec![]), Some(true)),
        Err(_) => {}
    }
    if let Some((lo, hi)) = w.split_once('-') {
        if let (Ok(Bits(lo)), Ok(Bits(hi))) = (Bits::parse(lo), Bits::parse(hi)) {
            return (
                Expr::Range(Box::new(Expr::Num(lo)), Box::new(Expr::Num(hi))),
                None,
            );
        }
    }
    if let Some((v, len)) = w.split_once('/') {
        if let (Ok(Bits(v)), Ok(len)) = (Bits::parse(v), len.parse::<u32>()) {
            if len <= 32 {
                return (Expr::Prefix(Box::new(Expr::Num(v)), len), None);
            }
        }
    }
    let looks_numeric = w.chars().all(|c| c.is_ascii_alphanumeric());
    let bad = looks_numeric && (w.starts_with("0x") || w.chars().all(|c| c.is_ascii_hexdigit()));
    (Expr::data(vec![]), bad.then_some(false))
}

struct Parser<'t, 'a> {
    toks: Vec<&'t Token<'a>>,
    i: usize,
    /// Byte offset of the end of the rule, for errors at the end.
    end: usize,
    /// The meta key of the last selector parsed (`iifname`…), for interface matches.
    last_key: Option<&'a str>,
    /// A digit-led word that is no number (`0x1g`), seen since the statement began.
    bad_number: Option<(usize, String, bool)>,
    /// The text of the last constant word or string parsed (an interface name).
    last_value: Option<String>,
    /// The last bare word read as a constant, and where (a mark has no symbolic values).
    last_symbol: Option<(usize, &'a str)>,
}

type R<T> = Result<T, RuleError>;

/// Parses the statements of one rule (tokens of one rule, newlines inside braces allowed).
pub(crate) fn parse_rule(tokens: &[Token<'_>], end: usize) -> R<Vec<Stmt>> {
    let mut p = Parser {
        toks: tokens.iter().filter(|t| t.tok != Tok::Newline).collect(),
        i: 0,
        end,
        last_key: None,
        bad_number: None,
        last_value: None,
        last_symbol: None,
    };
    let mut out = Vec::new();
    while p.i < p.toks.len() {
        let before = p.i;
        p.bad_number = None;
        p.last_value = None;
        p.last_symbol = None;
        p.statement(&mut out)?;
        if p.i == before {
            // Nothing consumed (a stray token): skip it, keep it opaque.
            p.i += 1;
        }
    }
    Ok(out)
}

impl<'t, 'a> Parser<'t, 'a> {
    fn peek(&self) -> Option<&'t Token<'a>> {
        self.toks.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<&'t Token<'a>> {
        self.toks.get(self.i + k).copied()
    }

    fn word(&self) -> Option<&'a str> {
        match self.peek()?.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn at_word(&self, w: &str) -> bool {
        self.word() == Some(w)
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end, |t| t.start)
    }

    fn err<T>(&self, message: impl Into<String>, hint: Option<&str>) -> R<T> {
        Err(RuleError {
            offset: self.offset(),
            message: message.into(),
            hint: hint.map(str::to_string),
        })
    }

    /// A word or string argument (chain names, set names).
    fn name(&mut self) -> Option<String> {
        let t = self.peek()?;
        let n = match t.tok {
            Tok::Word(w) => w.to_string(),
            Tok::Str(s) => s.to_string(),
            _ => return None,
        };
        self.i += 1;
        Some(n)
    }

    fn statement(&mut self, out: &mut Vec<Stmt>) -> R<()> {
        let Some(w) = self.word() else {
            // `(meta mark & 0xff) == 1`, or a value where a statement should be (`{`, a
            // string): an expression statement.
            return self.expression_statement(out);
        };
        match w {
            "accept" | "drop" | "continue" | "return" => {
                self.i += 1;
                out.push(Stmt::Verdict(match w {
                    "accept" => VerdictAst::Accept,
                    "drop" => VerdictAst::Drop,
                    "continue" => VerdictAst::Continue,
                    _ => VerdictAst::Return,
                }));
            }
            "jump" | "goto" => {
                self.i += 1;
                let Some(chain) = self.name() else {
                    return self.err(
                        format!("`{w}` without a chain name"),
                        Some("write `jump CHAIN` or `goto CHAIN`"),
                    );
                };
                out.push(Stmt::Verdict(if w == "jump" {
                    VerdictAst::Jump(chain)
                } else {
                    VerdictAst::Goto(chain)
                }));
            }
            "queue" | "reject" | "masquerade" | "snat" | "dnat" | "redirect" | "synproxy" => {
                self.i += 1;
                let exprs = self.arguments()?;
                if !exprs.is_empty() {
                    out.push(Stmt::Other(exprs));
                }
                out.push(Stmt::Verdict(VerdictAst::Terminal(terminal_action(w))));
            }
            "comment" => {
                self.i += 1;
                if let Some(c) = self.name() {
                    out.push(Stmt::Comment(c));
                }
            }
            "xt" => {
                self.i += 1;
                let kind = self.name().unwrap_or_default();
                let name = self.name().unwrap_or_default();
                out.push(Stmt::Xt {
                    target: kind == "target",
                    name,
                });
            }
            "counter" if self.peek_at(1).is_some_and(|t| t.is("name")) => {
                self.i += 2;
                let e = self.expr()?;
                out.push(Stmt::Other(vec![e]));
            }
            "add" | "update" | "delete"
                if self
                    .peek_at(1)
                    .is_some_and(|t| t.word().is_some_and(|w| w.starts_with('@'))) =>
            {
                self.i += 2;
                let e = if self.peek().is_some_and(|t| t.tok == Tok::Open('{')) {
                    self.primary(true)?
                } else {
                    Expr::data(vec![])
                };
                out.push(Stmt::Other(vec![e]));
            }
            "counter" | "log" | "limit" | "quota" | "notrack" | "dup" | "fwd" | "tproxy"
            | "flow" | "last" | "meter" | "add" | "update" | "delete" => {
                self.i += 1;
                match w {
                    "notrack" => out.push(Stmt::Effect(Action::Notrack)),
                    "log" => out.push(Stmt::Effect(Action::Log)),
                    _ => {}
                }
                let exprs = self.arguments()?;
                if !exprs.is_empty() {
                    out.push(Stmt::Other(exprs));
                }
            }
            "ct" => {
                // `ct [original|reply] zone set …`, `ct helper set …`: conntrack settings.
                let key = (1..=2)
                    .filter_map(|k| self.peek_at(k).and_then(Token::word))
                    .find(|w| !matches!(*w, "original" | "reply"));
                let setting = match key {
                    Some("zone") => Some(Action::CtZone),
                    Some("helper") => Some(Action::CtHelper),
                    _ => None,
                };
                let before = out.len();
                self.expression_statement(out)?;
                if let Some(action) = setting {
                    // Only a `set` statement (an `Other` with the value) is a setting, not a
                    // match on the zone.
                    if out.len() == before + 1 && matches!(out[before], Stmt::Other(_)) {
                        out.push(Stmt::Effect(action));
                    }
                }
            }
            _ => self.expression_statement(out)?,
        }
        Ok(())
    }

    /// Arguments of a statement markspace does not model: words, strings, numbers, balanced
    /// groups, and `to EXPR` / `name EXPR` expressions, up to the next statement keyword.
    fn arguments(&mut self) -> R<Vec<Expr>> {
        let mut exprs = Vec::new();
        while let Some(t) = self.peek() {
            match &t.tok {
                Tok::Word(w) if is_statement(w) => break,
                Tok::Word("to") | Tok::Word("addr") | Tok::Word("port") => {
                    self.i += 1;
                    if self
                        .peek()
                        .is_some_and(|t| t.word().is_some_and(is_statement))
                    {
                        continue;
                    }
                    exprs.push(self.expr()?);
                }
                Tok::Open(_) => exprs.push(self.primary(true)?),
                Tok::Close(c) => {
                    let c = *c;
                    return self.err(format!("unbalanced `{c}`"), None);
                }
                _ => self.i += 1,
            }
        }
        Ok(exprs)
    }

    fn expression_statement(&mut self, out: &mut Vec<Stmt>) -> R<()> {
        self.last_key = None;
        let left = self.expr()?;
        let key = self.last_key;
        let Some(t) = self.peek() else {
            out.push(Stmt::Other(vec![left]));
            return Ok(());
        };
        let op = match &t.tok {
            Tok::Word("set") => {
                self.i += 1;
                let at = self.offset();
                let value = self.expr()?;
                self.check_number("set to")?;
                if matches!(left, Expr::Mark(_)) && matches!(value, Expr::Set(_)) {
                    return Err(RuleError {
                        offset: at,
                        message: "a mark set to a set of values".to_string(),
                        hint: Some(
                            "a mark is set to one value: a number, an expression, or a map lookup `KEY map { … }`"
                                .to_string(),
                        ),
                    });
                }
                out.push(match left {
                    Expr::Mark(MarkSrc::Meta) => Stmt::SetMark {
                        field: Field::Mark,
                        value,
                    },
                    Expr::Mark(MarkSrc::Ct) => Stmt::SetMark {
                        field: Field::CtMark,
                        value,
                    },
                    _ => Stmt::Other(vec![value]),
                });
                return Ok(());
            }
            Tok::Word("vmap") => {
                self.i += 1;
                let data = self.vmap_data()?;
                out.push(Stmt::Vmap { key: left, data });
                return Ok(());
            }
            Tok::Op("==") | Tok::Word("eq") => Some(RelOp::Eq),
            Tok::Op("!=") | Tok::Op("!") | Tok::Word("ne") => Some(RelOp::Ne),
            Tok::Op("<" | ">" | "<=" | ">=") | Tok::Word("lt" | "gt" | "le" | "ge") => {
                Some(RelOp::Order)
            }
            Tok::Word(w) if is_statement(w) => None,
            Tok::Close(_) | Tok::Comma | Tok::Semi | Tok::Newline => None,
            _ => {
                // Implicit operator: a value follows.
                let right = self.rhs()?;
                self.push_match(left, RelOp::Eq, right, key, out)?;
                return Ok(());
            }
        };
        match op {
            Some(op) => {
                self.i += 1;
                let right = self.rhs()?;
                self.push_match(left, op, right, key, out)
            }
            None => {
                out.push(Stmt::Other(vec![left]));
                Ok(())
            }
        }
    }

    fn push_match(
        &mut self,
        left: Expr,
        op: RelOp,
        right: Expr,
        key: Option<&str>,
        out: &mut Vec<Stmt>,
    ) -> R<()> {
        if left.has_mark() {
            self.check_number("compared with")?;
            let single_mark = super::lower::exact(&left).is_some_and(|l| l.single_field());
            if let (true, Expr::Data(v), Some((offset, word))) =
                (single_mark, &right, self.last_symbol)
            {
                if v.is_empty() {
                    return Err(RuleError {
                        offset,
                        message: format!("mark compared with `{word}`, which is not a number"),
                        hint: Some(
                            "a mark is a 32-bit number: write it in decimal or 0x hexadecimal"
                                .to_string(),
                        ),
                    });
                }
            }
        }
        if let (Some("iifname" | "oifname" | "iif" | "oif"), RelOp::Eq) = (key, op) {
            if let Expr::Data(v) = &right {
                if v.is_empty() {
                    if let Some(name) = self.last_value.take() {
                        out.push(Stmt::Interface(name));
                    }
                }
            }
        }
        out.push(Stmt::Match { left, op, right });
        Ok(())
    }

    fn check_number(&mut self, what: &str) -> R<()> {
        if let Some((offset, word, too_big)) = self.bad_number.take() {
            let (message, hint) = if too_big {
                (
                    format!("mark {what} `{word}`, which does not fit in 32 bits"),
                    "marks are 32-bit: at most 0xffffffff",
                )
            } else {
                (
                    format!("mark {what} `{word}`, which is not a number"),
                    "write a decimal or 0x-prefixed hexadecimal number, a range `A-B`, or a prefix `V/LEN`",
                )
            };
            return Err(RuleError {
                offset,
                message,
                hint: Some(hint.to_string()),
            });
        }
        Ok(())
    }

    fn vmap_data(&mut self) -> R<VmapData> {
        if let Some(w) = self.word().filter(|w| w.starts_with('@')) {
            self.i += 1;
            return Ok(VmapData::Named(w[1..].to_string()));
        }
        if !self.peek().is_some_and(|t| t.tok == Tok::Open('{')) {
            return self.err(
                "`vmap` without `{ … }` or `@map`",
                Some("a verdict map is `KEY vmap { VALUE : VERDICT, … }` or `KEY vmap @NAME`"),
            );
        }
        self.i += 1;
        let mut els = Vec::new();
        loop {
            match self.peek().map(|t| &t.tok) {
                None => return self.err("unclosed `{`", None),
                Some(Tok::Close('}')) => {
                    self.i += 1;
                    break;
                }
                Some(Tok::Comma) => self.i += 1,
                _ => {
                    let before = self.i;
                    let key = self.rhs_concat()?;
                    if self.at_word(":") {
                        self.i += 1;
                    }
                    let v = self.verdict_value()?;
                    if let Some(v) = v {
                        els.push((key, v));
                    }
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
        Ok(VmapData::Elements(els))
    }

    fn verdict_value(&mut self) -> R<Option<VerdictAst>> {
        let Some(w) = self.word() else {
            return Ok(None);
        };
        self.i += 1;
        Ok(Some(match w {
            "accept" => VerdictAst::Accept,
            "drop" => VerdictAst::Drop,
            "continue" => VerdictAst::Continue,
            "return" => VerdictAst::Return,
            "jump" | "goto" => {
                let Some(c) = self.name() else {
                    return self.err(format!("`{w}` without a chain name"), None);
                };
                if w == "jump" {
                    VerdictAst::Jump(c)
                } else {
                    VerdictAst::Goto(c)
                }
            }
            other => VerdictAst::Terminal(terminal_action(other)),
        }))
    }

    // ---- expressions: map > concat > | > ^ > & > shifts > primary ----

    /// A full expression (left side of a match or set statement, value of a set statement).
    fn expr(&mut self) -> R<Expr> {
        let e = self.concat(false)?;
        if self.at_word("map") {
            self.i += 1;
            let data = self.map_data()?;
            return Ok(Expr::Map(Box::new(e), data));
        }
        Ok(e)
    }

    fn map_data(&mut self) -> R<MapData> {
        if let Some(w) = self.word().filter(|w| w.starts_with('@')) {
            self.i += 1;
            return Ok(MapData::Named(w[1..].to_string()));
        }
        if !self.peek().is_some_and(|t| t.tok == Tok::Open('{')) {
            return self.err(
                "`map` without `{ … }` or `@map`",
                Some("a map is `KEY map { KEY : VALUE, … }` or `KEY map @NAME`"),
            );
        }
        self.i += 1;
        let items = self.set_items()?;
        Ok(MapData::Elements(
            items
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_else(|| Expr::data(vec![]))))
                .collect(),
        ))
    }

    fn concat(&mut self, rhs: bool) -> R<Expr> {
        let first = self.binary(rhs, 0)?;
        if !self.at_word(".") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.at_word(".") {
            self.i += 1;
            items.push(self.binary(rhs, 0)?);
        }
        Ok(Expr::Concat(items))
    }

    /// Binary operators by precedence level: 0 `|`, 1 `^`, 2 `&`, 3 shifts.
    fn binary(&mut self, rhs: bool, level: u8) -> R<Expr> {
        if level == 4 {
            return self.primary(rhs);
        }
        let mut left = self.binary(rhs, level + 1)?;
        loop {
            let op = match (level, self.peek().map(|t| &t.tok)) {
                (0, Some(Tok::Op("|") | Tok::Word("or"))) => BinOp::Or,
                (1, Some(Tok::Op("^") | Tok::Word("xor"))) => BinOp::Xor,
                (2, Some(Tok::Op("&") | Tok::Word("and"))) => BinOp::And,
                (3, Some(Tok::Op("<<") | Tok::Word("lshift"))) => BinOp::Shl,
                (3, Some(Tok::Op(">>") | Tok::Word("rshift"))) => BinOp::Shr,
                _ => return Ok(left),
            };
            self.i += 1;
            let right = self.binary(rhs, level + 1)?;
            left = Expr::binop(op, left, right);
        }
    }

    /// The right side of a relational: constants, possibly a comma list (`established,related`).
    fn rhs(&mut self) -> R<Expr> {
        let first = self.rhs_concat()?;
        if !self.peek().is_some_and(|t| t.tok == Tok::Comma) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek().is_some_and(|t| t.tok == Tok::Comma) {
            self.i += 1;
            items.push(self.rhs_concat()?);
        }
        Ok(Expr::Set(items))
    }

    fn rhs_concat(&mut self) -> R<Expr> {
        self.concat(true)
    }

    /// A primary expression. In `rhs` position words are constants, not selectors.
    fn primary(&mut self, rhs: bool) -> R<Expr> {
        let Some(t) = self.peek() else {
            return self.err("expression expected at the end of the rule", None);
        };
        match &t.tok {
            Tok::Open('(') => {
                self.i += 1;
                let e = if rhs { self.rhs()? } else { self.expr()? };
                if !self.peek().is_some_and(|t| t.tok == Tok::Close(')')) {
                    return self.err("expected `)`", Some("close the parenthesis"));
                }
                self.i += 1;
                Ok(e)
            }
            Tok::Open('{') => {
                self.i += 1;
                let items = self.set_items()?;
                Ok(Expr::Set(
                    items
                        .into_iter()
                        .map(|(k, v)| match v {
                            None => k,
                            Some(v) => Expr::Concat(vec![k, v]),
                        })
                        .collect(),
                ))
            }
            Tok::Open(c) => {
                let c = *c;
                self.i += 1;
                // `[ … ]` and anything else bracketed: skip balanced.
                let mut depth = 1;
                while let Some(t) = self.peek() {
                    self.i += 1;
                    match t.tok {
                        Tok::Open(_) => depth += 1,
                        Tok::Close(_) => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(Expr::data(vec![]));
                            }
                        }
                        _ => {}
                    }
                }
                self.err(format!("unclosed `{c}`"), None)
            }
            Tok::Close(c) => {
                let c = *c;
                self.err(
                    format!("unbalanced `{c}`"),
                    Some("remove it or add the opening bracket"),
                )
            }
            Tok::Str(s) => {
                self.i += 1;
                self.last_value = Some(s.to_string());
                Ok(Expr::data(vec![]))
            }
            Tok::Word(w) => {
                let w = *w;
                self.i += 1;
                if w.starts_with('@') || w.starts_with('$') {
                    return Ok(Expr::Named(w[1..].to_string()));
                }
                if w.starts_with(|c: char| c.is_ascii_digit()) {
                    return Ok(self.number_word(w, t.start));
                }
                if rhs {
                    self.last_value = Some(w.to_string());
                    self.last_symbol = Some((t.start, w));
                    return Ok(Expr::data(vec![]));
                }
                self.selector(w)
            }
            Tok::Op(_) | Tok::Comma | Tok::Semi | Tok::Newline => {
                // An operator where a value should be: skip it, opaque.
                self.i += 1;
                Ok(Expr::data(vec![]))
            }
        }
    }

    /// A digit-led word (see [`digit_word`]), remembering a malformed number for the mark checks.
    fn number_word(&mut self, w: &str, start: usize) -> Expr {
        let (e, bad) = digit_word(w);
        if let Some(too_big) = bad {
            self.bad_number
                .get_or_insert((start, w.to_string(), too_big));
        }
        e
    }

    /// Elements of `{ … }` after the brace: keys, with their data for map elements (verdicts of
    /// verdict maps are read but not kept).
    fn set_items(&mut self) -> R<Vec<(Expr, Option<Expr>)>> {
        let mut items = Vec::new();
        loop {
            match self.peek().map(|t| &t.tok) {
                None => return self.err("unclosed `{`", Some("close the set with `}`")),
                Some(Tok::Close('}')) => {
                    self.i += 1;
                    return Ok(items);
                }
                Some(Tok::Comma) => self.i += 1,
                _ => {
                    let before = self.i;
                    let key = self.rhs_concat()?;
                    let data = if self.at_word(":") {
                        self.i += 1;
                        Some(
                            if self.word().is_some_and(|w| {
                                matches!(
                                    w,
                                    "jump" | "goto" | "accept" | "drop" | "continue" | "return"
                                )
                            }) {
                                self.verdict_value()?;
                                Expr::data(vec![])
                            } else {
                                self.rhs_concat()?
                            },
                        )
                    } else {
                        None
                    };
                    // Element options: timeout, expires, comment, counter…
                    while let Some(w) = self.word() {
                        match w {
                            "timeout" | "expires" | "comment" | "packets" | "bytes" => {
                                self.i += 2;
                            }
                            "counter" => self.i += 1,
                            _ => break,
                        }
                    }
                    items.push((key, data));
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
    }

    /// A selector starting with word `w` (already consumed).
    fn selector(&mut self, w: &'a str) -> R<Expr> {
        match w {
            "meta" => {
                let key = self.word().filter(|k| !is_statement(k) || *k == "mark");
                if let Some(k) = key {
                    self.i += 1;
                    self.last_key = Some(k);
                    if k == "mark" {
                        return Ok(Expr::Mark(MarkSrc::Meta));
                    }
                }
                Ok(Expr::data(vec![]))
            }
            "mark" => {
                self.last_key = Some("mark");
                Ok(Expr::Mark(MarkSrc::Meta))
            }
            k if META_UNQUALIFIED.contains(&k) => {
                self.last_key = Some(k);
                Ok(Expr::data(vec![]))
            }
            "ct" => {
                if self.word().is_some_and(|d| d == "original" || d == "reply") {
                    self.i += 1;
                    if self.at_word("mark") {
                        return self.err(
                            "`ct mark` has no direction",
                            Some("the connmark belongs to the connection: write `ct mark`"),
                        );
                    }
                }
                if self.word().is_some_and(|f| f == "ip" || f == "ip6") {
                    self.i += 1;
                }
                match self.word() {
                    Some("mark") => {
                        self.i += 1;
                        Ok(Expr::Mark(MarkSrc::Ct))
                    }
                    Some(k) if !is_statement(k) => {
                        self.i += 1;
                        Ok(Expr::data(vec![]))
                    }
                    _ => Ok(Expr::data(vec![])),
                }
            }
            "socket" => match self.word() {
                Some("mark") => {
                    self.i += 1;
                    Ok(Expr::Mark(MarkSrc::Socket))
                }
                Some("cgroupv2") => {
                    self.i += 3;
                    Ok(Expr::data(vec![]))
                }
                Some(_) => {
                    self.i += 1;
                    Ok(Expr::data(vec![]))
                }
                None => Ok(Expr::data(vec![])),
            },
            "fib" => {
                // fib KEY[ . KEY…] RESULT; keys saddr daddr mark iif oif (`nft_fib.c`).
                let mut children = Vec::new();
                while let Some(k) = self.word() {
                    if !matches!(k, "saddr" | "daddr" | "mark" | "iif" | "oif") {
                        break;
                    }
                    self.i += 1;
                    if k == "mark" {
                        children.push(Expr::Mark(MarkSrc::Meta));
                    }
                    if self.at_word(".") {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                if self
                    .word()
                    .is_some_and(|r| matches!(r, "oif" | "oifname" | "type"))
                {
                    self.i += 1;
                }
                Ok(Expr::Data(children))
            }
            "jhash" | "symhash" | "numgen" => {
                let mut inputs = Vec::new();
                if w == "jhash" {
                    inputs.push(self.concat(false)?);
                } else if w == "numgen" && self.word().is_some() && !self.at_word("mod") {
                    self.i += 1; // inc | random
                }
                let (mut modulus, mut offset) = (0u32, 0u32);
                while let Some(k) = self.word() {
                    match k {
                        "mod" | "seed" | "offset" => {
                            self.i += 1;
                            let v = self
                                .word()
                                .and_then(|v| Bits::parse(v).ok())
                                .unwrap_or_default()
                                .0;
                            if self.word().is_some() {
                                self.i += 1;
                            }
                            match k {
                                "mod" => modulus = v,
                                "offset" => offset = v,
                                _ => {}
                            }
                        }
                        _ => break,
                    }
                }
                let max = offset.saturating_add(modulus.saturating_sub(1));
                let bits = if max == 0 {
                    0
                } else {
                    u32::MAX >> max.leading_zeros()
                };
                Ok(Expr::Hash { inputs, bits })
            }
            "rt" => {
                if self.word().is_some_and(|f| f == "ip" || f == "ip6") {
                    self.i += 1;
                }
                if self.word().is_some_and(|k| !is_statement(k)) {
                    self.i += 1;
                }
                Ok(Expr::data(vec![]))
            }
            p if PROTOCOLS.contains(&p) => {
                // PROTO FIELD, and longer forms (`tcp option maxseg size`, `ipsec in reqid`).
                let mut taken = 0;
                while let Some(k) = self.word() {
                    if is_statement(k)
                        || k == "."
                        || k == ":"
                        || k.starts_with(|c: char| c.is_ascii_digit())
                        || k.starts_with('@') && taken > 0
                        || matches!(k, "exists" | "missing")
                        || taken >= 3
                    {
                        break;
                    }
                    // Only the `option`/exthdr/ipsec/osf forms take more than one word.
                    if taken == 1
                        && !matches!(p, "exthdr" | "ipsec" | "osf" | "tunnel")
                        && !matches!(self.toks[self.i - 1].tok, Tok::Word("option"))
                    {
                        break;
                    }
                    if taken == 2
                        && !matches!(p, "exthdr" | "ipsec" | "osf")
                        && !self.toks[self.i - 2].is("option")
                    {
                        break;
                    }
                    self.i += 1;
                    taken += 1;
                }
                Ok(Expr::data(vec![]))
            }
            _ if w.starts_with('@') => Ok(Expr::data(vec![])),
            _ => Ok(Expr::data(vec![])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::nft::lex::lex;

    pub(crate) fn stmts(text: &str) -> Vec<Stmt> {
        let l = lex(text);
        parse_rule(&l.tokens, text.len()).unwrap_or_else(|e| panic!("{text}: {e:?}"))
    }

    #[test]
    fn precedence_follows_nft() {
        let s = stmts("meta mark set mark and 0xffff00ff or 0x400 accept");
        assert_eq!(
            s[0],
            Stmt::SetMark {
                field: Field::Mark,
                value: Expr::binop(
                    BinOp::Or,
                    Expr::binop(BinOp::And, Expr::Mark(MarkSrc::Meta), Expr::Num(0xffff00ff)),
                    Expr::Num(0x400)
                )
            }
        );
        assert_eq!(s[1], Stmt::Verdict(VerdictAst::Accept));
        let s = stmts("ct mark set ip dscp & 0x0f << 2");
        assert!(
            matches!(&s[0], Stmt::SetMark { value: Expr::Binop(BinOp::And, _, b), .. }
            if **b == Expr::binop(BinOp::Shl, Expr::Num(0xf), Expr::Num(2)))
        );
    }

    #[test]
    fn implicit_values_end_at_the_next_statement() {
        let s = stmts("meta l4proto udp mark 0xca6c ct mark set meta mark");
        assert_eq!(s.len(), 3);
        assert!(matches!(
            &s[1],
            Stmt::Match {
                left: Expr::Mark(MarkSrc::Meta),
                op: RelOp::Eq,
                right: Expr::Num(0xca6c)
            }
        ));
        let s = stmts("iifname \"tailscale0\" counter packets 1 bytes 2 meta mark set 1");
        assert_eq!(s[0], Stmt::Interface("tailscale0".into()));
        let s = stmts("fib saddr . mark oif missing drop");
        assert!(
            matches!(&s[0], Stmt::Match { left: Expr::Data(c), .. } if c == &vec![Expr::Mark(MarkSrc::Meta)])
        );
        assert_eq!(s[1], Stmt::Verdict(VerdictAst::Drop));
    }

    #[test]
    fn malformed_mark_values_are_errors() {
        let l = lex("meta mark 0x1g accept");
        assert!(parse_rule(&l.tokens, 20).is_err());
        let l = lex("meta mark set 0x100000000");
        assert!(parse_rule(&l.tokens, 20).is_err());
        let l = lex("ct expiration 1m-1h accept");
        assert!(parse_rule(&l.tokens, 20).is_ok());
    }
}
