//! The terminal report: a register diagram of both fields, a row per owner, then the findings
//! with their evidence and fix.

use std::fmt::Write;

use crate::analysis::Severity;
use crate::model::{hex, Field};

use super::{OwnerReport, Report};

/// Colours, or none.
#[derive(Clone, Copy)]
struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn severity(&self, sev: Severity, s: &str) -> String {
        match sev {
            Severity::Error => self.wrap("1;31", s),
            Severity::Warning => self.wrap("1;33", s),
            Severity::Info => self.wrap("1;36", s),
        }
    }
}

/// Renders the report; `color` adds ANSI colours (the caller decides: a terminal, no `NO_COLOR`).
pub fn render(report: &Report, color: bool) -> String {
    let report = &report.for_terminal();
    let p = Paint { on: color };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} input(s), {} rules, {} touch marks, {} owner(s)",
        p.bold("markspace audit:"),
        report.inputs.len(),
        report.summary.rules,
        report.summary.mark_rules,
        report.owners.len()
    );
    for i in &report.inputs {
        let _ = writeln!(out, "  {} {}", p.dim(&format!("[{}]", i.format)), i.file);
    }
    if report.summary.rules == 0 && report.owners.is_empty() {
        let _ = writeln!(out, "no rules: nothing on this node reads or writes a mark");
    }
    let s = &report.summary;
    let notes = [
        (
            s.duplicate_tables,
            "table(s) appeared in two inputs with the same rules and are counted once",
        ),
        (
            s.unknown_context_rules,
            "mark rule(s) were pasted without their table or chain (shown as `(unknown)`): where they run is not known, so they are assumed to meet every other owner's uses",
        ),
    ];
    for (n, what) in notes {
        if n > 0 {
            let _ = writeln!(out, "  {}", p.dim(&format!("{n} {what}")));
        }
    }
    if report.summary.skipped_lines > 0 {
        let _ = writeln!(
            out,
            "  {}",
            p.severity(
                Severity::Warning,
                &format!(
                    "{} pasted line(s) could not be read and were skipped (warnings above): this result may be incomplete",
                    report.summary.skipped_lines
                )
            )
        );
    }
    for (name, field) in [
        ("packet mark (skb->mark)", Field::Mark),
        ("connmark (ct mark)", Field::CtMark),
    ] {
        let owners: Vec<&OwnerReport> = report
            .owners
            .iter()
            .filter(|o| bits_of(o, field).0 | bits_of(o, field).1 != 0)
            .collect();
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", p.bold(name));
        if owners.is_empty() {
            let _ = writeln!(out, "  {}", p.dim("no rule reads or writes it"));
            continue;
        }
        let width = owners.iter().map(|o| o.id.len()).max().unwrap_or(0).max(12);
        let _ = writeln!(
            out,
            "  {:width$}  {}",
            "",
            register_header(0),
            width = width
        );
        let _ = writeln!(
            out,
            "  {:width$}  {}",
            "",
            register_header(1),
            width = width
        );
        let mut writers = [0u8; 32];
        for o in &owners {
            let (r, w) = bits_of(o, field);
            for (bit, n) in writers.iter_mut().enumerate() {
                if w & (1 << bit) != 0 {
                    *n += 1;
                }
            }
            let row = register_row(|bit| match (r & (1 << bit) != 0, w & (1 << bit) != 0) {
                (true, true) => 'B',
                (false, true) => 'W',
                (true, false) => 'R',
                _ => '.',
            });
            let _ = writeln!(
                out,
                "  {:width$}  {}  {}",
                o.id,
                row,
                p.dim(&format!("reads {} writes {}", hex(r), hex(w))),
                width = width
            );
        }
        if writers.iter().any(|n| *n > 1) {
            let row = register_row(|bit| if writers[bit] > 1 { '!' } else { ' ' });
            let _ = writeln!(
                out,
                "  {:width$}  {}",
                p.severity(
                    Severity::Error,
                    &format!("{:width$}", "shared", width = width)
                ),
                p.severity(Severity::Error, &row),
                width = width
            );
        }
    }
    let _ = writeln!(
        out,
        "\n  {}",
        p.dim("W write  R read  B read+write  ! written by more than one owner")
    );

    let _ = writeln!(out);
    if report.findings.is_empty() {
        let _ = writeln!(out, "{}", p.bold("no findings"));
    }
    for f in &report.findings {
        let head = format!("{}[{}]", f.severity.as_str(), f.code);
        let _ = writeln!(
            out,
            "{} {}",
            p.severity(f.severity, &head),
            p.bold(&f.title)
        );
        let _ = writeln!(
            out,
            "  {} {} {}  owners: {}",
            p.dim("field"),
            f.field.as_str(),
            hex(f.bits),
            f.owners.join(", ")
        );
        for e in &f.evidence {
            let loc = match e.line {
                Some(l) => format!("{}:{l}", e.file),
                None => e.file.clone(),
            };
            let _ = writeln!(
                out,
                "  {} {} {}",
                p.dim("-->"),
                loc,
                p.dim(&format!("({})", e.owner))
            );
            let _ = writeln!(out, "      {}", e.text);
        }
        if f.evidence_omitted > 0 {
            let _ = writeln!(
                out,
                "  {}",
                p.dim(&format!("... and {} more rule(s)", f.evidence_omitted))
            );
        }
        if let Some(path) = &f.path {
            let _ = writeln!(
                out,
                "  {} {}",
                p.dim("path:"),
                format!("{:?}", path.path).to_lowercase()
                    + if path.clobber {
                        " (overwritten between write and read)"
                    } else {
                        ""
                    }
            );
            for (n, s) in path.steps.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    {}. {} [{}] {}  {}:{} ({}) {}",
                    n + 1,
                    format!("{:?}", s.hook).to_uppercase(),
                    s.table,
                    s.chain,
                    s.file,
                    s.line,
                    s.owner,
                    s.action
                );
            }
        }
        for i in &f.incidents {
            let _ = writeln!(
                out,
                "  = known incident {}: {} {}",
                i.id,
                i.title,
                i.links.first().map(String::as_str).unwrap_or("")
            );
        }
        let _ = writeln!(out, "  = fix: {}", f.fix);
        let _ = writeln!(out);
    }
    if !report.suppressed.is_empty() {
        let _ = writeln!(
            out,
            "{} {} finding(s) accepted by the baseline:",
            p.bold("suppressed:"),
            report.suppressed.len()
        );
        for x in &report.suppressed {
            let _ = writeln!(
                out,
                "  {} {} ({}): {}{}",
                x.finding.code,
                x.finding.owners.join(", "),
                crate::model::hex(x.finding.bits),
                x.reason,
                x.expires
                    .as_deref()
                    .map(|e| format!(" (until {e})"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(out);
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} {} error(s), {} warning(s), {} info{}",
        p.bold("summary:"),
        p.severity(Severity::Error, &s.errors.to_string()),
        p.severity(Severity::Warning, &s.warnings.to_string()),
        s.infos,
        if s.skipped_lines > 0 {
            format!("; {} input line(s) skipped", s.skipped_lines)
        } else {
            String::new()
        }
    );
    if s.incomplete {
        let _ = writeln!(
            out,
            "{} a source the audit needs was not read; the findings above are only those of what was read:",
            p.severity(Severity::Error, "incomplete:")
        );
        for d in report.unread() {
            let _ = writeln!(out, "  not read: {}: {}", d.file, d.message);
        }
    }
    out
}

fn bits_of(o: &OwnerReport, field: Field) -> (u32, u32) {
    (o.reads.get(field), o.writes.get(field))
}

/// Two header lines of bit numbers (tens, then units), bit 31 on the left, grouped by nibble.
pub(crate) fn register_header(line: usize) -> String {
    register_row(|bit| {
        let digit = if line == 0 { bit / 10 } else { bit % 10 };
        char::from_digit(digit as u32, 10).unwrap_or('?')
    })
}

/// 32 cells, bit 31 first, a space between nibbles.
pub(crate) fn register_row(cell: impl Fn(usize) -> char) -> String {
    let mut s = String::with_capacity(40);
    for bit in (0..32).rev() {
        s.push(cell(bit));
        if bit % 4 == 0 && bit != 0 {
            s.push(' ');
        }
    }
    s
}
