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

/// Splits a line into words (`trace` and tests; parsers reuse a buffer with [`tokenize_into`]).
pub(crate) fn tokenize(line: &str) -> Result<Vec<Token<'_>>, UnclosedQuote> {
    let mut out = Vec::new();
    tokenize_into(line, &mut out)?;
    Ok(out)
}

/// Splits a line into words, appending them to `out` (which the caller clears and reuses, so
/// that reading a million rules does not allocate a vector per rule).
pub(crate) fn tokenize_into<'a>(
    line: &'a str,
    out: &mut Vec<Token<'a>>,
) -> Result<(), UnclosedQuote> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        // Fast path, which every word of a typical dump takes: a plain word, or a word that is
        // one quoted string without escapes (`"ns/svc:port cluster IP"`), borrows from the line.
        // Only words that mix quoted and plain parts or hold escapes are built char by char.
        let end = plain_end(bytes, i);
        if end == bytes.len() || bytes[end].is_ascii_whitespace() {
            out.push(Token {
                text: Cow::Borrowed(&line[start..end]),
                offset: start,
            });
            i = end;
            continue;
        }
        if end == start {
            if let Some(close) = simple_quote_end(bytes, start) {
                out.push(Token {
                    text: Cow::Borrowed(&line[start + 1..close]),
                    offset: start,
                });
                i = close + 1;
                continue;
            }
        }
        let (text, next) = quoted_word(line, start, end)?;
        out.push(Token {
            text: Cow::Owned(text),
            offset: start,
        });
        i = next;
    }
    Ok(())
}

/// Whether a byte ends a plain word: ASCII whitespace or a quote.
fn ends_plain(b: u8) -> bool {
    b.is_ascii_whitespace() || b == b'"' || b == b'\''
}

/// The offset of the first byte at or after `i` that ends a plain word, or the length.
///
/// Eight bytes at a time, because this loop sees every byte of the input: all bytes that end
/// a word are below 0x28, and so are few others (`!`, `#`, `$`, `%`, `&`), so one subtraction
/// flags the candidates of a whole chunk ("has a byte less than n", a standard bit trick: the
/// lowest flag is exact, borrows only spill upwards) and only those are tested.
fn plain_end(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*chunk);
        let below = x.wrapping_sub(ONES * 0x28) & !x & HIGHS;
        if below == 0 {
            i += 8;
            continue;
        }
        let at = i + below.trailing_zeros() as usize / 8;
        if ends_plain(bytes[at]) {
            return at;
        }
        i = at + 1;
    }
    while i < bytes.len() && !ends_plain(bytes[i]) {
        i += 1;
    }
    i
}

/// For a word that opens a quote at `open`: the offset of its closing quote when the quoted
/// part has no escape and ends the word, so the word is exactly the text between the quotes.
fn simple_quote_end(bytes: &[u8], open: usize) -> Option<usize> {
    let q = bytes[open];
    let close = open + 1 + memchr::memchr(q, &bytes[open + 1..])?;
    if q == b'"' && memchr::memchr(b'\\', &bytes[open + 1..close]).is_some() {
        return None;
    }
    let ends_word = bytes.get(close + 1).is_none_or(|b| b.is_ascii_whitespace());
    ends_word.then_some(close)
}

/// Reads a word with quoted parts from `start`, where `plain_end` is the first quote; returns
/// the word unquoted and unescaped, and the offset after it.
fn quoted_word(
    line: &str,
    start: usize,
    plain_end: usize,
) -> Result<(String, usize), UnclosedQuote> {
    let bytes = line.as_bytes();
    let mut buf = line[start..plain_end].to_string();
    let mut i = plain_end;
    // Scan one word; quoted parts may sit inside a word (`--comment="a b"`).
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
        match bytes[i] {
            q @ (b'"' | b'\'') => {
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
                buf.push_str(line.get(i..end).unwrap_or(""));
                i = end;
            }
        }
    }
    Ok((buf, i))
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

    /// The tokenizer as it was before its fast path, kept as the oracle for it.
    fn reference(line: &str) -> Result<Vec<Token<'_>>, UnclosedQuote> {
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
                            let end = (i + utf8_len(c)).min(bytes.len());
                            buf.push_str(line.get(i..end).unwrap_or(""));
                            i = end;
                        }
                    }
                    c => {
                        let end = (i + utf8_len(c)).min(bytes.len());
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

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_reference(line in r#"[a-c \t\r\n"'\\=ü!#&(-]{0,40}"#) {
            proptest::prop_assert_eq!(tokenize(&line), reference(&line));
        }
    }

    #[test]
    fn borrows_plain_and_simply_quoted_words() {
        let t = tokenize(r#"-A X --comment "a b" 'c d' e"#).unwrap();
        assert!(t.iter().all(|t| matches!(t.text, Cow::Borrowed(_))));
        assert_eq!(t[3].text, "a b");
        assert_eq!(t[3].offset, 15);
        assert_eq!(t[4].text, "c d");
    }

    #[test]
    fn rejects_unclosed_quote() {
        assert_eq!(
            tokenize(r#"-A X --comment "abc"#),
            Err(UnclosedQuote { offset: 15 })
        );
    }
}
