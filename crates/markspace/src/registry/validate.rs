//! Checks of the registry data beyond what the schema enforces.

use std::collections::HashSet;

use super::schema::KnobDefault;
use super::Registry;
use crate::model::Bits;

/// One problem in the registry data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The software id (or `incidents`).
    pub entry: String,
    /// What is wrong.
    pub message: String,
}

/// Validates ids, sources, values against masks, knob defaults against claims and references
/// between entries. Returns every problem found.
pub fn validate(reg: &Registry) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    let ids_all: HashSet<&str> = reg.software.iter().map(|s| s.id.as_str()).collect();
    for s in &reg.software {
        let mut p = |m: String| {
            out.push(Problem {
                entry: s.id.clone(),
                message: m,
            })
        };
        if !ids.insert(s.id.as_str()) {
            p("duplicate id".into());
        }
        if s.id.is_empty()
            || !s
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            p(format!("id `{}` is not lowercase and dash-separated", s.id));
        }
        if let Some(file) = reg.files.get(&s.id) {
            let base = file.rsplit('/').next().unwrap_or(file);
            if base != format!("{}.toml", s.id) {
                p(format!("file `{base}` should be named `{}.toml`", s.id));
            }
        }
        if s.source.trim().is_empty() {
            p("entry has no source".into());
        }
        if s.uses_marks && s.claims.is_empty() {
            p("uses_marks is true but there are no claims".into());
        }
        if !s.uses_marks && !s.claims.is_empty() {
            p("uses_marks is false but there are claims".into());
        }
        let knob_ids: HashSet<&str> = s.knobs.iter().map(|k| k.id.as_str()).collect();
        let claim_ids: HashSet<&str> = s.claims.iter().map(|c| c.id.as_str()).collect();
        if claim_ids.len() != s.claims.len() {
            p("claim ids are not unique".into());
        }
        for c in &s.claims {
            if c.source.trim().is_empty() {
                p(format!("claim `{}` has no source", c.id));
            }
            if c.bits.0 == 0 {
                p(format!("claim `{}` has no bits", c.id));
            }
            for v in &c.values {
                if v.value.0 & !c.bits.0 != 0 {
                    p(format!(
                        "claim `{}`: value 0x{:08x} ({}) has bits outside 0x{:08x}",
                        c.id, v.value.0, v.meaning, c.bits.0
                    ));
                }
            }
            for k in &c.config {
                if !knob_ids.contains(k.as_str()) {
                    p(format!("claim `{}` names unknown knob `{k}`", c.id));
                }
            }
            for cond in &c.when {
                let knob = cond.split(['!', '=']).next().unwrap_or("").trim();
                if !cond.contains('=') || !knob_ids.contains(knob) {
                    p(format!(
                        "claim `{}`: `when` condition `{cond}` is not KNOB=VALUE or KNOB!=VALUE over this entry's knobs",
                        c.id
                    ));
                }
            }
        }
        for k in &s.knobs {
            if k.source.trim().is_empty() {
                p(format!("knob `{}` has no source", k.id));
            }
            let moved: u32 = s
                .claims
                .iter()
                .filter(|c| k.claims.contains(&c.id))
                .fold(0, |a, c| a | c.occupied());
            for c in &k.claims {
                if !claim_ids.contains(c.as_str()) {
                    p(format!("knob `{}` names unknown claim `{c}`", k.id));
                }
            }
            if k.plan.min_bits.is_some_and(|n| n == 0 || n > 32) {
                p(format!("knob `{}`: plan.min_bits must be 1-32", k.id));
            }
            if let Some(t) = &k.plan.same_as {
                let found = t.split_once('/').is_some_and(|(sw, kn)| {
                    reg.get(sw)
                        .is_some_and(|o| o.knobs.iter().any(|x| x.id == kn && x.kind == k.kind))
                });
                if !found {
                    p(format!(
                        "knob `{}`: plan.same_as `{t}` is not SOFTWARE/KNOB of a knob of the same kind",
                        k.id
                    ));
                }
            }
            // Kinds and the shape of defaults are checked when the file loads
            // (`KnobDefault::read`); what is left is whether the default fits the claims.
            if moved == 0 {
                continue;
            }
            match k.typed_default {
                KnobDefault::Bit(n) if moved & (1 << n) == 0 => {
                    p(format!(
                        "knob `{}`: default bit {n} is not inside its claims' bits 0x{moved:08x}",
                        k.id
                    ));
                }
                KnobDefault::Mask(Bits(m)) if moved & !m != 0 => {
                    p(format!("knob `{}`: default mask 0x{m:08x} does not cover its claims' bits 0x{moved:08x}", k.id));
                }
                KnobDefault::Value(Some(Bits(v))) if v & !moved != 0 => {
                    p(format!("knob `{}`: default value 0x{v:08x} has bits outside its claims' bits 0x{moved:08x}", k.id));
                }
                _ => {}
            }
        }
        let mut fixed_seen = HashSet::new();
        for f in &s.fixed {
            let what = f.claims.join(", ");
            if f.claims.is_empty() {
                p("fixed statement names no claim".into());
            }
            if f.reason.trim().is_empty() {
                p(format!("fixed statement for `{what}` has no reason"));
            }
            if f.source.trim().is_empty() {
                p(format!("fixed statement for `{what}` has no source"));
            }
            for id in &f.claims {
                match s.claims.iter().find(|c| c.id == *id) {
                    None => p(format!("fixed statement names unknown claim `{id}`")),
                    Some(c) if s.knob_moves(c) => {
                        p(format!("claim `{id}` is listed fixed but a knob moves it"))
                    }
                    Some(_) => {}
                }
                if !fixed_seen.insert(id.as_str()) {
                    p(format!("claim `{id}` is in more than one fixed statement"));
                }
            }
        }
        let sig = &s.signatures;
        let has_sig = !(sig.chains.is_empty()
            && sig.chain_prefixes.is_empty()
            && sig.comments.is_empty()
            && sig.comment_prefixes.is_empty()
            && sig.tables.is_empty()
            && sig.table_prefixes.is_empty()
            && sig.ip_rule_priorities.is_empty()
            && sig.ip_rule_tables.is_empty()
            && sig.programs.is_empty()
            && sig.processes.is_empty()
            && sig.mark_patterns.is_empty()
            && sig.devices.is_empty()
            && sig.values.is_empty());
        if has_sig && sig.source.as_deref().is_none_or(|x| x.trim().is_empty()) {
            p("signatures have no source".into());
        }
        for pr in &sig.ip_rule_priorities {
            if super::attribution::priority_range(pr).is_none_or(|(lo, hi)| lo > hi) {
                p(format!(
                    "ip_rule_priorities `{pr}` is not a priority or a range `LO-HI`"
                ));
            }
        }
        for pat in &sig.mark_patterns {
            match super::attribution::mark_pattern(pat) {
                Some((v, m)) if v & !m == 0 => {}
                _ => p(format!(
                    "mark_patterns `{pat}` is not `0xV/0xM` with V inside M"
                )),
            }
        }
        for r in &s.reads_from {
            if !ids_all.contains(r.owner.as_str()) {
                p(format!("reads_from names unknown software `{}`", r.owner));
            }
            if r.source.trim().is_empty() {
                p(format!("reads_from `{}` has no source", r.owner));
            }
        }
        for c in &s.cooperates_with {
            if !ids_all.contains(c.as_str()) {
                p(format!("cooperates_with names unknown software `{c}`"));
            }
        }
        for r in &s.rules {
            if r.source.trim().is_empty() {
                p(format!("rule `{}` has no source", r.text));
            }
        }
    }
    let mut incident_ids = HashSet::new();
    for i in &reg.incidents {
        let mut p = |m: String| {
            out.push(Problem {
                entry: "incidents".into(),
                message: m,
            })
        };
        if !incident_ids.insert(i.id.as_str()) {
            p(format!("duplicate incident id `{}`", i.id));
        }
        for s in &i.software {
            if !ids_all.contains(s.as_str()) {
                p(format!("incident `{}` names unknown software `{s}`", i.id));
            }
        }
        if i.links.is_empty() {
            p(format!("incident `{}` has no link", i.id));
        }
    }
    out
}
