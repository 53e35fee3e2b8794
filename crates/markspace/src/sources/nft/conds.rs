//! The non-mark conditions of an nft rule (text or JSON), decoded on demand into the typed
//! condition model of [`crate::packet`], like iptables rules' (`super::super::iptables::conds`).
//!
//! Both forms are first reduced to selectors with their operator and values (`iifname` `!=`
//! `["eth0"]`, `ip daddr` `==` `["10.0.0.0/8"]`), and one table ([`cond_of`]) gives them meaning:
//! interfaces (`iifname`, `oifname`, `iif`, `oif`, `*` wildcards), addresses (`ip`/`ip6`
//! `saddr`/`daddr`, prefixes), protocol (`meta l4proto`, `ip protocol`, `ip6 nexthdr`, and the one
//! a `tcp dport` implies), ports (`tcp`/`udp`/`sctp`/`th` `sport`/`dport`, ranges and sets),
//! `ct state`, `ct status dnat|snat`, `ct direction`, `fib daddr|saddr type local`, `meta nfproto`.
//! Mark expressions add nothing (the algebra has them). Everything else that can make a rule not
//! match (named sets, `limit`, `socket`, other selectors) is [`Cond::Unknown`] named after its
//! selector, for `--assume`; whenever the reader is unsure where an expression ends, it says
//! unknown rather than guess, so a rule is never taken to match on a misread.

use std::net::IpAddr;

use super::lex::{lex, Tok, Token};
use super::rule::{META_UNQUALIFIED, PROTOCOLS};
use crate::packet::{proto_number, Cidr, Cond, NatTo, RuleDetails, Test};
use crate::source::Span;

/// Statements that never make a rule fail to match: they are skipped with their arguments.
const NEUTRAL_STATEMENTS: &[&str] = &["counter", "log", "notrack", "dup", "fwd", "synproxy"];

/// Terminating statements and verdicts (skipped with their arguments; NAT ones give `nat_to`).
const VERDICTS: &[&str] = &[
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
];

/// Statements that can stop a rule from matching but are not modelled.
const LIMITING_STATEMENTS: &[&str] = &["limit", "quota", "meter", "last", "flow"];

/// A selector, its operator and its values, as either form writes them.
struct Selector {
    /// `iifname`, `ip saddr`, `ct state`, `fib daddr type`…
    head: String,
    /// `!=` (or `ne`).
    invert: bool,
    /// The values, as text (`eth0`, `10.0.0.0/8`, `80-90`, `established`, `@set`).
    values: Vec<String>,
    /// False when the value is an expression the reader does not decode (a map lookup, an
    /// arithmetic expression, an ordering comparison).
    plain: bool,
}

fn unknown(name: impl Into<String>) -> Test {
    Test {
        cond: Cond::Unknown(name.into()),
        invert: false,
    }
}

/// Port ranges of values such as `80`, `80-90` and a few service names.
fn port_ranges(values: &[String]) -> Option<Vec<(u16, u16)>> {
    values
        .iter()
        .map(|v| {
            let port = |s: &str| -> Option<u16> {
                s.parse().ok().or(match s {
                    "ssh" => Some(22),
                    "domain" => Some(53),
                    "http" => Some(80),
                    "https" => Some(443),
                    _ => None,
                })
            };
            match v.split_once('-') {
                Some((lo, hi)) => Some((port(lo)?, port(hi)?)),
                None => port(v).map(|p| (p, p)),
            }
        })
        .collect()
}

/// An nft interface name as iptables writes it: nft's `eth*` wildcard is iptables' `eth+`.
fn iface(value: &str) -> String {
    match value.strip_suffix('*') {
        Some(prefix) if !prefix.ends_with('\\') => format!("{prefix}+"),
        _ => value.to_string(),
    }
}

/// One condition per value, or [`Cond::Any`] of them (an anonymous set).
fn any_of(values: &[String], one: impl Fn(&str) -> Option<Cond>) -> Option<Cond> {
    let mut conds: Vec<Cond> = values.iter().map(|v| one(v)).collect::<Option<_>>()?;
    match conds.len() {
        0 => None,
        1 => conds.pop(),
        _ => Some(Cond::Any(conds)),
    }
}

