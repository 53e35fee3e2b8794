//! `markspace audit`.

use markspace::analysis::{analyze, Severity};
use markspace::diagnostic::Level;
use markspace::report::{self, Report};
use markspace::snapshot::NodeLoader;

use crate::cli::{AuditArgs, FailOn, Format};
use crate::output;

pub(crate) fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let registry = super::load_registry(args.registry.as_deref())?;
    let mut loader = NodeLoader::new();
    // Keeps the live snapshot until the audit is done.
    let mut live_dir = None;
    if args.live {
        let dir = tempfile::Builder::new()
            .prefix("markspace-live-")
            .tempdir()?;
        super::collect::collect_into(dir.path(), args.timeout)?;
        loader.add_path(dir.path())?;
        live_dir = Some(dir);
    }
    for path in &args.paths {
        loader.add_path(path)?;
    }
    let node = loader.finish();
    let color = output::stderr_color(args.color);
    let mut errors = 0;
    for d in &node.diagnostics {
        let rendered = d.render(&node.sources).to_string();
        let rendered = if color {
            let (head, rest) = rendered.split_once('\n').unwrap_or((&rendered, ""));
            let code = if d.level == Level::Error {
                "1;31"
            } else {
                "1;33"
            };
            format!("\x1b[{code}m{head}\x1b[0m\n{rest}")
        } else {
            rendered
        };
        eprintln!("{rendered}");
        if d.level == Level::Error {
            errors += 1;
        }
    }
    for b in &node.bundles {
        eprintln!("markspace: note: read {b}");
    }
    const SHOWN: usize = 5;
    for s in node.skipped.iter().take(SHOWN) {
        eprintln!("markspace: note: skipped {s}: not a recognised input format");
    }
    if node.skipped.len() > SHOWN {
        eprintln!(
            "markspace: note: skipped {} more file(s) of no recognised format",
            node.skipped.len() - SHOWN
        );
    }
    if errors > 0 {
        eprintln!(
            "markspace: {errors} input error(s); fix them and run again (nothing was audited)"
        );
        return Ok(2);
    }
    if node.formats.is_empty() {
        anyhow::bail!(
            "no input of a recognised format was found in {}",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let analysis = analyze(&node, &registry);
    let report = Report::new(&node, &analysis);
    let text = match args.format {
        Format::Text => report::text::render(&report, output::use_color(args.color)),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        }
        Format::Markdown => report::markdown::render(&report),
    };
    output::print(&text)?;
    drop(live_dir);
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    Ok(match threshold {
        Some(level) if report.count_at_least(level) > 0 => 1,
        _ => 0,
    })
}
