//! Kernel oracle for the eBPF analysis: generated tc programs against the real kernel.
//!
//! Hundreds of random C programs that read, mask, shift, add, branch on, loop over, spill,
//! pass to a bpf-to-bpf call and write `skb->mark` are compiled in one object with
//! `clang -O2 -g -target bpf` and read by markspace (`bpf::read_elf`). Each program is
//! attached in turn with `tc filter replace dev lo ingress … bpf da obj … sec …` (clsact,
//! direct-action) in a fresh network namespace; one UDP datagram per input mark goes to a local
//! socket; nftables sets its input mark in `output` (a map from the source port) and records the
//! mark after the program in `prerouting` (a dynamic set of source port . mark). For every
//! program and input mark:
//!
//! - the analysis started from that mark must give exactly the kernel's result;
//! - the analysis for any mark must allow it (known bits and mark copies of the exit value),
//!   and the kernel may only have changed bits the analysis lists as written.
//!
//! Runs as root only (CI runs as root) and needs clang (`scripts/test.sh` installs it); as
//! root without clang it fails. `MARKSPACE_BPF_ORACLE_SEED` replays another seed.

use std::fmt::Write as _;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use markspace::bpf::{read_elf, Sym};
use netns_testkit::{is_root, run, Netns};

const PROGRAMS: usize = 240;
const INPUTS: [u32; 4] = [0, 0x0000_0a05, 0xdead_beef, 0xffff_ffff];
const BASE_PORT: u16 = 20000;
const SINK_PORT: u16 = 40000;
const SEND_ENV: &str = "MARKSPACE_BPF_SEND";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A constant that looks like a mark value: a nibble field, a bit, a mask or anything.
    fn konst(&mut self) -> u32 {
        match self.below(5) {
            0 => (self.below(16) as u32) << (4 * self.below(8)),
            1 => 1 << self.below(32),
            2 => 0xf << (4 * self.below(8)),
            3 => self.below(0x1_0000) as u32,
            _ => self.next() as u32,
        }
    }
}

/// A random expression over `m` (the working copy of the mark).
fn expr(r: &mut Rng, depth: u32) -> String {
    let leaf = |r: &mut Rng| match r.below(4) {
        0 => format!("{:#x}u", r.konst()),
        1 => "skb->mark".to_string(),
        _ => "m".to_string(),
    };
    if depth == 0 {
        return leaf(r);
    }
    let a = expr(r, depth - 1);
    match r.below(13) {
        0 => format!("({a} & {:#x}u)", r.konst()),
        1 => format!("({a} | {:#x}u)", r.konst()),
        2 => format!("({a} ^ {:#x}u)", r.konst()),
        3 => format!("({a} << {})", r.below(32)),
        4 => format!("({a} >> {})", r.below(32)),
        5 => format!("({a} + {:#x}u)", r.konst()),
        6 => format!("({a} - {:#x}u)", r.konst()),
        7 => {
            let mask = r.konst();
            format!("(({a} & ~{mask:#x}u) | {:#x}u)", r.konst() & mask)
        }
        8 => format!("(({a} >> {}) & 0xfu)", 4 * r.below(7)),
        9 => format!("({a} * {}u)", 1 + r.below(9)),
        10 => format!("({a} / {}u)", 1 + r.below(9)),
        11 => format!("({a} & {})", expr(r, depth - 1)),
        _ => format!("({a} ^ {})", expr(r, depth - 1)),
    }
}

fn cond(r: &mut Rng) -> String {
    match r.below(5) {
        0 => {
            let mask = r.konst();
            let v = if r.below(2) == 0 {
                INPUTS[r.below(4) as usize] & mask
            } else {
                r.konst() & mask
            };
            format!("(m & {mask:#x}u) == {v:#x}u")
        }
        1 => format!("m & {:#x}u", r.konst()),
        2 => format!("m > {:#x}u", r.konst()),
        3 => format!("(int)m < {}", r.konst() as i32),
        _ => format!("m == {:#x}u", INPUTS[r.below(4) as usize]),
    }
}

