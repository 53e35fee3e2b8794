//! `markspace fleet`: every node audited, grouped by bit layout (`markspace::fleet`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Args;
use markspace::analysis::Severity;
use markspace::fleet::{self, NodeAudit};

use crate::cli::{AuditFormat, FailOn};
use crate::output;

/// `markspace fleet` arguments.
#[derive(Debug, Args)]
pub(crate) struct FleetArgs {
    /// Node snapshots: directories, files or archives (`.tar.gz`, `.tgz`, `.tar`, `.zip`); a
    /// directory holding several node directories (as `audit --each` reads), an archive of
    /// several nodes (a Cilium sysdump) or a directory of such archives gives each node.
    #[arg(value_name = "SNAPSHOT", required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// Output format (text, json, markdown or html).
    #[arg(short = 'o', long, alias = "output", value_enum, default_value_t = AuditFormat::Text)]
    pub(crate) format: AuditFormat,
    /// Exit 1 when a node has findings at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub(crate) fail_on: FailOn,
    /// Also read registry entries from this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) registry: Option<PathBuf>,
}

pub(crate) fn run(args: FleetArgs) -> anyhow::Result<u8> {
    if matches!(args.format, AuditFormat::Sarif | AuditFormat::Bitfield) {
        anyhow::bail!("fleet writes text, json, markdown or html; SARIF and bitfield are per node (`audit NODE --format sarif`)");
    }
    let registry = super::load_registry(args.registry.as_deref())?;
    let mut nodes = Vec::new();
    for p in &args.paths {
        nodes.extend(super::node::expand(p)?);
    }
    // Each node on its own, on every core; the results keep the order given.
    let names: Vec<String> = nodes.iter().map(|n| n.name()).collect();
    let inputs: Vec<Mutex<Option<super::node::NodeInput>>> =
        nodes.into_iter().map(|n| Mutex::new(Some(n))).collect();
    let results: Vec<Mutex<Option<Result<NodeAudit, String>>>> =
        names.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(names.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = inputs.get(i) else { break };
                let Some(input) = slot.lock().ok().and_then(|mut s| s.take()) else {
                    continue;
                };
                let audit =
                    super::node::audit(input, &registry).map(|r| NodeAudit::of(&names[i], &r));
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(audit);
                }
            });
        }
    });
    let audits = names
        .into_iter()
        .zip(results)
        .map(|(name, r)| {
            let r = r
                .into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Err("internal: not audited".into()));
            (name, r)
        })
        .collect();
    let mut report = fleet::group(audits);
    report.registry = Some(registry.version());
    let text = match args.format {
        AuditFormat::Html => markspace::report::html::fleet(&report),
        AuditFormat::Json | AuditFormat::Sarif | AuditFormat::Bitfield => {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        }
        AuditFormat::Markdown => fleet::render::markdown(&report),
        AuditFormat::Text => fleet::render::text(&report),
    };
    output::print(&text)?;
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    let over = |n: &fleet::NodeEntry| match threshold {
        Some(Severity::Error) => n.errors > 0,
        Some(Severity::Warning) => n.errors + n.warnings > 0,
        Some(Severity::Info) => n.errors + n.warnings + n.infos > 0,
        None => false,
    };
    // Never a false green: a node that could not be read, or was read in part, gives 3.
    Ok(if report.nodes.iter().any(|n| n.incomplete) {
        3
    } else if report.nodes.iter().any(over) {
        1
    } else {
        0
    })
}
