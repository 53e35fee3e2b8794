//! The human listings `iptables -L`, `-nvL`, `-L -n -v --line-numbers`, `-vnxL`.
//!
//! sosreport collects these rather than `iptables-save`. Each chain starts with
//! `Chain NAME (policy ACCEPT 0 packets, 0 bytes)` or `Chain NAME (2 references)`, then a column
//! header (`num pkts bytes target prot opt in out source destination`, columns depending on the
//! flags), then one line per rule whose tail holds what each extension prints. The mark
//! extensions print (libxt_mark.c, libxt_connmark.c, libxt_MARK.c, libxt_CONNMARK.c,
//! libxt_TPROXY.c, libxt_socket.c):
//!
//! ```text
//! mark match ! 0x4000/0x4000      connmark match  0x80/0x80
//! MARK or 0x4000 | and 0xffffbfff | xor 0x4000 | set 0x5 | xset 0x5/0xf
//! CONNMARK or|and|xor|set|xset … | save [mask M | nfmask N ctmask ~C] | restore [mask M | ctmask C nfmask ~N]
//!          [left-shift-mark S | right-shift-mark S]
//! TPROXY redirect 0.0.0.0:15006 mark 0x539/0xffffffff
//! socket --transparent --restore-skmark
//! ```
//!
//! Older releases print `MARK set 0x4000/0x4000` (read as `xset`) and `CONNMARK restore mask 0x80`.

use crate::diagnostic::Diagnostic;
use crate::model::{
    Bits, CopySource, Field, MarkOp, MarkRead, MarkWrite, Shift, WriteOp, ALL_BITS,
};
use crate::ruleset::{
    Action, Family, Origin, RulesetBuilder, TableId, Verdict, UNKNOWN_CHAIN, UNKNOWN_TABLE,
};
use crate::source::{Lines, SourceId, Span};

use super::{ipv6_from_name, push_rule, table_from_name, verdict_of, TableSet};

/// Whether a text looks like an `iptables -L` listing.
pub(crate) fn detect(text: &str) -> bool {
    for (_, _, line) in Lines::new(text).take(200) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('$') {
            continue;
        }
        return l.starts_with("Chain ") && l.contains('(');
    }
    false
}

/// Which columns a listing has.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Columns {
    /// `num` (`--line-numbers`).
    pub(super) num: bool,
    /// `pkts bytes` (`-v`).
    pub(super) counters: bool,
    /// `in out` (`-v`).
    pub(super) interfaces: bool,
}

