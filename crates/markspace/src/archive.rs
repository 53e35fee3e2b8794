//! Archives read in memory, never unpacked to disk: `.tar.gz`, `.tgz`, `.tar` and `.zip`, with
//! the archives inside them (a Cilium sysdump zip holds one `cilium-bugtool-*.tar.gz` per
//! Cilium pod; a sosreport is a `.tar.gz`, or `.tar.xz`, which is not read).
//!
//! What is kept: every regular file whose first 64 KiB hold no NUL byte (text), under its path
//! inside the archive; a nested archive's files under `outer/path/inner.tar.gz/…`. In a
//! sosreport only the `sos_commands` plugins that hold mark-relevant outputs are kept (as for a
//! directory). Limits against archive bombs ([`Limits`]): the bytes decompressed over all levels,
//! the entries over all levels and the nesting depth; past any of them the archive is refused
//! with an error naming it and the limit, never read in part.
//!
//! [`nodes`] then splits the files into the nodes they describe: each sosreport, each
//! cilium-bugtool, or each top-level directory of an archive of several snapshot directories.

use std::io::{Read, Seek};
use std::path::Path;

/// Limits over one archive and everything nested in it.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes decompressed, over all entries and levels (skipped entries count too).
    pub max_bytes: u64,
    /// Entries, over all levels.
    pub max_entries: usize,
    /// Archives inside archives: 1 = the archive itself only.
    pub max_depth: usize,
}

impl Default for Limits {
    /// 1 GiB (the limit on one input file), 200,000 entries (a sosreport holds tens of
    /// thousands), depth 3 (a sysdump zip, its bugtool tarballs, one more).
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            max_entries: 200_000,
            max_depth: 3,
        }
    }
}

/// A file read from an archive.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its path inside the archive (nested archives add their own path as a directory).
    pub path: String,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// An archive that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Reading failed (I/O, or a corrupt gzip or tar stream).
    #[error("{path}: {message}")]
    Read {
        /// The archive, and the entry when known.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A limit was passed.
    #[error("{path}: {what} is more than the limit of {limit} (an archive bomb, or a bundle far larger than a node's rules)\n  = hint: unpack what you need and audit the directory")]
    Limit {
        /// The archive or entry.
        path: String,
        /// Which limit.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
}

/// The kinds of archive read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `.tar.gz`, `.tgz`.
    TarGz,
    /// `.tar`.
    Tar,
    /// `.zip`.
    Zip,
}

/// The kind of archive a file name says, if any.
pub fn kind(name: &str) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Some(Kind::TarGz)
    } else if lower.ends_with(".tar") {
        Some(Kind::Tar)
    } else if lower.ends_with(".zip") {
        Some(Kind::Zip)
    } else {
        None
    }
}

/// Reads every text file of the archive at `path` and of the archives inside it.
pub fn read(path: &Path, limits: Limits) -> Result<Vec<Entry>, ArchiveError> {
    let display = path.display().to_string();
    let kind = kind(&display).ok_or_else(|| ArchiveError::Read {
        path: display.clone(),
        message: "not a .tar.gz, .tgz, .tar or .zip file".into(),
    })?;
    let file = std::fs::File::open(path).map_err(|e| ArchiveError::Read {
        path: display.clone(),
        message: e.to_string(),
    })?;
    let mut reader = Reader {
        limits,
        bytes: 0,
        entries: 0,
        out: Vec::new(),
    };
    reader.archive(&display, "", kind, Source::File(file), 1)?;
    Ok(reader.out)
}

/// An archive's bytes: a file on disk, or an entry read into memory.
enum Source {
    File(std::fs::File),
    Memory(Vec<u8>),
}

/// Walks archives, counting against the limits.
struct Reader {
    limits: Limits,
    bytes: u64,
    entries: usize,
    out: Vec<Entry>,
}

impl Reader {
    /// Reads one archive; its entries are stored under `prefix`.
    fn archive(
        &mut self,
        display: &str,
        prefix: &str,
        kind: Kind,
        source: Source,
        depth: usize,
    ) -> Result<(), ArchiveError> {
        if depth > self.limits.max_depth {
            return Err(ArchiveError::Limit {
                path: display.to_string(),
                what: "the nesting of archives",
                limit: self.limits.max_depth as u64,
            });
        }
        match (kind, source) {
            (Kind::TarGz, Source::File(f)) => {
                self.tar(display, prefix, flate2::read::GzDecoder::new(f), depth)
            }
            (Kind::TarGz, Source::Memory(b)) => self.tar(
                display,
                prefix,
                flate2::read::GzDecoder::new(std::io::Cursor::new(b)),
                depth,
            ),
            (Kind::Tar, Source::File(f)) => self.tar(display, prefix, f, depth),
            (Kind::Tar, Source::Memory(b)) => {
                self.tar(display, prefix, std::io::Cursor::new(b), depth)
            }
            (Kind::Zip, Source::File(f)) => self.zip(display, prefix, f, depth),
            (Kind::Zip, Source::Memory(b)) => {
                self.zip(display, prefix, std::io::Cursor::new(b), depth)
            }
        }
    }

