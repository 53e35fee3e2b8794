//! eBPF objects: what their programs do to the mark.
//!
//! An ELF object (`clang -target bpf -c prog.c`, Cilium's `bpf_lxc.o`, anything tc or libbpf
//! loads) is binary; [`decode`] reads and relocates it ([`crate::bpf::read_elf`]) and writes it as a listing, one
//! line per instruction with its encoding and its disassembly. The listing is the input's text:
//! evidence points at the instruction that writes the mark (`prog.o:42`), and a saved listing
//! reads back the same. [`parse`] reads a listing and runs the abstract interpreter
//! ([`crate::bpf`]) on every program; each instruction that reads or writes the mark becomes a
//! [`Subsystem::Bpf`] touchpoint named after its program, so attribution (the registry's
//! `programs`) and every finding see it like a netfilter rule.
//!
//! ```text
//! # bpf-object: eBPF programs of an ELF object, relocated by markspace (one line per instruction)
//! program set_mark section tc code 0 entry 0
//! code 0 tc 4
//!      0: b702000037130000  r2 = 4919  ; set_mark+0
//!      1: 6321080000000000  *(u32 *)(r1 +8) = r2  ; set_mark+1
//!      2: b700000000000000  r0 = 0  ; set_mark+2
//!      3: 9500000000000000  exit  ; set_mark+3
//! ```

use std::fmt::Write as _;

use crate::bpf::{section_type, Code, Context, Insn, Object, Program, Show};
use crate::diagnostic::Diagnostic;
use crate::model::MarkOp;
use crate::source::{SourceId, Span};
use crate::touchpoint::{Attach, LoadedProgram, RunMark, Subsystem, TouchContext, Touchpoint};

use super::sink::Sink;
use super::text::LineAt;

/// The first line of a listing.
const HEADER: &str =
    "# bpf-object: eBPF programs of an ELF object, relocated by markspace (one line per instruction)";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether the bytes are a BPF ELF object.
pub(crate) fn detect_bytes(bytes: &[u8]) -> bool {
    crate::bpf::is_bpf_elf(bytes)
}

/// Reads an ELF object into its listing.
pub(crate) fn decode(bytes: &[u8]) -> Result<String, (u64, String)> {
    let object = crate::bpf::read_elf(bytes).map_err(|e| (e.offset, e.message))?;
    Ok(listing(&object))
}

