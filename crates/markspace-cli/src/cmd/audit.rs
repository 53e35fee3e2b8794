//! `markspace audit`.

use markspace::analysis::{analyze, Severity};
use markspace::diagnostic::Level;
use markspace::model::Node;
use markspace::report::{self, Report};
use markspace::snapshot::{Leniency, NodeLoader};

use crate::cli::{AuditArgs, AuditFormat as Format, FailOn};
use crate::output;

pub(crate) fn run(args: AuditArgs) -> anyhow::Result<u8> {
    let mut nodes = Vec::new();
    for p in &args.paths {
        match several_nodes(p)? {
            Some(found) => nodes.push((p.clone(), found)),
            None if args.each => nodes.push((p.clone(), vec![p.clone()])),
            None => {}
        }
    }
    if nodes.is_empty() || (!args.each && nodes.iter().all(|(_, n)| n.len() < 2)) {
        let (code, text) = run_one(args)?;
        if let Some(text) = text {
            output::print(&text)?;
        }
        return Ok(code);
    }
    if !args.each {
        let Some((dir, found)) = nodes.iter().find(|(_, n)| n.len() >= 2) else {
            anyhow::bail!("internal: no directory of several nodes");
        };
        let dir = dir.display();
        anyhow::bail!(
            "{dir} holds {} nodes, which an audit would merge into one (reporting collisions between software that never met): {}. Audit one of them, or each on its own with --each",
            found.len(),
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    each(args, nodes.into_iter().flat_map(|(_, n)| n).collect())
}

/// `--each`: every node on its own, one section each, then their exit statuses; the exit status
/// is the highest of theirs (3 incomplete, 2 input error, 1 findings, 0 clean).
fn each(args: AuditArgs, nodes: Vec<std::path::PathBuf>) -> anyhow::Result<u8> {
    if matches!(args.format, Format::Html | Format::Bitfield) {
        anyhow::bail!(
            "--each prints one document for all nodes, which --format html and bitfield do not have yet; audit each node on its own (markspace audit -o html DIR/NODE > NODE.html)"
        );
    }
    let mut worst = 0u8;
    let mut statuses = Vec::new();
    let mut out = String::new();
    let mut json_nodes = Vec::new();
    for node in &nodes {
        let one = AuditArgs {
            paths: vec![node.clone()],
            each: false,
            ..args.clone()
        };
        let (code, text) = run_one(one)?;
        worst = worst.max(code);
        statuses.push(format!("{}: {code}", node.display()));
        match args.format {
            Format::Sarif => {
                let log: serde_json::Value =
                    serde_json::from_str(text.as_deref().unwrap_or("{}"))?;
                for mut run in log["runs"].as_array().cloned().unwrap_or_default() {
                    run["automationDetails"] = serde_json::json!({"id": node.display().to_string()});
                    json_nodes.push(run);
                }
            }
            Format::Json => json_nodes.push(serde_json::json!({
                "path": node.display().to_string(),
                "exit_status": code,
                "report": text.as_deref().map(serde_json::from_str::<serde_json::Value>).transpose()?,
            })),
            Format::Markdown => {
                out.push_str(&format!("# node `{}`\n\n", node.display()));
                out.push_str(text.as_deref().unwrap_or("(not audited: input error)\n"));
                out.push('\n');
            }
            Format::Html | Format::Bitfield => {}
            Format::Text => {
                out.push_str(&format!("== node {} ==\n", node.display()));
                out.push_str(text.as_deref().unwrap_or("(not audited: input error, see above)\n"));
                out.push('\n');
            }
        }
    }
    if args.format == Format::Sarif {
        let doc = serde_json::json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": json_nodes,
        });
        out = serde_json::to_string_pretty(&doc)?;
        out.push('\n');
    } else if args.format == Format::Json {
        let doc = serde_json::json!({
            "version": report::VERSION,
            "markspace": env!("CARGO_PKG_VERSION"),
            "registry": super::load_registry(args.registry.as_deref())?.version(),
            "nodes": json_nodes,
            "exit_status": worst,
        });
        out = serde_json::to_string_pretty(&doc)?;
        out.push('\n');
    } else {
        out.push_str(&format!(
            "{} node(s) audited; exit status per node: {}\n",
            nodes.len(),
            statuses.join(", ")
        ));
    }
    output::print(&out)?;
    Ok(worst)
}

