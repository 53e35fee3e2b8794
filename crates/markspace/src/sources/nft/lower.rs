//! The kernel meaning of nft rules: statements reduced to the mark algebra.
//!
//! nft compiles every operator over a mark to `nft_bitwise` (`net/netfilter/nft_bitwise.c`):
//! a boolean operation is `dst = (src & mask) ^ xor` and a shift is `dst = src << n` or `>> n`,
//! on one source register. nft folds `&`, `|`, `^` with constants into one mask/xor pair
//! (`src/evaluate.c`, `binop_transfer`), so `(x & A) | B` is `x & (A & ~B) ^ B`. Newer kernels
//! (6.13+) also combine two registers (`NFTA_BITWISE_SREG2`), which is how
//! `ct mark set ct mark & 0xffff0000 | meta mark & 0xffff` works.
//!
//! Here every integer expression over marks and constants is reduced exactly to an xor-sum of
//! terms `shift(src) & mask` and a constant ([`Lin`]): the forms are closed under `& | ^` with
//! constants, under shifts, under `^` of anything, and under `& |` of operands with the same
//! source and shift or with disjoint possible bits. Then
//!
//! - `F set E` becomes `F' = (F & keep) ^ xor` ([`WriteOp::Const`]) when `E` only uses `F`
//!   itself, or a [`WriteOp::Copy`] from the other field (one per source term, then a constant
//!   xor when there is one); anything else (maps, `jhash`, `numgen`, payload) is a
//!   [`WriteOp::DataDependent`] write of the bits that may differ from the old value, found by a
//!   per-bit abstract evaluation (each bit 0, 1, unchanged or unknown). A plain map lookup
//!   (`meta mark set ip daddr map { … : 0x1 }`) replaces the whole mark — bits no value has are
//!   cleared — so it writes all 32 bits; `meta mark | <map>` writes only the bits of its values.
//! - `E == V` with `E` over one mark becomes `(x & mask) == value` ([`ReadTest::Equals`]),
//!   shifts and xors moved to the constant side; a value no field can give keeps a bit outside
//!   the mask so the analysis reports it as never matching. Ranges, sets of several values,
//!   named sets, `<`/`>` and concatenations are opaque reads of the bits they load.
//! - The socket mark (`socket mark`) is neither the packet mark nor the connmark: reading it is
//!   not a mark read; `meta mark set socket mark` is a copy from the socket.

use crate::model::ALL_BITS;
use crate::model::{CopySource, Field, MarkOp, MarkRead, MarkWrite, ReadTest, Shift, WriteOp};

use super::ast::{BinOp, Expr, MapData, MarkSrc, RelOp, Stmt, VerdictAst, VmapData};
use crate::ruleset::Action;

/// `x << n` for positive `n`, `x >> -n` for negative, 0 when everything is shifted out.
fn shift_by(x: u32, n: i32) -> u32 {
    match n {
        0 => x,
        1..=31 => x << n,
        -31..=-1 => x >> -n,
        _ => 0,
    }
}

/// One term `shift(src) & mask` of a [`Lin`]; `mask` is in result bit positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Term {
    src: MarkSrc,
    /// Signed shift: positive left, negative right.
    shift: i32,
    mask: u32,
}

impl Term {
    /// The bits of the source this term reads.
    fn src_mask(&self) -> u32 {
        shift_by(self.mask, -self.shift)
    }

    fn model_shift(&self) -> Shift {
        match self.shift {
            0 => Shift::None,
            n if n > 0 => Shift::Left(n as u8),
            n => Shift::Right((-n) as u8),
        }
    }
}

/// An exact integer value: the xor of its terms and a constant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lin {
    terms: Vec<Term>,
    xor: u32,
}

impl Lin {
    fn constant(x: u32) -> Lin {
        Lin {
            terms: Vec::new(),
            xor: x,
        }
    }

    fn mark(src: MarkSrc) -> Lin {
        Lin {
            terms: vec![Term {
                src,
                shift: 0,
                mask: ALL_BITS,
            }],
            xor: 0,
        }
    }

    /// Whether the value depends on exactly one mark field (unshifted or shifted).
    pub(crate) fn single_field(&self) -> bool {
        matches!(self.terms[..], [t] if t.src.field().is_some())
    }

