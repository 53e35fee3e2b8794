//! Questions asked of the registry: who claims these bits, what does this mark value mean to
//! each software, which registered defaults overlap, and the registry as Markdown tables.

use std::fmt::Write;

use serde::Serialize;

use super::schema::{Claim, Software, Style};
use super::Registry;
use crate::model::{hex, Bits, Field, ALL_BITS};

/// Parses a bit selection: a mask (`0x4000`, `0xff0000`), a bit number (`14`), a range of bit
/// numbers (`16-31`), or a comma-separated list of these.
pub fn parse_bits(text: &str) -> Result<u32, String> {
    let mut mask = 0u32;
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("empty bit selection in `{text}`"));
        }
        if part.starts_with("0x") || part.starts_with("0X") {
            mask |= Bits::parse(part)
                .map_err(|_| format!("`{part}` is not a 32-bit hex mask"))?
                .0;
            continue;
        }
        let bit = |s: &str| -> Result<u32, String> {
            match s.trim().parse::<u32>() {
                Ok(n) if n < 32 => Ok(n),
                _ => Err(format!(
                    "`{s}` is not a bit number 0-31 (write masks as 0x…)"
                )),
            }
        };
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (bit(lo)?, bit(hi)?);
                if lo > hi {
                    return Err(format!("range `{part}` runs backwards"));
                }
                for b in lo..=hi {
                    mask |= 1 << b;
                }
            }
            None => mask |= 1 << bit(part)?,
        }
    }
    Ok(mask)
}

/// Formats a mask as bit numbers and ranges: `0-12,16-31`.
pub fn bit_ranges(mask: u32) -> String {
    let mut out = Vec::new();
    let mut b = 0;
    while b < 32 {
        if mask & (1 << b) == 0 {
            b += 1;
            continue;
        }
        let start = b;
        while b + 1 < 32 && mask & (1 << (b + 1)) != 0 {
            b += 1;
        }
        out.push(if start == b {
            start.to_string()
        } else {
            format!("{start}-{b}")
        });
        b += 1;
    }
    out.join(",")
}

/// A claim that uses some of the asked bits.
#[derive(Clone, Debug, Serialize)]
pub struct WhoHit {
    /// Software id.
    pub software: String,
    /// Claim id.
    pub claim: String,
    /// Claim kind (`mark`, `ip-rule`, …).
    pub kind: String,
    /// The claim's bits.
    pub bits: String,
    /// The asked bits it uses.
    pub overlap: String,
    /// `bitwise` or `whole`.
    pub style: Style,
    /// What for.
    pub use_case: String,
    /// Release range, if any.
    pub versions: Option<String>,
    /// Named values inside the overlap.
    pub values: Vec<(String, String)>,
    /// Free text.
    pub description: String,
}