/// The meaning of a selector: the table shared by the text and JSON forms.
fn cond_of(sel: &Selector, out: &mut Vec<Test>) {
    let name = || format!("nft {}", sel.head);
    if let Some(set) = sel
        .values
        .iter()
        .find(|v| v.starts_with('@') || v.starts_with('$'))
    {
        out.push(unknown(format!("nft {} {set}", sel.head)));
        return;
    }
    if !sel.plain || sel.values.is_empty() {
        out.push(unknown(name()));
        return;
    }
    let head = sel.head.strip_prefix("meta ").unwrap_or(&sel.head);
    let (proto, field) = head.split_once(' ').unwrap_or((head, ""));
    let v = &sel.values;
    let cond = match (proto, field) {
        ("iifname" | "iif", "") => any_of(v, |x| Some(Cond::InIface(iface(x)))),
        ("oifname" | "oif", "") => any_of(v, |x| Some(Cond::OutIface(iface(x)))),
        ("ip" | "ip6", "saddr") => any_of(v, |x| Cidr::parse(x).map(Cond::Src)),
        ("ip" | "ip6", "daddr") => any_of(v, |x| Cidr::parse(x).map(Cond::Dst)),
        ("ip", "protocol") | ("ip6", "nexthdr") | ("l4proto", "") => {
            any_of(v, |x| proto_number(x).flatten().map(Cond::Proto))
        }
        ("nfproto", "") => any_of(v, |x| match x {
            "ipv4" => Some(Cond::Ipv6(false)),
            "ipv6" => Some(Cond::Ipv6(true)),
            _ => None,
        }),
        ("tcp" | "udp" | "udplite" | "sctp" | "dccp" | "th", "sport" | "dport") => {
            let Some(ranges) = port_ranges(v) else {
                out.push(unknown(name()));
                return;
            };
            // `tcp dport 80` also requires TCP, whatever its operator (`tcp dport != 80` is
            // still a TCP packet): nft adds the protocol dependency before the comparison.
            if let Some(Some(n)) = proto_number(proto) {
                out.push(Test {
                    cond: Cond::Proto(n),
                    invert: false,
                });
            }
            Some(if field == "sport" {
                Cond::Sport(ranges)
            } else {
                Cond::Dport(ranges)
            })
        }
        ("ct", "state") => Some(Cond::CtState(
            v.iter().map(|s| s.to_ascii_uppercase()).collect(),
        )),
        // `ct status dnat` is conntrack's DNAT bit, the `--ctstate DNAT` virtual state. An
        // untracked packet fails the status test even negated, which `CtState` does not model.
        ("ct", "status") if !sel.invert && v.iter().all(|s| s == "dnat" || s == "snat") => Some(
            Cond::CtState(v.iter().map(|s| s.to_ascii_uppercase()).collect()),
        ),
        ("ct", "direction") => match v.as_slice() {
            [d] if d == "original" || d == "reply" => Some(Cond::CtDir(d == "reply")),
            _ => None,
        },
        ("fib", "daddr type" | "saddr type") if v.iter().all(|t| t == "local") => {
            Some(Cond::AddrType {
                dst: field.starts_with("daddr"),
                types: vec!["LOCAL".into()],
            })
        }
        _ => None,
    };
    out.push(match cond {
        Some(cond) => Test {
            cond,
            invert: sel.invert,
        },
        None => unknown(name()),
    });
}

/// Where `dnat to ADDR[:PORT]` / `redirect to :PORT` sends the packet.
fn nat_to_of(to: Option<&str>, redirect: bool) -> NatTo {
    match (to, redirect) {
        (None, false) => NatTo {
            addr: None,
            port: Some(None),
        },
        (None, true) => NatTo::default(),
        // `redirect to :8080` and `redirect to 8080`: only a port.
        (Some(to), true) => NatTo {
            addr: None,
            port: Some(to.trim_start_matches(':').parse().ok()),
        },
        (Some(to), false) => NatTo::parse(to),
    }
}

// ---- text ----

/// The details of an nft text rule (`nft list ruleset` line or `add rule …` command).
pub(crate) fn text_details(text: &str, span: Span) -> RuleDetails {
    let start = (span.start as usize).min(text.len());
    let rule = &text[start..rule_end(text, start)];
    let lexed = lex(rule);
    let tokens: Vec<Token<'_>> = lexed
        .tokens
        .into_iter()
        .filter(|t| t.tok != Tok::Newline)
        .collect();
    // A pasted shell command line reads as the nft command it runs.
    let tokens = super::text::shell_command(&tokens).unwrap_or(tokens);
    let toks: Vec<&Token<'_>> = tokens.iter().collect();
    let mut r = TextRule {
        toks,
        i: 0,
        out: RuleDetails::default(),
    };
    r.skip_command_prefix();
    r.run();
    r.out
}