    fn is_const(&self) -> bool {
        self.terms.is_empty()
    }

    /// Bits that may be 1.
    fn possible(&self) -> u32 {
        self.terms.iter().fold(self.xor, |a, t| a | t.mask)
    }

    fn tidy(mut self) -> Lin {
        self.terms.retain(|t| t.mask != 0);
        self
    }

    fn xor(mut self, other: Lin) -> Lin {
        for t in other.terms {
            match self
                .terms
                .iter_mut()
                .find(|s| s.src == t.src && s.shift == t.shift)
            {
                Some(s) => s.mask ^= t.mask,
                None => self.terms.push(t),
            }
        }
        self.xor ^= other.xor;
        self.tidy()
    }

    fn shift(mut self, n: i32) -> Lin {
        for t in &mut self.terms {
            t.shift += n;
            t.mask = shift_by(t.mask, n);
        }
        self.xor = shift_by(self.xor, n);
        self.tidy()
    }

    /// `self & other` or `self | other`, when exact.
    fn and_or(self, other: Lin, or: bool) -> Option<Lin> {
        // With a constant: `(t & M) ^ X` & C = `(t & M & C) ^ (X & C)`, | C = `(t & M & ~C) ^ (X | C)`.
        for (l, c) in [(&self, &other), (&other, &self)] {
            if c.is_const() {
                let c = c.xor;
                let mut out = l.clone();
                for t in &mut out.terms {
                    t.mask &= if or { !c } else { c };
                }
                out.xor = if or { out.xor | c } else { out.xor & c };
                return Some(out.tidy());
            }
        }
        // Per bit, a side is a constant (bit outside its term masks) or `source bit ^ x`.
        let key = |l: &Lin| l.terms.first().map(|t| (t.src, t.shift));
        let same_source =
            self.terms.len() == 1 && other.terms.len() == 1 && key(&self) == key(&other);
        if same_source {
            let (m1, x1) = (self.terms.first().map_or(0, |t| t.mask), self.xor);
            let (m2, x2) = (other.terms.first().map_or(0, |t| t.mask), other.xor);
            let both = m1 & m2;
            let same = !(x1 ^ x2);
            let (mask, xor) = if or {
                // x|0 = x, x|1 = 1, (s^a)|(s^a) = s^a, (s^a)|(s^!a) = 1.
                let m = (both & same) | (m1 & !m2 & !x2) | (m2 & !m1 & !x1);
                (m, x1 | x2)
            } else {
                // x&1 = x, x&0 = 0, (s^a)&(s^a) = s^a, (s^a)&(s^!a) = 0.
                let m = (both & same) | (m1 & !m2 & x2) | (m2 & !m1 & x1);
                (m, x1 & x2)
            };
            let src = self.terms.first().or(other.terms.first()).copied();
            let terms = src
                .map(|t| Term { mask, ..t })
                .into_iter()
                .collect::<Vec<_>>();
            // Constant bits outside the mask are `xor`; inside, `xor` is the inversion.
            return Some(Lin { terms, xor }.tidy());
        }
        if self.possible() & other.possible() == 0 {
            // No bit can be 1 on both sides: `|` is `^` and `&` is 0.
            return Some(if or {
                self.xor(other)
            } else {
                Lin::constant(0)
            });
        }
        None
    }
}

/// The exact value of an integer expression over marks and constants, if it has one.
pub(crate) fn exact(e: &Expr) -> Option<Lin> {
    match e {
        Expr::Num(n) => Some(Lin::constant(*n)),
        Expr::Mark(src) => Some(Lin::mark(*src)),
        Expr::Binop(op, a, b) => {
            let (a, b) = (exact(a)?, exact(b)?);
            match op {
                BinOp::Xor => Some(a.xor(b)),
                BinOp::And => a.and_or(b, false),
                BinOp::Or => a.and_or(b, true),
                BinOp::Shl | BinOp::Shr => {
                    if !b.is_const() {
                        return None;
                    }
                    let n = i32::try_from(b.xor.min(64)).unwrap_or(64);
                    Some(a.shift(if *op == BinOp::Shl { n } else { -n }))
                }
            }
        }
        _ => None,
    }
}

