//! BPF ELF objects (`clang -target bpf -c`) into [`Object`]s, relocated the way libbpf does
//! before loading (`tools/lib/bpf/libbpf.c`: `bpf_object__collect_relos`,
//! `bpf_program__record_reloc`, `bpf_object__reloc_code`).
//!
//! Every executable section but `.text` holds programs: each function symbol in it is one
//! (a section without function symbols is one program named after it). `.text` holds the
//! functions programs call; it is appended to every section that calls into it, and each
//! call's immediate is rewritten to the appended copy. A call relocated against a `.text`
//! symbol targets instruction `symbol value / 8 + imm + 1` of `.text`. `LD_IMM64`
//! instructions with a relocation (maps, global data) are marked as pointers (`src_reg` 1,
//! `BPF_PSEUDO_MAP_FD`), as the loader makes them. CO-RE relocations (`.BTF.ext`) are not
//! applied: programs reach `__sk_buff` through its fixed UAPI layout.

use object::{Object as _, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind};

use super::insn::Insn;
use super::program::{section_type, Code, Object, Program};

/// An ELF file that is not a BPF object markspace can read.
#[derive(Debug, thiserror::Error)]
#[error("byte {offset}: {message}")]
pub struct ElfError {
    /// Where in the file (0 when the ELF reader does not say).
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

fn err(offset: u64, message: impl Into<String>) -> ElfError {
    ElfError {
        offset,
        message: message.into(),
    }
}

/// `EM_BPF` (`include/uapi/linux/elf-em.h`).
const EM_BPF: u16 = 247;

/// Whether the bytes are an ELF object for BPF (magic and `e_machine`, either byte order).
pub(crate) fn is_bpf_elf(bytes: &[u8]) -> bool {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return false;
    }
    let m = [bytes[18], bytes[19]];
    let machine = if bytes[5] == 2 {
        u16::from_be_bytes(m)
    } else {
        u16::from_le_bytes(m)
    };
    machine == EM_BPF
}

fn decode_all(data: &[u8], little: bool) -> Vec<Insn> {
    data.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            if little {
                Insn::decode(b)
            } else {
                // Big-endian objects (bpfeb): registers swapped in their byte, fields
                // big-endian.
                Insn {
                    code: b[0],
                    dst: b[1] >> 4,
                    src: b[1] & 0x0f,
                    off: i16::from_be_bytes([b[2], b[3]]),
                    imm: i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                }
            }
        })
        .collect()
}

/// Reads an ELF object (`clang -target bpf -c`) and relocates its calls as libbpf does.
pub fn read(bytes: &[u8]) -> Result<Object, ElfError> {
    let file = object::File::parse(bytes)
        .map_err(|e| err(0, format!("not a readable ELF object: {e}")))?;
    if file.architecture() != object::Architecture::Bpf {
        return Err(err(
            18,
            format!("ELF object for {:?}, not BPF", file.architecture()),
        ));
    }
    let little = file.is_little_endian();
    let text = file
        .section_by_name(".text")
        .filter(|s| s.kind() == SectionKind::Text);
    let text_insns = match &text {
        Some(t) => decode_all(
            t.data()
                .map_err(|e| err(t.file_range().map_or(0, |r| r.0), e.to_string()))?,
            little,
        ),
        None => Vec::new(),
    };
    let text_index = text.as_ref().map(|t| t.index());
    let mut out = Object::default();
    for section in file.sections() {
        if section.kind() != SectionKind::Text || Some(section.index()) == text_index {
            continue;
        }
        let name = section
            .name()
            .map_err(|e| err(0, format!("section name: {e}")))?
            .to_string();
        let at = section.file_range().map_or(0, |r| r.0);
        let data = section.data().map_err(|e| err(at, e.to_string()))?;
        if data.len() % 8 != 0 {
            return Err(err(
                at,
                format!(
                    "section {name} is {} bytes, not whole instructions",
                    data.len()
                ),
            ));
        }
        let own = data.len() / 8;
        let mut insns = decode_all(data, little);
        let calls_text = text_index.is_some()
            && section.relocations().any(|(_, r)| {
                matches!(r.target(), RelocationTarget::Symbol(s)
                    if file.symbol_by_index(s).ok().and_then(|s| s.section_index()) == text_index)
            });
        if calls_text {
            insns.extend_from_slice(&text_insns);
        }
        relocate(&file, &section, &mut insns, 0, own, text_index, own)?;
        if calls_text {
            if let Some(t) = &text {
                relocate(&file, t, &mut insns, own, text_insns.len(), text_index, own)?;
            }
        }
        let symbols_of = |index, base: usize| -> Vec<(usize, String)> {
            file.symbols()
                .filter(|s| {
                    s.section_index() == Some(index) && s.kind() == object::SymbolKind::Text
                })
                .filter_map(|s| {
                    Some((
                        base + (s.address() / 8) as usize,
                        s.name().ok()?.to_string(),
                    ))
                })
                .filter(|(_, n)| !n.is_empty())
                .collect()
        };
        let mut functions = symbols_of(section.index(), 0);
        if let (true, Some(t)) = (calls_text, text_index) {
            functions.extend(symbols_of(t, own));
        }
        functions.sort();
        let code = out.code.len();
        let (kind, context) = section_type(&name);
        let mut funcs: Vec<(String, usize)> = file
            .symbols()
            .filter(|s| {
                s.section_index() == Some(section.index()) && s.kind() == object::SymbolKind::Text
            })
            .filter_map(|s| Some((s.name().ok()?.to_string(), (s.address() / 8) as usize)))
            .filter(|(n, e)| !n.is_empty() && *e < own)
            .collect();
        funcs.sort_by_key(|(_, e)| *e);
        if funcs.is_empty() {
            funcs.push((name.clone(), 0));
        }
        for (fname, entry) in funcs {
            out.programs.push(Program {
                name: fname,
                kind: kind.to_string(),
                context,
                code,
                entry,
            });
        }
        out.code.push(Code {
            section: name,
            insns,
            functions,
            leaders: Default::default(),
        });
    }
    Ok(out)
}

/// Applies the relocations of `section`, whose instructions sit at `base..base + len` of
/// `insns`; `.text` is at `text_base`.
fn relocate(
    file: &object::File<'_>,
    section: &object::Section<'_, '_>,
    insns: &mut [Insn],
    base: usize,
    len: usize,
    text_index: Option<object::SectionIndex>,
    text_base: usize,
) -> Result<(), ElfError> {
    for (offset, r) in section.relocations() {
        let i = (offset / 8) as usize;
        if offset % 8 != 0 || i >= len {
            continue;
        }
        let at = base + i;
        let Some(insn) = insns.get(at).copied() else {
            continue;
        };
        let RelocationTarget::Symbol(sym) = r.target() else {
            continue;
        };
        let Ok(sym) = file.symbol_by_index(sym) else {
            continue;
        };
        if insn.code == 0x85 && insn.src == super::insn::PSEUDO_CALL {
            let sub = (sym.address() / 8) as i64 + i64::from(insn.imm) + 1;
            let target = if sym.section_index() == text_index && text_index.is_some() {
                text_base as i64 + sub
            } else if sym.section_index() == Some(section.index()) {
                base as i64 + sub
            } else {
                continue;
            };
            let imm = i32::try_from(target - at as i64 - 1)
                .map_err(|_| err(offset, "call target out of range"))?;
            insns[at].imm = imm;
        } else if insn.is_ld_imm64() && insn.src == 0 {
            insns[at].src = 1;
        }
    }
    Ok(())
}
