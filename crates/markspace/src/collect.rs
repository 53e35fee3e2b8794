//! Read-only capture of a live node into a snapshot directory that `audit` reads.
//!
//! Every command is a fixed argument vector run without a shell, with a timeout and an output
//! cap; a missing tool is recorded and skipped; a failing command is recorded with its exit
//! status and stderr; nothing is dropped silently. The snapshot layout (file names) is:
//!
//! | file | command |
//! |---|---|
//! | `iptables-save.txt`, `ip6tables-save.txt` | `iptables-save` / `ip6tables-save` (the default backend) |
//! | `iptables-legacy-save.txt`, `ip6tables-legacy-save.txt` | the legacy backend, when the tool exists and has tables |
//! | `iptables-nft-save.txt`, `ip6tables-nft-save.txt` | the nft backend, when it is not the default |
//! | `nft-<family>-<table>.json` | `nft -j list table FAMILY TABLE` for each **native** nft table (the tables come from a netlink dump of tables only, `nft list tables` when it fails) |
//! | `ip-rule.json`, `ip6-rule.json` | `ip -j rule show`, `ip -6 -j rule show` |
//! | `xfrm-policy.txt`, `xfrm-state.txt` | `ip xfrm policy`, `ip -s xfrm state` |
//! | `tc-filter-<dev>-<ingress\|egress>.txt` | `tc filter show dev DEV ingress\|egress`, every device |
//! | `ovs-<bridge>.txt` | `ovs-ofctl dump-flows BRIDGE`, every bridge, when OVS is present |
//! | `ss.txt` | `ss -tuanpe` |
//! | `sysctl.txt` | `sysctl -a` |
//! | `wg-fwmark.txt` | `wg show all fwmark` |
//! | `ipvsadm.txt` | `ipvsadm -Ln` |
//! | `bpftool-net.txt` | `bpftool net` |
//! | `bpf-prog-<id>.txt` | `bpftool -j prog show`, then `bpftool -j prog dump xlated id ID opcodes` for every program whose context has a mark (tc, cgroup_skb, cgroup_sock, lwt, socket filters), as a `bpf-object` listing with the mark offsets of the kernel's BTF |
//! | `manifest.json` | host, kernel, time, tool versions, and per command: argv, file, exit status, duration, bytes, error |
//!
//! Cost on large nodes: on a kube-proxy node with 10k Services (iptables-nft backend),
//! `iptables-save` took 1.5 s and 190 MB while `nft -j list ruleset` took 21.6 s and 1.4 GB, so
//! iptables-nft tables are read through `iptables-save` and only the native nft tables are listed
//! with nft; the manifest records which tables were chosen and why.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use wait_timeout::ChildExt;

mod nft_tables;

/// Limits for each command.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a command may run before it is killed.
    pub timeout: Duration,
    /// Bytes of output kept; a larger output is truncated and recorded as such.
    pub max_output: usize,
}

impl Default for Limits {
    /// 120 s and 2 GiB: `nft -j list ruleset` on a 10k-Service node takes ~22 s and 1.4 GB.
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(120),
            max_output: 2 << 30,
        }
    }
}

/// What happened to one command.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// The argument vector.
    pub argv: Vec<String>,
    /// The output file, relative to the snapshot directory (absent when nothing was written).
    pub file: Option<String>,
    /// `ok`, `failed`, `timeout`, `missing` or `skipped`.
    pub status: &'static str,
    /// The exit code, when the command ran to completion.
    pub exit_code: Option<i32>,
    /// Wall time in milliseconds.
    pub duration_ms: u128,
    /// Bytes of standard output written.
    pub bytes: usize,
    /// Whether the output was cut at the cap.
    pub truncated: bool,
    /// The first lines of standard error, or why it was skipped.
    pub note: Option<String>,
}