/// The end of the rule starting at `start`: the first newline outside braces and strings.
fn rule_end(text: &str, start: usize) -> usize {
    let (mut depth, mut quoted) = (0i32, false);
    for (k, b) in text.as_bytes()[start..].iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'{' | b'(' | b'[' if !quoted => depth += 1,
            b'}' | b')' | b']' if !quoted => depth -= 1,
            b'\n' if depth <= 0 => return start + k,
            b'\n' => quoted = false,
            b'#' if !quoted && depth <= 0 => return start + k,
            _ => {}
        }
    }
    text.len()
}

struct TextRule<'t, 'a> {
    toks: Vec<&'t Token<'a>>,
    i: usize,
    out: RuleDetails,
}

impl<'a> TextRule<'_, 'a> {
    fn word_at(&self, k: usize) -> Option<&'a str> {
        match self.toks.get(k)?.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn word(&self) -> Option<&'a str> {
        self.word_at(self.i)
    }

    /// `add rule [FAMILY] TABLE CHAIN [handle|position|index N]`.
    fn skip_command_prefix(&mut self) {
        if !matches!(self.word(), Some("add" | "insert" | "replace" | "create"))
            || self.word_at(1) != Some("rule")
        {
            return;
        }
        let family = matches!(
            self.word_at(2),
            Some("ip" | "ip6" | "inet" | "arp" | "bridge" | "netdev")
        );
        self.i = if family { 5 } else { 4 };
        if matches!(self.word(), Some("handle" | "position" | "index")) {
            self.i += 2;
        }
    }

    /// Whether the token at `k` starts a new statement or selector.
    fn starts_statement(&self, k: usize) -> bool {
        self.word_at(k).is_some_and(|w| {
            PROTOCOLS.contains(&w)
                || META_UNQUALIFIED.contains(&w)
                || NEUTRAL_STATEMENTS.contains(&w)
                || VERDICTS.contains(&w)
                || LIMITING_STATEMENTS.contains(&w)
                || matches!(
                    w,
                    "meta" | "ct" | "fib" | "comment" | "socket" | "numgen" | "jhash"
                )
        })
    }

    fn run(&mut self) {
        while self.i < self.toks.len() {
            let before = self.i;
            self.statement();
            if self.i == before {
                // A token no statement starts with: the reader is lost.
                let what = self.word().unwrap_or("expression").to_string();
                self.out.tests.push(unknown(format!("nft {what}")));
                self.i += 1;
            }
        }
    }

    fn statement(&mut self) {
        let Some(w) = self.word() else {
            if matches!(self.toks[self.i].tok, Tok::Semi) {
                self.i += 1;
            }
            return;
        };
        match w {
            "comment" => self.i += 2,
            "counter" => {
                self.i += 1;
                while matches!(self.word(), Some("packets" | "bytes" | "name")) {
                    self.i += 2;
                }
            }
            "accept" | "drop" | "continue" | "return" => self.i += 1,
            "jump" | "goto" => self.i += 2,
            "dnat" | "redirect" => {
                let redirect = w == "redirect";
                self.i += 1;
                let args = self.arguments();
                let to = args
                    .iter()
                    .position(|a| a == "to")
                    .and_then(|k| args.get(k + 1))
                    .map(String::as_str);
                self.out.nat_to = Some(nat_to_of(to, redirect));
            }
            _ if VERDICTS.contains(&w) || NEUTRAL_STATEMENTS.contains(&w) => {
                self.i += 1;
                self.arguments();
            }
            _ if LIMITING_STATEMENTS.contains(&w) => {
                self.i += 1;
                self.arguments();
                self.out.tests.push(unknown(w));
            }
            _ => self.expression_statement(),
        }
    }

    /// A statement's arguments up to the next statement: words, strings, groups; a family word
    /// right after the keyword (`snat ip to …`) and `with icmp type …` are arguments.
    fn arguments(&mut self) -> Vec<String> {
        let mut args = Vec::new();
        if matches!(self.word(), Some("ip" | "ip6")) {
            self.i += 1;
        }
        while self.i < self.toks.len() {
            if self.word() == Some("with") {
                // `reject with icmpx type admin-prohibited`, `reject with tcp reset`.
                let n = if self.word_at(self.i + 2) == Some("type") {
                    4
                } else {
                    3
                };
                self.i += n;
                continue;
            }
            if self.starts_statement(self.i) {
                break;
            }
            match &self.toks[self.i].tok {
                Tok::Open(_) => {
                    self.skip_group();
                    args.push(String::new());
                }
                Tok::Word(w) | Tok::Str(w) => {
                    args.push((*w).to_string());
                    self.i += 1;
                }
                Tok::Close(_) | Tok::Semi => break,
                _ => self.i += 1,
            }
        }
        args
    }

    /// Skips a balanced `{ … }`, `( … )` or `[ … ]` group starting at the current token.
    fn skip_group(&mut self) {
        let mut depth = 0;
        while let Some(t) = self.toks.get(self.i) {
            self.i += 1;
            match t.tok {
                Tok::Open(_) => depth += 1,
                Tok::Close(_) => {
                    depth -= 1;
                    if depth <= 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// The words of a selector (`ip saddr`, `ct original state`, `fib daddr type`, `meta mark`,
    /// `iifname`), or `None` when the current token starts none.
    fn selector(&mut self) -> Option<(String, bool)> {
        let w = self.word()?;
        let mut words = vec![w];
        self.i += 1;
        match w {
            "meta" | "ct" => {
                if w == "ct" && matches!(self.word(), Some("original" | "reply")) {
                    self.i += 1;
                }
                words.extend(self.word());
                self.i += 1;
            }
            "fib" => {
                // `fib daddr [. iif] type`.
                while let Some(x) = self.word() {
                    self.i += 1;
                    words.push(x);
                    if matches!(x, "type" | "oif" | "oifname") {
                        break;
                    }
                }
            }
            _ if PROTOCOLS.contains(&w) => {
                words.extend(self.word());
                self.i += 1;
            }
            _ if META_UNQUALIFIED.contains(&w) => {}
            _ => return Some((words.join(" "), false)),
        }
        let head = words.join(" ");
        let is_mark = matches!(head.as_str(), "mark" | "meta mark" | "ct mark");
        Some((head, is_mark))
    }

    /// `SELECTOR [OP] VALUE`, `SELECTOR set VALUE`, `KEY vmap { … }`, and mark expressions.
    fn expression_statement(&mut self) {
        let start = self.i;
        if matches!(self.toks[self.i].tok, Tok::Open(_)) {
            // `(meta mark & 0xff) == 1` and other parenthesised expressions.
            self.skip_group();
            self.skip_rest_of_expression();
            let text_has_mark = self.toks[start..self.i]
                .iter()
                .any(|t| matches!(t.tok, Tok::Word("mark")));
            if !text_has_mark {
                self.out.tests.push(unknown("nft expression"));
            }
            return;
        }
        let Some((head, is_mark)) = self.selector() else {
            return;
        };
        let mut plain = true;
        // Operators applied to the selector before the comparison: `meta mark & 0xff == 1`.
        while matches!(
            self.toks.get(self.i).map(|t| &t.tok),
            Some(Tok::Op("&" | "|" | "^" | "<<" | ">>"))
        ) || matches!(
            self.word(),
            Some("and" | "or" | "xor" | "lshift" | "rshift" | ".")
        ) {
            plain = false;
            self.i += 1;
            self.value();
        }
        let mut invert = false;
        match self.toks.get(self.i).map(|t| &t.tok) {
            Some(Tok::Word("set")) => {
                self.i += 1;
                self.value();
                self.skip_rest_of_expression();
                return;
            }
            Some(Tok::Word("vmap")) => {
                self.i += 1;
                self.value();
                return;
            }
            Some(Tok::Op("==") | Tok::Word("eq")) => self.i += 1,
            Some(Tok::Op("!=" | "!") | Tok::Word("ne")) => {
                invert = true;
                self.i += 1;
            }
            Some(Tok::Op("<" | ">" | "<=" | ">=") | Tok::Word("lt" | "gt" | "le" | "ge")) => {
                plain = false;
                self.i += 1;
            }
            _ => {}
        }
        let values = self.value();
        if self.skip_rest_of_expression() {
            plain = false;
        }
        if is_mark {
            // The algebra has every mark test.
            return;
        }
        if values.is_none() {
            self.out.tests.push(unknown(format!("nft {head}")));
            return;
        }
        let sel = Selector {
            head,
            invert,
            values: values.unwrap_or_default(),
            plain,
        };
        cond_of(&sel, &mut self.out.tests);
    }

    /// Operators and values that continue an expression (`& 0xff`, `. tcp dport`, `map { … }`);
    /// true when there were any.
    fn skip_rest_of_expression(&mut self) -> bool {
        let mut any = false;
        loop {
            let op = matches!(
                self.toks.get(self.i).map(|t| &t.tok),
                Some(Tok::Op("&" | "|" | "^" | "<<" | ">>" | "==" | "!="))
            ) || matches!(
                self.word(),
                Some("and" | "or" | "xor" | "lshift" | "rshift" | "." | "map" | "/")
            );
            if !op {
                return any;
            }
            any = true;
            self.i += 1;
            if self.value().is_none() && self.selector().is_none() {
                return any;
            }
        }
    }

    /// One value: a word, a string, a set `{ a, b }` (its elements), or a selector used as a
    /// value (`ct mark`, `ip saddr`). `None` when there is none.
    fn value(&mut self) -> Option<Vec<String>> {
        let t = self.toks.get(self.i)?;
        match &t.tok {
            Tok::Open('{') => {
                let start = self.i;
                self.skip_group();
                let mut values = Vec::new();
                let mut plain = true;
                let mut current: Vec<&str> = Vec::new();
                for t in &self.toks[start + 1..self.i.saturating_sub(1)] {
                    match &t.tok {
                        Tok::Word(w) | Tok::Str(w) => current.push(w),
                        Tok::Comma => {
                            values.push(current.join(" "));
                            current.clear();
                        }
                        _ => plain = false,
                    }
                }
                if !current.is_empty() {
                    values.push(current.join(" "));
                }
                if !plain || values.iter().any(|v| v.contains(' ') || v.contains(" : ")) {
                    values = vec![String::from("$set")];
                }
                Some(values)
            }
            Tok::Open(_) => {
                self.skip_group();
                Some(vec![String::from("$expression")])
            }
            Tok::Word(w) if self.starts_statement(self.i) && !is_value_word(w) => {
                // A selector as a value (`meta mark set ct mark`).
                self.selector().map(|(h, _)| vec![format!("${h}")])
            }
            Tok::Word(w) | Tok::Str(w) => {
                self.i += 1;
                // A flag list: `established,related`.
                let mut values = vec![(*w).to_string()];
                while let (Some(Tok::Comma), Some(Tok::Word(x) | Tok::Str(x))) = (
                    self.toks.get(self.i).map(|t| &t.tok),
                    self.toks.get(self.i + 1).map(|t| &t.tok),
                ) {
                    values.push((*x).to_string());
                    self.i += 2;
                }
                Some(values)
            }
            _ => None,
        }
    }
}

/// Words that are values although they also start selectors (`meta l4proto tcp`).
fn is_value_word(w: &str) -> bool {
    matches!(
        w,
        "tcp"
            | "udp"
            | "udplite"
            | "sctp"
            | "dccp"
            | "icmp"
            | "icmpv6"
            | "igmp"
            | "esp"
            | "ah"
            | "gre"
            | "ip"
            | "ip6"
            | "arp"
            | "vlan"
            | "comp"
    )
}

// ---- JSON ----

/// The details of a libnftables JSON rule: the element (`{"rule": {…}}`) starting at the span.
pub(crate) fn json_details(text: &str, span: Span) -> RuleDetails {
    let start = (span.start as usize).min(text.len());
    let mut stream =
        serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde_json::Value>();
    let Some(Ok(element)) = stream.next() else {
        return RuleDetails::unknown("nft-json rule");
    };
    let rule = element
        .get("rule")
        .or_else(|| element.get("add").and_then(|a| a.get("rule")))
        .or_else(|| element.get("insert").and_then(|a| a.get("rule")))
        .unwrap_or(&element);
    let Some(exprs) = rule.get("expr").and_then(|e| e.as_array()) else {
        return RuleDetails::unknown("nft-json rule");
    };
    let mut out = RuleDetails::default();
    for stmt in exprs {
        json_statement(stmt, &mut out);
    }
    out
}

fn json_statement(stmt: &serde_json::Value, out: &mut RuleDetails) {
    let Some((key, body)) = stmt.as_object().and_then(|o| o.iter().next()) else {
        return;
    };
    match key.as_str() {
        "match" => json_match(body, out),
        "dnat" | "redirect" => {
            let addr = body
                .get("addr")
                .and_then(|a| a.as_str())
                .and_then(|a| a.parse::<IpAddr>().ok());
            let port = body
                .get("port")
                .map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok()));
            out.nat_to = Some(NatTo {
                addr: if key == "redirect" { None } else { addr },
                port,
            });
        }
        "xt" if body.get("type").and_then(|t| t.as_str()) != Some("target") => {
            let name = body.get("name").and_then(|n| n.as_str()).unwrap_or("match");
            out.tests.push(unknown(format!("xt {name}")));
        }
        k if LIMITING_STATEMENTS.contains(&k) => out.tests.push(unknown(k)),
        _ => {}
    }
}

/// Whether a JSON expression reads a packet mark or connmark anywhere.
fn json_has_mark(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(o) => o.iter().any(|(k, x)| {
            (matches!(k.as_str(), "meta" | "ct")
                && x.get("key").and_then(|k| k.as_str()) == Some("mark"))
                || json_has_mark(x)
        }),
        serde_json::Value::Array(a) => a.iter().any(json_has_mark),
        _ => false,
    }
}

