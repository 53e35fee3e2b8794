//! `plan --check`: does a node still match a plan? Compares each owner's observed bits (from an
//! audit of the node made with the planned registry, [`super::remap::planned_registry`]) with the
//! bits the plan gives it, and counts the findings between planned owners.

use serde::Serialize;

use crate::analysis::Severity;
use crate::model::{Bits, Field};
use crate::registry::schema::Namespace;
use crate::report::Report;

use super::types::{field_word, Plan};

/// One owner using bits the plan does not give it.
#[derive(Clone, Debug, Serialize)]
pub struct Drift {
    /// Owner id.
    pub owner: String,
    /// `mark` or `ctmark`.
    pub field: Field,
    /// The bits the plan gives it.
    pub planned: Bits,
    /// The bits it reads or writes on the node.
    pub observed: Bits,
    /// `observed & !planned`.
    pub outside: Bits,
}

/// The result of a check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// True when nothing drifted and no planned owners clash.
    pub ok: bool,
    /// Owners using bits outside their plan.
    pub drift: Vec<Drift>,
    /// Planned owners the node does not show (no rule of theirs was found).
    pub absent: Vec<String>,
    /// Owners on the node the plan does not know (`unknown` included), with their bits.
    pub unplanned: Vec<Drift>,
    /// Error and warning findings of the audit whose owners are all planned and at least two,
    /// and which no hazard of the plan explains.
    pub clashes: Vec<crate::analysis::Finding>,
    /// The same findings explained by a hazard the plan lists (a whole-field rule of one of
    /// their owners on their field): the plan said they remain, so they are no drift.
    pub expected: Vec<crate::analysis::Finding>,
}

/// Compares `report` (an audit of the node) with `plan`.
pub fn check(plan: &Plan, report: &Report) -> Check {
    let planned_of = |owner: &str, field: Field| -> u32 {
        plan.allocations
            .iter()
            .filter(|a| a.owner.split('+').any(|o| o == owner))
            .flat_map(|a| a.bits.iter())
            .filter(|b| b.field == field && b.namespace == Namespace::Host)
            .fold(0, |x, b| x | b.planned.0)
    };
    let is_planned = |id: &str| plan.software.iter().any(|s| s.id == id);
    let hazard = |owner: &str, field: Field| {
        plan.hazards
            .iter()
            .any(|h| h.owner == owner && h.field == field && h.namespace == Namespace::Host)
    };
    let mut drift = Vec::new();
    let mut unplanned = Vec::new();
    for o in &report.owners {
        for field in [Field::Mark, Field::CtMark] {
            let observed = o.bits.get(field);
            if observed == 0 {
                continue;
            }
            let planned = if is_planned(&o.id) {
                planned_of(&o.id, field)
            } else {
                0
            };
            let outside = observed & !planned;
            // A whole-field rule the plan lists touches every bit of the field by design.
            if outside == 0 || (is_planned(&o.id) && hazard(&o.id, field)) {
                continue;
            }
            let d = Drift {
                owner: o.id.clone(),
                field,
                planned: Bits(planned),
                observed: Bits(observed),
                outside: Bits(outside),
            };
            if is_planned(&o.id) {
                drift.push(d);
            } else {
                unplanned.push(d);
            }
        }
    }
    let absent: Vec<String> = plan
        .software
        .iter()
        .filter(|s| !report.owners.iter().any(|o| o.id == s.id))
        .map(|s| s.id.clone())
        .collect();
    let (expected, clashes): (Vec<_>, Vec<_>) = report
        .findings
        .iter()
        .filter(|f| {
            matches!(f.severity, Severity::Error | Severity::Warning)
                && f.owners.len() >= 2
                && f.owners.iter().all(|o| is_planned(o))
        })
        .cloned()
        .partition(|f| f.owners.iter().any(|o| hazard(o, f.field)));
    Check {
        ok: drift.is_empty() && clashes.is_empty() && unplanned.is_empty(),
        drift,
        absent,
        unplanned,
        clashes,
        expected,
    }
}

/// The check as text.
pub fn text(c: &Check) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan check: {}",
        if c.ok {
            "the node matches the plan"
        } else {
            "the node drifted from the plan"
        }
    );
    for d in &c.drift {
        let _ = writeln!(
            out,
            "  drift: {} uses {} of the {} outside its planned {} (observed {})",
            d.owner,
            d.outside,
            field_word(d.field),
            d.planned,
            d.observed
        );
    }
    for d in &c.unplanned {
        let _ = writeln!(
            out,
            "  unplanned: {} uses {} of the {}",
            d.owner,
            d.observed,
            field_word(d.field)
        );
    }
    let groups = [
        ("clash", &c.clashes, ""),
        (
            "expected",
            &c.expected,
            " (a whole-field rule the plan lists as a hazard)",
        ),
    ];
    for (label, findings, why) in groups {
        for f in findings {
            let _ = writeln!(
                out,
                "  {label}: {} {} ({}): {}{why}",
                f.code.as_str(),
                f.owners.join(" and "),
                f.severity.as_str(),
                f.title
            );
        }
    }
    for a in &c.absent {
        let _ = writeln!(out, "  absent: no rule of {a} was found on the node");
    }
    out
}
