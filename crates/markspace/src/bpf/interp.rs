//! The abstract interpreter: what one program does to the mark, on every path.
//!
//! A forward data-flow analysis over the instructions, one abstract [`State`] per basic-block
//! entry: registers and spilled stack slots hold [`Val`]s (known bits with mark copies, or a
//! pointer to the context or the stack), and the mark itself is a [`Sym`] over the mark the
//! program started with. States join where paths meet; a block visited many times is widened
//! (its scalars forget their known bits), so bounded loops end. A branch whose outcome the known
//! bits decide follows one edge only.
//!
//! Calls: a helper or kfunc clobbers `r0`–`r5` and whatever stack its pointer arguments reach;
//! no helper writes `skb->mark` (`net/core/filter.c`). A call to a function of the program
//! (`BPF_PSEUDO_CALL`) is analysed in place, with its own stack frame, once per distinct
//! entry state. `bpf_tail_call` may leave the program: the mark at that point is an exit.
//!
//! Soundness against what the analysis cannot see: a verified program can only reach the
//! context through a pointer derived from `r1` with constant offsets, so context writes are
//! found exactly while that pointer is tracked. If it is lost (joined with another pointer,
//! spilled where the stack is not tracked), the analysis runs again treating every store
//! through an unknown pointer as a possible write of any mark bit. Limits (instructions
//! executed, call depth) end in the same conservative answer, never a smaller one.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use super::insn::*;
use super::sym::Sym;
use crate::model::{Field, MarkRead, MarkWrite, ReadTest, WriteOp, ALL_BITS};

/// What a register or stack slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Val {
    /// A number.
    Scalar(Sym),
    /// The context (`struct __sk_buff *`, `struct bpf_sock *`, or the kernel's own struct in
    /// translated code) at a byte offset, if the offset is known.
    Ctx(Option<i32>),
    /// The stack of call frame `.0`, at an offset from its frame pointer.
    Stack(u8, Option<i32>),
    /// Another pointer (packet, map value, socket), or a value that may be any pointer.
    Ptr,
}

const UNINIT: Val = Val::Scalar(Sym::unknown(0));

impl Val {
    fn scalar(&self) -> Sym {
        match self {
            Val::Scalar(s) => *s,
            _ => Sym::unknown(0),
        }
    }

    fn dep(&self) -> u32 {
        match self {
            Val::Scalar(s) => s.dep,
            _ => 0,
        }
    }
}

/// One spilled value on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Slot {
    frame: u8,
    off: i32,
    size: u8,
    val: Val,
}

/// The abstract machine state at one instruction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct State {
    regs: [Val; 11],
    /// Tracked stack slots, sorted by (frame, offset).
    stack: Vec<Slot>,
    /// The current mark, over the entry mark.
    mark: Sym,
    /// The call depth (0 in the program's own function).
    depth: u8,
}

/// One write to the mark, joined over every time the analysis passed its instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WriteRec {
    /// Bits the write leaves as they were.
    kept: u32,
    /// Bits it sets to a constant, and that constant.
    konst: u32,
    val: u32,
    /// Mark bits its data-dependent bits depend on.
    dep: u32,
}

impl WriteRec {
    fn of(old: &Sym, new: &Sym) -> WriteRec {
        let same_known = old.known & new.known & !(old.val ^ new.val);
        let same_copy = if old.sh == new.sh { old.mb & new.mb } else { 0 };
        let kept = ((same_known | same_copy) & 0xffff_ffff) as u32;
        let konst = (new.known & 0xffff_ffff) as u32 & !kept;
        WriteRec {
            kept,
            konst,
            val: new.val as u32 & konst,
            dep: if !(kept | konst) != 0 { new.dep } else { 0 },
        }
    }

    fn join(&self, o: &WriteRec) -> WriteRec {
        let kept = self.kept & o.kept;
        let konst = self.konst & o.konst & !(self.val ^ o.val);
        WriteRec {
            kept,
            konst,
            val: self.val & konst,
            dep: self.dep | o.dep,
        }
    }

    fn to_write(self, field: Field) -> MarkWrite {
        let unknown = !(self.kept | self.konst);
        let op = if unknown == 0 {
            WriteOp::Const {
                keep: self.kept,
                xor: self.val,
            }
        } else {
            WriteOp::DataDependent { bits: !self.kept }
        };
        MarkWrite { field, op }
    }
}

/// What one program does to the mark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Every instruction that reads the mark into a decision or out of the program, with how
    /// (in instruction order).
    pub reads: Vec<(usize, MarkRead)>,
    /// Every instruction that writes the mark, as the audit's algebra (in instruction order).
    /// Writes that leave every bit as it was are left out.
    pub writes: Vec<(usize, MarkWrite)>,
    /// The mark when the program ends, over the entry mark (`None`: no path ends).
    pub exit_mark: Option<Sym>,
    /// Set when a limit was reached and the answer is the conservative one.
    pub limited: Option<&'static str>,
}

