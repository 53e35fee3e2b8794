//! Traffic control: `tc filter show` and `tc -j filter show` (ingress, egress, clsact, classful
//! parents), one device or several concatenated.
//!
//! Mark semantics, each from its kernel module:
//!
//! | tc prints | kernel | operation |
//! |---|---|---|
//! | `fw … handle 0xV[/0xM]` | `net/sched/cls_fw.c` `fw_classify`: `id = skb->mark & head->mask`, match when `f->id == id`; the mask is printed only when ≠ 0xffffffff (`tc/f_fw.c`) | read `(m & M) == V` |
//! | `skbedit  mark V[/0xM]` (decimal value, hex mask, `tc/m_skbedit.c`) | `act_skbedit.c`: `skb->mark = (skb->mark & ~mask) \| (mark & mask)`, mask 0xffffffff by default | masked set |
//! | `connmark zone Z` | `act_connmark.c`: `skb->mark = READ_ONCE(c->mark)` | `m = ct` (whole copy) |
//! | `ctinfo … cpmark 0xM` (on the `index` line, `tc/m_ctinfo.c`) | `act_ctinfo.c` `tcf_ctinfo_cpmark_set`: `skb->mark = READ_ONCE(ct->mark) & cpmarkmask` | `m = ct & M` (clears the rest) |
//! | `ct … mark V[/0xM]` (`tc/m_ct.c`) | `act_ct.c` `tcf_ct_act_set_mark`: if `mask`, `ct->mark = mark \| (ct->mark & ~mask)` (V not masked) | connmark write |
//! | `flower … ct_mark V/M` | `cls_flower.c` masked key: `(ct & M) == (V & M)` | connmark read |
//! | `bpf … name cil_from_netdev … direct-action` | `cls_bpf.c`: the program may read and write `__sk_buff->mark` | [`Observation::BpfProgram`](crate::touchpoint::Observation::BpfProgram) |
//!
//! The device and direction come from shell prompt lines (`$ tc filter show dev eth0 ingress`),
//! header lines naming `dev X` (as collection scripts print them), the parent (`ffff:`,
//! `ffff:fff2` ingress, `ffff:fff3` egress) and the file name (sosreport's
//! `tc_-s_filter_show_dev_eth0_ingress`).

mod json;
mod text;

pub(crate) use json::{detect as detect_json, parse as parse_json};
pub(crate) use text::{detect as detect_text, parse as parse_text};

use crate::model::{CopySource, Field, MarkOp, MarkRead, MarkWrite, Shift, WriteOp, ALL_BITS};

/// `fw` classifier handle `V/M`: `(m & M) == V`.
pub(crate) fn fw_read(value: u32, mask: Option<u32>) -> MarkOp {
    MarkOp::Read(MarkRead::equals(
        Field::Mark,
        value,
        mask.unwrap_or(ALL_BITS),
        false,
    ))
}

/// `skbedit mark V[/M]`: `m = (m & ~M) | (V & M)`.
pub(crate) fn skbedit_mark(value: u32, mask: Option<u32>) -> MarkOp {
    MarkOp::Write(MarkWrite::masked_set(
        Field::Mark,
        value,
        mask.unwrap_or(ALL_BITS),
    ))
}

/// `connmark` action (`m = ct`, all bits) and `ctinfo cpmark M` (`m = ct & M`).
pub(crate) fn copy_from_ct(mask: u32) -> MarkOp {
    MarkOp::Write(MarkWrite {
        field: Field::Mark,
        op: WriteOp::Copy {
            src: CopySource::CtMark,
            src_mask: mask,
            shift: Shift::None,
            keep: 0,
        },
    })
}

/// `ct … mark V/M`: `ct = V | (ct & ~M)` when M ≠ 0, i.e. keep `~M & ~V`, xor V.
pub(crate) fn ct_mark_set(value: u32, mask: Option<u32>) -> Option<MarkOp> {
    let m = mask.unwrap_or(ALL_BITS);
    (m != 0).then(|| MarkOp::Write(MarkWrite::constant(Field::CtMark, !m & !value, value)))
}

/// flower `ct_mark V/M`: `(ct & M) == (V & M)`.
pub(crate) fn flower_ct_mark(value: u32, mask: Option<u32>) -> MarkOp {
    let m = mask.unwrap_or(ALL_BITS);
    MarkOp::Read(MarkRead::equals(Field::CtMark, value & m, m, false))
}

/// The direction a parent handle stands for.
pub(crate) fn direction_of_parent(parent: &str) -> Option<&'static str> {
    match parent {
        "ffff:" | "ffff:fff1" | "ffff:fff2" => Some("ingress"),
        "ffff:fff3" => Some("egress"),
        _ => None,
    }
}

/// Device and direction from a file name such as `tc_-s_filter_show_dev_eth0_ingress`.
pub(crate) fn from_file_name(name: &str) -> (Option<String>, Option<&'static str>) {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_suffix(".md").unwrap_or(base);
    let mut device = None;
    let mut dir = None;
    // sosreport joins words with `_`, cilium-bugtool with `-` (which device names also contain).
    let mut parts: Vec<&str> = base.split(['_', ' ']).filter(|p| !p.is_empty()).collect();
    if !parts.contains(&"dev") {
        parts = base.split('-').filter(|p| !p.is_empty()).collect();
    }
    for (i, p) in parts.iter().enumerate() {
        if *p == "dev" {
            device = parts.get(i + 1).map(|d| d.to_string());
        }
        if p.starts_with("ingress") {
            dir = Some("ingress");
        } else if p.starts_with("egress") {
            dir = Some("egress");
        }
    }
    (device, dir)
}

#[cfg(test)]
mod tests;