/// The manifest written next to the outputs.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// Layout version.
    pub version: u32,
    /// Host name.
    pub host: String,
    /// Kernel release.
    pub kernel: String,
    /// Start time, RFC 3339 UTC.
    pub time: String,
    /// `markspace` version.
    pub markspace: &'static str,
    /// Tool versions, by tool.
    pub tools: Vec<(String, String)>,
    /// Native nft tables listed, and tables left to iptables-save, with the reason.
    pub nft_tables: Vec<NftChoice>,
    /// Every command, in order.
    pub steps: Vec<StepRecord>,
    /// Total wall time in milliseconds.
    pub duration_ms: u128,
}

/// Whether an nft table was listed with nft or left to iptables-save.
#[derive(Clone, Debug, Serialize)]
pub struct NftChoice {
    /// Family.
    pub family: String,
    /// Table name.
    pub table: String,
    /// True when it was listed with `nft -j list table`.
    pub listed: bool,
    /// Why.
    pub reason: String,
}

/// A progress callback: called before each step with its description.
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Runs one command with limits; returns stdout, and the record.
fn run(argv: &[&str], limits: Limits) -> (Vec<u8>, StepRecord) {
    let start = Instant::now();
    let mut record = StepRecord {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        file: None,
        status: "ok",
        exit_code: None,
        duration_ms: 0,
        bytes: 0,
        truncated: false,
        note: None,
    };
    let Some((program, args)) = argv.split_first() else {
        record.status = "skipped";
        return (Vec::new(), record);
    };
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            record.status = if e.kind() == std::io::ErrorKind::NotFound {
                "missing"
            } else {
                "failed"
            };
            record.note = Some(e.to_string());
            return (Vec::new(), record);
        }
    };
    // Read stdout and stderr on threads so a full pipe never blocks the child; the cap bounds
    // memory and the deadline bounds time.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let cap = limits.max_output;
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut truncated = false;
        if let Some(mut s) = stdout {
            let mut chunk = [0u8; 1 << 16];
            loop {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = cap.saturating_sub(buf.len());
                        buf.extend_from_slice(&chunk[..n.min(room)]);
                        truncated |= n > room;
                    }
                }
            }
        }
        (buf, truncated)
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(64 << 10).read_to_end(&mut buf);
        }
        buf
    });
    // Waits for the exit itself (no polling: a poll interval would add up over the thirty-odd
    // commands of a collection, and the collection must cost little more than its commands).
    let status = match child.wait_timeout(limits.timeout.saturating_sub(start.elapsed())) {
        Ok(Some(status)) => Some(status),
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
        Err(_) => None,
    };
    let (out, truncated) = out_thread.join().unwrap_or_default();
    let err = err_thread.join().unwrap_or_default();
    record.duration_ms = start.elapsed().as_millis();
    record.truncated = truncated;
    match status {
        None => {
            record.status = "timeout";
            record.note = Some(format!("killed after {} s", limits.timeout.as_secs()));
        }
        Some(s) => {
            record.exit_code = s.code();
            if !s.success() {
                record.status = "failed";
            }
            let err = String::from_utf8_lossy(&err);
            let first: Vec<&str> = err.lines().take(5).collect();
            if !first.is_empty() {
                record.note = Some(first.join("\n"));
            }
        }
    }
    (out, record)
}

/// A collection in progress.
pub struct Collector<'p> {
    out: PathBuf,
    limits: Limits,
    steps: Vec<StepRecord>,
    progress: Progress<'p>,
}

impl<'p> Collector<'p> {
    /// A collector writing into `out` (created if missing).
    pub fn new(out: &Path, limits: Limits, progress: Progress<'p>) -> std::io::Result<Self> {
        fs::create_dir_all(out)?;
        Ok(Collector {
            out: out.to_path_buf(),
            limits,
            steps: Vec::new(),
            progress,
        })
    }

