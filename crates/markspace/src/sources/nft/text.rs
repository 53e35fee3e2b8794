//! `nft list ruleset` text (`src/rule.c` printers), as printed, pasted or saved as a script.
//!
//! Read: `table FAMILY NAME { … }` blocks with `chain`, `set`, `map` and other named objects;
//! chain headers `type filter hook prerouting priority mangle; policy accept;` (named
//! priorities and `mangle - 5` arithmetic, bridge priorities differ); rules one per line (a set
//! or map may continue over several lines inside its braces), with `# handle N` comments of
//! `nft -a`; `# Warning: table ip filter is managed by iptables-nft, do not touch!` lines; and
//! nft script commands (`add table`, `add chain`, `add|insert rule`, `add element`, `flush`,
//! `define`…). Unknown objects and statements are skipped or kept opaque; text that is not nft
//! is an error naming its line and column.

use crate::diagnostic::Diagnostic;
use crate::ruleset::{BaseChain, Family, RulesetBuilder, TableId, UNKNOWN_CHAIN, UNKNOWN_TABLE};
use crate::source::{SourceId, Span};

use super::ast::VerdictAst;
use super::build::NftBuild;
use super::lex::{lex, Tok, Token};
use super::lower::lower;
#[cfg(test)]
use super::lower::Lowered;
use super::rule::{parse_rule, RuleError};

/// Whether a text looks like nft ruleset text or an nft script (first meaningful line).
pub(crate) fn detect(text: &str) -> bool {
    for line in text.lines().take(200) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('$') {
            continue;
        }
        let mut words = l.split_whitespace();
        let first = words.next().unwrap_or("");
        let second = words.next().unwrap_or("");
        return match first {
            "table" => l.ends_with('{') || l.contains('{'),
            "add" | "create" | "insert" => {
                matches!(
                    second,
                    "table" | "chain" | "rule" | "set" | "map" | "element"
                )
            }
            "flush" => matches!(second, "ruleset" | "table" | "chain"),
            "define" => l.contains('='),
            _ => false,
        };
    }
    false
}

/// What the current `{ … }` block is.
#[derive(Clone, Debug)]
enum Ctx {
    Table(TableId, Family),
    Chain(TableId, Family, String),
    Set(TableId, String),
    Skip,
}

/// Reads one input into the builder.
#[cfg(test)]
pub(crate) fn parse(
    text: &str,
    source: SourceId,
    name: &str,
    b: &mut RulesetBuilder,
) -> Vec<Diagnostic> {
    parse_in(text, source, name, b, false)
}

