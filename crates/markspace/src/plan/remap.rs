//! Applying a plan's settings: a knob's new value moves its claims' bits, the registry's rule
//! templates and values the same way the software itself would allocate them.
//!
//! - a **mask** knob: the software allocates its bits lowest first from the mask (Calico Felix:
//!   accept, pass, drop, scratch0, scratch1, then the endpoint mark from the rest), so the n-th
//!   bit of the default mask becomes the n-th bit of the new one; bits beyond the new mask's
//!   size are dropped (the endpoint mark shrinks);
//! - a **bit** knob: that one bit moves;
//! - a **value** knob: the whole value is replaced (decimal forms too: wg-quick's table follows
//!   its FwMark, `51820`).

use crate::model::Bits;
use crate::registry::schema::{Claim, Software};
use crate::registry::Registry;

use super::types::{MoveKind, Plan, PlannedSetting};

/// One knob's change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move {
    kind: MoveKind,
    from: u32,
    to: u32,
}

impl Move {
    /// A move of a knob of `kind` from `from` to `to` (bit numbers, masks or values).
    pub fn new(kind: MoveKind, from: u32, to: u32) -> Move {
        Move { kind, from, to }
    }

    /// The move a planned setting makes, `None` when it is unchanged or unreadable.
    pub fn of(setting: &PlannedSetting) -> Option<Move> {
        if !setting.changed {
            return None;
        }
        let kind = match setting.kind {
            "bit" => MoveKind::Bit,
            "mask" => MoveKind::Mask,
            _ => MoveKind::Value,
        };
        let from = Bits::parse(&setting.default).ok()?.0;
        let to = Bits::parse(&setting.value).ok()?.0;
        Some(Move::new(kind, from, to))
    }

    /// Where bits `x` land.
    pub fn bits(&self, x: u32) -> u32 {
        match self.kind {
            MoveKind::Bit => {
                let (from, to) = (1u32 << (self.from & 31), 1u32 << (self.to & 31));
                if x & from != 0 {
                    (x & !from) | to
                } else {
                    x
                }
            }
            MoveKind::Mask => {
                let outside = x & !self.from;
                let mut moved = 0;
                let targets: Vec<u32> = (0..32)
                    .filter(|b| self.to & (1 << b) != 0)
                    .map(|b| 1u32 << b)
                    .collect();
                let sources = (0..32).filter(|b| self.from & (1 << b) != 0);
                for (rank, b) in sources.enumerate() {
                    if x & (1 << b) != 0 {
                        if let Some(t) = targets.get(rank) {
                            moved |= t;
                        }
                    }
                }
                outside | moved
            }
            MoveKind::Value => {
                if x & self.from == self.from {
                    (x & !self.from) | self.to
                } else {
                    x
                }
            }
        }
    }

    /// A value (not a mask): for value knobs only the exact default value moves.
    fn value(&self, x: u32) -> u32 {
        match self.kind {
            MoveKind::Value if x == self.from => self.to,
            MoveKind::Value => x,
            _ => self.bits(x),
        }
    }

    /// A rule line with every mark number moved: `0x…` numbers for every kind, decimal numbers
    /// equal to the default value for value knobs (a wg-quick table id).
    pub fn line(&self, line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            if boundary && bytes[i].is_ascii_digit() {
                let end = (i..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_alphanumeric())
                    .unwrap_or(bytes.len());
                let word = &line[i..end];
                out.push_str(&self.word(word));
                i = end;
                continue;
            }
            let ch = line[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    fn word(&self, word: &str) -> String {
        if let Some(hex) = word.strip_prefix("0x") {
            if let Ok(v) = u32::from_str_radix(hex, 16) {
                let moved = self.value(v);
                return if moved == v {
                    word.to_string()
                } else {
                    format!("0x{moved:x}")
                };
            }
        } else if self.kind == MoveKind::Value {
            if let Ok(v) = word.parse::<u32>() {
                if v == self.from {
                    return self.to.to_string();
                }
            }
        }
        word.to_string()
    }
}

/// The moves a plan makes to one software.
pub fn moves_of(plan: &Plan, software: &str) -> Vec<Move> {
    plan.settings
        .iter()
        .filter(|s| s.software == software)
        .filter_map(Move::of)
        .collect()
}

fn move_claim(c: &mut Claim, moves: &[Move]) {
    for m in moves {
        c.bits = Bits(m.bits(c.bits.0));
        for v in &mut c.values {
            v.value = Bits(m.value(v.value.0));
        }
    }
}

/// One entry with the plan's moves applied to its claims, values, signature values and rule
/// templates.
pub fn planned_software(sw: &Software, moves: &[Move]) -> Software {
    let mut sw = sw.clone();
    if moves.is_empty() {
        return sw;
    }
    for c in &mut sw.claims {
        move_claim(c, moves);
    }
    for v in &mut sw.signatures.values {
        *v = Bits(moves.iter().fold(v.0, |x, m| m.value(x)));
    }
    for t in &mut sw.signatures.ip_rule_tables {
        *t = moves.iter().fold(t.clone(), |x, m| m.line(&x));
    }
    for r in &mut sw.rules {
        r.text = moves.iter().fold(r.text.clone(), |t, m| m.line(&t));
    }
    sw
}

/// The registry as the plan leaves it: every planned software's entry with its settings
/// applied (what `plan --check` audits a node with).
pub fn planned_registry(registry: &Registry, plan: &Plan) -> Registry {
    let mut out = registry.clone();
    for p in &plan.software {
        let moves = moves_of(plan, &p.id);
        if let Some(sw) = registry.get(&p.id) {
            out.replace(planned_software(sw, &moves));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_moves_bits_by_rank() {
        let m = Move::new(MoveKind::Mask, 0xffff_0000, 0xff00_0000);
        assert_eq!(m.bits(0x0001_0000), 0x0100_0000);
        assert_eq!(m.bits(0x000f_0000), 0x0f00_0000);
        // The endpoint mark loses the bits the smaller mask does not have.
        assert_eq!(m.bits(0xffe0_0000), 0xe000_0000);
        assert_eq!(m.bits(0x0000_4000), 0x0000_4000);
    }

    #[test]
    fn a_bit_moves_alone() {
        let m = Move::new(MoveKind::Bit, 14, 3);
        assert_eq!(m.bits(0x4000), 0x8);
        assert_eq!(m.bits(0xc000), 0x8008);
        assert_eq!(
            m.line("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"),
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x8/0x8"
        );
    }

    #[test]
    fn a_value_replaces_hex_and_decimal_forms() {
        let m = Move::new(MoveKind::Value, 51820, 4);
        assert_eq!(
            m.line("32765:\tnot from all fwmark 0xca6c lookup 51820"),
            "32765:\tnot from all fwmark 0x4 lookup 4"
        );
        // Other numbers stay, and a value only moves when it is the whole default.
        assert_eq!(
            m.line("-m mark --mark 0x4000/0x4000"),
            "-m mark --mark 0x4000/0x4000"
        );
        assert_eq!(m.value(0x4000), 0x4000);
    }

    #[test]
    fn lines_keep_words_that_merely_contain_digits() {
        let m = Move::new(MoveKind::Mask, 0xffff_0000, 0xff00_0000);
        assert_eq!(
            m.line("-A cali-PREROUTING -m comment --comment \"cali:x1\" -j MARK --set-xmark 0x0/0xf0000"),
            "-A cali-PREROUTING -m comment --comment \"cali:x1\" -j MARK --set-xmark 0x0/0xf000000"
        );
    }
}
