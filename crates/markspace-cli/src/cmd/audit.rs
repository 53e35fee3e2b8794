//! `markspace audit`.

use markspace::analysis::{analyze, Severity};
use markspace::diagnostic::Level;
use markspace::model::Node;
use markspace::report::{self, Report};
use markspace::snapshot::NodeLoader;

use crate::cli::{AuditArgs, FailOn, Format};
use crate::output;

pub(crate) fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let mut timings = Timings::from_env();
    // Keeps the live snapshot until the audit is done.
    let mut live_dir = None;
    if args.live {
        let dir = tempfile::Builder::new()
            .prefix("markspace-live-")
            .tempdir()?;
        super::collect::collect_into(dir.path(), args.timeout)?;
        live_dir = Some(dir);
        timings.lap("collection");
    }
    let mut paths: Vec<&std::path::Path> = live_dir.iter().map(|d| d.path()).collect();
    paths.extend(args.paths.iter().map(|p| p.as_path()));
    let node = read_inputs(&paths, &mut timings)?;
    // Read after the inputs, not beside them: its parse tree would add to the peak memory of
    // parsing a large node, for a few milliseconds saved.
    let registry = super::load_registry(args.registry.as_deref())?;
    timings.lap("registry");
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
    timings.lap("analysis");
    let mut report = Report::new(&node, &analysis);
    // Never a false green: a snapshot whose collection could not read a source the audit needs
    // (no privileges, a missing tool, a timeout) is reported as incomplete and exits 3.
    for path in &paths {
        let manifest = path.join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let shown = if live_dir.is_some() && Some(*path) == live_dir.as_ref().map(|d| d.path()) {
            "live".to_string()
        } else {
            manifest.display().to_string()
        };
        for u in markspace::collect::unread_sources(&json) {
            eprintln!(
                "markspace: error: not read: {} (`{}`): {}",
                u.what, u.command, u.reason
            );
            report.not_read(
                &shown,
                format!("not read: {} (`{}`): {}", u.what, u.command, u.reason),
                Some("run as root or with CAP_NET_ADMIN and CAP_NET_RAW, with iptables, nft and ip installed".to_string()),
            );
        }
    }
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
    timings.lap("report");
    timings.print();
    drop(live_dir);
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    let code = match threshold {
        _ if report.summary.incomplete => 3,
        Some(level) if report.count_at_least(level) > 0 => 1,
        _ => 0,
    };
    // The process ends right after this: leave the model to the OS instead of freeing a
    // million-rule node piece by piece, which takes longer than some of the audit.
    std::mem::forget(analysis);
    std::mem::forget(node);
    Ok(code)
}

fn read_inputs(paths: &[&std::path::Path], timings: &mut Timings) -> anyhow::Result<Node> {
    let mut loader = NodeLoader::new();
    for path in paths {
        loader.add_path(path)?;
    }
    timings.lap("read and parse");
    let node = loader.finish();
    timings.lap("model (reachability, duplicates)");
    Ok(node)
}

/// Wall time per stage and the peak memory so far, printed to stderr when `MARKSPACE_TIMINGS`
/// is set (for profiling a large node: which stage to look at first).
struct Timings {
    start: Option<std::time::Instant>,
    laps: Vec<(&'static str, std::time::Duration, Option<String>)>,
}

/// The process's peak resident set so far (`VmHWM` in `/proc/self/status`), when readable.
fn peak_rss() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line["VmHWM:".len()..].trim().to_string())
}

impl Timings {
    fn from_env() -> Self {
        Timings {
            start: std::env::var_os("MARKSPACE_TIMINGS").map(|_| std::time::Instant::now()),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, stage: &'static str) {
        if let Some(start) = self.start {
            self.laps.push((stage, start.elapsed(), peak_rss()));
        }
    }

    fn print(&self) {
        let mut last = std::time::Duration::ZERO;
        for (stage, at, rss) in &self.laps {
            eprintln!(
                "markspace: timings: {stage}: {:.1} ms (peak RSS so far {})",
                (*at - last).as_secs_f64() * 1e3,
                rss.as_deref().unwrap_or("unknown")
            );
            last = *at;
        }
    }
}
