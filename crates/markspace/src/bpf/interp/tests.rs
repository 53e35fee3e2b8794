//! The interpreter on hand-assembled programs: each case states what the kernel does.

use super::*;
use crate::model::MarkState;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        dst,
        src,
        off,
        imm,
    }
}

/// `rD = *(u32 *)(rS + off)`
fn ldxw(d: u8, s: u8, off: i16) -> Insn {
    ins(0x61, d, s, off, 0)
}
/// `*(u32 *)(rD + off) = rS`
fn stxw(d: u8, s: u8, off: i16) -> Insn {
    ins(0x63, d, s, off, 0)
}
/// 64-bit ALU with an immediate (`op` is the high nibble, `0x50` for `&=`).
fn alu_k(op: u8, d: u8, imm: i32) -> Insn {
    ins(0x07 | op, d, 0, 0, imm)
}
fn mov_k(d: u8, imm: i32) -> Insn {
    ins(0xb7, d, 0, 0, imm)
}
fn mov_x(d: u8, s: u8) -> Insn {
    ins(0xbf, d, s, 0, 0)
}
fn exit() -> Insn {
    ins(0x95, 0, 0, 0, 0)
}
fn jeq_k(d: u8, imm: i32, off: i16) -> Insn {
    ins(0x15, d, 0, off, imm)
}

fn run(p: &[Insn]) -> Effects {
    analyse(p, &leaders(p), 0, Some(8), Sym::mark())
}

/// The exit mark for a concrete entry mark.
fn out(p: &[Insn], m: u32) -> Option<u32> {
    analyse(p, &leaders(p), 0, Some(8), Sym::konst(u64::from(m)))
        .exit_mark
        .and_then(|s| s.as_const())
        .map(|v| v as u32)
}

#[test]
fn whole_constant_write() {
    let p = [mov_k(2, 0x1337), stxw(1, 2, 8), mov_k(0, 0), exit()];
    let e = run(&p);
    assert_eq!(e.writes.len(), 1);
    let (pc, w) = e.writes[0];
    assert_eq!(pc, 1);
    assert!(w.is_whole());
    assert_eq!(
        w.op,
        WriteOp::Const {
            keep: 0,
            xor: 0x1337
        }
    );
    assert!(e.reads.is_empty());
}

