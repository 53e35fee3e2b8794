//! Test support for markspace's kernel tests (dev-only): running commands, and network
//! namespaces that are deleted when dropped, also when a test panics.
//!
//! Every test that loads rules into the kernel uses these, so a namespace is created, entered
//! and removed one way, and a failing command always reports its argv, status and output.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether the process runs as root (the effective uid, the second field of `Uid:` in
/// `/proc/self/status`: no `unsafe` `geteuid` in this workspace).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Runs `argv` (program first) with `stdin` on its standard input; its stdout, or what went
/// wrong: the argv, the exit status, stdout, stderr and the input.
pub fn try_run(argv: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("empty argv")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run `{program}`: {e} (install iproute2, iptables, nftables)")
        })?;
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input.as_bytes())
                .map_err(|e| format!("writing to `{program}`: {e}"))?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for `{program}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}):\n{}{}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            stdin.unwrap_or("")
        ))
    }
}

/// [`try_run`], panicking with its error.
pub fn run(argv: &[&str], stdin: Option<&str>) -> String {
    try_run(argv, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// A network namespace, deleted when dropped.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A fresh namespace `ms-TAG-PID-N` with loopback up (one left by a killed earlier run of the
    /// same pid is removed first). `N` counts the namespaces this process made, so two tests
    /// that pick the same tag still get namespaces of their own (two `caps` tests once shared
    /// one and saw each other's rules).
    pub fn new(tag: &str) -> Netns {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let name = format!("ms-{tag}-{}-{n}", std::process::id());
        let _ = try_run(&["ip", "netns", "del", &name], None);
        run(&["ip", "netns", "add", &name], None);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"], None);
        ns
    }

    /// Its name, for `ip -n NAME` and the like.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `argv` inside the namespace; panics when it fails.
    pub fn exec(&self, argv: &[&str], stdin: Option<&str>) -> String {
        self.try_exec(argv, stdin).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `argv` inside the namespace.
    pub fn try_exec(&self, argv: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut full = vec!["ip", "netns", "exec", self.name.as_str()];
        full.extend_from_slice(argv);
        try_run(&full, stdin)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = try_run(&["ip", "netns", "del", &self.name], None) {
            eprintln!("could not delete netns {}: {e}", self.name);
        }
    }
}