/// The selector words of a JSON left-hand side (`{"payload": {"protocol": "ip", "field":
/// "saddr"}}` is `ip saddr`).
fn json_selector(left: &serde_json::Value) -> Option<String> {
    let o = left.as_object()?;
    let (k, body) = o.iter().next()?;
    let s = |key: &str| body.get(key).and_then(|v| v.as_str());
    Some(match k.as_str() {
        "meta" => format!("meta {}", s("key")?),
        "ct" => format!("ct {}", s("key")?),
        "payload" => format!("{} {}", s("protocol")?, s("field")?),
        "fib" => {
            let flags: Vec<&str> = body
                .get("flags")
                .and_then(|f| f.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            format!("fib {} {}", flags.join(" . "), s("result")?)
        }
        other => other.to_string(),
    })
}

/// The values of a JSON right-hand side as text, `None` for expressions not decoded.
fn json_values(right: &serde_json::Value) -> Option<Vec<String>> {
    use serde_json::Value;
    Some(match right {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => a
            .iter()
            .map(|x| json_values(x).and_then(|mut v| (v.len() == 1).then(|| v.remove(0))))
            .collect::<Option<_>>()?,
        Value::Object(o) => {
            if let Some(set) = o.get("set") {
                return match set {
                    Value::Array(_) => json_values(set),
                    other => json_values(other),
                };
            }
            if let Some(p) = o.get("prefix") {
                let addr = p.get("addr")?.as_str()?;
                let len = p.get("len")?.as_u64()?;
                return Some(vec![format!("{addr}/{len}")]);
            }
            if let Some(Value::Array(r)) = o.get("range") {
                let [lo, hi] = r.as_slice() else { return None };
                let text = |v: &Value| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                };
                return Some(vec![format!("{}-{}", text(lo)?, text(hi)?)]);
            }
            return None;
        }
        _ => return None,
    })
}