#[test]
fn masked_write_of_0xf00() {
    // r2 = mark; r2 &= ~0xf00; r2 |= 0xa00; mark = r2
    let p = [
        ldxw(2, 1, 8),
        alu_k(0x50, 2, !0xf00),
        alu_k(0x40, 2, 0xa00),
        stxw(1, 2, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(e.writes.len(), 1);
    let w = e.writes[0].1;
    assert_eq!(w, MarkWrite::set_xmark(Field::Mark, 0xa00, 0xf00));
    assert_eq!(w.bits(), 0xf00);
    assert!(e.reads.is_empty(), "{:?}", e.reads);
    for m in [0, 0xffff_ffff, 0x1234_5678] {
        let mut s = MarkState {
            mark: m,
            ..Default::default()
        };
        s.apply(&w);
        assert_eq!(out(&p, m), Some(s.mark));
    }
}

#[test]
fn branch_on_a_field_is_an_equality_read_and_paths_join() {
    // if ((mark >> 8) & 0xf) == 3 { mark |= 1 } else { mark |= 2 }
    let p = [
        ldxw(2, 1, 8),
        mov_x(3, 2),
        alu_k(0x70, 3, 8),
        alu_k(0x50, 3, 0xf),
        jeq_k(3, 3, 2),
        alu_k(0x40, 2, 2),
        ins(0x05, 0, 0, 1, 0),
        alu_k(0x40, 2, 1),
        stxw(1, 2, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(
        e.reads,
        vec![(4, MarkRead::equals(Field::Mark, 0x300, 0xf00, false))]
    );
    // Bits 0 and 1 are each set on one path only: the joined write leaves them data-dependent.
    assert_eq!(e.written_bits(), 0x3);
    assert_eq!(out(&p, 0x300), Some(0x301));
    assert_eq!(out(&p, 0x400), Some(0x402));
}

#[test]
fn spill_and_fill_keep_the_mark_copy() {
    // *(u32 *)(r10 - 4) = mark; r3 = *(u32 *)(r10 - 4); r3 ^= 0x10; mark = r3
    let p = [
        ldxw(2, 1, 8),
        stxw(10, 2, -4),
        ldxw(3, 10, -4),
        alu_k(0xa0, 3, 0x10),
        stxw(1, 3, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    // An xor of a bit whose value is unknown: that bit is data-dependent.
    assert_eq!(e.written_bits(), 0x10);
    assert_eq!(out(&p, 0x11), Some(0x01));
}

#[test]
fn a_bounded_loop_terminates_and_stays_sound() {
    // r2 = mark; r3 = 0; loop: r2 += 1; r3 += 1; if r3 != 5 goto loop; mark = r2
    let p = [
        ldxw(2, 1, 8),
        mov_k(3, 0),
        alu_k(0x00, 2, 1),
        alu_k(0x00, 3, 1),
        ins(0x55, 3, 0, -3, 5),
        stxw(1, 2, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(e.written_bits(), ALL_BITS);
    assert!(e.writes[0].1.is_whole());
    assert_eq!(out(&p, 10), Some(15));
}

#[test]
fn helper_calls_clobber_caller_saved_registers() {
    // r6 = ctx; r2 = 0x10; call 1; mark = r2 (unknown after the call) via r6
    let p = [
        mov_x(6, 1),
        mov_k(2, 0x10),
        ins(0x85, 0, 0, 0, 1),
        stxw(6, 2, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(
        e.writes,
        vec![(
            3,
            MarkWrite {
                field: Field::Mark,
                op: WriteOp::DataDependent { bits: ALL_BITS }
            }
        )]
    );
}

#[test]
fn bpf_to_bpf_calls_see_the_context_argument() {
    // main: call sub; exit.  sub (r1 = ctx): mark = 7; exit
    let p = [
        ins(0x85, 0, PSEUDO_CALL, 0, 2),
        mov_k(0, 0),
        exit(),
        mov_k(2, 7),
        stxw(1, 2, 8),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(e.writes, vec![(4, MarkWrite::constant(Field::Mark, 0, 7))]);
    assert_eq!(out(&p, 0xff), Some(7));
}

#[test]
fn a_lost_context_pointer_makes_unknown_stores_writes() {
    // r2 = ctx or r2 = map value (ld_imm64 pseudo), then *(u32 *)(r2 + 8) = 1
    let p = [
        mov_x(2, 1),
        ldxw(3, 1, 0),
        jeq_k(3, 0, 2),
        ins(0x18, 2, 1, 0, 5),
        ins(0, 0, 0, 0, 0),
        ins(0x62, 2, 0, 8, 1),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(e.written_bits(), ALL_BITS, "{e:?}");
}

#[test]
fn stores_to_other_fields_and_packets_are_not_mark_writes() {
    // skb->priority (offset 32) = 5; *(u32 *)(r1 + 12) = mark (queue_mapping: a read)
    let p = [
        mov_k(2, 5),
        stxw(1, 2, 32),
        ldxw(3, 1, 8),
        stxw(1, 3, 12),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert!(e.writes.is_empty());
    assert_eq!(e.read_bits(), ALL_BITS);
}

#[test]
fn a_map_key_built_from_the_mark_is_a_read() {
    // *(u32 *)(r10 - 4) = mark >> 16; r2 = r10 - 4; call map_lookup_elem
    let p = [
        ldxw(2, 1, 8),
        alu_k(0x70, 2, 16),
        stxw(10, 2, -4),
        mov_x(2, 10),
        alu_k(0x00, 2, -4),
        ins(0x85, 0, 0, 0, 1),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    assert_eq!(e.read_bits(), 0xffff_0000, "{:?}", e.reads);
    assert!(e.writes.is_empty());
}

#[test]
fn a_context_pointer_spilled_on_one_path_is_still_the_context() {
    // if mark == 0 { *(u64 *)(r10 - 8) = r1 } ; r6 = *(u64 *)(r10 - 8) ; *(u32 *)(r6 + 8) = 7
    let p = [
        ldxw(2, 1, 8),
        ins(0x55, 2, 0, 1, 0),
        ins(0x7b, 10, 1, -8, 0),
        ins(0x79, 6, 10, -8, 0),
        mov_k(3, 7),
        stxw(6, 3, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    // Only the path where the mark is 0 writes it: `mark = 7` there sets bits 0x7 and
    // leaves the others as they were (zero).
    assert_eq!(
        e.writes,
        vec![(5, MarkWrite::constant(Field::Mark, !7, 7))],
        "{e:?}"
    );
    assert_eq!(out(&p, 0), Some(7));
}

#[test]
fn joins_keep_a_pointer_spilled_on_one_side_only() {
    let base = State {
        regs: [UNINIT; 11],
        stack: Vec::new(),
        mark: Sym::mark(),
        depth: 0,
    };
    let mut spilled = base.clone();
    store_stack(&mut spilled, 0, -8, 8, Val::Ctx(Some(0)));
    store_stack(&mut spilled, 0, -16, 4, Val::Scalar(Sym::konst(5)));
    for (a, b) in [(&spilled, &base), (&base, &spilled)] {
        let mut lost = false;
        let j = a.join(b, &mut lost);
        assert!(!lost);
        assert_eq!(load_stack(&j, 0, -8, 8), Val::Ctx(Some(0)));
        assert_eq!(load_stack(&j, 0, -16, 4), Val::Scalar(Sym::unknown(0)));
    }
}

#[test]
fn an_equality_branch_makes_the_tested_bits_known() {
    // r2 = mark; r3 = r2 & 0xf00; if r3 != 0xe00 goto out; mark = r2 (Cilium's
    // `ctx->mark = magic` after `(magic & 0xf00) == 0xe00`): the write keeps every bit.
    let p = [
        ldxw(2, 1, 8),
        mov_x(3, 2),
        alu_k(0x50, 3, 0xf00),
        ins(0x55, 3, 0, 2, 0xe00),
        alu_k(0x40, 2, 0xe00),
        stxw(1, 2, 8),
        mov_k(0, 0),
        exit(),
    ];
    let e = run(&p);
    // `mark |= 0xe00` where the bits are known to be 0xe00 already: no bit changes.
    assert!(e.writes.is_empty(), "{:?}", e.writes);
    assert_eq!(
        e.reads,
        vec![(3, MarkRead::equals(Field::Mark, 0xe00, 0xf00, true))]
    );
}