/// Bits of each field (`[mark, ctmark]`) an expression loads.
pub(crate) fn mark_reads(e: &Expr) -> [u32; 2] {
    let mut acc = [0u32; 2];
    add_reads(e, &mut acc);
    acc
}

fn add_reads(e: &Expr, acc: &mut [u32; 2]) {
    if let Some(lin) = exact(e) {
        for t in &lin.terms {
            if let Some(f) = t.src.field() {
                acc[f as usize] |= t.src_mask();
            }
        }
        // A mark masked to nothing was still loaded, but no bit of it matters.
        return;
    }
    match e {
        Expr::Num(_) | Expr::Mark(_) | Expr::Named(_) => {}
        Expr::Binop(_, a, b) | Expr::Range(a, b) => {
            add_reads(a, acc);
            add_reads(b, acc);
        }
        Expr::Prefix(a, _) => add_reads(a, acc),
        Expr::Set(v) | Expr::Concat(v) | Expr::Data(v) | Expr::Hash { inputs: v, .. } => {
            v.iter().for_each(|x| add_reads(x, acc))
        }
        Expr::Map(k, data) => {
            add_reads(k, acc);
            if let MapData::Elements(els) = data {
                for (a, b) in els {
                    add_reads(a, acc);
                    add_reads(b, acc);
                }
            }
        }
    }
}

/// Per-bit knowledge of a value relative to the field it is written to: bits known 0, known 1,
/// and known equal to the old value of the field; the rest are unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Abs {
    zero: u32,
    one: u32,
    same: u32,
}

const UNKNOWN: Abs = Abs {
    zero: 0,
    one: 0,
    same: 0,
};

fn abs_of(e: &Expr, dst: Field) -> Abs {
    if let Some(lin) = exact(e) {
        let mut in_terms = 0;
        let mut same = 0;
        for t in &lin.terms {
            if t.src.field() == Some(dst) && t.shift == 0 {
                same |= t.mask;
            }
            in_terms |= t.mask;
        }
        // A bit in several terms is an xor of sources: unknown.
        let multi = lin.terms.iter().enumerate().fold(0, |acc, (i, t)| {
            acc | lin.terms[i + 1..]
                .iter()
                .fold(0, |a, u| a | (t.mask & u.mask))
        });
        return Abs {
            zero: !in_terms & !lin.xor,
            one: !in_terms & lin.xor,
            same: same & !lin.xor & !multi,
        };
    }
    match e {
        Expr::Binop(op, a, b) => {
            let x = abs_of(a, dst);
            let y = abs_of(b, dst);
            match op {
                BinOp::And => Abs {
                    zero: x.zero | y.zero,
                    one: x.one & y.one,
                    same: (x.same & y.same) | (x.same & y.one) | (x.one & y.same),
                },
                BinOp::Or => Abs {
                    zero: x.zero & y.zero,
                    one: x.one | y.one,
                    same: (x.same & y.same) | (x.same & y.zero) | (x.zero & y.same),
                },
                BinOp::Xor => Abs {
                    zero: (x.zero & y.zero) | (x.one & y.one),
                    one: (x.one & y.zero) | (x.zero & y.one),
                    same: (x.same & y.zero) | (x.zero & y.same),
                },
                BinOp::Shl | BinOp::Shr => match exact(b).filter(Lin::is_const) {
                    Some(n) => {
                        let n = i32::try_from(n.xor.min(64)).unwrap_or(64);
                        let n = if *op == BinOp::Shl { n } else { -n };
                        Abs {
                            zero: shift_by(x.zero, n) | !shift_by(ALL_BITS, n),
                            one: shift_by(x.one, n),
                            same: 0,
                        }
                    }
                    None => UNKNOWN,
                },
            }
        }
        Expr::Hash { bits, .. } => Abs {
            zero: !*bits,
            ..UNKNOWN
        },
        Expr::Map(_, MapData::Elements(els)) => {
            let mut possible = 0;
            for (_, v) in els {
                match exact(v).filter(Lin::is_const) {
                    Some(c) => possible |= c.xor,
                    None => return UNKNOWN,
                }
            }
            Abs {
                zero: !possible,
                ..UNKNOWN
            }
        }
        _ => UNKNOWN,
    }
}

