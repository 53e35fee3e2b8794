//! Never a false green: `audit --live` without the privileges to read the rules exits 3, names
//! every source it could not read and why, and says so in JSON (`summary.incomplete`, error
//! diagnostics on line 0); as root in a fresh network namespace it exits 0. Needs root to
//! switch to `nobody` and to make namespaces (CI runs as root).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use netns_testkit::{is_root, Netns};

use crate::util::Dir;

#[test]
fn live_audit_without_privileges_is_incomplete_and_exits_3() {
    if !is_root() {
        eprintln!("live privilege test SKIPPED: not root (CI runs as root)");
        return;
    }
    // A copy of the binary that `nobody` may run, in a directory it may enter.
    let d = Dir::new();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = d.path().join("markspace");
    std::fs::copy(env!("CARGO_BIN_EXE_markspace"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!(
            "cd /tmp && {} audit --live --format json",
            bin.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["incomplete"], true);
    let unread: Vec<&str> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["level"] == "error" && d["line"] == 0)
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    for source in ["`iptables-save`", "`ip6tables-save`", "`nft list tables`"] {
        assert!(
            unread
                .iter()
                .any(|m| m.contains(source) && m.contains("CAP_NET_ADMIN")),
            "{source} not named as unread: {unread:?}"
        );
        assert!(stderr.contains(source), "{stderr}");
    }
    // The text report says it too, on stdout.
    let out = Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!("cd /tmp && {} audit --live", bin.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("not read: live: not read: IPv4 iptables rules"));

    let ns = Netns::new("live");
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            env!("CARGO_BIN_EXE_markspace"),
            "audit",
            "--live",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["incomplete"], false);
}

#[test]
fn collect_never_mixes_snapshots() {
    if !is_root() {
        eprintln!("collect directory test SKIPPED: not root (CI runs as root)");
        return;
    }
    let ns = Netns::new("snapdir");
    let d = Dir::new();
    let collect = |extra: &[&str]| {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            ns.name(),
            env!("CARGO_BIN_EXE_markspace"),
            "collect",
        ])
        .args(extra)
        .current_dir(d.path());
        cmd.output().unwrap()
    };
    // Twice into the default location: two fresh directories named with host and time.
    assert!(collect(&[]).status.success());
    assert!(collect(&[]).status.success());
    let mut dirs: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for name in &dirs {
        assert!(name.starts_with("markspace-snapshot-"), "{name}");
        assert!(
            name.contains('T') && name.contains('Z'),
            "no UTC time in {name}"
        );
    }
    // A non-empty --out is refused; --force replaces an earlier snapshot's own files.
    let first = d.path().join(&dirs[0]);
    let out = collect(&["--out", first.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    std::fs::write(first.join("sysctl.txt"), "markspace-test-stale-marker\n").unwrap();
    let out = collect(&["--out", first.to_str().unwrap(), "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(first.join("sysctl.txt")).unwrap_or_default();
    assert!(!text.contains("markspace-test-stale-marker"));
    // A file no snapshot wrote is never removed, even with --force.
    std::fs::write(first.join("notes.txt"), "mine\n").unwrap();
    let out = collect(&["--out", first.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.txt"));
    assert!(first.join("notes.txt").exists());
}