/// Reads one listing into the builder; `fragment` when it is a paste or fragment: rule lines before any
/// `Chain` header go to the unknown chain (of the prompt's table, or the unknown table), their
/// columns guessed from the line itself.
pub(crate) fn parse_in(
    text: &str,
    source: SourceId,
    name: &str,
    b: &mut RulesetBuilder,
    fragment: bool,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut tables = TableSet::new(source);
    let mut family = if ipv6_from_name(name) {
        Family::Ip6
    } else {
        Family::Ip
    };
    let mut table_name = table_from_name(name)
        .unwrap_or(if fragment { UNKNOWN_TABLE } else { "filter" })
        .to_string();
    let mut guessed = false;
    let mut table: Option<TableId> = None;
    let mut chain = None;
    let mut cols = Columns::default();
    for (line_no, start, line) in Lines::new(text) {
        let trimmed = line.trim();
        let span = Span {
            source,
            line: line_no,
            start: start as u32,
            len: line.len() as u32,
        };
        if trimmed.is_empty() {
            continue;
        }
        if let Some(prompt) = trimmed
            .strip_prefix('$')
            .or_else(|| trimmed.strip_prefix("# "))
        {
            if let Some((fam, t)) = prompt_table(prompt) {
                family = fam;
                table_name = t;
                table = None;
                chain = None;
            }
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("Chain ") {
            let t = *table
                .get_or_insert_with(|| tables.table(b, family, &table_name, Origin::Iptables));
            let name = rest.split_whitespace().next().unwrap_or("");
            let policy = rest
                .split_once("(policy ")
                .and_then(|(_, p)| p.split([' ', ')']).next())
                .and_then(|p| match p {
                    "ACCEPT" => Some(Verdict::Accept),
                    "DROP" => Some(Verdict::Drop),
                    _ => None,
                });
            chain = Some(b.declare_chain(t, name, policy));
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        if matches!(first, "target" | "pkts" | "num") {
            guessed = false;
            cols = Columns {
                num: first == "num",
                counters: trimmed.contains("pkts"),
                interfaces: trimmed.contains(" in ") || trimmed.contains(" out "),
            };
            continue;
        }
        if fragment && chain.is_none() {
            let t = *table
                .get_or_insert_with(|| tables.table(b, family, &table_name, Origin::Iptables));
            chain = Some(b.chain(t, UNKNOWN_CHAIN));
            guessed = true;
        }
        if guessed {
            cols = guess_columns(trimmed);
        }
        let (Some(t), Some(c)) = (table, chain) else {
            diags.push(
                Diagnostic::error(span, "rule line before any `Chain` header").with_hint(
                    "an iptables -L listing starts each chain with `Chain NAME (policy …)`",
                ),
            );
            continue;
        };
        match parse_rule_line(line, &cols) {
            Ok(r) => {
                if r.ipv6 {
                    tables.saw_ipv6.insert(t, true);
                }
                // libxt_CT prints `CT notrack` (or `NOTRACK`) for `-j CT --notrack`.
                let ct = (r.target == Some("CT")
                    && line
                        .split_whitespace()
                        .any(|w| w.eq_ignore_ascii_case("notrack")))
                .then_some(Action::Notrack);
                let verdict = verdict_of(b, t, r.target, r.goto, None, ct);
                push_rule(
                    b,
                    c,
                    span,
                    r.ops,
                    verdict,
                    r.comment.as_deref(),
                    r.target,
                    &r.interfaces,
                    None,
                );
            }
            Err((offset, msg)) => {
                diags.push(
                    Diagnostic::error(
                        Span {
                            start: (start + offset) as u32,
                            len: 1,
                            ..span
                        },
                        msg,
                    )
                    .with_hint(
                        "rule lines of `iptables -L` have the columns named in the header line",
                    ),
                );
            }
        }
    }
    tables.finish(b);
    diags
}

/// The columns of a rule line pasted without its header line, judged from its words: the words
/// before the `opt` column (`--`) are [num] [pkts bytes] [target] prot; interface columns
/// (`-v`) follow `opt` when the next word is not an address.
pub(super) fn guess_columns(line: &str) -> Columns {
    let w: Vec<&str> = line.split_whitespace().collect();
    let Some(p) = w.iter().position(|x| is_opt(x)) else {
        return Columns::default();
    };
    let numeric = |x: &str| x.bytes().next().is_some_and(|c| c.is_ascii_digit());
    let (num, counters) = match p {
        0..=2 => (false, false),
        3 => {
            if numeric(w[0]) && numeric(w[1]) {
                (false, true)
            } else {
                (true, false)
            }
        }
        4 => (false, true),
        _ => (true, true),
    };
    let interfaces = w.get(p + 1).is_some_and(|x| {
        *x == "*" || *x == "any" || !(x.contains(['.', ':', '/']) || *x == "anywhere" || numeric(x))
    }) && w.len() > p + 4;
    Columns {
        num,
        counters,
        interfaces,
    }
}

fn prompt_table(cmd: &str) -> Option<(Family, String)> {
    let mut words = cmd.split_whitespace().skip_while(|w| *w == "sudo");
    let tool = words.next()?;
    let tool = tool.rsplit('/').next().unwrap_or(tool);
    if !tool.starts_with("iptables") && !tool.starts_with("ip6tables") {
        return None;
    }
    let family = if tool.starts_with("ip6") {
        Family::Ip6
    } else {
        Family::Ip
    };
    let mut table = "filter".to_string();
    let mut prev = "";
    for w in words {
        if prev == "-t" || prev == "--table" {
            table = w.to_string();
        } else if w.starts_with("-t") && w.len() > 2 && !w.starts_with("--") && !w.contains('L') {
            table = w[2..].to_string();
        }
        prev = w;
    }
    Some((family, table))
}

struct ListedRule<'a> {
    target: Option<&'a str>,
    /// `[goto]` after the addresses: the target is a `-g` goto (`print_firewall`).
    goto: bool,
    interfaces: Vec<Box<str>>,
    ops: Vec<MarkOp>,
    comment: Option<String>,
    ipv6: bool,
}

/// Splits the fixed columns off a rule line and reads the extension text after them.
fn parse_rule_line<'a>(line: &'a str, cols: &Columns) -> Result<ListedRule<'a>, (usize, String)> {
    let mut words = Words { line, pos: 0 };
    if cols.num {
        words.next().ok_or((0, "missing rule number".to_string()))?;
    }
    if cols.counters {
        for what in ["packet counter", "byte counter"] {
            let (at, w) = words
                .next()
                .ok_or((line.len(), format!("missing {what}")))?;
            if !w.bytes().next().is_some_and(|c| c.is_ascii_digit()) {
                return Err((at, format!("expected a {what}, found `{w}`")));
            }
        }
    }
    // The target column is empty for rules without a target: then the next word is the
    // protocol and the one after it the `opt` column (`--`, `-f`, `!f`).
    let save = words.pos;
    let (_, first) = words
        .next()
        .ok_or((line.len(), "missing target/protocol column".to_string()))?;
    let after = words.peek();
    let target = if after.is_some_and(is_opt) {
        words.pos = save;
        None
    } else {
        Some(first)
    };
    let _prot = words.next();
    if words.peek().is_some_and(is_opt) {
        words.next();
    }
    let mut interfaces = Vec::new();
    if cols.interfaces {
        for _ in 0..2 {
            if let Some((_, w)) = words.next() {
                let w = w.trim_start_matches('!');
                if w != "*" && w != "any" {
                    interfaces.push(Box::from(w));
                }
            }
        }
    }
    let (_, src) = words
        .next()
        .ok_or((line.len(), "missing source column".to_string()))?;
    let (_, dst) = words
        .next()
        .ok_or((line.len(), "missing destination column".to_string()))?;
    let ipv6 = src.contains("::") || dst.contains("::") || src.matches(':').count() > 1;
    let tail_start = words.pos;
    let tail = &line[tail_start..];
    let goto = words.peek() == Some("[goto]");
    let (ops, comment) = parse_extensions(tail).map_err(|(o, m)| (tail_start + o, m))?;
    Ok(ListedRule {
        target,
        goto,
        interfaces,
        ops,
        comment,
        ipv6,
    })
}

