//! Concrete fixes: which knob to turn, and to what, so two owners stop sharing bits.

use crate::model::Bits;
use crate::model::{hex, Field};
use crate::registry::schema::{Knob, KnobDefault};

use super::finding::Ctx;
use super::usage::fi;

/// Bits of a field that nothing on the node uses and no present owner's registry entry claims.
pub(crate) fn free_bits(cx: &Ctx<'_>, field: Field) -> u32 {
    let used = cx.usage.owners.iter().fold(0, |acc, o| {
        // A whole-field claim (a WireGuard device fwmark) says nothing about which bits.
        let claimed = o.claimed[fi(field)];
        acc | o.used(field) | if claimed == u32::MAX { 0 } else { claimed }
    });
    !used
}

/// The new value of a knob that moves `owner`'s bits off `avoid`, if the knob's kind allows one.
fn knob_value(knob: &Knob, avoid: u32, free: u32) -> Option<String> {
    match knob.typed_default {
        KnobDefault::Mask(Bits(m)) => {
            let m = m & !avoid;
            (m != 0).then(|| hex(m))
        }
        KnobDefault::Bit(_) => (free != 0).then(|| free.trailing_zeros().to_string()),
        KnobDefault::Value(v) => {
            let Bits(v) = v?;
            if v & avoid == 0 {
                return None;
            }
            // Keep the value's shape inside the free bits when it fits, else the lowest free bit.
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
            if let Some(v) = knob_value(knob, avoid, free) {
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
