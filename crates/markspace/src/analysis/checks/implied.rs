//! MS013 implied-write: a selector that requires bits to be set proves its owner's packets carry
//! them, even when the write itself is invisible (eBPF, a kernel module, another netns).
//!
//! A read `(m & M) == V` (not inverted) only ever matches packets whose mark has the bits
//! `V & M` set. If its owner writes none of those bits in any rule markspace can see, the write
//! happens elsewhere — Cilium's eBPF writes its IPsec key index so its xfrm selector
//! `mark 0x9e00/0xff00` matches, which sets kubelet's drop bit 0x8000 (cilium#8516). Another
//! owner that reads those bits decides differently on these packets (error); one that only
//! writes them may clear or set them under the selector (warning).

use crate::model::{hex, Field, MarkOp, ReadTest};

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{Ctx, Finding};
use crate::analysis::usage::{fi, Use};

/// Runs MS013.
pub(super) fn find(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let owners = &cx.usage.owners;
    for (a, owner) in owners.iter().enumerate() {
        for field in Field::BOTH {
            let f = fi(field);
            let selectors: Vec<&Use> = cx
                .usage
                .of(a)
                .filter(|u| match u.op {
                    MarkOp::Read(r) => {
                        r.field == field
                            && !r.invert
                            && matches!(r.test, ReadTest::Equals { value, mask } if value & mask & !owner.writes[f] != 0)
                    }
                    MarkOp::Write(_) => false,
                })
                .collect();
            let implied = selectors.iter().fold(0u32, |acc, u| match u.op {
                MarkOp::Read(r) => match r.test {
                    ReadTest::Equals { value, mask } => acc | (value & mask & !owner.writes[f]),
                    _ => acc,
                },
                MarkOp::Write(_) => acc,
            });
            if implied == 0 {
                continue;
            }
            for (b, other) in owners.iter().enumerate() {
                let shared = implied & other.used(field);
                if b == a || shared == 0 {
                    continue;
                }
                // The registry records that `a` reacts to `b`'s bits and `a` claims none of
                // them (flannel's RETURN on kube-proxy's 0x4000): `b`'s visible write is what
                // the selector waits for, not an invisible write of `a`'s. (Cilium also reads
                // kubelet's 0x8000, but its key index claims that bit: still reported.)
                if shared & owner.claimed[f] == 0
                    && cx
                        .registry
                        .cooperates(cx.owner_id(a), cx.owner_id(b), field, shared)
                {
                    continue;
                }
                let reads = other.reads[f] & shared != 0;
                let mut evidence = Vec::new();
                let mut omitted = 0;
                for u in selectors.iter().filter(|u| u.reads[f] & shared != 0) {
                    if evidence.len() < 3 {
                        evidence.push(cx.evidence_of(u));
                    } else {
                        omitted += 1;
                    }
                }
                let before = evidence.len();
                for u in cx
                    .usage
                    .of(b)
                    .filter(|u| (u.reads[f] | u.writes[f]) & shared != 0)
                {
                    if evidence.len() - before >= 3 {
                        omitted += 1;
                        continue;
                    }
                    let e = cx.evidence_of(u);
                    if !evidence.contains(&e) {
                        evidence.push(e);
                    }
                }
                let (ia, ib) = (owner.id.as_str(), other.id.as_str());
                out.push(Finding {
                    code: Code::ImpliedWrite,
                    severity: if reads { Severity::Error } else { Severity::Warning },
                    owners: vec![ia.to_string(), ib.to_string()],
                    field,
                    bits: shared,
                    title: format!(
                        "{ia}'s selectors only match packets carrying bits {} (written where markspace cannot see), and {ib} {} those bits",
                        hex(shared),
                        if reads { "tests" } else { "writes" }
                    ),
                    evidence,
                    evidence_omitted: omitted,
                    fix: format!(
                        "Keep the values {ia}'s packets carry out of bits {} used by {ib}. {}",
                        hex(shared),
                        crate::analysis::fix::separate(cx, a, b, field, shared)
                    ),
                    incidents: cx.incidents(&[ia, ib], field, shared),
                    path: None,
                });
            }
        }
    }
}