/// Appends the operations of `field set value`.
pub(crate) fn lower_set(field: Field, value: &Expr, ops: &mut Vec<MarkOp>) {
    if let Some(lin) = exact(value) {
        if let Some(writes) = exact_writes(field, &lin) {
            ops.extend(writes.into_iter().map(MarkOp::Write));
            return;
        }
    }
    push_opaque_reads(mark_reads(value), false, ops);
    let a = abs_of(value, field);
    ops.push(MarkOp::Write(MarkWrite {
        field,
        op: WriteOp::DataDependent { bits: !a.same },
    }));
}

/// `field' = lin` as a sequence of algebra writes, when the algebra can say it exactly.
fn exact_writes(field: Field, lin: &Lin) -> Option<Vec<MarkWrite>> {
    let own = CopySource::from(field);
    let src_of = |t: &Term| match t.src {
        MarkSrc::Meta => CopySource::Mark,
        MarkSrc::Ct => CopySource::CtMark,
        MarkSrc::Socket => CopySource::Socket,
    };
    let keep = lin
        .terms
        .iter()
        .find(|t| src_of(t) == own && t.shift == 0)
        .map_or(0, |t| t.mask);
    let mut copies: Vec<&Term> = lin
        .terms
        .iter()
        .filter(|t| !(src_of(t) == own && t.shift == 0))
        .collect();
    // A shifted copy of the field itself must read the old value: it goes first, and only when
    // no bit of the old value is kept (the algebra's copy has one source).
    let shifted_own = copies.iter().filter(|t| src_of(t) == own).count();
    if shifted_own > 1 || (shifted_own == 1 && keep != 0) {
        return None;
    }
    copies.sort_by_key(|t| src_of(t) != own);
    if copies.is_empty() {
        return Some(vec![MarkWrite::constant(field, keep, lin.xor)]);
    }
    let mut out: Vec<MarkWrite> = copies
        .iter()
        .enumerate()
        .map(|(i, t)| MarkWrite {
            field,
            op: WriteOp::Copy {
                src: src_of(t),
                src_mask: t.src_mask(),
                shift: t.model_shift(),
                keep: if i == 0 { keep } else { ALL_BITS },
            },
        })
        .collect();
    if lin.xor != 0 {
        out.push(MarkWrite::constant(field, ALL_BITS, lin.xor));
    }
    Some(out)
}

fn push_opaque_reads(reads: [u32; 2], invert: bool, ops: &mut Vec<MarkOp>) {
    for field in Field::BOTH {
        let mask = reads[field as usize];
        if mask != 0 {
            ops.push(MarkOp::Read(MarkRead {
                field,
                test: ReadTest::Opaque { mask },
                invert,
            }));
        }
    }
}

/// The constant a relational right side compares with, if it is one value.
fn single_value(right: &Expr) -> Option<u32> {
    match right {
        Expr::Set(v) if v.len() == 1 => single_value(&v[0]),
        e => exact(e).filter(Lin::is_const).map(|l| l.xor),
    }
}

