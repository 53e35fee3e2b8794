//! Small helpers the line-oriented touchpoint parsers share: words with byte offsets, numbers as
//! the C tools parse them, `V/M` pairs, spans, shell prompt lines, the first line detectors judge, and top-level JSON objects with
//! their positions.

use crate::model::Bits;
use crate::source::{SourceId, Span};

/// A word of a line and its byte offset in the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word<'a> {
    /// Byte offset in the line.
    pub(crate) at: usize,
    /// The word.
    pub(crate) text: &'a str,
}

/// The whitespace-separated words of a line, with offsets.
pub(crate) fn words(line: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(Word {
                    at: s,
                    text: &line[s..i],
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Word {
            at: s,
            text: &line[s..],
        });
    }
    out
}

/// A number as iproute2 `get_u32(…, 0)` and OVS read it, through the model's one parser
/// ([`Bits::parse_arg`]): `0x` hex, leading-`0` octal, or decimal, the whole word consumed.
pub(crate) fn c_u32(s: &str) -> Option<u32> {
    Bits::parse_arg(s).ok().map(u32::from)
}

/// `V` or `V/M` with both parts read by `num`; `None` if a part is not a number.
pub(crate) fn value_mask(s: &str, num: fn(&str) -> Option<u32>) -> Option<(u32, Option<u32>)> {
    match s.split_once('/') {
        Some((v, m)) => Some((num(v)?, Some(num(m)?))),
        None => Some((num(s)?, None)),
    }
}

/// Where one line sits in its input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LineAt {
    /// The input.
    pub(crate) source: SourceId,
    /// 1-based line number.
    pub(crate) line: u32,
    /// Byte offset of the line start in the input.
    pub(crate) start: usize,
}

impl LineAt {
    /// The lines of an input, each with where it sits.
    pub(crate) fn lines(text: &str, source: SourceId) -> impl Iterator<Item = (LineAt, &str)> {
        crate::source::Lines::new(text).map(move |(line, start, text)| {
            (
                LineAt {
                    source,
                    line,
                    start,
                },
                text,
            )
        })
    }

    /// A span of `len` bytes at byte `at` of the line.
    pub(crate) fn span(&self, at: usize, len: usize) -> Span {
        Span {
            source: self.source,
            line: self.line,
            start: u32::try_from(self.start + at).unwrap_or(u32::MAX),
            len: u32::try_from(len).unwrap_or(u32::MAX),
        }
    }

    /// The span of a line's text without its leading and trailing whitespace.
    pub(crate) fn trimmed(&self, line: &str) -> Span {
        let lead = line.len() - line.trim_start().len();
        self.span(lead, line.trim().len())
    }
}

/// Command names a prompt line may run (so that `# ip rule` is a prompt, `# a comment` is not).
pub(crate) const COMMANDS: &[&str] = &[
    "ip",
    "tc",
    "ss",
    "wg",
    "wg-quick",
    "sysctl",
    "ipvsadm",
    "conntrack",
    "bpftool",
    "ovs-ofctl",
    "ovs-appctl",
    "iptables",
    "ip6tables",
    "iptables-save",
    "ip6tables-save",
    "iptables-nft",
    "iptables-legacy",
    "iptables-nft-save",
    "iptables-legacy-save",
    "nft",
    "cat",
    "docker",
    "kubectl",
];

/// The command of a shell prompt line (`$ sudo ip rule`, `sh-5.2# tc filter show dev eth0`,
/// `root@node:/# ovs-ofctl dump-flows breth0`, `[root@n ~]# ss -tanpe`), without `sudo`; `None`
/// for other lines. The command must start with a known network tool so that comments such as
/// `# rules of eth0` are not taken for prompts.
pub(crate) fn prompt_command(line: &str) -> Option<&str> {
    let l = line.trim_start();
    let cut = l.find("$ ").into_iter().chain(l.find("# ")).min()?;
    let prefix = &l[..cut];
    let plausible = prefix.is_empty()
        || (!prefix.contains(char::is_whitespace) && !prefix.starts_with('-'))
        || (prefix.starts_with('[') && prefix.ends_with(']'));
    if !plausible {
        return None;
    }
    let cmd = l[cut + 2..].trim();
    let cmd = cmd.strip_prefix("sudo ").map_or(cmd, str::trim_start);
    let first = cmd.split_whitespace().next()?;
    let base = first.rsplit('/').next().unwrap_or(first);
    COMMANDS.contains(&base).then_some(cmd)
}

/// What a detector judges a text by: the first of its first 200 lines that is not blank or a
/// comment.
pub(crate) enum FirstLine<'a> {
    /// A shell prompt line: its command ([`prompt_command`]).
    Command(&'a str),
    /// Any other line: as written, and trimmed.
    Line(&'a str, &'a str),
}

