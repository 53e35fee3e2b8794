//! Reading a node's inputs: single files, directories of files, or text from stdin.
//!
//! Each file's format is detected from its content. In a directory, files of no known format
//! (READMEs, manifests) are listed as skipped; a file named explicitly must be of a known
//! format. Files are read whole: snapshots are megabytes, not gigabytes, and a cap guards
//! against the rest.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Level};
use crate::model::Node;
use crate::packet::DetailDecoder;
use crate::ruleset::Ruleset;
use crate::source::{SourceId, SourceMap, Span};
use crate::sources::{self, Sink};

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
    /// A binary input of a known format that cannot be read.
    #[error("{path}: byte {offset}: {message}\n  = hint: {format} inputs are read as they are built (for eBPF, `clang -target bpf -c`); is the file complete?")]
    Decode {
        /// The path.
        path: String,
        /// The binary format.
        format: &'static str,
        /// The byte offset of the problem.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// A bundle holds several nodes; one must be chosen.
    #[error("{path}: this bundle holds {count} nodes ({nodes}); audit one node's directory\n  = hint: for example `markspace audit {first}`")]
    ManyNodes {
        /// The bundle.
        path: String,
        /// How many nodes.
        count: usize,
        /// Their directories.
        nodes: String,
        /// The first one.
        first: String,
    },
    /// Archives hold several nodes; an audit reads one.
    #[error("{path}: its archives hold {count} nodes ({nodes}); an audit would merge them into one\n  = hint: compare them with `markspace fleet {path}`")]
    ManyArchiveNodes {
        /// The archive, or the directory of archives.
        path: String,
        /// How many nodes.
        count: usize,
        /// Their names.
        nodes: String,
    },
    /// An archive could not be read, or passed a limit.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// No format recognised the content of a file given by name.
    #[error("{path}: unrecognised input format\n  = hint: supported formats: {formats}")]
    UnknownFormat {
        /// The path.
        path: String,
        /// The supported formats, listed.
        formats: String,
    },
}

/// How malformed lines are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leniency {
    /// Machine output (a whole `iptables-save`, `nft -j`, a `collect` snapshot) is strict: a
    /// malformed line is an error and nothing is audited. Pastes and fragments (prompts,
    /// decorations, several commands, bare rules) are lenient.
    #[default]
    Auto,
    /// Every input is strict.
    Strict,
    /// Every input is lenient: a malformed line is a warning and is skipped.
    Lenient,
}

/// Texts larger than this are machine output, never split as pastes (pastes are small, and a
/// large node's dump must not pay for the scan).
const PASTE_MAX_BYTES: usize = 4 << 20;

/// Collects inputs, then parses them into a [`Node`].
#[derive(Default)]
pub struct NodeLoader {
    leniency: Leniency,
    skipped_lines: usize,
    sources: SourceMap,
    sink: Sink,
    diagnostics: Vec<Diagnostic>,
    skipped: Vec<String>,
    formats: Vec<(String, &'static str)>,
    bundles: Vec<String>,
    manifests: Vec<(String, Vec<u8>)>,
    source_formats: Vec<&'static str>,
    rule_decoders: Vec<Option<DetailDecoder>>,
}

impl NodeLoader {
    /// An empty loader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how malformed lines are treated (default [`Leniency::Auto`]).
    pub fn set_leniency(&mut self, leniency: Leniency) {
        self.leniency = leniency;
    }

