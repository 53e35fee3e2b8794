//! Edges of `audit`: an empty ruleset is valid input, and control characters in echoed input
//! never reach the terminal (text and Markdown escape them; JSON escapes them by itself).

use crate::util::{run, run_stdin, Dir};

#[test]
fn an_empty_ruleset_is_valid() {
    for input in ["", "\n\n", "   \n"] {
        let r = run_stdin(&["audit", "-"], input);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("no rules"), "{}", r.stdout);
        assert!(
            r.stderr.len() < 200,
            "a long hint for an empty input: {}",
            r.stderr
        );
        let r = run_stdin(&["audit", "--format", "json", "-"], input);
        assert_eq!(r.code, 0);
        assert_eq!(r.json()["summary"]["rules"], 0);
    }
}

#[test]
fn control_characters_in_input_are_escaped() {
    let d = Dir::new();
    let evil = "x\u{1b}]0;pwned\u{7}\u{1b}[31mred\u{9b}2J";
    let rules = format!(
        "*mangle\n:PREROUTING ACCEPT [0:0]\n:EVIL{} - [0:0]\n-A PREROUTING -j EVIL\u{1b}[2J\n-A PREROUTING -m comment --comment \"{evil}\" -j MARK --set-mark 0x1\n-A PREROUTING -m comment --comment \"kubernetes\" -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n",
        "\u{1b}[2J"
    );
    let file = d.file("iptables-save.txt", &rules);
    for format in ["text", "markdown"] {
        let r = run(&["audit", "--fail-on", "never", "--format", format, &file]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        for c in ['\u{1b}', '\u{7}', '\u{9b}'] {
            assert!(
                !r.stdout.contains(c),
                "{format} output holds {c:?}:\n{}",
                r.stdout
            );
            assert!(
                !r.stderr.contains(c),
                "{format} stderr holds {c:?}:\n{}",
                r.stderr
            );
        }
        assert!(
            r.stdout.contains("\\x1b]0;pwned\\x07"),
            "{format}:\n{}",
            r.stdout
        );
    }
    let r = run(&["audit", "--fail-on", "never", "--format", "json", &file]);
    assert!(!r.stdout.contains('\u{1b}'));
    // A malformed line echoed in an error is escaped too.
    let bad = d.file(
        "bad.txt",
        "*mangle\n-A PREROUTING -j MARK --set-xmark \u{1b}[2J\u{7}\nCOMMIT\n",
    );
    let r = run(&["audit", &bad]);
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
        "{}",
        r.stderr
    );
}

#[test]
fn sarif_output_for_code_scanning() {
    let node = crate::util::root().join("examples/nodes/tailscale-calico");
    let r = run(&["audit", "--format", "sarif", node.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["version"], "2.1.0");
    let run0 = &j["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "markspace");
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run0["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        assert!(rules.iter().any(|r| r["id"] == id), "{id} is not a rule");
        assert!(["error", "warning", "note"].contains(&res["level"].as_str().unwrap()));
        let loc = &res["locations"][0]["physicalLocation"];
        assert!(loc["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("iptables-save.txt"));
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    assert_eq!(run0["invocations"][0]["executionSuccessful"], true);
    // Per node with --each: one run each.
    let nodes = crate::util::root().join("examples/nodes");
    let r = run(&[
        "audit",
        "--each",
        "--format",
        "sarif",
        nodes.to_str().unwrap(),
    ]);
    assert_eq!(r.json()["runs"].as_array().unwrap().len(), 6);
    // The other commands do not take sarif.
    let r = run(&["registry", "list", "--format", "sarif"]);
    assert_eq!(r.code, 2);
}

#[test]
fn a_negated_ip_rule_is_not_described_as_requiring_its_bits() {
    let d = Dir::new();
    d.file("ip-rule.txt", "0:\tfrom all lookup local\n5270:\tnot from all fwmark 0x80000/0xff0000 lookup 52\n32766:\tfrom all lookup main\n");
    let f = d.file(
        "iptables-save.txt",
        "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n-A INPUT -j KUBE-FIREWALL\n-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x80000/0x80000 -j DROP\nCOMMIT\n",
    );
    let dir = std::path::Path::new(&f)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let r = run(&["audit", "--fail-on", "never", "--format", "json", &dir]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for finding in r.json()["findings"].as_array().unwrap() {
        let title = finding["title"].as_str().unwrap();
        let negated = finding["evidence"]
            .as_array()
            .unwrap()
            .iter()
            // The subject of "only match packets carrying" (the first owner) must not be the
            // owner whose selector is negated.
            .any(|e| {
                e["text"].as_str().unwrap().contains("not from all fwmark")
                    && e["owner"] == finding["owners"][0]
            });
        assert!(
            !(negated && title.contains("only match packets carrying")),
            "{title}"
        );
    }
}

#[test]
fn one_cause_per_error_line() {
    let r = run(&["audit", "/nonexistent"]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn a_baseline_suppresses_with_reasons_and_expires() {
    let node = crate::util::root().join("examples/nodes/tailscale-calico");
    let node = node.to_str().unwrap();
    let d = Dir::new();
    let file = d.path().join("baseline.toml");
    let file = file.to_str().unwrap();
    let r = run(&["audit", "--write-baseline", file, node]);
    assert_eq!(
        r.code, 1,
        "writing a baseline does not change this run's status"
    );
    let r = run(&["audit", "--baseline", file, "--format", "json", node]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["summary"]["errors"], 0);
    assert!(j["findings"].as_array().unwrap().is_empty());
    let suppressed = j["suppressed"].as_array().unwrap();
    assert_eq!(
        j["summary"]["suppressed"].as_u64().unwrap() as usize,
        suppressed.len()
    );
    assert!(suppressed.iter().any(|s| s["finding"]["code"] == "MS001"
        && s["reason"].as_str().unwrap().contains("replace with why")));
    // A reason is required.
    let bad = d.file(
        "bad.toml",
        "[[suppress]]\ncode = \"MS001\"\nreason = \" \"\n",
    );
    let r = run(&["audit", "--baseline", &bad, node]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("reason"), "{}", r.stderr);
    // An expired entry no longer applies, and says so.
    let old = d.file(
        "old.toml",
        "[[suppress]]\ncode = \"MS001\"\nowners = [\"tailscale\", \"calico\"]\nreason = \"INC-1\"\nexpires = \"2020-01-01\"\n",
    );
    let r = run(&["audit", "--baseline", &old, "--format", "json", node]);
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(j["summary"]["suppressed"], 0);
    assert!(j["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["message"].as_str().unwrap().contains("expired")));
    // Only matching owners are suppressed.
    let other = d.file(
        "other.toml",
        "[[suppress]]\ncode = \"MS001\"\nowners = [\"cilium\", \"calico\"]\nreason = \"x\"\n",
    );
    let r = run(&["audit", "--baseline", &other, "--format", "json", node]);
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["summary"]["suppressed"], 0);
}

#[test]
fn every_format_is_honoured_or_rejected() {
    // registry show honours text.
    let r = run(&["registry", "show", "kube-proxy", "--format", "text"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("kube-proxy (kube-proxy)") && !r.stdout.contains('{'),
        "{}",
        r.stdout
    );
    // Markdown only where it is printed.
    for args in [
        &["registry", "list", "--format", "markdown"][..],
        &["registry", "who", "0x4000", "--format", "markdown"],
        &["registry", "export", "--format", "text"],
        &["trace", "x", "--format", "markdown"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
    }
    let r = run(&["registry", "export"]);
    assert!(r.stdout.starts_with("# "), "{}", r.stdout);
}
