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
