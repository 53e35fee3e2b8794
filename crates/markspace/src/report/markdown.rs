//! The Markdown report, for tickets and pull requests.

use std::fmt::Write;

use super::{InputReport, Report};
use crate::trace::Trace;

/// Renders the report as Markdown.
pub fn render(report: &Report) -> String {
    let report = &report.for_terminal();
    let mut out = String::new();
    let _ = writeln!(out, "# markspace audit\n");
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} input(s), {} rules ({} touch marks). **{} error(s), {} warning(s), {} info.**\n",
        report.inputs.len(),
        s.rules,
        s.mark_rules,
        s.errors,
        s.warnings,
        s.infos
    );
    if s.incomplete {
        let _ = writeln!(
            out,
            "**Incomplete:** a source the audit needs was not read; the findings are only those of what was read.\n"
        );
        for d in report.unread() {
            let _ = writeln!(out, "- not read: `{}`: {}", d.file, d.message);
        }
        let _ = writeln!(out);
    }
    if s.skipped_lines > 0 {
        let _ = writeln!(
            out,
            "**{} pasted line(s) could not be read and were skipped: this result may be incomplete.**\n",
            s.skipped_lines
        );
    }
    let _ = writeln!(out, "## Owners\n");
    let _ = writeln!(out, "| owner | rules | mark reads | mark writes | ctmark reads | ctmark writes | registered mark bits |");
    let _ = writeln!(out, "|---|---:|---|---|---|---|---|");
    for o in &report.owners {
        let _ = writeln!(
            out,
            "| `{}` | {} | `{}` | `{}` | `{}` | `{}` | `{}` |",
            o.id,
            o.rules,
            o.reads.mark,
            o.writes.mark,
            o.reads.ctmark,
            o.writes.ctmark,
            o.claimed.mark
        );
    }
    for (name, bits) in [
        ("packet mark", &report.bitmap.mark),
        ("connmark", &report.bitmap.ctmark),
    ] {
        let used: Vec<_> = bits
            .iter()
            .filter(|b| !b.readers.is_empty() || !b.writers.is_empty())
            .collect();
        if used.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## Bits of the {name}\n");
        let _ = writeln!(out, "| bit | value | readers | writers |");
        let _ = writeln!(out, "|---:|---|---|---|");
        for b in used.iter().rev() {
            let flag = if b.writers.len() > 1 { " ⚠" } else { "" };
            let _ = writeln!(
                out,
                "| {} | `0x{:08x}` | {} | {}{flag} |",
                b.bit,
                1u32 << b.bit,
                b.readers.join(", "),
                b.writers.join(", ")
            );
        }
    }
    let _ = writeln!(out, "\n## Findings\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for f in &report.findings {
        let _ = writeln!(
            out,
            "### {} {} — {}\n",
            f.severity.as_str(),
            f.code,
            f.title
        );
        let _ = writeln!(
            out,
            "- field: `{}`, bits: `{}`, owners: {}",
            f.field.as_str(),
            crate::model::hex(f.bits),
            f.owners.join(", ")
        );
        for i in &f.incidents {
            let _ = writeln!(
                out,
                "- known incident: {} ({})",
                i.title,
                i.links.join(", ")
            );
        }
        let _ = writeln!(out, "- fix: {}\n", f.fix);
        if !f.evidence.is_empty() {
            let _ = writeln!(out, "```text");
            for e in &f.evidence {
                let loc = e
                    .line
                    .map_or_else(|| e.file.clone(), |l| format!("{}:{l}", e.file));
                let _ = writeln!(out, "{loc} ({})\n    {}", e.owner, e.text);
            }
            if f.evidence_omitted > 0 {
                let _ = writeln!(out, "... and {} more", f.evidence_omitted);
            }
            let _ = writeln!(out, "```\n");
        }
        if let Some(p) = &f.path {
            let _ = writeln!(
                out,
                "Path ({}){}:\n",
                format!("{:?}", p.path).to_lowercase(),
                if p.clobber {
                    ", where one owner's write lands between the other's write and read"
                } else {
                    ""
                }
            );
            let _ = writeln!(out, "{}", super::mermaid::finding_path(p));
        }
    }
    if !report.suppressed.is_empty() {
        let _ = writeln!(out, "\n## Suppressed by the baseline\n");
        let _ = writeln!(out, "| code | owners | bits | reason | until |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        for x in &report.suppressed {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} |",
                x.finding.code,
                x.finding.owners.join(", "),
                crate::model::hex(x.finding.bits),
                x.reason.replace('|', "\\|"),
                x.expires.as_deref().unwrap_or("")
            );
        }
    }
    out
}

/// Renders a trace as Markdown: the packet, then each path as a Mermaid flowchart through the
/// hooks ([`super::mermaid::trace_path`]), then the inputs.
pub fn trace(t: &Trace, inputs: &[InputReport]) -> String {
    let mut out = String::new();
    let p = &t.packet;
    let any = |v: Option<String>| v.map_or_else(|| "any".to_string(), |v| format!("`{v}`"));
    let _ = writeln!(out, "# markspace trace\n");
    let _ = writeln!(
        out,
        "A {} {} packet, in {} out {}, {} → {}, protocol {}, ports {} → {}, mark `{}` ctmark `{}`: {} path(s){}.\n",
        format!("{:?}", p.state).to_lowercase(),
        format!("{:?}", p.path).to_lowercase(),
        any(p.in_iface.clone()),
        any(p.out_iface.clone()),
        any(p.src.map(|a| a.to_string())),
        any(p.dst.map(|a| a.to_string())),
        any(p.proto.map(|n| n.to_string())),
        any(p.sport.map(|n| n.to_string())),
        any(p.dport.map(|n| n.to_string())),
        crate::model::hex(t.start.mark),
        crate::model::hex(t.start.ctmark),
        t.paths.len(),
        if t.truncated {
            " (path limit reached: some undecided conditions taken as not matching)"
        } else {
            ""
        }
    );
    for (i, path) in t.paths.iter().enumerate() {
        let _ = writeln!(
            out,
            "## Path {} → {} (mark `{}` ctmark `{}`{})\n",
            i + 1,
            path.verdict,
            path.mark,
            path.ctmark,
            path.table
                .as_deref()
                .map(|t| format!(", table {t}"))
                .unwrap_or_default()
        );
        for a in &path.assumptions {
            let _ = writeln!(out, "- assuming {a}");
        }
        if !path.assumptions.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{}",
            super::mermaid::trace_path(path, t.start.mark, t.start.ctmark)
        );
    }
    let _ = writeln!(out, "## Inputs\n");
    for i in inputs {
        let _ = writeln!(out, "- `{}` ({})", i.file, i.format);
    }
    super::escape_controls(&out).into_owned()
}