    /// Adds a text under a display name. `explicit` says the user named it (an unknown format is
    /// then an error rather than a skip).
    pub fn add_text(
        &mut self,
        name: &str,
        bytes: Vec<u8>,
        explicit: bool,
    ) -> Result<(), InputError> {
        if let Some(binary) = sources::detect_binary(&bytes) {
            return self.add_binary(name, &bytes, binary);
        }
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
        // A paste (prompts, decorations, several commands) is read section by section; plain
        // machine output whole and strictly; a fragment no detector claims, leniently.
        let paste = (text.len() <= PASTE_MAX_BYTES)
            .then(|| sources::paste::split(&text))
            .filter(|p| p.decorated);
        let whole = if paste.is_none() {
            sources::detect(&text).map(|f| (f, false))
        } else {
            None
        };
        let whole = whole.or_else(|| {
            if paste.is_some() {
                return None;
            }
            sources::paste::fragment_format(&text)
                .and_then(sources::by_name)
                .map(|f| (f, true))
        });
        if let Some(paste) = paste {
            return self.add_paste(name, text, paste, bad_utf8, explicit);
        }
        let Some((format, fragment)) = whole else {
            // Prose before a paste (`for example, if existing ip rules:`).
            if let Some((masked, line, format)) = (text.len() <= PASTE_MAX_BYTES)
                .then(|| sources::paste::after_prose(&text))
                .flatten()
            {
                self.skipped.push(format!(
                    "{name}:1-{}: no format reads these lines",
                    line - 1
                ));
                let lenient = self.leniency != Leniency::Strict;
                let id = self.sources.add(name, masked);
                self.parse_one(id, name, format, true, lenient);
                return Ok(());
            }
            return self.unknown(name, explicit);
        };
        let lenient = match self.leniency {
            Leniency::Auto => fragment,
            Leniency::Strict => false,
            Leniency::Lenient => true,
        };
        let id = self.sources.add(name, text);
        self.utf8_warning(id, bad_utf8);
        self.parse_one(id, name, format, fragment, lenient);
        Ok(())
    }

    /// Adds a binary input: its listing is the text the model points into.
    fn add_binary(
        &mut self,
        name: &str,
        bytes: &[u8],
        binary: &'static sources::Binary,
    ) -> Result<(), InputError> {
        let text = (binary.decode)(bytes).map_err(|(offset, message)| InputError::Decode {
            path: name.to_string(),
            format: binary.name,
            offset,
            message,
        })?;
        let Some(format) = sources::by_name(binary.listing) else {
            return self.unknown(name, true);
        };
        let id = self.sources.add(name, text);
        let lenient = self.leniency == Leniency::Lenient;
        self.parse_one(id, name, format, false, lenient);
        Ok(())
    }

    fn unknown(&mut self, name: &str, explicit: bool) -> Result<(), InputError> {
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
        Ok(())
    }

    fn utf8_warning(&mut self, id: SourceId, bad_utf8: Option<usize>) {
        let Some(at) = bad_utf8 else { return };
        let text = &self.sources.file(id).text;
        let line =
            1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..at.min(text.len())]).count() as u32;
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

    /// Parses one source; a lenient read turns each malformed line into a warning that says the
    /// line was skipped, and counts it.
    fn parse_one(
        &mut self,
        id: SourceId,
        name: &str,
        format: &'static sources::Format,
        fragment: bool,
        lenient: bool,
    ) {
        let text = &self.sources.file(id).text;
        self.sink.fragment = fragment;
        let diags = (format.parse)(text, id, name, &mut self.sink);
        self.sink.fragment = false;
        if fragment {
            self.sink.ruleset.mark_partial(id);
        }
        let mut last_line = None;
        for mut d in diags {
            if lenient && d.level == Level::Error {
                d.level = Level::Warning;
                d.message = format!(
                    "{}; line skipped (read leniently: {name} is a paste)",
                    d.message
                );
                if last_line != Some(d.span.line) {
                    self.skipped_lines += 1;
                    last_line = Some(d.span.line);
                }
            }
            self.diagnostics.push(d);
        }
        self.formats.push((name.to_string(), format.name));
        self.source_formats.push(format.name);
        self.rule_decoders.push(format.details);
    }

