//! Splitting an iptables rule line into words.
//!
//! `iptables-save` quotes a word with `"` when it holds spaces or quotes and escapes `"` and `\`
//! inside with a backslash (`xtables_save_string` in libxtables). Pasted shell commands also use
//! single quotes. Words borrow from the line unless they had escapes.

use std::borrow::Cow;

/// One word of a rule line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// The word with its quotes removed and escapes resolved.
    pub(crate) text: Cow<'a, str>,
    /// Byte offset of the word's first character in the line.
    pub(crate) offset: usize,
}

/// A word that opened a quote and never closed it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnclosedQuote {
    /// Byte offset of the opening quote in the line.
    pub(crate) offset: usize,
}

/// Splits a line into words.
pub(crate) fn tokenize(line: &str) -> Result<Vec<Token<'_>>, UnclosedQuote> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let mut owned: Option<String> = None;
        let mut plain_end = i;
        // Scan one word; quoted parts may sit inside a word (`--comment="a b"`).
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            match bytes[i] {
                q @ (b'"' | b'\'') => {
                    let buf = owned.get_or_insert_with(|| line[start..plain_end].to_string());
                    let open = i;
                    i += 1;
                    loop {
                        if i >= bytes.len() {
                            return Err(UnclosedQuote { offset: open });
                        }
                        let c = bytes[i];
                        if c == q {
                            i += 1;
                            break;
                        }
                        if c == b'\\' && q == b'"' && i + 1 < bytes.len() {
                            let next = bytes[i + 1];
                            if next == b'"' || next == b'\\' {
                                buf.push(next as char);
                                i += 2;
                                continue;
                            }
                        }
                        // Push the whole UTF-8 character.
                        let ch_len = utf8_len(c);
                        let end = (i + ch_len).min(bytes.len());
                        buf.push_str(line.get(i..end).unwrap_or(""));
                        i = end;
                    }
                }
                c => {
                    let ch_len = utf8_len(c);
                    let end = (i + ch_len).min(bytes.len());
                    match owned.as_mut() {
                        Some(buf) => buf.push_str(line.get(i..end).unwrap_or("")),
                        None => plain_end = end,
                    }
                    i = end;
                }
            }
        }
        let text = match owned {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(&line[start..plain_end]),
        };
        out.push(Token {
            text,
            offset: start,
        });
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        tokenize(line)
            .unwrap()
            .into_iter()
            .map(|t| t.text.into_owned())
            .collect()
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(
            words("  -A  X\t-j ACCEPT "),
            vec!["-A", "X", "-j", "ACCEPT"]
        );
    }

    #[test]
    fn unescapes_save_quotes() {
        assert_eq!(
            words(r#"-m comment --comment "hello \"w\" x\\y" -j A"#),
            vec!["-m", "comment", "--comment", r#"hello "w" x\y"#, "-j", "A"]
        );
    }

    #[test]
    fn keeps_offsets() {
        let t = tokenize(r#"ab "c d" e"#).unwrap();
        assert_eq!(
            t.iter().map(|t| t.offset).collect::<Vec<_>>(),
            vec![0, 3, 9]
        );
    }

    #[test]
    fn single_quotes_and_utf8() {
        assert_eq!(
            words("--comment 'ünï code' x"),
            vec!["--comment", "ünï code", "x"]
        );
    }

    #[test]
    fn rejects_unclosed_quote() {
        assert_eq!(
            tokenize(r#"-A X --comment "abc"#),
            Err(UnclosedQuote { offset: 15 })
        );
    }
}