    /// Runs a command and writes its output to `file` when it produced any.
    fn step(&mut self, argv: &[&str], file: Option<&str>) -> Vec<u8> {
        (self.progress)(&argv.join(" "));
        let (out, mut record) = run(argv, self.limits);
        record.bytes = out.len();
        if let Some(name) = file {
            if !out.is_empty() {
                match fs::write(self.out.join(name), &out) {
                    Ok(()) => record.file = Some(name.to_string()),
                    Err(e) => {
                        record.status = "failed";
                        record.note = Some(format!("writing {name}: {e}"));
                    }
                }
            }
        }
        self.steps.push(record);
        out
    }

    /// The node's nf_tables tables as (family, name): from one netlink dump of the tables
    /// ([`nft_tables::list`]), recorded as a step of argv `netlink NFT_MSG_GETTABLE`; when that
    /// fails (no nf_tables, no permission), from `nft list tables`, which on nftables 1.0.6
    /// also fetches every rule (slow on large nodes).
    fn nft_tables(&mut self) -> Vec<(String, String)> {
        const ARGV: [&str; 2] = ["netlink", "NFT_MSG_GETTABLE"];
        (self.progress)(&ARGV.join(" "));
        let start = Instant::now();
        let listed = nft_tables::list(self.limits.timeout);
        let mut record = StepRecord {
            argv: ARGV.iter().map(|s| s.to_string()).collect(),
            file: None,
            status: "ok",
            exit_code: None,
            duration_ms: start.elapsed().as_millis(),
            bytes: 0,
            truncated: false,
            note: None,
        };
        match listed {
            Ok(tables) => {
                record.note = Some(format!(
                    "{} tables, by a netlink dump of tables only",
                    tables.len()
                ));
                self.steps.push(record);
                tables
                    .into_iter()
                    .map(|t| (t.family.to_string(), t.name))
                    .collect()
            }
            Err(e) => {
                record.status = "failed";
                record.note = Some(format!("{e}; falling back to `nft list tables`"));
                self.steps.push(record);
                let text = self.step(&["nft", "list", "tables"], None);
                String::from_utf8_lossy(&text)
                    .lines()
                    .filter_map(|line| {
                        let mut words = line.split_whitespace();
                        match (words.next(), words.next(), words.next()) {
                            (Some("table"), Some(family), Some(name)) => {
                                Some((family.to_string(), name.to_string()))
                            }
                            _ => None,
                        }
                    })
                    .collect()
            }
        }
    }

    /// The translated code of every loaded program whose context has a mark, as listings the
    /// audit analyses (`bpf-prog-<id>.txt`), with the mark offsets of the running kernel's BTF.
    /// `bpftool prog show` and `prog dump xlated` only read.
    fn bpf_programs(&mut self) {
        let shown = self.step(&["bpftool", "-j", "prog", "show"], None);
        let Ok(serde_json::Value::Array(progs)) = serde_json::from_slice(&shown) else {
            return;
        };
        let progs: Vec<(u64, String, String)> = progs
            .iter()
            .filter_map(|p| {
                let id = p.get("id")?.as_u64()?;
                let kind = p.get("type")?.as_str()?.to_string();
                let name = p
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map_or_else(|| format!("prog_{id}"), str::to_string);
                crate::sources::bpf_object::xlated::has_mark(&kind).then_some((id, name, kind))
            })
            .collect();
        if progs.is_empty() {
            return;
        }
        const BTF: &str = "/sys/kernel/btf/vmlinux";
        let btf = fs::read(BTF).unwrap_or_default();
        let offsets = (
            crate::bpf::btf::member_offset(&btf, "sk_buff", "mark"),
            crate::bpf::btf::member_offset(&btf, "sock", "sk_mark"),
        );
        let (Some(skb), Some(sock)) = offsets else {
            self.skip(
                &["bpftool", "prog", "dump", "xlated"],
                "the kernel's BTF (/sys/kernel/btf/vmlinux) does not say where sk_buff.mark and sock.sk_mark are",
            );
            return;
        };
        for (id, name, kind) in progs {
            let id_s = id.to_string();
            let out = self.step(
                &[
                    "bpftool", "-j", "prog", "dump", "xlated", "id", &id_s, "opcodes",
                ],
                None,
            );
            let text = String::from_utf8_lossy(&out);
            let file = format!("bpf-prog-{id}.txt");
            let listing =
                crate::sources::bpf_object::xlated::listing(&text, &name, &kind, skb, sock);
            let Some(step) = self.steps.last_mut() else {
                continue;
            };
            match listing.map(|l| fs::write(self.out.join(&file), l)) {
                Ok(Ok(())) => step.file = Some(file),
                Ok(Err(e)) => step.note = Some(format!("writing {file}: {e}")),
                Err(e) if step.status == "ok" => step.note = Some(e),
                Err(_) => {}
            }
        }
    }