/// Whether a word is the `opt` column (`--`, `-f`, `!f`, `!-`).
pub(super) fn is_opt(w: &str) -> bool {
    matches!(w, "--" | "-f" | "!f" | "!-")
}

struct Words<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<(usize, &'a str)> {
        let rest = &self.line[self.pos..];
        let skip = rest.len() - rest.trim_start().len();
        let start = self.pos + skip;
        if start >= self.line.len() {
            self.pos = self.line.len();
            return None;
        }
        let end = self.line[start..]
            .find(char::is_whitespace)
            .map_or(self.line.len(), |i| start + i);
        self.pos = end;
        Some((start, &self.line[start..end]))
    }

    fn peek(&self) -> Option<&'a str> {
        let mut copy = Words {
            line: self.line,
            pos: self.pos,
        };
        copy.next().map(|(_, w)| w)
    }
}

/// Reads the extension text of a rule: comments and every mark match and target print.
/// The extension text without its `/* text */` comments (each replaced by a space: a comment may
/// hold anything, so it is cut out before the text is split into words), and the comments'
/// texts joined.
pub(super) fn cut_comments(tail: &str) -> (String, Option<String>) {
    let mut comment: Option<String> = None;
    let mut rest = String::with_capacity(tail.len());
    let mut i = 0;
    while let Some(open) = tail[i..].find("/* ") {
        rest.push_str(&tail[i..i + open]);
        let body_start = i + open + 3;
        let close = tail[body_start..]
            .find(" */")
            .map_or(tail.len(), |c| body_start + c);
        let text = &tail[body_start..close];
        match &mut comment {
            Some(c) => {
                c.push(' ');
                c.push_str(text);
            }
            None => comment = Some(text.to_string()),
        }
        i = (close + 3).min(tail.len());
        rest.push(' ');
    }
    rest.push_str(&tail[i..]);
    (rest, comment)
}

