//! Owners against the registry: MS007 unknown-owner (rules no entry recognises) and MS008
//! outside-claim (an owner's bits outside its entry).

use crate::model::{hex, Field};
use crate::registry::UNKNOWN;

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{field_name, Ctx, EvidenceItem, Finding};
use crate::analysis::usage::fi;

/// MS007 unknown-owner.
pub(super) fn unknown_owner(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let Some(i) = cx.usage.owners.iter().position(|o| o.id == UNKNOWN) else {
        return;
    };
    let owner = &cx.usage.owners[i];
    for field in Field::BOTH {
        let bits = owner.used(field);
        if bits == 0 {
            continue;
        }
        let mut evidence = Vec::new();
        let mut omitted = 0;
        cx.evidence(i, field, bits, |_| true, &mut evidence, &mut omitted);
        out.push(Finding {
            code: Code::UnknownOwner,
            severity: Severity::Warning,
            owners: vec![UNKNOWN.to_string()],
            field,
            bits,
            title: format!("rules no registry entry recognises use {} bits {}", field_name(field), hex(bits)),
            evidence,
            evidence_omitted: omitted,
            fix: "Find which software installs these rules (chain names, comments) and add it to the registry (`--registry DIR`), so its bits are checked against the others.".to_string(),
            incidents: Vec::new(),
            path: None,
        });
    }
}

/// MS008 outside-claim.
pub(super) fn outside_claim(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (i, owner) in cx.usage.owners.iter().enumerate() {
        let Some(sw) = cx.registry.get(&owner.id) else {
            continue;
        };
        for field in Field::BOTH {
            let cooperative: u32 = sw
                .reads_from
                .iter()
                .filter(|r| r.kind.field() == field)
                .fold(0, |a, r| a | r.bits.0);
            let writes = cx.usage.masked_writes(i, field);
            let reads = cx.usage.masked_reads(i, field) & !cooperative;
            let outside = (writes | reads) & !owner.claimed[fi(field)];
            if outside == 0 {
                continue;
            }
            let mut evidence = Vec::new();
            let mut omitted = 0;
            cx.evidence(
                i,
                field,
                outside,
                |u| !u.is_whole_write(),
                &mut evidence,
                &mut omitted,
            );
            let file = cx.registry.files.get(&owner.id).map_or_else(
                || format!("registry/{}.toml", owner.id),
                |f| {
                    let base = f.rsplit('/').next().unwrap_or(f);
                    format!("registry/{base}")
                },
            );
            evidence.push(EvidenceItem {
                file,
                line: None,
                text: format!(
                    "{} claims {} bits {}",
                    sw.name,
                    field_name(field),
                    hex(owner.claimed[fi(field)])
                ),
                owner: owner.id.clone(),
            });
            let others: Vec<&str> = cx
                .registry
                .software
                .iter()
                .filter(|s| s.id != owner.id && s.claimed(field) & outside != 0)
                .map(|s| s.id.as_str())
                .collect();
            let knobs: Vec<String> = sw
                .knobs
                .iter()
                .map(|k| format!("{} ({}, default {})", k.name, k.location, k.default))
                .collect();
            out.push(Finding {
                code: Code::OutsideClaim,
                severity: Severity::Warning,
                owners: vec![owner.id.clone()],
                field,
                bits: outside,
                title: format!(
                    "{} uses {} bits {} outside its registered bits {}{}",
                    owner.id,
                    field_name(field),
                    hex(outside),
                    hex(owner.claimed[fi(field)]),
                    match others.len() {
                        0 => String::new(),
                        1..=4 => format!(" (registered by {})", others.join(", ")),
                        n => format!(" (registered by {} and {} more)", others[..4].join(", "), n - 4),
                    }
                ),
                evidence,
                evidence_omitted: omitted,
                fix: if knobs.is_empty() {
                    format!("Check {}'s version and configuration; if this layout is real, update registry/{}.toml.", sw.name, owner.id)
                } else {
                    format!("Check {}'s configuration ({}); if the layout is intended, record it in the registry with `--registry DIR`.", sw.name, knobs.join("; "))
                },
                incidents: Vec::new(),
                path: None,
            });
        }
    }
}
