//! eBPF instructions: decoding the 8-byte encoding and printing it the way `llvm-objdump` and
//! `bpftool prog dump xlated` do (`r2 = *(u32 *)(r1 +8)`).
//!
//! The encoding is the kernel's `struct bpf_insn` (`include/uapi/linux/bpf.h`, documented in
//! `Documentation/bpf/standardization/instruction-set.rst`): opcode byte, destination and source
//! registers in one byte (little-endian objects put `dst` in the low nibble), a signed 16-bit
//! offset and a signed 32-bit immediate. `LD_IMM64` takes two slots.

use std::fmt;

/// Instruction classes (the low three bits of the opcode).
pub(crate) const LD: u8 = 0x00;
pub(crate) const LDX: u8 = 0x01;
pub(crate) const ST: u8 = 0x02;
pub(crate) const STX: u8 = 0x03;
pub(crate) const ALU: u8 = 0x04;
pub(crate) const JMP: u8 = 0x05;
pub(crate) const JMP32: u8 = 0x06;
pub(crate) const ALU64: u8 = 0x07;

/// Memory modes (`BPF_MEM`, `BPF_MEMSX`, `BPF_ATOMIC`, `BPF_IMM`).
pub(crate) const MODE_IMM: u8 = 0x00;
pub(crate) const MODE_MEMSX: u8 = 0x80;
pub(crate) const MODE_ATOMIC: u8 = 0xc0;

/// `src_reg` of a call to another function of the program (`BPF_PSEUDO_CALL`).
pub(crate) const PSEUDO_CALL: u8 = 1;

/// One decoded instruction slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    /// The opcode byte.
    pub code: u8,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10), or a pseudo value for calls and `LD_IMM64`.
    pub src: u8,
    /// Signed offset (jumps, memory accesses).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Decodes one little-endian slot.
    pub fn decode(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The little-endian encoding.
    pub fn encode(&self) -> [u8; 8] {
        let o = self.off.to_le_bytes();
        let i = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            o[0],
            o[1],
            i[0],
            i[1],
            i[2],
            i[3],
        ]
    }

    /// The class (`BPF_LD` … `BPF_ALU64`).
    pub(crate) fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// The ALU or jump operation (high four bits).
    pub(crate) fn op(&self) -> u8 {
        self.code & 0xf0
    }

    /// Whether an ALU or jump instruction takes its operand from `src` (`BPF_X`).
    pub(crate) fn is_x(&self) -> bool {
        self.code & 0x08 != 0
    }

    /// The memory mode of a load or store.
    pub(crate) fn mode(&self) -> u8 {
        self.code & 0xe0
    }

    /// The access size in bytes of a load or store.
    pub(crate) fn size(&self) -> u8 {
        match self.code & 0x18 {
            0x00 => 4,
            0x08 => 2,
            0x10 => 1,
            _ => 8,
        }
    }

    /// Whether this is the first slot of `LD_IMM64` (`0x18`), which uses two slots.
    pub(crate) fn is_ld_imm64(&self) -> bool {
        self.code == (LD | MODE_IMM | 0x18)
    }
}

/// A slice of instructions printed one per line.
pub(crate) struct Show<'a> {
    pub(crate) insns: &'a [Insn],
    pub(crate) pc: usize,
}

fn size_name(size: u8) -> &'static str {
    match size {
        1 => "u8",
        2 => "u16",
        4 => "u32",
        _ => "u64",
    }
}

const ALU_OPS: [&str; 16] = [
    "+=", "-=", "*=", "/=", "|=", "&=", "<<=", ">>=", "neg", "%=", "^=", "=", "s>>=", "end", "?",
    "?",
];
const JMP_OPS: [&str; 16] = [
    "goto", "==", ">", ">=", "&", "!=", "s>", "s>=", "call", "exit", "<", "<=", "s<", "s<=", "?",
    "?",
];

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(i) = self.insns.get(self.pc) else {
            return Ok(());
        };
        let r = if i.class() == ALU { "w" } else { "r" };
        let operand = |f: &mut fmt::Formatter<'_>| {
            if i.is_x() {
                write!(f, "{r}{}", i.src)
            } else {
                write!(f, "{}", i.imm)
            }
        };
        match i.class() {
            ALU | ALU64 => {
                let op = ALU_OPS[(i.op() >> 4) as usize];
                match op {
                    "neg" => write!(f, "{r}{} = -{r}{}", i.dst, i.dst),
                    "end" => write!(f, "{r}{} = bswap{}({r}{})", i.dst, i.imm, i.dst),
                    _ => {
                        write!(f, "{r}{} {op} ", i.dst)?;
                        operand(f)
                    }
                }
            }
            JMP | JMP32 => {
                let op = JMP_OPS[(i.op() >> 4) as usize];
                let w = if i.class() == JMP32 { "w" } else { "r" };
                match op {
                    "exit" => f.write_str("exit"),
                    "call" if i.src == PSEUDO_CALL => write!(f, "call pc{:+}", i.imm),
                    "call" => write!(f, "call {}", i.imm),
                    "goto" if i.class() == JMP32 => write!(f, "gotol {:+}", i.imm),
                    "goto" => write!(f, "goto {:+}", i.off),
                    _ => {
                        write!(f, "if {w}{} {op} ", i.dst)?;
                        if i.is_x() {
                            write!(f, "{w}{}", i.src)?;
                        } else {
                            write!(f, "{}", i.imm)?;
                        }
                        write!(f, " goto {:+}", i.off)
                    }
                }
            }
            LDX => write!(
                f,
                "r{} = *({} *)(r{} {:+})",
                i.dst,
                size_name(i.size()),
                i.src,
                i.off
            ),
            STX if i.mode() == MODE_ATOMIC => write!(
                f,
                "atomic {:#x} *({} *)(r{} {:+}), r{}",
                i.imm,
                size_name(i.size()),
                i.dst,
                i.off,
                i.src
            ),
            STX => write!(
                f,
                "*({} *)(r{} {:+}) = r{}",
                size_name(i.size()),
                i.dst,
                i.off,
                i.src
            ),
            ST => write!(
                f,
                "*({} *)(r{} {:+}) = {}",
                size_name(i.size()),
                i.dst,
                i.off,
                i.imm
            ),
            _ if i.is_ld_imm64() => {
                let hi = self.insns.get(self.pc + 1).map_or(0, |n| n.imm as u32);
                let v = (u64::from(hi) << 32) | u64::from(i.imm as u32);
                write!(f, "r{} = {v:#x} ll", i.dst)
            }
            _ => write!(f, "ld {:#04x}", i.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_prints_a_mark_store() {
        let i = Insn::decode([0x63, 0x21, 0x08, 0, 0, 0, 0, 0]);
        assert_eq!((i.dst, i.src, i.off), (1, 2, 8));
        assert_eq!(i.encode(), [0x63, 0x21, 0x08, 0, 0, 0, 0, 0]);
        let s = Show { insns: &[i], pc: 0 }.to_string();
        assert_eq!(s, "*(u32 *)(r1 +8) = r2");
    }
}
