//! `markspace trace` end to end on files (no kernel): nft rules' conditions are decoded like
//! iptables ones, and `--assume` names are checked.

use crate::util::{run, Dir};

/// Three unconditional mark statements and two conditional ones, in native nft.
const NFT_MARKS: &str = r#"table inet mangle {
	chain prerouting {
		type filter hook prerouting priority mangle; policy accept;
		meta mark set 0x1
		meta mark set meta mark | 0x100
		ct mark set meta mark
		iifname "eth0" tcp dport 22 meta mark set meta mark | 0x4000
		iifname "eth1" meta mark set 0x0 counter accept
	}
}
"#;

#[test]
fn nft_rules_with_unconditional_marks_give_one_path() {
    let dir = Dir::new();
    let f = dir.file("ruleset.nft", NFT_MARKS);
    let r = run(&[
        "trace", &f, "--path", "ingress", "--in", "eth0", "--proto", "tcp", "--dport", "22",
        "--format", "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let t = r.json();
    let paths = t["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1, "{}", r.stdout);
    assert_eq!(paths[0]["mark"], "0x00004101");
    assert_eq!(paths[0]["ctmark"], "0x00000101");
    assert!(paths[0]["assumptions"].as_array().unwrap().is_empty());
    // Another interface: the `iifname "eth0"` rule does not match, still one path.
    let r = run(&[
        "trace", &f, "--path", "ingress", "--in", "eth1", "--proto", "tcp", "--format", "json",
    ]);
    let t = r.json();
    assert_eq!(t["paths"].as_array().unwrap().len(), 1, "{}", r.stdout);
    assert_eq!(t["paths"][0]["mark"], "0x00000000");
}

#[test]
fn an_unknown_assume_name_is_a_usage_error_listing_the_names() {
    let dir = Dir::new();
    let f = dir.file(
        "iptables-save.txt",
        "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -m statistic --mode random --probability 0.5 -j MARK --set-xmark 0x1/0x1\nCOMMIT\n",
    );
    let r = run(&["trace", &f, "--assume", "statistc=yes"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("`statistc`"), "{}", r.stderr);
    assert!(r.stderr.contains("statistic"), "{}", r.stderr);
    // The right name settles the condition: one path.
    let r = run(&["trace", &f, "--assume", "statistic=yes", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["paths"].as_array().unwrap().len(), 1);
}
