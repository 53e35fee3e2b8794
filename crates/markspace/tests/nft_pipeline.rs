//! One pipeline for iptables-nft and nft: a kube-proxy-like ruleset is loaded into a fresh
//! network namespace with `iptables-nft-restore`, and the node is dumped three ways:
//! `iptables-save`, `nft list ruleset` and `nft -j list ruleset`. Auditing each alone must give
//! the same owners, bit map and findings (`analysis::analyze` + `report::Report`), except what
//! nft's JSON cannot show: iptables-nft keeps `MARK`/`CONNMARK` targets as xtables extensions,
//! and `nft -j` prints them as `{"xt": {"type": "target", "name": "MARK"}}` without parameters,
//! so the JSON-alone audit misses those writes and says so in a warning per rule. Auditing
//! `iptables-save` together with either nft dump counts every rule once and gives exactly the
//! `iptables-save` result.
//!
//! Runs as root only; the namespace is deleted on any exit.

use markspace::analysis::analyze;
use markspace::diagnostic::Level;
use markspace::registry::Registry;
use markspace::report::Report;
use markspace::snapshot::NodeLoader;
use netns_testkit::{is_root, Netns};

const KUBE_PROXY: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-ABCDEFGHIJKLMNOP - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-QRSTUVWXYZ012345 - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-ABCDEFGHIJKLMNOP -s 10.244.1.5/32 -m comment --comment "default/web" -j KUBE-MARK-MASQ
-A KUBE-SEP-ABCDEFGHIJKLMNOP -p tcp -m comment --comment "default/web" -m tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-SVC-QRSTUVWXYZ012345
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-QRSTUVWXYZ012345 ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-QRSTUVWXYZ012345 -m comment --comment "default/web -> 10.244.1.5:8080" -j KUBE-SEP-ABCDEFGHIJKLMNOP
COMMIT
"#;

/// MARK targets in the ruleset: what `nft -j` hides.
const XT_MARK_TARGETS: usize = 3;

/// What must agree: owners with their bits and rule counts, both bit maps, the findings
/// (code, severity, owners, field, bits), and the rule counts.
#[derive(Debug, PartialEq)]
struct Digest {
    owners: Vec<(String, serde_json::Value, serde_json::Value, usize)>,
    bitmap: serde_json::Value,
    findings: Vec<(String, String, Vec<String>, String, String)>,
    rules: (usize, usize),
}

