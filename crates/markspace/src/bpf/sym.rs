//! Known bits of a 64-bit register value, with the bits that are copies of the packet mark.
//!
//! The verifier's `tnum` (`kernel/bpf/tnum.c`) knows each bit as 0, 1 or unknown. A mark
//! analysis needs one more state: "this bit is bit `i + sh` of the mark the program started
//! with". With it, `(m & ~0xf00) | 0xa00` is exactly "keep every bit but 0xf00, which become
//! 0xa00", and `(m >> 8) & 0xf` tested against 3 is the read `(m & 0xf00) == 0x300`.
//!
//! Invariants: `known & mb == 0`; `val & !known == 0`; `dep` holds every mark bit any
//! unknown or mark-copy bit may depend on (so `dep ⊇ mark_bits()`).

/// An abstract 64-bit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sym {
    /// Values of the known bits.
    pub val: u64,
    /// The known bits.
    pub known: u64,
    /// Bits equal to bit `i + sh` of the entry mark.
    pub mb: u64,
    /// The shift of the mark copy: value bit `i` is mark bit `i + sh`.
    pub sh: i8,
    /// Mark bits the value may depend on.
    pub dep: u32,
}

const LOW32: u64 = 0xffff_ffff;

/// Mark bits that the value bits `mb` copy, under shift `sh`.
fn mark_bits(mb: u64, sh: i8) -> u32 {
    let m = if sh >= 0 {
        mb.checked_shl(sh as u32).unwrap_or(0)
    } else {
        mb.checked_shr(u32::from(sh.unsigned_abs())).unwrap_or(0)
    };
    (m & LOW32) as u32
}

impl Sym {
    /// A constant.
    pub const fn konst(v: u64) -> Sym {
        Sym {
            val: v,
            known: u64::MAX,
            mb: 0,
            sh: 0,
            dep: 0,
        }
    }

    /// A value about which nothing is known, depending on these mark bits.
    pub const fn unknown(dep: u32) -> Sym {
        Sym {
            val: 0,
            known: 0,
            mb: 0,
            sh: 0,
            dep,
        }
    }

    /// The entry mark itself: 32 bits copied from the mark, the upper 32 zero.
    pub const fn mark() -> Sym {
        Sym {
            val: 0,
            known: !LOW32,
            mb: LOW32,
            sh: 0,
            dep: u32::MAX,
        }
    }

    /// The constant value, if every bit is known.
    pub fn as_const(&self) -> Option<u64> {
        (self.known == u64::MAX).then_some(self.val)
    }

    /// Bits neither known nor a mark copy.
    pub fn unknown_bits(&self) -> u64 {
        !(self.known | self.mb)
    }

    /// The mark bits copied into this value (at their own or a shifted position).
    pub fn mark_bits(&self) -> u32 {
        mark_bits(self.mb, self.sh)
    }

    /// Restores the invariants: `dep` is exact when no bit is unknown, `sh` is 0 when no bit
    /// copies the mark.
    fn norm(mut self) -> Sym {
        self.val &= self.known;
        self.mb &= !self.known;
        if self.mb == 0 {
            self.sh = 0;
        }
        if self.unknown_bits() == 0 {
            self.dep = self.mark_bits();
        } else {
            self.dep |= self.mark_bits();
        }
        self
    }

    /// The least upper bound: bits known equal in both stay known, mark copies with the same
    /// shift stay copies, everything else becomes unknown.
    pub fn join(&self, o: &Sym) -> Sym {
        let known = self.known & o.known & !(self.val ^ o.val);
        let mb = if self.sh == o.sh { self.mb & o.mb } else { 0 };
        Sym {
            val: self.val & known,
            known,
            mb,
            sh: self.sh,
            dep: self.dep | o.dep,
        }
        .norm()
    }

    /// Keeps the low 32 bits and zero-extends (every 32-bit ALU result, 32-bit loads).
    pub fn zext32(&self) -> Sym {
        let s = Sym {
            val: self.val & LOW32,
            known: self.known | !LOW32,
            mb: self.mb & LOW32,
            ..*self
        };
        s.norm()
    }

    /// Keeps the low `bytes` bytes and zero-extends.
    pub fn zext(&self, bytes: u8) -> Sym {
        if bytes >= 8 {
            return *self;
        }
        let m = (1u64 << (u32::from(bytes) * 8)) - 1;
        Sym {
            val: self.val & m,
            known: self.known | !m,
            mb: self.mb & m,
            ..*self
        }
        .norm()
    }