    fn tar<R: Read>(
        &mut self,
        display: &str,
        prefix: &str,
        r: R,
        depth: usize,
    ) -> Result<(), ArchiveError> {
        let err = read_error::<std::io::Error>(display);
        let mut archive = tar::Archive::new(r);
        for entry in archive.entries().map_err(err)? {
            let mut entry = entry.map_err(err)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry.path().map_err(err)?.to_string_lossy().into_owned();
            self.entry(display, prefix, &name, &mut entry, depth)?;
        }
        Ok(())
    }

    fn zip<R: Read + Seek>(
        &mut self,
        display: &str,
        prefix: &str,
        r: R,
        depth: usize,
    ) -> Result<(), ArchiveError> {
        let err = read_error::<zip::result::ZipError>(display);
        let mut archive = zip::ZipArchive::new(r).map_err(err)?;
        for i in 0..archive.len() {
            let mut file = archive.by_index(i).map_err(err)?;
            if !file.is_file() {
                continue;
            }
            // The name as stored, made relative (`enclosed_name` refuses `..` and absolute
            // paths: such an entry is skipped, it names no node file).
            let Some(name) = file.enclosed_name() else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            self.entry(display, prefix, &name, &mut file, depth)?;
        }
        Ok(())
    }

    /// One file of an archive: kept when it is text, read as an archive when it is one.
    fn entry(
        &mut self,
        display: &str,
        prefix: &str,
        name: &str,
        r: &mut dyn Read,
        depth: usize,
    ) -> Result<(), ArchiveError> {
        let name = name.trim_start_matches("./");
        let path = format!("{prefix}{name}");
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::Limit {
                path: display.to_string(),
                what: "the number of entries",
                limit: self.limits.max_entries as u64,
            });
        }
        if irrelevant(&path) {
            return Ok(());
        }
        let left = self.limits.max_bytes.saturating_sub(self.bytes);
        let mut bytes = Vec::new();
        r.take(left + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ArchiveError::Read {
                path: format!("{display}: {path}"),
                message: e.to_string(),
            })?;
        self.bytes += bytes.len() as u64;
        if bytes.len() as u64 > left {
            return Err(ArchiveError::Limit {
                path: format!("{display}: {path}"),
                what: "the data decompressed",
                limit: self.limits.max_bytes,
            });
        }
        if let Some(k) = kind(name) {
            let inner = format!("{display}: {path}");
            return self.archive(
                &inner,
                &format!("{path}/"),
                k,
                Source::Memory(bytes),
                depth + 1,
            );
        }
        if memchr::memchr(0, &bytes[..bytes.len().min(1 << 16)]).is_some() {
            return Ok(());
        }
        self.out.push(Entry { path, bytes });
        Ok(())
    }
}

/// The error of a corrupt archive stream.
fn read_error<E: std::fmt::Display>(display: &str) -> impl Fn(E) -> ArchiveError + Copy + '_ {
    move |e| ArchiveError::Read {
        path: display.to_string(),
        message: e.to_string(),
    }
}

/// sosreport plugins whose outputs are mark-relevant (as `snapshot` reads a directory).
pub(crate) const SOS_PLUGINS: &[&str] = &[
    "firewall_tables",
    "networking",
    "libreswan",
    "openvswitch",
    "ipvs",
    "kernel",
    "wireguard",
];

/// Entries never worth keeping: a sosreport's other plugins, its logs and reports.
fn irrelevant(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.windows(2).any(|w| {
        (w[0] == "sos_commands" && !SOS_PLUGINS.contains(&w[1]))
            || w[0] == "sos_logs"
            || w[0] == "sos_reports"
    })
}

/// The files of one node found in an archive.
#[derive(Clone, Debug)]
pub struct ArchiveNode {
    /// `archive.tgz` or `archive.tgz: path/inside` (the node's directory).
    pub name: String,
    /// `sosreport`, `cilium-bugtool` or `snapshot`.
    pub kind: &'static str,
    /// Its files (display name, content).
    pub files: Vec<Entry>,
    /// The `manifest.json` of a collected snapshot, when it has one.
    pub manifest: Option<Vec<u8>>,
}

