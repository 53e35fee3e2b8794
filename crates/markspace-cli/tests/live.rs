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