fn stmts(r: &mut Rng, out: &mut String, depth: u32, indent: &str) {
    for _ in 0..1 + r.below(3) {
        match r.below(if depth == 0 { 4 } else { 8 }) {
            0 | 1 => {
                let d = 1 + r.below(2) as u32;
                let _ = writeln!(out, "{indent}m = {};", expr(r, d));
            }
            2 => {
                let _ = writeln!(out, "{indent}skb->mark = {};", expr(r, 1));
            }
            3 => {
                let _ = writeln!(
                    out,
                    "{indent}{{ volatile __u32 v = m; m = v ^ {:#x}u; }}",
                    r.konst()
                );
            }
            4 | 5 => {
                let _ = writeln!(out, "{indent}if ({}) {{", cond(r));
                stmts(r, out, depth - 1, &format!("{indent}  "));
                let _ = writeln!(out, "{indent}}} else {{");
                stmts(r, out, depth - 1, &format!("{indent}  "));
                let _ = writeln!(out, "{indent}}}");
            }
            6 => {
                let _ = writeln!(
                    out,
                    "{indent}#pragma clang loop unroll(disable)\n{indent}for (int i = 0; i < {}; i++) m = {};",
                    1 + r.below(4),
                    expr(r, 1)
                );
            }
            _ => {
                let _ = writeln!(out, "{indent}m = helper{}(skb, m);", r.below(3));
            }
        }
    }
}

/// The C source of all programs, and each program's section.
fn generate(seed: u64) -> (String, Vec<String>) {
    let mut r = Rng(seed | 1);
    let mut c = String::from(
        "typedef unsigned int __u32;\n\
         struct __sk_buff { __u32 len, pkt_type, mark, queue_mapping, protocol; };\n\
         #define SEC(n) __attribute__((section(n), used))\n\
         char _license[] SEC(\"license\") = \"GPL\";\n",
    );
    for h in 0..3 {
        let mut body = String::new();
        let _ = writeln!(
            body,
            "  if ((m & {:#x}u) == {:#x}u) skb->mark = m ^ {:#x}u;",
            r.konst(),
            0,
            r.konst()
        );
        let _ = writeln!(
            c,
            "static __attribute__((noinline)) __u32 helper{h}(struct __sk_buff *skb, __u32 m) {{\n{body}  return {};\n}}",
            expr(&mut r, 1)
        );
    }
    let mut sections = Vec::new();
    for p in 0..PROGRAMS {
        let sec = format!("tc/p{p}");
        let mut body = String::new();
        stmts(&mut r, &mut body, 2, "  ");
        let last = if r.below(8) == 0 {
            String::new()
        } else {
            "  skb->mark = m;\n".to_string()
        };
        let _ = writeln!(
            c,
            "SEC(\"{sec}\") int p{p}(struct __sk_buff *skb) {{\n  __u32 m = skb->mark;\n{body}{last}  return 0;\n}}"
        );
        sections.push(sec);
    }
    (c, sections)
}

/// Whether an abstract value allows `out` when the program started from `input`.
fn allows(s: &Sym, input: u32, out: u32) -> bool {
    let out = u64::from(out);
    let m = u64::from(input);
    let copied = if s.sh >= 0 { m >> s.sh } else { m << (-s.sh) };
    (out & s.known) == s.val && (out & s.mb) == (copied & s.mb)
}

/// Not a test: inside the namespace (when [`SEND_ENV`] is set), sends one datagram per source
/// port of `FIRST COUNT` to a local socket and waits for each, so it has passed tc ingress.
#[test]
fn bpf_send_helper() {
    let Ok(spec) = std::env::var(SEND_ENV) else {
        return;
    };
    let mut f = spec.split_whitespace().map(|w| w.parse::<u16>().unwrap());
    let (first, count) = (f.next().unwrap(), f.next().unwrap());
    let sink = UdpSocket::bind(("127.0.0.1", SINK_PORT)).unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 64];
    for port in first..first + count {
        let s = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        s.send_to(b"markspace bpf oracle", ("127.0.0.1", SINK_PORT))
            .unwrap();
        let (_, from) = sink.recv_from(&mut buf).unwrap();
        assert_eq!(from.port(), port);
    }
}

