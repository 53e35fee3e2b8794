//! Kernel oracle for nftables: the nft expression semantics and both nft parsers against the
//! real kernel.
//!
//! Hundreds of random rules over `meta mark` and `ct mark` (masks, values, `& | ^` and their
//! keyword forms, shifts, copies between the fields, relational matches, prefixes) are loaded
//! with one `nft -f` into a fresh network namespace, one chain per case, reached through a
//! verdict map:
//!
//! ```text
//! table inet ms {
//!   chain out { type filter hook output priority filter; udp dport vmap { 21000 : jump case_0, … } }
//!   chain case_i {
//!     meta mark set INIT counter              # the initial packet mark
//!     ct mark set CTINIT counter              # the initial connmark (conntrack ran at -200)
//!     <rule(s) under test> counter
//!     meta mark & 0x00000001 == 0x00000001 counter   … 32 probes of the mark
//!     ct mark & 0x00000001 == 0x00000001 counter     … 32 probes of the connmark
//!   }
//! }
//! ```
//!
//! One UDP datagram per case is sent from inside the namespace; `nft -j list ruleset` gives
//! every rule's packet counter. markspace parses the ruleset three ways — as written, as the
//! kernel lists it (`nft list ruleset`) and as JSON (`nft -j list ruleset`) — requires the same
//! operations rule by rule from all three, runs them through the algebra and requires every
//! counter to be what the algebra predicts. Runs as root only; `MARKSPACE_ORACLE_SEED`,
//! `MARKSPACE_ORACLE_CASES` and `MARKSPACE_ORACLE_SHOW` work as in `kernel_oracle.rs`.
//!
//! Not covered: two-register operations (`ct mark set ct mark & A | meta mark & B`), which need
//! nft 1.1 and kernel 6.13; shifts in relational matches, which nft 1.0.6 rejects.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use markspace::diagnostic::Level;
use markspace::model::{hex, MarkOp, ALL_BITS};
use markspace::snapshot::NodeLoader;
use netns_testkit::{is_root, Netns};

mod oracle;
use oracle::{chains_ops, simulate, Rng};

const DEFAULT_SEED: u64 = 0x6e66_745f_6f72_6163; // "nft_orac"
const DEFAULT_CASES: usize = 400;
const BASE_PORT: u16 = 21000;
const PRELUDE: usize = 2;
const PROBES: usize = 64;

impl Rng {
    /// A number as nft reads it: hex, decimal, octal (leading 0).
    fn num(&mut self, v: u32) -> String {
        match self.below(20) {
            0..=13 => format!("{v:#x}"),
            14..=17 => format!("{v}"),
            _ if v == 0 => "0".to_string(),
            _ => format!("0{v:o}"),
        }
    }
}

const KINDS: &[&str] = &[
    "meta mark set (own bits)",
    "ct mark set (own bits)",
    "copy mark -> ct mark",
    "copy ct mark -> mark",
    "meta mark match",
    "ct mark match",
    "match + write",
    "sequence",
];

struct Case {
    kind: usize,
    init: u32,
    ctinit: u32,
    rules: Vec<String>,
}

/// An expression over `src` with 0..3 operators, and its value for `x`.
fn value_expr(rng: &mut Rng, src: &str, x: u32, allow_shift: bool) -> (String, u32) {
    let mut text = src.to_string();
    let mut v = x;
    for k in 0..rng.below(4) {
        let c = rng.word();
        let (op, nv) = match rng.below(if allow_shift { 8 } else { 6 }) {
            0 => ("&", v & c),
            1 => ("|", v | c),
            2 => ("^", v ^ c),
            3 => ("and", v & c),
            4 => ("or", v | c),
            5 => ("xor", v ^ c),
            s => {
                // The kernel rejects a shift by 0 (`nft_bitwise_init_shift`: 1..31).
                let n = 1 + rng.below(31);
                let left = s == 6;
                let op = match (left, rng.chance(70)) {
                    (true, true) => "<<",
                    (true, false) => "lshift",
                    (false, true) => ">>",
                    (false, false) => "rshift",
                };
                let nv = if left { v << n } else { v >> n };
                text = if k == 0 { text } else { format!("({text})") };
                text = format!("{text} {op} {n}");
                v = nv;
                continue;
            }
        };
        let c_text = rng.num(c);
        text = if k == 0 { text } else { format!("({text})") };
        text = format!("{text} {op} {c_text}");
        v = nv;
    }
    (text, v)
}

