//! One collection and audit, in child processes of this binary, under one deadline.
//!
//! Live: `markspace collect --out TMP/snapshot --timeout T`, then `markspace audit TMP/snapshot
//! --format json --fail-on never`; with snapshots given: only the audit. Each child runs in its
//! own process group, so at the deadline the group (the child and the commands it runs) is
//! killed, and the cycle is a failure; the temporary directory is removed either way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

/// What a cycle does.
#[derive(Debug)]
pub(crate) struct Plan {
    /// This program.
    pub(crate) exe: PathBuf,
    /// Snapshots to audit; empty: collect this node.
    pub(crate) paths: Vec<PathBuf>,
    /// Extra registry directory.
    pub(crate) registry: Option<PathBuf>,
    /// The whole cycle's deadline.
    pub(crate) timeout: Duration,
    /// Where the temporary snapshot goes.
    pub(crate) work_dir: PathBuf,
}

/// How a cycle ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Audited; every source read.
    Complete,
    /// Audited, but a source the audit needs was not read (`audit` exit 3).
    Incomplete,
    /// No audit: a child failed (the reason).
    Failed(String),
    /// No audit: the deadline passed and the cycle was killed.
    TimedOut,
}

/// The part of the audit JSON the metrics need (the rest of the document is skipped).
#[derive(Debug, Deserialize)]
pub(crate) struct AuditDoc {
    /// Owners, with the bits they write.
    pub(crate) owners: Vec<OwnerDoc>,
    /// Who reads and writes each bit.
    pub(crate) bitmap: BitmapDoc,
    /// Findings (code and severity).
    pub(crate) findings: Vec<FindingDoc>,
    /// Counts.
    pub(crate) summary: SummaryDoc,
}

/// An owner.
#[derive(Debug, Deserialize)]
pub(crate) struct OwnerDoc {
    /// Bits written per field (`0x%08x`).
    pub(crate) writes: FieldsDoc,
}

/// A `0x%08x` value per field.
#[derive(Debug, Deserialize)]
pub(crate) struct FieldsDoc {
    /// Packet mark.
    pub(crate) mark: String,
    /// Connmark.
    pub(crate) ctmark: String,
}

/// Both bit maps.
#[derive(Debug, Deserialize)]
pub(crate) struct BitmapDoc {
    /// Packet mark.
    pub(crate) mark: Vec<BitDoc>,
    /// Connmark.
    pub(crate) ctmark: Vec<BitDoc>,
}

/// One bit.
#[derive(Debug, Deserialize)]
pub(crate) struct BitDoc {
    /// Bit number.
    pub(crate) bit: u8,
    /// Owners reading it.
    pub(crate) readers: Vec<String>,
    /// Owners writing it.
    pub(crate) writers: Vec<String>,
}

/// A finding.
#[derive(Debug, Deserialize)]
pub(crate) struct FindingDoc {
    /// `MS001`…
    pub(crate) code: String,
    /// `error`, `warning`, `info`.
    pub(crate) severity: String,
}

/// Counts.
#[derive(Debug, Deserialize)]
pub(crate) struct SummaryDoc {
    /// Rules read.
    pub(crate) rules: u64,
    /// Rules with mark operations.
    pub(crate) mark_rules: u64,
}

/// The result of one cycle.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// How it ended.
    pub(crate) ended: Ended,
    /// Per collection source (the program a step ran): whether it was read.
    pub(crate) sources: Vec<(String, bool)>,
    /// The audit JSON, verbatim.
    pub(crate) report: Option<Arc<str>>,
    /// Its parsed subset.
    pub(crate) audit: Option<AuditDoc>,
    /// Wall time of the cycle.
    pub(crate) duration: Duration,
    /// When it ended.
    pub(crate) finished: SystemTime,
}

impl Outcome {
    /// Whether an audit came out of it.
    pub(crate) fn ok(&self) -> bool {
        matches!(self.ended, Ended::Complete | Ended::Incomplete)
    }

    /// Whether a source was not read.
    pub(crate) fn incomplete(&self) -> bool {
        self.ended == Ended::Incomplete
    }

