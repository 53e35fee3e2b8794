//! Input texts and positions in them.
//!
//! Every input is read once into a [`SourceFile`] held by a [`SourceMap`]. The model points into
//! these texts with [`Span`]s instead of copying rule text, so a million-rule input costs its own
//! size plus a few words per rule.

use std::fmt;

/// Identifies one input in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u32);

/// A range of one line of an input.
///
/// Invariant: `start..start + len` lies inside the text of `source` and on one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    /// The input.
    pub source: SourceId,
    /// 1-based line number.
    pub line: u32,
    /// Byte offset of the start in the input.
    pub start: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Span {
    /// The byte range in the input.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// One input: its display name and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown in reports (a path, `-` for stdin, or a collector's command).
    pub name: String,
    /// The whole text.
    pub text: String,
}

/// All inputs of one run. Each text is shared, so a copy of a node (the analysis audits one to
/// check a proposed fix) does not copy its inputs.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<std::sync::Arc<SourceFile>>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an input and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: String) -> SourceId {
        let id = SourceId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(std::sync::Arc::new(SourceFile {
            name: name.into(),
            text,
        }));
        id
    }

    /// The input with this id.
    ///
    /// Ids are only made by [`SourceMap::add`] on this map, so the index is always valid.
    pub fn file(&self, id: SourceId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// All inputs in the order they were added.
    pub fn files(&self) -> impl Iterator<Item = (SourceId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (SourceId(i as u32), &**f))
    }

    /// The text a span covers (empty if the span does not fit, which the invariant rules out).
    pub fn text(&self, span: Span) -> &str {
        self.file(span.source).text.get(span.range()).unwrap_or("")
    }

    /// The display name of a span's input.
    pub fn name(&self, span: Span) -> &str {
        &self.file(span.source).name
    }

    /// The 1-based column of a byte offset within its line.
    pub fn column(&self, source: SourceId, offset: usize) -> u32 {
        let text = &self.file(source).text;
        let offset = offset.min(text.len());
        let line_start = memchr::memrchr(b'\n', &text.as_bytes()[..offset]).map_or(0, |i| i + 1);
        let col = text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count());
        u32::try_from(col + 1).unwrap_or(u32::MAX)
    }
}

/// A position shown to the user: `file:line:column`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The input's display name.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// An iterator over the lines of a text with their 1-based numbers and byte offsets.
///
/// Written by hand over `memchr` rather than `str::lines` because every rule needs its byte
/// offset for its [`Span`], and this keeps that free. A trailing `\r` is dropped.
pub struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
}

impl<'a> Lines<'a> {
    /// Lines of `text`.
    pub fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            line: 0,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    /// (line number, byte offset of the line start, line text without terminator)
    type Item = (u32, usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let end = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
        let mut line = &rest[..end];
        if let Some(stripped) = line.strip_suffix('\r') {
            line = stripped;
        }
        let start = self.pos;
        self.pos += end + 1;
        self.line += 1;
        Some((self.line, start, line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_offsets() {
        let v: Vec<_> = Lines::new("a\r\nbc\n\nd").collect();
        assert_eq!(v, vec![(1, 0, "a"), (2, 3, "bc"), (3, 6, ""), (4, 7, "d")]);
    }

    #[test]
    fn column_counts_chars() {
        let mut map = SourceMap::new();
        let id = map.add("x", "ab\nçd e".to_string());
        assert_eq!(map.column(id, 0), 1);
        assert_eq!(map.column(id, 3), 1);
        assert_eq!(map.column(id, 6), 3);
    }
}