    /// Reads a paste: each section by its own format (consecutive sections of one format
    /// together), sections no format claims noted with their command.
    fn add_paste(
        &mut self,
        name: &str,
        text: String,
        paste: sources::paste::Paste,
        bad_utf8: Option<usize>,
        explicit: bool,
    ) -> Result<(), InputError> {
        let lenient = self.leniency != Leniency::Strict;
        let mut groups: Vec<(&'static sources::Format, String)> = Vec::new();
        let mut notes = Vec::new();
        for section in paste.sections {
            if !section.has_content {
                continue;
            }
            // A file the user printed (`git grep X ip-xfrm-policy.md`) is what its name says;
            // a command's output is judged by its content first.
            let named = section
                .hint
                .filter(|_| section.reads_files)
                .and_then(sources::by_name);
            let format = named
                .or_else(|| sources::detect(&section.text))
                .or_else(|| section.hint.and_then(sources::by_name))
                .or_else(|| {
                    sources::paste::fragment_format(&section.text).and_then(sources::by_name)
                });
            let (section, format) = match format {
                Some(f) => (section, Some(f)),
                None => match sources::paste::after_prose(&section.text) {
                    Some((text, line, f)) => {
                        notes.push(format!(
                            "{name}:{}-{}: no format reads these lines",
                            section.line,
                            line - 1
                        ));
                        (
                            sources::paste::Section {
                                text,
                                line: section.line,
                                ..section
                            },
                            Some(f),
                        )
                    }
                    None => (section, None),
                },
            };
            let Some(format) = format else {
                notes.push(match &section.command {
                    Some(c) => format!(
                        "{name}:{} (output of `{c}`): no format reads it",
                        section.line
                    ),
                    None => format!("{name}:{}: no format reads these lines", section.line),
                });
                continue;
            };
            match groups.last_mut() {
                Some((f, t)) if std::ptr::eq(*f, format) => {
                    // Both texts hold every line up to their own, the lines before each
                    // empty: drop the later one's empty lines that `t` already holds.
                    let held = memchr::memchr_iter(b'\n', t.as_bytes()).count();
                    t.push_str(section.text.get(held..).unwrap_or(""));
                }
                _ => groups.push((format, section.text)),
            }
        }
        if groups.is_empty() {
            // Nothing of the file is read: one note for the whole file, not one per section.
            return self.unknown(name, explicit);
        }
        // The line of invalid UTF-8, in the paste's lines (the sections keep them).
        let bad_line = bad_utf8.map(|at| line_of(&text, at));
        drop(text);
        for (k, (format, t)) in groups.into_iter().enumerate() {
            let id = self.sources.add(name, t);
            if k == 0 {
                if let Some(line) = bad_line {
                    let t = &self.sources.file(id).text;
                    let start = crate::source::Lines::new(t)
                        .nth(line.saturating_sub(1))
                        .map_or(0, |(_, s, _)| s);
                    self.utf8_warning(id, Some(start));
                }
            }
            self.parse_one(id, name, format, true, lenient);
        }
        self.skipped.extend(notes);
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
            let io = |source| InputError::Io {
                path: display.clone(),
                source,
            };
            let files = match bundle::recognise(path)? {
                Some(b) => {
                    self.bundles
                        .push(format!("{} ({})", b.kind, path.display()));
                    b.files
                }
                None => walk(path).map_err(io)?,
            };
            let (archives, files): (Vec<PathBuf>, Vec<PathBuf>) = files
                .into_iter()
                .partition(|f| crate::archive::kind(&f.display().to_string()).is_some());
            for file in files {
                // The collector's own record, not node state.
                if file.file_name().is_some_and(|n| n == "manifest.json") {
                    continue;
                }
                self.add_file(&file, false)?;
            }
            // Archives in the directory (an unzipped sysdump holds one bugtool tarball per
            // node): read when they hold one node between them, never merged when more.
            if !archives.is_empty() {
                let mut nodes = Vec::new();
                for a in &archives {
                    nodes.extend(archive_nodes(a)?);
                }
                self.add_one_of(&display, nodes)?;
            }
            return Ok(());
        }
        if crate::archive::kind(&display).is_some() {
            let nodes = archive_nodes(path)?;
            return self.add_one_of(&display, nodes);
        }
        self.add_file(path, true)
    }

