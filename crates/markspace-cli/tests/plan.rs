//! `markspace plan`: the acceptance cases through the binary, and the proof: the planned
//! node generated from the registry's rule templates, loaded into a network namespace, collected
//! and audited (root; CI runs as root).
// See: issue #16; tailscale#591 (Calico and Tailscale both in 0x000f0000).

use netns_testkit::{is_root, Netns};

use crate::util::{run, Dir};

#[test]
fn calico_and_tailscale_get_a_felix_patch() {
    let r = run(&["plan", "calico", "tailscale"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1 setting(s) to change"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("spec:\n      iptablesMarkMask: 0xff000000"),
        "{}",
        r.stdout
    );
    let j = run(&["plan", "calico", "tailscale", "--format", "json"]).json();
    assert_eq!(j["feasible"], true);
    assert_eq!(j["changes"], 1);
    let s = j["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["changed"] == true)
        .unwrap();
    assert_eq!(s["software"], "calico");
    assert_eq!(s["value"], "0xff000000");
    let md = run(&["plan", "calico", "tailscale", "--format", "markdown"]);
    assert!(
        md.stdout
            .contains("| 24-31 | `0xFF000000` | mark | host | calico |"),
        "{}",
        md.stdout
    );
}

#[test]
fn cilium_and_tailscale_name_the_fixed_claims_with_sources() {
    let r = run(&["plan", "cilium", "tailscale"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("no assignment exists"));
    assert!(
        r.stdout.contains("why: cilium/identity and tailscale/"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("source: cilium/cilium pkg/datapath/linux/linux_defaults/mark.go"));
    assert!(r.stdout.contains("source: tailscale/tailscale"));
}

#[test]
fn wireguard_moves_off_the_kubernetes_bits_at_kubelet_127() {
    let j = run(&[
        "plan",
        "wireguard",
        "kube-proxy",
        "kubelet@1.27",
        "--format",
        "json",
    ])
    .json();
    assert_eq!(j["changes"], 1);
    let s = j["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["changed"] == true)
        .unwrap();
    assert_eq!(s["knob"], "fwmark");
    let v = u32::from_str_radix(s["value"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(v & 0xc000, 0, "{v:#x}");
    assert!(s["snippets"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("FwMark = 0x"));
}

#[test]
fn bad_requests_are_usage_errors() {
    let r = run(&["plan", "calico", "nosuch"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown software `nosuch`"),
        "{}",
        r.stderr
    );
    let r = run(&["plan", "calico", "--set", "calico.nosuch=1"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("has no knob `nosuch`"), "{}", r.stderr);
    let r = run(&["plan", "kubelet@one"]);
    assert_eq!(r.code, 2);
}

/// Loads an emitted node into a fresh namespace and collects it; returns the snapshot dir.
fn load_and_collect(tag: &str, node: &std::path::Path, out: &std::path::Path) -> String {
    let ns = Netns::new(tag);
    let rules = std::fs::read_to_string(node.join("iptables.rules")).unwrap();
    ns.exec(&["iptables-restore"], Some(&rules));
    for line in std::fs::read_to_string(node.join("ip-rules.txt"))
        .unwrap()
        .lines()
    {
        let mut argv = vec!["ip", "rule", "add"];
        argv.extend(line.split_whitespace());
        ns.exec(&argv, None);
    }
    let snap = out.display().to_string();
    ns.exec(
        &[env!("CARGO_BIN_EXE_markspace"), "collect", "--out", &snap],
        None,
    );
    snap
}

/// Error and warning findings whose owners are at least two planned software.
fn clashes(audit: &serde_json::Value) -> Vec<String> {
    audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info" && f["owners"].as_array().unwrap().len() >= 2)
        .map(|f| format!("{} {}", f["code"], f["title"]))
        .collect()
}

#[test]
fn the_planned_calico_tailscale_node_audits_clean_and_the_default_one_does_not() {
    if !is_root() {
        eprintln!("plan proof SKIPPED: not root (CI runs as root)");
        return;
    }
    let d = Dir::new();
    let planned = d.path().join("planned");
    let defaults = d.path().join("defaults");
    let pl = planned.display().to_string();
    let df = defaults.display().to_string();
    assert_eq!(
        run(&["plan", "calico", "tailscale", "--emit-node", &pl]).code,
        0
    );
    assert_eq!(
        run(&[
            "plan",
            "calico",
            "tailscale",
            "--emit-node",
            &df,
            "--defaults"
        ])
        .code,
        0
    );

    let snap = load_and_collect("plan-ok", &planned, &d.path().join("snap-planned"));
    let audit = run(&["audit", "--format", "json", "--fail-on", "never", &snap]).json();
    let owners: Vec<&str> = audit["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        owners,
        ["calico", "tailscale"],
        "every generated rule is attributed"
    );
    assert_eq!(clashes(&audit), Vec::<String>::new());
    let calico = audit["owners"][0]["bits"]["mark"].as_str().unwrap();
    // accept, pass, drop/scratch bits (0x0f000000) and the WireGuard routing rule's bit (the
    // fifth of the mask, 0x10000000; 0x00100000 by default): all inside the planned 0xff000000.
    assert_eq!(
        calico, "0x1f000000",
        "Felix's bits moved into the planned mask"
    );
    let check = run(&["plan", "calico", "tailscale", "--check", &snap]);
    assert_eq!(check.code, 0, "{}", check.stdout);

    let snap = load_and_collect("plan-default", &defaults, &d.path().join("snap-default"));
    let audit = run(&["audit", "--format", "json", "--fail-on", "never", &snap]).json();
    let ms001 = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "MS001")
        .expect("the default node has the collision");
    assert_eq!(ms001["severity"], "error");
    assert_eq!(ms001["owners"], serde_json::json!(["calico", "tailscale"]));
    assert!(ms001["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["links"]
            .to_string()
            .contains("tailscale/tailscale/issues/591")));
    let check = run(&["plan", "calico", "tailscale", "--check", &snap]);
    assert_eq!(check.code, 1);
    assert!(
        check.stdout.contains("drift: calico uses 0x001f0000"),
        "{}",
        check.stdout
    );
}

#[test]
fn a_node_s_other_owners_keep_their_bits() {
    // The bundled Calico + Tailscale node: planning Calico alone around it keeps Tailscale's
    // (and kube-proxy's) observed bits and moves Calico's mask.
    let node = crate::util::root().join("examples/nodes/tailscale-calico");
    let j = run(&[
        "plan",
        "calico",
        "--node",
        node.to_str().unwrap(),
        "--format",
        "json",
    ])
    .json();
    assert_eq!(j["feasible"], true);
    let owners: Vec<&str> = j["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["owner"].as_str().unwrap())
        .collect();
    assert!(
        owners.contains(&"tailscale") && owners.contains(&"kube-proxy"),
        "{owners:?}"
    );
    assert_eq!(j["settings"][0]["value"], "0xff000000");
}

#[test]
fn the_planned_wireguard_node_keeps_only_the_hazards_the_plan_lists() {
    if !is_root() {
        eprintln!("plan proof SKIPPED: not root (CI runs as root)");
        return;
    }
    let d = Dir::new();
    let planned = d.path().join("planned");
    let pl = planned.display().to_string();
    let sw = ["plan", "wireguard", "kube-proxy", "kubelet@1.27"];
    let mut args = sw.to_vec();
    args.extend(["--emit-node", &pl]);
    assert_eq!(run(&args).code, 0);
    let rules = std::fs::read_to_string(planned.join("iptables.rules")).unwrap();
    assert!(rules.contains("-m mark --mark 4 -p udp"), "{rules}");
    let snap = load_and_collect("plan-wg", &planned, &d.path().join("snap"));
    // `--check` audits with the registry as the plan leaves it: the moved `ip rule not fwmark
    // 0x4 lookup 4` is wireguard's, and what remains between the owners is wg-quick's
    // whole-field rules, which the plan lists as hazards.
    let mut args = sw.to_vec();
    args.extend(["--check", &snap, "--format", "json"]);
    let check = run(&args).json();
    assert_eq!(check["check"]["ok"], true, "{check}");
    assert_eq!(check["check"]["unplanned"], serde_json::json!([]));
    assert_eq!(check["check"]["clashes"], serde_json::json!([]));
    let mut codes: Vec<&str> = check["check"]["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, ["MS004", "MS005"]);
    let hazards: Vec<&str> = check["plan"]["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["claim"].as_str().unwrap())
        .collect();
    assert!(hazards.contains(&"wg-quick-rule") && hazards.contains(&"wg-quick-restore"));
}
