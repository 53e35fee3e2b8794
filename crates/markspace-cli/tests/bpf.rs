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
