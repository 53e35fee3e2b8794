//! Conformance with the nftables test suites (`shared/corpus/nftables/`).
//!
//! - py suite (`*.t`, `py/*.t`): every mark-related case `rule;ok[;normalised]` must parse, and
//!   the rule, its normalised output (what `nft list` prints back) and, for `any/meta.t` and
//!   `any/ct.t`, its JSON form (`*.t.json`) and normalised JSON (`*.t.json.output`) must give the
//!   same mark operations and verdict. `rule;fail` cases are listed with what markspace does.
//! - shell dumps (`shell-dumps/*.nft`, `*.json-nft`): every dump parses without an error, and
//!   the text and JSON dumps of one test give the same tables, chains and operations rule by
//!   rule.
//!
//! The corpus lives outside the repository (`../shared/corpus`, as in CI) or at
//! `MARKSPACE_CORPUS`; the tests fail loudly when it is missing.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::lex::lex;
use super::lower::{lower, Lowered};
use super::rule::parse_rule;
use crate::diagnostic::Level;
use crate::model::MarkOp;
use crate::ruleset::{Ruleset, RulesetBuilder, Verdict};
use crate::source::SourceId;
use crate::sources::iptables::conformance_tests::{corpus_dir, corpus_files};

fn nft_dir() -> std::path::PathBuf {
    corpus_dir().join("nftables")
}

fn parse_text(rule: &str) -> Result<Lowered, String> {
    let l = lex(rule);
    parse_rule(&l.tokens, rule.len())
        .map(|s| lower(&s))
        .map_err(|e| format!("{} at {}", e.message, e.offset))
}

