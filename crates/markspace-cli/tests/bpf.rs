//! eBPF objects: `audit` reads an ELF object's programs and sees their mark writes like rules.
//! `examples/bpf/marks.o` is built from `examples/bpf/marks.c` (committed, so no compiler is
//! needed here; the kernel oracle in `crates/markspace/tests/bpf_oracle.rs` compiles its own).

use crate::util::{root, run, Dir};

fn marks_o() -> String {
    root()
        .join("examples/bpf/marks.o")
        .to_string_lossy()
        .into_owned()
}

/// `audit --format json` of a path, which must succeed.
fn audit_json(path: &str) -> serde_json::Value {
    let r = run(&["audit", "--format", "json", "--fail-on", "never", path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

#[test]
fn a_whole_mark_write_is_ms003_with_its_owner_and_a_masked_write_keeps_its_mask() {
    let j = audit_json(&marks_o());
    let ms003: Vec<_> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "MS003")
        .collect();
    assert_eq!(ms003.len(), 1, "{ms003:?}");
    let f = ms003[0];
    assert_eq!(f["owners"][0], "unknown");
    assert_eq!(f["field"], "mark");
    let first = f["evidence"][0]["text"].as_str().unwrap();
    assert!(
        first.contains("*(u32 *)(r1 +8) = r2  ; set_whole+1"),
        "{first}"
    );
    // cil_to_host (Cilium, by its program name) writes only the magic nibble, through a call.
    let cilium = j["owners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "cilium")
        .expect("cilium owns cil_to_host");
    assert_eq!(cilium["writes"]["mark"], "0x00000f00");
    assert_eq!(cilium["reads"]["mark"], "0x00000f00");
    assert_eq!(
        cilium["recognised_by"][0], "program cil_to_host (2)",
        "{cilium}"
    );
}

#[test]
fn objects_in_a_directory_are_read_and_a_broken_object_is_an_error_with_its_offset() {
    let d = Dir::new();
    let bytes = std::fs::read(marks_o()).unwrap();
    std::fs::write(d.path().join("marks.o"), &bytes).unwrap();
    let j = audit_json(&d.path().to_string_lossy());
    assert_eq!(j["inputs"][0]["format"], "bpf-object", "{j}");
    let broken = d.file("broken.o", "");
    std::fs::write(&broken, &bytes[..200]).unwrap();
    let r = run(&["audit", &broken]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("broken.o: byte "), "{}", r.stderr);
    assert!(r.stderr.contains("hint"), "{}", r.stderr);
}

/// `collect` on a node with a tc program that does `skb->mark = 0x1337`: the snapshot holds
/// the kernel's translated code as a listing, with the `sk_buff.mark` offset of the running
/// kernel from its BTF, and the audit of the snapshot reports the whole-mark write from it.
#[test]
fn collect_reads_live_programs_and_the_audit_sees_their_writes() {
    if !netns_testkit::is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return;
    }
    let ns = netns_testkit::Netns::new("bpflive");
    ns.exec(&["tc", "qdisc", "add", "dev", "lo", "clsact"], None);
    let obj = marks_o();
    ns.exec(
        &[
            "tc", "filter", "add", "dev", "lo", "egress", "bpf", "da", "obj", &obj, "sec", "tc",
        ],
        None,
    );
    let shown = ns.exec(&["tc", "filter", "show", "dev", "lo", "egress"], None);
    let id = shown
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)
        .expect("tc shows the program id")
        .to_string();
    let d = Dir::new();
    let snap = d.path().join("snap");
    let snap_s = snap.to_string_lossy().into_owned();
    ns.exec(
        &[env!("CARGO_BIN_EXE_markspace"), "collect", "--out", &snap_s],
        None,
    );
    let listing = std::fs::read_to_string(snap.join(format!("bpf-prog-{id}.txt")))
        .expect("collect wrote the program's listing");
    let btf = std::fs::read("/sys/kernel/btf/vmlinux").expect("the kernel has BTF");
    let off = markspace::bpf::btf::member_offset(&btf, "sk_buff", "mark").unwrap();
    assert!(listing.contains(&format!("mark-offset {off}")), "{listing}");
    let store = format!("*(u32 *)(r1 +{off}) = r2");
    assert!(listing.contains(&store), "{listing}");
    let j = audit_json(&snap_s);
    let found = j["findings"].as_array().unwrap().iter().any(|f| {
        f["code"] == "MS003"
            && f["evidence"].as_array().unwrap().iter().any(|e| {
                e["file"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("bpf-prog-{id}.txt"))
                    && e["text"].as_str().unwrap().contains(&store)
            })
    });
    assert!(found, "{}", j["findings"]);
}

/// A listing of two Cilium-named tc programs: `writer` does `mark = (mark & ~0xf00) | 0xa00`,
/// `reader` tests `(mark & 0xf00) == 0xa00`; each in the section given.
fn two_programs(writer: &str, reader: &str) -> String {
    format!(
        "# bpf-object: eBPF programs of an ELF object, relocated by markspace (one line per instruction)
program cil_from_netdev section {writer} code 0 entry 0
program cil_to_netdev section {reader} code 1 entry 0
code 0 {writer} 6
     0: 6112080000000000  r2 = *(u32 *)(r1 +8)
     1: 57020000fff0ffff  r2 &= -3841
     2: 47020000000a0000  r2 |= 2560
     3: 6321080000000000  *(u32 *)(r1 +8) = r2
     4: b700000000000000  r0 = 0
     5: 9500000000000000  exit
code 1 {reader} 7
     0: 6112080000000000  r2 = *(u32 *)(r1 +8)
     1: 57020000000f0000  r2 &= 3840
     2: 15020200000a0000  if r2 == 0xa00 goto pc+2
     3: b700000000000000  r0 = 0
     4: 9500000000000000  exit
     5: b700000002000000  r0 = 2
     6: 9500000000000000  exit
"
    )
}

/// Another owner rewrites the same bits in FORWARD.
const FORWARD_WRITE: &str = "table ip other {
\tchain fwd {
\t\ttype filter hook forward priority mangle; policy accept;
\t\tmeta mark set meta mark & 0xfffffcff | 0x00000100
\t}
}
";

