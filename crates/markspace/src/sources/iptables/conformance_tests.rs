//! Conformance with the iptables test suite (`shared/corpus/iptables/*.t`).
//!
//! Every mark-related case (`rule;expected;OK|FAIL`) is a test: an accepted rule parses, and it
//! and its expected save form (`=` means the same text) give the same operations and verdict; a
//! FAIL rule is rejected. The corpus dumps (`shell-*` save files) must parse without errors.
//! The corpus lives outside the repository (`../shared/corpus`, as in CI) or at
//! `MARKSPACE_CORPUS`; the tests fail loudly when it is missing rather than pass vacuously.

use std::fs;
use std::path::PathBuf;

use super::rule::{parse_rule, Dialect, ParsedRule};
use super::tokens::tokenize;
use crate::ruleset::RulesetBuilder;
use crate::source::SourceId;

pub(crate) fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MARKSPACE_CORPUS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// The files of a corpus directory (`iptables`, `nftables/py`…), sorted; panics with where it
/// looked when the corpus is missing.
pub(crate) fn corpus_files(sub: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(sub);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "corpus not found at {} ({e}); set MARKSPACE_CORPUS",
                dir.display()
            )
        })
        .map(|e| e.expect("readable corpus dir").path())
        .collect();
    files.sort();
    files
}

/// Files whose every line is about marks.
const MARK_FILES: &[&str] = &[
    "MARK", "CONNMARK", "mark", "connmark", "TPROXY", "socket", "HMARK", "mark_m",
];

fn parse(line: &str, dialect: Dialect) -> Result<ParsedRule<'_>, String> {
    let toks = tokenize(line).map_err(|e| format!("unclosed quote at {}", e.offset))?;
    parse_rule(&toks, dialect).map_err(|e| format!("{} at {}", e.message, e.offset))
}

fn same(a: &ParsedRule<'_>, b: &ParsedRule<'_>) -> bool {
    a.ops == b.ops
        && a.target == b.target
        && a.goto == b.goto
        && a.target_verdict == b.target_verdict
}

#[test]
fn iptables_test_suite_mark_cases() {
    let files: Vec<PathBuf> = corpus_files("iptables")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    let (mut pass, mut total) = (0, 0);
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let ext = name.split_once('_').map_or(name, |(_, e)| e);
        let all_lines = MARK_FILES.contains(&ext);
        let dialect = if name.starts_with("libebt_") {
            Dialect::Ebtables
        } else if name.starts_with("libarpt_") {
            Dialect::Arptables
        } else {
            Dialect::Iptables
        };
        let text = fs::read_to_string(path).expect("corpus file is text");
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with(['#', '@', ':', '*']) {
                continue;
            }
            if !all_lines && !line.to_ascii_lowercase().contains("mark") {
                continue;
            }
            let mut parts = line.splitn(3, ';');
            let (Some(rule), Some(expected), Some(result)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            total += 1;
            let outcome = match result.trim() {
                "OK" => match parse(rule, dialect) {
                    Err(e) => Err(format!("rejected: {e}")),
                    Ok(got) => {
                        let exp_text = if expected == "=" || expected.is_empty() {
                            rule
                        } else {
                            expected
                        };
                        match parse(exp_text, dialect) {
                            Err(e) => Err(format!("expected form rejected: {e}")),
                            Ok(exp) if same(&got, &exp) => Ok(()),
                            Ok(exp) => Err(format!(
                                "differs from `{exp_text}`: {:?} vs {:?}",
                                got.ops, exp.ops
                            )),
                        }
                    }
                },
                "FAIL" => match parse(rule, dialect) {
                    Ok(got) => Err(format!("accepted a FAIL rule: {:?}", got.ops)),
                    Err(_) => Ok(()),
                },
                other => Err(format!("unknown result `{other}`")),
            };
            match outcome {
                Ok(()) => pass += 1,
                Err(e) => failures.push(format!("{}:{}: `{rule}`: {e}", path.display(), n + 1)),
            }
        }
    }
    println!(
        "iptables conformance: {pass}/{total} mark-related cases pass ({} files)",
        files.len()
    );
    assert!(
        total >= 50,
        "too few mark-related cases found ({total}): is the corpus complete?"
    );
    assert!(
        failures.is_empty(),
        "{} conformance failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn iptables_corpus_dumps_parse_cleanly() {
    let mut n = 0;
    let mut rules = 0;
    for path in corpus_files("iptables") {
        let name = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let is_dump = name.starts_with("shell-ipt-save_dumps_")
            || name.starts_with("shell-ipt-restore_dumps_")
            || name.starts_with("shell-firewalld-restore_dumps_")
            || name == "shell-nft-only_0010-iptables-nft-save.txt";
        if !is_dump {
            continue;
        }
        let text = fs::read_to_string(&path).expect("text");
        assert!(
            crate::sources::iptables::save::detect(&text),
            "{name} not detected as iptables-save"
        );
        let mut b = RulesetBuilder::new();
        let diags = super::save::parse(&text, SourceId(0), &name, &mut b);
        assert!(diags.is_empty(), "{name}: {diags:?}");
        rules += b.rule_count();
        n += 1;
    }
    println!("iptables corpus dumps: {n} files, {rules} rules parsed without error");
    assert!(n >= 7, "expected the corpus save dumps, found {n}");
}
