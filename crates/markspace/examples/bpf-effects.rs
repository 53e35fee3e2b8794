//! Prints what every program of eBPF ELF objects does to the mark: the bits it reads and
//! writes, and each write in the audit's algebra with the function and instruction that does
//! it. Used for the Cilium comparison in `docs/ebpf.md`.
//!
//! ```text
//! cargo run --release -p markspace --example bpf-effects -- bpf_lxc.o [more.o …]
//! ```
#![allow(clippy::unwrap_used)]

use markspace::bpf::read_elf;
use markspace::model::{hex, WriteOp};

fn main() {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let object = read_elf(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        println!("{path}: {} programs", object.programs.len());
        for p in &object.programs {
            let code = &object.code[p.code];
            let e = object.effects(p);
            println!(
                "  {} ({}, section {}): reads {} writes {}{}",
                p.name,
                p.kind,
                code.section,
                hex(e.read_bits()),
                hex(e.written_bits()),
                e.limited
                    .map_or(String::new(), |l| format!(" (limit: {l})"))
            );
            for (pc, w) in &e.writes {
                let at = code
                    .function_of(*pc)
                    .map_or(format!("{pc}"), |(f, k)| format!("{f}+{k}"));
                let what = match w.op {
                    WriteOp::Const { keep, xor } => {
                        format!("m = (m & {}) ^ {}", hex(keep), hex(xor))
                    }
                    WriteOp::DataDependent { bits } => format!("data-dependent bits {}", hex(bits)),
                    other => format!("{other:?}"),
                };
                println!("    write at {at}: {what}");
            }
        }
    }
}
