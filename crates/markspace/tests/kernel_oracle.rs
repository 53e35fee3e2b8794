//! Kernel oracle: the mark algebra and both iptables parsers against the real kernel.
//!
//! Hundreds of random MARK / CONNMARK / `-m mark` / `-m connmark` rules are loaded with one
//! `iptables-restore` into a fresh network namespace, one chain per case:
//!
//! ```text
//! -A OUTPUT -p udp --dport 20000+i -j CASE_i
//! -A CASE_i -j MARK --set-xmark INIT/0xffffffff          # the initial packet mark
//! -A CASE_i -j CONNMARK --set-xmark CTINIT/0xffffffff    # the initial connmark
//! -A CASE_i <rule(s) under test>
//! -A CASE_i -m mark --mark 0x1/0x1 … 0x80000000/0x80000000       # 32 probes, counters only
//! -A CASE_i -m connmark --mark 0x1/0x1 … 0x80000000/0x80000000   # 32 probes
//! ```
//!
//! One UDP datagram per case is sent from inside the namespace (conntrack runs before mangle
//! OUTPUT, so the connmark exists), and `iptables-save -c` gives every rule's packet counter: the
//! probes spell out the final mark and connmark bit by bit, the rules under test say whether
//! they matched. markspace then parses the ruleset four times — as written, as `iptables-save`
//! prints it back (canonical form), and as the `-nvL` and `-L -n -v --line-numbers -x` listings
//! print it — requires the same mark operations rule by rule from all four, runs them through the
//! algebra (`MarkRead::eval`, `MarkState::apply`) and requires every counter of every case
//! chain to be what the algebra predicts.
//!
//! Runs as root only (CI runs as root); as another user it prints why and returns. The seed is
//! fixed so CI is reproducible; `MARKSPACE_ORACLE_SEED=0x…` replays another one and
//! `MARKSPACE_ORACLE_SEED=random` explores. `MARKSPACE_ORACLE_CASES=N` changes the number of
//! cases, `MARKSPACE_ORACLE_SHOW=N` how many disagreements of each kind are printed (30).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use markspace::diagnostic::Level;
use markspace::model::{hex, MarkOp, ALL_BITS};
use markspace::snapshot::NodeLoader;
use netns_testkit::{is_root, Netns};

mod oracle;
use oracle::{chains_ops, simulate, Rng};

const DEFAULT_SEED: u64 = 0x6d61_726b_7370_6163; // "markspac"
const DEFAULT_CASES: usize = 420;
const BASE_PORT: u16 = 20000;
/// Rules in front of the rules under test in every case chain (initial mark and connmark).
const PRELUDE: usize = 2;
/// Probe rules at the end of every case chain (32 for the mark, 32 for the connmark).
const PROBES: usize = 64;

// ---------------------------------------------------------------------------------------------
// Random cases

impl Rng {
    /// A number as iptables accepts it (`strtoul(…, 0)`): hex, upper-case hex, decimal, octal.
    fn num(&mut self, v: u32) -> String {
        match self.below(20) {
            0..=12 => format!("{v:#x}"),
            13 => format!("0X{v:X}"),
            14..=17 => format!("{v}"),
            _ if v == 0 => "0".to_string(),
            _ => format!("0{v:o}"),
        }
    }

    /// A value for `-m mark --mark V/M` against a field currently holding `x`: often matching,
    /// often one bit off, sometimes with bits outside the mask (never matches), sometimes random.
    fn match_value(&mut self, x: u32, mask: u32) -> u32 {
        match self.below(10) {
            0..=3 => x & mask,
            4 | 5 if mask != 0 => {
                let bit = mask & (1u32 << self.below(32));
                (x & mask) ^ if bit == 0 { lowest(mask) } else { bit }
            }
            6 | 7 if mask != ALL_BITS => (x & mask) | lowest(!mask),
            _ => self.word(),
        }
    }
}

fn lowest(x: u32) -> u32 {
    x & x.wrapping_neg()
}

/// The kinds of case, for the summary.
const KINDS: &[&str] = &[
    "MARK write",
    "CONNMARK write",
    "CONNMARK write + shift",
    "CONNMARK --save-mark",
    "CONNMARK --restore-mark",
    "-m mark",
    "-m connmark",
    "matches + target",
    "sequence",
];

