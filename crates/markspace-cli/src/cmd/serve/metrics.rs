//! The exporter's metrics, rendered once per cycle as OpenMetrics text (every metric a gauge or a
//! counter, so node_exporter's textfile collector reads the same text).
//!
//! | metric | labels | value |
//! |---|---|---|
//! | `markspace_build_info` | `version` | 1 |
//! | `markspace_findings` | `code`, `severity` | findings of the last audit; every code and severity of the catalogue, 0 when absent |
//! | `markspace_bit_owner_info` | `field` (`mark`, `ctmark`), `bit` (0–31), `owner` | 1 for each owner reading or writing the bit |
//! | `markspace_whole_mark_writers` | `field` | owners writing all 32 bits of the field |
//! | `markspace_owners` | | owners seen |
//! | `markspace_rules`, `markspace_mark_rules` | | rules read, rules with mark operations |
//! | `markspace_audit_incomplete` | | 1 when a source the audit needs was not read |
//! | `markspace_collect_success` | `source` | the last cycle: 1 read, 0 not; `source="audit"` is the whole cycle (0 after a failure or timeout) |
//! | `markspace_collect_duration_seconds` | | the last cycle's wall time |
//! | `markspace_last_audit_timestamp_seconds` | | when the last successful audit ended (Unix time) |
//! | `markspace_collections_total` | `result` (`complete`, `incomplete`, `failed`, `timeout`) | cycles run |
//!
//! After a failed cycle the audit metrics stay those of the last successful audit (its
//! timestamp says how old); alert on `markspace_collect_success{source="audit"} == 0`.

use std::sync::atomic::AtomicU64;
use std::time::UNIX_EPOCH;

use markspace::analysis::FINDINGS;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::cycle::{Ended, Outcome};

type Labels = Vec<(String, String)>;

/// Cycles run so far, by how they ended.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    complete: u64,
    incomplete: u64,
    failed: u64,
    timeout: u64,
}

