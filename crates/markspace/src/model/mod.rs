//! The mark algebra: every mark operation reduced to a handful of exact forms.
//!
//! Two 32-bit fields matter (DESIGN §3): the packet mark (`skb->mark`, nfmark, fwmark) and the
//! connmark (`nf_conn->mark`). The socket mark (`sk->sk_mark`) is only ever a source here: it is
//! the initial packet mark of locally generated packets and the source of
//! `socket --restore-skmark`.
//!
//! Every read is a [`MarkRead`]: `((x & mask) == value) ^ invert`, `((x & mask) != 0) ^ invert`
//! or an opaque read of some bits. Every write is a [`MarkWrite`]: a constant write
//! `x' = (x & keep) ^ xor`, a copy `dst' = (dst & keep) ^ shift(src & src_mask)`, or a
//! data-dependent write whose result is only known to lie in some bits. The constructors for
//! each tool's syntax live next to the types so that the kernel source behind each encoding is
//! cited once (`net/netfilter/xt_mark.c`, `xt_connmark.c`, `xt_TPROXY.c`, `xt_socket.c`).
//!
//! [`Node`] (in `node`) holds everything read from one node: the texts, the ruleset whose rules
//! carry these operations, the touchpoints outside netfilter and the diagnostics.

use serde::Serialize;

mod bits;
mod node;
pub use bits::{Bits, ParseBitsError};
pub use node::{Node, Rewrite, RewriteSite};

/// All 32 bits of a mark field.
pub const ALL_BITS: u32 = 0xffff_ffff;

/// A 32-bit mark field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// The packet mark, `skb->mark` (iptables `MARK`/`-m mark`, nft `meta mark`).
    Mark,
    /// The connection mark, `nf_conn->mark` (iptables `CONNMARK`/`-m connmark`, nft `ct mark`).
    #[serde(rename = "ctmark")]
    CtMark,
}

impl Field {
    /// The name used in reports and JSON: `mark` or `ctmark`.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Mark => "mark",
            Field::CtMark => "ctmark",
        }
    }

    /// Both fields, packet mark first.
    pub const BOTH: [Field; 2] = [Field::Mark, Field::CtMark];
}

/// Where the value of a copy comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopySource {
    /// The packet mark.
    Mark,
    /// The connmark.
    #[serde(rename = "ctmark")]
    CtMark,
    /// The socket mark of the packet's socket (`socket --restore-skmark`).
    Socket,
}

impl From<Field> for CopySource {
    fn from(field: Field) -> Self {
        match field {
            Field::Mark => CopySource::Mark,
            Field::CtMark => CopySource::CtMark,
        }
    }
}

/// A shift applied to a copied value (CONNMARK revision 2 `--left-shift-mark`/`--right-shift-mark`
/// and friends, nft `<<`/`>>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "dir", content = "bits")]
pub enum Shift {
    /// No shift.
    #[default]
    None,
    /// Shift left by this many bits (0..=31).
    Left(u8),
    /// Shift right by this many bits (0..=31).
    Right(u8),
}

impl Shift {
    /// Applies the shift to a value; shifts of 32 or more give 0, as in the kernel's `u32` math
    /// guarded by the parsers (they reject shifts above 31).
    pub fn apply(self, value: u32) -> u32 {
        match self {
            Shift::None => value,
            Shift::Left(n) => value.checked_shl(u32::from(n)).unwrap_or(0),
            Shift::Right(n) => value.checked_shr(u32::from(n)).unwrap_or(0),
        }
    }
}

/// How a read compares the masked field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReadTest {
    /// `(x & mask) == value` (xt `mark`/`connmark`, xfrm `mark`, OVS `pkt_mark`, and `ip rule
    /// fwmark` after its value is masked).
    ///
    /// The value is kept as written: a value with bits outside the mask never matches (the
    /// analysis reports it).
    Equals {
        /// The value compared against.
        value: u32,
        /// The bits read.
        mask: u32,
    },
    /// `(x & mask) != 0` (ebtables `--mark /M`, nft `meta mark & M != 0`).
    AnyBit {
        /// The bits read.
        mask: u32,
    },
    /// A read whose outcome depends on the bits in `mask` in a way the algebra does not model
    /// (set or map lookups, concatenations, classifiers). Never evaluated, only attributed.
    Opaque {
        /// The bits that may influence the outcome.
        mask: u32,
    },
}

/// A read of a mark field: a match, selector or classifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MarkRead {
    /// Which field is read.
    pub field: Field,
    /// The comparison.
    #[serde(flatten)]
    pub test: ReadTest,
    /// Whether the result is inverted (`!`, `not`).
    pub invert: bool,
}

impl MarkRead {
    /// `(x & mask) == value`, optionally inverted.
    pub fn equals(field: Field, value: u32, mask: u32, invert: bool) -> Self {
        MarkRead {
            field,
            test: ReadTest::Equals { value, mask },
            invert,
        }
    }

    /// The bits whose values can change the outcome.
    pub fn bits(&self) -> u32 {
        match self.test {
            ReadTest::Equals { mask, .. }
            | ReadTest::AnyBit { mask }
            | ReadTest::Opaque { mask } => mask,
        }
    }