impl Effects {
    /// Bits the program may read.
    pub fn read_bits(&self) -> u32 {
        self.reads.iter().fold(0, |a, (_, r)| a | r.bits())
    }

    /// Bits the program may write.
    pub fn written_bits(&self) -> u32 {
        self.writes.iter().fold(0, |a, (_, w)| a | w.bits())
    }
}

/// Instructions executed by one analysis before it gives the conservative answer.
const STEP_LIMIT: u64 = 40_000_000;
/// Visits of one block after which its scalars are widened, and its mark after four times
/// as many.
const WIDEN_AFTER: u32 = 16;
/// Distinct states kept apart at one block entry before they are joined.
const PATHS: usize = 8;
/// The verifier's call depth limit (`MAX_CALL_FRAMES`).
const MAX_DEPTH: u8 = 8;

struct Engine<'a> {
    insns: &'a [Insn],
    leaders: &'a [bool],
    mark_off: Option<i32>,
    field: Field,
    /// Whether the context pointer may have been lost (see the module doc).
    escaped: bool,
    /// Set when a run finds it lost.
    lost: bool,
    reads: BTreeMap<usize, MarkRead>,
    writes: BTreeMap<usize, WriteRec>,
    memo: FxHashMap<(usize, State), Option<State>>,
    steps: u64,
    limited: Option<&'static str>,
}

/// Analyses the program that starts at `entry` of `insns` (with their [`leaders`]), whose context holds the mark at byte offset
/// `mark_off` (`None`: its context has no mark), starting from `entry_mark`
/// ([`Sym::mark`] for any mark, a constant for one).
pub fn analyse(
    insns: &[Insn],
    leaders: &[bool],
    entry: usize,
    mark_off: Option<i32>,
    entry_mark: Sym,
) -> Effects {
    let mut escaped = false;
    loop {
        let mut e = Engine {
            insns,
            leaders,
            mark_off,
            field: Field::Mark,
            escaped,
            lost: false,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            memo: FxHashMap::default(),
            steps: 0,
            limited: None,
        };
        let mut regs = [UNINIT; 11];
        regs[1] = Val::Ctx(Some(0));
        regs[10] = Val::Stack(0, Some(0));
        let start = State {
            regs,
            stack: Vec::new(),
            mark: entry_mark.zext32(),
            depth: 0,
        };
        let exit = e.function(entry, start);
        if e.lost && !escaped && e.limited.is_none() {
            escaped = true;
            continue;
        }
        if let Some(why) = e.limited {
            return conservative(entry, why, mark_off.is_some());
        }
        return Effects {
            reads: e.reads.into_iter().collect(),
            writes: e
                .writes
                .into_iter()
                .map(|(pc, w)| (pc, w.to_write(e.field)))
                .filter(|(_, w)| w.bits() != 0)
                .collect(),
            exit_mark: exit.map(|s| s.mark),
            limited: None,
        };
    }
}

/// The answer when the analysis gave up: any bit may be read and written.
fn conservative(entry: usize, why: &'static str, has_mark: bool) -> Effects {
    if !has_mark {
        return Effects {
            limited: Some(why),
            ..Effects::default()
        };
    }
    Effects {
        reads: vec![(
            entry,
            MarkRead {
                field: Field::Mark,
                test: ReadTest::Opaque { mask: ALL_BITS },
                invert: false,
            },
        )],
        writes: vec![(
            entry,
            MarkWrite {
                field: Field::Mark,
                op: WriteOp::DataDependent { bits: ALL_BITS },
            },
        )],
        exit_mark: Some(Sym::unknown(ALL_BITS)),
        limited: Some(why),
    }
}

/// Block leaders of some code (`analyse` takes them): jump targets and the instructions
/// after jumps.
pub fn leaders(insns: &[Insn]) -> Vec<bool> {
    let mut l = vec![false; insns.len() + 1];
    let mut pc = 0;
    while pc < insns.len() {
        let i = insns[pc];
        let next = if i.is_ld_imm64() { pc + 2 } else { pc + 1 };
        if matches!(i.class(), JMP | JMP32) {
            let op = i.op();
            if op != 0x80 && op != 0x90 && !(op == 0xf0 && i.class() == JMP) {
                let rel = if i.class() == JMP32 && op == 0x00 {
                    i.imm as i64
                } else {
                    i64::from(i.off)
                };
                let t = pc as i64 + 1 + rel;
                if t >= 0 && (t as usize) < l.len() {
                    l[t as usize] = true;
                }
                l[next.min(insns.len())] = true;
            }
        }
        pc = next;
    }
    l
}