/// Appends the operations of `left op right`.
pub(crate) fn lower_match(left: &Expr, op: RelOp, right: &Expr, ops: &mut Vec<MarkOp>) {
    let invert = op == RelOp::Ne;
    if let Some(lin) = exact(left) {
        // Every bit masked or forced away (`mark | 0xffffffff == 0xffffffff`): a constant
        // comparison, always or never true, that still loads the mark.
        if lin.terms.is_empty() && op != RelOp::Order && !right.has_mark() {
            let mut field = None;
            left.walk(&mut |e| {
                if let Expr::Mark(src) = e {
                    field = field.or(src.field());
                }
            });
            if let (Some(field), Some(v)) = (field, single_value(right)) {
                ops.push(MarkOp::Read(equality(field, &lin, v, invert)));
                return;
            }
        }
        if let [t] = lin.terms[..] {
            if let (Some(field), false) = (t.src.field(), right.has_mark()) {
                let pre = t.src_mask();
                // A prefix `V/len` compares the top `len` bits.
                let (lin, value) = match right {
                    Expr::Prefix(v, len) if op != RelOp::Order => {
                        let p = if *len == 0 {
                            0
                        } else {
                            ALL_BITS << (32 - (*len).min(32))
                        };
                        // The value is compared unmasked. nft masks a prefix typed by hand
                        // (`0x12345678/20` is loaded as `0x12345000/20`), so a listed prefix
                        // with host bits comes from a rule that never matches (`mark & 0 ==
                        // 0x400` lists as `meta mark 0x00000400/0`), and is kept so.
                        let masked = lin.clone().and_or(Lin::constant(p), false);
                        (masked, single_value(v))
                    }
                    _ if op != RelOp::Order => (Some(lin.clone()), single_value(right)),
                    _ => (None, None),
                };
                if let (Some(lin), Some(v)) = (lin, value) {
                    ops.push(MarkOp::Read(equality(field, &lin, v, invert)));
                    return;
                }
                ops.push(MarkOp::Read(MarkRead {
                    field,
                    test: ReadTest::Opaque { mask: pre },
                    invert,
                }));
                return;
            }
        }
    }
    let mut reads = mark_reads(left);
    let r = mark_reads(right);
    reads[0] |= r[0];
    reads[1] |= r[1];
    push_opaque_reads(reads, false, ops);
}

/// `lin == v` as `(field & mask) == value` on the field's own bits.
fn equality(field: Field, lin: &Lin, v: u32, invert: bool) -> MarkRead {
    let Some(t) = lin.terms.first() else {
        // Everything was masked away: `const == v` is always or never true. Reads no bit.
        let hit = lin.xor == v;
        return MarkRead {
            field,
            test: if hit {
                ReadTest::Equals { value: 0, mask: 0 }
            } else {
                ReadTest::AnyBit { mask: 0 }
            },
            invert,
        };
    };
    let w = v ^ lin.xor;
    let pre = t.src_mask();
    let value = if w & !t.mask != 0 {
        // No value of the field can match: keep a bit outside the mask to say so.
        shift_by(w & t.mask, -t.shift) | (!pre & (!pre).wrapping_neg())
    } else {
        shift_by(w, -t.shift)
    };
    MarkRead::equals(field, value, pre, invert)
}

/// What a rule does after its statements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RuleVerdict {
    /// One verdict.
    One(VerdictAst),
    /// A verdict map with these verdicts (no match: continue).
    Map(Vec<VerdictAst>),
    /// A verdict map by name, resolved against the table's maps.
    NamedMap(String),
}

/// A rule reduced to what markspace keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lowered {
    /// Mark operations in kernel order.
    pub(crate) ops: Vec<MarkOp>,
    /// The verdict.
    pub(crate) verdict: Option<RuleVerdict>,
    /// `comment "…"`.
    pub(crate) comment: Option<String>,
    /// Interface names matched.
    pub(crate) interfaces: Vec<String>,
    /// xtables extensions (`xt target "MARK"`), as (is target, name).
    pub(crate) xt: Vec<(bool, String)>,
    /// The first non-terminating action (`notrack`, `log`, `ct zone set`): the rule's verdict
    /// when it has no other.
    pub(crate) effect: Option<Action>,
}