    /// Evaluates the read on a field value; `None` for opaque reads.
    pub fn eval(&self, x: u32) -> Option<bool> {
        let hit = match self.test {
            ReadTest::Equals { value, mask } => (x & mask) == value,
            ReadTest::AnyBit { mask } => (x & mask) != 0,
            ReadTest::Opaque { .. } => return None,
        };
        Some(hit ^ self.invert)
    }

    /// True when no value of the field can ever satisfy the read (the value has bits outside its
    /// mask and the read is not inverted).
    pub fn never_matches(&self) -> bool {
        match self.test {
            ReadTest::Equals { value, mask } => !self.invert && value & !mask != 0,
            ReadTest::AnyBit { mask } => !self.invert && mask == 0,
            ReadTest::Opaque { .. } => false,
        }
    }

    /// True when the read compares all 32 bits for equality (`-m mark --mark V` without a mask):
    /// any bit another program sets makes it stop matching.
    pub fn is_whole_equality(&self) -> bool {
        matches!(self.test, ReadTest::Equals { mask: ALL_BITS, .. })
    }
}

/// The operation of a write, normalised (DESIGN §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WriteOp {
    /// `x' = (x & keep) ^ xor`.
    Const {
        /// The bits kept from the old value.
        keep: u32,
        /// The constant xor-ed in.
        xor: u32,
    },
    /// `dst' = (dst & keep) ^ shift(src & src_mask)`.
    Copy {
        /// The field or socket the value comes from.
        src: CopySource,
        /// The bits of the source that are copied (before the shift).
        src_mask: u32,
        /// The shift applied to the copied bits.
        shift: Shift,
        /// The bits kept from the old destination value.
        keep: u32,
    },
    /// `x' = shift((x & keep) ^ xor)`: CONNMARK revision 2 `--set-xmark` with a shift option, which
    /// shifts the whole new value, kept bits included (`xt_connmark.c`, `connmark_tg_shift`).
    ShiftedConst {
        /// The bits kept from the old value before the shift.
        keep: u32,
        /// The constant xor-ed in before the shift.
        xor: u32,
        /// The shift applied to the result.
        shift: Shift,
    },
    /// The new value is computed from packet data or userspace (HMARK, NFQUEUE verdicts, nft map
    /// lookups, `jhash`): only the bits it may change are known.
    DataDependent {
        /// The bits that may change.
        bits: u32,
    },
}

/// A write of a mark field: a target, action or statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MarkWrite {
    /// Which field is written.
    pub field: Field,
    /// What the write does.
    #[serde(flatten)]
    pub op: WriteOp,
}

impl MarkWrite {
    /// `x' = (x & keep) ^ xor`.
    pub fn constant(field: Field, keep: u32, xor: u32) -> Self {
        MarkWrite {
            field,
            op: WriteOp::Const { keep, xor },
        }
    }

    /// xt `--set-xmark V/M`: `x' = (x & ~M) ^ V` (`xt_mark.c`, `xt_connmark.c`).
    pub fn set_xmark(field: Field, value: u32, mask: u32) -> Self {
        Self::constant(field, !mask, value)
    }

    /// A masked assignment `x' = (x & ~M) | (V & M)` (xfrm `output-mark`, tc `skbedit`, ip
    /// rule style): normalised to keep/xor.
    pub fn masked_set(field: Field, value: u32, mask: u32) -> Self {
        Self::constant(field, !mask, value & mask)
    }

    /// The bits this write may change.
    ///
    /// For a constant write these are the bits not kept plus the bits flipped; for a copy, the bits
    /// not kept plus the bits the shifted source can reach.
    pub fn bits(&self) -> u32 {
        match self.op {
            WriteOp::Const { keep, xor } => !keep | xor,
            WriteOp::Copy {
                src_mask,
                shift,
                keep,
                ..
            } => !keep | shift.apply(src_mask),
            WriteOp::ShiftedConst { keep, xor, shift } => match shift {
                Shift::None => !keep | xor,
                // Every kept bit moves: any bit may change.
                _ => ALL_BITS,
            },
            WriteOp::DataDependent { bits } => bits,
        }
    }

    /// True when the write replaces all 32 bits whatever they were before.
    pub fn is_whole(&self) -> bool {
        match self.op {
            WriteOp::Const { keep, .. }
            | WriteOp::Copy { keep, .. }
            | WriteOp::ShiftedConst { keep, .. } => keep == 0,
            WriteOp::DataDependent { bits } => bits == ALL_BITS,
        }
    }

    /// The source field read by a copy and the bits of it that are read.
    pub fn source_read(&self) -> Option<(CopySource, u32)> {
        match self.op {
            WriteOp::Copy { src, src_mask, .. } => Some((src, src_mask)),
            _ => None,
        }
    }

