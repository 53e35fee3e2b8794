//! Kernel checks of the touchpoint parsers: rules are added to a fresh network namespace with
//! iproute2, read back the way users collect them, parsed, and compared with what was added and
//! with what the kernel does.
//!
//! - `ip rule`: fwmark selectors with and without masks, `not`, `fwmark 0` as typed (mask 0) and
//!   `fwmark 0/0xffffffff` (prints as `fwmark 0`), goto, unreachable; `ip rule show` and
//!   `ip -j rule show` must give the same touchpoints, equal to the expected algebra; then
//!   `ip route get … mark M` must pick the table the first matching rule (by `MarkRead::eval`)
//!   names, for marks chosen to separate the rules.
//! - `ip xfrm policy`: `mark V mask M` reads back as `mark V/M` and parses to `(m & M) == V`;
//!   `ip xfrm state` with `output-mark` when the kernel has ESP (reported otherwise).
//! - `tc`: `fw` handles and `skbedit mark` when the kernel has `cls_fw`/`act_skbedit`
//!   (reported otherwise); the multi-device text form is always exercised with what the kernel
//!   has.
//!
//! Root only (CI runs as root); as another user it prints why and returns.

use markspace::model::{Field, MarkOp, MarkRead, MarkState, MarkWrite, ALL_BITS};
use markspace::snapshot::NodeLoader;
use markspace::touchpoint::{Subsystem, Touchpoint};
use netns_testkit::{is_root, Netns};

/// Parses one captured text under a file name (format detection included).
fn touchpoints(name: &str, text: &str) -> Vec<Touchpoint> {
    let mut loader = NodeLoader::new();
    loader
        .add_text(name, text.as_bytes().to_vec(), true)
        .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let node = loader.finish();
    assert!(
        node.diagnostics.is_empty(),
        "{name}: {:?}\n{text}",
        node.diagnostics
            .iter()
            .map(|d| d.render(&node.sources).to_string())
            .collect::<Vec<_>>()
    );
    node.touchpoints
}

fn read(value: u32, mask: u32, invert: bool) -> MarkOp {
    MarkOp::Read(MarkRead::equals(Field::Mark, value, mask, invert))
}

