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

/// What a cell shows: the owner reads, writes or does both with the bit; the bit is
/// registered to it but unused; the plan gives it the bit; or the bit is where its claim sat by
/// default, before the plan moved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Read,
    Write,
    ReadWrite,
    Claim,
    Planned,
    Was,
}

impl Kind {
    /// The reads and writes of an owner, or its registration when it neither reads nor writes.
    pub(super) fn of(read: bool, write: bool, claimed: bool) -> Option<Kind> {
        match (read, write, claimed) {
            (true, true, _) => Some(Kind::ReadWrite),
            (false, true, _) => Some(Kind::Write),
            (true, false, _) => Some(Kind::Read),
            (false, false, true) => Some(Kind::Claim),
            (false, false, false) => None,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Kind::ReadWrite => "cell rw",
            Kind::Write => "cell w",
            Kind::Read => "cell r",
            Kind::Claim => "cell claim",
            Kind::Planned => "cell plan",
            Kind::Was => "cell was",
        }
    }

    fn letters(self) -> &'static str {
        match self {
            Kind::ReadWrite => "RW",
            Kind::Write => "W",
            Kind::Read => "R",
            Kind::Claim | Kind::Planned | Kind::Was => "",
        }
    }
}

/// One drawn cell of a row.
pub(super) struct MapCell {
    pub(super) bit: u8,
    pub(super) kind: Kind,
    /// Another owner uses the bit too.
    pub(super) shared: bool,
    /// The bit is part of a conflict of this row's owner.
    pub(super) conflict: bool,
    /// The hover text.
    pub(super) title: String,
}

/// One row of a map: an owner (or one claim of an owner) and its cells.
pub(super) struct MapRow {
    /// `data-owner`, and the label unless `label` is set.
    pub(super) owner: String,
    /// The label, when it differs from the owner id.
    pub(super) label: Option<String>,
    /// Extra classes of the row's group (` differs`), empty for none.
    pub(super) class: &'static str,
    pub(super) cells: Vec<MapCell>,
}

/// One map: which field (and namespace, for a plan) it draws, and its column highlights.
pub(super) struct Map<'a> {
    pub(super) field: Field,
    /// `data-namespace`, for maps drawn per namespace.
    pub(super) namespace: Option<&'a str>,
    /// The name drawn in the corner.
    pub(super) name: &'a str,
    pub(super) rows: Vec<MapRow>,
    /// Columns drawn as shared.
    pub(super) shared: u32,
    /// Columns drawn as in conflict.
    pub(super) conflict: u32,
}

/// The SVG of one field of an audit report.
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
    let shared = (0..32)
        .filter(|&b| used_by(b) > 1)
        .fold(0, |a, b| a | 1 << b);
    let mut map = Map {
        field,
        namespace: None,
        name: field_name(field),
        rows: Vec::new(),
        shared,
        conflict: all_conflicts,
    };
    for o in &rows {
        let mine = conflict(&o.id);
        let mut cells = Vec::new();
        for bit in 0..32u32 {
            let b = 1u32 << bit;
            let (read, write, claimed) = (
                o.reads.get(field) & b != 0,
                o.writes.get(field) & b != 0,
                o.claimed.get(field) & b != 0,
            );
            let Some(kind) = Kind::of(read, write, claimed) else {
                continue;
            };
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
            cells.push(MapCell {
                bit: bit as u8,
                kind,
                shared: (read || write) && used_by(bit) > 1,
                conflict: (read || write) && mine & b != 0,
                title,
            });
        }
        map.rows.push(MapRow {
            owner: o.id.clone(),
            label: None,
            class: "",
            cells,
        });
    }
    draw(
        h,
        &map,
        &format!("no rule reads or writes the {}", field_name(field)),
    );
    html!(
        h,
        "<p class=\"caption\">{}: read or written {}, shared {}, in conflict {}.</p>\n",
        Esc(field_name(field)),
        Hex(rows.iter().fold(0, |a, o| a | o.bits.get(field))),
        Hex(shared),
        Hex(all_conflicts)
    );
}

/// Draws a map: bit 31 on the left, one row per [`MapRow`], `empty` written when it has none.
pub(super) fn draw(h: &mut Html, map: &Map<'_>, empty: &str) {
    let width = LABEL + 32 * CELL + 8;
    let height = HEAD + ROW * map.rows.len().max(1) as u32 + 6;
    html!(
        h,
        "<svg class=\"regmap\" data-field=\"{}\"",
        Esc(map.field.as_str())
    );
    if let Some(ns) = map.namespace {
        html!(h, " data-namespace=\"{}\"", Esc(ns));
    }
    html!(
        h,
        " xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}: who reads and writes each bit\">\n",
        width,
        height,
        width,
        height,
        Esc(map.name)
    );
    // Column backgrounds for shared and conflicting bits, under everything else.
    for bit in 0..32u32 {
        let x = LABEL + (31 - bit) * CELL;
        let class = if map.conflict & (1 << bit) != 0 {
            "col conflict"
        } else if map.shared & (1 << bit) != 0 {
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
        Esc(map.name)
    );
    if map.rows.is_empty() {
        html!(
            h,
            "<text class=\"none\" x=\"{}\" y=\"{}\">{}</text>\n",
            LABEL,
            HEAD + 17,
            Esc(empty)
        );
    }
    for (r, row) in map.rows.iter().enumerate() {
        let y = HEAD + r as u32 * ROW;
        html!(
            h,
            "<g class=\"owner{}\" data-owner=\"{}\"><text class=\"label\" x=\"4\" y=\"{}\">{}</text>\n",
            Esc(row.class),
            Esc(&row.owner),
            y + 17,
            Esc(row.label.as_deref().unwrap_or(&row.owner))
        );
        for c in &row.cells {
            let mut class = String::from(c.kind.class());
            if c.shared {
                class.push_str(" shared");
            }
            if c.conflict {
                class.push_str(" conflict");
            }
            let x = LABEL + (31 - u32::from(c.bit)) * CELL;
            html!(
                h,
                "<g class=\"{}\" data-bit=\"{}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>",
                Esc(&class),
                c.bit,
                Esc(&c.title),
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
                Esc(c.kind.letters())
            );
        }
        html!(h, "</g>\n");
    }
    html!(h, "</svg>\n");
}

/// The field's name in prose.
pub(super) fn field_name(field: Field) -> &'static str {
    match field {
        Field::Mark => "packet mark",
        Field::CtMark => "connmark",
    }
}