    /// Applies the write to a state; `None` for data-dependent writes.
    pub fn apply(&self, state: &MarkState) -> Option<u32> {
        let dst = state.field(self.field);
        match self.op {
            WriteOp::Const { keep, xor } => Some((dst & keep) ^ xor),
            WriteOp::Copy {
                src,
                src_mask,
                shift,
                keep,
            } => {
                let from = match src {
                    CopySource::Mark => state.mark,
                    CopySource::CtMark => state.ctmark,
                    CopySource::Socket => state.skmark,
                };
                Some((dst & keep) ^ shift.apply(from & src_mask))
            }
            WriteOp::ShiftedConst { keep, xor, shift } => Some(shift.apply((dst & keep) ^ xor)),
            WriteOp::DataDependent { .. } => None,
        }
    }

    /// Whether this write copies between the packet mark and the connmark (connmark save or
    /// restore).
    pub fn is_connmark_copy(&self) -> bool {
        matches!(
            (self.field, self.op),
            (
                Field::CtMark,
                WriteOp::Copy {
                    src: CopySource::Mark,
                    ..
                }
            ) | (
                Field::Mark,
                WriteOp::Copy {
                    src: CopySource::CtMark,
                    ..
                }
            )
        )
    }
}

/// The values of the mark fields a packet carries at one point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarkState {
    /// The packet mark.
    pub mark: u32,
    /// The connmark of the packet's connection.
    pub ctmark: u32,
    /// The socket mark of the packet's socket, if any (0 otherwise).
    pub skmark: u32,
}

impl MarkState {
    /// The value of one field.
    pub fn field(&self, field: Field) -> u32 {
        match field {
            Field::Mark => self.mark,
            Field::CtMark => self.ctmark,
        }
    }

    /// Applies a write; data-dependent writes leave the state unchanged and return false.
    pub fn apply(&mut self, write: &MarkWrite) -> bool {
        match write.apply(self) {
            Some(value) => {
                match write.field {
                    Field::Mark => self.mark = value,
                    Field::CtMark => self.ctmark = value,
                }
                true
            }
            None => false,
        }
    }
}

/// One mark operation of a rule, in the order the kernel performs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum MarkOp {
    /// A read (match).
    Read(MarkRead),
    /// A write (target or statement).
    Write(MarkWrite),
}

impl MarkOp {
    /// The field the operation reads or writes.
    pub fn field(&self) -> Field {
        match self {
            MarkOp::Read(r) => r.field,
            MarkOp::Write(w) => w.field,
        }
    }
}

/// The constants a rule compares or writes (the values of equality tests and the non-zero xor
/// of constant writes), for attribution by distinctive value.
pub fn constant_values(ops: &[MarkOp]) -> Vec<u32> {
    ops.iter().filter_map(constant_value).collect()
}

/// The constant of one operation ([`constant_values`]).
pub(crate) fn constant_value(op: &MarkOp) -> Option<u32> {
    match op {
        MarkOp::Read(r) => match r.test {
            ReadTest::Equals { value, .. } => Some(value),
            _ => None,
        },
        MarkOp::Write(w) => match w.op {
            WriteOp::Const { xor, .. } if xor != 0 => Some(xor),
            _ => None,
        },
    }
}

/// Formats a mark value as the reports do: `0x0000c000`.
pub fn hex(value: u32) -> String {
    Bits(value).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_xmark_matches_kernel_formula() {
        let w = MarkWrite::set_xmark(Field::Mark, 0x4000, 0x4000);
        let mut s = MarkState {
            mark: 0x8001,
            ..Default::default()
        };
        s.apply(&w);
        assert_eq!(s.mark, 0xc001);
        assert_eq!(w.bits(), 0x4000);
        assert!(!w.is_whole());
    }

    #[test]
    fn xor_write_touches_only_its_bits() {
        let w = MarkWrite::set_xmark(Field::Mark, 0x4000, 0);
        assert_eq!(w.bits(), 0x4000);
        let mut s = MarkState {
            mark: 0xc000,
            ..Default::default()
        };
        s.apply(&w);
        assert_eq!(s.mark, 0x8000);
    }

    #[test]
    fn whole_write_is_detected() {
        assert!(MarkWrite::set_xmark(Field::Mark, 1, ALL_BITS).is_whole());
        assert_eq!(
            MarkWrite::set_xmark(Field::Mark, 1, ALL_BITS).bits(),
            ALL_BITS
        );
    }

    #[test]
    fn never_matching_read() {
        assert!(MarkRead::equals(Field::Mark, 0x10, 0x0f, false).never_matches());
        assert!(!MarkRead::equals(Field::Mark, 0x10, 0x0f, true).never_matches());
        assert!(!MarkRead::equals(Field::Mark, 0x01, 0x0f, false).never_matches());
    }

    #[test]
    fn copy_with_shift() {
        let w = MarkWrite {
            field: Field::CtMark,
            op: WriteOp::Copy {
                src: CopySource::Mark,
                src_mask: 0xff,
                shift: Shift::Left(8),
                keep: !0xff00,
            },
        };
        let mut s = MarkState {
            mark: 0x12,
            ctmark: 0xffff_ffff,
            skmark: 0,
        };
        s.apply(&w);
        assert_eq!(s.ctmark, 0xffff_12ff);
        assert_eq!(w.bits(), 0xff00);
    }
}