fn parse_extensions(tail: &str) -> Result<(Vec<MarkOp>, Option<String>), (usize, String)> {
    let mut ops = Vec::new();
    let (rest, comment) = cut_comments(tail);
    let words: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> Result<(u32, u32), (usize, String)> {
        let w = words.get(i).ok_or((0, "mark value missing".to_string()))?;
        let w = w.trim_start_matches('~');
        let (v, m) = match w.split_once('/') {
            Some((v, m)) => (
                Bits::parse(v).ok().map(u32::from),
                Bits::parse(m).ok().map(u32::from),
            ),
            None => (Bits::parse(w).ok().map(u32::from), Some(ALL_BITS)),
        };
        match (v, m) {
            (Some(v), Some(m)) => Ok((v, m)),
            _ => Err((
                tail.find(w).unwrap_or(0),
                format!("invalid mark value `{w}`"),
            )),
        }
    };
    let mut k = 0;
    while k < words.len() {
        let w = words[k];
        match (w, words.get(k + 1).copied()) {
            ("mark" | "connmark", Some("match")) => {
                let field = if w == "mark" {
                    Field::Mark
                } else {
                    Field::CtMark
                };
                let mut j = k + 2;
                let invert = words.get(j) == Some(&"!");
                if invert {
                    j += 1;
                }
                let (v, m) = num(j)?;
                ops.push(MarkOp::Read(MarkRead::equals(field, v, m, invert)));
                k = j + 1;
            }
            ("MARK" | "CONNMARK", Some(op)) => {
                let field = if w == "MARK" {
                    Field::Mark
                } else {
                    Field::CtMark
                };
                let (write, used) =
                    target_print(field, op, &words[k + 2..], &num_at(&words, k + 2, tail))?;
                ops.push(MarkOp::Write(write));
                k += 2 + used;
            }
            ("TPROXY", Some("redirect")) => {
                let mut j = k + 2;
                while j < words.len() && words[j] != "mark" {
                    j += 1;
                }
                if j < words.len() {
                    let (v, m) = num(j + 1)?;
                    ops.push(MarkOp::Write(MarkWrite::set_xmark(Field::Mark, v, m)));
                    k = j + 2;
                } else {
                    k = j;
                }
            }
            ("--restore-skmark", _) => {
                ops.push(MarkOp::Write(MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::Copy {
                        src: CopySource::Socket,
                        src_mask: ALL_BITS,
                        shift: Shift::None,
                        keep: 0,
                    },
                }));
                k += 1;
            }
            ("HMARK", _) | ("NFQUEUE", _) => {
                ops.push(MarkOp::Write(MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::DataDependent { bits: ALL_BITS },
                }));
                k += 1;
            }
            _ => k += 1,
        }
    }
    Ok((ops, comment))
}

/// A closure-free helper: parses `words[i]` as `V[/M]` (a leading `~` is the inverted-mask print).
fn num_at<'w>(
    words: &'w [&'w str],
    i: usize,
    tail: &'w str,
) -> impl Fn(usize) -> Result<(u32, bool), (usize, String)> + 'w {
    move |off: usize| {
        let w = words
            .get(i + off)
            .ok_or((tail.len(), "mark value missing".to_string()))?;
        let (inverted, digits) = match w.strip_prefix('~') {
            Some(d) => (true, d),
            None => (false, *w),
        };
        Bits::parse(digits).ok().map(|v| (v.0, inverted)).ok_or((
            tail.find(w).unwrap_or(0),
            format!("invalid mark value `{w}`"),
        ))
    }
}