fn join_val(a: &Val, b: &Val, lost: &mut bool) -> Val {
    match (a, b) {
        (Val::Scalar(x), Val::Scalar(y)) => Val::Scalar(x.join(y)),
        (Val::Ctx(x), Val::Ctx(y)) => Val::Ctx(if x == y { *x } else { None }),
        (Val::Stack(f, x), Val::Stack(g, y)) if f == g => {
            Val::Stack(*f, if x == y { *x } else { None })
        }
        // A verified program cannot dereference a register that is a number on one of its
        // paths: the pointer of the other path is what any dereference sees.
        (p @ (Val::Ctx(_) | Val::Stack(..)), Val::Scalar(_))
        | (Val::Scalar(_), p @ (Val::Ctx(_) | Val::Stack(..))) => *p,
        (Val::Ctx(_), _) | (_, Val::Ctx(_)) => {
            *lost = true;
            Val::Ptr
        }
        _ => Val::Ptr,
    }
}

impl State {
    fn join(&self, o: &State, lost: &mut bool) -> State {
        let mut regs = self.regs;
        for (r, b) in regs.iter_mut().zip(&o.regs) {
            *r = join_val(r, b, lost);
        }
        let same = |s: &Slot, t: &Slot| (t.frame, t.off, t.size) == (s.frame, s.off, s.size);
        let pointer = |s: &Slot| matches!(s.val, Val::Ctx(_) | Val::Stack(..));
        let mut stack: Vec<Slot> = self
            .stack
            .iter()
            .filter_map(|s| match o.stack.iter().find(|t| same(s, t)) {
                Some(t) => Some(Slot {
                    val: join_val(&s.val, &t.val, lost),
                    ..*s
                }),
                // A pointer spilled on one path only: a verified program can only fill it
                // as a pointer on the paths that spilled it (elsewhere the slot is
                // uninitialised or a number), so the pointer is what any dereference sees.
                None => pointer(s).then_some(*s),
            })
            .collect();
        for t in o.stack.iter().filter(|t| pointer(t)) {
            if !self.stack.iter().any(|s| same(s, t)) {
                let k = stack.partition_point(|s| (s.frame, s.off) < (t.frame, t.off));
                stack.insert(k, *t);
            }
        }
        State {
            regs,
            stack,
            mark: self.mark.join(&o.mark),
            depth: self.depth,
        }
    }

    /// Whether joining `s` into this state changes nothing. The registers and the mark are
    /// compared first, without allocating: most states that are not covered differ there.
    fn covers(&self, s: &State, lost: &mut bool) -> bool {
        let mut ignored = false;
        self.mark.join(&s.mark) == self.mark
            && self
                .regs
                .iter()
                .zip(&s.regs)
                .all(|(a, b)| join_val(a, b, &mut ignored) == *a)
            && self.join(s, lost) == *self
    }

    fn widen(&mut self, mark_too: bool) {
        let forget = |v: &mut Val| {
            if let Val::Scalar(s) = v {
                *s = Sym::unknown(s.dep);
            }
        };
        self.regs.iter_mut().for_each(forget);
        self.stack.iter_mut().for_each(|s| forget(&mut s.val));
        if mark_too {
            self.mark = Sym::unknown(self.mark.dep).zext32();
        }
    }

    /// The state once mark bits `mask` are known to be `value`.
    fn refined(&self, mask: u32, value: u32) -> State {
        let refine = |v: &Val| match v {
            Val::Scalar(s) => Val::Scalar(s.refine(mask, value)),
            p => *p,
        };
        State {
            regs: self.regs.map(|v| refine(&v)),
            stack: self
                .stack
                .iter()
                .map(|s| Slot {
                    val: refine(&s.val),
                    ..*s
                })
                .collect(),
            mark: self.mark.refine(mask, value),
            depth: self.depth,
        }
    }

    fn clobber_frame(&mut self, frame: u8) {
        self.stack.retain(|s| s.frame != frame);
    }
}