    /// Adds the one node of `nodes`; several are an error naming them.
    fn add_one_of(
        &mut self,
        display: &str,
        nodes: Vec<crate::archive::ArchiveNode>,
    ) -> Result<(), InputError> {
        if nodes.len() > 1 {
            return Err(InputError::ManyArchiveNodes {
                path: display.to_string(),
                count: nodes.len(),
                nodes: nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for node in nodes {
            self.add_archive_node(node)?;
        }
        Ok(())
    }

    /// Adds the files of one node read from an archive ([`archive_nodes`]): each is read as a
    /// file of a directory is (of no known format: skipped with a note).
    pub fn add_archive_node(
        &mut self,
        node: crate::archive::ArchiveNode,
    ) -> Result<(), InputError> {
        self.bundles.push(format!("{} ({})", node.kind, node.name));
        if let Some(m) = node.manifest {
            self.manifests.push((node.name.clone(), m));
        }
        for file in node.files {
            self.add_text(&file.path, file.bytes, false)?;
        }
        Ok(())
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
        let bytes = read_file(path, size).map_err(|source| InputError::Io {
            path: display.clone(),
            source,
        })?;
        if !explicit
            && sources::detect_binary(&bytes).is_none()
            && memchr::memchr(0, &bytes[..bytes.len().min(1 << 16)]).is_some()
        {
            self.skipped.push(display);
            return Ok(());
        }
        self.add_text(&display, bytes, explicit)
    }

    /// Finishes parsing.
    pub fn finish(self) -> Node {
        let ruleset = self.sink.ruleset.finish();
        let diagnostics = without_twin_warnings(self.diagnostics, &ruleset);
        Node {
            sources: self.sources,
            ruleset,
            touchpoints: self.sink.touchpoints,
            observations: self.sink.observations,
            programs: self.sink.programs,
            diagnostics,
            skipped: self.skipped,
            skipped_lines: self.skipped_lines,
            formats: self.formats,
            bundles: self.bundles,
            manifests: self.manifests,
            source_formats: self.source_formats,
            rule_decoders: self.rule_decoders,
        }
    }
}

/// The start of the nft reader's warning that iptables-nft hides an xtables extension's
/// parameters (`sources::nft::build`).
const XT_HIDDEN: &str = "iptables-nft `xt ";

/// Drops the warnings about hidden xtables parameters of rules that are no longer in the model:
/// the nft copies of chains that the node's `iptables-save` also holds, whose rules the model
/// reads from `iptables-save` instead (`Ruleset::finish`). Their warning would tell the user to
/// give `iptables-save`, which they did.
fn without_twin_warnings(diagnostics: Vec<Diagnostic>, ruleset: &Ruleset) -> Vec<Diagnostic> {
    if !diagnostics.iter().any(|d| d.message.starts_with(XT_HIDDEN)) {
        return diagnostics;
    }
    let kept: std::collections::HashSet<(u32, u32)> = ruleset
        .rules
        .iter()
        .map(|r| (r.span.source.0, r.span.start))
        .collect();
    diagnostics
        .into_iter()
        .filter(|d| {
            !d.message.starts_with(XT_HIDDEN) || kept.contains(&(d.span.source.0, d.span.start))
        })
        .collect()
}

/// Bundles users already have, recognised by their layout.
mod bundle {
    use std::io;
    use std::path::{Path, PathBuf};

    /// A recognised bundle: what it is and the files worth reading.
    pub(super) struct Bundle {
        pub(super) kind: &'static str,
        pub(super) files: Vec<PathBuf>,
    }

    /// sosreport puts command outputs under `sos_commands/<plugin>/`; these plugins hold the
    /// mark-relevant ones (`firewall_tables`: `nft -a list ruleset`, `iptables -t T -nvL`;
    /// `networking`: `ip rule`, `tc filter`, `ss`; `libreswan`: xfrm; `openvswitch`: flows).
    use crate::archive::SOS_PLUGINS;

    pub(super) fn recognise(dir: &Path) -> Result<Option<Bundle>, super::InputError> {
        let io = |source: io::Error| super::InputError::Io {
            path: dir.display().to_string(),
            source,
        };
        recognise_io(dir).map_err(io)?
    }

    /// The I/O part; the inner result carries the bundle-level error.
    fn recognise_io(dir: &Path) -> io::Result<Result<Option<Bundle>, super::InputError>> {
        let sos = dir.join("sos_commands");
        if sos.is_dir() {
            let mut files = Vec::new();
            for plugin in SOS_PLUGINS {
                let d = sos.join(plugin);
                if d.is_dir() {
                    files.extend(super::walk(&d)?);
                }
            }
            return Ok(Ok(Some(Bundle {
                kind: "sosreport",
                files,
            })));
        }
        // A cilium-bugtool directory (one node), or a sysdump holding one per Cilium pod.
        if is_bugtool(dir) {
            return Ok(Ok(Some(Bundle {
                kind: "cilium-bugtool",
                files: super::walk(&dir.join("cmd"))?,
            })));
        }
        let mut tools = Vec::new();
        for d in super::walk_dirs(dir, 2)? {
            if is_bugtool(&d) {
                tools.push(d);
            }
        }
        Ok(match tools.len() {
            0 => Ok(None),
            1 => Ok(Some(Bundle {
                kind: "cilium-sysdump",
                files: super::walk(&tools[0].join("cmd"))?,
            })),
            n => Err(super::InputError::ManyNodes {
                path: dir.display().to_string(),
                count: n,
                nodes: tools
                    .iter()
                    .map(|t| t.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                first: tools[0].display().to_string(),
            }),
        })
    }

    fn is_bugtool(d: &Path) -> bool {
        d.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("cilium-bugtool"))
            && d.join("cmd").is_dir()
    }
}

/// The nodes in an archive (`.tar.gz`, `.tgz`, `.tar`, `.zip`), read in memory within the
/// default [`crate::archive::Limits`]: each sosreport, cilium-bugtool or snapshot directory.
pub fn archive_nodes(path: &Path) -> Result<Vec<crate::archive::ArchiveNode>, InputError> {
    let entries = crate::archive::read(path, crate::archive::Limits::default())?;
    Ok(crate::archive::nodes(&path.display().to_string(), entries))
}

/// Directories below `dir` down to `depth` levels, sorted.
fn walk_dirs(dir: &Path, depth: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, level)) = stack.pop() {
        if level == depth {
            continue;
        }
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                out.push(e.path());
                stack.push((e.path(), level + 1));
            }
        }
    }
    out.sort();
    Ok(out)
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

