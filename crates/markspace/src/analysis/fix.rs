//! Concrete fixes: which knob to turn, and to what, so two owners stop sharing bits.

use crate::model::Bits;
use crate::model::{hex, Field, MarkOp, WriteOp};
use crate::registry::schema::{Knob, KnobDefault};

use super::derived::WholeAware;
use super::finding::Ctx;
use super::usage::fi;

/// Bits of a field that nothing on the node uses and no present owner's registry entry claims.
pub(crate) fn free_bits(cx: &Ctx<'_>, field: Field) -> u32 {
    let aware = whole_aware_bits(cx);
    let used = cx.usage.owners.iter().zip(aware).fold(0, |acc, (o, a)| {
        // A whole-field claim (a WireGuard device fwmark) says nothing about which bits.
        let claimed = o.claimed[fi(field)];
        acc | a[fi(field)].taken | if claimed == u32::MAX { 0 } else { claimed }
    });
    !used
}

/// [`WholeAware`] of every owner, from one pass over the uses (cached in the context: fixes
/// are built per finding, and a scan per finding would be quadratic on mark-heavy nodes).
pub(crate) fn whole_aware_bits<'c>(cx: &'c Ctx<'_>) -> &'c [[WholeAware; 2]] {
    cx.whole_aware.get_or_init(|| {
        let mut out = vec![[WholeAware::default(); 2]; cx.usage.owners.len()];
        for u in &cx.usage.uses {
            let Some(slot) = out.get_mut(u.owner) else {
                continue;
            };
            for field in Field::BOTH {
                let a = &mut slot[fi(field)];
                match u.op {
                    MarkOp::Write(w) if w.is_whole() && w.field == field => match w.op {
                        WriteOp::Const { xor, .. } => {
                            a.taken |= xor;
                            a.value = a.value.or(Some(xor));
                        }
                        _ => a.taken |= u.writes[fi(field)] | u.reads[fi(field)],
                    },
                    _ => a.taken |= u.writes[fi(field)] | u.reads[fi(field)],
                }
            }
        }
        out
    })
}

/// The new value of a knob that moves `owner`'s bits off `avoid`, if the knob's kind allows one.
/// `current` is the value a whole-value knob has on this node, when the registry has no default.
fn knob_value(knob: &Knob, avoid: u32, free: u32, current: Option<u32>) -> Option<String> {
    match knob.typed_default {
        KnobDefault::Mask(Bits(m)) => {
            let m = m & !avoid;
            (m != 0).then(|| hex(m))
        }
        KnobDefault::Bit(_) => (free != 0).then(|| {
            let bit = free.trailing_zeros();
            format!("{bit} (mark {})", hex(1 << bit))
        }),
        KnobDefault::Value(v) => {
            let v = v.map(|Bits(v)| v).or(current)?;
            if v & avoid == 0 {
                return None;
            }
            // Keep the value's other bits when they are its own or free, else the lowest free bit.
            let kept = v & !avoid;
            if kept != 0 && kept & !(free | v) == 0 {
                return Some(hex(kept));
            }
            let lowest = free & free.wrapping_neg();
            (lowest != 0).then(|| hex(lowest))
        }
        _ => None,
    }
}

/// How to stop owners `a` and `b` from sharing `shared` bits of `field`.
pub(crate) fn separate(cx: &Ctx<'_>, a: usize, b: usize, field: Field, shared: u32) -> String {
    let free = free_bits(cx, field);
    let mut moves = Vec::new();
    for (me, other) in [(a, b), (b, a)] {
        let id = &cx.usage.owners[me].id;
        let Some(sw) = cx.registry.get(id) else {
            continue;
        };
        let avoid = cx.usage.owners[other].used(field) | cx.usage.owners[other].claimed[fi(field)];
        for knob in &sw.knobs {
            let moves_these = knob.claims.iter().any(|c| {
                sw.claims
                    .iter()
                    .any(|cl| &cl.id == c && cl.kind.field() == field && cl.bits.0 & shared != 0)
            });
            if !moves_these {
                continue;
            }
            let current = whole_aware_bits(cx)[me][fi(field)].value;
            if let Some(v) = knob_value(knob, avoid, free, current) {
                moves.push(format!(
                    "set {}'s {} ({}) to {v}",
                    sw.name, knob.name, knob.location
                ));
            }
        }
    }
    let free_text = if free == 0 {
        "no bit is free on this node".to_string()
    } else {
        format!("bits free on this node: {}", hex(free))
    };
    if moves.is_empty() {
        format!(
            "Move one of {} and {} to other bits; neither has a registered knob for {} ({free_text}).",
            cx.usage.owners[a].id,
            cx.usage.owners[b].id,
            hex(shared)
        )
    } else {
        format!("Either {} ({free_text}).", moves.join(", or "))
    }
}
