//! `markspace collect` and `audit --live` on a node built for real in a network namespace.
//! Needs root (CI runs as root); without root the test says so and returns.

use std::process::Command;

use netns_testkit::{is_root, run, Netns};

use crate::util::{owner, Dir};

const RULES: &str = "\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
";

/// A namespace holding kube-proxy's rules (`RULES`) and Tailscale's fwmark `ip rule`.
fn node(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.exec(&["iptables-restore"], Some(RULES));
    ns.exec(
        &[
            "ip",
            "rule",
            "add",
            "pref",
            "5210",
            "fwmark",
            "0x80000/0xff0000",
            "lookup",
            "main",
        ],
        None,
    );
    ns
}

/// Digests of every ruleset the collector could touch, without counters.
fn state(ns: &Netns) -> String {
    let mut s = String::new();
    for argv in [
        &["iptables-save"][..],
        &["ip6tables-save"],
        &["nft", "list", "ruleset"],
        &["ip", "rule", "show"],
        &["ip", "-6", "rule", "show"],
        &["ip", "xfrm", "policy"],
        &["ip", "xfrm", "state"],
        &["tc", "filter", "show", "dev", "lo", "ingress"],
    ] {
        let out = ns.exec(argv, None);
        for line in out
            .lines()
            .filter(|l| !l.starts_with("# Generated") && !l.starts_with("# Completed"))
        {
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

#[test]
fn collect_is_read_only_and_audit_reads_its_snapshot() {
    if !is_root() {
        eprintln!("collect test SKIPPED: not root (CI runs as root)");
        return;
    }
    let ns = node("collect");
    ns.exec(&["ip", "rule", "add", "pref", "5270", "table", "52"], None);
    ns.exec(
        &[
            "ip",
            "xfrm",
            "policy",
            "add",
            "src",
            "10.0.0.0/8",
            "dst",
            "10.0.0.0/8",
            "dir",
            "out",
            "mark",
            "0x9e00",
            "mask",
            "0xff00",
            "tmpl",
            "src",
            "10.0.0.1",
            "dst",
            "10.0.0.2",
            "proto",
            "esp",
            "spi",
            "0x1",
            "mode",
            "tunnel",
        ],
        None,
    );
    // tc actions need kernel modules this machine may lack; a qdisc is enough to be read.
    ns.exec(&["tc", "qdisc", "add", "dev", "lo", "clsact"], None);
    // A native nft table that writes a whole mark (Mullvad's), beside the iptables-nft tables.
    ns.exec(
        &["nft", "-f", "-"],
        Some("table inet mullvad {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -199; policy accept;\n\t\tiifname \"wg0-mullvad\" meta mark set 0x6d6f6c65\n\t}\n}\n"),
    );
    // A socket with SO_MARK (36) held open while collecting: `ss -e` shows its fwmark.
    let mut socket = Command::new("ip")
        .args(["netns", "exec", ns.name(), "python3", "-c"])
        .arg("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET,36,0x80000)\ns.bind(('127.0.0.1',41641))\nprint('ready',flush=True)\ntime.sleep(30)")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(socket.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let before = state(&ns);

    let d = Dir::new();
    let snap = d.path().join("snap");
    let snap_s = snap.display().to_string();
    ns.exec(
        &[env!("CARGO_BIN_EXE_markspace"), "collect", "--out", &snap_s],
        None,
    );
    let after = state(&ns);
    let _ = socket.kill();
    let _ = socket.wait();
    assert_eq!(before, after, "collect changed the node");

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    let steps = manifest["steps"].as_array().unwrap();
    let argv = |s: &serde_json::Value| {
        s["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let commands: Vec<String> = steps.iter().map(argv).collect();
    for expected in [
        "iptables-save",
        "ip6tables-save",
        "netlink NFT_MSG_GETTABLE",
        "ip -j rule show",
        "ip -6 -j rule show",
        "ip xfrm policy",
        "ip -s xfrm state",
        "tc filter show dev lo ingress",
        "tc filter show dev lo egress",
        "ss -tuanpe",
        "sysctl -a",
        "wg show all fwmark",
        "ipvsadm -Ln",
        "bpftool net",
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "manifest lacks `{expected}`: {commands:?}"
        );
    }
    for s in steps {
        assert!(["ok", "failed", "timeout", "missing", "skipped"]
            .contains(&s["status"].as_str().unwrap()));
        assert!(s["duration_ms"].is_u64());
    }
    assert!(manifest["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(manifest["tools"].as_array().is_some_and(|t| !t.is_empty()));
    let tables = manifest["nft_tables"].as_array().unwrap();
    // The tables come from the netlink dump, not `nft list tables` (which fetches every rule),
    // and are the ones `nft list tables` prints.
    let dump = steps
        .iter()
        .find(|s| argv(s) == "netlink NFT_MSG_GETTABLE")
        .unwrap();
    assert_eq!(dump["status"], "ok", "{dump}");
    assert!(
        !commands.iter().any(|c| c == "nft list tables"),
        "{commands:?}"
    );
    let mut by_nft: Vec<String> = ns
        .exec(&["nft", "list", "tables"], None)
        .lines()
        .map(|l| l.trim_start_matches("table ").to_string())
        .collect();
    let mut by_dump: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["family"].as_str().unwrap(),
                t["table"].as_str().unwrap()
            )
        })
        .collect();
    by_nft.sort();
    by_dump.sort();
    assert_eq!(by_dump, by_nft);
    assert!(
        tables
            .iter()
            .any(|t| t["table"] == "nat" && t["listed"] == false),
        "iptables-nft tables are left to iptables-save: {tables:?}"
    );
    assert!(snap.join("iptables-save.txt").exists());
    assert!(
        tables
            .iter()
            .any(|t| t["table"] == "mullvad" && t["listed"] == true),
        "{tables:?}"
    );
    assert!(snap.join("nft-inet-mullvad.json").exists());
    assert!(std::fs::read_to_string(snap.join("ss.txt"))
        .unwrap()
        .contains("fwmark:0x80000"));
    assert!(snap.join("xfrm-policy.txt").exists());

    // The snapshot audits like any directory.
    let out = Command::new(env!("CARGO_BIN_EXE_markspace"))
        .args(["audit", "--format", "json", &snap_s])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(owner(&report, "kube-proxy").is_some(), "{report}");
    assert!(owner(&report, "kubelet").is_some(), "{report}");
    // Tailscale's ip rules (5210 fwmark 0x80000/0xff0000, 5270 table 52) are attributed.
    assert!(
        owner(&report, "tailscale").is_some_and(|o| o["reads"]["mark"] == "0x00ff0000"),
        "{report}"
    );
    // The native nft table is read and attributed, and its whole-mark write reported.
    assert!(
        owner(&report, "mullvad").is_some_and(|o| o["writes"]["mark"] == "0xffffffff"),
        "{report}"
    );
    // The socket's SO_MARK 0x80000 is a whole write at the socket.
    let socket_mark = &report["bitmap"]["mark"][19]["writers"];
    assert!(!socket_mark.as_array().unwrap().is_empty(), "{socket_mark}");
    // The xfrm policy's mark 0x9e00/0xff00 reads bit 0x8000, kubelet's drop bit: reported.
    let bit15 = &report["bitmap"]["mark"][15]["readers"];
    assert!(bit15.as_array().unwrap().len() >= 2, "{bit15}");
    let implied = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "MS013");
    assert!(
        implied.is_some_and(|f| f["owners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "kubelet")
            && u32::from_str_radix(f["bits"].as_str().unwrap().trim_start_matches("0x"), 16)
                .unwrap()
                & 0x8000
                != 0),
        "{report}"
    );

    // audit --live does the same in one step, inside the namespace.
    let live = ns.exec(
        &[
            env!("CARGO_BIN_EXE_markspace"),
            "audit",
            "--live",
            "--format",
            "json",
            "--fail-on",
            "never",
        ],
        None,
    );
    let live: serde_json::Value = serde_json::from_str(&live).unwrap();
    assert!(owner(&live, "kube-proxy").is_some());
    assert_eq!(state(&ns), before, "audit --live changed the node");
}

/// The collector needs only CAP_NET_ADMIN and CAP_NET_RAW (SECURITY.md): run it as root with a
/// bounding set of exactly those, and as an unprivileged user with them as ambient capabilities.
#[test]
fn collect_runs_with_only_net_admin_and_net_raw() {
    if !is_root() {
        eprintln!("capability test SKIPPED: not root (CI runs as root)");
        return;
    }
    let ns = node("caps");
    let before = state(&ns);
    let d = Dir::new();
    run(&["chmod", "0777", &d.path().display().to_string()], None);
    let caps = "-all,+net_admin,+net_raw";
    for (who, extra) in [
        ("root", vec![]),
        (
            "nobody",
            vec!["--reuid=65534", "--regid=65534", "--clear-groups"],
        ),
    ] {
        let snap = d.path().join(who);
        let snap_s = snap.display().to_string();
        let mut argv = vec!["setpriv"];
        argv.extend(extra.iter().copied());
        argv.extend([
            "--inh-caps",
            caps,
            "--ambient-caps",
            caps,
            "--bounding-set",
            caps,
        ]);
        argv.extend([env!("CARGO_BIN_EXE_markspace"), "collect", "--out", &snap_s]);
        ns.exec(&argv, None);
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
                .unwrap();
        for step in manifest["steps"].as_array().unwrap() {
            let argv0 = step["argv"][0].as_str().unwrap();
            let needed = ["iptables-save", "nft", "ip", "netlink"].contains(&argv0);
            if needed {
                assert_eq!(step["status"], "ok", "{who}: {step}");
            }
        }
        let saved = std::fs::read_to_string(snap.join("iptables-save.txt")).unwrap();
        assert!(saved.contains("KUBE-MARK-MASQ"), "{who}: {saved}");
        assert!(std::fs::read_to_string(snap.join("ip-rule.json"))
            .unwrap()
            .contains("5210"));
    }
    assert_eq!(state(&ns), before);
}