struct Case {
    kind: usize,
    init: u32,
    ctinit: u32,
    /// The rules under test, as written after `-A CASE_i`.
    rules: Vec<String>,
}

fn mark_write(rng: &mut Rng, target: &str, shift: bool) -> String {
    let mut s = format!("-j {target} ");
    match rng.below(6) {
        0 | 1 => {
            let v = rng.word();
            if rng.chance(15) {
                let _ = write!(s, "--set-xmark {}", rng.num(v));
            } else {
                let m = rng.word();
                let _ = write!(s, "--set-xmark {}/{}", rng.num(v), rng.num(m));
            }
        }
        2 => {
            let v = rng.word();
            if rng.chance(30) {
                let _ = write!(s, "--set-mark {}", rng.num(v));
            } else {
                let m = rng.word();
                let _ = write!(s, "--set-mark {}/{}", rng.num(v), rng.num(m));
            }
        }
        3 => {
            let v = rng.word();
            let _ = write!(s, "--and-mark {}", rng.num(v));
        }
        4 => {
            let v = rng.word();
            let _ = write!(s, "--or-mark {}", rng.num(v));
        }
        _ => {
            let v = rng.word();
            let _ = write!(s, "--xor-mark {}", rng.num(v));
        }
    }
    if shift {
        push_shift(rng, &mut s);
    }
    s
}

fn push_shift(rng: &mut Rng, s: &mut String) {
    let dir = if rng.chance(50) { "left" } else { "right" };
    let n = match rng.below(4) {
        0 => 0,
        1 => 31,
        _ => rng.below(32),
    };
    let n = if rng.chance(20) {
        format!("{n:#x}")
    } else {
        n.to_string()
    };
    let _ = write!(s, " --{dir}-shift-mark {n}");
}

fn save_restore(rng: &mut Rng, op: &str) -> String {
    let mut s = format!("-j CONNMARK --{op}");
    match rng.below(6) {
        0 => {}
        1 => {
            let m = rng.word();
            let _ = write!(s, " --mask {}", rng.num(m));
        }
        2 => {
            let n = rng.word();
            let _ = write!(s, " --nfmask {}", rng.num(n));
        }
        3 => {
            let c = rng.word();
            let _ = write!(s, " --ctmask {}", rng.num(c));
        }
        4 => {
            let (c, n) = (rng.word(), rng.word());
            let _ = write!(s, " --ctmask {} --nfmask {}", rng.num(c), rng.num(n));
        }
        _ => {
            let (n, c) = (rng.word(), rng.word());
            let _ = write!(s, " --nfmask {} --ctmask {}", rng.num(n), rng.num(c));
        }
    }
    if rng.chance(40) {
        push_shift(rng, &mut s);
    }
    s
}

/// `-m mark [!] --mark V[/M]` (or connmark) against a field currently holding about `x`.
fn mark_match(rng: &mut Rng, module: &str, x: u32) -> String {
    let bang = if rng.chance(50) { "! " } else { "" };
    if rng.chance(15) {
        let v = rng.match_value(x, ALL_BITS);
        format!("-m {module} {bang}--mark {}", rng.num(v))
    } else {
        let m = rng.word();
        let v = rng.match_value(x, m);
        format!("-m {module} {bang}--mark {}/{}", rng.num(v), rng.num(m))
    }
}

fn any_write(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => mark_write(rng, "MARK", false),
        1 => {
            let shift = rng.chance(30);
            mark_write(rng, "CONNMARK", shift)
        }
        2 => save_restore(rng, "save-mark"),
        3 => save_restore(rng, "restore-mark"),
        _ => {
            let (m, v) = (rng.word(), rng.word());
            format!("-j MARK --set-xmark {}/{}", rng.num(v), rng.num(m))
        }
    }
}

fn guarded_write(rng: &mut Rng, init: u32, ctinit: u32) -> String {
    let mut parts = Vec::new();
    if rng.chance(70) {
        parts.push(mark_match(rng, "mark", init));
    }
    if parts.is_empty() || rng.chance(50) {
        parts.push(mark_match(rng, "connmark", ctinit));
    }
    if rng.chance(50) {
        parts.reverse();
    }
    parts.push(any_write(rng));
    parts.join(" ")
}