fn set_rule(rng: &mut Rng, dst: &str, src: &str, init: u32, ctinit: u32) -> String {
    let x = if src == "meta mark" { init } else { ctinit };
    let (e, _) = value_expr(rng, src, x, true);
    if rng.chance(10) {
        let a = rng.word();
        let b = rng.word();
        return format!("{dst} set {} or {}", rng.num(a), rng.num(b));
    }
    format!("{dst} set {e}")
}

fn match_rule(rng: &mut Rng, src: &str, x: u32) -> String {
    if rng.chance(15) {
        let len = rng.below(33);
        let v = if rng.chance(60) { x } else { rng.word() };
        // Host bits are masked by nft when typed (and a listed prefix with host bits never
        // matches), so write the value as nft lists it.
        let v = if len == 0 {
            0
        } else {
            v & (ALL_BITS << (32 - len))
        };
        let bang = if rng.chance(30) { "!= " } else { "" };
        return format!("{src} {bang}{}/{len}", rng.num(v));
    }
    let (e, v) = value_expr(rng, src, x, false);
    let target = match rng.below(4) {
        0 | 1 => v,
        2 => v ^ (1 << rng.below(32)),
        _ => rng.word(),
    };
    let op = match rng.below(3) {
        0 => "== ",
        1 => "!= ",
        _ => "",
    };
    format!("{e} {op}{}", rng.num(target))
}

fn gen_case(rng: &mut Rng) -> Case {
    let init = rng.word();
    let ctinit = rng.word();
    let kind = rng.below(KINDS.len() as u32) as usize;
    let any_write = |rng: &mut Rng| match rng.below(4) {
        0 => set_rule(rng, "meta mark", "meta mark", init, ctinit),
        1 => set_rule(rng, "ct mark", "ct mark", init, ctinit),
        2 => set_rule(rng, "ct mark", "meta mark", init, ctinit),
        _ => set_rule(rng, "meta mark", "ct mark", init, ctinit),
    };
    let rules = match kind {
        0 => vec![set_rule(rng, "meta mark", "meta mark", init, ctinit)],
        1 => vec![set_rule(rng, "ct mark", "ct mark", init, ctinit)],
        2 => vec![set_rule(rng, "ct mark", "meta mark", init, ctinit)],
        3 => vec![set_rule(rng, "meta mark", "ct mark", init, ctinit)],
        4 => vec![match_rule(rng, "meta mark", init)],
        5 => vec![match_rule(rng, "ct mark", ctinit)],
        6 => {
            let m = if rng.chance(50) {
                match_rule(rng, "meta mark", init)
            } else {
                match_rule(rng, "ct mark", ctinit)
            };
            vec![format!("{m} {}", any_write(rng))]
        }
        _ => (0..2 + rng.below(3)).map(|_| any_write(rng)).collect(),
    };
    Case {
        kind,
        init,
        ctinit,
        rules,
    }
}

fn ruleset_text(cases: &[Case]) -> String {
    let mut t = String::from("table inet ms {\n\tchain out {\n\t\ttype filter hook output priority filter; policy accept;\n\t\tudp dport vmap { ");
    let els: Vec<String> = (0..cases.len())
        .map(|i| format!("{} : jump case_{i}", BASE_PORT as usize + i))
        .collect();
    t.push_str(&els.join(", "));
    t.push_str(" }\n\t}\n");
    for (i, case) in cases.iter().enumerate() {
        let _ = writeln!(t, "\tchain case_{i} {{");
        let _ = writeln!(t, "\t\tmeta mark set {:#x} counter", case.init);
        let _ = writeln!(t, "\t\tct mark set {:#x} counter", case.ctinit);
        for r in &case.rules {
            let _ = writeln!(t, "\t\t{r} counter");
        }
        for b in 0..32 {
            let _ = writeln!(
                t,
                "\t\tmeta mark & {:#x} == {:#x} counter",
                1u32 << b,
                1u32 << b
            );
        }
        for b in 0..32 {
            let _ = writeln!(
                t,
                "\t\tct mark & {:#x} == {:#x} counter",
                1u32 << b,
                1u32 << b
            );
        }
        t.push_str("\t}\n");
    }
    t.push_str("}\n");
    t
}

/// Packet counters of every rule by chain, from `nft -j list ruleset`.
fn counters(json: &str) -> HashMap<String, Vec<u64>> {
    let v: serde_json::Value = serde_json::from_str(json).expect("nft -j output is JSON");
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    for item in v["nftables"].as_array().expect("nftables array") {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let chain = rule["chain"].as_str().expect("chain name").to_string();
        let packets = rule["expr"]
            .as_array()
            .and_then(|e| e.iter().find_map(|s| s.get("counter")))
            .and_then(|c| c["packets"].as_u64())
            .unwrap_or(u64::MAX);
        out.entry(chain).or_default().push(packets);
    }
    out
}