    /// One line for logs and `/healthz`.
    pub(crate) fn describe(&self) -> String {
        let when = markspace::collect::rfc3339(self.finished);
        let took = self.duration.as_secs_f64();
        match &self.ended {
            Ended::Complete => format!("last collection {when}: complete ({took:.2} s)"),
            Ended::Incomplete => {
                let unread: Vec<&str> = self
                    .sources
                    .iter()
                    .filter(|(_, ok)| !ok)
                    .map(|(s, _)| s.as_str())
                    .collect();
                format!(
                    "last collection {when}: incomplete, not read: {} ({took:.2} s)",
                    unread.join(", ")
                )
            }
            Ended::Failed(why) => format!("last collection {when}: failed: {why}"),
            Ended::TimedOut => {
                format!("last collection {when}: timed out after {took:.2} s and was killed")
            }
        }
    }
}

/// Runs one cycle.
pub(crate) fn run(plan: &Plan) -> Outcome {
    let start = Instant::now();
    let (ended, sources, report) = match run_inner(plan, start) {
        Ok(r) => r,
        Err((ended, sources)) => (ended, sources, None),
    };
    let audit = report
        .as_deref()
        .and_then(|r| serde_json::from_str::<AuditDoc>(r).ok());
    let ended = match (&ended, &audit) {
        (Ended::Complete | Ended::Incomplete, None) => {
            Ended::Failed("the audit printed no readable JSON".into())
        }
        _ => ended,
    };
    Outcome {
        ended,
        sources,
        report: report.map(Arc::from),
        audit,
        duration: start.elapsed(),
        finished: SystemTime::now(),
    }
}

type Sources = Vec<(String, bool)>;

fn run_inner(
    plan: &Plan,
    start: Instant,
) -> Result<(Ended, Sources, Option<String>), (Ended, Sources)> {
    let dir = tempfile::Builder::new()
        .prefix("markspace-serve-")
        .tempdir_in(&plan.work_dir)
        .map_err(|e| {
            (
                Ended::Failed(format!(
                    "a temporary directory in {}: {e}",
                    plan.work_dir.display()
                )),
                Vec::new(),
            )
        })?;
    let mut sources = Vec::new();
    let mut audit_args: Vec<std::ffi::OsString> = vec![
        "audit".into(),
        "--format".into(),
        "json".into(),
        "--fail-on".into(),
        "never".into(),
    ];
    if plan.paths.is_empty() {
        let snapshot = dir.path().join("snapshot");
        let left = plan.timeout.saturating_sub(start.elapsed());
        let secs = left.as_secs().max(1).to_string();
        let args: Vec<std::ffi::OsString> = vec![
            "collect".into(),
            "--out".into(),
            snapshot.clone().into(),
            "--timeout".into(),
            secs.into(),
        ];
        let code = child(plan, &args, dir.path(), "collect", start).map_err(|e| (e, Vec::new()))?;
        sources = manifest_sources(&snapshot.join("manifest.json"));
        if code != 0 {
            return Err((
                Ended::Failed(format!("`markspace collect` exited {code}")),
                sources,
            ));
        }
        audit_args.push(snapshot.into());
    } else {
        audit_args.extend(plan.paths.iter().map(|p| p.clone().into()));
    }
    if let Some(r) = &plan.registry {
        audit_args.push("--registry".into());
        audit_args.push(r.clone().into());
    }
    let code =
        child(plan, &audit_args, dir.path(), "audit", start).map_err(|e| (e, sources.clone()))?;
    let report = std::fs::read_to_string(dir.path().join("audit.out")).ok();
    let ended = match code {
        0 | 1 => Ended::Complete,
        3 => Ended::Incomplete,
        _ => {
            let why = std::fs::read_to_string(dir.path().join("audit.err")).unwrap_or_default();
            let why = why
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err((
                Ended::Failed(format!("`markspace audit` exited {code}: {why}")),
                sources,
            ));
        }
    };
    Ok((ended, sources, report))
}