/// The listing of an object.
pub(crate) fn listing(object: &Object) -> String {
    let insns: usize = object.code.iter().map(|c| c.insns.len()).sum();
    let mut out = String::with_capacity(64 + insns * 48 + object.programs.len() * 64);
    out.push_str(HEADER);
    out.push('\n');
    for p in &object.programs {
        let section = object.code.get(p.code).map_or("", |c| &c.section);
        let _ = write!(
            out,
            "program {} section {} code {} entry {}",
            word(&p.name),
            word(section),
            p.code,
            p.entry
        );
        // Translated code reaches the kernel's own structs: say where their mark is.
        match p.context.mark_offset() {
            Some(o) if section_type(section).1 != p.context => {
                let _ = writeln!(out, " mark-offset {o}");
            }
            _ => out.push('\n'),
        }
    }
    for (n, code) in object.code.iter().enumerate() {
        let _ = writeln!(out, "code {n} {} {}", word(&code.section), code.insns.len());
        let mut high = false;
        for (pc, i) in code.insns.iter().enumerate() {
            // By hand: `write!` with format specs was a fifth of reading a 1M-instruction
            // object.
            let digits = pc.to_string();
            for _ in digits.len()..6 {
                out.push(' ');
            }
            out.push_str(&digits);
            out.push_str(": ");
            for b in i.encode() {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            if high {
                out.push_str("  (high 32 bits)\n");
                high = false;
                continue;
            }
            high = i.is_ld_imm64();
            let _ = write!(
                out,
                "  {}",
                Show {
                    insns: &code.insns,
                    pc
                }
            );
            match code.function_of(pc) {
                Some((f, at)) => {
                    let _ = writeln!(out, "  ; {}+{at}", word(f));
                }
                None => out.push('\n'),
            }
        }
    }
    out
}

/// A symbol or section name as one word of a listing line: ELF names may hold anything, and
/// whitespace or control characters would break the line (`_` stands for each).
fn word(name: &str) -> String {
    if name.is_empty() {
        return "-".to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Whether a text is a listing.
pub(crate) fn detect(text: &str) -> bool {
    text.starts_with(HEADER)
}

/// A program line before its code is read.
struct Pending {
    name: String,
    section: String,
    /// The mark's offset in the context, when the listing says (translated code).
    offset: Option<i32>,
    code: usize,
    entry: usize,
    span: Span,
}

/// Reads a listing and adds every mark read and write of its programs as touchpoints.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut pending = Vec::new();
    let mut object = Object::default();
    // Per code block, the span of each instruction line.
    let mut lines: Vec<Vec<Span>> = Vec::new();
    let mut left = 0usize;
    for (at, line) in LineAt::lines(text, source) {
        if at.line == 1 || line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |col: usize, len: usize, what: &str, hint: &str| {
            Diagnostic::error(at.span(col, len.max(1)), what.to_string())
                .with_hint(hint.to_string())
        };
        if left > 0 {
            match instruction(line, lines.last().map_or(0, Vec::len)) {
                Ok(i) => {
                    if let Some(code) = object.code.last_mut() {
                        code.insns.push(i);
                    }
                    if let Some(l) = lines.last_mut() {
                        l.push(at.trimmed(line));
                    }
                }
                Err((col, msg)) => {
                    diags.push(bad(col, line.len().saturating_sub(col), &msg, "an instruction line is `PC: 16 hex digits  disassembly`, PC counting from 0"));
                    return diags;
                }
            }
            left -= 1;
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["program", name, "section", section, "code", code, "entry", entry, rest @ ..]
                if matches!(rest, [] | ["mark-offset", _]) =>
            {
                let offset = match rest {
                    ["mark-offset", o] => match o.parse::<i32>() {
                        Ok(o) => Some(o),
                        Err(_) => {
                            diags.push(bad(0, line.len(), "invalid mark offset", "`mark-offset N`, the byte offset of the mark in the program's context"));
                            continue;
                        }
                    },
                    _ => None,
                };
                let (Ok(code), Ok(entry)) = (code.parse(), entry.parse()) else {
                    diags.push(bad(
                        0,
                        line.len(),
                        "invalid program line",
                        "`program NAME section SECTION code N entry PC`",
                    ));
                    continue;
                };
                pending.push(Pending {
                    name: name.to_string(),
                    section: section.to_string(),
                    offset,
                    code,
                    entry,
                    span: at.trimmed(line),
                });
            }
            ["code", n, section, count] => {
                let (Ok(n), Ok(count)) = (n.parse::<usize>(), count.parse::<usize>()) else {
                    diags.push(bad(
                        0,
                        line.len(),
                        "invalid code line",
                        "`code N SECTION COUNT`",
                    ));
                    return diags;
                };
                if n != object.code.len() {
                    diags.push(bad(
                        5,
                        1,
                        &format!(
                            "code block {n} where block {} comes next",
                            object.code.len()
                        ),
                        "code blocks are numbered from 0 in order",
                    ));
                    return diags;
                }
                object.code.push(Code {
                    section: section.to_string(),
                    insns: Vec::with_capacity(count.min(1 << 24)),
                    functions: Vec::new(),
                    leaders: Default::default(),
                });
                lines.push(Vec::with_capacity(count.min(1 << 24)));
                left = count;
            }
            _ => diags.push(bad(
                0,
                line.len(),
                "not a line of a bpf-object listing",
                "lines are `program …`, `code …` or instructions",
            )),
        }
    }
    if left > 0 {
        let end = text.len();
        let line = 1 + memchr::memchr_iter(b'\n', text.as_bytes()).count() as u32;
        let last = text.lines().last().map_or(0, str::len);
        diags.push(
            Diagnostic::error(
                Span {
                    source,
                    line: line.saturating_sub(u32::from(text.ends_with('\n'))),
                    start: (end - last.min(end)) as u32,
                    len: last as u32,
                },
                format!("the listing ends {left} instructions early"),
            )
            .with_hint("a `code N SECTION COUNT` line is followed by COUNT instruction lines"),
        );
        return diags;
    }
    let object = std::sync::Arc::new(object);
    for p in pending {
        let Some(code) = object.code.get(p.code) else {
            diags.push(Diagnostic::error(
                p.span,
                format!(
                    "program {} names code block {}, which the listing does not have",
                    p.name, p.code
                ),
            ));
            continue;
        };
        if p.entry >= code.insns.len() {
            diags.push(Diagnostic::error(
                p.span,
                format!(
                    "program {} starts at {} of a {}-instruction block",
                    p.name,
                    p.entry,
                    code.insns.len()
                ),
            ));
            continue;
        }
        let (kind, context) = section_type(&p.section);
        let context = match (context, p.offset) {
            (Context::Skb(_), Some(o)) => Context::Skb(o),
            (Context::Sock(_), Some(o)) => Context::Sock(o),
            (c, _) => c,
        };
        let program = Program {
            name: p.name,
            kind: kind.to_string(),
            context,
            code: p.code,
            entry: p.entry,
        };
        let effects = object.effects(&program);
        if let Some(why) = effects.limited {
            diags.push(Diagnostic::warning(p.span, format!("program {}: the analysis reached its {why} limit; it is taken to read and write every mark bit", program.name)));
        }
        let spans = &lines[p.code];
        let mut ops: Vec<(usize, MarkOp)> = effects
            .reads
            .iter()
            .map(|(pc, r)| (*pc, MarkOp::Read(*r)))
            .chain(
                effects
                    .writes
                    .iter()
                    .map(|(pc, w)| (*pc, MarkOp::Write(*w))),
            )
            .collect();
        ops.sort_by_key(|(pc, _)| *pc);
        if !ops.is_empty() {
            sink.programs.push(LoadedProgram {
                name: program.name.clone(),
                attach: Attach::from_name(&p.section),
                span: p.span,
                code: std::sync::Arc::new(Runner {
                    object: object.clone(),
                    program: program.clone(),
                }),
            });
        }
        for (pc, op) in ops {
            sink.touchpoints.push(Touchpoint {
                subsystem: Subsystem::Bpf,
                span: spans.get(pc).copied().unwrap_or(p.span),
                ops: vec![op],
                context: TouchContext {
                    program: Some(program.name.clone()),
                    attach: Attach::from_name(&p.section),
                    ..TouchContext::default()
                },
            });
        }
    }
    diags
}

/// A program of a listing, run by the abstract interpreter from a concrete mark.
#[derive(Debug)]
struct Runner {
    object: std::sync::Arc<Object>,
    program: Program,
}

impl RunMark for Runner {
    fn exit_mark(&self, mark: u32) -> Option<(u32, u32)> {
        let s = self
            .object
            .effects_from(&self.program, crate::bpf::Sym::konst(u64::from(mark)))
            .exit_mark?;
        // Bits known at the exit, and bits that are copies of the (known) entry mark.
        let copied = if s.sh >= 0 {
            u64::from(mark) >> s.sh
        } else {
            u64::from(mark) << -s.sh
        };
        let known = (s.known | s.mb) as u32;
        let value = ((s.val & s.known) | (copied & s.mb & !s.known)) as u32;
        Some((known, value))
    }
}

/// One instruction line: `PC: 16 hex digits …`; on error the column and the message.
fn instruction(line: &str, want: usize) -> Result<Insn, (usize, String)> {
    let lead = line.len() - line.trim_start().len();
    let rest = &line[lead..];
    let Some((pc, after)) = rest.split_once(':') else {
        return Err((
            lead,
            "expected `PC:` at the start of an instruction line".into(),
        ));
    };
    if pc.parse::<usize>().ok() != Some(want) {
        return Err((lead, format!("instruction {pc} where {want} comes next")));
    }
    let col = lead + pc.len() + 1;
    let hex = after.trim_start();
    let col = col + (after.len() - hex.len());
    let digits = hex
        .get(..16)
        .ok_or((col, "expected 16 hex digits".to_string()))?;
    let mut b = [0u8; 8];
    for (k, byte) in b.iter_mut().enumerate() {
        let pair = digits.get(2 * k..2 * k + 2).unwrap_or("");
        *byte = u8::from_str_radix(pair, 16)
            .map_err(|_| (col + 2 * k, format!("`{pair}` is not a hex byte")))?;
    }
    Ok(Insn::decode(b))
}

pub(crate) mod xlated;

#[cfg(test)]
mod tests;