/// The first significant line of a text, for format detection: blank lines and lines starting
/// with one of `comments` are skipped, but a prompt line (`# ip rule show`) counts as a command
/// even when it starts with `#`. `None` when the first 200 lines hold none.
pub(crate) fn first_line<'a>(text: &'a str, comments: &[char]) -> Option<FirstLine<'a>> {
    for (_, _, line) in crate::source::Lines::new(text).take(200) {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if let Some(cmd) = prompt_command(l) {
            return Some(FirstLine::Command(cmd));
        }
        if l.starts_with(comments) {
            continue;
        }
        return Some(FirstLine::Line(line, l));
    }
    None
}

/// The top-level values of a JSON text (an array's elements, or several arrays one after the
/// other as `ip -j rule; ip -6 -j rule` prints them) with their byte ranges. Strings and nesting
/// are respected; `None` when the brackets do not balance.
pub(crate) fn json_elements(text: &str) -> Option<Vec<(usize, usize)>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escape = false;
    let mut elem_start = None;
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            if escape {
                escape = false;
            } else if c == b'\\' {
                escape = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                if depth == 1 && elem_start.is_none() {
                    elem_start = Some(i);
                }
            }
            b'[' | b'{' => {
                if depth == 1 && elem_start.is_none() {
                    elem_start = Some(i);
                }
                depth += 1;
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 1 {
                    if let Some(s) = elem_start.take() {
                        out.push((s, i + 1));
                    }
                } else if depth == 0 {
                    if let Some(s) = elem_start.take() {
                        out.push((s, i));
                    }
                }
            }
            b',' if depth == 1 => {
                if let Some(s) = elem_start.take() {
                    out.push((s, i));
                }
            }
            c if depth == 1 && elem_start.is_none() && !c.is_ascii_whitespace() => {
                elem_start = Some(i);
            }
            _ => {}
        }
    }
    (depth == 0 && !in_str).then_some(out)
}

/// The 1-based line number and line-start offset of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> (u32, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    (u32::try_from(line).unwrap_or(u32::MAX), start)
}

/// The span of the line holding `needle` inside `text[range]` (or of the range's first line):
/// how a record that spans several lines (pretty JSON, xfrm) points at the line that matters.
pub(crate) fn span_in(source: SourceId, text: &str, range: (usize, usize), needle: &str) -> Span {
    // Callers compute ranges in bytes (`end - 1` of a JSON element): move them onto character
    // boundaries so no slice below can split a UTF-8 character (found by the ip_rule_json fuzzer).
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (s, e) = (floor(range.0), floor(range.1));
    let at = text
        .get(s..e)
        .and_then(|t| t.find(needle))
        .map_or(s, |i| s + i);
    let (line, line_start) = line_of(text, at);
    let line_end = memchr::memchr(b'\n', &text.as_bytes()[line_start..])
        .map_or(text.len(), |i| line_start + i);
    let from = floor(line_start.max(s));
    let to = floor(line_end.min(e)).max(from);
    let piece = text.get(from..to).unwrap_or("");
    let lead = piece.len() - piece.trim_start().len();
    Span {
        source,
        line,
        start: u32::try_from(from + lead).unwrap_or(u32::MAX),
        len: u32::try_from(piece.trim().len()).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_offsets() {
        let w = words("30:\tfrom  all");
        assert_eq!(
            w,
            vec![
                Word { at: 0, text: "30:" },
                Word {
                    at: 4,
                    text: "from"
                },
                Word {
                    at: 10,
                    text: "all"
                }
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(c_u32("0x80"), Some(0x80));
        assert_eq!(c_u32("010"), Some(8));
        assert_eq!(c_u32("51820"), Some(51820));
        assert_eq!(c_u32("0x"), None);
        assert_eq!(value_mask("0x80/0x80", c_u32), Some((0x80, Some(0x80))));
        assert_eq!(value_mask("5", c_u32), Some((5, None)));
        assert_eq!(value_mask("5/x", c_u32), None);
    }

    #[test]
    fn prompts() {
        assert_eq!(prompt_command("sh-5.2# ip rule"), Some("ip rule"));
        assert_eq!(
            prompt_command("root@nkp:/# ovs-ofctl dump-flows breth0 | grep x"),
            Some("ovs-ofctl dump-flows breth0 | grep x")
        );
        assert_eq!(
            prompt_command("$ sudo tc filter show"),
            Some("tc filter show")
        );
        assert_eq!(prompt_command("[root@n ~]# ss -tanpe"), Some("ss -tanpe"));
        assert_eq!(prompt_command("# rules of eth0"), None);
        assert_eq!(prompt_command("## (a) OVN node: ip rule"), None);
        assert_eq!(prompt_command("30: from all fwmark 0x1 lookup 7"), None);
    }

    #[test]
    fn json_elements_of_concatenated_arrays() {
        let t = r#"[{"a":"x]"},{"b":[1,2]}] [{"c":3}]"#;
        let e = json_elements(t).unwrap();
        let parts: Vec<&str> = e.iter().map(|(s, e)| &t[*s..*e]).collect();
        assert_eq!(parts, vec![r#"{"a":"x]"}"#, r#"{"b":[1,2]}"#, r#"{"c":3}"#]);
        assert_eq!(json_elements("[{"), None);
        assert_eq!(json_elements("[]").unwrap(), vec![]);
    }
}
