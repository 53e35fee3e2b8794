//! Rules that never act: MS006 never-matches (a match that cannot be true) and MS009
//! unreachable-rules (mark rules in chains no hook reaches).

use crate::model::{hex, Field, MarkOp};
use crate::registry::UNKNOWN;

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{Ctx, Finding, EVIDENCE_PER_OWNER};
use crate::analysis::usage::{fi, Site};
use crate::analysis::verify::{Candidate, Proposal};
use crate::model::{Rewrite, RewriteSite};

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
        let proposal = never_proposal(cx, u, r, value, mask);
        let fix = proposal.first_text();
        cx.propose(out.len(), proposal);
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
            fix,
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

/// MS006's fixes: widen the mask to the value, or keep the value's bits inside the mask; each
/// changes what the rule matches (it matches nothing today), so each is only checked not to
/// read or write another owner's bits or cause another finding.
fn never_proposal(
    cx: &Ctx<'_>,
    u: &crate::analysis::usage::Use,
    r: crate::model::MarkRead,
    value: u32,
    mask: u32,
) -> Proposal {
    use crate::model::{MarkRead, ReadTest};
    let mut candidates = Vec::new();
    let site = match u.site {
        Site::Rule(id) => RewriteSite::Rule(id),
        Site::Touchpoint(i) => RewriteSite::Touchpoint(i as usize),
    };
    let old = match u.site {
        Site::Rule(id) => cx.set.rule(id).ops().to_vec(),
        Site::Touchpoint(i) => cx.node.touchpoints[i as usize].ops.clone(),
    };
    let flag = if r.field == crate::model::Field::Mark {
        "mark"
    } else {
        "connmark"
    };
    for (v, m, how) in [
        (value, mask | value, "widen the mask to the value's bits"),
        (
            value & mask,
            mask,
            "keep only the value's bits inside the mask",
        ),
    ] {
        if m == 0 || (v, m) == (value, mask) {
            continue;
        }
        let mut ops = old.clone();
        if let Some(op) = ops.get_mut(u.op_index as usize) {
            *op = MarkOp::Read(MarkRead {
                test: ReadTest::Equals { value: v, mask: m },
                ..r
            });
        }
        candidates.push(Candidate {
            text: format!(
                "Decide which bits the rule tests; to {how}: `-m {flag} --mark {}/{}`.",
                hex(v),
                hex(m)
            ),
            rewrites: vec![Rewrite { site, ops }],
            moves_value: true,
        });
    }
    Proposal {
        owner: u.owner,
        candidates,
        none: format!(
            "Decide which bits the rule tests: the value {} has bits {} outside its mask {}, and neither widening the mask nor dropping those bits passed markspace's re-audit (they belong to another owner).",
            hex(value),
            hex(value & !mask),
            hex(mask)
        ),
    }
}