/// Reads a MARK/CONNMARK target print after its operation word; returns the write and how many
/// words after the operation it used.
fn target_print(
    field: Field,
    op: &str,
    after: &[&str],
    num: &dyn Fn(usize) -> Result<(u32, bool), (usize, String)>,
) -> Result<(MarkWrite, usize), (usize, String)> {
    let value_mask = |i: usize| -> Result<(u32, u32), (usize, String)> {
        let w = after.get(i).copied().unwrap_or("");
        match w.split_once('/') {
            Some((v, m)) => match (
                Bits::parse(v).ok().map(u32::from),
                Bits::parse(m).ok().map(u32::from),
            ) {
                (Some(v), Some(m)) => Ok((v, m)),
                _ => Err((0, format!("invalid mark value `{w}`"))),
            },
            None => num(i).map(|(v, _)| (v, ALL_BITS)),
        }
    };
    let shift_of = |i: usize| -> Result<(Shift, usize), (usize, String)> {
        match after.get(i).copied() {
            Some("left-shift-mark") => Ok((Shift::Left(num(i + 1)?.0.min(31) as u8), 2)),
            Some("right-shift-mark") => Ok((Shift::Right(num(i + 1)?.0.min(31) as u8), 2)),
            _ => Ok((Shift::None, 0)),
        }
    };
    Ok(match op {
        "or" | "and" | "xor" | "set" | "xset" => {
            // `or V`, `and ~M`, `xor V`, `set V[/M]`, `xset V/M`, each optionally followed by a
            // CONNMARK shift, which shifts the whole new value (`connmark_tg_shift`).
            let (v, m) = match op {
                "or" => {
                    let v = num(0)?.0;
                    (v, v)
                }
                "and" => (0, !num(0)?.0),
                "xor" => (num(0)?.0, 0),
                _ => value_mask(0)?,
            };
            let (shift, used) = shift_of(1)?;
            let w = if shift == Shift::None {
                MarkWrite::set_xmark(field, v, m)
            } else {
                MarkWrite {
                    field,
                    op: WriteOp::ShiftedConst {
                        keep: !m,
                        xor: v,
                        shift,
                    },
                }
            };
            (w, 1 + used)
        }
        "save" | "restore" => {
            // save: `mask M` | `nfmask N ctmask ~C`; restore: `mask M` | `ctmask C nfmask ~N`.
            let mut nfmask = ALL_BITS;
            let mut ctmask = ALL_BITS;
            let mut i = 0;
            loop {
                match after.get(i).copied() {
                    Some("mask") => {
                        let m = num(i + 1)?.0;
                        nfmask = m;
                        ctmask = m;
                        i += 2;
                    }
                    Some("nfmask") => {
                        nfmask = num(i + 1)?.0;
                        i += 2;
                    }
                    Some("ctmask") => {
                        ctmask = num(i + 1)?.0;
                        i += 2;
                    }
                    _ => break,
                }
            }
            let (shift, used) = shift_of(i)?;
            let w = if op == "save" {
                MarkWrite {
                    field: Field::CtMark,
                    op: WriteOp::Copy {
                        src: CopySource::Mark,
                        src_mask: nfmask,
                        shift,
                        keep: !ctmask,
                    },
                }
            } else {
                MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::Copy {
                        src: CopySource::CtMark,
                        src_mask: ctmask,
                        shift,
                        keep: !nfmask,
                    },
                }
            };
            (w, i + used)
        }
        other => {
            return Err((
                0,
                format!(
                    "unknown {} operation `{other}`",
                    if field == Field::Mark {
                        "MARK"
                    } else {
                        "CONNMARK"
                    }
                ),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(s: &str) -> Vec<MarkOp> {
        parse_extensions(s).unwrap().0
    }

    #[test]
    fn reads_connmark_prints() {
        let save = ext("CONNMARK save nfmask 0x80 ctmask ~0xf0");
        assert_eq!(
            save,
            vec![MarkOp::Write(MarkWrite {
                field: Field::CtMark,
                op: WriteOp::Copy {
                    src: CopySource::Mark,
                    src_mask: 0x80,
                    shift: Shift::None,
                    keep: !0xf0
                }
            })]
        );
        let restore = ext("CONNMARK restore ctmask 0xf0 nfmask ~0x80 left-shift-mark 3");
        assert_eq!(
            restore,
            vec![MarkOp::Write(MarkWrite {
                field: Field::Mark,
                op: WriteOp::Copy {
                    src: CopySource::CtMark,
                    src_mask: 0xf0,
                    shift: Shift::Left(3),
                    keep: !0x80
                }
            })]
        );
    }

    #[test]
    fn reads_empty_target_column() {
        let cols = Columns {
            num: false,
            counters: true,
            interfaces: true,
        };
        let r = parse_rule_line("    0     0            0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match ! 0x4000/0x4000", &cols).unwrap();
        assert_eq!(r.target, None);
        assert_eq!(
            r.ops,
            vec![MarkOp::Read(MarkRead::equals(
                Field::Mark,
                0x4000,
                0x4000,
                true
            ))]
        );
        let r = parse_rule_line("MARK       all  --  anywhere             anywhere             /* x y */ MARK or 0x4000", &Columns::default()).unwrap();
        assert_eq!(r.target, Some("MARK"));
        assert_eq!(r.comment.as_deref(), Some("x y"));
        assert_eq!(
            r.ops,
            vec![MarkOp::Write(MarkWrite::set_xmark(
                Field::Mark,
                0x4000,
                0x4000
            ))]
        );
    }

    #[test]
    fn old_mark_set_with_mask_is_xset() {
        assert_eq!(
            ext("MARK set 0x4000/0x4000"),
            vec![MarkOp::Write(MarkWrite::set_xmark(
                Field::Mark,
                0x4000,
                0x4000
            ))]
        );
    }
}