fn audit(inputs: &[(&str, &str)]) -> (Digest, Report) {
    let registry = Registry::embedded().expect("registry");
    let mut loader = NodeLoader::new();
    for (name, text) in inputs {
        loader
            .add_text(name, text.as_bytes().to_vec(), true)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let node = loader.finish();
    let errors: Vec<_> = node
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .map(|d| format!("{}: {}", d.render(&node.sources).location, d.message))
        .collect();
    assert!(errors.is_empty(), "errors: {errors:?}");
    let analysis = analyze(&node, &registry);
    let report = Report::new(&node, &analysis);
    let j = serde_json::to_value(&report).expect("report serialises");
    let owners = j["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or("").to_string(),
                o["reads"].clone(),
                o["writes"].clone(),
                o["rules"].as_u64().unwrap_or(0) as usize,
            )
        })
        .collect();
    let findings = j["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap_or("").to_string(),
                f["owners"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                f["field"].as_str().unwrap_or("").to_string(),
                f["bits"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let digest = Digest {
        owners,
        bitmap: j["bitmap"].clone(),
        findings,
        rules: (
            j["summary"]["rules"].as_u64().unwrap_or(0) as usize,
            j["summary"]["mark_rules"].as_u64().unwrap_or(0) as usize,
        ),
    };
    (digest, report)
}

#[test]
fn iptables_nft_and_nft_dumps_of_one_node_agree() {
    if !is_root() {
        println!("nft pipeline: SKIPPED, not root (it needs `ip netns add`; CI runs it as root)");
        return;
    }
    let ns = Netns::new("nft-pipeline");
    let exec = |cmd: &[&str], stdin: Option<&str>| ns.exec(cmd, stdin);
    exec(&["iptables-nft-restore"], Some(KUBE_PROXY));
    let save = exec(&["iptables-nft-save"], None);
    let text = exec(&["nft", "list", "ruleset"], None);
    let json = exec(&["nft", "-j", "list", "ruleset"], None);
    drop(ns);

    let (from_save, save_report) = audit(&[("iptables-save", &save)]);
    let (from_text, _) = audit(&[("nft list ruleset", &text)]);
    let (from_json, json_report) = audit(&[("nft -j list ruleset", &json)]);
    let (save_and_text, _) = audit(&[("iptables-save", &save), ("nft list ruleset", &text)]);
    let (text_and_save, _) = audit(&[("nft list ruleset", &text), ("iptables-save", &save)]);
    let (save_and_json, save_and_json_report) =
        audit(&[("iptables-save", &save), ("nft -j list ruleset", &json)]);

    assert!(
        from_save.owners.iter().any(|o| o.0 == "kube-proxy"),
        "kube-proxy not recognised: {from_save:?}"
    );
    assert_eq!(
        from_text, from_save,
        "nft text alone differs from iptables-save alone"
    );
    assert_eq!(
        save_and_text, from_save,
        "iptables-save + nft text counts rules twice"
    );
    assert_eq!(
        text_and_save, from_save,
        "nft text + iptables-save counts rules twice"
    );
    assert_eq!(
        save_and_json, from_save,
        "iptables-save + nft JSON counts rules twice"
    );

    // JSON alone: the same owners, reads and rules; writes only where nft shows them, and a
    // warning for every MARK target it hides.
    let ids = |d: &Digest| d.owners.iter().map(|o| o.0.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&from_json), ids(&from_save));
    for (j, s) in from_json.owners.iter().zip(&from_save.owners) {
        assert_eq!(j.1, s.1, "reads of {} differ", j.0);
    }
    assert_eq!(from_json.rules.0, from_save.rules.0, "rule counts differ");
    let hidden = json_report
        .diagnostics
        .iter()
        .filter(|d| d.message.contains("xt target MARK"))
        .count();
    assert_eq!(hidden, XT_MARK_TARGETS, "{:?}", json_report.diagnostics);
    // With iptables-save beside it, the hidden targets are read from iptables-save: no warning.
    assert!(
        !save_and_json_report
            .diagnostics
            .iter()
            .any(|d| d.message.contains("xt target")),
        "{:?}",
        save_and_json_report.diagnostics
    );
    println!(
        "nft pipeline: iptables-save, nft list ruleset, and both together: {} rules ({} with \
         marks), owners {:?}, {} finding(s), identical; nft -j alone: same owners and reads, \
         {hidden} MARK target(s) reported as hidden by nft -j; iptables-save + nft -j identical \
         to iptables-save",
        from_save.rules.0,
        from_save.rules.1,
        ids(&from_save),
        save_report.findings.len()
    );
}

/// Tailscale's rules in iptables mode (`util/linuxfw`): the forward mark 0x40000/0xff0000 and
/// the masquerade of marked packets in `ts-postrouting`.
const TAILSCALE: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ts-forward - [0:0]
:ts-input - [0:0]
-A INPUT -j ts-input
-A FORWARD -j ts-forward
-A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000
-A ts-forward -m mark --mark 0x40000/0xff0000 -j ACCEPT
-A ts-forward -s 100.64.0.0/10 -o tailscale0 -j DROP
-A ts-forward -o tailscale0 -j ACCEPT
-A ts-input -s 100.101.102.103/32 -i lo -j ACCEPT
-A ts-input -s 100.115.92.0/23 ! -i tailscale0 -j RETURN
-A ts-input -s 100.64.0.0/10 ! -i tailscale0 -j DROP
-A ts-input -i tailscale0 -j ACCEPT
-A ts-input -p udp -m udp --dport 41641 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ts-postrouting - [0:0]
-A POSTROUTING -j ts-postrouting
-A ts-postrouting -m mark --mark 0x40000/0xff0000 -j MASQUERADE
COMMIT
"#;

/// The same rules as Tailscale's nftables mode writes them: native nft statements (`masquerade`,
/// `meta mark set … xor …`), loaded with `nft -f`.
const TAILSCALE_NFT: &str = r#"table ip filter {
	chain INPUT {
		type filter hook input priority filter; policy accept;
		jump ts-input
	}
	chain FORWARD {
		type filter hook forward priority filter; policy accept;
		jump ts-forward
	}
	chain ts-forward {
		iifname "tailscale0" meta mark set meta mark & 0xff00ffff ^ 0x00040000
		meta mark & 0x00ff0000 == 0x00040000 accept
		oifname "tailscale0" ip saddr 100.64.0.0/10 drop
		oifname "tailscale0" accept
	}
	chain ts-input {
		iifname "lo" ip saddr 100.101.102.103 accept
		iifname != "tailscale0" ip saddr 100.115.92.0/23 return
		iifname != "tailscale0" ip saddr 100.64.0.0/10 drop
		iifname "tailscale0" accept
		udp dport 41641 accept
	}
}
table ip nat {
	chain POSTROUTING {
		type nat hook postrouting priority srcnat; policy accept;
		jump ts-postrouting
	}
	chain ts-postrouting {
		meta mark & 0x00ff0000 == 0x00040000 masquerade
	}
}
"#;