fn kind_name(c: &Claim) -> String {
    serde_json::to_value(c.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn use_name(c: &Claim) -> String {
    serde_json::to_value(c.use_case)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Every claim of every software whose occupied bits in `field` meet `mask`.
pub fn who(reg: &Registry, mask: u32, field: Field) -> Vec<WhoHit> {
    let mut out = Vec::new();
    for s in &reg.software {
        for c in s.claims.iter().filter(|c| c.kind.field() == field) {
            let overlap = c.occupied() & mask;
            if overlap == 0 {
                continue;
            }
            out.push(WhoHit {
                software: s.id.clone(),
                claim: c.id.clone(),
                kind: kind_name(c),
                bits: hex(c.bits.0),
                overlap: hex(overlap),
                style: c.style,
                use_case: use_name(c),
                versions: c.versions.clone(),
                values: c
                    .values
                    .iter()
                    .filter(|v| v.value.0 & overlap != 0)
                    .map(|v| (hex(v.value.0), v.meaning.clone()))
                    .collect(),
                description: c.description.clone(),
            });
        }
    }
    out
}

/// What one claim reads from a mark value.
#[derive(Clone, Debug, Serialize)]
pub struct DecodeHit {
    /// Software id.
    pub software: String,
    /// Claim id.
    pub claim: String,
    /// Claim kind.
    pub kind: String,
    /// The claim's bits.
    pub bits: String,
    /// The value masked to them.
    pub masked: String,
    /// The number the bits carry, with its name (`identity 8`).
    pub number: Option<(String, u64)>,
    /// Named values that match.
    pub meanings: Vec<(String, String)>,
    /// Release range, if any.
    pub versions: Option<String>,
}

/// What each software would read from a mark (or connmark) value.
pub fn decode(reg: &Registry, value: u32, field: Field) -> Vec<DecodeHit> {
    let mut out = Vec::new();
    for s in &reg.software {
        for c in s.claims.iter().filter(|c| c.kind.field() == field) {
            let masked = value & c.bits.0;
            let flags =
                !c.values.is_empty() && c.values.iter().all(|v| v.value.0.count_ones() == 1);
            let meanings: Vec<(String, String)> = c
                .values
                .iter()
                .filter(|v| {
                    if c.style == Style::Whole && c.bits.0 == ALL_BITS {
                        value == v.value.0
                    } else if flags {
                        masked & v.value.0 != 0
                    } else {
                        masked == v.value.0
                    }
                })
                .map(|v| (hex(v.value.0), v.meaning.clone()))
                .collect();
            let whole_field = c.bits.0 == ALL_BITS;
            if meanings.is_empty() && (masked == 0 || whole_field) {
                continue;
            }
            let number = c
                .number
                .as_ref()
                .map(|n| (n.clone(), c.decode_number(value)));
            out.push(DecodeHit {
                software: s.id.clone(),
                claim: c.id.clone(),
                kind: kind_name(c),
                bits: hex(c.bits.0),
                masked: hex(masked),
                number,
                meanings,
                versions: c.versions.clone(),
            });
        }
    }
    out
}

/// Two registered defaults that overlap.
#[derive(Clone, Debug, Serialize)]
pub struct Overlap {
    /// First software id.
    pub a: String,
    /// Second software id.
    pub b: String,
    /// `mark` or `ctmark`.
    pub field: Field,
    /// The shared bits.
    pub bits: String,
    /// Claims of `a` involved.
    pub claims_a: Vec<String>,
    /// Claims of `b` involved.
    pub claims_b: Vec<String>,
    /// True when the registry says the two share these bits by design.
    pub by_design: bool,
    /// Known incidents between them on these bits.
    pub incidents: Vec<(String, String)>,
}

/// Overlaps between the registered defaults of the given software (all when empty).
pub fn conflicts(reg: &Registry, ids: &[String]) -> Result<Vec<Overlap>, String> {
    for id in ids {
        if reg.get(id).is_none() {
            return Err(format!("no registry entry `{id}`"));
        }
    }
    let selected: Vec<&Software> = reg
        .software
        .iter()
        .filter(|s| ids.is_empty() || ids.contains(&s.id))
        .collect();
    let mut out = Vec::new();
    for (i, a) in selected.iter().enumerate() {
        for b in &selected[i + 1..] {
            for field in Field::BOTH {
                let bits = a.claimed(field) & b.claimed(field);
                if bits == 0 {
                    continue;
                }
                let involved = |s: &Software| -> Vec<String> {
                    s.claims
                        .iter()
                        .filter(|c| c.kind.field() == field && c.occupied() & bits != 0)
                        .map(|c| c.id.clone())
                        .collect()
                };
                out.push(Overlap {
                    a: a.id.clone(),
                    b: b.id.clone(),
                    field,
                    bits: hex(bits),
                    claims_a: involved(a),
                    claims_b: involved(b),
                    by_design: reg.by_design(&a.id, &b.id),
                    incidents: reg
                        .incidents_for(&[a.id.as_str(), b.id.as_str()], field, bits)
                        .map(|i| (i.id.clone(), i.links.first().cloned().unwrap_or_default()))
                        .collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The registry as Markdown, in the public fwmark registry's shape: the bitwise table, the
/// whole-mark table, then the known-conflicts and free-bits tables it discussed but never had.
pub fn export_markdown(reg: &Registry) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Linux packet mark registry\n");
    let _ = writeln!(
        out,
        "Generated by `markspace registry export` from {} reviewed entries. Bits are numbered 0 (LSB) to 31.\n",
        reg.software.len()
    );
    let _ = writeln!(out, "## Bitwise Mark Registry\n");
    let _ = writeln!(
        out,
        "| Bits | Mark mask | Field | Software | Use | Versions | Source |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut whole = Vec::new();
    for s in &reg.software {
        for c in &s.claims {
            let is_mark = matches!(c.kind.field(), Field::Mark);
            let field = if is_mark { "mark" } else { "ctmark" };
            if c.style == Style::Whole {
                whole.push((s, c));
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | `0x{:08X}` | {field} ({}) | {} | {} | {} | {} |",
                bit_ranges(c.bits.0),
                c.bits.0,
                kind_name(c),
                s.name,
                use_name(c),
                c.versions.as_deref().unwrap_or("all"),
                cell(&c.source)
            );
        }
    }
    let _ = writeln!(out, "\n## Non-Bitwise Mark Registry\n");
    let _ = writeln!(
        out,
        "| Mark value | Field | Software | Use | Versions | Source |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for (s, c) in whole {
        let values = if c.values.is_empty() {
            if c.bits.0 == ALL_BITS {
                "Any".to_string()
            } else {
                format!("`0x{:08X}` (field)", c.bits.0)
            }
        } else {
            c.values
                .iter()
                .map(|v| format!("`0x{:08X}` ({})", v.value.0, v.value.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {values} | {} ({}) | {} | {} | {} | {} |",
            if c.kind.field() == Field::Mark {
                "mark"
            } else {
                "ctmark"
            },
            kind_name(c),
            s.name,
            use_name(c),
            c.versions.as_deref().unwrap_or("all"),
            cell(&c.source)
        );
    }
    let _ = writeln!(out, "\n## Known conflicts\n");
    let _ = writeln!(
        out,
        "| Software | Field | Bits | Mechanism | Link | Resolution |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for i in &reg.incidents {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | {} | {} |",
            i.software.join(", "),
            if i.kind.field() == Field::Mark {
                "mark"
            } else {
                "ctmark"
            },
            hex(i.bits.0),
            cell(&i.mechanism),
            i.links.first().map(String::as_str).unwrap_or(""),
            cell(&i.resolution)
        );
    }
    let _ = writeln!(out, "\n## Free bits\n");
    let _ = writeln!(
        out,
        "Bits no bitwise registration claims (whole-mark users above collide with any bitwise user whatever bits it picks; bitwise claims of all 32 bits are user-chosen layouts and are left out).\n"
    );
    let _ = writeln!(out, "| Field | Free bits | Mask |");
    let _ = writeln!(out, "|---|---|---|");
    for field in Field::BOTH {
        let free = free_bits(reg, field);
        let _ = writeln!(
            out,
            "| {} | {} | `{}` |",
            field.as_str(),
            bit_ranges(free),
            hex(free)
        );
    }
    out
}

/// Bits of a field that no bitwise claim of less than the whole field occupies.
pub fn free_bits(reg: &Registry, field: Field) -> u32 {
    let used = reg
        .software
        .iter()
        .flat_map(|s| s.claims.iter())
        .filter(|c| c.kind.field() == field && c.style == Style::Bitwise && c.bits.0 != ALL_BITS)
        .fold(0, |a, c| a | c.bits.0);
    !used
}

pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bit_selections() {
        assert_eq!(parse_bits("0x4000"), Ok(0x4000));
        assert_eq!(parse_bits("14"), Ok(0x4000));
        assert_eq!(parse_bits("16-31"), Ok(0xffff0000));
        assert_eq!(parse_bits("14,15"), Ok(0xc000));
        assert!(parse_bits("32").is_err());
        assert!(parse_bits("5-3").is_err());
        assert!(parse_bits("0xzz").is_err());
    }

    #[test]
    fn formats_bit_ranges() {
        assert_eq!(bit_ranges(0xffff1fff), "0-12,16-31");
        assert_eq!(bit_ranges(0x4000), "14");
        assert_eq!(bit_ranges(0), "");
    }
}
