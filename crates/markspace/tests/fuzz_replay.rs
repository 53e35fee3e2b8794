//! Replays the fuzz seeds (`fuzz/seeds/<target>`) and every saved crash input
//! (`fuzz/regressions/<target>`) through the fuzz bodies, so a stable
//! `cargo test` guards against regressions without a fuzzer.

use std::fs;
use std::path::Path;

use markspace::fuzzing;

fn replay(target: &str, body: impl Fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for dir in ["seeds", "regressions"] {
        let d = root.join(dir).join(target);
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let data = fs::read(e.path()).expect("readable");
            body(&data);
            n += 1;
        }
    }
    n
}

/// The format each fuzz target parses (its name with dashes), or the whole audit.
fn body(target: &str) -> impl Fn(&[u8]) + '_ {
    move |data: &[u8]| match target {
        "audit" => fuzzing::audit(data),
        "bpf_elf" => fuzzing::bpf_elf(data),
        t => fuzzing::parse_format(&t.replace('_', "-"), data),
    }
}

#[test]
fn fuzz_inputs_replay_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let mut total = 0;
    let mut report = Vec::new();
    let mut targets: Vec<String> = fs::read_dir(&root)
        .expect("fuzz/seeds exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    targets.sort();
    for t in &targets {
        let n = replay(t, body(t));
        report.push(format!("{t} {n}"));
        total += n;
    }
    println!("fuzz replay: {total} inputs ({})", report.join(", "));
    assert!(
        targets.len() >= 14,
        "a seed directory per fuzz target: {targets:?}"
    );
    assert!(
        total >= targets.len(),
        "no fuzz inputs found under fuzz/seeds or fuzz/regressions"
    );
}