/// The MS001 finding between Cilium and the FORWARD rule's owner, with more inputs.
fn shared_finding_with(writer: &str, reader: &str, more: &[(&str, &str)]) -> serde_json::Value {
    let d = Dir::new();
    d.file("progs.txt", &two_programs(writer, reader));
    d.file("nft.txt", FORWARD_WRITE);
    for (name, text) in more {
        d.file(name, text);
    }
    let j = audit_json(&d.path().to_string_lossy());
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "MS001" && f["owners"].to_string().contains("cilium"))
        .unwrap_or_else(|| panic!("no MS001 with cilium: {j}"))
        .clone()
}

fn shared_finding(writer: &str, reader: &str) -> serde_json::Value {
    shared_finding_with(writer, reader, &[])
}

/// Programs are placed at their hook from their section names: a tc ingress write, a FORWARD
/// rule's write and a tc egress read of the same bits are a clobber on the forward path, in
/// that order; the same programs the other way round (read at ingress, write at egress) are
/// not; cgroup_skb egress runs on the output path only, so it never meets FORWARD; bare `tc`
/// sections say no direction and stay unplaced.
#[test]
fn programs_are_placed_at_their_hook_from_their_section() {
    let f = shared_finding("tc/ingress", "tc/egress");
    assert_eq!(f["path"]["path"], "forward", "{f}");
    assert_eq!(f["path"]["clobber"], true, "{f}");
    let steps: Vec<String> = f["path"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap().to_string();
            [f("hook"), f("table"), f("chain"), f("action")].join(" ")
        })
        .collect();
    assert_eq!(
        steps,
        [
            "prerouting bpf tc ingress cil_from_netdev writes 0x00000300",
            "forward ip other fwd writes 0x00000300",
            "postrouting bpf tc egress cil_to_netdev reads 0x00000300",
        ],
        "{f}"
    );

    let f = shared_finding("tcx/egress", "tcx/ingress");
    assert_eq!(f["path"]["clobber"], false, "{f}");
    assert_eq!(f["severity"], "error", "{f}");

    let f = shared_finding("cgroup_skb/egress", "cgroup_skb/ingress");
    assert_eq!(f["severity"], "info", "{f}");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("different packet paths"),
        "{f}"
    );

    let f = shared_finding("tc", "classifier");
    assert!(f["path"].is_null(), "{f}");
    assert_eq!(f["severity"], "error", "{f}");
}

