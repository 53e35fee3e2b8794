//! Splitting nft ruleset text into tokens.
//!
//! The token classes follow nft's scanner (`src/scanner.l`) only as far as markspace needs them:
//! braces, parentheses, brackets, commas and semicolons stand alone; `& | ^ << >> == != < > <= >=
//! ! =` are operators; `"…"` is a string (nft has no escapes inside strings but `\"` is kept
//! for pasted text); `#` starts a comment to the end of the line; everything else up to
//! whitespace is a word (`0x10`, `10-20`, `0xffffff00/24`, `::1`, `@set`, `$var`, `eth*`, the
//! spaced `.` of concatenations and the spaced `:` of map elements). Newlines are tokens, because
//! a newline ends a rule outside braces.

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok<'a> {
    /// A bare word.
    Word(&'a str),
    /// A quoted string, without its quotes.
    Str(&'a str),
    /// An operator: `& | ^ << >> == != < > <= >= ! =`.
    Op(&'static str),
    /// `{`, `(` or `[`.
    Open(char),
    /// `}`, `)` or `]`.
    Close(char),
    /// `,`.
    Comma,
    /// `;`.
    Semi,
    /// The end of a line.
    Newline,
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// The token.
    pub(crate) tok: Tok<'a>,
    /// Byte offset in the text.
    pub(crate) start: usize,
    /// 1-based line.
    pub(crate) line: u32,
}

impl Token<'_> {
    /// The word, if the token is one.
    pub(crate) fn word(&self) -> Option<&str> {
        match self.tok {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    /// Whether the token is this word.
    pub(crate) fn is(&self, word: &str) -> bool {
        self.word() == Some(word)
    }
}

/// A `#` comment and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Comment<'a> {
    /// The text after `#`.
    pub(crate) text: &'a str,
    /// 1-based line.
    pub(crate) line: u32,
    /// Byte offset of the `#`.
    pub(crate) start: usize,
}

/// A string with no closing quote on its line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unclosed {
    /// Byte offset of the opening quote.
    pub(crate) start: usize,
    /// 1-based line.
    pub(crate) line: u32,
}

/// The tokens and comments of a text.
#[derive(Debug, Default)]
pub(crate) struct Lexed<'a> {
    /// All tokens in order.
    pub(crate) tokens: Vec<Token<'a>>,
    /// All comments in order.
    pub(crate) comments: Vec<Comment<'a>>,
    /// Strings left open (each is read up to the end of its line).
    pub(crate) unclosed: Vec<Unclosed>,
}

const OPS: [&str; 13] = [
    "<<", ">>", "==", "!=", "<=", ">=", "&", "|", "^", "<", ">", "!", "=",
];

fn is_word_byte(b: u8) -> bool {
    !b.is_ascii_whitespace()
        && !matches!(
            b,
            b'{' | b'}'
                | b'('
                | b')'
                | b'['
                | b']'
                | b','
                | b';'
                | b'"'
                | b'#'
                | b'&'
                | b'|'
                | b'^'
                | b'<'
                | b'>'
                | b'='
                | b'!'
        )
}

/// Splits a text (or one line of it) into tokens. Never fails: an unclosed string is recorded and
/// read to the end of its line.
pub(crate) fn lex(text: &str) -> Lexed<'_> {
    let bytes = text.as_bytes();
    let mut out = Lexed::default();
    let mut i = 0;
    let mut line = 1u32;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        let mut push = |tok| {
            out.tokens.push(Token { tok, start, line });
        };
        match b {
            b'\n' => {
                push(Tok::Newline);
                line += 1;
                i += 1;
            }
            b if b.is_ascii_whitespace() => i += 1,
            b'#' => {
                let end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
                out.comments.push(Comment {
                    text: text[i + 1..end].trim_end_matches('\r'),
                    line,
                    start,
                });
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() && bytes[j + 1] == b'"' {
                        j += 1;
                    }
                    j += 1;
                }
                if j < bytes.len() && bytes[j] == b'"' {
                    push(Tok::Str(&text[i + 1..j]));
                    i = j + 1;
                } else {
                    push(Tok::Str(text[i + 1..j].trim_end_matches('\r')));
                    out.unclosed.push(Unclosed { start, line });
                    i = j;
                }
            }
            b'{' | b'(' | b'[' => {
                push(Tok::Open(b as char));
                i += 1;
            }
            b'}' | b')' | b']' => {
                push(Tok::Close(b as char));
                i += 1;
            }
            b',' => {
                push(Tok::Comma);
                i += 1;
            }
            b';' => {
                push(Tok::Semi);
                i += 1;
            }
            _ if !is_word_byte(b) => {
                let op = OPS
                    .iter()
                    .find(|op| bytes[i..].starts_with(op.as_bytes()))
                    .copied()
                    .unwrap_or("=");
                push(Tok::Op(op));
                i += op.len();
            }
            _ => {
                let mut j = i;
                while j < bytes.len() && is_word_byte(bytes[j]) {
                    j += 1;
                }
                // Multi-byte UTF-8 characters are word bytes, so `j` stays on a char boundary.
                push(Tok::Word(&text[i..j]));
                i = j;
            }
        }
    }
    out
}

/// The word a text lexes to when it lexes to exactly one word (`lex(text).tokens` is
/// `[Word(w)]`). Text made only of word bytes (most JSON string values: `tcp`, `10.0.0.1`,
/// `eth0`) is that word without lexing it.
pub(crate) fn single_word(text: &str) -> Option<&str> {
    if !text.is_empty() && text.bytes().all(is_word_byte) {
        return Some(text);
    }
    match lex(text).tokens.as_slice() {
        [Token {
            tok: Tok::Word(w), ..
        }] => Some(w),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok<'_>> {
        lex(text).tokens.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn splits_rules() {
        assert_eq!(
            kinds("meta mark set mark and 0xff|0x1 # handle 4"),
            vec![
                Tok::Word("meta"),
                Tok::Word("mark"),
                Tok::Word("set"),
                Tok::Word("mark"),
                Tok::Word("and"),
                Tok::Word("0xff"),
                Tok::Op("|"),
                Tok::Word("0x1"),
            ]
        );
        assert_eq!(
            kinds("ct mark != {0x1,2}\n"),
            vec![
                Tok::Word("ct"),
                Tok::Word("mark"),
                Tok::Op("!="),
                Tok::Open('{'),
                Tok::Word("0x1"),
                Tok::Comma,
                Tok::Word("2"),
                Tok::Close('}'),
                Tok::Newline,
            ]
        );
    }

    #[test]
    fn single_words_as_lexed() {
        for t in [
            "",
            "tcp",
            "10.0.0.1",
            " 10 ",
            "10 # x",
            "a b",
            "0x10",
            "@set",
            "\"s\"",
            "&",
            "eth*",
            "{1}",
            "\n5\n",
            "1-2",
            "10.0.0.0/8",
            "é1",
        ] {
            let lexed = match lex(t).tokens.as_slice() {
                [Token {
                    tok: Tok::Word(w), ..
                }] => Some(*w),
                _ => None,
            };
            assert_eq!(single_word(t), lexed, "{t:?}");
        }
    }

    #[test]
    fn strings_and_comments() {
        let l = lex("comment \"a \\\" b\" # Warning: x\n\"open");
        assert_eq!(l.tokens[1].tok, Tok::Str("a \\\" b"));
        assert_eq!(l.comments[0].text, " Warning: x");
        assert_eq!(l.unclosed.len(), 1);
        assert_eq!(l.tokens.last().map(|t| t.line), Some(2));
    }
}