/// One Tailscale node read from `iptables-save`, from `nft list ruleset`, and from `nft -j`
/// with `iptables-save`, and the same rules written natively in nft: the same findings, MS022
/// (the forward mark selects packets for masquerade and is never cleared) among them. Before
/// targets were typed, MS022 knew only the spelling `MASQUERADE` and missed nft's `masquerade`.
#[test]
fn tailscale_node_gives_the_same_findings_in_every_form() {
    if !is_root() {
        println!(
            "tailscale forms: SKIPPED, not root (it needs `ip netns add`; CI runs it as root)"
        );
        return;
    }
    let ns = Netns::new("ts-forms");
    ns.exec(&["iptables-nft-restore"], Some(TAILSCALE));
    let save = ns.exec(&["iptables-nft-save"], None);
    let text = ns.exec(&["nft", "list", "ruleset"], None);
    let json = ns.exec(&["nft", "-j", "list", "ruleset"], None);
    drop(ns);
    let native = Netns::new("ts-native");
    native.exec(&["nft", "-f", "-"], Some(TAILSCALE_NFT));
    let native_text = native.exec(&["nft", "list", "ruleset"], None);
    let native_json = native.exec(&["nft", "-j", "list", "ruleset"], None);
    drop(native);

    let (from_save, _) = audit(&[("iptables-save", &save)]);
    let (from_text, _) = audit(&[("nft list ruleset", &text)]);
    let (json_and_save, _) = audit(&[("nft -j list ruleset", &json), ("iptables-save", &save)]);
    let (from_native, _) = audit(&[("nft list ruleset", &native_text)]);
    let (from_native_json, _) = audit(&[("nft -j list ruleset", &native_json)]);

    let codes = |d: &Digest| d.findings.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert!(
        from_save
            .findings
            .iter()
            .any(|f| f.0 == "MS022" && f.2 == ["tailscale"] && f.4 == "0x00040000"),
        "no MS022 for tailscale from iptables-save: {:?}",
        from_save.findings
    );
    assert_eq!(from_text, from_save, "nft text differs from iptables-save");
    assert_eq!(json_and_save, from_save, "nft -j + iptables-save differs");
    assert_eq!(
        from_native.findings, from_save.findings,
        "native nft rules give other findings"
    );
    assert_eq!(from_native.bitmap, from_save.bitmap);
    assert_eq!(
        from_native_json, from_native,
        "native nft JSON differs from its text"
    );
    println!(
        "tailscale forms: iptables-save, nft list ruleset, nft -j + iptables-save, native nft \
         text and JSON agree: findings {:?}",
        codes(&from_save)
    );
}

/// MS022's fix for Tailscale, applied literally as printed (the NAT rule jumps to a chain that
/// clears the bits, then masquerades), loaded with `iptables-nft-restore` and dumped again:
/// MS022 is gone and no other finding appears.
#[test]
fn tailscale_ms022_fix_applied_literally_removes_the_finding() {
    if !is_root() {
        println!("MS022 fix: SKIPPED, not root (it needs `ip netns add`; CI runs it as root)");
        return;
    }
    let (before, report) = audit(&[("iptables-save", TAILSCALE)]);
    let fix = report
        .findings
        .iter()
        .find(|f| f.code == "MS022")
        .map(|f| f.fix.clone())
        .expect("MS022 on the Tailscale rules");
    // The printed fix names the chain and the rules to add.
    assert!(
        fix.contains("`-N ts-postrouting-NAT`")
            && fix.contains("`-A ts-postrouting-NAT -j MARK --set-xmark 0x0/0x00040000`")
            && fix.contains("`-A ts-postrouting-NAT -j MASQUERADE`"),
        "{fix}"
    );
    let fixed = TAILSCALE
        .replace(
            ":ts-postrouting - [0:0]\n",
            ":ts-postrouting - [0:0]\n:ts-postrouting-NAT - [0:0]\n",
        )
        .replace(
            "-A ts-postrouting -m mark --mark 0x40000/0xff0000 -j MASQUERADE\n",
            "-A ts-postrouting -m mark --mark 0x40000/0xff0000 -j ts-postrouting-NAT\n\
             -A ts-postrouting-NAT -j MARK --set-xmark 0x0/0x40000\n\
             -A ts-postrouting-NAT -j MASQUERADE\n",
        );
    assert_ne!(fixed, TAILSCALE);
    let ns = Netns::new("ts-fix");
    ns.exec(&["iptables-nft-restore"], Some(&fixed));
    let save = ns.exec(&["iptables-nft-save"], None);
    drop(ns);
    let (after, _) = audit(&[("iptables-save", &save)]);
    assert!(
        !after.findings.iter().any(|f| f.0 == "MS022"),
        "MS022 still there: {:?}",
        after.findings
    );
    for f in &after.findings {
        assert!(before.findings.contains(f), "new finding {f:?}");
    }
    println!(
        "MS022 fix: applied literally, MS022 gone, findings {:?}",
        after.findings
    );
}