/// Reads one input; `fragment` when it is a paste or fragment: a `chain NAME { … }` without
/// its table, and statements or rules outside any block, go to the unknown table (family
/// `inet`: unknown too) and, for statements, the unknown chain; a `}` closing a block opened
/// before the excerpt is ignored.
pub(crate) fn parse_in(
    text: &str,
    source: SourceId,
    _name: &str,
    b: &mut RulesetBuilder,
    fragment: bool,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let lexed = lex(text);
    let mut nft = NftBuild::new(b, source);
    let span_at = |line: u32, start: usize| Span {
        source,
        line,
        start: start as u32,
        len: 1,
    };
    for u in &lexed.unclosed {
        diags.push(
            Diagnostic::error(span_at(u.line, u.start), "string without a closing quote")
                .with_hint("close the string with `\"`"),
        );
    }
    for c in &lexed.comments {
        if let Some((family, name)) = managed_warning(c.text) {
            nft.managed(family, name);
        }
    }
    let toks = &lexed.tokens;
    let mut stack: Vec<(Ctx, usize, u32)> = Vec::new();
    // In a fragment, the chain a prose header (`table ip mangle, chain FORWARD (priority
    // mangle):`) named for the statements under it.
    let mut header: Option<Ctx> = None;
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match t.tok {
            Tok::Newline | Tok::Semi => {
                i += 1;
                continue;
            }
            Tok::Close('}') => {
                if stack.pop().is_none() && !fragment {
                    diags.push(
                        Diagnostic::error(span_at(t.line, t.start), "`}` closes no block")
                            .with_hint("remove it, or add the `table … {` it closes"),
                    );
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        let ctx = stack.last().map(|(c, _, _)| c.clone());
        let blocks = matches!(ctx, None | Some(Ctx::Table(..)) | Some(Ctx::Skip));
        // One item: up to a newline or `;` outside brackets, a `}` closing the block, or a `{`
        // opening a block.
        let mut j = i;
        let mut depth = 0usize;
        let mut opens = false;
        while j < toks.len() {
            match toks[j].tok {
                Tok::Newline | Tok::Semi if depth == 0 => break,
                Tok::Close('}') if depth == 0 => break,
                Tok::Open('{') if depth == 0 && blocks => {
                    opens = true;
                    break;
                }
                Tok::Open(_) => depth += 1,
                Tok::Close(_) => depth = depth.saturating_sub(1),
                _ => {}
            }
            j += 1;
        }
        let item = &toks[i..j];
        let end = toks.get(j).map_or(text.len(), |t| t.start);
        let line_span = line_span(text, source, &toks[i]);
        if ctx.is_none() && fragment && !opens {
            if let Some(named) = prose_header(&text[line_span.range()], &mut nft) {
                header = Some(named);
                i = j.max(i + 1);
                continue;
            }
        }
        let opened = match ctx {
            None if fragment => match &header {
                Some(Ctx::Chain(table, family, chain)) if !opens => {
                    chain_item(
                        item, end, *table, *family, chain, line_span, &mut nft, &mut diags,
                    );
                    None
                }
                _ => fragment_item(item, end, opens, line_span, &mut nft, &mut diags),
            },
            None => top_item(item, end, opens, line_span, &mut nft, &mut diags),
            Some(Ctx::Table(table, family)) => Some(table_item(item, table, family, &mut nft)),
            Some(Ctx::Chain(table, family, ref chain)) => {
                chain_item(
                    item, end, table, family, chain, line_span, &mut nft, &mut diags,
                );
                None
            }
            Some(Ctx::Set(table, ref set)) => {
                let verdicts = verdicts_in(item);
                if !verdicts.is_empty() {
                    nft.vmap(table, set, verdicts);
                }
                None
            }
            Some(Ctx::Skip) => Some(Ctx::Skip),
        };
        if opens {
            stack.push((opened.unwrap_or(Ctx::Skip), toks[j].start, toks[j].line));
            j += 1;
        }
        i = j.max(i + 1);
    }
    for (ctx, start, line) in stack {
        if let Ctx::Table(table, _) | Ctx::Chain(table, _, _) = ctx {
            nft.unlisted(table);
        }
        diags.push(
            Diagnostic::warning(
                span_at(line, start),
                "input ends inside this block; read as truncated",
            )
            .with_hint(
                "the rest of the ruleset is missing; paste the whole `nft list ruleset` output",
            ),
        );
    }
    nft.finish();
    diags
}

/// The span of a rule: its first line from its first token.
fn line_span(text: &str, source: SourceId, first: &Token<'_>) -> Span {
    let end = memchr::memchr(b'\n', &text.as_bytes()[first.start..])
        .map_or(text.len(), |n| first.start + n);
    let line = text[first.start..end].trim_end();
    Span {
        source,
        line: first.line,
        start: first.start as u32,
        len: line.len() as u32,
    }
}

/// `Warning: table ip filter is managed by iptables-nft, do not touch!`
fn managed_warning(comment: &str) -> Option<(Family, &str)> {
    let rest = comment.trim().strip_prefix("Warning: table ")?;
    let mut w = rest.split_whitespace();
    let family = super::family(w.next()?)?;
    let name = w.next()?;
    rest.contains("managed by iptables-nft")
        .then_some((family, name))
}

fn words<'a>(item: &'a [Token<'a>]) -> Vec<&'a str> {
    item.iter()
        .map_while(|t| match t.tok {
            Tok::Word(w) => Some(w),
            Tok::Str(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// The nft command of a shell command line (`sudo nft add rule ip nat C 'meta mark … masquerade'`,
/// as people paste them): the tokens after `sudo`, `nft` and their options, with the shell's
/// single quotes dropped; `None` when the item is not such a line or runs no rule-changing
/// command (`nft list ruleset` is ignored as before).
pub(crate) fn shell_command<'a>(item: &[Token<'a>]) -> Option<Vec<Token<'a>>> {
    if !matches!(item.first()?.word()?, "sudo" | "nft") {
        return None;
    }
    let skip = item
        .iter()
        .take_while(|t| {
            t.word()
                .is_some_and(|w| matches!(w, "sudo" | "nft") || (w.starts_with('-') && w.len() > 1))
        })
        .count();
    item.get(skip)?.word().filter(|w| {
        matches!(
            w.trim_start_matches('\''),
            "add" | "create" | "insert" | "replace"
        )
    })?;
    Some(
        item[skip..]
            .iter()
            .filter_map(|t| match t.tok {
                Tok::Word(w) => {
                    let w = w.trim_matches('\'');
                    (!w.is_empty()).then(|| Token {
                        tok: Tok::Word(w),
                        ..t.clone()
                    })
                }
                _ => Some(t.clone()),
            })
            .collect(),
    )
}

/// `[family] name` at the start of a word list: (family, name, words used).
fn family_and_name<'w>(w: &[&'w str]) -> Option<(Family, &'w str, usize)> {
    match (w.first().and_then(|f| super::family(f)), w.get(1)) {
        (Some(f), Some(n)) => Some((f, n, 2)),
        _ => w.first().map(|n| (Family::Ip, *n, 1)),
    }
}

fn top_item(
    item: &[Token<'_>],
    end: usize,
    opens: bool,
    span: Span,
    nft: &mut NftBuild<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Ctx> {
    if let Some(command) = shell_command(item) {
        return top_item(&command, end, opens, span, nft, diags);
    }
    let w = words(item);
    let (cmd, rest) = match w.first() {
        Some(&"table") => ("table", &w[1..]),
        Some(&("add" | "create" | "insert" | "replace")) => {
            (w.get(1).copied().unwrap_or(""), &w[2.min(w.len())..])
        }
        Some(w0) if is_ignored_top_word(w0) => return None,
        _ => {
            let at = item.first().map_or(span.start, |t| t.start as u32);
            diags.push(
                Diagnostic::error(
                    Span { start: at, len: 1, ..span },
                    "not nft ruleset syntax",
                )
                .with_hint(
                    "expected `nft list ruleset` output (`table FAMILY NAME { … }`) or nft commands (`add rule …`)",
                ),
            );
            return None;
        }
    };
    let insert = w.first() == Some(&"insert");
    match cmd {
        "table" => {
            let (family, name, _) = family_and_name(rest)?;
            let table = nft.table(family, name);
            if opens {
                nft.listed(table);
            }
            Some(Ctx::Table(table, family))
        }
        "chain" => {
            let (family, table_name, used) = family_and_name(rest)?;
            let chain = rest.get(used)?;
            let table = nft.table(family, table_name);
            nft.chain(table, chain, None);
            Some(Ctx::Chain(table, family, chain.to_string()))
        }
        "set" | "map" => {
            let (family, table_name, used) = family_and_name(rest)?;
            let set = rest.get(used)?;
            let table = nft.table(family, table_name);
            Some(Ctx::Set(table, set.to_string()))
        }
        "element" => {
            let (family, table_name, used) = family_and_name(rest)?;
            let set = rest.get(used)?;
            let table = nft.table(family, table_name);
            let verdicts = verdicts_in(item);
            if !verdicts.is_empty() {
                nft.vmap(table, set, verdicts);
            }
            None
        }
        "rule" => {
            let (family, table_name, used) = family_and_name(rest)?;
            let chain = rest.get(used)?;
            let mut skip = 2 + used + 1;
            if matches!(w.get(skip), Some(&("position" | "index" | "handle"))) {
                skip += 2;
            }
            let table = nft.table(family, table_name);
            let body = token_index_after_words(item, skip);
            match parse_rule(&item[body..], end) {
                Ok(stmts) => nft.rule(table, chain, span, lower(&stmts), insert, diags),
                Err(e) => diags.push(rule_error(span, e)),
            }
            None
        }
        _ => None,
    }
}

/// Top-level words of a whole ruleset or script that add tables, chains, rules or elements.
fn is_top_command(w: &str) -> bool {
    matches!(w, "table" | "add" | "create" | "insert" | "replace")
}

/// Top-level words that change nothing markspace reads (commands that list, delete or define,
/// prompts and the `nft` command word).
fn is_ignored_top_word(w: &str) -> bool {
    matches!(
        w,
        "flush"
            | "delete"
            | "destroy"
            | "list"
            | "reset"
            | "define"
            | "include"
            | "undefine"
            | "redefine"
            | "describe"
            | "monitor"
            | "export"
            | "import"
            | "rename"
            | "sudo"
            | "nft"
    ) || w.starts_with('$')
        || w.contains('@')
}

/// A prose header naming the table and chain of the statements under it, as people write
/// them above an excerpt (`table ip mangle, chain FORWARD (priority mangle):`): the chain, in a
/// table marked as not wholly read. A builtin iptables-nft chain name (`FORWARD` in `ip
/// mangle`) is that table's base chain, with the header's priority when it gives one.
fn prose_header(line: &str, nft: &mut NftBuild<'_>) -> Option<Ctx> {
    let l = line.trim().strip_suffix(':')?;
    let (table_part, chain_part) = l.split_once(", chain ")?;
    let mut t = table_part.strip_prefix("table ")?.split_whitespace();
    let (family, table_name) = match (t.next()?, t.next(), t.next()) {
        (f, Some(name), None) => (super::family(f)?, name),
        (name, None, None) => (Family::Inet, name),
        _ => return None,
    };
    let (chain, priority) = match chain_part.split_once('(') {
        Some((c, rest)) => {
            let p = rest
                .strip_suffix(')')?
                .trim()
                .strip_prefix("priority")?
                .trim();
            (c.trim(), Some(p))
        }
        None => (chain_part.trim(), None),
    };
    if chain.is_empty() || chain.contains(char::is_whitespace) {
        return None;
    }
    let table = nft.table(family, table_name);
    nft.unlisted(table);
    let base = BaseChain::iptables_builtin(table_name, chain).map(|b| BaseChain {
        priority: priority
            .and_then(|p| super::priority(family, p))
            .unwrap_or(b.priority),
        ..b
    });
    nft.chain(table, chain, base);
    Some(Ctx::Chain(table, family, chain.to_string()))
}

/// An item at the top level of a fragment: what a whole ruleset may hold there, or a chain
/// without its table, or a statement on its own.
fn fragment_item(
    item: &[Token<'_>],
    end: usize,
    opens: bool,
    span: Span,
    nft: &mut NftBuild<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Ctx> {
    let w = words(item);
    if w.first()
        .is_some_and(|w0| is_ignored_top_word(w0) || is_top_command(w0))
    {
        return top_item(item, end, opens, span, nft, diags);
    }
    let table = nft.table(Family::Inet, UNKNOWN_TABLE);
    if w.first() == Some(&"chain") && opens {
        let chain = w.get(1)?;
        nft.chain(table, chain, None);
        return Some(Ctx::Chain(table, Family::Inet, chain.to_string()));
    }
    if opens {
        // `set NAME {`, `map …`, prose: not rules.
        return Some(Ctx::Skip);
    }
    chain_item(
        item,
        end,
        table,
        Family::Inet,
        UNKNOWN_CHAIN,
        span,
        nft,
        diags,
    );
    None
}

/// The index of the token after the first `n` words (or strings).
fn token_index_after_words(item: &[Token<'_>], n: usize) -> usize {
    n.min(item.len())
}

fn table_item(item: &[Token<'_>], table: TableId, family: Family, nft: &mut NftBuild<'_>) -> Ctx {
    let w = words(item);
    match w.as_slice() {
        ["chain", name, ..] => {
            nft.chain(table, name, None);
            Ctx::Chain(table, family, name.to_string())
        }
        ["set" | "map", name, ..] => Ctx::Set(table, name.to_string()),
        ["flags", flags @ ..] => {
            if flags.contains(&"dormant") || item.iter().any(|t| t.is("dormant")) {
                nft.dormant(table);
            }
            Ctx::Skip
        }
        _ => Ctx::Skip,
    }
}

#[allow(clippy::too_many_arguments)]
fn chain_item(
    item: &[Token<'_>],
    end: usize,
    table: TableId,
    family: Family,
    chain: &str,
    span: Span,
    nft: &mut NftBuild<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    let w = words(item);
    match w.first().copied() {
        Some("type") => {
            // type T hook H [device D] priority P
            let kind = w
                .get(1)
                .map_or(crate::ruleset::ChainType::Filter, |k| super::chain_type(k));
            let hook = w
                .iter()
                .position(|x| *x == "hook")
                .and_then(|p| w.get(p + 1))
                .and_then(|h| super::hook(h));
            let prio_text: Vec<&str> = item
                .iter()
                .skip_while(|t| !t.is("priority"))
                .skip(1)
                .map_while(|t| match t.tok {
                    Tok::Word(x) => Some(x),
                    Tok::Op("+") => Some("+"),
                    _ => None,
                })
                .collect();
            let priority = super::priority(family, &prio_text.join(" "));
            match (hook, priority) {
                (Some(hook), Some(priority)) => {
                    nft.chain(
                        table,
                        chain,
                        Some(BaseChain {
                            hook,
                            priority,
                            kind,
                        }),
                    );
                }
                (None, _) => diags.push(
                    Diagnostic::warning(span, "base chain without a known hook; read as a regular chain")
                        .with_hint("hooks are prerouting, input, forward, output, postrouting, ingress, egress"),
                ),
                (Some(_), None) => diags.push(
                    Diagnostic::warning(span, format!("unknown chain priority `{}`; read as a regular chain", prio_text.join(" ")))
                        .with_hint("priorities are numbers or raw, mangle, dstnat, filter, security, srcnat (bridge: dstnat, filter, out, srcnat), optionally `+ N` / `- N`"),
                ),
            }
        }
        Some("policy") => {
            if let Some(p) = w.get(1) {
                nft.policy(table, chain, p);
            }
        }
        Some("comment" | "devices" | "flags" | "device") if w.len() <= 3 => {}
        _ => match parse_rule(item, end) {
            Ok(stmts) => nft.rule(table, chain, span, lower(&stmts), false, diags),
            Err(e) => diags.push(rule_error(span, e)),
        },
    }
}

fn rule_error(span: Span, e: RuleError) -> Diagnostic {
    let mut d = Diagnostic::error(
        Span {
            start: e.offset as u32,
            len: 1,
            ..span
        },
        e.message,
    );
    if let Some(h) = e.hint {
        d = d.with_hint(h);
    }
    d
}

/// Verdicts of map elements in an item (`… : jump CHAIN`, `: accept`).
fn verdicts_in(item: &[Token<'_>]) -> Vec<VerdictAst> {
    let mut out = Vec::new();
    for (k, t) in item.iter().enumerate() {
        if !t.is(":") {
            continue;
        }
        let next = item.get(k + 1).and_then(Token::word);
        let arg = item.get(k + 2).and_then(|t| match t.tok {
            Tok::Word(w) => Some(w.to_string()),
            Tok::Str(s) => Some(s.to_string()),
            _ => None,
        });
        out.push(match (next, arg) {
            (Some("jump"), Some(c)) => VerdictAst::Jump(c),
            (Some("goto"), Some(c)) => VerdictAst::Goto(c),
            (Some("accept"), _) => VerdictAst::Accept,
            (Some("drop"), _) => VerdictAst::Drop,
            (Some("return"), _) => VerdictAst::Return,
            (Some("continue"), _) => VerdictAst::Continue,
            _ => continue,
        });
    }
    out
}

/// The family, table and chain of an `add rule` command.
#[cfg(test)]
pub(crate) type RuleTarget = (Family, String, String);

#[cfg(test)]
/// A single rule line as the registry quotes it: plain statements, or an `add rule FAMILY
/// TABLE CHAIN …` command (whose table and chain are returned).
pub(crate) fn parse_rule_line(line: &str) -> Result<(Lowered, Option<RuleTarget>), RuleError> {
    let lexed = lex(line);
    let toks = &lexed.tokens;
    let w = words(toks);
    if matches!(w.first(), Some(&("add" | "insert"))) && w.get(1) == Some(&"rule") {
        let rest = &w[2..];
        if let Some((family, table, used)) = family_and_name(rest) {
            if let Some(chain) = rest.get(used) {
                let stmts = parse_rule(&toks[2 + used + 1..], line.len())?;
                return Ok((
                    lower(&stmts),
                    Some((family, table.to_string(), chain.to_string())),
                ));
            }
        }
    }
    let stmts = parse_rule(toks, line.len())?;
    Ok((lower(&stmts), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MarkOp, MarkWrite};
    use crate::ruleset::{Hook, Origin, Verdict};

    fn read(text: &str) -> (crate::ruleset::Ruleset, Vec<Diagnostic>) {
        let mut b = RulesetBuilder::new();
        let d = parse(text, SourceId(0), "x", &mut b);
        (b.finish(), d)
    }

    /// tailscale#15661 pasted its fix as a shell command: `sudo nft add rule … '…'`. It was
    /// skipped without a word (a `sudo` line); it is the rule it adds.
    #[test]
    fn shell_command_lines_are_their_nft_command() {
        let (set, d) = read(
            "sudo nft add rule ip nat ts-postrouting 'meta mark & 0x00ff0000 == 0x00040000 masquerade'\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(set.rules.len(), 1);
        let rule = &set.rules[0];
        assert_eq!(
            rule.ops(),
            &[MarkOp::Read(crate::model::MarkRead::equals(
                crate::model::Field::Mark,
                0x40000,
                0xff0000,
                false
            ))]
        );
        assert_eq!(
            rule.verdict,
            Verdict::Terminal(crate::ruleset::Action::Masquerade)
        );
        // `nft list ruleset` and other read-only commands still add nothing.
        let (set, d) = read("sudo nft list ruleset\n");
        assert!(set.rules.is_empty() && d.is_empty());
    }

    const LISTING: &str = r#"# Warning: table ip mangle is managed by iptables-nft, do not touch!
table ip mangle { # handle 3
	chain PREROUTING { # handle 1
		type filter hook prerouting priority mangle - 5; policy accept;
		counter packets 0 bytes 0 meta mark set mark or 0x4000 # handle 2
	}
}
table inet t {
	map m {
		type mark : verdict
		elements = { 0x00000000 : jump a,
			     0x00000001 : goto b }
	}

	chain c {
		type filter hook input priority filter; policy drop;
		meta mark >> 8 & 0xf vmap @m
		iifname "wg0" meta mark set meta mark & 0xffff04ff | 0x00000400 comment "x"
	}

	chain a {
		ct mark set ct mark and 0xffff0000 or meta mark and 0xffff
	}

	chain b {
	}
}
"#;

    #[test]
    fn reads_a_listing() {
        let (set, diags) = read(LISTING);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(set.tables.len(), 2);
        assert_eq!(set.tables[0].origin, Origin::IptablesNft);
        assert_eq!(set.tables[1].origin, Origin::Nftables);
        let pre = &set.chains[0];
        assert_eq!(pre.base.map(|b| b.priority), Some(-155));
        let c = set
            .chains
            .iter()
            .find(|c| &*c.name == "c")
            .expect("chain c");
        assert_eq!(c.policy, Some(Verdict::Drop));
        let a = set
            .chains
            .iter()
            .find(|c| &*c.name == "a")
            .expect("chain a");
        assert!(a.hooks.contains(Hook::Input), "vmap @m jumps to a");
        let r = set.rule(c.rules[1]);
        assert_eq!(
            r.ops(),
            [MarkOp::Write(MarkWrite::constant(
                crate::model::Field::Mark,
                0xffff_00ff,
                0x400
            ))]
        );
        assert_eq!(r.comment(), Some("x"));
        assert_eq!(
            r.labels().expect("labels").interfaces,
            vec![Box::from("wg0")]
        );
        assert_eq!(set.rules.len(), 4);
    }

    #[test]
    fn errors_point_at_the_column() {
        let (_, d) = read("table ip t {\n\tchain c {\n\t\tmeta mark 0x1zz accept\n\t}\n}\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span.line, 3);
        assert_eq!(
            d[0].span.start as usize,
            "table ip t {\n\tchain c {\n\t\tmeta mark ".len()
        );
        let (_, d) = read("table ip t {\nfoo\n}\n}\n");
        assert_eq!(d.len(), 1, "{d:?}");
    }

    /// A paste that names its chain in prose above the statements (issue #14's shape): the
    /// statements run in that chain, a base chain when the name is an iptables-nft builtin (the
    /// snapshot marks a fragment's tables as not wholly read).
    #[test]
    fn a_prose_header_names_the_chain_of_a_fragment() {
        let text = "table ip mangle, chain FORWARD (priority mangle):\n    meta mark set ct mark & 0x80\n\ntable inet fw, chain mine:\n  meta mark set 0x1\n";
        let mut b = RulesetBuilder::new();
        let d = parse_in(text, SourceId(0), "x", &mut b, true);
        let set = b.finish();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(set.rules.len(), 2);
        let forward = set.chain(set.rules[0].chain);
        assert_eq!(forward.name.as_ref(), "FORWARD");
        assert_eq!(set.table(forward.table).name.as_ref(), "mangle");
        assert_eq!(
            forward.base.map(|b| (b.hook, b.priority)),
            Some((crate::ruleset::Hook::Forward, -150))
        );
        let mine = set.chain(set.rules[1].chain);
        assert_eq!((mine.name.as_ref(), mine.base), ("mine", None));
        assert_eq!(set.table(mine.table).family, Family::Inet);
        // Outside a fragment the header is not nft syntax.
        let (_, d) = read(text);
        assert!(!d.is_empty());
    }

    #[test]
    fn scripts() {
        let (set, d) = read("add table ip wg-quick-wg0\nadd chain ip wg-quick-wg0 premangle { type filter hook prerouting priority mangle; }\nadd rule ip wg-quick-wg0 premangle meta l4proto udp meta mark set ct mark\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(set.rules.len(), 1);
        assert!(set.tables[0].complete);
        assert!(detect("add table ip x\n"));
        assert!(detect("# comment\ntable inet x {\n"));
        assert!(!detect("*filter\n:INPUT ACCEPT [0:0]\n"));
    }
}