fn gen_case(rng: &mut Rng) -> Case {
    // Initial values: sometimes all-zero / all-one to exercise the edges.
    let init = rng.word();
    let ctinit = rng.word();
    let kind = match rng.below(100) {
        0..=17 => 0,
        18..=29 => 1,
        30..=41 => 2,
        42..=52 => 3,
        53..=63 => 4,
        64..=72 => 5,
        73..=81 => 6,
        82..=90 => 7,
        _ => 8,
    };
    let rules = match kind {
        0 => vec![mark_write(rng, "MARK", false)],
        1 => vec![mark_write(rng, "CONNMARK", false)],
        2 => vec![mark_write(rng, "CONNMARK", true)],
        3 => vec![save_restore(rng, "save-mark")],
        4 => vec![save_restore(rng, "restore-mark")],
        5 => vec![mark_match(rng, "mark", init)],
        6 => vec![mark_match(rng, "connmark", ctinit)],
        7 => vec![guarded_write(rng, init, ctinit)],
        _ => {
            let n = 2 + rng.below(3);
            (0..n)
                .map(|_| match rng.below(3) {
                    0 => guarded_write(rng, init, ctinit),
                    _ => any_write(rng),
                })
                .collect()
        }
    };
    Case {
        kind,
        init,
        ctinit,
        rules,
    }
}

fn chain_name(i: usize) -> String {
    format!("CASE_{i}")
}

/// The `iptables-restore` input for all cases.
fn restore_text(cases: &[Case]) -> String {
    let mut t = String::from(
        "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n\
         :OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
    );
    for i in 0..cases.len() {
        let _ = writeln!(t, ":{} - [0:0]", chain_name(i));
    }
    for i in 0..cases.len() {
        let _ = writeln!(
            t,
            "-A OUTPUT -p udp --dport {} -j {}",
            BASE_PORT as usize + i,
            chain_name(i)
        );
    }
    for (i, case) in cases.iter().enumerate() {
        let c = chain_name(i);
        let _ = writeln!(t, "-A {c} -j MARK --set-xmark {:#x}/0xffffffff", case.init);
        let _ = writeln!(
            t,
            "-A {c} -j CONNMARK --set-xmark {:#x}/0xffffffff",
            case.ctinit
        );
        for r in &case.rules {
            let _ = writeln!(t, "-A {c} {r}");
        }
        for b in 0..32 {
            let _ = writeln!(t, "-A {c} -m mark --mark {:#x}/{:#x}", 1u32 << b, 1u32 << b);
        }
        for b in 0..32 {
            let _ = writeln!(
                t,
                "-A {c} -m connmark --mark {:#x}/{:#x}",
                1u32 << b,
                1u32 << b
            );
        }
    }
    t.push_str("COMMIT\n");
    t
}

// ---------------------------------------------------------------------------------------------
// The namespace and the commands run in it

// ---------------------------------------------------------------------------------------------
// Reading the kernel's answer and markspace's

/// One rule line of `iptables-save -c`: its packet counter and its text after `-A CHAIN `.
struct SavedRule {
    packets: u64,
    text: String,
}

/// The rules of `iptables-save -c` output by chain, in order.
fn saved_rules(save: &str) -> HashMap<String, Vec<SavedRule>> {
    let mut out: HashMap<String, Vec<SavedRule>> = HashMap::new();
    for line in save.lines() {
        let Some(rest) = line.strip_prefix('[') else {
            continue;
        };
        let (counters, rest) = rest.split_once("] ").expect("`[p:b] ` counters");
        let packets = counters
            .split_once(':')
            .and_then(|(p, _)| p.parse().ok())
            .unwrap_or_else(|| panic!("bad counters in `{line}`"));
        let rest = rest
            .strip_prefix("-A ")
            .expect("a saved rule starts with -A");
        let (chain, text) = rest.split_once(' ').unwrap_or((rest, ""));
        out.entry(chain.to_string()).or_default().push(SavedRule {
            packets,
            text: text.to_string(),
        });
    }
    out
}