/// Runs `markspace ARGS` with stdout in `DIR/NAME.out` and stderr in `DIR/NAME.err`, killed with
/// its process group when the cycle's deadline passes. Its exit code.
fn child(
    plan: &Plan,
    args: &[std::ffi::OsString],
    dir: &Path,
    name: &str,
    start: Instant,
) -> Result<i32, Ended> {
    use std::os::unix::process::CommandExt;
    let file = |ext: &str| {
        std::fs::File::create(dir.join(format!("{name}.{ext}")))
            .map_err(|e| Ended::Failed(format!("creating {name}.{ext}: {e}")))
    };
    let mut cmd = Command::new(&plan.exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(file("out")?)
        .stderr(file("err")?)
        .env("NO_COLOR", "1")
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| Ended::Failed(format!("running {}: {e}", plan.exe.display())))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.code().unwrap_or(-1)),
            Ok(None) => {}
            Err(e) => {
                return Err(Ended::Failed(format!(
                    "waiting for `markspace {name}`: {e}"
                )))
            }
        }
        if start.elapsed() >= plan.timeout {
            let pid = rustix::process::Pid::from_child(&child);
            // The group: the child and every command it started.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            let _ = child.kill();
            let _ = child.wait();
            return Err(Ended::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Per program of the collection (`iptables-save`, `nft`, `ip-rule`…): whether every step of it
/// was read. A step that failed or timed out is unread, and so is a missing tool the audit
/// needs ([`markspace::collect::unread_sources`]); a missing optional tool is not a failure.
fn manifest_sources(manifest: &Path) -> Sources {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Vec::new();
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let unread: Vec<String> = markspace::collect::unread_sources(&json)
        .into_iter()
        .map(|u| u.command)
        .collect();
    let mut out: Vec<(String, bool)> = Vec::new();
    for step in json["steps"].as_array().into_iter().flatten() {
        let argv: Vec<&str> = step["argv"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str())
            .collect();
        let status = step["status"].as_str().unwrap_or("");
        let bad = matches!(status, "failed" | "timeout") || unread.contains(&argv.join(" "));
        let source = source_of(&argv);
        match out.iter_mut().find(|(s, _)| *s == source) {
            Some((_, ok)) => *ok &= !bad,
            None => out.push((source, !bad)),
        }
    }
    out
}

/// The source label of a collection step: the program, with `ip`'s objects told apart.
fn source_of(argv: &[&str]) -> String {
    match argv {
        ["ip", rest @ ..] => {
            let six = if rest.contains(&"-6") { "ip6" } else { "ip" };
            match rest.iter().find(|w| !w.starts_with('-')) {
                Some(object) => format!("{six}-{object}"),
                None => six.to_string(),
            }
        }
        ["netlink", ..] => "nft-netlink".into(),
        [program, ..] => program.to_string(),
        [] => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sources_by_program_and_ip_object() {
        assert_eq!(source_of(&["ip", "-j", "rule", "show"]), "ip-rule");
        assert_eq!(source_of(&["ip", "-6", "-j", "rule", "show"]), "ip6-rule");
        assert_eq!(source_of(&["ip", "-s", "xfrm", "state"]), "ip-xfrm");
        assert_eq!(source_of(&["iptables-save"]), "iptables-save");
        assert_eq!(source_of(&["netlink", "NFT_MSG_GETTABLE"]), "nft-netlink");
    }

    /// A missing optional tool is no failure; a failed step and a missing needed tool are.
    #[test]
    fn manifest_marks_failed_and_missing_needed_sources() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("manifest.json");
        std::fs::write(
            &m,
            r#"{"steps": [
                {"argv": ["iptables-save"], "status": "failed", "note": "Permission denied"},
                {"argv": ["ip6tables-save"], "status": "ok"},
                {"argv": ["ovs-vsctl", "list-br"], "status": "missing"},
                {"argv": ["ip", "-j", "rule", "show"], "status": "missing"},
                {"argv": ["tc", "filter", "show", "dev", "a", "ingress"], "status": "ok"},
                {"argv": ["tc", "filter", "show", "dev", "b", "ingress"], "status": "timeout"}
            ]}"#,
        )
        .unwrap();
        let got = manifest_sources(&m);
        assert_eq!(
            got,
            vec![
                ("iptables-save".to_string(), false),
                ("ip6tables-save".to_string(), true),
                ("ovs-vsctl".to_string(), true),
                ("ip-rule".to_string(), false),
                ("tc".to_string(), false),
            ]
        );
    }
}