/// How a conditional jump compares, or `None` for an operation it does not decide.
fn decide(op: u8, a: &Val, b: &Val, wide: bool) -> Option<bool> {
    let (x, y) = match (a, b) {
        (Val::Scalar(x), Val::Scalar(y)) => (*x, *y),
        // The context and the stack are never NULL.
        (Val::Ctx(_) | Val::Stack(..), Val::Scalar(y)) if y.as_const() == Some(0) => {
            return match op {
                0x10 => Some(false),
                0x50 => Some(true),
                _ => None,
            }
        }
        _ => return None,
    };
    let (x, y) = if wide {
        (x, y)
    } else {
        (x.zext32(), y.zext32())
    };
    if let (Some(p), Some(q)) = (x.as_const(), y.as_const()) {
        let (sp, sq) = if wide {
            (p as i64, q as i64)
        } else {
            (i64::from(p as u32 as i32), i64::from(q as u32 as i32))
        };
        return Some(match op {
            0x10 => p == q,
            0x20 => p > q,
            0x30 => p >= q,
            0x40 => p & q != 0,
            0x50 => p != q,
            0x60 => sp > sq,
            0x70 => sp >= sq,
            0xa0 => p < q,
            0xb0 => p <= q,
            0xc0 => sp < sq,
            0xd0 => sp <= sq,
            _ => return None,
        });
    }
    let differ = x.known & y.known & (x.val ^ y.val) != 0;
    let (xmin, xmax) = (x.val, x.val | !x.known);
    let (ymin, ymax) = (y.val, y.val | !y.known);
    match op {
        0x10 if differ => Some(false),
        0x50 if differ => Some(true),
        0x40 if x.val & y.val != 0 => Some(true),
        0x40 if xmax & ymax == 0 => Some(false),
        0x20 if xmin > ymax => Some(true),
        0x20 if xmax <= ymin => Some(false),
        0x30 if xmin >= ymax => Some(true),
        0x30 if xmax < ymin => Some(false),
        0xa0 if xmax < ymin => Some(true),
        0xa0 if xmin >= ymax => Some(false),
        0xb0 if xmax <= ymin => Some(true),
        0xb0 if xmin > ymax => Some(false),
        _ => None,
    }
}

/// For `a == b` with one side a constant and the other only known bits and mark copies: the
/// mark bits the equality fixes and their values.
fn equality(a: &Val, b: &Val, wide: bool) -> Option<(u32, u32)> {
    let norm = |v: &Val| match v {
        Val::Scalar(s) if wide => Some(*s),
        Val::Scalar(s) => Some(s.zext32()),
        _ => None,
    };
    let (x, y) = (norm(a)?, norm(b)?);
    let (m, c) = match (x.as_const(), y.as_const()) {
        (None, Some(c)) => (x, c),
        (Some(c), None) => (y, c),
        _ => return None,
    };
    if m.unknown_bits() != 0 || m.mb == 0 {
        return None;
    }
    Some((m.mark_bits(), to_mark(c & m.mb, m.sh)))
}

/// Maps value bits that copy the mark (shift `sh`) to the mark bits they copy.
fn to_mark(bits: u64, sh: i8) -> u32 {
    Sym {
        val: 0,
        known: 0,
        mb: bits,
        sh,
        dep: 0,
    }
    .mark_bits()
}

/// The read a conditional jump makes of the mark, if its operands depend on it.
fn branch_read(op: u8, a: &Val, b: &Val, wide: bool, field: Field) -> Option<MarkRead> {
    let norm = |v: &Val| {
        let s = v.scalar();
        if wide {
            s
        } else {
            s.zext32()
        }
    };
    let (x, y) = (norm(a), norm(b));
    let dep = a.dep() | b.dep();
    if dep == 0 {
        return None;
    }
    let (m, c) = match (x.as_const(), y.as_const()) {
        (None, Some(c)) => (x, c),
        (Some(c), None) => (y, c),
        _ => (x, 0),
    };
    let clean =
        m.unknown_bits() == 0 && m.mb != 0 && (x.as_const().is_some() ^ y.as_const().is_some());
    let test = match op {
        0x10 | 0x50 if clean => ReadTest::Equals {
            value: to_mark(c & m.mb, m.sh),
            mask: m.mark_bits(),
        },
        0x40 if clean => ReadTest::AnyBit {
            mask: to_mark(c & m.mb, m.sh),
        },
        _ => ReadTest::Opaque { mask: dep },
    };
    Some(MarkRead {
        field,
        test,
        invert: op == 0x50,
    })
}

