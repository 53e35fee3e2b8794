//! Which known incidents a finding reproduces: one attaches only when every software it names
//! is among the finding's owners and its mechanism is the finding's: the same field, bits in
//! common, a finding whose name the incident lists in `clash` (its kind of clash), and for a
//! policy-routing incident, an `ip rule` among the evidence.

use crate::registry::schema::ClaimKind;
use crate::registry::{Incident, Registry};

use super::catalogue::Code;
use super::finding::{Finding, IncidentRef};

/// The evidence tag a subsystem-specific incident needs (`[ip-rule] …`), if any.
fn subsystem_tag(kind: ClaimKind) -> Option<&'static str> {
    match kind {
        ClaimKind::IpRule => Some("[ip-rule]"),
        _ => None,
    }
}

/// Whether `incident` is what `finding` shows.
pub(crate) fn reproduces(incident: &Incident, finding: &Finding) -> bool {
    let sysctl = matches!(
        finding.code,
        Code::RpFilterIgnoresMark | Code::SrcValidMarkForced | Code::FwmarkAcceptOff
    );
    incident
        .software
        .iter()
        .all(|s| finding.owners.iter().any(|o| o == s))
        && incident.kind.field() == finding.field
        && (incident.bits.0 & finding.bits != 0 || sysctl)
        && incident.clash.iter().any(|c| c == finding.name())
        && (sysctl
            || subsystem_tag(incident.kind)
                .is_none_or(|tag| finding.evidence.iter().any(|e| e.text.starts_with(tag))))
}

/// Sets every finding's incidents to those it reproduces.
pub(crate) fn attach(registry: &Registry, findings: &mut [Finding]) {
    for f in findings {
        f.incidents = registry
            .incidents
            .iter()
            .filter(|i| reproduces(i, f))
            .map(IncidentRef::from)
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::catalogue::{Severity, FINDINGS};
    use crate::model::{Field, ALL_BITS};

    fn finding(
        code: Code,
        owners: &[String],
        field: Field,
        bits: u32,
        tag: Option<&str>,
    ) -> Finding {
        Finding {
            code,
            severity: Severity::Error,
            owners: owners.to_vec(),
            field,
            bits,
            title: String::new(),
            evidence: tag
                .map(|t| crate::analysis::EvidenceItem {
                    file: "f".into(),
                    line: Some(1),
                    text: format!("{t} fwmark 0x1"),
                    owner: owners[0].clone(),
                })
                .into_iter()
                .collect(),
            evidence_omitted: 0,
            fix: String::new(),
            incidents: Vec::new(),
            path: None,
        }
    }

    /// Every incident: its `clash` names are catalogue names; it attaches to a finding of each
    /// of them with exactly its software, field and bits; never without one of its software,
    /// with other bits, on the other field, or to a finding of another name.
    #[test]
    fn every_incident_attaches_only_to_its_own_mechanism() {
        let reg = crate::registry::Registry::embedded().expect("registry");
        assert!(reg.incidents.len() >= 31);
        let code_of = |name: &str| FINDINGS.iter().find(|f| f.name == name).map(|f| f.id);
        for i in &reg.incidents {
            let field = i.kind.field();
            let tag = subsystem_tag(i.kind);
            for name in &i.clash {
                let code = code_of(name)
                    .unwrap_or_else(|| panic!("{}: clash {name} is not a finding name", i.id));
                let f = finding(code, &i.software, field, i.bits.0, tag);
                assert!(
                    reproduces(i, &f),
                    "{} does not attach to its own {name}",
                    i.id
                );
                for s in 0..i.software.len() {
                    let mut fewer = i.software.clone();
                    fewer.remove(s);
                    if fewer.is_empty() {
                        fewer.push("someone-else".into());
                    }
                    let f = finding(code, &fewer, field, i.bits.0, tag);
                    assert!(
                        !reproduces(i, &f),
                        "{} attaches without {}",
                        i.id,
                        i.software[s]
                    );
                }
                let other_field = if field == Field::Mark {
                    Field::CtMark
                } else {
                    Field::Mark
                };
                let f = finding(code, &i.software, other_field, i.bits.0, tag);
                assert!(!reproduces(i, &f), "{} attaches on the other field", i.id);
                if i.bits.0 != ALL_BITS
                    && !matches!(
                        code,
                        Code::RpFilterIgnoresMark
                            | Code::SrcValidMarkForced
                            | Code::FwmarkAcceptOff
                    )
                {
                    let f = finding(code, &i.software, field, !i.bits.0, tag);
                    assert!(!reproduces(i, &f), "{} attaches to other bits", i.id);
                }
                if tag.is_some()
                    && !matches!(
                        code,
                        Code::RpFilterIgnoresMark
                            | Code::SrcValidMarkForced
                            | Code::FwmarkAcceptOff
                    )
                {
                    let f = finding(code, &i.software, field, i.bits.0, None);
                    assert!(!reproduces(i, &f), "{} attaches without an ip rule", i.id);
                }
            }
            for f in &FINDINGS {
                if i.clash.iter().any(|c| c == f.name) {
                    continue;
                }
                let g = finding(f.id, &i.software, field, i.bits.0, tag);
                assert!(!reproduces(i, &g), "{} attaches to {}", i.id, f.code);
            }
        }
    }
}