    /// Sign-extends from bit `bits - 1`.
    pub fn sext(&self, bits: u32) -> Sym {
        if bits >= 64 {
            return *self;
        }
        let sign = 1u64 << (bits - 1);
        let low = (sign << 1) - 1;
        let high = !low;
        let mut s = Sym {
            val: self.val & low,
            known: self.known & low,
            mb: self.mb & low,
            ..*self
        };
        if self.known & sign != 0 {
            s.known |= high;
            if self.val & sign != 0 {
                s.val |= high;
            }
        }
        // A replicated mark bit is not a positional copy: the high bits stay unknown.
        s.norm()
    }

    fn known0(&self) -> u64 {
        self.known & !self.val
    }

    fn known1(&self) -> u64 {
        self.known & self.val
    }

    /// Combines the mark copies of two operands that survive an operation (`a_pass` of `a`'s,
    /// `b_pass` of `b`'s, `both` where both copy the same mark bit): one shift only.
    fn copies(a: &Sym, a_pass: u64, b: &Sym, b_pass: u64, both: u64) -> (u64, i8) {
        let a_mb = a.mb & a_pass;
        let b_mb = b.mb & b_pass;
        let same = if a.sh == b.sh { a.mb & b.mb & both } else { 0 };
        if a_mb | same == 0 {
            (b_mb, b.sh)
        } else if b_mb == 0 || a.sh == b.sh {
            (a_mb | same | b_mb, a.sh)
        } else {
            (a_mb | same, a.sh)
        }
    }

    /// `a & b`.
    pub fn and(&self, o: &Sym) -> Sym {
        let k0 = self.known0() | o.known0();
        let k1 = self.known1() & o.known1();
        let known = k0 | k1;
        let (mb, sh) = Self::copies(self, o.known1(), o, self.known1(), u64::MAX);
        Sym {
            val: k1,
            known,
            mb: mb & !known,
            sh,
            dep: self.dep | o.dep,
        }
        .norm()
    }

    /// `a | b`.
    pub fn or(&self, o: &Sym) -> Sym {
        let k1 = self.known1() | o.known1();
        let k0 = self.known0() & o.known0();
        let known = k0 | k1;
        let (mb, sh) = Self::copies(self, o.known0(), o, self.known0(), u64::MAX);
        Sym {
            val: k1,
            known,
            mb: mb & !known,
            sh,
            dep: self.dep | o.dep,
        }
        .norm()
    }

    /// `a ^ b`.
    pub fn xor(&self, o: &Sym) -> Sym {
        // The same mark bit on both sides cancels.
        let cancel = if self.sh == o.sh { self.mb & o.mb } else { 0 };
        let known = (self.known & o.known) | cancel;
        let val = (self.val ^ o.val) & self.known & o.known;
        let (mb, sh) = Self::copies(self, o.known0(), o, self.known0(), 0);
        Sym {
            val,
            known,
            mb: mb & !known,
            sh,
            dep: self.dep | o.dep,
        }
        .norm()
    }

    /// `a + b`: the verifier's `tnum_add`, with mark copies counted as unknown (adding zero
    /// keeps them).
    pub fn add(&self, o: &Sym) -> Sym {
        if o.as_const() == Some(0) {
            return *self;
        }
        if self.as_const() == Some(0) {
            return *o;
        }
        let (av, am) = (self.val, !self.known);
        let (bv, bm) = (o.val, !o.known);
        let sm = am.wrapping_add(bm);
        let sv = av.wrapping_add(bv);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | am | bm;
        Sym {
            val: sv & !mu,
            known: !mu,
            mb: 0,
            sh: 0,
            dep: self.dep | o.dep,
        }
        .norm()
    }

    /// `a - b`: the verifier's `tnum_sub`.
    pub fn sub(&self, o: &Sym) -> Sym {
        if o.as_const() == Some(0) {
            return *self;
        }
        let (av, am) = (self.val, !self.known);
        let (bv, bm) = (o.val, !o.known);
        let dv = av.wrapping_sub(bv);
        let alpha = dv.wrapping_add(am);
        let beta = dv.wrapping_sub(bm);
        let chi = alpha ^ beta;
        let mu = chi | am | bm;
        Sym {
            val: dv & !mu,
            known: !mu,
            mb: 0,
            sh: 0,
            dep: self.dep | o.dep,
        }
        .norm()
    }

    /// `a << k` (`k` below 64).
    pub fn shl(&self, k: u32) -> Sym {
        let fill = (1u64 << k) - 1;
        Sym {
            val: self.val << k,
            known: (self.known << k) | fill,
            mb: self.mb << k,
            sh: self.sh.wrapping_sub(k as i8),
            dep: self.dep,
        }
        .norm()
    }