#[test]
fn ip_rules_read_back_and_route_as_the_algebra_says() {
    if !is_root() {
        eprintln!("kernel_touchpoints: not root, skipped (CI runs as root)");
        return;
    }
    let ns = Netns::new("rule");
    ns.exec(
        &[
            "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ],
        None,
    );
    ns.exec(&["ip", "link", "set", "d0", "up"], None);
    ns.exec(&["ip", "link", "set", "d1", "up"], None);
    ns.exec(&["ip", "addr", "add", "10.9.0.1/24", "dev", "d0"], None);
    // Rule priority -> (command args, expected read or none, table).
    let rules: &[(u32, &str, Option<MarkOp>, u32)] = &[
        (100, "fwmark 0x80/0x80", Some(read(0x80, 0x80, false)), 100),
        // A value with bits outside the mask: the kernel compares only the masked bits.
        (101, "fwmark 0x170/0x70", Some(read(0x70, 0x70, false)), 101),
        (102, "not fwmark 0x5", Some(read(0x5, ALL_BITS, true)), 102),
        // As typed, `fwmark 0` has mask 0: matches everything and prints no fwmark.
        (103, "fwmark 0", None, 103),
        // `0/0xffffffff` prints as `fwmark 0`: only unmarked packets.
        (
            99,
            "fwmark 0/0xffffffff",
            Some(read(0, ALL_BITS, false)),
            99,
        ),
    ];
    for (prio, sel, _, table) in rules {
        let mut args = vec!["ip", "rule", "add", "pref"];
        let p = prio.to_string();
        args.push(&p);
        args.extend(sel.split_whitespace());
        let t = table.to_string();
        args.extend(["lookup", &t]);
        ns.exec(&args, None);
        // Each table routes 1.2.3.4 through its own gateway, so `ip route get` names the rule.
        let via = format!("10.9.0.{}", table - 90);
        ns.exec(
            &["ip", "route", "add", "1.2.3.4/32", "via", &via, "table", &t],
            None,
        );
    }
    ns.exec(
        &[
            "ip", "rule", "add", "pref", "98", "fwmark", "0x10", "goto", "100",
        ],
        None,
    );
    ns.exec(
        &[
            "ip",
            "rule",
            "add",
            "pref",
            "97",
            "fwmark",
            "0x11",
            "unreachable",
        ],
        None,
    );
    ns.exec(
        &["ip", "route", "add", "1.2.3.4/32", "via", "10.9.0.254"],
        None,
    );

    let text = ns.exec(&["ip", "rule", "show"], None);
    let json = ns.exec(&["ip", "-j", "rule", "show"], None);
    let from_text = touchpoints("ip-rule", &text);
    let from_json = touchpoints("ip-j-rule", &json);
    let key = |t: &Touchpoint| (t.context.priority, t.ops.clone(), t.context.table.clone());
    assert_eq!(
        from_text.iter().map(key).collect::<Vec<_>>(),
        from_json.iter().map(key).collect::<Vec<_>>(),
        "text and JSON differ:\n{text}\n{json}"
    );
    assert!(from_text.iter().all(|t| t.subsystem == Subsystem::IpRule));
    for (prio, sel, expected, _) in rules {
        let got = from_text
            .iter()
            .find(|t| t.context.priority == Some(*prio))
            .map(|t| t.ops[0]);
        assert_eq!(got, *expected, "rule {prio} `{sel}` read back as:\n{text}");
    }
    // The same command form parsed by markspace gives the same reads.
    let commands: String = rules
        .iter()
        .map(|(p, sel, _, t)| format!("ip rule add pref {p} {sel} lookup {t}\n"))
        .collect();
    let cmd_ops: Vec<_> = touchpoints("rules.sh", &commands)
        .iter()
        .map(|t| (t.context.priority, t.ops[0]))
        .collect();
    let expected_ops: Vec<_> = rules
        .iter()
        .filter_map(|(p, _, e, _)| e.map(|e| (Some(*p), e)))
        .collect();
    assert_eq!(cmd_ops, expected_ops);

    // Routing: the first rule (by priority) whose read matches decides; rules without a read
    // (103: `fwmark 0` as typed) match everything.
    let mut order: Vec<(u32, Option<MarkOp>, u32)> =
        rules.iter().map(|(p, _, e, t)| (*p, *e, *t)).collect();
    order.sort_by_key(|r| r.0);
    let mut checked = 0;
    for mark in [
        0u32,
        0x80,
        0x81,
        0x70,
        0x170,
        0xf0,
        0x5,
        0x6,
        0x7f,
        0xffff_ffff,
    ] {
        let expected_table = order
            .iter()
            .find(|(_, op, _)| match op {
                Some(MarkOp::Read(r)) => r.eval(mark) == Some(true),
                _ => true,
            })
            .map(|r| r.2)
            .expect("rule 103 matches everything");
        let m = format!("{mark:#x}");
        let out = ns.exec(&["ip", "route", "get", "1.2.3.4", "mark", &m], None);
        let via = format!("via 10.9.0.{} ", expected_table - 90);
        assert!(
            out.contains(&via),
            "mark {m}: expected table {expected_table} ({via}), kernel chose: {out}"
        );
        checked += 1;
    }
    // goto and unreachable rules (97, 98) are above the others: marks 0x11 and 0x10.
    assert!(ns
        .try_exec(&["ip", "route", "get", "1.2.3.4", "mark", "0x11"], None)
        .is_err());
    println!("kernel ip rule: {} rules read back identically from text and JSON, {checked} marks routed as MarkRead::eval predicts", from_text.len());
}

#[test]
fn xfrm_marks_read_back() {
    if !is_root() {
        eprintln!("kernel_touchpoints: not root, skipped (CI runs as root)");
        return;
    }
    let ns = Netns::new("xfrm");
    ns.exec(
        &[
            "ip",
            "xfrm",
            "policy",
            "add",
            "src",
            "0.0.0.0/0",
            "dst",
            "10.56.1.0/24",
            "dir",
            "out",
            "priority",
            "0",
            "mark",
            "0x9e00",
            "mask",
            "0xff00",
            "tmpl",
            "src",
            "10.56.0.17",
            "dst",
            "10.56.1.238",
            "proto",
            "esp",
            "spi",
            "9",
            "reqid",
            "1",
            "mode",
            "tunnel",
        ],
        None,
    );
    ns.exec(
        &[
            "ip",
            "xfrm",
            "policy",
            "add",
            "src",
            "::/0",
            "dst",
            "fd00::/64",
            "dir",
            "in",
            "mark",
            "0xd00",
            "mask",
            "0xf00",
            "tmpl",
            "src",
            "fd00::1",
            "dst",
            "fd00::2",
            "proto",
            "esp",
            "reqid",
            "1",
            "mode",
            "tunnel",
        ],
        None,
    );
    let text = ns.exec(&["ip", "xfrm", "policy"], None);
    let tps = touchpoints("ip-xfrm-policy", &text);
    let mut ops: Vec<(bool, MarkOp)> = tps.iter().map(|t| (t.context.ipv6, t.ops[0])).collect();
    ops.sort_by_key(|(v6, _)| *v6);
    assert_eq!(
        ops,
        vec![
            (false, read(0x9e00, 0xff00, false)),
            (true, read(0xd00, 0xf00, false))
        ],
        "{text}"
    );
    let state = ns.try_exec(
        &[
            "ip",
            "xfrm",
            "state",
            "add",
            "src",
            "10.0.0.1",
            "dst",
            "10.0.0.2",
            "proto",
            "esp",
            "spi",
            "0x3",
            "reqid",
            "1",
            "mode",
            "tunnel",
            "mark",
            "0x9e00",
            "mask",
            "0xff00",
            "output-mark",
            "0xe00",
            "mask",
            "0xf00",
            "enc",
            "cbc(aes)",
            "0x0123456789abcdef0123456789abcdef",
        ],
        None,
    );
    match state {
        Ok(_) => {
            let text = ns.exec(&["ip", "-s", "xfrm", "state"], None);
            let tps = touchpoints("ip-s-xfrm-state", &text);
            assert_eq!(tps.len(), 1, "{text}");
            assert_eq!(tps[0].ops[0], read(0x9e00, 0xff00, false));
            let MarkOp::Write(w) = tps[0].ops[1] else {
                panic!("output-mark is a write: {text}")
            };
            assert_eq!(w, MarkWrite::masked_set(Field::Mark, 0xe00, 0xf00));
            let mut s = MarkState {
                mark: 0x1234_5678,
                ..Default::default()
            };
            s.apply(&w);
            assert_eq!(s.mark, 0x1234_5e78);
            println!("kernel xfrm: policies and a state with output-mark read back");
        }
        Err(e) => {
            assert!(
                e.contains("not found") || e.contains("not supported"),
                "unexpected xfrm state error: {e}"
            );
            println!("kernel xfrm: policies read back; state with output-mark NOT CHECKED: this kernel has no ESP ({})", e.trim());
        }
    }
}

#[test]
fn tc_filters_read_back() {
    if !is_root() {
        eprintln!("kernel_touchpoints: not root, skipped (CI runs as root)");
        return;
    }
    let ns = Netns::new("tc");
    ns.exec(
        &[
            "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
        ],
        None,
    );
    for dev in ["lo", "d0"] {
        ns.exec(&["tc", "qdisc", "add", "dev", dev, "clsact"], None);
    }
    let fw = ns.try_exec(
        &[
            "tc", "filter", "add", "dev", "lo", "ingress", "protocol", "all", "pref", "1",
            "handle", "0x5/0xf", "fw", "action", "skbedit", "mark", "0x5/0xf",
        ],
        None,
    );
    // What every kernel has: u32 with mirred, on two devices, read as one concatenated capture.
    ns.exec(
        &[
            "tc", "filter", "add", "dev", "d0", "egress", "protocol", "all", "pref", "7", "u32",
            "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", "lo",
        ],
        None,
    );
    let mut capture = String::new();
    for (dev, dir) in [("lo", "ingress"), ("d0", "egress")] {
        capture.push_str(&format!("$ tc -s filter show dev {dev} {dir}\n"));
        capture.push_str(&ns.exec(&["tc", "-s", "filter", "show", "dev", dev, dir], None));
    }
    let tps = touchpoints("tc-capture", &capture);
    let json = ns.exec(
        &["tc", "-j", "filter", "show", "dev", "lo", "ingress"],
        None,
    );
    match fw {
        Ok(_) => {
            assert_eq!(tps.len(), 2, "{capture}");
            assert_eq!(tps[0].ops, vec![read(5, 0xf, false)]);
            assert_eq!(
                tps[1].ops,
                vec![MarkOp::Write(MarkWrite::masked_set(Field::Mark, 5, 0xf))]
            );
            assert!(tps
                .iter()
                .all(|t| t.context.device.as_deref() == Some("lo")));
            let from_json = touchpoints("tc-j-filter.json", &json);
            let ops: Vec<MarkOp> = from_json.iter().flat_map(|t| t.ops.clone()).collect();
            assert_eq!(ops, vec![tps[0].ops[0], tps[1].ops[0]], "{json}");
            println!("kernel tc: fw handle and skbedit mark read back from text and JSON");
        }
        Err(e) => {
            assert!(
                e.contains("not found") || e.contains("Unknown"),
                "unexpected tc error: {e}"
            );
            assert!(tps.is_empty(), "{capture}");
            println!("kernel tc: concatenated u32/mirred capture of two devices parsed; fw/skbedit NOT CHECKED: this kernel has no cls_fw ({})", e.trim());
        }
    }
}