/// The nodes in an archive's files: each sosreport (the directory holding `sos_commands`),
/// each cilium-bugtool (a `cilium-bugtool*` directory holding `cmd/`, only its `cmd/` files);
/// otherwise, when every file sits below one of several top-level directories (after a
/// single common one), each of them; otherwise the whole archive is one node.
pub fn nodes(archive: &str, entries: Vec<Entry>) -> Vec<ArchiveNode> {
    let mut bundles: Vec<(String, &'static str)> = Vec::new();
    for e in &entries {
        let parts: Vec<&str> = e.path.split('/').collect();
        for (i, w) in parts.windows(2).enumerate() {
            let root = match (w[0], w[1]) {
                ("sos_commands", _) => Some((parts[..i].join("/"), "sosreport")),
                (b, "cmd") if b.starts_with("cilium-bugtool") && kind(b).is_none() => {
                    Some((parts[..=i].join("/"), "cilium-bugtool"))
                }
                _ => None,
            };
            if let Some(r) = root {
                if !bundles.contains(&r) {
                    bundles.push(r);
                }
                break;
            }
        }
    }
    let name = |root: &str| {
        if root.is_empty() {
            archive.to_string()
        } else {
            format!("{archive}: {root}")
        }
    };
    if !bundles.is_empty() {
        bundles.sort();
        let mut out: Vec<ArchiveNode> = bundles
            .iter()
            .map(|(root, kind)| ArchiveNode {
                name: name(root),
                kind,
                files: Vec::new(),
                manifest: None,
            })
            .collect();
        for e in entries {
            for (k, (root, kind)) in bundles.iter().enumerate() {
                let inside = match *kind {
                    "sosreport" => format!(
                        "{root}{}sos_commands/",
                        if root.is_empty() { "" } else { "/" }
                    ),
                    _ => format!("{root}/cmd/"),
                };
                if e.path.starts_with(&inside) {
                    out[k].files.push(named(archive, e));
                    break;
                }
            }
        }
        return out;
    }
    // Snapshot directories: strip one common top directory, then split by the next one when
    // every file is below one of at least two.
    let common = entries
        .first()
        .and_then(|e| e.path.split_once('/'))
        .map(|(top, _)| format!("{top}/"))
        .filter(|top| entries.iter().all(|e| e.path.starts_with(top.as_str())))
        .unwrap_or_default();
    let mut groups: Vec<String> = Vec::new();
    let mut nested = true;
    for e in &entries {
        match e.path[common.len()..].split_once('/') {
            Some((dir, _)) => {
                let g = format!("{common}{dir}");
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
            None => nested = false,
        }
    }
    if nested && groups.len() >= 2 {
        groups.sort();
        let mut out: Vec<ArchiveNode> = groups
            .iter()
            .map(|g| ArchiveNode {
                name: name(g),
                kind: "snapshot",
                files: Vec::new(),
                manifest: None,
            })
            .collect();
        for e in entries {
            if let Some(k) = groups
                .iter()
                .position(|g| e.path.starts_with(&format!("{g}/")))
            {
                push_file(&mut out[k], archive, e);
            }
        }
        return out;
    }
    let mut node = ArchiveNode {
        name: archive.to_string(),
        kind: "snapshot",
        files: Vec::new(),
        manifest: None,
    };
    for e in entries {
        push_file(&mut node, archive, e);
    }
    vec![node]
}

/// A snapshot's file, or its manifest.
fn push_file(node: &mut ArchiveNode, archive: &str, e: Entry) {
    if e.path.rsplit('/').next() == Some("manifest.json") {
        node.manifest = Some(e.bytes);
    } else {
        node.files.push(named(archive, e));
    }
}

/// An entry named for diagnostics: `archive.tgz:path/inside`.
fn named(archive: &str, e: Entry) -> Entry {
    Entry {
        path: format!("{archive}:{}", e.path),
        bytes: e.bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{tar_gz as targz, zip as zipped};

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_a_sysdump_zip_with_nested_bugtool_tarballs() {
        let a = targz(&[
            (
                "cilium-bugtool-a/cmd/iptables-save--c.md",
                b"*filter\nCOMMIT\n",
            ),
            (
                "cilium-bugtool-a/cmd/ip-rule.md",
                b"0: from all lookup local\n",
            ),
            ("cilium-bugtool-a/conf/x.bin", b"\0\0\0"),
        ]);
        let b = targz(&[(
            "cilium-bugtool-b/cmd/ip-rule.md",
            b"0: from all lookup local\n",
        )]);
        let sysdump = zipped(&[
            ("sysdump/cilium-bugtool-a.tar.gz", &a),
            ("sysdump/cilium-bugtool-b.tar.gz", &b),
            ("sysdump/k8s-nodes.yaml", b"items: []\n"),
        ]);
        let dir = tempfile_dir();
        let p = write(&dir, "sysdump.zip", &sysdump);
        let entries = read(&p, Limits::default()).unwrap();
        // Text kept, binary dropped, nested paths below the inner archive's name.
        assert!(entries
            .iter()
            .any(|e| e.path == "sysdump/cilium-bugtool-a.tar.gz/cilium-bugtool-a/cmd/ip-rule.md"));
        assert!(!entries.iter().any(|e| e.path.ends_with("x.bin")));
        let nodes = nodes("s.zip", entries);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].kind, "cilium-bugtool");
        assert_eq!(
            nodes[0].name,
            "s.zip: sysdump/cilium-bugtool-a.tar.gz/cilium-bugtool-a"
        );
        assert_eq!(nodes[0].files.len(), 2);
        assert_eq!(nodes[1].files.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_a_sosreport_tarball_keeping_only_relevant_plugins() {
        let sos = targz(&[
            (
                "sosreport-h-1/sos_commands/networking/ip_-4_rule_list",
                b"0: from all lookup local\n",
            ),
            (
                "sosreport-h-1/sos_commands/firewall_tables/iptables_-vnxL",
                b"Chain INPUT (policy ACCEPT)\n",
            ),
            ("sosreport-h-1/sos_commands/yum/yum_list", b"lots\n"),
            ("sosreport-h-1/etc/hostname", b"h\n"),
        ]);
        let dir = tempfile_dir();
        let p = write(&dir, "sosreport-h-1.tar.gz", &sos);
        let entries = read(&p, Limits::default()).unwrap();
        assert!(!entries.iter().any(|e| e.path.contains("yum")));
        let nodes = nodes("sos.tgz", entries);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].kind, "sosreport");
        let names: Vec<&str> = nodes[0].files.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "sos.tgz:sosreport-h-1/sos_commands/networking/ip_-4_rule_list",
                "sos.tgz:sosreport-h-1/sos_commands/firewall_tables/iptables_-vnxL"
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn splits_an_archive_of_snapshot_directories() {
        let t = targz(&[
            ("nodes/a/iptables-save.txt", b"*filter\nCOMMIT\n"),
            ("nodes/a/manifest.json", b"{}"),
            ("nodes/b/iptables-save.txt", b"*filter\nCOMMIT\n"),
        ]);
        let dir = tempfile_dir();
        let p = write(&dir, "nodes.tgz", &t);
        let nodes = nodes("n.tgz", read(&p, Limits::default()).unwrap());
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].name, "n.tgz: nodes/a");
        assert!(nodes[0].manifest.is_some() && nodes[1].manifest.is_none());
        assert_eq!(nodes[0].files[0].path, "n.tgz:nodes/a/iptables-save.txt");
        // One directory is one node.
        let one = targz(&[("snap/iptables-save.txt", b"*filter\nCOMMIT\n")]);
        let p = write(&dir, "one.tgz", &one);
        assert_eq!(nodes_of(&p).len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn nodes_of(p: &Path) -> Vec<ArchiveNode> {
        nodes("x", read(p, Limits::default()).unwrap())
    }

    /// A gzip bomb (a few KiB expanding past the limit), too many entries and too deep a
    /// nesting are each refused with the limit named.
    #[test]
    fn refuses_bombs() {
        let dir = tempfile_dir();
        let zeros = vec![b'a'; 4 << 20];
        let bomb = targz(&[("big.txt", &zeros)]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let p = write(&dir, "bomb.tgz", &bomb);
        let limits = Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        };
        let e = read(&p, limits).unwrap_err().to_string();
        assert!(
            e.contains("the data decompressed is more than the limit of 1048576"),
            "{e}"
        );

        let many: Vec<(String, Vec<u8>)> = (0..20)
            .map(|i| (format!("f{i}"), b"x\n".to_vec()))
            .collect();
        let many: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let p = write(&dir, "many.zip", &zipped(&many));
        let limits = Limits {
            max_entries: 10,
            ..Limits::default()
        };
        let e = read(&p, limits).unwrap_err().to_string();
        assert!(
            e.contains("the number of entries is more than the limit of 10"),
            "{e}"
        );

        let mut nested = targz(&[("x.txt", b"x\n")]);
        for _ in 0..4 {
            nested = targz(&[("inner.tar.gz", &nested)]);
        }
        let p = write(&dir, "deep.tgz", &nested);
        let e = read(&p, Limits::default()).unwrap_err().to_string();
        assert!(
            e.contains("the nesting of archives is more than the limit of 3"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_archive_is_an_error() {
        let dir = tempfile_dir();
        let mut t = targz(&[("a.txt", b"hello\n")]);
        t.truncate(t.len() / 2);
        let p = write(&dir, "cut.tgz", &t);
        assert!(read(&p, Limits::default()).is_err());
        let p = write(&dir, "bad.zip", b"PK\x03\x04 not a zip");
        assert!(read(&p, Limits::default()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "markspace-archive-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