    /// `a >> k`, logical (`k` below 64).
    pub fn shr(&self, k: u32) -> Sym {
        let fill = if k == 0 { 0 } else { !(u64::MAX >> k) };
        Sym {
            val: self.val >> k,
            known: (self.known >> k) | fill,
            mb: self.mb >> k,
            sh: self.sh.wrapping_add(k as i8),
            dep: self.dep,
        }
        .norm()
    }

    /// `a s>> k`, arithmetic (`k` below 64).
    pub fn sar(&self, k: u32) -> Sym {
        let fill = if k == 0 { 0 } else { !(u64::MAX >> k) };
        let mut s = self.shr(k);
        let sign = 1u64 << 63;
        s.known &= !fill;
        if self.known & sign != 0 {
            s.known |= fill;
            if self.val & sign != 0 {
                s.val |= fill;
            }
        }
        s.dep |= self.dep;
        s.norm()
    }

    /// The value once mark bits `mask` are known to be `value` (after a branch on them): bits
    /// that copy those mark bits become known.
    pub fn refine(&self, mask: u32, value: u32) -> Sym {
        let to_value = |m: u32| -> u64 {
            let m = u64::from(m);
            if self.sh >= 0 {
                m.checked_shr(self.sh as u32).unwrap_or(0)
            } else {
                m.checked_shl(u32::from(self.sh.unsigned_abs()))
                    .unwrap_or(0)
            }
        };
        let bits = to_value(mask) & self.mb;
        if bits == 0 {
            return *self;
        }
        Sym {
            val: self.val | (to_value(value) & bits),
            known: self.known | bits,
            mb: self.mb & !bits,
            ..*self
        }
        .norm()
    }

    /// A value computed from these two by an operation the domain does not follow: unknown,
    /// depending on what both depend on.
    pub fn opaque(&self, o: &Sym) -> Sym {
        Sym::unknown(self.dep | o.dep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every concrete value the abstract value allows, for an entry mark `m`, agrees with
    /// `concrete` on the known and copied bits.
    fn holds(s: &Sym, m: u32, concrete: u64) -> bool {
        let copied = {
            let m = u64::from(m);
            let shifted = if s.sh >= 0 { m >> s.sh } else { m << (-s.sh) };
            shifted & s.mb
        };
        (concrete & s.known) == s.val && (concrete & s.mb) == copied
    }

    #[test]
    fn masked_set_keeps_the_other_bits() {
        let m = Sym::mark();
        let v = m
            .and(&Sym::konst(!0xf00u64 & 0xffff_ffff))
            .or(&Sym::konst(0xa00));
        assert_eq!(v.mb, 0xffff_f0ff);
        assert_eq!(v.known & 0xf00, 0xf00);
        assert_eq!(v.val, 0xa00);
        assert_eq!(v.dep, 0xffff_f0ff);
    }

    #[test]
    fn shifted_field_reads_its_mark_bits() {
        let v = Sym::mark().shr(8).and(&Sym::konst(0xf));
        assert_eq!(v.mark_bits(), 0xf00);
        assert_eq!(v.dep, 0xf00);
        assert_eq!(v.mb, 0xf);
        assert_eq!(v.sh, 8);
    }

    #[test]
    fn operations_are_sound_on_samples() {
        let marks = [0u32, 1, 0xf00, 0xdead_beef, 0xffff_ffff, 0x8000_0000];
        let consts = [0u64, 1, 0xff, 0xf00, 0xffff_ffff, 0x8000_0000, 7];
        for &m in &marks {
            let mv = u64::from(m);
            let base = Sym::mark();
            for &c in &consts {
                let k = Sym::konst(c);
                let cases: [(Sym, u64); 8] = [
                    (base.and(&k), mv & c),
                    (base.or(&k), mv | c),
                    (base.xor(&k), mv ^ c),
                    (base.add(&k), mv.wrapping_add(c)),
                    (base.sub(&k), mv.wrapping_sub(c)),
                    (base.shl((c & 31) as u32), mv << (c & 31)),
                    (base.shr((c & 31) as u32), mv >> (c & 31)),
                    (base.xor(&base), 0),
                ];
                for (i, (s, want)) in cases.iter().enumerate() {
                    assert!(holds(s, m, *want), "case {i} m={m:#x} c={c:#x}: {s:?}");
                }
                let j = base.and(&k).join(&base.or(&k));
                assert!(holds(&j, m, mv & c) && holds(&j, m, mv | c));
            }
        }
    }
}
