//! SARIF 2.1.0, for code-scanning UIs (GitHub code scanning, GitLab, Azure DevOps): one run,
//! the catalogue as the tool's rules, one result per finding located at its first rule.

use serde_json::{json, Value};

use super::Report;
use crate::analysis::{Severity, FINDINGS};

/// The SARIF log of a report.
pub fn render(report: &Report) -> Value {
    let rules: Vec<Value> = FINDINGS
        .iter()
        .map(|f| {
            json!({
                "id": f.code,
                "name": f.name,
                "shortDescription": {"text": f.when},
                "fullDescription": {"text": format!("{}: {}", f.when, f.severity_doc)},
            })
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let locations: Vec<Value> = f
                .evidence
                .iter()
                .filter_map(|e| {
                    Some(json!({
                        "physicalLocation": {
                            "artifactLocation": {"uri": e.file},
                            "region": {"startLine": e.line?, "snippet": {"text": e.text}},
                        },
                        "message": {"text": format!("{} ({})", e.text, e.owner)},
                    }))
                })
                .collect();
            let (first, related) = match locations.split_first() {
                Some((first, rest)) => (vec![first.clone()], rest.to_vec()),
                None => (Vec::new(), Vec::new()),
            };
            json!({
                "ruleId": f.code.as_str(),
                "level": match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                    Severity::Info => "note",
                },
                "message": {"text": format!("{}\nfix: {}", f.title, f.fix)},
                "locations": first,
                "relatedLocations": related,
                "partialFingerprints": {
                    "markspace/v1": format!("{}:{}:{}:{}", f.code, f.field.as_str(), f.owners.join(","), crate::model::hex(f.bits)),
                },
                "properties": {
                    "owners": f.owners,
                    "field": f.field.as_str(),
                    "bits": crate::model::hex(f.bits),
                    "incidents": f.incidents.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "markspace",
                "version": report.markspace,
                "rules": rules,
            }},
            "results": results,
            "invocations": [{
                "executionSuccessful": !report.summary.incomplete,
                "toolExecutionNotifications": report.unread().map(|d| json!({
                    "level": "error",
                    "message": {"text": d.message},
                })).collect::<Vec<_>>(),
            }],
            "properties": {
                "markspaceContractVersion": report.version,
                "registry": report.registry,
                "incomplete": report.summary.incomplete,
            },
        }],
    })
}