/// The nodes a directory holds, when it holds several: subdirectories that each hold inputs,
/// with no input at the top (a snapshot, a sosreport or a Cilium sysdump is one node, or is
/// split by its own reader). `None` for files and single-node directories.
pub(crate) fn several_nodes(
    path: &std::path::Path,
) -> anyhow::Result<Option<Vec<std::path::PathBuf>>> {
    let Ok(rd) = std::fs::read_dir(path) else {
        return Ok(None);
    };
    let mut subdirs = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "sos_commands" || name.starts_with("cilium-bugtool") {
            return Ok(None);
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) && !name.starts_with('.') {
            subdirs.push(name);
        }
    }
    if subdirs.len() < 2 {
        return Ok(None);
    }
    // Which of them hold inputs, and whether the top does: read as one node once.
    let mut loader = NodeLoader::new();
    if loader.add_path(path).is_err() {
        return Ok(None);
    }
    let node = loader.finish();
    if !node.bundles.is_empty() {
        return Ok(None);
    }
    let prefix = format!("{}/", path.display().to_string().trim_end_matches('/'));
    let mut groups = std::collections::BTreeSet::new();
    for (file, _) in &node.formats {
        let Some(rest) = file.strip_prefix(&prefix) else {
            return Ok(None);
        };
        match rest.split_once('/') {
            Some((dir, _)) => groups.insert(dir.to_string()),
            None => return Ok(None),
        };
    }
    Ok((groups.len() >= 2).then(|| groups.into_iter().map(|g| path.join(g)).collect()))
}

