//! The register map: one inline SVG per field, bit 31 on the left as data sheets draw
//! registers, one row per owner that reads, writes or registered bits of the field. Bits two
//! or more owners use are drawn as shared, bits of an error or warning finding between the
//! row's owner and another as conflicts; each cell's `<title>` (the browser's hover text)
//! names what the owner does with the bit and the rules that do it.

use crate::analysis::Severity;
use crate::model::Field;

use super::markup::{html, Esc, Hex, Html};
use super::BitRules;
use crate::report::Report;

const LABEL: u32 = 190;
const CELL: u32 = 24;
const ROW: u32 = 26;
const HEAD: u32 = 40;

/// The SVG of one field.
pub(super) fn svg(h: &mut Html, report: &Report, rules: &BitRules, field: Field) {
    let fi = field as usize;
    let rows: Vec<_> = report
        .owners
        .iter()
        .filter(|o| o.bits.get(field) | o.claimed.get(field) != 0)
        .collect();
    let used_by = |bit: u32| {
        rows.iter()
            .filter(|o| o.bits.get(field) & (1 << bit) != 0)
            .count()
    };
    // Per owner, the bits of error and warning findings it is part of.
    let conflict = |owner: &str| {
        report
            .findings
            .iter()
            .filter(|f| f.field == field && f.severity != Severity::Info)
            .filter(|f| f.owners.len() > 1 && f.owners.iter().any(|o| o == owner))
            .fold(0u32, |acc, f| acc | f.bits)
    };
    let all_conflicts = rows.iter().fold(0, |acc, o| acc | conflict(&o.id));
    let width = LABEL + 32 * CELL + 8;
    let height = HEAD + ROW * rows.len().max(1) as u32 + 6;
    html!(
        h,
        "<svg class=\"regmap\" data-field=\"{}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}: who reads and writes each bit\">\n",
        Esc(field.as_str()),
        width,
        height,
        width,
        height,
        Esc(field_name(field))
    );
    // Column backgrounds for shared and conflicting bits, under everything else.
    for bit in 0..32u32 {
        let x = LABEL + (31 - bit) * CELL;
        let class = if all_conflicts & (1 << bit) != 0 {
            "col conflict"
        } else if used_by(bit) > 1 {
            "col shared"
        } else {
            continue;
        };
        html!(
            h,
            "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\n",
            Esc(class),
            x,
            HEAD - 4,
            CELL,
            height - HEAD + 2
        );
    }
    // Header: bit numbers, and the nibble's hex digit position every four bits.
    for bit in 0..32u32 {
        let x = LABEL + (31 - bit) * CELL + CELL / 2;
        html!(
            h,
            "<text class=\"bitno\" x=\"{}\" y=\"{}\">{}</text>\n",
            x,
            HEAD - 10,
            bit
        );
        if bit % 4 == 3 {
            html!(
                h,
                "<line class=\"nibble\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n",
                x - CELL / 2,
                12,
                x - CELL / 2,
                height - 2
            );
        }
    }
    html!(
        h,
        "<text class=\"fieldname\" x=\"4\" y=\"{}\">{}</text>\n",
        HEAD - 10,
        Esc(field_name(field))
    );
    if rows.is_empty() {
        html!(
            h,
            "<text class=\"none\" x=\"{}\" y=\"{}\">no rule reads or writes the {}</text>\n",
            LABEL,
            HEAD + 17,
            Esc(field_name(field))
        );
    }
    for (r, o) in rows.iter().enumerate() {
        let y = HEAD + r as u32 * ROW;
        let mine = conflict(&o.id);
        html!(
            h,
            "<g class=\"owner\" data-owner=\"{}\"><text class=\"label\" x=\"4\" y=\"{}\">{}</text>\n",
            Esc(&o.id),
            y + 17,
            Esc(&o.id)
        );
        for bit in 0..32u32 {
            let b = 1u32 << bit;
            let (read, write, claimed) = (
                o.reads.get(field) & b != 0,
                o.writes.get(field) & b != 0,
                o.claimed.get(field) & b != 0,
            );
            if !(read || write || claimed) {
                continue;
            }
            let mut class = String::from("cell");
            class.push_str(match (read, write) {
                (true, true) => " rw",
                (false, true) => " w",
                (true, false) => " r",
                (false, false) => " claim",
            });
            if (read || write) && used_by(bit) > 1 {
                class.push_str(" shared");
            }
            if (read || write) && mine & b != 0 {
                class.push_str(" conflict");
            }
            let letters = match (read, write) {
                (true, true) => "RW",
                (false, true) => "W",
                (true, false) => "R",
                (false, false) => "",
            };
            let x = LABEL + (31 - bit) * CELL;
            let mut title = format!(
                "{}: {} bit {bit} ({}): {}",
                o.id,
                field_name(field),
                crate::model::hex(b),
                match (read, write) {
                    (true, true) => "reads and writes",
                    (false, true) => "writes",
                    (true, false) => "reads",
                    (false, false) => "registered, not used here",
                }
            );
            if claimed && (read || write) {
                title.push_str(" (registered)");
            } else if !claimed && (read || write) && o.id != crate::registry::UNKNOWN {
                title.push_str(" (not in its registry entry)");
            }
            let others: Vec<&str> = rows
                .iter()
                .filter(|p| p.id != o.id && p.bits.get(field) & b != 0)
                .map(|p| p.id.as_str())
                .collect();
            if !others.is_empty() && (read || write) {
                title.push_str(&format!("\nshared with {}", others.join(", ")));
            }
            for f in report
                .findings
                .iter()
                .filter(|f| f.field == field && f.bits & b != 0 && f.owners.contains(&o.id))
            {
                title.push_str(&format!("\n{} {} {}", f.severity.as_str(), f.code, f.title));
            }
            if let Some((list, more)) = rules.cell(&o.id, fi, bit as u8) {
                title.push_str("\nrules:");
                for e in list {
                    let loc = e
                        .line
                        .map_or_else(|| e.file.clone(), |l| format!("{}:{l}", e.file));
                    title.push_str(&format!("\n  {loc}  {}", e.text));
                }
                if *more > 0 {
                    title.push_str(&format!("\n  … and {more} more"));
                }
            }
            html!(
                h,
                "<g class=\"{}\" data-bit=\"{}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>",
                Esc(&class),
                bit,
                Esc(&title),
                x + 1,
                y + 2,
                CELL - 2,
                ROW - 4
            );
            html!(
                h,
                "<text x=\"{}\" y=\"{}\">{}</text></g>\n",
                x + CELL / 2,
                y + 17,
                Esc(letters)
            );
        }
        html!(h, "</g>\n");
    }
    html!(h, "</svg>\n");
    html!(
        h,
        "<p class=\"caption\">{}: read or written {}, shared {}, in conflict {}.</p>\n",
        Esc(field_name(field)),
        Hex(rows.iter().fold(0, |a, o| a | o.bits.get(field))),
        Hex((0..32)
            .filter(|&b| used_by(b) > 1)
            .fold(0, |a, b| a | 1 << b)),
        Hex(all_conflicts)
    );
}

/// The field's name in prose.
pub(super) fn field_name(field: Field) -> &'static str {
    match field {
        Field::Mark => "packet mark",
        Field::CtMark => "connmark",
    }
}