/// `# rule` followed by a JSON array of statements, as in `*.t.json` and `*.t.json.output`.
fn json_cases(path: &Path) -> HashMap<String, Lowered> {
    let Ok(text) = fs::read_to_string(path) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let flush = |cur: Option<(String, String)>, out: &mut HashMap<String, Lowered>| {
        if let Some((rule, body)) = cur {
            let stmts = super::json::statements(&body)
                .unwrap_or_else(|e| panic!("{}: `{rule}`: bad JSON: {e}", path.display()));
            out.insert(rule, lower(&stmts));
        }
    };
    for line in text.lines() {
        if let Some(rule) = line.strip_prefix("# ") {
            flush(current.take(), &mut out);
            current = Some((rule.to_string(), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(current, &mut out);
    out
}

/// Rules nft rejects for typing reasons markspace does not check: the text is well-formed, it
/// never appears in `nft list` output, and markspace reads it as an opaque operation.
const FAIL_ACCEPTED: &[(&str, &str)] = &[
    (
        "meta mark set ct original daddr map { 1.1.1.1 : 0x00000011 }",
        "nft needs `ct original ip daddr` to type the address; markspace reads a map-valued write",
    ),
    (
        "meta mark set ct original saddr . meta mark map { 1.1.1.1 . 0x00000014 : 0x0000001e }",
        "as above, in a concatenation; read as a map-valued write reading the mark",
    ),
    (
        "ct original saddr . meta mark { 1.1.1.1 . 0x00000014 }",
        "as above, in a set lookup; read as an opaque read of the mark",
    ),
];

fn same(a: &Lowered, b: &Lowered) -> bool {
    a.ops == b.ops && a.verdict == b.verdict
}

#[test]
fn nft_py_suite_mark_cases() {
    let files: Vec<_> = corpus_files("nftables")
        .into_iter()
        .chain(corpus_files("nftables/py"))
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    let (mut ok_pass, mut ok_total, mut json_checked, mut fail_rejected, mut fail_total) =
        (0, 0, 0, 0, 0);
    let (mut other_pass, mut other_total) = (0, 0);
    let mut failures = Vec::new();
    let mut accepted_fail = Vec::new();
    for path in &files {
        let text = fs::read_to_string(path).expect("corpus file is text");
        let json = json_cases(&path.with_extension("t.json"));
        let json_out = json_cases(&path.with_extension("t.json.output"));
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with(['#', ':', '*', '!', '-']) {
                continue;
            }
            let mut parts = line.split(';');
            if !line.contains("mark") {
                // Every other accepted rule of the suite must parse too (opaque, never an error).
                if let (Some(rule), Some("ok")) = (parts.next(), parts.next()) {
                    other_total += 1;
                    match parse_text(rule) {
                        Ok(_) => other_pass += 1,
                        Err(e) => {
                            failures.push(format!("{}:{}: `{rule}`: {e}", path.display(), n + 1))
                        }
                    }
                }
                continue;
            }
            let (Some(rule), Some(result)) = (parts.next(), parts.next()) else {
                continue;
            };
            let expected = parts.next();
            let at = format!("{}:{}: `{rule}`", path.display(), n + 1);
            match result.trim() {
                "ok" => {
                    ok_total += 1;
                    let outcome = (|| {
                        let got = parse_text(rule).map_err(|e| format!("rejected: {e}"))?;
                        if let Some(exp) = expected {
                            let e = parse_text(exp)
                                .map_err(|e| format!("normalised form `{exp}` rejected: {e}"))?;
                            if !same(&got, &e) {
                                return Err(format!(
                                    "differs from its normalised form `{exp}`:\n    {:?} {:?}\n    {:?} {:?}",
                                    got.ops, got.verdict, e.ops, e.verdict
                                ));
                            }
                        }
                        for (what, cases) in [("JSON", &json), ("normalised JSON", &json_out)] {
                            if let Some(j) = cases.get(rule) {
                                json_checked += 1;
                                if !same(&got, j) {
                                    return Err(format!(
                                        "differs from its {what} form:\n    {:?} {:?}\n    {:?} {:?}",
                                        got.ops, got.verdict, j.ops, j.verdict
                                    ));
                                }
                            }
                        }
                        if got.ops.is_empty() && !rule.contains("socket mark") {
                            return Err("no mark operation found".to_string());
                        }
                        Ok(())
                    })();
                    match outcome {
                        Ok(()) => ok_pass += 1,
                        Err(e) => failures.push(format!("{at}: {e}")),
                    }
                }
                "fail" => {
                    fail_total += 1;
                    match parse_text(rule) {
                        Err(_) => fail_rejected += 1,
                        Ok(got) => {
                            if let Some((_, why)) = FAIL_ACCEPTED.iter().find(|(r, _)| *r == rule) {
                                accepted_fail.push(format!("{rule}: {why}"));
                            } else {
                                failures.push(format!("{at}: accepted a fail rule: {:?}", got.ops));
                            }
                        }
                    }
                }
                other => failures.push(format!("{at}: unknown result `{other}`")),
            }
        }
    }
    println!(
        "nft py conformance: {ok_pass}/{ok_total} mark-related ok cases pass ({json_checked} JSON \
         forms compared), {fail_rejected}/{fail_total} fail cases rejected, {} accepted as opaque \
         (listed in FAIL_ACCEPTED), {other_pass}/{other_total} other ok rules parse ({} files)",
        accepted_fail.len(),
        files.len()
    );
    println!(
        "  not read: *.t.payload* (netlink bytecode), shell-dumps/*.sh (shell scripts around nft \
         commands; their rulesets are the dumps)"
    );
    for a in &accepted_fail {
        println!("  accepted fail case: {a}");
    }
    assert!(
        ok_total >= 80,
        "too few mark-related cases ({ok_total}): is the corpus complete?"
    );
    assert!(
        json_checked >= 40,
        "too few JSON forms compared ({json_checked})"
    );
    assert!(
        failures.is_empty(),
        "{} conformance failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Per table and chain, the operations and verdict shape of every rule.
type Shape = HashMap<(String, String, String), Vec<(Vec<MarkOp>, String)>>;

fn shape(set: &Ruleset) -> Shape {
    let mut out = Shape::new();
    for chain in &set.chains {
        let t = set.table(chain.table);
        let key = (
            t.family.as_str().to_string(),
            t.name.to_string(),
            chain.name.to_string(),
        );
        let verdict = |v: &Verdict| -> String {
            match v {
                Verdict::Jump(c) => format!("jump {}", set.chain(*c).name),
                Verdict::Goto(c) => format!("goto {}", set.chain(*c).name),
                Verdict::Map(vs) => format!("map of {}", vs.len()),
                other => format!("{other:?}"),
            }
        };
        let rules = chain
            .rules
            .iter()
            .map(|r| {
                let r = set.rule(*r);
                (r.ops().to_vec(), verdict(&r.verdict))
            })
            .collect();
        out.insert(key, rules);
    }
    out
}

#[test]
fn nft_shell_dumps_parse_and_agree() {
    let dir = nft_dir().join("shell-dumps");
    let names: Vec<String> = corpus_files("nftables/shell-dumps")
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let (mut texts, mut jsons, mut pairs, mut rules, mut mark_rules) = (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for name in &names {
        let Some(stem) = name.strip_suffix(".nft") else {
            continue;
        };
        let text = fs::read_to_string(dir.join(name)).expect("text");
        assert!(
            super::text::detect(&text),
            "{name} not detected as nft text"
        );
        let mut b = RulesetBuilder::new();
        let diags = super::text::parse(&text, SourceId(0), name, &mut b);
        let errors: Vec<_> = diags.iter().filter(|d| d.level == Level::Error).collect();
        if !errors.is_empty() || !diags.is_empty() {
            failures.push(format!("{name}: {diags:?}"));
        }
        let text_set = b.finish();
        texts += 1;
        rules += text_set.rules.len();
        mark_rules += text_set
            .rules
            .iter()
            .filter(|r| !r.ops().is_empty())
            .count();
        let json_name = format!("{stem}.json-nft");
        let Ok(json) = fs::read_to_string(dir.join(&json_name)) else {
            continue;
        };
        assert!(
            super::json::detect(&json),
            "{json_name} not detected as nft JSON"
        );
        let mut b = RulesetBuilder::new();
        let diags = super::json::parse(&json, SourceId(1), &json_name, &mut b);
        if !diags.is_empty() {
            failures.push(format!("{json_name}: {diags:?}"));
        }
        let json_set = b.finish();
        jsons += 1;
        let (a, j) = (shape(&text_set), shape(&json_set));
        if a != j {
            let mut keys: Vec<_> = a.keys().chain(j.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                if a.get(k) != j.get(k) {
                    failures.push(format!(
                        "{stem}: chain {k:?} differs between text and JSON:\n    text {:?}\n    json {:?}",
                        a.get(k),
                        j.get(k)
                    ));
                }
            }
        } else {
            pairs += 1;
        }
    }
    println!(
        "nft shell dumps: {texts} text and {jsons} JSON dumps parsed without error, {pairs} \
         text/JSON pairs agree rule by rule ({rules} rules, {mark_rules} with mark operations)"
    );
    assert!(texts >= 35, "expected the corpus dumps, found {texts}");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Truncated and corrupted dumps give diagnostics, never a panic.
#[test]
fn nft_damaged_dumps_do_not_panic() {
    let mut inputs = 0;
    for path in corpus_files("nftables/shell-dumps") {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let len = text.len();
        for k in 1..24 {
            let cut = len * k / 24;
            let mut damaged: Vec<String> = Vec::new();
            if let Some(prefix) = text.get(..cut) {
                damaged.push(prefix.to_string());
            }
            for junk in ["{", "}", "\"", "(", "meta mark set", ":", "[", "0x"] {
                if text.is_char_boundary(cut) {
                    damaged.push(format!("{}{junk}{}", &text[..cut], &text[cut..]));
                }
            }
            for d in damaged {
                inputs += 1;
                let mut b = RulesetBuilder::new();
                let _ = super::text::parse(&d, SourceId(0), "x", &mut b);
                let _ = b.finish();
                let mut b = RulesetBuilder::new();
                let _ = super::json::parse(&d, SourceId(0), "x", &mut b);
                let _ = b.finish();
            }
        }
    }
    println!("nft damaged inputs: {inputs} truncated or corrupted dumps read without a panic");
    assert!(inputs > 1000);
}
