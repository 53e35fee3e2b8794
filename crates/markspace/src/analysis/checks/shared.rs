//! Owners sharing bits: MS001 shared-bits (both write them) and MS002 foreign-read (one tests
//! what the other writes), with the packet path where they meet.

use crate::model::{hex, Field};

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{field_name, Ctx, Finding};
use crate::analysis::fix;
use crate::analysis::meeting::{meeting, Meeting};
use crate::analysis::path::PathEvidence;
use crate::analysis::usage::fi;

/// MS001 shared-bits and MS002 foreign-read.
pub(super) fn shared_bits(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let n = cx.usage.owners.len();
    for field in Field::BOTH {
        let writes: Vec<u32> = (0..n).map(|i| cx.usage.masked_writes(i, field)).collect();
        let reads: Vec<u32> = (0..n).map(|i| cx.usage.masked_reads(i, field)).collect();
        for a in 0..n {
            for b in (a + 1)..n {
                let shared = writes[a] & writes[b];
                if shared != 0 {
                    let (ia, ib) = (cx.owner_id(a), cx.owner_id(b));
                    let met = meeting(cx, a, b, field, shared);
                    // Shared by design: listed in `cooperates_with`, or one records reading the
                    // other's bits with the same meaning (`reads_from`, Cilium ENI mode's 0x80
                    // connmark next to AWS VPC CNI's).
                    let by_design = cx.registry.by_design(ia, ib)
                        || cx.registry.cooperates(ia, ib, field, shared)
                        || cx.registry.cooperates(ib, ia, field, shared);
                    let mut evidence = Vec::new();
                    let mut omitted = 0;
                    for o in [a, b] {
                        cx.evidence(
                            o,
                            field,
                            shared,
                            |u| u.writes[fi(field)] & shared != 0 && !u.is_whole_write(),
                            &mut evidence,
                            &mut omitted,
                        );
                    }
                    out.push(Finding {
                        code: Code::SharedBits,
                        // Software the registry says shares these bits by design (kubelet and
                        // kube-proxy) is reported, but not as a collision.
                        // Owners whose uses never share a packet path overload the bits safely.
                        severity: if by_design || matches!(met, Meeting::Disjoint) {
                            Severity::Info
                        } else {
                            Severity::Error
                        },
                        owners: vec![ia.to_string(), ib.to_string()],
                        field,
                        bits: shared,
                        title: match &met {
                            _ if by_design => format!(
                                "{ia} and {ib} both write {} bits {}, with the same meaning by design (registry)",
                                field_name(field),
                                hex(shared)
                            ),
                            Meeting::Disjoint => format!(
                                "{ia} and {ib} both write {} bits {}, but on different packet paths",
                                field_name(field),
                                hex(shared)
                            ),
                            Meeting::Clobber(p) => format!(
                                "{ia} and {ib} both write {} bits {}: on the {} path one overwrites the other's bits before they are read",
                                field_name(field),
                                hex(shared),
                                path_name(p)
                            ),
                            _ => format!("{ia} and {ib} both write {} bits {}", field_name(field), hex(shared)),
                        },
                        evidence,
                        evidence_omitted: omitted,
                        fix: if by_design {
                            format!("Nothing to change: the registry records that {ia} and {ib} use these bits together on purpose; check that both are configured for it.")
                        } else {
                            fix::separate(cx, a, b, field, shared)
                        },
                        incidents: cx.incidents(&[ia, ib], field, shared),
                        path: match met {
                            Meeting::Clobber(p) | Meeting::Shared(p) => Some(p),
                            _ => None,
                        },
                    });
                }
                // A writes what B reads (and B does not write it itself).
                for (w, r) in [(a, b), (b, a)] {
                    let foreign = writes[w] & reads[r] & !writes[r];
                    if foreign == 0 {
                        continue;
                    }
                    let (iw, ir) = (cx.owner_id(w), cx.owner_id(r));
                    if cx.registry.cooperates(ir, iw, field, foreign) {
                        continue;
                    }
                    let met = meeting(cx, r, w, field, foreign);
                    let mut evidence = Vec::new();
                    let mut omitted = 0;
                    cx.evidence(
                        r,
                        field,
                        foreign,
                        |u| u.reads[fi(field)] & foreign != 0,
                        &mut evidence,
                        &mut omitted,
                    );
                    cx.evidence(
                        w,
                        field,
                        foreign,
                        |u| u.writes[fi(field)] & foreign != 0,
                        &mut evidence,
                        &mut omitted,
                    );
                    out.push(Finding {
                        code: Code::ForeignRead,
                        severity: if matches!(met, Meeting::Disjoint) { Severity::Info } else { Severity::Warning },
                        owners: vec![ir.to_string(), iw.to_string()],
                        field,
                        bits: foreign,
                        title: format!("{ir} tests {} bits {} that {iw} writes", field_name(field), hex(foreign)),
                        evidence,
                        evidence_omitted: omitted,
                        fix: format!(
                            "If {ir} means to react to {iw}'s bits, record it as `reads_from` in {ir}'s registry entry; otherwise move one of them: {}",
                            fix::separate(cx, r, w, field, foreign)
                        ),
                        incidents: cx.incidents(&[ir, iw], field, foreign),
                        path: match met {
                            Meeting::Clobber(p) | Meeting::Shared(p) => Some(p),
                            _ => None,
                        },
                    });
                }
            }
        }
    }
}

fn path_name(p: &PathEvidence) -> &'static str {
    match p.path {
        crate::packet::PathKind::Ingress => "ingress",
        crate::packet::PathKind::Forward => "forward",
        crate::packet::PathKind::Output => "output",
    }
}