    fn skip(&mut self, argv: &[&str], why: &str) {
        self.steps.push(StepRecord {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            file: None,
            status: "skipped",
            exit_code: None,
            duration_ms: 0,
            bytes: 0,
            truncated: false,
            note: Some(why.to_string()),
        });
    }

    /// Runs every collection step and writes the manifest. Returns the manifest.
    pub fn collect_all(mut self) -> std::io::Result<Manifest> {
        let start = Instant::now();
        let time = rfc3339(SystemTime::now());
        let tools = tool_versions();

        // iptables: the default backend first, then the other backend when it has tables.
        let default_is_nft = tools
            .iter()
            .any(|(t, v)| t == "iptables" && v.contains("nf_tables"));
        let ipt_nft = self.step(&["iptables-save"], Some("iptables-save.txt"));
        self.step(&["ip6tables-save"], Some("ip6tables-save.txt"));
        let (other, other6, other_file, other6_file) = if default_is_nft {
            (
                "iptables-legacy-save",
                "ip6tables-legacy-save",
                "iptables-legacy-save.txt",
                "ip6tables-legacy-save.txt",
            )
        } else {
            (
                "iptables-nft-save",
                "ip6tables-nft-save",
                "iptables-nft-save.txt",
                "ip6tables-nft-save.txt",
            )
        };
        let other_out = self.step(&[other], Some(other_file));
        let other6_out = self.step(&[other6], Some(other6_file));
        let _ = (other_out, other6_out);
        let nft_managed: Vec<String> = if default_is_nft {
            String::from_utf8_lossy(&ipt_nft)
                .lines()
                .filter_map(|l| l.strip_prefix('*'))
                .map(|t| t.trim().to_string())
                .collect()
        } else {
            let text = fs::read_to_string(self.out.join(other_file)).unwrap_or_default();
            text.lines()
                .filter_map(|l| l.strip_prefix('*'))
                .map(|t| t.trim().to_string())
                .collect()
        };

        // nft: list the tables (cheap), then only the native ones.
        let mut choices = Vec::new();
        for (family, name) in self.nft_tables() {
            let (family, name) = (family.as_str(), name.as_str());
            let xtables = matches!(family, "ip" | "ip6" | "arp" | "bridge")
                && matches!(
                    name,
                    "filter" | "nat" | "mangle" | "raw" | "security" | "broute"
                )
                && nft_managed.iter().any(|t| t == name);
            if xtables {
                choices.push(NftChoice {
                    family: family.into(),
                    table: name.into(),
                    listed: false,
                    reason: "managed by iptables-nft: read through iptables-save (much cheaper on large nodes)".into(),
                });
                continue;
            }
            let file = format!("nft-{family}-{}.json", sanitize(name));
            self.step(&["nft", "-j", "list", "table", family, name], Some(&file));
            choices.push(NftChoice {
                family: family.into(),
                table: name.into(),
                listed: true,
                reason: "native nft table".into(),
            });
        }

        self.step(&["ip", "-j", "rule", "show"], Some("ip-rule.json"));
        self.step(&["ip", "-6", "-j", "rule", "show"], Some("ip6-rule.json"));
        self.step(&["ip", "xfrm", "policy"], Some("xfrm-policy.txt"));
        self.step(&["ip", "-s", "xfrm", "state"], Some("xfrm-state.txt"));

        // tc filters on every device, both directions.
        let links = self.step(&["ip", "-o", "link", "show"], None);
        for dev in link_names(&String::from_utf8_lossy(&links)) {
            for dir in ["ingress", "egress"] {
                let file = format!("tc-filter-{}-{dir}.txt", sanitize(&dev));
                self.step(&["tc", "filter", "show", "dev", &dev, dir], Some(&file));
            }
        }
        self.step(&["ip", "-d", "-o", "link", "show"], Some("ip-link.txt"));

        // Open vSwitch, only when present.
        let bridges = self.step(&["ovs-vsctl", "list-br"], None);
        if self.steps.last().is_some_and(|s| s.status == "missing") {
            self.skip(
                &["ovs-ofctl", "dump-flows"],
                "Open vSwitch is not installed",
            );
        } else {
            for br in String::from_utf8_lossy(&bridges)
                .lines()
                .map(str::trim)
                .filter(|b| !b.is_empty())
            {
                let file = format!("ovs-{}.txt", sanitize(br));
                self.step(&["ovs-ofctl", "dump-flows", br], Some(&file));
            }
        }

        self.step(&["ss", "-tuanpe"], Some("ss.txt"));
        self.step(&["sysctl", "-a"], Some("sysctl.txt"));
        self.step(&["wg", "show", "all", "fwmark"], Some("wg-fwmark.txt"));
        self.step(&["ipvsadm", "-Ln"], Some("ipvsadm.txt"));
        self.step(&["bpftool", "net"], Some("bpftool-net.txt"));
        self.bpf_programs();

        let manifest = Manifest {
            version: 1,
            host: read_trim("/proc/sys/kernel/hostname"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            time,
            markspace: env!("CARGO_PKG_VERSION"),
            tools,
            nft_tables: choices,
            steps: self.steps,
            duration_ms: start.elapsed().as_millis(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        fs::write(self.out.join("manifest.json"), json)?;
        Ok(manifest)
    }
}

/// The first line of each tool's version output ("not installed" when it is missing).
fn tool_versions() -> Vec<(String, String)> {
    let probes: [(&str, &[&str]); 9] = [
        ("iptables", &["iptables", "--version"]),
        ("nft", &["nft", "--version"]),
        ("ip", &["ip", "-V"]),
        ("tc", &["tc", "-V"]),
        ("ss", &["ss", "-V"]),
        ("wg", &["wg", "--version"]),
        ("ovs-vsctl", &["ovs-vsctl", "--version"]),
        ("ipvsadm", &["ipvsadm", "--version"]),
        ("bpftool", &["bpftool", "version"]),
    ];
    // The probes are independent and each is a process start and a line of output: run
    // side by side, they cost one probe's time instead of nine (a tenth of a small node's
    // whole collection when run one after another).
    std::thread::scope(|s| {
        let running: Vec<_> = probes
            .iter()
            .map(|(tool, argv)| {
                s.spawn(move || {
                    let (stdout, rec) = run(
                        argv,
                        Limits {
                            timeout: Duration::from_secs(10),
                            max_output: 1 << 16,
                        },
                    );
                    let version = match rec.status {
                        "missing" => "not installed".to_string(),
                        _ => String::from_utf8_lossy(&stdout)
                            .lines()
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_string(),
                    };
                    (tool.to_string(), version)
                })
            })
            .collect();
        running
            .into_iter()
            .zip(probes)
            .map(|(probe, (tool, _))| {
                probe
                    .join()
                    .unwrap_or_else(|_| (tool.to_string(), String::new()))
            })
            .collect()
    })
}

/// Device names from `ip -o link show` (`2: eth0@if5: <…>` → `eth0`).
fn link_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let name = l.split(':').nth(1)?.trim();
            let name = name.split('@').next()?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// A file-name-safe version of a device or table name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Formats a time as RFC 3339 UTC (civil-from-days, Howard Hinnant's algorithm), to avoid a date
/// crate for one timestamp.
/// A time as RFC 3339 UTC (`2026-12-04T17:38:26Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A source a live audit needs that a collection could not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unread {
    /// The command, as run.
    pub command: String,
    /// What it would have read.
    pub what: &'static str,
    /// Why it was not read: the missing capability, the missing tool, the timeout.
    pub reason: String,
}

/// What a command of the collection reads, when an audit cannot be complete without it: the
/// iptables listings of the default backend, the nftables tables and the policy routing rules.
/// The other iptables backend, tc, OVS, sockets and the rest only add detail.
fn needed(argv: &[&str]) -> Option<&'static str> {
    match argv {
        ["iptables-save"] => Some("IPv4 iptables rules"),
        ["ip6tables-save"] => Some("IPv6 iptables rules"),
        ["nft", "list", "tables"] => Some("the list of nftables tables"),
        ["nft", "-j", "list", "table", ..] => Some("a native nftables table"),
        ["ip", "-j", "rule", "show"] => Some("IPv4 policy routing rules (ip rule)"),
        ["ip", "-6", "-j", "rule", "show"] => Some("IPv6 policy routing rules (ip -6 rule)"),
        _ => None,
    }
}

/// The sources a snapshot's manifest (`manifest.json`, as [`Collector::collect_all`] writes
/// it) says were not read: needed commands that failed, timed out or are not installed.
pub fn unread_sources(manifest: &serde_json::Value) -> Vec<Unread> {
    let mut out = Vec::new();
    let Some(steps) = manifest.get("steps").and_then(|s| s.as_array()) else {
        return out;
    };
    for step in steps {
        let argv: Vec<&str> = step
            .get("argv")
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
            .unwrap_or_default();
        let Some(what) = needed(&argv) else { continue };
        let status = step.get("status").and_then(|s| s.as_str()).unwrap_or("");
        let note = step
            .get("note")
            .and_then(|n| n.as_str())
            .and_then(|n| n.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("")
            .trim();
        let reason = match status {
            "ok" | "skipped" => continue,
            "missing" => format!("{} is not installed", argv[0]),
            "timeout" => "it timed out (raise --timeout)".to_string(),
            _ => {
                let lower = note.to_ascii_lowercase();
                let code = step
                    .get("exit_code")
                    .and_then(|c| c.as_i64())
                    .map(|c| format!("exit status {c}"))
                    .unwrap_or_else(|| "failed".into());
                if lower.contains("permission denied")
                    || lower.contains("operation not permitted")
                    || lower.contains("must be root")
                {
                    format!("missing capability: it needs CAP_NET_ADMIN (run as root, or with CAP_NET_ADMIN and CAP_NET_RAW) ({code}: {note})")
                } else if note.is_empty() {
                    code
                } else {
                    format!("{code}: {note}")
                }
            }
        };
        out.push(Unread {
            command: argv.join(" "),
            what,
            reason,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_683_600)),
            "2026-11-26T09:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn reads_link_names() {
        let text = "1: lo: <LOOPBACK,UP> mtu 65536\n2: eth0@if7: <BROADCAST> mtu 1500\n";
        assert_eq!(link_names(text), vec!["lo", "eth0"]);
    }

    #[test]
    fn missing_tool_is_recorded() {
        let (_, rec) = run(&["markspace-no-such-tool-x"], Limits::default());
        assert_eq!(rec.status, "missing");
    }

    #[test]
    fn timeout_kills_the_command() {
        let (_, rec) = run(
            &["sleep", "5"],
            Limits {
                timeout: Duration::from_millis(100),
                max_output: 10,
            },
        );
        assert_eq!(rec.status, "timeout");
        assert!(rec.duration_ms < 3000);
    }

    #[test]
    fn output_is_capped() {
        let (out, rec) = run(
            &["head", "-c", "100000", "/dev/zero"],
            Limits {
                timeout: Duration::from_secs(5),
                max_output: 1000,
            },
        );
        assert_eq!(out.len(), 1000);
        assert!(rec.truncated);
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(sanitize("wg-quick/wg0 x"), "wg-quick_wg0_x");
    }
}
