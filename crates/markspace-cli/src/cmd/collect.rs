//! `markspace collect`: a read-only capture of this node.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use markspace::collect::{Collector, Limits, Manifest};

use crate::cli::CollectArgs;

pub(crate) fn run(args: CollectArgs) -> anyhow::Result<u8> {
    let out = match &args.out {
        Some(dir) => {
            prepare(dir, args.force)?;
            dir.clone()
        }
        None => default_dir()?,
    };
    let manifest = collect_into(&out, args.timeout)?;
    let failed = manifest
        .steps
        .iter()
        .filter(|s| matches!(s.status, "failed" | "timeout"))
        .count();
    let missing = manifest
        .steps
        .iter()
        .filter(|s| s.status == "missing")
        .count();
    eprintln!(
        "markspace: collected {} command(s) into {} in {} ms ({} failed, {} tool(s) missing; see manifest.json)",
        manifest.steps.len(),
        out.display(),
        manifest.duration_ms,
        failed,
        missing
    );
    Ok(0)
}

/// A new directory named after the host and the UTC time, never one that exists.
fn default_dir() -> anyhow::Result<PathBuf> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let time: String = markspace::collect::rfc3339(std::time::SystemTime::now())
        .chars()
        .filter(|c| *c != ':' && *c != '-')
        .collect();
    let base = format!(
        "markspace-snapshot-{}-{time}",
        if host.is_empty() { "host" } else { &host }
    );
    for n in 0..100 {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = PathBuf::from(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!("could not create a fresh snapshot directory named {base}-N; give one with --out")
}

/// Makes sure `dir` holds nothing but what this collection writes: an empty or missing
/// directory is fine; with `force`, an earlier snapshot's files (as its manifest lists them)
/// are removed; anything else is refused, so an audit never reads two nodes' files as one.
fn prepare(dir: &Path, force: bool) -> anyhow::Result<()> {
    let entries: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        anyhow::bail!(
            "{} is not empty ({} entries); an audit of it would mix this node's files with what is there. Choose a new --out, leave --out out (a fresh directory named with the host and time is made), or pass --force to replace an earlier snapshot there",
            dir.display(),
            entries.len()
        );
    }
    let mut ours: Vec<String> = vec!["manifest.json".into()];
    if let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
            for step in json["steps"].as_array().into_iter().flatten() {
                if let Some(f) = step["file"].as_str() {
                    if !f.contains('/') && !f.starts_with('.') {
                        ours.push(f.to_string());
                    }
                }
            }
        }
    }
    let mut foreign: Vec<&String> = entries.iter().filter(|e| !ours.contains(e)).collect();
    foreign.sort();
    if !foreign.is_empty() || !entries.iter().any(|e| e == "manifest.json") {
        anyhow::bail!(
            "{} holds files that no earlier markspace snapshot there wrote ({}); --force only removes a snapshot's own files. Choose another --out",
            dir.display(),
            foreign
                .iter()
                .take(5)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for e in &entries {
        std::fs::remove_file(dir.join(e))
            .with_context(|| format!("removing {} from {}", e, dir.display()))?;
    }
    Ok(())
}

/// Collects into a directory, with a progress line per step on a terminal.
pub(crate) fn collect_into(dir: &Path, timeout: u64) -> anyhow::Result<Manifest> {
    let tty = std::io::stderr().is_terminal();
    let mut progress = |step: &str| {
        if tty {
            eprint!("\r\x1b[2Kcollecting: {step}");
        }
    };
    let limits = Limits {
        timeout: Duration::from_secs(timeout.max(1)),
        ..Limits::default()
    };
    let collector = Collector::new(dir, limits, &mut progress)
        .with_context(|| format!("creating {}", dir.display()))?;
    let manifest = collector
        .collect_all()
        .with_context(|| format!("writing the snapshot in {}", dir.display()))?;
    if tty {
        eprint!("\r\x1b[2K");
    }
    // A command that failed or timed out leaves a hole in the snapshot: say which, so that an
    // audit of it is not read as complete.
    for step in &manifest.steps {
        if !matches!(step.status, "failed" | "timeout") {
            continue;
        }
        let argv = step.argv.join(" ");
        let consequence = if argv == "nft list tables" {
            ": native nftables tables were not collected"
        } else {
            ""
        };
        eprintln!(
            "markspace: warning: `{argv}` {}{consequence}{}",
            if step.status == "timeout" {
                "timed out"
            } else {
                "failed"
            },
            step.note
                .as_deref()
                .and_then(|n| n.lines().next())
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
    Ok(manifest)
}
