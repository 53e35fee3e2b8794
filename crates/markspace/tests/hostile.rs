//! Hostile and huge inputs: each gives a clear error or a bounded, correct result, never a panic
//! or a stack overflow. Times are generous bounds against hangs, not benchmarks.

use std::time::{Duration, Instant};

use markspace::analysis::analyze;
use markspace::model::Node;
use markspace::registry::Registry;
use markspace::snapshot::{InputError, NodeLoader};

fn load(name: &str, bytes: Vec<u8>) -> Result<Node, InputError> {
    let mut l = NodeLoader::new();
    l.add_text(name, bytes, true)?;
    Ok(l.finish())
}

fn audit(node: &Node) -> markspace::analysis::Analysis {
    analyze(node, &Registry::embedded().expect("registry"))
}

fn bounded<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(
        start.elapsed() < limit,
        "took {:?}, more than {limit:?}",
        start.elapsed()
    );
    out
}

#[test]
fn binary_input_is_refused() {
    let err = load("blob", vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 3]).expect_err("refused");
    assert!(err.to_string().contains("binary"), "{err}");
}

#[test]
fn invalid_utf8_is_a_warning_and_the_rules_still_count() {
    let text = b"*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m comment --comment \"caf\xe9\" -j MARK --set-xmark 0x1/0x1\nCOMMIT\n".to_vec();
    let node = load("latin1.txt", text).expect("loads");
    assert_eq!(node.ruleset.rules.len(), 1);
    assert_eq!(node.diagnostics.len(), 1);
    assert_eq!(node.diagnostics[0].span.line, 3);
}

#[test]
fn ten_megabyte_line_is_handled() {
    let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"");
    text.push_str(&"x".repeat(10 << 20));
    text.push_str("\" -m mark --mark 0x1/0x1 -j ACCEPT\nCOMMIT\n");
    let node = bounded(Duration::from_secs(20), || {
        load("long.txt", text.into_bytes()).expect("loads")
    });
    assert!(node.diagnostics.is_empty());
    assert_eq!(node.ruleset.rules[0].ops().len(), 1);
}

#[test]
fn ten_megabyte_garbage_line_is_one_error() {
    let text = format!("*filter\n{}\nCOMMIT\n", "z".repeat(10 << 20));
    let node = bounded(Duration::from_secs(20), || {
        load("garbage.txt", text.into_bytes()).expect("detected")
    });
    assert_eq!(node.diagnostics.len(), 1);
    assert_eq!(node.diagnostics[0].span.line, 2);
}

#[test]
fn jump_loops_and_deep_chains_terminate() {
    // A cycle A -> B -> A reachable from a hook, and a 200 000-deep chain of jumps.
    let mut text = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A PREROUTING -j A\n-A A -j B\n-A B -j A\n-A B -j MARK --set-xmark 0x1/0x1\n");
    let depth = 200_000;
    for i in 0..depth {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    text.push_str("-A PREROUTING -j C0\n");
    for i in 0..depth - 1 {
        text.push_str(&format!("-A C{i} -j C{}\n", i + 1));
    }
    text.push_str(&format!(
        "-A C{} -m mark --mark 0x2/0x2 -j ACCEPT\nCOMMIT\n",
        depth - 1
    ));
    let node = bounded(Duration::from_secs(30), || {
        load("loops.txt", text.into_bytes()).expect("loads")
    });
    assert!(node.diagnostics.is_empty());
    let a = bounded(Duration::from_secs(30), || audit(&node));
    let owner = &a.usage.owners[0];
    assert_eq!(owner.writes[0], 0x1);
    assert_eq!(owner.reads[0], 0x2, "the deepest chain is reachable");
}

#[test]
fn a_million_chains() {
    let mut text = String::with_capacity(40 << 20);
    text.push_str("*filter\n:INPUT ACCEPT [0:0]\n");
    for i in 0..1_000_000 {
        text.push_str(&format!(":X{i} - [0:0]\n"));
    }
    text.push_str("-A INPUT -j X999999\n-A X999999 -m mark --mark 0x4/0x4 -j ACCEPT\nCOMMIT\n");
    let node = bounded(Duration::from_secs(60), || {
        load("chains.txt", text.into_bytes()).expect("loads")
    });
    assert_eq!(node.ruleset.chains.len(), 1_000_001);
    let a = bounded(Duration::from_secs(30), || audit(&node));
    assert_eq!(a.usage.owners[0].reads[0], 0x4);
}

#[test]
fn truncated_paste_is_accepted() {
    let text = "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j KUBE-POSTROUTING\n-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -m comment --comment \"kubernetes serv";
    let node = load("cut.txt", text.as_bytes().to_vec()).expect("loads");
    assert_eq!(node.ruleset.rules.len(), 2);
    assert!(node
        .diagnostics
        .iter()
        .all(|d| d.level == markspace::diagnostic::Level::Warning));
    let a = audit(&node);
    assert!(a.usage.owners.iter().any(|o| o.id == "kube-proxy"));
}

#[test]
fn every_prefix_of_a_dump_parses_without_panic() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/nodes/tailscale-calico/iptables-save.txt"
    ))
    .expect("example");
    let bytes = text.as_bytes();
    // Cut at every 97th byte, including mid-UTF-8 and mid-quote.
    for cut in (0..bytes.len()).step_by(97) {
        if let Ok(node) = load("prefix", bytes[..cut].to_vec()) {
            let _ = audit(&node);
        }
    }
}
