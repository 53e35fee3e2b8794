//! `markspace audit` on what people paste (issue #14): sessions of several commands, `git grep`
//! output, fragments, and the lenient reading of pastes against the strict reading of machine
//! output.

use crate::util::{findings, owner, run, Dir};

/// The formats a report says it read, in order.
fn formats_of(j: &serde_json::Value) -> Vec<&str> {
    j["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["format"].as_str().unwrap())
        .collect()
}

/// The multi-command paste of issue #14: `git grep` over a cilium-bugtool's `iptables-save -c`
/// (counters in brackets) and its `ip xfrm policy`.
const GIT_GREP: &str = "\
$ git grep 0x8000 iptables-save--c.md
iptables-save--c.md:[573:111596] -A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x8000/0x8000 -j DROP
iptables-save--c.md:[0:0] -A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
$ git grep mark ip-xfrm-policy.md
ip-xfrm-policy.md:     mark 0x9e00/0xff00
ip-xfrm-policy.md:     mark 0xd00/0xf00
";

#[test]
fn git_grep_paste_gives_the_kubelet_drop_bit_against_the_xfrm_mark() {
    let d = Dir::new();
    let f = d.file("paste.txt", GIT_GREP);
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &f]);
    check!(r, r.code == 0);
    let j = r.json();
    let formats = formats_of(&j);
    check!(r, formats == ["iptables-save", "ip-xfrm"]);
    check!(r, owner(&j, "kubelet").is_some());
    check!(r, owner(&j, "cilium").is_some());
    let f13 = findings(&j, "MS013");
    check!(r, f13.len() == 1);
    check!(r, f13[0]["severity"] == "error");
    check!(r, f13[0]["bits"] == "0x00008000");
    check!(
        r,
        f13[0]["owners"] == serde_json::json!(["cilium", "kubelet"])
    );
    // The evidence points at the paste's own lines.
    let lines: Vec<u64> = f13[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["line"].as_u64())
        .collect();
    check!(r, lines.contains(&2) && lines.contains(&5));
    check!(r, j["summary"]["skipped_lines"] == 0);
    check!(r, j["diagnostics"].as_array().unwrap().is_empty());
}

/// The same facts as whole files give the same finding.
#[test]
fn whole_files_give_the_same_finding_as_the_git_grep_paste() {
    let d = Dir::new();
    let a = d.file(
        "iptables-save.txt",
        "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n:KUBE-MARK-DROP - [0:0]\n-A INPUT -j KUBE-FIREWALL\n-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x8000/0x8000 -j DROP\n-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000\nCOMMIT\n",
    );
    let b = d.file(
        "xfrm.txt",
        "src 10.0.0.0/8 dst 10.1.0.0/16\n\tdir out priority 0\n\tmark 0x9e00/0xff00\n\ttmpl src 1.1.1.1 dst 2.2.2.2\n\t\tproto esp spi 0x00000003 reqid 1 mode tunnel\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &a, &b]);
    check!(r, r.code == 0);
    let whole = r.json();
    let p = d.file("paste.txt", GIT_GREP);
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &p]);
    let paste = r.json();
    let f13 = findings(&paste, "MS013");
    check!(r, f13.len() == 1);
    // The whole files hold the same finding (and, with KUBE-MARK-DROP reached by no chain of
    // this small file, kubelet's side of it too).
    check!(
        r,
        findings(&whole, "MS013")
            .iter()
            .any(|f| f["title"] == f13[0]["title"]
                && f["owners"] == f13[0]["owners"]
                && f["severity"] == "error")
    );
}

/// One `iptables -L -v` line (no `Chain` header, no column header) next to `wg show all fwmark`.
const WG_NEXT_TO_L_LINE: &str = "\
$ sudo iptables -L -v
DROP all -- any any anywhere anywhere /* kubernetes firewall for dropping marked packets */ mark match 0x8000/0x8000
$ sudo wg show all fwmark
wg0\t0xca6c
";

#[test]
fn single_listing_line_next_to_wg_fwmark_names_wireguard_and_kubelet() {
    let d = Dir::new();
    let f = d.file("paste.txt", WG_NEXT_TO_L_LINE);
    let r = run(&["audit", "--format", "json", &f]);
    check!(r, r.code == 1);
    let j = r.json();
    let errors: Vec<&serde_json::Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    check!(
        r,
        errors.iter().any(|f| {
            let o = f["owners"].as_array().unwrap();
            o.iter().any(|x| x == "wireguard") && o.iter().any(|x| x == "kubelet")
        })
    );
    check!(r, j["summary"]["skipped_lines"] == 0);
    // The kubelet side's fix counts WireGuard's whole write by its value (0xca6c), not as all
    // 32 bits: both knobs are offered, each to a value off the other's bits.
    let f13 = findings(&j, "MS013");
    check!(r, f13.len() == 1);
    let fix = f13[0]["fix"].as_str().unwrap();
    check!(
        r,
        fix.contains("iptablesDropBit") && fix.contains("to 0 (mark 0x00000001)")
    );
    check!(r, fix.contains("FwMark") && fix.contains("to 0x00000a6c"));
    check!(
        r,
        !fix.contains("no bit is free") && !fix.contains("neither has")
    );
}

