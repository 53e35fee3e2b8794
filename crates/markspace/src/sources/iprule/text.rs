//! The text forms: `ip rule show` listings (`PREF:\t[not ]from SRC … fwmark 0xV[/0xM] … lookup T`,
//! iproute2 `ip/iprule.c` `print_rule`) and `ip [-6] rule add …` commands (`ip/iprule.c`
//! `iprule_modify`). Several outputs may be pasted together with shell prompt lines
//! (`sh-5.2# ip -6 rule`): `-6`/`-f inet6` marks the rules that follow as IPv6, and the output of
//! other commands in between is skipped.

use crate::diagnostic::Diagnostic;
use crate::source::SourceId;
use crate::sources::sink::Sink;
use crate::sources::text::{
    c_u32, first_line, prompt_command, value_mask, words, FirstLine, LineAt, Word,
};

use super::rule::{fwmark_mask, IpRule, LineForm, Target};

/// Whether a line is a listing line: `PREF:` then `from` or `not` (the colon may be missing: web
/// UIs such as OpenWrt's LuCI show `Priority<TAB>Rule` tables).
pub(crate) fn is_listing(line: &str) -> bool {
    let mut w = line.split_whitespace();
    let Some(pref) = w.next().map(|p| p.strip_suffix(':').unwrap_or(p)) else {
        return false;
    };
    !pref.is_empty()
        && pref.bytes().all(|b| b.is_ascii_digit())
        && matches!(w.next(), Some("from" | "not"))
}

/// The words after `rule` of an `ip … rule add|append|insert|replace|prepend …` command, and
/// whether the command selects IPv6.
fn command_words<'a>(ws: &'a [Word<'a>]) -> Option<(&'a [Word<'a>], bool)> {
    let mut i = 0;
    if ws.first()?.text == "sudo" {
        i += 1;
    }
    let ip = ws.get(i)?.text;
    if ip.rsplit('/').next() != Some("ip") {
        return None;
    }
    i += 1;
    let mut v6 = false;
    while let Some(w) = ws.get(i) {
        match w.text {
            "-6" => v6 = true,
            "-f" | "-family" | "-n" | "-netns" => {
                if matches!(w.text, "-f" | "-family") {
                    v6 = ws.get(i + 1).is_some_and(|f| f.text == "inet6");
                }
                i += 1;
            }
            t if t.starts_with('-') => {}
            _ => break,
        }
        i += 1;
    }
    if !matches!(ws.get(i)?.text, "rule" | "ru" | "rul") {
        return None;
    }
    matches!(
        ws.get(i + 1)?.text,
        "add" | "a" | "append" | "insert" | "prepend" | "replace"
    )
    .then(|| (&ws[i + 2..], v6))
}

/// Whether a prompt's command lists rules, and whether it selects IPv6.
fn lists_rules(cmd: &str) -> Option<bool> {
    let ws = words(cmd);
    let mut v6 = false;
    let mut it = ws.iter().skip(1).peekable();
    if ws.first()?.text.rsplit('/').next() != Some("ip") {
        return None;
    }
    while let Some(w) = it.next() {
        match w.text {
            "-6" => v6 = true,
            "-f" | "-family" => v6 = it.next().is_some_and(|f| f.text == "inet6"),
            "-n" | "-netns" => {
                it.next();
            }
            "rule" | "ru" | "rul" => {
                return match it.next().map(|w| w.text) {
                    None | Some("show" | "list" | "ls" | "lst" | "l" | "s" | "|") => Some(v6),
                    _ => None,
                }
            }
            t if t.starts_with('-') => {}
            _ => return None,
        }
    }
    None
}

/// Whether a text is `ip rule` output or `ip rule add` commands: the first meaningful line is a
/// rule line, an `ip rule` prompt, or an `ip rule add` command.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => {
            lists_rules(cmd).is_some() || command_words(&words(cmd)).is_some()
        }
        Some(FirstLine::Line(_, l)) => is_listing(l) || command_words(&words(l)).is_some(),
        None => false,
    }
}