fn parse_ops(name: &str, text: &str, format: &str) -> HashMap<String, Vec<Vec<MarkOp>>> {
    let mut loader = NodeLoader::new();
    loader
        .add_text(name, text.as_bytes().to_vec(), true)
        .unwrap_or_else(|e| panic!("markspace cannot read {name}: {e}"));
    let node = loader.finish();
    assert_eq!(
        node.formats.first().map(|f| f.1),
        Some(format),
        "{name} detected as {:?}",
        node.formats
    );
    let errors: Vec<String> = node
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .take(10)
        .map(|d| {
            let r = d.render(&node.sources);
            format!("{}: {}\n    {}", r.location, d.message, r.line)
        })
        .collect();
    assert!(
        errors.is_empty(),
        "markspace reported errors on {name}:\n{}",
        errors.join("\n")
    );
    chains_ops(&node.ruleset, "ms")
}

fn bits_of(counters: &[u64]) -> u32 {
    counters
        .iter()
        .enumerate()
        .filter(|(_, &p)| p > 0)
        .fold(0, |acc, (b, _)| acc | 1 << b)
}

fn seed() -> u64 {
    match std::env::var("MARKSPACE_ORACLE_SEED") {
        Ok(s) if s == "random" => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(DEFAULT_SEED, |d| d.as_nanos() as u64),
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|_| panic!("MARKSPACE_ORACLE_SEED=`{s}` is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

#[test]
fn nft_mark_expressions_agree_with_the_kernel() {
    if !is_root() {
        println!(
            "nft oracle: SKIPPED, not root (it needs `ip netns add` and nft; CI runs it as root)"
        );
        return;
    }
    let started = Instant::now();
    let seed = seed();
    let n_cases: usize = std::env::var("MARKSPACE_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
        .clamp(1, 20000);
    println!(
        "nft oracle: seed {seed:#x}, {n_cases} cases (replay with MARKSPACE_ORACLE_SEED={seed:#x})"
    );
    let mut rng = Rng::new(seed);
    let cases: Vec<Case> = (0..n_cases).map(|_| gen_case(&mut rng)).collect();
    let written = ruleset_text(&cases);

    let ns = Netns::new("nft-oracle");
    ns.exec(&["nft", "-f", "-"], Some(&written));
    let ports: Vec<String> = (0..cases.len())
        .map(|i| (BASE_PORT as usize + i).to_string())
        .collect();
    let script = format!(
        "for p in {}; do echo x > /dev/udp/127.0.0.1/$p || exit 1; done",
        ports.join(" ")
    );
    ns.exec(&["bash", "-c", &script], None);
    let listed = ns.exec(&["nft", "list", "ruleset"], None);
    let listed_json = ns.exec(&["nft", "-j", "list", "ruleset"], None);
    let kernel_done = started.elapsed();
    drop(ns);

    let kernel = counters(&listed_json);
    let parses = [
        ("as written", parse_ops("written.nft", &written, "nft-text")),
        (
            "nft list ruleset",
            parse_ops("nft list ruleset", &listed, "nft-text"),
        ),
        (
            "nft -j list ruleset",
            parse_ops("nft -j list ruleset", &listed_json, "nft-json"),
        ),
    ];
    let canonical = &parses[1].1;
    let listed_lines: HashMap<String, Vec<&str>> = {
        let mut m: HashMap<String, Vec<&str>> = HashMap::new();
        let mut cur = String::new();
        for l in listed.lines() {
            let t = l.trim();
            if let Some(c) = t.strip_prefix("chain ").and_then(|c| c.strip_suffix(" {")) {
                cur = c.to_string();
            } else if !t.is_empty() && t != "}" && !t.starts_with("type ") {
                m.entry(cur.clone()).or_default().push(t);
            }
        }
        m
    };

    let mut parse_failures = Vec::new();
    let mut chains: Vec<&String> = canonical.keys().collect();
    chains.sort();
    for chain in &chains {
        let want = &canonical[*chain];
        for (what, ops) in &parses {
            match ops.get(*chain) {
                None => {
                    parse_failures.push(format!("chain {chain}: missing from the {what} parse"))
                }
                Some(got) if got.len() != want.len() => parse_failures.push(format!(
                    "chain {chain}: {} rules in the {what} parse, {} listed",
                    got.len(),
                    want.len()
                )),
                Some(got) => {
                    for (k, (g, w)) in got.iter().zip(want.iter()).enumerate() {
                        if g != w {
                            let line = listed_lines
                                .get(chain.as_str())
                                .and_then(|l| l.get(k))
                                .copied()
                                .unwrap_or("?");
                            let written_rule = chain
                                .strip_prefix("case_")
                                .and_then(|i| i.parse::<usize>().ok())
                                .and_then(|i| cases.get(i))
                                .and_then(|c| k.checked_sub(PRELUDE).and_then(|j| c.rules.get(j)))
                                .map_or("", String::as_str);
                            parse_failures.push(format!(
                                "chain {chain} rule {}: `{line}`\n  written: {written_rule}\n  {what}: {g:?}\n  listed: {w:?}",
                                k + 1
                            ));
                        }
                    }
                }
            }
        }
    }

    let mut failures = Vec::new();
    let mut per_kind = vec![0usize; KINDS.len()];
    let mut agree = 0;
    for (i, case) in cases.iter().enumerate() {
        per_kind[case.kind] += 1;
        let chain = format!("case_{i}");
        let Some(counts) = kernel.get(&chain) else {
            failures.push(format!("{chain}: not in nft -j output"));
            continue;
        };
        let n_rules = PRELUDE + case.rules.len() + PROBES;
        if counts.len() != n_rules || counts[0] != 1 {
            failures.push(format!(
                "{chain}: {} rules read back ({n_rules} loaded), first counted {} packets",
                counts.len(),
                counts.first().copied().unwrap_or(0)
            ));
            continue;
        }
        let probes = &counts[PRELUDE + case.rules.len()..];
        let (k_mark, k_ct) = (bits_of(&probes[..32]), bits_of(&probes[32..]));
        let Some(ops) = canonical.get(&chain) else {
            continue;
        };
        let describe = |predicted: &str| {
            let mut s = format!(
                "{chain} [{}]: kernel and markspace disagree\n  initial: mark={} ctmark={}\n",
                KINDS[case.kind],
                hex(case.init),
                hex(case.ctinit)
            );
            let lines = listed_lines.get(&chain);
            for (j, r) in case.rules.iter().enumerate() {
                let k = PRELUDE + j;
                let _ = write!(
                    s,
                    "  rule {}: {r}\n    listed: {}\n    ops: {:?}\n    kernel counted {}\n",
                    j + 1,
                    lines.and_then(|l| l.get(k)).copied().unwrap_or("?"),
                    ops.get(k),
                    counts[k]
                );
            }
            let _ = write!(
                s,
                "  kernel: mark={} ctmark={}\n  markspace: {predicted}",
                hex(k_mark),
                hex(k_ct)
            );
            s
        };
        match simulate(ops) {
            Err(e) => failures.push(describe(&format!("cannot evaluate: {e}"))),
            Ok((matched, state)) => {
                let predicted: Vec<u64> = matched.iter().map(|&m| u64::from(m)).collect();
                if &predicted != counts || state.mark != k_mark || state.ctmark != k_ct {
                    failures.push(describe(&format!(
                        "mark={} ctmark={} (rules matched: {:?})",
                        hex(state.mark),
                        hex(state.ctmark),
                        &matched[PRELUDE..PRELUDE + case.rules.len()]
                    )));
                } else {
                    agree += 1;
                }
            }
        }
    }
    let mut summary = format!(
        "nft oracle: {agree} of {} nft cases agree with the kernel (seed {seed:#x}; kernel {:.1?}, total {:.1?})",
        cases.len(),
        kernel_done,
        started.elapsed()
    );
    for (k, n) in KINDS.iter().zip(&per_kind) {
        let _ = write!(summary, "\n  {n:4} {k}");
    }
    let _ = write!(
        summary,
        "\n  parses: {} chains compared rule by rule in 3 forms (written, nft list ruleset, nft -j list ruleset)",
        canonical.len()
    );
    println!("{summary}");
    let limit = std::env::var("MARKSPACE_ORACLE_SHOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    if !failures.is_empty() || !parse_failures.is_empty() {
        let mut msg = format!(
            "{} case(s) disagree with the kernel, {} rule(s) parse differently (seed {seed:#x})",
            failures.len(),
            parse_failures.len()
        );
        for (what, list) in [
            ("kernel vs markspace", &failures),
            ("parse forms", &parse_failures),
        ] {
            if !list.is_empty() {
                let shown = list.len().min(limit);
                let _ = write!(
                    msg,
                    "\n\n=== {what}: first {shown} of {} ===\n\n{}",
                    list.len(),
                    list[..shown].join("\n\n")
                );
            }
        }
        panic!("{msg}");
    }
}
