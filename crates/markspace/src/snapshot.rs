//! Reading a node's inputs: single files, directories of files, or text from stdin.
//!
//! Each file's format is detected from its content. In a directory, files of no known format
//! (READMEs, manifests) are listed as skipped; a file named explicitly must be of a known
//! format. Files are read whole: snapshots are megabytes, not gigabytes, and a cap guards
//! against the rest.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::ruleset::Ruleset;
use crate::source::{SourceMap, Span};
use crate::sources::{self, Sink};
use crate::touchpoint::{Observation, Touchpoint};

/// Largest input file read (bytes).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// An input that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: file is {size} bytes, more than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
    },
    /// The content is binary.
    #[error("{path}: binary content (a NUL byte at offset {offset}); markspace reads text outputs such as iptables-save")]
    Binary {
        /// The path.
        path: String,
        /// Offset of the first NUL.
        offset: usize,
    },
    /// No format recognised the content of a file given by name.
    #[error("{path}: unrecognised input format\n  = hint: supported formats: {formats}")]
    UnknownFormat {
        /// The path.
        path: String,
        /// The supported formats, listed.
        formats: String,
    },
}

/// Everything read from a node.
#[derive(Debug, Default)]
pub struct Node {
    /// The texts.
    pub sources: SourceMap,
    /// The netfilter model.
    pub ruleset: Ruleset,
    /// Mark touchpoints outside netfilter.
    pub touchpoints: Vec<Touchpoint>,
    /// Facts that are not operations.
    pub observations: Vec<(crate::source::SourceId, Observation)>,
    /// Problems found while parsing.
    pub diagnostics: Vec<Diagnostic>,
    /// Files in directories that no format recognised.
    pub skipped: Vec<String>,
    /// The detected format of each input, by display name.
    pub formats: Vec<(String, &'static str)>,
}

/// Collects inputs, then parses them into a [`Node`].
#[derive(Default)]
pub struct NodeLoader {
    sources: SourceMap,
    sink: Sink,
    diagnostics: Vec<Diagnostic>,
    skipped: Vec<String>,
    formats: Vec<(String, &'static str)>,
}

impl NodeLoader {
    /// An empty loader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a text under a display name. `explicit` says the user named it (an unknown format is
    /// then an error rather than a skip).
    pub fn add_text(
        &mut self,
        name: &str,
        bytes: Vec<u8>,
        explicit: bool,
    ) -> Result<(), InputError> {
        if let Some(offset) = memchr::memchr(0, &bytes[..bytes.len().min(1 << 16)]) {
            return Err(InputError::Binary {
                path: name.to_string(),
                offset,
            });
        }
        let (text, bad_utf8) = match String::from_utf8(bytes) {
            Ok(t) => (t, None),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
            }
        };
        let Some(format) = sources::detect(&text) else {
            if explicit {
                return Err(InputError::UnknownFormat {
                    path: name.to_string(),
                    formats: sources::ALL
                        .iter()
                        .map(|f| format!("{} ({})", f.name, f.description))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            self.skipped.push(name.to_string());
            return Ok(());
        };
        let id = self.sources.add(name, text);
        if let Some(at) = bad_utf8 {
            let text = &self.sources.file(id).text;
            let line = 1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..at.min(text.len())])
                .count() as u32;
            self.diagnostics.push(
                Diagnostic::warning(
                    Span {
                        source: id,
                        line,
                        start: at as u32,
                        len: 1,
                    },
                    "invalid UTF-8; the bytes were replaced with U+FFFD",
                )
                .with_hint("comments in another encoding do not change the analysis"),
            );
        }
        let text = &self.sources.file(id).text;
        let diags = (format.parse)(text, id, name, &mut self.sink);
        self.diagnostics.extend(diags);
        self.formats.push((name.to_string(), format.name));
        Ok(())
    }

    /// Adds a file, a directory (recursively, in name order) or `-` for stdin.
    pub fn add_path(&mut self, path: &Path) -> Result<(), InputError> {
        if path == Path::new("-") {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut buf)
                .map_err(|source| InputError::Io {
                    path: "-".into(),
                    source,
                })?;
            if buf.len() as u64 > MAX_FILE_BYTES {
                return Err(InputError::TooLarge {
                    path: "-".into(),
                    size: buf.len() as u64,
                });
            }
            return self.add_text("-", buf, true);
        }
        let display = path.display().to_string();
        let meta = fs::metadata(path).map_err(|source| InputError::Io {
            path: display.clone(),
            source,
        })?;
        if meta.is_dir() {
            for file in walk(path).map_err(|source| InputError::Io {
                path: display.clone(),
                source,
            })? {
                // The collector's own record, not node state.
                if file.file_name().is_some_and(|n| n == "manifest.json") {
                    continue;
                }
                self.add_file(&file, false)?;
            }
            return Ok(());
        }
        self.add_file(path, true)
    }

    fn add_file(&mut self, path: &Path, explicit: bool) -> Result<(), InputError> {
        let display = path.display().to_string();
        let size = fs::metadata(path)
            .map_err(|source| InputError::Io {
                path: display.clone(),
                source,
            })?
            .len();
        if size > MAX_FILE_BYTES {
            return Err(InputError::TooLarge {
                path: display,
                size,
            });
        }
        let bytes = fs::read(path).map_err(|source| InputError::Io {
            path: display.clone(),
            source,
        })?;
        if !explicit && memchr::memchr(0, &bytes[..bytes.len().min(1 << 16)]).is_some() {
            self.skipped.push(display);
            return Ok(());
        }
        self.add_text(&display, bytes, explicit)
    }

    /// Finishes parsing.
    pub fn finish(self) -> Node {
        Node {
            sources: self.sources,
            ruleset: self.sink.ruleset.finish(),
            touchpoints: self.sink.touchpoints,
            observations: self.sink.observations,
            diagnostics: self.diagnostics,
            skipped: self.skipped,
            formats: self.formats,
        }
    }
}

/// Files below a directory, sorted, following no symlinks out of it.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
