//! Property tests of the mark algebra and of the iptables parser: masking laws, composition,
//! the normal forms, and print -> parse round trips of every MARK/CONNMARK/match encoding.

use markspace::model::{
    CopySource, Field, MarkOp, MarkRead, MarkState, MarkWrite, ReadTest, Shift, WriteOp, ALL_BITS,
};
use markspace::snapshot::NodeLoader;
use proptest::prelude::*;

/// Parses one mangle rule (arguments after `-A X`) and returns its operations.
fn ops_of(args: &str) -> Vec<MarkOp> {
    let text = format!("*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING {args}\nCOMMIT\n");
    let mut l = NodeLoader::new();
    l.add_text("prop", text.into_bytes(), true)
        .expect("detected");
    let node = l.finish();
    assert!(
        node.diagnostics.is_empty(),
        "{args}: {:?}",
        node.diagnostics
    );
    node.ruleset.rules[0].ops().to_vec()
}

fn state(mark: u32, ctmark: u32) -> MarkState {
    MarkState {
        mark,
        ctmark,
        skmark: 0,
    }
}

proptest! {
    /// A write changes no bit outside `bits()`.
    #[test]
    fn writes_stay_inside_their_bits(keep in any::<u32>(), xor in any::<u32>(), x in any::<u32>()) {
        let w = MarkWrite::constant(Field::Mark, keep, xor);
        let mut s = state(x, 0);
        s.apply(&w);
        prop_assert_eq!((s.mark ^ x) & !w.bits(), 0);
    }

    /// `--set-xmark V/M` is `(x & ~M) ^ V`, and `--set-mark V/M` equals `--set-xmark V/(V|M)`.
    #[test]
    fn set_mark_is_set_xmark_with_widened_mask(v in any::<u32>(), m in any::<u32>(), x in any::<u32>()) {
        let xmark = MarkWrite::set_xmark(Field::Mark, v, m);
        prop_assert_eq!(xmark.apply(&state(x, 0)), Some((x & !m) ^ v));
        let set = ops_of(&format!("-j MARK --set-mark {v:#x}/{m:#x}"));
        prop_assert_eq!(set, vec![MarkOp::Write(MarkWrite::set_xmark(Field::Mark, v, v | m))]);
    }

    /// A masked assignment `(x & ~M) | (V & M)` normalises to keep/xor with the same result.
    #[test]
    fn masked_set_normal_form(v in any::<u32>(), m in any::<u32>(), x in any::<u32>()) {
        let w = MarkWrite::masked_set(Field::Mark, v, m);
        prop_assert_eq!(w.apply(&state(x, 0)), Some((x & !m) | (v & m)));
    }

    /// Two constant writes compose into one constant write: keep = k1 & k2, xor = (x1 & k2) ^ x2.
    #[test]
    fn constant_writes_compose(k1 in any::<u32>(), x1 in any::<u32>(), k2 in any::<u32>(), x2 in any::<u32>(), x in any::<u32>()) {
        let (a, b) = (MarkWrite::constant(Field::Mark, k1, x1), MarkWrite::constant(Field::Mark, k2, x2));
        let mut s = state(x, 0);
        s.apply(&a);
        s.apply(&b);
        let composed = MarkWrite::constant(Field::Mark, k1 & k2, (x1 & k2) ^ x2);
        prop_assert_eq!(Some(s.mark), composed.apply(&state(x, 0)));
        prop_assert!(composed.bits() & !(a.bits() | b.bits()) == 0);
    }

    /// A match never matches exactly when its value has bits outside its mask (brute force over
    /// the bits that matter).
    #[test]
    fn never_matches_is_exact(v in any::<u32>(), m in any::<u32>(), x in any::<u32>()) {
        let r = MarkRead::equals(Field::Mark, v, m, false);
        if r.never_matches() {
            prop_assert_eq!(r.eval(x), Some(false));
            prop_assert_eq!(r.eval(v & m), Some(false));
        } else {
            prop_assert_eq!(r.eval(v), Some(true));
        }
        prop_assert_eq!(MarkRead::equals(Field::Mark, v, m, true).eval(x), r.eval(x).map(|b| !b));
    }

    /// Only the masked bits decide a match.
    #[test]
    fn matches_read_only_their_mask(v in any::<u32>(), m in any::<u32>(), x in any::<u32>(), noise in any::<u32>()) {
        let r = MarkRead::equals(Field::Mark, v, m, false);
        prop_assert_eq!(r.eval(x), r.eval(x ^ (noise & !r.bits())));
    }

    /// CONNMARK save and restore, as the kernel computes them (`connmark_tg_shift`).
    #[test]
    fn connmark_copies(n in any::<u32>(), c in any::<u32>(), mark in any::<u32>(), ct in any::<u32>(), sh in 0u8..32, left in any::<bool>()) {
        let shift = if left { Shift::Left(sh) } else { Shift::Right(sh) };
        let sh_fn = |v: u32| if left { v.checked_shl(u32::from(sh)).unwrap_or(0) } else { v.checked_shr(u32::from(sh)).unwrap_or(0) };
        let save = MarkWrite { field: Field::CtMark, op: WriteOp::Copy { src: CopySource::Mark, src_mask: n, shift, keep: !c } };
        prop_assert_eq!(save.apply(&state(mark, ct)), Some((ct & !c) ^ sh_fn(mark & n)));
        let restore = MarkWrite { field: Field::Mark, op: WriteOp::Copy { src: CopySource::CtMark, src_mask: c, shift, keep: !n } };
        prop_assert_eq!(restore.apply(&state(mark, ct)), Some((mark & !n) ^ sh_fn(ct & c)));
        prop_assert_eq!((restore.apply(&state(mark, ct)).unwrap_or(0) ^ mark) & !restore.bits(), 0);
    }

    /// Print -> parse round trips: every encoding iptables-save prints parses back to the op.
    #[test]
    fn iptables_encodings_round_trip(v in any::<u32>(), m in any::<u32>(), inv in any::<bool>(), which in 0u8..8) {
        let (args, expected) = match which {
            0 => (format!("-j MARK --set-xmark {v:#x}/{m:#x}"), MarkOp::Write(MarkWrite::set_xmark(Field::Mark, v, m))),
            1 => (format!("-j CONNMARK --set-xmark {v:#x}/{m:#x}"), MarkOp::Write(MarkWrite::set_xmark(Field::CtMark, v, m))),
            2 => (format!("-m mark {}--mark {v:#x}/{m:#x}", if inv { "! " } else { "" }), MarkOp::Read(MarkRead::equals(Field::Mark, v, m, inv))),
            3 => (format!("-m connmark {}--mark {v:#x}/{m:#x}", if inv { "! " } else { "" }), MarkOp::Read(MarkRead::equals(Field::CtMark, v, m, inv))),
            4 => (format!("-j CONNMARK --save-mark --nfmask {v:#x} --ctmask {m:#x}"), MarkOp::Write(MarkWrite { field: Field::CtMark, op: WriteOp::Copy { src: CopySource::Mark, src_mask: v, shift: Shift::None, keep: !m } })),
            5 => (format!("-j CONNMARK --restore-mark --nfmask {v:#x} --ctmask {m:#x}"), MarkOp::Write(MarkWrite { field: Field::Mark, op: WriteOp::Copy { src: CopySource::CtMark, src_mask: m, shift: Shift::None, keep: !v } })),
            6 => (format!("-j MARK --xor-mark {v:#x}"), MarkOp::Write(MarkWrite::constant(Field::Mark, ALL_BITS, v))),
            _ => (format!("-j MARK --and-mark {v:#x}"), MarkOp::Write(MarkWrite::constant(Field::Mark, v, 0))),
        };
        prop_assert_eq!(ops_of(&args), vec![expected]);
    }

    /// Decimal, hex and octal spellings of a value parse to the same operation.
    #[test]
    fn number_spellings_agree(v in any::<u32>()) {
        let hex = ops_of(&format!("-m mark --mark {v:#x}"));
        prop_assert_eq!(&hex, &ops_of(&format!("-m mark --mark {v}")));
        prop_assert_eq!(&hex, &ops_of(&format!("-m mark --mark 0{v:o}")));
        prop_assert_eq!(hex, vec![MarkOp::Read(MarkRead { field: Field::Mark, test: ReadTest::Equals { value: v, mask: ALL_BITS }, invert: false })]);
    }
}