impl Engine<'_> {
    fn read(&mut self, pc: usize, r: MarkRead) {
        let joined = match self.reads.get(&pc) {
            None => r,
            Some(old) if *old == r => r,
            Some(old) => MarkRead {
                field: r.field,
                test: ReadTest::Opaque {
                    mask: old.bits() | r.bits(),
                },
                invert: false,
            },
        };
        self.reads.insert(pc, joined);
    }

    fn opaque_read(&mut self, pc: usize, dep: u32) {
        if dep != 0 && self.mark_off.is_some() {
            self.read(
                pc,
                MarkRead {
                    field: self.field,
                    test: ReadTest::Opaque { mask: dep },
                    invert: false,
                },
            );
        }
    }

    fn write(&mut self, pc: usize, st: &mut State, new: Sym) {
        let new = new.zext32();
        let rec = WriteRec::of(&st.mark, &new);
        let rec = match self.writes.get(&pc) {
            Some(old) => old.join(&rec),
            None => rec,
        };
        self.writes.insert(pc, rec);
        // Mark bits copied to another position are read; bits kept in place are not.
        if new.sh != 0 {
            let moved = Sym {
                mb: new.mb & !u64::from(rec.kept),
                ..new
            };
            self.opaque_read(pc, moved.mark_bits());
        }
        st.mark = new;
    }

    /// Analyses one function from `entry` and returns the join of its exit states.
    ///
    /// Each block entry keeps up to [`PATHS`] distinct states before it joins them (the
    /// verifier, too, explores paths apart): a short loop over constants runs iteration by
    /// iteration and a branch on a known mark stays exact.
    fn function(&mut self, entry: usize, start: State) -> Option<State> {
        let key = (entry, start.clone());
        if let Some(done) = self.memo.get(&key) {
            return done.clone();
        }
        let mut states: FxHashMap<usize, Vec<(State, u32)>> = FxHashMap::default();
        let mut work: BTreeSet<(usize, usize)> = BTreeSet::new();
        states.insert(entry, vec![(start, 0)]);
        work.insert((entry, 0));
        let mut exit: Option<State> = None;
        while let Some((pc, k)) = work.pop_first() {
            if self.limited.is_some() {
                return None;
            }
            let Some((st, _)) = states.get(&pc).and_then(|v| v.get(k)) else {
                continue;
            };
            let st = st.clone();
            let mut out = Vec::new();
            self.block(pc, st, &mut out, &mut exit);
            for (to, s) in out {
                if to >= self.insns.len() {
                    continue;
                }
                let have = states.entry(to).or_default();
                let mut lost = false;
                if have
                    .iter()
                    .any(|(old, _)| old == &s || old.covers(&s, &mut lost))
                {
                    self.lost |= lost;
                    continue;
                }
                if have.len() < PATHS {
                    have.push((s, 0));
                    work.insert((to, have.len() - 1));
                    continue;
                }
                let last = PATHS - 1;
                let (old, visits) = &mut have[last];
                let mut joined = old.join(&s, &mut lost);
                self.lost |= lost;
                *visits += 1;
                if *visits > WIDEN_AFTER {
                    joined.widen(*visits > 4 * WIDEN_AFTER);
                }
                *old = joined;
                work.insert((to, last));
            }
        }
        self.memo.insert(key, exit.clone());
        exit
    }

    fn add_exit(&mut self, exit: &mut Option<State>, st: State) {
        *exit = Some(match exit.take() {
            None => st,
            Some(e) => {
                let mut lost = false;
                let j = e.join(&st, &mut lost);
                self.lost |= lost;
                j
            }
        });
    }

    /// Runs one basic block from `pc`; successors go to `out`, exits to `exit`.
    fn block(
        &mut self,
        mut pc: usize,
        mut st: State,
        out: &mut Vec<(usize, State)>,
        exit: &mut Option<State>,
    ) {
        loop {
            self.steps += 1;
            if self.steps > STEP_LIMIT {
                self.limited = Some("instruction budget");
                return;
            }
            let Some(&i) = self.insns.get(pc) else {
                return;
            };
            let next = if i.is_ld_imm64() { pc + 2 } else { pc + 1 };
            match i.class() {
                ALU | ALU64 => self.alu(pc, &i, &mut st),
                LD => self.ld(pc, &i, &mut st),
                LDX => self.ldx(pc, &i, &mut st),
                ST | STX => self.store(pc, &i, &mut st),
                _ => {
                    // JMP / JMP32
                    let op = i.op();
                    match op {
                        0x90 => {
                            if st.depth == 0 {
                                self.opaque_read(pc, st.regs[0].dep());
                            }
                            self.add_exit(exit, st);
                            return;
                        }
                        0x80 => {
                            if !self.call(pc, &i, &mut st, exit) {
                                return;
                            }
                        }
                        0xf0 if i.class() == JMP => {
                            // The kernel's internal tail call (translated code): on success
                            // the program ends with the mark as it is.
                            self.add_exit(exit, st.clone());
                            for r in 0..=5 {
                                st.regs[r] = UNINIT;
                            }
                        }
                        0x00 => {
                            let rel = if i.class() == JMP32 {
                                i.imm as i64
                            } else {
                                i64::from(i.off)
                            };
                            out.push(((pc as i64 + 1 + rel).max(0) as usize, st));
                            return;
                        }
                        _ => {
                            let wide = i.class() == JMP;
                            let a = st.regs[usize::from(i.dst).min(10)];
                            let b = if i.is_x() {
                                st.regs[usize::from(i.src).min(10)]
                            } else {
                                Val::Scalar(Sym::konst(i64::from(i.imm) as u64))
                            };
                            if self.mark_off.is_some() {
                                if let Some(r) = branch_read(op, &a, &b, wide, self.field) {
                                    self.read(pc, r);
                                }
                            }
                            let target = (pc as i64 + 1 + i64::from(i.off)).max(0) as usize;
                            match decide(op, &a, &b, wide) {
                                Some(true) => out.push((target, st)),
                                Some(false) => out.push((next, st)),
                                None => {
                                    // On the edge where a masked mark field equals a constant,
                                    // every copy of those mark bits is known.
                                    let (eq, ne) = match (op, equality(&a, &b, wide)) {
                                        (0x10 | 0x50, Some((m, v))) => (st.refined(m, v), st),
                                        _ => (st.clone(), st),
                                    };
                                    let (taken, fall) =
                                        if op == 0x50 { (ne, eq) } else { (eq, ne) };
                                    out.push((target, taken));
                                    out.push((next, fall));
                                }
                            }
                            return;
                        }
                    }
                }
            }
            pc = next;
            if self.leaders.get(pc).copied().unwrap_or(true) {
                out.push((pc, st));
                return;
            }
        }
    }

    fn set(st: &mut State, r: u8, v: Val) {
        if let Some(slot) = st.regs.get_mut(usize::from(r)) {
            if r != 10 {
                *slot = v;
            }
        }
    }

    fn alu(&mut self, _pc: usize, i: &Insn, st: &mut State) {
        let wide = i.class() == ALU64;
        let dst = st.regs[usize::from(i.dst).min(10)];
        let src = if i.is_x() {
            st.regs[usize::from(i.src).min(10)]
        } else {
            Val::Scalar(Sym::konst(i64::from(i.imm) as u64))
        };
        let op = i.op();
        // Pointer arithmetic and moves.
        if op == 0xb0 && i.off == 0 {
            let v = match src {
                Val::Scalar(s) if !wide => Val::Scalar(s.zext32()),
                Val::Scalar(s) => Val::Scalar(s),
                p if wide => p,
                _ => UNINIT,
            };
            Self::set(st, i.dst, v);
            return;
        }
        if let (Val::Ctx(_) | Val::Stack(..), true, 0x00 | 0x10) = (dst, wide, op) {
            let k = src.scalar().as_const().map(|k| k as i64);
            let k = k.map(|k| if op == 0x10 { -k } else { k });
            let moved = |o: Option<i32>| -> Option<i32> {
                let n = i64::from(o?) + k?;
                i32::try_from(n).ok()
            };
            let v = match dst {
                Val::Ctx(o) => Val::Ctx(moved(o)),
                Val::Stack(f, o) => Val::Stack(f, moved(o)),
                v => v,
            };
            Self::set(st, i.dst, v);
            return;
        }
        if let Val::Ctx(_) = dst {
            // Other arithmetic on the context pointer: the verifier rejects it.
            self.lost = true;
        }
        let (a, b) = if wide {
            (dst.scalar(), src.scalar())
        } else {
            (dst.scalar().zext32(), src.scalar().zext32())
        };
        let bits = if wide { 64 } else { 32 };
        let shift = |b: &Sym| b.as_const().map(|k| (k & (bits - 1)) as u32);
        let fold = |f: fn(u64, u64) -> u64| match (a.as_const(), b.as_const()) {
            (Some(x), Some(y)) => Sym::konst(f(x, y)),
            _ => a.opaque(&b),
        };
        let signed = i.off == 1;
        let r = match op {
            0x00 => a.add(&b),
            0x10 => a.sub(&b),
            0x20 => fold(u64::wrapping_mul),
            0x30 if signed && wide => fold(|x, y| match y {
                0 => 0,
                _ => (x as i64).wrapping_div(y as i64) as u64,
            }),
            0x30 if signed => fold(|x, y| match y as u32 {
                0 => 0,
                _ => (x as u32 as i32).wrapping_div(y as u32 as i32) as u32 as u64,
            }),
            0x30 => fold(|x, y| x.checked_div(y).unwrap_or(0)),
            0x40 => a.or(&b),
            0x50 => a.and(&b),
            0x60 => match shift(&b) {
                Some(k) => a.shl(k),
                None => a.opaque(&b),
            },
            0x70 => match shift(&b) {
                Some(k) => a.shr(k),
                None => a.opaque(&b),
            },
            0x80 => Sym::konst(0).sub(&a),
            0x90 if signed && wide => fold(|x, y| match y {
                0 => x,
                _ => (x as i64).wrapping_rem(y as i64) as u64,
            }),
            0x90 if signed => fold(|x, y| match y as u32 {
                0 => x,
                _ => (x as u32 as i32).wrapping_rem(y as u32 as i32) as u32 as u64,
            }),
            0x90 => fold(|x, y| x.checked_rem(y).unwrap_or(x)),
            0xa0 => a.xor(&b),
            0xb0 => {
                // MOVSX: sign-extend the low `off` bits of the source.
                let s = src.scalar().sext(i.off.clamp(8, 64) as u32);
                if wide {
                    s
                } else {
                    s.zext32()
                }
            }
            0xc0 => match shift(&b) {
                Some(k) if wide => a.sar(k),
                Some(k) => a.sext(32).sar(k).zext32(),
                None => a.opaque(&b),
            },
            0xd0 => {
                // Byte swaps work on `imm` bits whatever the class: handled apart below.
                Sym::unknown(0)
            }
            _ => a.opaque(&b),
        };
        let r = if op == 0xd0 {
            let width = i.imm.clamp(16, 64) as u8 / 8;
            if i.is_x() || wide {
                match dst.scalar().as_const() {
                    Some(x) => Sym::konst(x.swap_bytes() >> (64 - u32::from(width) * 8)),
                    None => Sym::unknown(dst.dep()),
                }
            } else {
                dst.scalar().zext(width)
            }
        } else if wide {
            r
        } else {
            r.zext32()
        };
        Self::set(st, i.dst, Val::Scalar(r));
    }

    fn ld(&mut self, _pc: usize, i: &Insn, st: &mut State) {
        if i.is_ld_imm64() {
            let v = if i.src == 0 {
                let hi = self.insns.get(_pc + 1).map_or(0, |n| n.imm as u32);
                Val::Scalar(Sym::konst((u64::from(hi) << 32) | u64::from(i.imm as u32)))
            } else {
                Val::Ptr
            };
            Self::set(st, i.dst, v);
        } else {
            // Legacy packet loads (LD_ABS / LD_IND): r0 and the caller-saved registers.
            for r in 0..=5 {
                st.regs[r] = UNINIT;
            }
        }
    }

    /// The mark bytes `[lo, hi)` of an access at `off` with `size` bytes, if it overlaps.
    fn overlap(&self, off: i32, size: u8) -> Option<(i32, i32)> {
        let m = self.mark_off?;
        let lo = off.max(m);
        let hi = (off + i32::from(size)).min(m + 4);
        (lo < hi).then_some((lo, hi))
    }

    fn ldx(&mut self, pc: usize, i: &Insn, st: &mut State) {
        let base = st.regs[usize::from(i.src).min(10)];
        let size = i.size();
        let off = i32::from(i.off);
        let v = match base {
            Val::Ctx(Some(o)) => match self.overlap(o + off, size) {
                Some((lo, hi)) => {
                    let at = o + off;
                    let m = self.mark_off.unwrap_or(0);
                    if lo == at && hi - lo == i32::from(size) {
                        Val::Scalar(st.mark.shr(((lo - m) * 8) as u32).zext(size))
                    } else {
                        let bytes = (((1u64 << ((hi - lo) * 8)) - 1) << ((lo - m) * 8)) as u32;
                        Val::Scalar(Sym::unknown(st.mark.dep & bytes))
                    }
                }
                None => UNINIT,
            },
            Val::Ctx(None) => Val::Scalar(Sym::unknown(st.mark.dep)),
            Val::Stack(f, Some(o)) => load_stack(st, f, o + off, size),
            _ => UNINIT,
        };
        let v = match (v, i.mode()) {
            (Val::Scalar(s), MODE_MEMSX) => Val::Scalar(s.sext(u32::from(size) * 8)),
            (v, _) => v,
        };
        let _ = pc;
        Self::set(st, i.dst, v);
    }

    fn store(&mut self, pc: usize, i: &Insn, st: &mut State) {
        let base = st.regs[usize::from(i.dst).min(10)];
        let size = i.size();
        let off = i32::from(i.off);
        let atomic = i.class() == STX && i.mode() == MODE_ATOMIC;
        let val = if atomic {
            UNINIT
        } else if i.class() == STX {
            st.regs[usize::from(i.src).min(10)]
        } else {
            Val::Scalar(Sym::konst(i64::from(i.imm) as u64))
        };
        if atomic {
            // Fetching atomics load the old value into `src` (or r0 for cmpxchg).
            if i.imm & 0x01 != 0 {
                Self::set(st, i.src, UNINIT);
            }
            if i.imm == 0xf1 {
                st.regs[0] = UNINIT;
            }
        }
        match base {
            Val::Ctx(Some(o)) => {
                let at = o + off;
                if let Some((lo, hi)) = self.overlap(at, size) {
                    let m = self.mark_off.unwrap_or(0);
                    let bytes = ((1u64 << ((hi - lo) * 8)) - 1) << ((lo - m) * 8);
                    let part = if atomic {
                        Sym::unknown(st.mark.dep)
                    } else {
                        val.scalar()
                            .shr(((lo - at) * 8) as u32)
                            .zext((hi - lo) as u8)
                            .shl(((lo - m) * 8) as u32)
                    };
                    let new = st.mark.and(&Sym::konst(!bytes)).or(&part);
                    self.write(pc, st, new);
                } else if !atomic {
                    // Another context field gets a value that may come from the mark.
                    self.opaque_read(pc, val.dep());
                }
            }
            Val::Ctx(None) => {
                let new = st.mark.join(&Sym::unknown(val.dep()));
                self.write(pc, st, new);
            }
            Val::Stack(f, o) => {
                if matches!(val, Val::Ctx(_)) && (size != 8 || o.is_none() || atomic) {
                    self.lost = true;
                }
                match o {
                    Some(o) if !atomic => store_stack(st, f, o + off, size, val),
                    Some(o) => store_stack(st, f, o + off, size, UNINIT),
                    None => st.clobber_frame(f),
                }
            }
            _ => {
                if matches!(val, Val::Ctx(_)) {
                    self.lost = true;
                }
                self.opaque_read(pc, val.dep());
                if self.escaped && self.mark_off.is_some() {
                    let new = st.mark.join(&Sym::unknown(val.dep()));
                    self.write(pc, st, new);
                }
            }
        }
    }

    /// A call; false when the path ends here.
    fn call(&mut self, pc: usize, i: &Insn, st: &mut State, exit: &mut Option<State>) -> bool {
        if i.src == PSEUDO_CALL {
            let target = pc as i64 + 1 + i64::from(i.imm);
            if target < 0 || target as usize >= self.insns.len() {
                return false;
            }
            if st.depth + 1 >= MAX_DEPTH {
                self.limited = Some("call depth");
                return false;
            }
            let mut callee = st.clone();
            callee.depth += 1;
            callee.regs[0] = UNINIT;
            for r in 6..=9 {
                callee.regs[r] = UNINIT;
            }
            callee.regs[10] = Val::Stack(callee.depth, Some(0));
            let Some(back) = self.function(target as usize, callee) else {
                return false;
            };
            let depth = st.depth;
            st.regs[0] = back.regs[0];
            for r in 1..=5 {
                st.regs[r] = UNINIT;
            }
            st.stack = back
                .stack
                .into_iter()
                .filter(|s| s.frame <= depth)
                .collect();
            st.mark = back.mark;
            return true;
        }
        // A helper or kfunc: arguments that depend on the mark leave the program.
        for r in 1..=5 {
            let v = st.regs[r];
            self.opaque_read(pc, v.dep());
            if let Val::Stack(f, _) = v {
                // A map key or a buffer on the stack: what it holds leaves the program too.
                let held = st
                    .stack
                    .iter()
                    .filter(|s| s.frame == f)
                    .fold(0, |a, s| a | s.val.dep());
                self.opaque_read(pc, held);
                st.clobber_frame(f);
            }
        }
        if i.src == 0 && i.imm == 12 {
            // bpf_tail_call: on success the program ends with the mark as it is.
            self.add_exit(exit, st.clone());
        }
        for r in 0..=5 {
            st.regs[r] = UNINIT;
        }
        true
    }
}