fn json_match(body: &serde_json::Value, out: &mut RuleDetails) {
    let (Some(left), Some(right)) = (body.get("left"), body.get("right")) else {
        out.tests.push(unknown("nft match"));
        return;
    };
    if json_has_mark(left) {
        return;
    }
    let Some(head) = json_selector(left) else {
        out.tests.push(unknown("nft expression"));
        return;
    };
    let op = body.get("op").and_then(|o| o.as_str()).unwrap_or("==");
    let (invert, plain) = match op {
        "==" | "in" => (false, true),
        "!=" => (true, true),
        _ => (false, false),
    };
    let values = match right.as_str() {
        Some(s) if s.starts_with('@') => vec![s.to_string()],
        _ => match json_values(right) {
            Some(v) => v,
            None => {
                out.tests.push(unknown(format!("nft {head}")));
                return;
            }
        },
    };
    cond_of(
        &Selector {
            head,
            invert,
            values,
            plain,
        },
        &mut out.tests,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::source::SourceId;

    fn span(text: &str) -> Span {
        Span {
            source: SourceId(0),
            line: 1,
            start: 0,
            len: text.lines().next().unwrap_or("").len() as u32,
        }
    }

    fn conds(text: &str) -> Vec<Test> {
        text_details(text, span(text)).tests
    }

    fn t(cond: Cond, invert: bool) -> Test {
        Test { cond, invert }
    }

    #[test]
    fn interfaces_addresses_ports_and_states() {
        assert_eq!(
            conds(
                r#"iifname "eth0" ip daddr 10.0.0.0/8 tcp dport { 80, 443 } ct state established,related meta mark set 0x1 accept"#
            ),
            vec![
                t(Cond::InIface("eth0".into()), false),
                t(Cond::Dst(Cidr::parse("10.0.0.0/8").unwrap()), false),
                t(Cond::Proto(6), false),
                t(Cond::Dport(vec![(80, 80), (443, 443)]), false),
                t(
                    Cond::CtState(vec!["ESTABLISHED".into(), "RELATED".into()]),
                    false
                ),
            ]
        );
        assert_eq!(
            conds(r#"oifname != "cali*" meta l4proto udp counter packets 3 bytes 120 masquerade"#),
            vec![
                t(Cond::OutIface("cali+".into()), true),
                t(Cond::Proto(17), false)
            ]
        );
    }

    #[test]
    fn mark_statements_add_no_condition() {
        for rule in [
            "meta mark set 0x1",
            "mark set mark and 0xffffbfff or 0x4000",
            "meta mark & 0x00004000 == 0x00004000 counter accept",
            "ct mark set meta mark & 0xff",
            "meta mark set ct mark & 0x80 # handle 7",
        ] {
            assert_eq!(conds(rule), vec![], "{rule}");
        }
    }

    #[test]
    fn unknown_selectors_sets_and_limits_stay_unknown() {
        for rule in [
            "ip saddr @allowed accept",
            "meta pkttype host accept",
            "limit rate 10/second accept",
            "socket transparent 1 accept",
            "ip daddr . tcp dport { 10.0.0.1 . 80 } accept",
            "tcp flags & (syn | ack) == syn accept",
        ] {
            let c = conds(rule);
            assert!(
                c.iter().any(|t| matches!(t.cond, Cond::Unknown(_))),
                "{rule}: {c:?}"
            );
        }
    }

    #[test]
    fn nat_destinations() {
        let d = text_details(
            "ip daddr 192.168.7.7 udp dport 7000 dnat ip to 192.168.2.2:5000",
            span("x"),
        );
        assert_eq!(
            d.nat_to,
            Some(NatTo {
                addr: Some("192.168.2.2".parse().unwrap()),
                port: Some(Some(5000)),
            })
        );
        let d = text_details("tcp dport 80 redirect to :8080", span("x"));
        assert_eq!(
            d.nat_to,
            Some(NatTo {
                addr: None,
                port: Some(Some(8080)),
            })
        );
        assert_eq!(d.tests.len(), 2);
        // `reject with icmp type …` is no selector.
        assert_eq!(
            conds("tcp dport 22 reject with icmp type host-unreachable").len(),
            2
        );
    }

    #[test]
    fn command_prefix_and_multi_line_sets() {
        let text = "add rule inet t c iifname { \"eth0\",\n \"eth1\" } drop\n";
        assert_eq!(
            conds(text),
            vec![t(
                Cond::Any(vec![
                    Cond::InIface("eth0".into()),
                    Cond::InIface("eth1".into())
                ]),
                false
            )]
        );
    }

    #[test]
    fn shell_command_lines_decode_like_the_rule() {
        assert_eq!(
            conds("sudo nft add rule inet t c 'iifname \"eth0\" udp dport 53 accept'"),
            conds("iifname \"eth0\" udp dport 53 accept")
        );
    }

    #[test]
    fn json_rules_decode_like_text() {
        let json = r#"{"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                       "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                       "right": {"set": [80, 443]}}},
            {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
            {"match": {"op": "==", "left": {"&": [{"meta": {"key": "mark"}}, 16384]}, "right": 16384}},
            {"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}},
            {"accept": null}]}}"#;
        let text_form = r#"iifname "eth0" ip daddr 10.0.0.0/8 tcp dport { 80, 443 } ct state established,related meta mark & 0x4000 == 0x4000 meta mark set 0x1 accept"#;
        assert_eq!(json_details(json, span(json)).tests, conds(text_form));
    }
}
