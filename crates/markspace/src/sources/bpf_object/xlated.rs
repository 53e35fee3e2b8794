//! Live programs: `bpftool -j prog dump xlated id N opcodes` (the kernel's translated code)
//! into a listing that `audit` reads like an object's.
//!
//! In translated code the kernel has rewritten every context access (`convert_ctx_access`,
//! `net/core/filter.c`): `__sk_buff->mark` is a load or store at `offsetof(struct sk_buff,
//! mark)` of the running kernel (164 on 6.x), `bpf_sock->mark` at `offsetof(struct sock,
//! sk_mark)`. Those offsets come from the kernel's BTF ([`crate::bpf::btf`]) and are written
//! into the listing (`mark-offset N`). `bpf_tail_call` appears as the kernel's internal
//! tail-call instruction, which the analysis treats as an exit.

use crate::bpf::{Code, Context, Insn, Object, Program};

/// The section the listing gives a live program of this type (so the listing reads back its
/// context), or `None` for types whose context has no mark.
fn section_of(prog_type: &str) -> Option<&'static str> {
    Some(match prog_type {
        "sched_cls" => "tc",
        "sched_act" => "action",
        "cgroup_skb" => "cgroup_skb/",
        "cgroup_sock" => "cgroup/sock",
        "socket_filter" => "socket",
        "sk_skb" => "sk_skb",
        t if t.starts_with("lwt_") => "lwt_",
        _ => return None,
    })
}

/// Whether live programs of this type may read or write a mark.
pub(crate) fn has_mark(prog_type: &str) -> bool {
    section_of(prog_type).is_some()
}

fn byte(v: &serde_json::Value) -> Option<u8> {
    u8::from_str_radix(v.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// The listing of one live program from its `bpftool -j prog dump xlated … opcodes` output,
/// with the offsets of the mark in `struct sk_buff` and `struct sock` of the running kernel.
pub(crate) fn listing(
    json: &str,
    name: &str,
    prog_type: &str,
    skb_mark: u32,
    sock_mark: u32,
) -> Result<String, String> {
    let section =
        section_of(prog_type).ok_or_else(|| format!("program type {prog_type} has no mark"))?;
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("bpftool output: {e}"))?;
    let list = v.as_array().ok_or("bpftool output is not a JSON array")?;
    let mut insns = Vec::with_capacity(list.len());
    for (k, i) in list.iter().enumerate() {
        let o = i.get("opcodes").ok_or_else(|| {
            format!("instruction {k} has no opcodes (run bpftool with `opcodes`)")
        })?;
        let bad = || format!("instruction {k}: malformed opcodes");
        let field = |f: &str| o.get(f).and_then(byte);
        let bytes =
            |f: &str| -> Option<Vec<u8>> { o.get(f)?.as_array()?.iter().map(byte).collect() };
        let (code, src, dst) = (
            field("code").ok_or_else(bad)?,
            field("src_reg").ok_or_else(bad)?,
            field("dst_reg").ok_or_else(bad)?,
        );
        let off = bytes("off").filter(|b| b.len() == 2).ok_or_else(bad)?;
        // LD_IMM64: bpftool prints the bytes from the first slot's imm to the end of the
        // second slot (4 + 8: its code, registers and offset, then its imm); 8 bytes are taken
        // as the two imms.
        let imm = bytes("imm")
            .filter(|b| matches!(b.len(), 4 | 8 | 12))
            .ok_or_else(bad)?;
        insns.push(Insn {
            code,
            dst,
            src,
            off: i16::from_le_bytes([off[0], off[1]]),
            imm: i32::from_le_bytes([imm[0], imm[1], imm[2], imm[3]]),
        });
        if imm.len() > 4 {
            // The second slot of LD_IMM64, printed with the first.
            let hi = &imm[imm.len() - 4..];
            insns.push(Insn {
                imm: i32::from_le_bytes([hi[0], hi[1], hi[2], hi[3]]),
                ..Insn::default()
            });
        }
    }
    let context = match crate::bpf::section_type(section).1 {
        Context::Skb(_) => Context::Skb(skb_mark as i32),
        Context::Sock(_) => Context::Sock(sock_mark as i32),
        Context::None => Context::None,
    };
    let object = Object {
        code: vec![Code {
            section: section.to_string(),
            insns,
            functions: vec![(0, name.to_string())],
            leaders: Default::default(),
        }],
        programs: vec![Program {
            name: name.to_string(),
            kind: prog_type.to_string(),
            context,
            code: 0,
            entry: 0,
        }],
    };
    Ok(super::listing(&object))
}