impl Counters {
    /// Counts a cycle.
    pub(crate) fn record(&mut self, outcome: &Outcome) {
        match outcome.ended {
            Ended::Complete => self.complete += 1,
            Ended::Incomplete => self.incomplete += 1,
            Ended::Failed(_) => self.failed += 1,
            Ended::TimedOut => self.timeout += 1,
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gauge_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    reg.register(name, help, g);
}

fn seconds(reg: &mut Registry, name: &str, help: &str, value: f64) {
    let g = Gauge::<f64, AtomicU64>::default();
    g.set(value);
    reg.register_with_unit(name, help, Unit::Seconds, g);
}

/// The metrics text: the audit part from `shown` (the last successful cycle), the collection
/// part from `latest` (the last cycle, which may have failed).
pub(crate) fn render(
    shown: Option<&Outcome>,
    latest: Option<&Outcome>,
    counters: &Counters,
) -> String {
    let mut reg = Registry::with_prefix("markspace");
    gauge_family(&mut reg, "build_info", "markspace's version")
        .get_or_create(&labels(&[("version", env!("CARGO_PKG_VERSION"))]))
        .set(1);
    if let Some(audit) = shown.and_then(|o| o.audit.as_ref()) {
        let findings = gauge_family(
            &mut reg,
            "findings",
            "Findings of the last audit by code and severity",
        );
        for info in FINDINGS.iter() {
            for sev in info.severities {
                let n = audit
                    .findings
                    .iter()
                    .filter(|f| f.code == info.code && f.severity == sev.as_str())
                    .count();
                findings
                    .get_or_create(&labels(&[("code", info.code), ("severity", sev.as_str())]))
                    .set(n as i64);
            }
        }
        let owners = gauge_family(
            &mut reg,
            "bit_owner_info",
            "1 for each owner that reads or writes a bit of the packet mark or connmark",
        );
        for (field, bits) in [
            ("mark", &audit.bitmap.mark),
            ("ctmark", &audit.bitmap.ctmark),
        ] {
            for b in bits.iter() {
                let mut who: Vec<&String> = b.readers.iter().chain(&b.writers).collect();
                who.sort();
                who.dedup();
                let bit = b.bit.to_string();
                for owner in who {
                    owners
                        .get_or_create(&labels(&[
                            ("field", field),
                            ("bit", &bit),
                            ("owner", owner),
                        ]))
                        .set(1);
                }
            }
        }
        let whole = gauge_family(
            &mut reg,
            "whole_mark_writers",
            "Owners that write all 32 bits of the field",
        );
        for field in ["mark", "ctmark"] {
            let n = audit
                .owners
                .iter()
                .filter(|o| {
                    let v = if field == "mark" {
                        &o.writes.mark
                    } else {
                        &o.writes.ctmark
                    };
                    v == "0xffffffff"
                })
                .count();
            whole
                .get_or_create(&labels(&[("field", field)]))
                .set(n as i64);
        }
        gauge(&mut reg, "owners", "Owners seen", audit.owners.len() as i64);
        gauge(&mut reg, "rules", "Rules read", audit.summary.rules as i64);
        gauge(
            &mut reg,
            "mark_rules",
            "Rules with mark operations",
            audit.summary.mark_rules as i64,
        );
    }
    if let Some(o) = shown {
        gauge(
            &mut reg,
            "audit_incomplete",
            "1 when a source the last audit needs was not read",
            i64::from(o.incomplete()),
        );
        seconds(
            &mut reg,
            "last_audit_timestamp",
            "When the last successful audit ended (Unix time)",
            o.finished
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
        );
    }
    if let Some(o) = latest {
        let success = gauge_family(
            &mut reg,
            "collect_success",
            "Whether the last collection read the source (audit: the whole cycle)",
        );
        success
            .get_or_create(&labels(&[("source", "audit")]))
            .set(i64::from(o.ok()));
        for (source, ok) in &o.sources {
            success
                .get_or_create(&labels(&[("source", source)]))
                .set(i64::from(*ok));
        }
        seconds(
            &mut reg,
            "collect_duration",
            "Wall time of the last collection and audit",
            o.duration.as_secs_f64(),
        );
    }
    let cycles = Family::<Labels, Counter>::default();
    reg.register(
        "collections",
        "Collection cycles run, by result",
        cycles.clone(),
    );
    for (result, n) in [
        ("complete", counters.complete),
        ("incomplete", counters.incomplete),
        ("failed", counters.failed),
        ("timeout", counters.timeout),
    ] {
        cycles
            .get_or_create(&labels(&[("result", result)]))
            .inc_by(n);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::serve::cycle::AuditDoc;

    fn outcome(ended: Ended, audit: Option<&str>) -> Outcome {
        Outcome {
            ended,
            sources: vec![("iptables-save".into(), true), ("nft".into(), false)],
            report: None,
            audit: audit.map(|a| serde_json::from_str::<AuditDoc>(a).unwrap()),
            duration: std::time::Duration::from_millis(1500),
            finished: UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        }
    }

    const AUDIT: &str = r#"{
        "owners": [{"id": "wg-quick", "writes": {"mark": "0xffffffff", "ctmark": "0x00000000"}},
                   {"id": "kube-proxy", "writes": {"mark": "0x00004000", "ctmark": "0x00000000"}}],
        "bitmap": {"mark": [{"bit": 14, "readers": ["kube-proxy"], "writers": ["kube-proxy", "wg-quick"]}],
                   "ctmark": []},
        "findings": [{"code": "MS001", "severity": "error"}, {"code": "MS001", "severity": "error"},
                     {"code": "MS003", "severity": "warning"}],
        "summary": {"rules": 10, "mark_rules": 4}
    }"#;

    #[test]
    fn renders_findings_owners_and_sources() {
        let o = outcome(Ended::Complete, Some(AUDIT));
        let mut c = Counters::default();
        c.record(&o);
        let text = render(Some(&o), Some(&o), &c);
        for line in [
            "markspace_findings{code=\"MS001\",severity=\"error\"} 2",
            "markspace_findings{code=\"MS001\",severity=\"info\"} 0",
            "markspace_findings{code=\"MS003\",severity=\"warning\"} 1",
            "markspace_bit_owner_info{field=\"mark\",bit=\"14\",owner=\"kube-proxy\"} 1",
            "markspace_bit_owner_info{field=\"mark\",bit=\"14\",owner=\"wg-quick\"} 1",
            "markspace_whole_mark_writers{field=\"mark\"} 1",
            "markspace_whole_mark_writers{field=\"ctmark\"} 0",
            "markspace_collect_success{source=\"audit\"} 1",
            "markspace_collect_success{source=\"nft\"} 0",
            "markspace_collect_duration_seconds 1.5",
            "markspace_last_audit_timestamp_seconds 1700000000.0",
            "markspace_collections_total{result=\"complete\"} 1",
            "markspace_build_info{version=",
            "# EOF",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    /// A failed cycle keeps the last audit's findings and says it failed.
    #[test]
    fn a_failed_cycle_keeps_the_last_audit_and_reports_failure() {
        let good = outcome(Ended::Complete, Some(AUDIT));
        let bad = outcome(Ended::TimedOut, None);
        let mut c = Counters::default();
        c.record(&good);
        c.record(&bad);
        let text = render(Some(&good), Some(&bad), &c);
        assert!(text.contains("markspace_collect_success{source=\"audit\"} 0"));
        assert!(text.contains("markspace_findings{code=\"MS001\",severity=\"error\"} 2"));
        assert!(text.contains("markspace_collections_total{result=\"timeout\"} 1"));
        // Before any audit: no findings at all, rather than zeros that would read as clean.
        let text = render(None, Some(&bad), &c);
        assert!(!text.contains("markspace_findings"), "{text}");
    }
}