/// Live programs (listed with section `tc`) are placed by the `tc filter show` lines that
/// name them: the clobber of the section-named case is found again; a program also attached
/// where tc says no direction stays unplaced (the path shows only the placed uses, and no
/// clobber is claimed through the unplaced write).
#[test]
fn live_programs_are_placed_by_the_tc_filters_that_name_them() {
    const FILTERS: &str = "$ tc filter show dev eth0 ingress
filter protocol all pref 1 bpf chain 0 handle 0x1 cil_from_netdev-eth0 direct-action not_in_hw id 11 name cil_from_netdev tag 91a9c2c3d5e4f6a7 jited
$ tc filter show dev eth0 egress
filter protocol all pref 1 bpf chain 0 handle 0x1 cil_to_netdev-eth0 direct-action not_in_hw id 12 name cil_to_netdev tag 91a9c2c3d5e4f6a8 jited
";
    let f = shared_finding_with("tc", "tc", &[("tc-filters.txt", FILTERS)]);
    assert_eq!(f["path"]["clobber"], true, "{f}");
    let chains: Vec<&str> = f["path"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["chain"].as_str().unwrap())
        .collect();
    assert_eq!(
        chains,
        [
            "tc ingress cil_from_netdev",
            "fwd",
            "tc egress cil_to_netdev"
        ],
        "{f}"
    );
    let undirected = format!(
        "{FILTERS}$ tc filter show dev eth1\nfilter protocol all pref 1 bpf chain 0 handle 0x1 x direct-action not_in_hw id 13 name cil_from_netdev tag 91a9c2c3d5e4f6a9 jited\n"
    );
    let f = shared_finding_with("tc", "tc", &[("tc-filters.txt", &undirected)]);
    assert_eq!(f["path"]["clobber"], false, "{f}");
    assert!(!f["path"].to_string().contains("cil_from_netdev"), "{f}");
}

