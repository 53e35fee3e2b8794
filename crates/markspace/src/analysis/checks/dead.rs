//! Rules that never act: MS006 never-matches (a match that cannot be true) and MS009
//! unreachable-rules (mark rules in chains no hook reaches).

use crate::model::{hex, Field, MarkOp};
use crate::registry::UNKNOWN;

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{Ctx, Finding, EVIDENCE_PER_OWNER};
use crate::analysis::usage::fi;

/// MS006 never-matches.
pub(super) fn never_matches(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for u in &cx.usage.uses {
        let MarkOp::Read(r) = u.op else { continue };
        if !r.never_matches() {
            continue;
        }
        let crate::model::ReadTest::Equals { value, mask } = r.test else {
            continue;
        };
        let id = cx.owner_id(u.owner).to_string();
        out.push(Finding {
            code: Code::NeverMatches,
            severity: Severity::Warning,
            owners: vec![id.clone()],
            field: r.field,
            bits: value & !mask,
            title: format!(
                "{id}'s match {}/{} can never be true: the value has bits {} outside its mask",
                hex(value),
                hex(mask),
                hex(value & !mask)
            ),
            evidence: vec![cx.evidence_of(u)],
            evidence_omitted: 0,
            fix: format!(
                "Use a value inside the mask ({}/{}) or widen the mask to {}.",
                hex(value & mask),
                hex(mask),
                hex(mask | value)
            ),
            incidents: Vec::new(),
            path: None,
        });
    }
}

/// MS009 unreachable-rules.
pub(super) fn unreachable(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    if cx.usage.unreachable.is_empty() {
        return;
    }
    let mut fields = [0u32; 2];
    for r in &cx.usage.unreachable {
        for op in cx.set.rule(*r).ops() {
            let f = op.field();
            fields[fi(f)] |= match op {
                MarkOp::Read(r) => r.bits(),
                MarkOp::Write(w) => w.bits(),
            };
        }
    }
    let evidence = cx
        .usage
        .unreachable
        .iter()
        .take(EVIDENCE_PER_OWNER)
        .map(|r| cx.rule_evidence(*r, UNKNOWN))
        .collect();
    let field = if fields[0] != 0 {
        Field::Mark
    } else {
        Field::CtMark
    };
    out.push(Finding {
        code: Code::UnreachableRules,
        severity: Severity::Info,
        owners: Vec::new(),
        field,
        bits: fields[fi(field)],
        title: format!("{} mark rule(s) sit in chains no hook reaches; they never run and are left out of the map", cx.usage.unreachable.len()),
        evidence,
        evidence_omitted: cx.usage.unreachable.len().saturating_sub(EVIDENCE_PER_OWNER),
        fix: "Nothing to fix for marks; remove the dead chains to keep the ruleset readable.".to_string(),
        incidents: Vec::new(),
        path: None,
    });
}