/// Parses one text with markspace (format detected as the CLI does) and returns, per chain of
/// the mangle table, the mark operations of every rule; panics on any error diagnostic.
fn parse_ops(name: &str, text: &str) -> HashMap<String, Vec<Vec<MarkOp>>> {
    let mut loader = NodeLoader::new();
    loader
        .add_text(name, text.as_bytes().to_vec(), true)
        .unwrap_or_else(|e| panic!("markspace cannot read {name}: {e}"));
    let node = loader.finish();
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
    chains_ops(&node.ruleset, "mangle")
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
            let parsed = match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("MARKSPACE_ORACLE_SEED=`{s}` is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

// ---------------------------------------------------------------------------------------------
// The test

#[test]
fn iptables_mark_algebra_agrees_with_the_kernel() {
    if !is_root() {
        println!(
            "kernel oracle: SKIPPED, not root (it needs `ip netns add` and iptables; CI runs it as root)"
        );
        eprintln!("kernel oracle: SKIPPED, not root");
        return;
    }
    let started = Instant::now();
    let seed = seed();
    let n_cases: usize = std::env::var("MARKSPACE_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES)
        .clamp(1, 40000);
    println!("kernel oracle: seed {seed:#x}, {n_cases} cases (replay with MARKSPACE_ORACLE_SEED={seed:#x})");
    let mut rng = Rng::new(seed);
    let cases: Vec<Case> = (0..n_cases).map(|_| gen_case(&mut rng)).collect();
    let written = restore_text(&cases);

    // The kernel.
    let ns = Netns::new("oracle");
    ns.exec(&["iptables-restore"], Some(&written));
    let ports: Vec<String> = (0..cases.len())
        .map(|i| (BASE_PORT as usize + i).to_string())
        .collect();
    let script = format!(
        "for p in {}; do echo x > /dev/udp/127.0.0.1/$p || exit 1; done",
        ports.join(" ")
    );
    ns.exec(&["bash", "-c", &script], None);
    let save = ns.exec(&["iptables-save", "-c", "-t", "mangle"], None);
    let nvl = ns.exec(&["iptables", "-t", "mangle", "-nvL"], None);
    let numbered = ns.exec(
        &[
            "iptables",
            "-t",
            "mangle",
            "-L",
            "-n",
            "-v",
            "--line-numbers",
            "-x",
        ],
        None,
    );
    let kernel_done = started.elapsed();
    drop(ns);

    // markspace, four ways.
    let saved = saved_rules(&save);
    let parses = [
        ("as written", parse_ops("written.rules", &written)),
        (
            "iptables-save -c -t mangle",
            parse_ops("iptables-save -c -t mangle", &save),
        ),
        (
            "iptables -t mangle -nvL",
            parse_ops("iptables -t mangle -nvL", &nvl),
        ),
        (
            "iptables -t mangle -L -n -v --line-numbers -x",
            parse_ops("iptables -t mangle -L -n -v --line-numbers -x", &numbered),
        ),
    ];
    let canonical = &parses[1].1;

    let mut parse_failures = Vec::new();
    let mut failures = Vec::new();
    // Every chain, OUTPUT included, must give the same ops in all four forms.
    let mut chains: Vec<&String> = canonical.keys().collect();
    chains.sort();
    for chain in chains {
        let want = &canonical[chain];
        for (what, ops) in &parses {
            let Some(got) = ops.get(chain) else {
                parse_failures.push(format!("chain {chain}: missing from the {what} parse"));
                continue;
            };
            if got.len() != want.len() {
                parse_failures.push(format!(
                    "chain {chain}: {} rules in the {what} parse, {} in the iptables-save parse",
                    got.len(),
                    want.len()
                ));
                continue;
            }
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                if g != w {
                    let text = saved
                        .get(chain)
                        .and_then(|r| r.get(k))
                        .map_or("?", |r| r.text.as_str());
                    let written_text = chain
                        .strip_prefix("CASE_")
                        .and_then(|i| i.parse::<usize>().ok())
                        .and_then(|i| cases.get(i))
                        .and_then(|c| k.checked_sub(PRELUDE).and_then(|j| c.rules.get(j)))
                        .map_or("", String::as_str);
                    parse_failures.push(format!(
                        "chain {chain} rule {}: ops differ between the {what} parse and the \
                         iptables-save parse\n  written: {written_text}\n  saved:   {text}\n  \
                         {what}: {g:?}\n  iptables-save: {w:?}",
                        k + 1
                    ));
                }
            }
        }
    }

    // Every case: the kernel's counters against the algebra's prediction.
    let mut per_kind = vec![0usize; KINDS.len()];
    let mut agree = 0;
    for (i, case) in cases.iter().enumerate() {
        per_kind[case.kind] += 1;
        let chain = chain_name(i);
        let Some(kernel) = saved.get(&chain) else {
            failures.push(format!("{chain}: not in iptables-save output"));
            continue;
        };
        let n_rules = PRELUDE + case.rules.len() + PROBES;
        if kernel.len() != n_rules {
            failures.push(format!(
                "{chain}: {} rules read back, {n_rules} loaded",
                kernel.len()
            ));
            continue;
        }
        let counters: Vec<u64> = kernel.iter().map(|r| r.packets).collect();
        if counters[0] != 1 {
            failures.push(format!(
                "{chain}: the first rule counted {} packets, expected exactly 1 (was the \
                 datagram to port {} sent and seen once?)",
                counters[0],
                BASE_PORT as usize + i
            ));
            continue;
        }
        let probes = &counters[PRELUDE + case.rules.len()..];
        let (k_mark, k_ct) = (bits_of(&probes[..32]), bits_of(&probes[32..]));
        let Some(ops) = canonical.get(&chain) else {
            continue; // reported above
        };
        let describe = |predicted: &str| {
            let mut s = format!(
                "{chain} [{}]: kernel and markspace disagree\n  initial:   mark={} ctmark={}\n",
                KINDS[case.kind],
                hex(case.init),
                hex(case.ctinit)
            );
            for (j, r) in case.rules.iter().enumerate() {
                let k = PRELUDE + j;
                let _ = write!(
                    s,
                    "  rule {}:    {r}\n    saved:   {}\n    ops:     {:?}\n    kernel counted {} packet(s)\n",
                    j + 1,
                    kernel[k].text,
                    ops.get(k),
                    counters[k]
                );
            }
            let _ = write!(
                s,
                "  kernel:    mark={} ctmark={}\n  markspace: {predicted}",
                hex(k_mark),
                hex(k_ct)
            );
            s
        };
        match simulate(ops) {
            Err(e) => failures.push(describe(&format!("cannot evaluate: {e}"))),
            Ok((matched, state)) => {
                let predicted: Vec<u64> = matched.iter().map(|&m| u64::from(m)).collect();
                if predicted != counters || state.mark != k_mark || state.ctmark != k_ct {
                    let rule_hits: Vec<bool> =
                        matched[PRELUDE..PRELUDE + case.rules.len()].to_vec();
                    failures.push(describe(&format!(
                        "mark={} ctmark={} (rules under test matched: {rule_hits:?})",
                        hex(state.mark),
                        hex(state.ctmark)
                    )));
                } else {
                    agree += 1;
                }
            }
        }
    }

    let mut summary = format!(
        "kernel oracle: {agree} of {} iptables cases agree (seed {seed:#x}; kernel {:.1?}, total {:.1?})",
        cases.len(),
        kernel_done,
        started.elapsed()
    );
    for (k, n) in KINDS.iter().zip(&per_kind) {
        let _ = write!(summary, "\n  {n:4} {k}");
    }
    let _ = write!(
        summary,
        "\n  listings: {} chains compared rule by rule in 4 forms (written, iptables-save, -nvL, -L -n -v --line-numbers -x)",
        canonical.len()
    );
    println!("{summary}");
    let limit = std::env::var("MARKSPACE_ORACLE_SHOW")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    if !failures.is_empty() || !parse_failures.is_empty() {
        let mut msg = format!(
            "{} case(s) where the kernel and markspace disagree, {} rule(s) whose forms parse \
             differently (seed {seed:#x})",
            failures.len(),
            parse_failures.len()
        );
        for (what, list) in [
            ("kernel vs markspace", &failures),
            ("written / iptables-save / listings", &parse_failures),
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