/// Kernel check of `trace` running programs at their hook: in a namespace, `out_magic` at tc
/// egress of veth `v0` and `in_stamp` at tc ingress of its peer `v1` (clang-compiled, attached
/// with tc, section `tc`: their direction comes from `tc filter show` in the snapshot). An
/// nft `output` rule sets the input mark by destination; datagrams leave by `v0`, reach `v1`,
/// and nft records the mark in `prerouting` (after tc ingress). `trace` of the snapshot, on
/// the output path then the ingress path, must name both programs and predict the mark the
/// kernel recorded.
#[test]
fn trace_runs_programs_at_tc_hooks_as_the_kernel_does() {
    if !netns_testkit::is_root() {
        eprintln!("skipped: needs root (CI runs as root)");
        return;
    }
    const C: &str = r#"typedef unsigned int __u32;
struct __sk_buff { __u32 len, pkt_type, mark; };
#define SEC(n) __attribute__((section(n), used))
/* Whole-word stores: the verifier refuses narrower stores to the mark. */
#define MARK(skb) (*(volatile __u32 *)&(skb)->mark)
char _license[] SEC("license") = "GPL";
SEC("hooks_out") int out_magic(struct __sk_buff *skb)
{
	__u32 m = MARK(skb);
	if ((m & 0xf) == 0x4)
		MARK(skb) = (m & ~0xf00u) | 0xa00;
	else
		MARK(skb) = m ^ 0x10000;
	return 0;
}
SEC("hooks_in") int in_stamp(struct __sk_buff *skb)
{
	MARK(skb) = (MARK(skb) & 0x00ffffff) | 0x05000000;
	return 0;
}
"#;
    let d = Dir::new();
    let c = d.file("hooks.c", C);
    let o = d.path().join("hooks.o").to_string_lossy().into_owned();
    netns_testkit::run(
        &["clang", "-O2", "-g", "-target", "bpf", "-c", &c, "-o", &o],
        None,
    );
    let ns = netns_testkit::Netns::new("bpfhook");
    let sh = |cmd: &str| ns.exec(&["sh", "-c", cmd], None);
    sh("ip link add v0 type veth peer name v1 && ip addr add 10.99.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up");
    let mac = sh("cat /sys/class/net/v1/address").trim().to_string();
    for dst in ["10.99.0.2", "10.99.0.3"] {
        sh(&format!(
            "ip neigh replace {dst} lladdr {mac} dev v0 nud permanent"
        ));
    }
    for (dev, dir, sec) in [("v0", "egress", "hooks_out"), ("v1", "ingress", "hooks_in")] {
        sh(&format!(
            "tc qdisc add dev {dev} clsact && tc filter add dev {dev} {dir} bpf da obj {o} sec {sec}"
        ));
    }
    let nft = "table ip mshook {
\tset seen { type ipv4_addr . mark; flags dynamic; }
\tchain out { type filter hook output priority -150; ip daddr 10.99.0.2 udp dport 9999 meta mark set 0x00001234; ip daddr 10.99.0.3 udp dport 9999 meta mark set 0xffffffff; }
\tchain pre { type filter hook prerouting priority -150; udp dport 9999 add @seen { ip daddr . meta mark }; }
}
";
    ns.exec(&["nft", "-f", "-"], Some(nft));
    let snap = d.path().join("snap").to_string_lossy().into_owned();
    ns.exec(
        &[env!("CARGO_BIN_EXE_markspace"), "collect", "--out", &snap],
        None,
    );
    for dst in ["10.99.0.2", "10.99.0.3"] {
        // bash's /dev/udp: one datagram from a local UDP socket.
        let send = format!("echo x > /dev/udp/{dst}/9999");
        ns.exec(&["bash", "-c", &send], None);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let listed = sh("nft list set ip mshook seen").replace('\n', " ");
    // `elements = { 10.99.0.2 . 0x5001a34, … }`
    let body = listed
        .split_once("elements = {")
        .map_or("", |(_, b)| b.split('}').next().unwrap_or(""));
    let seen: std::collections::HashMap<String, u32> = body
        .split(',')
        .filter_map(|e| e.split_once(" . "))
        .map(|(a, m)| {
            let m = m.trim().trim_start_matches("0x");
            (a.trim().to_string(), u32::from_str_radix(m, 16).unwrap())
        })
        .collect();
    let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let trace = |path: &str, dev: &str, dst: &str, mark: &str| -> serde_json::Value {
        let iface = if path == "output" { "--out" } else { "--in" };
        let r = run(&[
            "trace",
            &snap,
            "--path",
            path,
            iface,
            dev,
            "--src",
            "10.99.0.1",
            "--dst",
            dst,
            "--proto",
            "udp",
            "--dport",
            "9999",
            "--mark",
            mark,
            "--format",
            "json",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let t = r.json();
        assert_eq!(t["paths"].as_array().unwrap().len(), 1, "{t}");
        t["paths"][0].clone()
    };
    let program_step = |p: &serde_json::Value, name: &str| -> String {
        let s = p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "program" && s["program"] == name)
            .unwrap_or_else(|| panic!("no step of {name}: {p}"));
        s["mark"][1].as_str().unwrap().to_string()
    };
    for dst in ["10.99.0.2", "10.99.0.3"] {
        let out = trace("output", "v0", dst, "0");
        let after_egress = program_step(&out, "out_magic");
        assert_eq!(out["mark"], after_egress.as_str(), "{out}");
        let inp = trace("ingress", "v1", dst, &after_egress);
        let after_ingress = program_step(&inp, "in_stamp");
        assert_eq!(
            seen.get(dst).copied(),
            Some(hex(&after_ingress)),
            "{dst}: trace predicts {after_ingress} after in_stamp; the kernel saw {listed}"
        );
    }
    // What the programs do, so the comparison above cannot pass by both doing nothing.
    assert_eq!(seen.get("10.99.0.2"), Some(&0x0500_1a34), "{listed}");
    assert_eq!(seen.get("10.99.0.3"), Some(&0x05fe_ffff), "{listed}");
}
