//! Acceptance of issue #13's "a suggestion is a claim": on the wireguard/kube-firewall example,
//! every printed fix that changes rules is applied literally to the rules (the values and masks
//! the fix text prints), the result is loaded with `iptables-restore` into a network namespace,
//! collected fresh with `markspace collect` and audited again: each such finding is gone and no
//! finding appears that the node did not have. Needs root (CI runs as root).

use netns_testkit::{is_root, Netns};

use crate::util::{root, run, Dir};

/// The text between the first backticks after `after` in `fix`.
fn quoted_after<'a>(fix: &'a str, after: &str) -> Option<&'a str> {
    let rest = &fix[fix.find(after)? + after.len()..];
    let start = rest.find('`')? + 1;
    let len = rest[start..].find('`')?;
    Some(&rest[start..start + len])
}

/// Applies one printed fix to the rules, as a user would: edits the lines its evidence names.
fn apply(rules: &str, finding: &serde_json::Value) -> String {
    let fix = finding["fix"].as_str().unwrap();
    let lines: Vec<u64> = finding["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["owner"] == finding["owners"][0])
        .filter_map(|e| e["line"].as_u64())
        .collect();
    let mut out = String::new();
    // A value move: every rule of the owner's software with the old value gets the new one.
    let moved = fix.contains("move it with").then(|| {
        let old = fix
            .split("value ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        (
            u32::from_str_radix(old.trim_start_matches("0x"), 16).unwrap(),
            quoted_after(fix, "match then reads")
                .unwrap()
                .trim_start_matches("-m mark --mark ")
                .to_string(),
        )
    });
    let copy_mask = quoted_after(fix, "connmark copies")
        .or_else(|| quoted_after(fix, "mask covering only"))
        .map(|q| q.rsplit(' ').next().unwrap().to_string());
    let match_mask =
        quoted_after(fix, "Match only").map(|q| q.rsplit(' ').next().unwrap().to_string());
    for (i, line) in rules.lines().enumerate() {
        let n = i as u64 + 1;
        let mut line = line.to_string();
        let mine = lines.contains(&n) || (moved.is_some() && line.contains("wg-quick(8)"));
        if mine {
            if let Some((old, new)) = &moved {
                line = line.replace(&format!("--mark {old:#x} "), &format!("--mark {new} "));
            }
            if let Some(m) = &match_mask {
                let re = line
                    .split("--mark ")
                    .nth(1)
                    .map(|s| s.split(' ').next().unwrap().to_string());
                if let Some(v) = re.filter(|v| !v.contains('/')) {
                    line = line.replace(&format!("--mark {v} "), &format!("--mark {m} "));
                }
            }
            if let Some(m) = &copy_mask {
                if line.contains("-mark") && line.contains("CONNMARK") {
                    line = line.replace(
                        "--nfmask 0xffffffff --ctmask 0xffffffff",
                        &format!("--mask {m}"),
                    );
                }
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn key(f: &serde_json::Value) -> (String, String, Vec<String>, u32, String) {
    (
        f["code"].as_str().unwrap().to_string(),
        f["field"].as_str().unwrap().to_string(),
        f["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_string())
            .collect(),
        u32::from_str_radix(f["bits"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
        f["severity"].as_str().unwrap().to_string(),
    )
}

/// Loads rules into a fresh namespace, collects it and audits the snapshot.
fn audit_in_netns(rules: &str) -> serde_json::Value {
    let ns = Netns::new("fixes");
    ns.exec(&["iptables-restore"], Some(rules));
    let d = Dir::new();
    let snap = d.path().join("snap");
    ns.exec(
        &[
            env!("CARGO_BIN_EXE_markspace"),
            "collect",
            "--out",
            snap.to_str().unwrap(),
        ],
        None,
    );
    run(&[
        "audit",
        "--format",
        "json",
        "--fail-on",
        "never",
        snap.to_str().unwrap(),
    ])
    .json()
}

#[test]
fn wireguard_fixes_applied_literally_in_a_netns() {
    if !is_root() {
        eprintln!("fix acceptance test SKIPPED: not root (CI runs as root)");
        return;
    }
    let example = root().join("examples/nodes/wireguard-kubefirewall/iptables-save.txt");
    let rules = std::fs::read_to_string(&example).unwrap();
    let before = audit_in_netns(&rules);
    let findings = before["findings"].as_array().unwrap().clone();
    let rule_fixes: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| ["MS003", "MS004", "MS005", "MS006"].contains(&f["code"].as_str().unwrap()))
        .filter(|f| f["fix"].as_str().unwrap().contains('`'))
        .collect();
    assert!(rule_fixes.len() >= 3, "{findings:#?}");
    let sev = |s: &str| {
        ["error", "warning", "info"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    for f in rule_fixes {
        let fixed = apply(&rules, f);
        assert_ne!(fixed, rules, "the fix changed nothing: {}", f["fix"]);
        let after = audit_in_netns(&fixed);
        eprintln!("fix applied and re-audited: {} {}", f["code"], f["fix"]);
        let (code, field, owners, _, _) = key(f);
        for g in after["findings"].as_array().unwrap() {
            let (c, fl, o, bits, s) = key(g);
            assert!(
                !(c == code && fl == field && o.first() == owners.first()),
                "fix `{}` leaves {c}: {}\n{fixed}",
                f["fix"],
                g["title"]
            );
            let known = findings.iter().any(|b| {
                let (bc, bf, bo, bb, bs) = key(b);
                bc == c
                    && bf == fl
                    && o.iter().all(|x| bo.contains(x))
                    && bits & !bb == 0
                    && sev(&s) >= sev(&bs)
            });
            assert!(
                known,
                "fix `{}` causes {c}: {}\n{fixed}",
                f["fix"], g["title"]
            );
        }
    }
}
