//! The DaemonSet's capabilities are exactly what the collector needs: `audit --live` run with
//! only the capabilities `deploy/daemonset.yaml` adds (as the bounding set, with no-new-privs,
//! as a container gets them) in a namespace holding colliding rules reads every source and
//! finds the collision; without NET_ADMIN it says the audit is incomplete.

use std::process::Command;

use netns_testkit::{is_root, Netns};

use crate::util::root;

/// The capabilities `deploy/daemonset.yaml` adds (its one `add: [...]` line).
fn daemonset_caps() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("deploy/daemonset.yaml")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("add: ["))
        .expect("an `add: [...]` line in deploy/daemonset.yaml");
    line.trim_end_matches(']')
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect()
}

/// `audit --live --format json` in `ns` with only `caps`: exit code and JSON.
fn live_with(ns: &Netns, caps: &[String]) -> (i32, serde_json::Value, String) {
    let bounding = format!(
        "-all,{}",
        caps.iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "setpriv",
            "--no-new-privs",
            "--bounding-set",
        ])
        .arg(&bounding)
        .args([
            "--",
            env!("CARGO_BIN_EXE_markspace"),
            "audit",
            "--live",
            "--format",
            "json",
            "--fail-on",
            "never",
        ])
        .env("TMPDIR", std::env::temp_dir())
        .output()
        .expect("setpriv runs (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn the_daemonsets_capabilities_are_enough_and_net_admin_is_needed() {
    if !is_root() {
        eprintln!("deploy capability test SKIPPED: not root (CI runs as root)");
        return;
    }
    let caps = daemonset_caps();
    assert_eq!(caps, ["net_admin", "net_raw", "bpf", "perfmon"]);
    let ns = Netns::new("deploy-caps");
    ns.exec(&["iptables-restore"], Some(crate::serve::CONFLICT));
    let (code, json, stderr) = live_with(&ns, &caps);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json["summary"]["incomplete"], false, "{stderr}");
    assert!(
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "MS001"),
        "{json}"
    );
    let without: Vec<String> = caps.iter().filter(|c| *c != "net_admin").cloned().collect();
    let (code, json, stderr) = live_with(&ns, &without);
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(json["summary"]["incomplete"], true);
    assert!(stderr.contains("not read: IPv4 iptables rules"), "{stderr}");
}