/// A paste with an unreadable line is read as far as it goes: the line is a warning with its
/// file:line:column, counted, and the run exits 3 when no finding reached --fail-on.
#[test]
fn paste_with_a_bad_line_is_read_leniently_and_exits_3() {
    let d = Dir::new();
    let f = d.file(
        "paste.txt",
        "$ sudo iptables -t mangle -S\n-A PREROUTING -j MARK --set-xmark 0xZZ/0xff\n-A PREROUTING -j CONNMARK --restore-mark --nfmask 0x4000 --ctmask 0x4000\n",
    );
    let r = run(&["audit", "--format", "json", &f]);
    check!(r, r.code == 3);
    check!(r, r.stderr.contains(&format!("{f}:2:")));
    check!(r, r.stderr.contains("skipped"));
    let j = r.json();
    check!(r, j["summary"]["skipped_lines"] == 1);
    check!(r, j["summary"]["mark_rules"] == 1);
    check!(r, j["diagnostics"][0]["level"] == "warning");
    check!(r, j["diagnostics"][0]["line"] == 2);
    // --strict: the same paste is an input error, nothing audited.
    let r = run(&["audit", "--strict", &f]);
    check!(r, r.code == 2);
    check!(r, r.stdout.is_empty());
}

/// Machine output stays strict; --lenient reads it as far as it goes.
#[test]
fn machine_output_is_strict_unless_lenient() {
    let d = Dir::new();
    let f = d.file(
        "save.txt",
        "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0xZZ/0xff\n-A PREROUTING -j MARK --set-xmark 0x1/0x1\nCOMMIT\n",
    );
    let r = run(&["audit", &f]);
    check!(r, r.code == 2);
    let r = run(&["audit", "--lenient", "--format", "json", &f]);
    check!(r, r.code == 3);
    check!(r, r.json()["summary"]["skipped_lines"] == 1);
}

/// Fragments: a bare rule spec, a bare target, an nft chain without its table and a lone nft
/// statement are read into the unknown table and chain, never unreachable.
#[test]
fn fragments_are_read_into_the_unknown_table() {
    let d = Dir::new();
    let spec = d.file("spec.txt", "-m mark --mark 0x4000/0x4000 -j ACCEPT\n");
    let target = d.file(
        "target.txt",
        "CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80\n",
    );
    let chain = d.file(
        "chain.txt",
        "chain k8s-nat-do-mark-masq {\n\tmeta mark set meta mark | 0x4000\n}\n",
    );
    let stmt = d.file("stmt.txt", "meta mark set ct mark & 0x80\n");
    for (f, field, reads, writes) in [
        (&spec, "mark", "0x00004000", "0x00000000"),
        (&target, "mark", "0x00000000", "0x00000080"),
        (&chain, "mark", "0x00000000", "0x00004000"),
        (&stmt, "mark", "0x00000000", "0xffffffff"),
    ] {
        let r = run(&["audit", "--format", "json", "--fail-on", "never", f]);
        check!(r, r.code == 0);
        let j = r.json();
        check!(r, j["summary"]["mark_rules"] == 1);
        check!(r, j["summary"]["unknown_context_rules"] == 1);
        check!(r, findings(&j, "MS009").is_empty());
        let o = &j["owners"][0];
        check!(r, o["reads"][field] == reads);
        check!(r, o["writes"][field] == writes);
    }
}