/// The 1-based line of a byte offset.
fn line_of(text: &str, at: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..at.min(text.len())]).count()
}

/// Files at least this large are read by two threads at once.
const PARALLEL_READ_FROM: u64 = 8 << 20;

/// Reads a whole file. A large file is read in two halves on two threads: most of the cost of
/// reading 25 MB is the kernel faulting in fresh pages for it (about a fifth of a whole audit,
/// measured with `perf`), and two threads take those faults side by side. A file that changes
/// size while being read is read again the plain way.
fn read_file(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(len) = usize::try_from(size) else {
        return fs::read(path);
    };
    if size < PARALLEL_READ_FROM || cores < 2 {
        return fs::read(path);
    }
    let file = fs::File::open(path)?;
    let mut bytes = vec![0u8; len];
    let (first, second) = bytes.split_at_mut(len / 2);
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(|| file.read_exact_at(second, (len / 2) as u64));
        let mine = file.read_exact_at(first, 0);
        (mine, other.join())
    });
    let mut probe = [0u8; 1];
    match (a, b) {
        (Ok(()), Ok(Ok(()))) if file.read_at(&mut probe, size)? == 0 => Ok(bytes),
        _ => fs::read(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random pastes (prompts, fences, fragments of every format) are read without a panic,
    /// leniently and strictly, and the model builds.
    #[test]
    fn random_pastes_load_without_panics() {
        for (k, text) in sources::paste::random_pastes(1500).into_iter().enumerate() {
            for leniency in [Leniency::Auto, Leniency::Strict, Leniency::Lenient] {
                let mut loader = NodeLoader::new();
                loader.set_leniency(leniency);
                let _ = loader.add_text(&format!("paste{k}"), text.clone().into_bytes(), false);
                let node = loader.finish();
                // Auto keeps machine output strict; --lenient never leaves an error.
                if leniency == Leniency::Lenient {
                    assert!(
                        node.diagnostics.iter().all(|d| d.level != Level::Error),
                        "{text:?}"
                    );
                }
            }
        }
    }

    /// The two-thread read returns the file's bytes, at sizes around the threshold and with an
    /// odd length (the halves differ by one byte).
    #[test]
    fn parallel_read_returns_the_file() {
        let dir = std::env::temp_dir().join(format!("markspace-read-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        for size in [
            0,
            1,
            PARALLEL_READ_FROM - 1,
            PARALLEL_READ_FROM,
            PARALLEL_READ_FROM + 3,
        ] {
            let path = dir.join(format!("f{size}"));
            let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            fs::write(&path, &bytes).expect("write");
            let read = read_file(&path, size).expect("read");
            assert!(read == bytes, "size {size}");
            // A size that is no longer true (the file changed after its metadata was read)
            // falls back to a plain read of what is there now.
            let read = read_file(&path, size + 10).expect("read");
            assert!(read == bytes, "stale size {size}");
            if size > 0 {
                let read = read_file(&path, size - 1).expect("read");
                assert!(read == bytes, "grown file {size}");
            }
        }
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
