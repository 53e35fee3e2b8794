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
