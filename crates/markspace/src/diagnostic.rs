//! Problems found while reading inputs.
//!
//! Malformed input is an error that names file, line and column and keeps the rest of the file
//! (ripgrep's `Partial`); valid input that markspace does not model is not a problem at all (it is
//! kept opaque); input that is merely suspicious is a warning.

use std::fmt;

use serde::Serialize;

use crate::source::{Location, SourceMap, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The input is malformed; the audit's result is incomplete.
    Error,
    /// Something was skipped or guessed; the result may be incomplete.
    Warning,
}

/// One problem with an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// Where: the span's start is the column reported.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at a span.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Error,
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// A warning at a span.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            level: Level::Warning,
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Resolves the span to a location and the offending line for display.
    pub fn render<'m>(&'m self, sources: &'m SourceMap) -> Rendered<'m> {
        let file = sources.file(self.span.source);
        let location = Location {
            file: file.name.clone(),
            line: self.span.line,
            column: sources.column(self.span.source, self.span.start as usize),
        };
        let text = &file.text;
        let start = self.span.start as usize;
        let line_start =
            memchr::memrchr(b'\n', &text.as_bytes()[..start.min(text.len())]).map_or(0, |i| i + 1);
        let line_end = memchr::memchr(b'\n', &text.as_bytes()[line_start..])
            .map_or(text.len(), |i| line_start + i);
        Rendered {
            diag: self,
            location,
            line: text.get(line_start..line_end).unwrap_or(""),
        }
    }
}

/// A diagnostic with its location resolved, ready to print.
pub struct Rendered<'m> {
    diag: &'m Diagnostic,
    /// `file:line:column`.
    pub location: Location,
    /// The whole offending line.
    pub line: &'m str,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.diag.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        write!(f, "{}: {level}: {}", self.location, self.diag.message)?;
        let shown: String = self.line.chars().take(200).collect();
        write!(f, "\n  | {shown}")?;
        let col = self.location.column as usize;
        if col <= 200 {
            write!(f, "\n  | {}^", " ".repeat(col.saturating_sub(1)))?;
        }
        if let Some(hint) = &self.diag.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}
