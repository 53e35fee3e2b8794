//! `markspace collect`: a read-only capture of this node.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use markspace::collect::{Collector, Limits, Manifest};

use crate::cli::CollectArgs;

pub(crate) fn run(args: CollectArgs) -> anyhow::Result<u8> {
    let manifest = collect_into(&args.out, args.timeout)?;
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
        args.out.display(),
        manifest.duration_ms,
        failed,
        missing
    );
    Ok(0)
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