/// Reduces a rule's statements.
pub(crate) fn lower(stmts: &[Stmt]) -> Lowered {
    let mut out = Lowered::default();
    for s in stmts {
        match s {
            Stmt::Match { left, op, right } => lower_match(left, *op, right, &mut out.ops),
            Stmt::SetMark { field, value } => lower_set(*field, value, &mut out.ops),
            Stmt::Verdict(v) => {
                out.verdict.get_or_insert(RuleVerdict::One(v.clone()));
            }
            Stmt::Vmap { key, data } => {
                push_opaque_reads(mark_reads(key), false, &mut out.ops);
                let v = match data {
                    VmapData::Elements(els) => {
                        RuleVerdict::Map(els.iter().map(|(_, v)| v.clone()).collect())
                    }
                    VmapData::Named(n) => RuleVerdict::NamedMap(n.clone()),
                };
                out.verdict.get_or_insert(v);
            }
            Stmt::Comment(c) => {
                out.comment.get_or_insert_with(|| c.clone());
            }
            Stmt::Effect(a) => {
                // NOTRACK matters most to what follows (trace's conntrack state).
                if out.effect.is_none() || *a == Action::Notrack {
                    out.effect = Some(*a);
                }
            }
            Stmt::Interface(i) => out.interfaces.push(i.clone()),
            Stmt::Xt { target, name } => out.xt.push((*target, name.clone())),
            Stmt::Other(exprs) => {
                let mut reads = [0u32; 2];
                for e in exprs {
                    let r = mark_reads(e);
                    reads[0] |= r[0];
                    reads[1] |= r[1];
                }
                push_opaque_reads(reads, false, &mut out.ops);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MarkState;

    fn num(n: u32) -> Expr {
        Expr::Num(n)
    }
    fn mark() -> Expr {
        Expr::Mark(MarkSrc::Meta)
    }
    fn ct() -> Expr {
        Expr::Mark(MarkSrc::Ct)
    }
    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::binop(op, a, b)
    }

    /// Evaluates an expression directly, as the kernel would.
    fn eval(e: &Expr, s: &MarkState) -> u32 {
        match e {
            Expr::Num(n) => *n,
            Expr::Mark(MarkSrc::Meta) => s.mark,
            Expr::Mark(MarkSrc::Ct) => s.ctmark,
            Expr::Mark(MarkSrc::Socket) => s.skmark,
            Expr::Binop(op, a, b) => {
                let (a, b) = (eval(a, s), eval(b, s));
                match op {
                    BinOp::And => a & b,
                    BinOp::Or => a | b,
                    BinOp::Xor => a ^ b,
                    BinOp::Shl => a.checked_shl(b).unwrap_or(0),
                    BinOp::Shr => a.checked_shr(b).unwrap_or(0),
                }
            }
            _ => unreachable!("test expressions are integer expressions"),
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 16) as u32
        }
        fn word(&mut self) -> u32 {
            match self.next() % 4 {
                0 => self.next() & self.next(),
                1 => self.next() | self.next(),
                2 => 0xff << (self.next() % 25),
                _ => self.next(),
            }
        }
        fn expr(&mut self, depth: u32) -> Expr {
            if depth == 0 {
                return match self.next() % 4 {
                    0 => mark(),
                    1 => ct(),
                    _ => num(self.word()),
                };
            }
            let op = match self.next() % 5 {
                0 => BinOp::And,
                1 => BinOp::Or,
                2 => BinOp::Xor,
                3 => BinOp::Shl,
                _ => BinOp::Shr,
            };
            let a = self.expr(depth - 1);
            let b = if matches!(op, BinOp::Shl | BinOp::Shr) {
                num(self.next() % 33)
            } else {
                self.expr(depth - 1)
            };
            bin(op, a, b)
        }
    }

    #[test]
    fn exact_forms_agree_with_direct_evaluation() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut exact_n, mut total) = (0, 0);
        for _ in 0..4000 {
            let depth = 1 + rng.next() % 3;
            let e = rng.expr(depth);
            for field in Field::BOTH {
                total += 1;
                let mut ops = Vec::new();
                lower_set(field, &e, &mut ops);
                let exactly = ops.iter().all(|op| match op {
                    MarkOp::Write(w) => !matches!(w.op, WriteOp::DataDependent { .. }),
                    MarkOp::Read(_) => false,
                });
                for _ in 0..8 {
                    let s = MarkState {
                        mark: rng.word(),
                        ctmark: rng.word(),
                        skmark: 0,
                    };
                    let want = eval(&e, &s);
                    let old = s.field(field);
                    if exactly {
                        let mut t = s;
                        for op in &ops {
                            if let MarkOp::Write(w) = op {
                                t.apply(w);
                            }
                        }
                        assert_eq!(t.field(field), want, "{e:?} -> {ops:?} on {s:?}");
                    } else {
                        let bits = ops
                            .iter()
                            .find_map(|op| match op {
                                MarkOp::Write(w) => Some(w.bits()),
                                _ => None,
                            })
                            .unwrap_or(0);
                        assert_eq!((want ^ old) & !bits, 0, "{e:?} -> {ops:?} on {s:?}");
                    }
                }
                exact_n += usize::from(exactly);
            }
        }
        assert!(exact_n * 2 > total, "only {exact_n}/{total} exact");
    }

    #[test]
    fn matches_agree_with_direct_evaluation() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..4000 {
            let src = if rng.next() & 1 == 0 { mark() } else { ct() };
            let mut e = src;
            for _ in 0..rng.next() % 4 {
                let op = match rng.next() % 5 {
                    0 => BinOp::And,
                    1 => BinOp::Or,
                    2 => BinOp::Xor,
                    3 => BinOp::Shl,
                    _ => BinOp::Shr,
                };
                let k = if matches!(op, BinOp::Shl | BinOp::Shr) {
                    rng.next() % 32
                } else {
                    rng.word()
                };
                e = bin(op, e, num(k));
            }
            let s = MarkState {
                mark: rng.word(),
                ctmark: rng.word(),
                skmark: 0,
            };
            let v = if rng.next() & 1 == 0 {
                eval(&e, &s)
            } else {
                rng.word()
            };
            let op = if rng.next() & 1 == 0 {
                RelOp::Eq
            } else {
                RelOp::Ne
            };
            let mut ops = Vec::new();
            lower_match(&e, op, &num(v), &mut ops);
            let want = (eval(&e, &s) == v) ^ (op == RelOp::Ne);
            match ops.as_slice() {
                [MarkOp::Read(r)] => {
                    assert_eq!(r.eval(s.field(r.field)), Some(want), "{e:?} {op:?} {v:#x}")
                }
                [] => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn tailscale_legacy_write() {
        let e = bin(
            BinOp::Or,
            bin(BinOp::And, mark(), num(0xffff_04ff)),
            num(0x400),
        );
        let mut ops = Vec::new();
        lower_set(Field::Mark, &e, &mut ops);
        assert_eq!(
            ops,
            vec![MarkOp::Write(MarkWrite::constant(
                Field::Mark,
                0xffff_00ff,
                0x400
            ))]
        );
    }

    #[test]
    fn two_source_write_is_a_copy() {
        // ct mark set ct mark & 0xffff0000 | meta mark & 0xffff
        let e = bin(
            BinOp::Or,
            bin(BinOp::And, ct(), num(0xffff_0000)),
            bin(BinOp::And, mark(), num(0xffff)),
        );
        let mut ops = Vec::new();
        lower_set(Field::CtMark, &e, &mut ops);
        assert_eq!(
            ops,
            vec![MarkOp::Write(MarkWrite {
                field: Field::CtMark,
                op: WriteOp::Copy {
                    src: CopySource::Mark,
                    src_mask: 0xffff,
                    shift: Shift::None,
                    keep: 0xffff_0000
                }
            })]
        );
    }

    #[test]
    fn map_write_is_whole_and_data_dependent() {
        let e = Expr::Map(
            Box::new(Expr::Data(vec![])),
            MapData::Elements(vec![(num(1), num(0x10)), (num(2), num(0x20))]),
        );
        let mut ops = Vec::new();
        lower_set(Field::Mark, &e, &mut ops);
        assert_eq!(
            ops,
            vec![MarkOp::Write(MarkWrite {
                field: Field::Mark,
                op: WriteOp::DataDependent { bits: ALL_BITS }
            })]
        );
        let mut ops = Vec::new();
        lower_set(Field::Mark, &bin(BinOp::Or, mark(), e), &mut ops);
        assert_eq!(
            ops,
            vec![
                MarkOp::Read(MarkRead {
                    field: Field::Mark,
                    test: ReadTest::Opaque { mask: ALL_BITS },
                    invert: false
                }),
                MarkOp::Write(MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::DataDependent { bits: 0x30 }
                })
            ]
        );
    }

    #[test]
    fn or_then_compare_never_matches() {
        // ct mark or 0x23 == 0x11: bit 0x20 is always set, 0x11 lacks it.
        let mut ops = Vec::new();
        lower_match(
            &bin(BinOp::Or, ct(), num(0x23)),
            RelOp::Eq,
            &num(0x11),
            &mut ops,
        );
        let [MarkOp::Read(r)] = ops.as_slice() else {
            panic!("{ops:?}")
        };
        assert!(r.never_matches());
        assert_eq!(r.bits(), !0x23);
    }
}
