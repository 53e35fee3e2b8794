//! Every sample of the shared corpus (`corpus/formats/`) is recognised by exactly the format it
//! belongs to — no other detector claims it — and parses without errors, or is rejected for a
//! reason stated here. The corpus lives outside the repository (`../shared/corpus`, or
//! `MARKSPACE_CORPUS`); the test fails loudly when it is missing.

use std::fs;

use super::iptables::conformance_tests::{corpus_dir, corpus_files};
use super::{Sink, ALL};
use crate::diagnostic::Level;
use crate::source::SourceId;

/// Each sample and the one format that must claim it (`None`: no format, with the reason).
const EXPECTED: &[(&str, Result<&str, &str>)] = &[
    (
        "antrea-iptables-restore-expected-v4.txt",
        Ok("iptables-save"),
    ),
    ("antrea-ovs-dump-flows-pkt_mark.txt", Ok("ovs-flows")),
    (
        "cilium-bugtool-sysdump-listing.txt",
        Err("a list of the commands cilium-bugtool runs, not the output of one"),
    ),
    ("cilium-ip-xfrm-state.txt", Ok("ip-xfrm")),
    ("ip-rule-fwmark-samples.txt", Ok("ip-rule")),
    ("ip-xfrm-policy-mark.txt", Ok("ip-xfrm")),
    ("ovnk-egressip-iprule-connmark.txt", Ok("ip-rule")),
    ("ovs-ofctl-dump-flows-real.txt", Ok("ovs-flows")),
    (
        "sosreport-networking-file-listing.txt",
        Err("a list of sosreport file names, not the output of a command"),
    ),
    ("ss-e-fwmark.txt", Ok("ss")),
    ("tc-filter-fw-skbedit-mark.txt", Ok("tc-filter")),
];

/// Lines expected to be rejected (sample, line, why).
const EXPECTED_ERRORS: &[(&str, u32, &str)] = &[(
    "tc-filter-fw-skbedit-mark.txt",
    43,
    "a tdc regular expression (`mark 4294967295.*pipe.*index 1`), not tc output",
)];

#[test]
fn every_format_sample_is_detected_once_and_parses() {
    let dir = corpus_dir().join("formats");
    let files = corpus_files("formats");
    assert!(!files.is_empty(), "no samples in {}", dir.display());
    let mut failures = Vec::new();
    let (mut parsed, mut touchpoints, mut observations) = (0, 0, 0);
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let text = fs::read_to_string(path).expect("readable sample");
        let claimed: Vec<&str> = ALL
            .iter()
            .filter(|f| (f.detect)(&text))
            .map(|f| f.name)
            .collect();
        let Some((_, expected)) = EXPECTED.iter().find(|(n, _)| *n == name) else {
            failures.push(format!(
                "{name}: new sample, claimed by {claimed:?}; add it to EXPECTED"
            ));
            continue;
        };
        match expected {
            Err(_) if claimed.is_empty() => continue,
            Err(why) => {
                failures.push(format!("{name} ({why}) is claimed by {claimed:?}"));
                continue;
            }
            Ok(format) if claimed != [*format] => {
                failures.push(format!(
                    "{name}: expected only {format}, claimed by {claimed:?}"
                ));
                continue;
            }
            Ok(_) => {}
        }
        let format = ALL
            .iter()
            .find(|f| (f.detect)(&text))
            .expect("claimed above");
        let mut sink = Sink::default();
        let diags = (format.parse)(&text, SourceId(0), name, &mut sink);
        for d in diags.iter().filter(|d| d.level == Level::Error) {
            let expected = EXPECTED_ERRORS
                .iter()
                .any(|(n, line, _)| *n == name && *line == d.span.line);
            if !expected {
                failures.push(format!("{name}:{}: {}", d.span.line, d.message));
            }
        }
        for (n, line, why) in EXPECTED_ERRORS.iter().filter(|(n, ..)| *n == name) {
            if !diags.iter().any(|d| d.span.line == *line) {
                failures.push(format!("{n}:{line} should be rejected ({why})"));
            }
        }
        parsed += 1;
        touchpoints += sink.touchpoints.len();
        observations += sink.observations.len();
        let rules = sink.ruleset.finish().rules.len();
        println!(
            "{name}: {} ({} touchpoints, {} observations, {rules} netfilter rules)",
            format.name,
            sink.touchpoints.len(),
            sink.observations.len()
        );
    }
    println!(
        "format corpus: {parsed}/{} samples parsed, {touchpoints} touchpoints, {observations} observations",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );
}