#[test]
fn bpf_analysis_agrees_with_the_kernel() {
    if !is_root() {
        eprintln!("bpf oracle: skipped (needs root; CI runs as root)");
        return;
    }
    let seed = std::env::var("MARKSPACE_BPF_ORACLE_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x6270_665f_6d61_726b);
    let dir = std::env::temp_dir().join(format!("ms-bpf-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (source, sections) = generate(seed);
    let c = dir.join("progs.c");
    let o = dir.join("progs.o");
    std::fs::write(&c, &source).unwrap();
    let (cs, os) = (c.to_string_lossy(), o.to_string_lossy());
    run(
        &["clang", "-O2", "-g", "-target", "bpf", "-c", &cs, "-o", &os],
        None,
    );
    let object = read_elf(&std::fs::read(&o).unwrap()).expect("markspace reads the object");
    assert_eq!(object.programs.len(), PROGRAMS, "one program per section");

    let ns = Netns::new("bpf");
    ns.exec(&["tc", "qdisc", "add", "dev", "lo", "clsact"], None);
    let mut elements = Vec::new();
    for p in 0..PROGRAMS {
        for (k, m) in INPUTS.iter().enumerate() {
            elements.push(format!(
                "{} : {m:#x}",
                BASE_PORT as usize + p * INPUTS.len() + k
            ));
        }
    }
    let nft = format!(
        "table inet msbpf {{\n\
         map inmark {{ type inet_service : mark; elements = {{ {} }} }}\n\
         set seen {{ type inet_service . mark; size 65535; flags dynamic; }}\n\
         chain out {{ type filter hook output priority -150; udp dport {SINK_PORT} meta mark set udp sport map @inmark; }}\n\
         chain pre {{ type filter hook prerouting priority -150; udp dport {SINK_PORT} add @seen {{ udp sport . meta mark }}; }}\n\
         }}\n",
        elements.join(", ")
    );
    ns.exec(&["nft", "-f", "-"], Some(&nft));
    let exe = std::env::current_exe().unwrap();
    for (p, sec) in sections.iter().enumerate() {
        ns.exec(
            &[
                "tc", "filter", "replace", "dev", "lo", "ingress", "pref", "1", "handle", "1",
                "bpf", "da", "obj", &os, "sec", sec,
            ],
            None,
        );
        let first = BASE_PORT as usize + p * INPUTS.len();
        let out = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(&exe)
            .args([
                "--exact",
                "bpf_send_helper",
                "--test-threads",
                "1",
                "--quiet",
            ])
            .env(SEND_ENV, format!("{first} {}", INPUTS.len()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sending through {sec} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = ns.exec(&["nft", "list", "set", "inet", "msbpf", "seen"], None);
    let mut seen = std::collections::HashMap::new();
    let flat = listed.replace('\n', " ");
    let body = flat
        .split_once("elements = {")
        .map_or("", |(_, b)| b.split('}').next().unwrap_or(""));
    for e in body.split(',') {
        if let Some((port, mark)) = e.split_once(" . ") {
            let port: usize = port.trim().parse().unwrap();
            let mark = u32::from_str_radix(mark.trim().trim_start_matches("0x"), 16).unwrap();
            seen.insert(port, mark);
        }
    }
    let mut failures = Vec::new();
    let mut agreed = 0;
    for (p, program) in object.programs.iter().enumerate() {
        let any = object.effects(program);
        let written = any.written_bits();
        for (k, &input) in INPUTS.iter().enumerate() {
            let port = BASE_PORT as usize + p * INPUTS.len() + k;
            let Some(&kernel) = seen.get(&port) else {
                failures.push(format!(
                    "{}: input {input:#x}: the kernel recorded nothing",
                    program.name
                ));
                continue;
            };
            let exact = object
                .effects_from(program, Sym::konst(u64::from(input)))
                .exit_mark
                .and_then(|s| s.as_const());
            let mut bad = Vec::new();
            if exact != Some(u64::from(kernel)) {
                bad.push(format!("analysis from this mark says {exact:#x?}"));
            }
            if !any.exit_mark.is_some_and(|s| allows(&s, input, kernel)) {
                bad.push(format!(
                    "analysis for any mark does not allow it: {:?}",
                    any.exit_mark
                ));
            }
            if (input ^ kernel) & !written != 0 {
                bad.push(format!(
                    "bits {:#x} changed outside the written bits {written:#x}",
                    (input ^ kernel) & !written
                ));
            }
            if bad.is_empty() {
                agreed += 1;
            } else {
                failures.push(format!(
                    "{}: input {input:#x}, kernel {kernel:#x}: {}",
                    program.name,
                    bad.join("; ")
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "bpf oracle: {agreed} of {} program x input cases agree with the kernel ({PROGRAMS} programs, seed {seed:#x})",
        PROGRAMS * INPUTS.len()
    );
    if !failures.is_empty() {
        let _ = std::fs::write(std::env::temp_dir().join("ms-bpf-oracle.c"), &source);
        panic!(
            "{} disagreements (source kept in /tmp/ms-bpf-oracle.c):\n{}",
            failures.len(),
            failures
                .iter()
                .take(30)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(agreed >= 200 * INPUTS.len() / 2);
}