/// One audit: the exit status and the rendered report (`None` after an input error, which is
/// reported on stderr).
fn run_one(args: AuditArgs) -> anyhow::Result<(u8, Option<String>)> {
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
    let leniency = if args.strict {
        Leniency::Strict
    } else if args.lenient {
        Leniency::Lenient
    } else {
        Leniency::Auto
    };
    let (node, empty_inputs) = read_inputs(&paths, leniency, &mut timings)?;
    // Read after the inputs, not beside them: its parse tree would add to the peak memory of
    // parsing a large node, for a few milliseconds saved.
    let registry = super::load_registry(args.registry.as_deref())?;
    timings.lap("registry");
    let color = output::stderr_color(args.color);
    let mut errors = 0;
    for d in &node.diagnostics {
        let rendered =
            markspace::report::escape_controls(&d.render(&node.sources).to_string()).into_owned();
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
        if s.contains(": no format reads") {
            eprintln!("markspace: note: skipped {s}");
        } else {
            eprintln!("markspace: note: skipped {s}: not a recognised input format");
        }
    }
    if node.skipped.len() > SHOWN {
        eprintln!(
            "markspace: note: skipped {} more file(s) of no recognised format",
            node.skipped.len() - SHOWN
        );
    }
    if node.skipped_lines > 0 {
        eprintln!(
            "markspace: warning: {} pasted line(s) could not be read and were skipped; the audit covers the rest",
            node.skipped_lines
        );
    }
    if errors > 0 {
        eprintln!(
            "markspace: {errors} input error(s); fix them and run again (nothing was audited)"
        );
        return Ok((2, None));
    }
    if node.formats.is_empty() && empty_inputs == 0 {
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
    report.registry = Some(registry.version());
    let today: String = markspace::collect::rfc3339(std::time::SystemTime::now())
        .chars()
        .take(10)
        .collect();
    if let Some(file) = &args.write_baseline {
        let b = markspace::report::baseline::Baseline::of(&report.findings, &today);
        std::fs::write(file, b.to_toml())
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", file.display()))?;
        eprintln!(
            "markspace: note: wrote a baseline of {} finding(s) to {}; give each its reason",
            b.suppress.len(),
            file.display()
        );
    }
    if let Some(file) = &args.baseline {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let b = markspace::report::baseline::Baseline::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        report.apply_baseline(&b, &file.display().to_string(), &today);
    }
    // Never a false green: a snapshot whose collection could not read a source the audit needs
    // (no privileges, a missing tool, a timeout) is reported as incomplete and exits 3.
    let mut manifests = Vec::new();
    for path in &paths {
        let shown = if live_dir.is_some() && Some(*path) == live_dir.as_ref().map(|d| d.path()) {
            "live".to_string()
        } else {
            path.join("manifest.json").display().to_string()
        };
        for message in super::node::mark_unread(&mut report, path, &shown) {
            eprintln!("markspace: error: {message}");
        }
        if args.format == Format::Html {
            if let Some(json) = std::fs::read(path.join("manifest.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                manifests.push((shown.clone(), json));
            }
        }
    }
    for (archived, manifest) in &node.manifests {
        if args.format == Format::Html {
            if let Ok(json) = serde_json::from_slice(manifest) {
                manifests.push((archived.clone(), json));
            }
        }
        for message in super::node::mark_unread_json(&mut report, manifest, archived) {
            eprintln!("markspace: error: {message}");
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
        Format::Sarif => {
            let mut s = serde_json::to_string_pretty(&report::sarif::render(&report))?;
            s.push('\n');
            s
        }
        Format::Html => report::html::audit(
            &report,
            &report::html::BitRules::of(&node, &analysis),
            &manifests,
        ),
        Format::Bitfield => {
            let mut s = serde_json::to_string_pretty(&report::bitfield::render(&report))?;
            s.push('\n');
            s
        }
    };
    timings.lap("report");
    timings.print();
    drop(live_dir);
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    // Never a false green: a run that skipped unreadable lines of a paste does not exit 0.
    let code = match threshold {
        _ if report.summary.incomplete => 3,
        Some(level) if report.count_at_least(level) > 0 => 1,
        _ if report.summary.skipped_lines > 0 => 3,
        _ => 0,
    };
    // The process ends right after this: leave the model to the OS instead of freeing a
    // million-rule node piece by piece, which takes longer than some of the audit.
    std::mem::forget(analysis);
    std::mem::forget(node);
    Ok((code, Some(text)))
}

fn read_inputs(
    paths: &[&std::path::Path],
    leniency: Leniency,
    timings: &mut Timings,
) -> anyhow::Result<(Node, usize)> {
    let mut loader = NodeLoader::new();
    loader.set_leniency(leniency);
    // Inputs that hold nothing (an empty `iptables-save` of a host without rules): valid, and
    // counted so that an audit of only such inputs says "no rules" instead of failing.
    let mut empty = 0;
    for path in paths {
        let bytes = if *path == std::path::Path::new("-") {
            use std::io::Read;
            let mut buf = Vec::new();
            std::io::stdin()
                .take(markspace::snapshot::MAX_FILE_BYTES + 1)
                .read_to_end(&mut buf)?;
            Some(buf)
        } else if path.is_file() && std::fs::metadata(path).is_ok_and(|m| m.len() < 4096) {
            std::fs::read(path).ok()
        } else {
            None
        };
        match bytes {
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => {
                eprintln!(
                    "markspace: note: {}: empty input (no rules)",
                    path.display()
                );
                empty += 1;
            }
            Some(b) if *path == std::path::Path::new("-") => {
                if b.len() as u64 > markspace::snapshot::MAX_FILE_BYTES {
                    anyhow::bail!(
                        "-: input is more than the {}-byte limit",
                        markspace::snapshot::MAX_FILE_BYTES
                    );
                }
                loader.add_text("-", b, true)?;
            }
            _ => loader.add_path(path)?,
        }
    }
    timings.lap("read and parse");
    let node = loader.finish();
    timings.lap("model (reachability, duplicates)");
    Ok((node, empty))
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
