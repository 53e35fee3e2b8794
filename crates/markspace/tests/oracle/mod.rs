//! What the two kernel oracles (`kernel_oracle.rs` for iptables, `nft_oracle.rs` for nft)
//! share: a seeded generator of mark-shaped values, the algebra's run of a chain's rules, and
//! the mark operations of one table's chains as markspace parsed them.

use std::collections::HashMap;

use markspace::model::{MarkOp, MarkState, ALL_BITS};
use markspace::ruleset::Ruleset;

/// xorshift64* — tiny, deterministic, good enough to spread values over 32 bits. Each oracle
/// adds its own number spellings.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    /// A 32-bit value shaped like real marks and masks: single bits, contiguous ranges, all,
    /// none, sparse and dense random words.
    pub(crate) fn word(&mut self) -> u32 {
        match self.below(9) {
            0 => 0,
            1 => ALL_BITS,
            2 => 1 << self.below(32),
            3 | 4 => {
                let width = 1 + self.below(32);
                let shift = self.below(33 - width);
                (((1u64 << width) - 1) << shift) as u32
            }
            5 => self.u32() & self.u32(),
            6 => self.u32() | self.u32(),
            _ => self.u32(),
        }
    }
}

/// Runs a case chain through the algebra from an empty packet: whether each rule matched (the
/// packet counter the kernel should show) and the final state.
pub(crate) fn simulate(rules: &[Vec<MarkOp>]) -> Result<(Vec<bool>, MarkState), String> {
    let mut state = MarkState::default();
    let mut matched = Vec::with_capacity(rules.len());
    for ops in rules {
        let mut hit = true;
        for op in ops {
            match op {
                MarkOp::Read(r) => {
                    let x = state.field(r.field);
                    match r.eval(x) {
                        Some(true) => {}
                        Some(false) => {
                            hit = false;
                            break;
                        }
                        None => return Err(format!("opaque read {r:?}")),
                    }
                }
                MarkOp::Write(w) => {
                    if !state.apply(w) {
                        return Err(format!("data-dependent write {w:?}"));
                    }
                }
            }
        }
        matched.push(hit);
    }
    Ok((matched, state))
}

/// The mark operations of every chain of table `table`, by chain name, rule by rule.
pub(crate) fn chains_ops(set: &Ruleset, table: &str) -> HashMap<String, Vec<Vec<MarkOp>>> {
    set.chains
        .iter()
        .filter(|c| &*set.table(c.table).name == table)
        .map(|c| {
            (
                c.name.to_string(),
                c.rules
                    .iter()
                    .map(|r| set.rule(*r).ops().to_vec())
                    .collect(),
            )
        })
        .collect()
}