/// An error in a rule line: byte offset in the line, message, hint.
pub(crate) type LineError = (usize, String, &'static str);

const FWMARK_HINT: &str =
    "fwmark takes a value and an optional mask, e.g. `fwmark 0x80/0xff0000` or `fwmark 51820`";

/// Reads one rule from its words (after `PREF:` for listings, after `add` for commands).
pub(crate) fn parse_line(line: &str, form: LineForm) -> Result<IpRule, LineError> {
    let ws = words(line);
    let (body, v6) = match form {
        LineForm::Listing => (&ws[..], false),
        LineForm::Command => command_words(&ws).unwrap_or((&ws[..], false)),
    };
    let mut rule = IpRule {
        ipv6: v6,
        ..IpRule::default()
    };
    let mut i = 0;
    if form == LineForm::Listing {
        let pref = body.first().map_or("", |w| w.text);
        let digits = pref.strip_suffix(':').unwrap_or(pref);
        rule.priority = Some(digits.parse().map_err(|_| {
            (
                0,
                format!("invalid rule priority `{pref}`"),
                "a rule line starts with its priority, e.g. `5210:`",
            )
        })?);
        i = 1;
    }
    let arg = |i: usize| -> Result<&Word<'_>, LineError> {
        body.get(i + 1).ok_or_else(|| {
            let w = &body[i];
            (
                w.at,
                format!("`{}` without a value", w.text),
                "the line looks truncated",
            )
        })
    };
    while i < body.len() {
        let w = &body[i];
        match w.text {
            "not" => rule.not = true,
            "fwmark" => {
                let a = arg(i)?;
                if a.text.starts_with('$') {
                    return Err((
                        a.at,
                        format!("fwmark `{}` is a shell variable", a.text),
                        "substitute the value to audit this command",
                    ));
                }
                let (v, m) = value_mask(a.text, c_u32)
                    .ok_or_else(|| (a.at, format!("invalid fwmark `{}`", a.text), FWMARK_HINT))?;
                rule.fwmark = Some((v, fwmark_mask(v, m, form)));
                i += 1;
            }
            "lookup" | "table" => {
                let a = arg(i)?;
                if a.text == "[l3mdev-table]" {
                    rule.l3mdev = true;
                }
                rule.target = Some(Target::Lookup(a.text.to_string()));
                i += 1;
            }
            "goto" => {
                let a = arg(i)?;
                let n = a.text.parse().map_err(|_| {
                    (
                        a.at,
                        format!("invalid goto target `{}`", a.text),
                        "goto takes a rule priority",
                    )
                })?;
                rule.target = Some(Target::Goto(n));
                i += 1;
            }
            "suppress_prefixlength" | "sup_pl" => {
                let a = arg(i)?;
                rule.suppress_prefixlength = a.text.parse().ok();
                i += 1;
            }
            "iif" | "dev" => {
                rule.iif = Some(arg(i)?.text.to_string());
                i += 1;
            }
            "oif" => {
                rule.oif = Some(arg(i)?.text.to_string());
                i += 1;
            }
            "pref" | "priority" | "preference" if form == LineForm::Command => {
                let a = arg(i)?;
                rule.priority = Some(a.text.parse().map_err(|_| {
                    (
                        a.at,
                        format!("invalid priority `{}`", a.text),
                        "priority takes a number",
                    )
                })?);
                i += 1;
            }
            "type" if form == LineForm::Command => {
                let a = arg(i)?;
                if a.text != "unicast" {
                    rule.target = Some(Target::Action(a.text.to_string()));
                }
                i += 1;
            }
            "unreachable" | "blackhole" | "prohibit" | "nop" => {
                rule.target = Some(Target::Action(w.text.to_string()));
            }
            "l3mdev" => rule.l3mdev = true,
            // Selectors and attributes with one argument that markspace does not need.
            "from" | "to" | "tos" | "dsfield" | "uidrange" | "ipproto" | "sport" | "dport"
            | "realms" | "suppress_ifgroup" | "sup_group" | "proto" | "protocol" | "map-to"
            | "nat" | "flowlabel" | "dscp" | "fwmask" => i += 1,
            // Annotations pasted after a rule (`<- not ours`) and anything newer: ignored.
            "<-" | "#" => break,
            _ => {}
        }
        i += 1;
    }
    Ok(rule)
}

/// Reads `ip rule` listings and commands.
pub(crate) fn parse(text: &str, source: SourceId, name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let base = name.rsplit('/').next().unwrap_or(name);
    let mut v6 = base.contains("-6") || base.contains("ip6") || base.contains("inet6");
    let mut in_rules = true;
    for (at, line) in LineAt::lines(text, source) {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(cmd) = prompt_command(l) {
            if let Some(six) = lists_rules(cmd) {
                in_rules = true;
                v6 = six;
                continue;
            }
            if command_words(&words(cmd)).is_none() {
                in_rules = false;
                continue;
            }
        }
        if l.starts_with('#') || !in_rules {
            continue;
        }
        let cmd = prompt_command(l).unwrap_or(l);
        let form = if is_listing(l) {
            LineForm::Listing
        } else if command_words(&words(cmd)).is_some() {
            LineForm::Command
        } else {
            continue;
        };
        let lead = line.len() - line.trim_start().len();
        let body_at = if form == LineForm::Command {
            lead + (l.len() - cmd.len())
        } else {
            lead
        };
        let body = if form == LineForm::Command { cmd } else { l };
        match parse_line(body, form) {
            Ok(mut rule) => {
                rule.ipv6 |= v6;
                if let Some(tp) = rule.touchpoint(at.trimmed(line)) {
                    sink.touchpoints.push(tp);
                }
            }
            Err((off, message, hint)) => {
                let span = at.span(body_at + off, 1);
                let diag = if message.contains("shell variable") {
                    Diagnostic::warning(span, message)
                } else {
                    Diagnostic::error(span, message)
                };
                diags.push(diag.with_hint(hint));
            }
        }
    }
    diags
}