fn load_stack(st: &State, f: u8, at: i32, size: u8) -> Val {
    let end = at + i32::from(size);
    let mut dep = 0;
    for s in &st.stack {
        if s.frame != f {
            continue;
        }
        let s_end = s.off + i32::from(s.size);
        if s.off <= at && end <= s_end {
            return match s.val {
                Val::Scalar(v) => Val::Scalar(v.shr(((at - s.off) * 8) as u32).zext(size)),
                p if s.off == at && size == 8 => p,
                _ => UNINIT,
            };
        }
        if s.off < end && at < s_end {
            dep |= s.val.dep();
        }
    }
    Val::Scalar(Sym::unknown(dep))
}

fn store_stack(st: &mut State, f: u8, at: i32, size: u8, val: Val) {
    let end = at + i32::from(size);
    st.stack
        .retain(|s| s.frame != f || s.off + i32::from(s.size) <= at || end <= s.off);
    let val = match val {
        Val::Scalar(s) => Val::Scalar(s.zext(size)),
        p if size == 8 => p,
        _ => UNINIT,
    };
    let slot = Slot {
        frame: f,
        off: at,
        size,
        val,
    };
    let k = st
        .stack
        .partition_point(|s| (s.frame, s.off) < (slot.frame, slot.off));
    st.stack.insert(k, slot);
}

#[cfg(test)]
mod tests;
