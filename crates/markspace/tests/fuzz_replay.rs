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

#[test]
fn fuzz_inputs_replay_without_panic() {
    let a = replay("audit", fuzzing::audit);
    let s = replay("iptables_save", |d| {
        fuzzing::parse_format("iptables-save", d)
    });
    let l = replay("iptables_list", |d| {
        fuzzing::parse_format("iptables-list", d)
    });
    println!("fuzz replay: audit {a}, iptables_save {s}, iptables_list {l} inputs");
    assert!(
        a + s + l > 0,
        "no fuzz inputs found under fuzz/seeds or fuzz/regressions"
    );
}
