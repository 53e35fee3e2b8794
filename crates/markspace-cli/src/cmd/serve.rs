//! `markspace serve`: a Prometheus/OpenMetrics exporter.
//!
//! A background thread collects and audits the node every `--interval` (never per scrape); the
//! HTTP thread serves the last result: `/metrics` (OpenMetrics text), `/report.json` (the audit
//! JSON of the last successful audit) and `/healthz`. With `--textfile PATH` one cycle runs, the
//! same metrics are written to PATH by an atomic rename (node_exporter's textfile collector) and
//! the command exits.
//!
//! Each cycle runs in child processes of this binary (`markspace collect`, then `markspace audit
//! --format json`), under one deadline ([`cycle`]): a collection that overruns is killed with its
//! whole process group and reported as failed, the next one starts only after it ended (cycles
//! never pile up), and the memory of auditing a large node goes back to the system when the
//! child exits, so the exporter itself stays small between collections. A thread could not be
//! killed at its deadline, and a long-lived allocator keeps a large node's pages.

mod cycle;
mod http;
mod metrics;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use cycle::{Outcome, Plan};
use metrics::Counters;

/// `markspace serve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Snapshots to audit each cycle instead of collecting this node (files, directories or
    /// archives, as for `audit`).
    #[arg(value_name = "SNAPSHOT")]
    pub(crate) paths: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9745")]
    pub(crate) listen: String,
    /// Seconds between the starts of two collections (a collection that takes longer delays
    /// the next; they never overlap).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub(crate) interval: f64,
    /// Seconds a whole collection and audit may take; past it the cycle is killed and reported
    /// as failed (`markspace_collect_success{source="audit"} 0`).
    #[arg(long, value_name = "SECS", default_value_t = 50.0)]
    pub(crate) timeout: f64,
    /// Run one cycle, write the metrics to this file (atomically: a temporary file in the same
    /// directory, then a rename) and exit: 0 when the audit is complete, 3 when it is not.
    #[arg(long, value_name = "PATH")]
    pub(crate) textfile: Option<PathBuf>,
    /// Also read registry entries from this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) registry: Option<PathBuf>,
    /// Directory for each cycle's temporary snapshot (removed after the cycle); default the
    /// system temporary directory (`TMPDIR`).
    #[arg(long, value_name = "DIR")]
    pub(crate) work_dir: Option<PathBuf>,
}

/// What the HTTP thread serves: the last cycle's rendering.
struct Served {
    /// OpenMetrics text.
    metrics: Arc<str>,
    /// The audit JSON of the last successful audit.
    report: Option<Arc<str>>,
    /// One line about the last cycle, for `/healthz`.
    status: String,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let seconds = |v: f64, what: &str| -> anyhow::Result<Duration> {
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| format!("--{what} {v}: give a positive number of seconds"))
    };
    let plan = Plan {
        exe: std::env::current_exe().context("finding this program to run its collections")?,
        paths: args.paths.clone(),
        registry: args.registry.clone(),
        timeout: seconds(args.timeout, "timeout")?,
        work_dir: args.work_dir.clone().unwrap_or_else(std::env::temp_dir),
    };
    let interval = seconds(args.interval, "interval")?;
    if let Some(file) = &args.textfile {
        return textfile(&plan, file);
    }
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!(
        "markspace: serving /metrics, /report.json and /healthz on {} (a collection every {:?}, each within {:?})",
        listener.local_addr().map_or(args.listen.clone(), |a| a.to_string()),
        interval,
        plan.timeout
    );
    let served = Arc::new(Mutex::new(Served {
        metrics: metrics::render(None, None, &Counters::default()).into(),
        report: None,
        status: "starting: the first collection is running".into(),
    }));
    let writer = Arc::clone(&served);
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || collect_forever(&plan, interval, &writer))
        .context("starting the collector thread")?;
    http::serve(listener, move |_, path| respond(&served, path))
        .with_context(|| format!("serving on {}", args.listen))?;
    Ok(0)
}

/// The collector thread: a cycle, then a sleep until the next start, forever.
fn collect_forever(plan: &Plan, interval: Duration, served: &Mutex<Served>) {
    let mut counters = Counters::default();
    let mut last_good: Option<Outcome> = None;
    loop {
        let start = Instant::now();
        let outcome = cycle::run(plan);
        counters.record(&outcome);
        let status = outcome.describe();
        if !outcome.ok() {
            eprintln!("markspace: {status}");
        }
        let text = if outcome.ok() {
            let text = metrics::render(Some(&outcome), Some(&outcome), &counters);
            last_good = Some(outcome);
            text
        } else {
            metrics::render(last_good.as_ref(), Some(&outcome), &counters)
        };
        if let Ok(mut s) = served.lock() {
            s.metrics = text.into();
            s.report = last_good.as_ref().and_then(|o| o.report.clone());
            s.status = status;
        }
        std::thread::sleep(interval.saturating_sub(start.elapsed()));
    }
}

/// One cycle into a textfile for node_exporter, written to a temporary file beside it and
/// renamed over it, so the collector never reads half a file.
fn textfile(plan: &Plan, file: &std::path::Path) -> anyhow::Result<u8> {
    let outcome = cycle::run(plan);
    let mut counters = Counters::default();
    counters.record(&outcome);
    let shown = outcome.ok().then_some(&outcome);
    let text = metrics::render(shown, Some(&outcome), &counters);
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".markspace-")
        .suffix(".prom.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    let tmp = tmp.into_temp_path();
    // node_exporter runs as another user: the file must be readable by it.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(file)
        .with_context(|| format!("renaming the metrics into {}", file.display()))?;
    if !outcome.ok() || outcome.incomplete() {
        eprintln!("markspace: {}", outcome.describe());
    }
    Ok(if outcome.ok() && !outcome.incomplete() {
        0
    } else {
        3
    })
}

/// The answer to a GET of `path`.
fn respond(served: &Mutex<Served>, path: &str) -> http::Reply {
    let Ok(s) = served.lock() else {
        return http::Reply::text(500, "internal error\n");
    };
    match path {
        "/metrics" => http::Reply {
            status: 200,
            content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
            body: Arc::clone(&s.metrics),
        },
        "/report.json" => match &s.report {
            Some(r) => http::Reply {
                status: 200,
                content_type: "application/json",
                body: Arc::clone(r),
            },
            None => http::Reply::text(503, "no audit has succeeded yet\n"),
        },
        "/healthz" => http::Reply::text(200, &format!("ok\n{}\n", s.status)),
        "/" => http::Reply::text(
            200,
            "markspace exporter: /metrics, /report.json, /healthz\n",
        ),
        _ => http::Reply::text(404, "not found\n"),
    }
}