/// Sections no format reads are skipped with a note naming the command; the rest is audited.
#[test]
fn unclaimed_sections_are_noted_with_their_command() {
    let d = Dir::new();
    let f = d.file(
        "paste.txt",
        "```\n$ kubectl get pods -A\nNAMESPACE NAME READY\nkube-system cilium-x 1/1\n$ ip rule\n0:\tfrom all lookup local\n100:\tfrom all fwmark 0x1/0x1 lookup 100\n```\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &f]);
    check!(r, r.code == 0);
    check!(r, r.stderr.contains("kubectl get pods -A"));
    let j = r.json();
    check!(r, j["inputs"][0]["format"] == "ip-rule");
}

/// Evidence first: a distinctive value outranks names, and every owner says which evidence
/// decided it and how strong it was.
#[test]
fn values_attribute_rules_in_tables_of_other_names() {
    let d = Dir::new();
    // Mullvad's split-tunnel marks, pasted from a table not named `mullvad`.
    let mv = d.file(
        "mv.nft",
        "table inet excluded {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority -199; policy accept;\n\t\tct mark 0x00000f41 meta mark set 0x6d6f6c65\n\t}\n}\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &mv]);
    let j = r.json();
    let o = owner(&j, "mullvad").expect("mullvad by its values");
    check!(r, o["evidence"][0]["signature"] == "value");
    check!(r, o["evidence"][0]["strength"] == "strong");
    // Weave's xfrm selector: inside Weave's narrow xfrm-mark claim, not strongSwan's whole one.
    let wv = d.file(
        "xfrm.txt",
        "src 10.32.0.1/32 dst 10.32.0.2/32\n\tdir out priority 0\n\tmark 0x20000/0x20000\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &wv]);
    let j = r.json();
    let o = owner(&j, "weave-net").expect("weave-net by its xfrm claim");
    check!(r, o["evidence"][0]["signature"] == "claim");
    check!(r, o["evidence"][0]["strength"] == "medium");
    // A rule line kubelet's entry quotes is the strongest evidence; a chain name is strong too.
    let g = d.file("paste.txt", GIT_GREP);
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &g]);
    let j = r.json();
    let o = owner(&j, "kubelet").unwrap();
    check!(r, o["evidence"][0]["signature"] == "rule");
    check!(r, o["evidence"][0]["strength"] == "strong");
    let chain = d.file(
        "chain.txt",
        "-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &chain]);
    let j = r.json();
    let o = owner(&j, "kubelet").unwrap();
    check!(r, o["evidence"][0]["signature"] == "chain");
    check!(r, o["evidence"][0]["strength"] == "strong");
}

/// A paste of three commands gives all three formats, each section read by its own.
#[test]
fn iptables_save_xfrm_and_ip_rule_sections_give_all_three() {
    let d = Dir::new();
    let f = d.file(
        "session.txt",
        "$ sudo iptables-save -t mangle\n*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x200/0xf00\nCOMMIT\n$ sudo ip xfrm policy\nsrc 0.0.0.0/0 dst 10.0.0.0/8\n\tdir out priority 0\n\tmark 0xe00/0xf00\n$ ip rule\n0:\tfrom all lookup local\n10:\tfrom all fwmark 0x200/0xf00 lookup 2004\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &f]);
    check!(r, r.code == 0);
    let j = r.json();
    let formats = formats_of(&j);
    check!(r, formats == ["iptables-save", "ip-xfrm", "ip-rule"]);
    check!(r, j["summary"]["skipped_lines"] == 0);
}

/// Decorations: a `kubectl logs` preamble, an `sh -x` trace with a `\` continuation, a Markdown
/// backtick before a prompt, `grep -n` line prefixes; every line keeps its number.
#[test]
fn decorations_are_removed_without_moving_lines() {
    let d = Dir::new();
    let f = d.file(
        "trace.txt",
        "$ kubectl logs pod -c init\nsetting up\n+ iptables -t mangle -A PREROUTING \\\n    -j MARK --set-xmark 0x10/0x10\n`$ grep -n mark rules.txt`\n12:-A FORWARD -m mark --mark 0x10/0x10 -j ACCEPT\n",
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &f]);
    check!(r, r.code == 0);
    let j = r.json();
    check!(r, j["summary"]["mark_rules"] == 2);
    check!(r, j["summary"]["skipped_lines"] == 0);
    let mut lines: Vec<u64> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["evidence"].as_array().unwrap().iter())
        .filter_map(|e| e["line"].as_u64())
        .collect();
    lines.sort_unstable();
    lines.dedup();
    check!(r, lines == [3, 6]);
}

/// A paste cut inside a quote: the cut line is skipped and counted like any unreadable line.
#[test]
fn a_paste_cut_inside_a_quote_counts_the_cut_line() {
    let d = Dir::new();
    let f = d.file(
        "cut.txt",
        "$ sudo iptables -t mangle -S\n-A PREROUTING -j MARK --set-xmark 0x1/0x1\n-A PREROUTING -m comment --comment \"cut her",
    );
    let r = run(&["audit", "--format", "json", &f]);
    check!(r, r.code == 3);
    check!(r, r.stderr.contains(&format!("{f}:3:")));
    let j = r.json();
    check!(r, j["summary"]["skipped_lines"] == 1);
    check!(r, j["summary"]["mark_rules"] == 1);
}
