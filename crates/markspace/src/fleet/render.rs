//! The fleet report as text and Markdown (JSON is its serialisation). Renderers only format.

use std::fmt::Write as _;

use super::{field_words, FleetReport, Layout};
use crate::model::Field;

/// Nodes listed by name per layout before "and N more".
const SHOWN_NODES: usize = 10;

fn node_list(nodes: &[String]) -> String {
    let mut s = nodes
        .iter()
        .take(SHOWN_NODES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if nodes.len() > SHOWN_NODES {
        let _ = write!(s, " and {} more", nodes.len() - SHOWN_NODES);
    }
    s
}

fn owners_line(layout: &Layout, field: Field) -> Option<String> {
    let parts: Vec<String> = layout
        .owners
        .iter()
        .filter(|o| o.field == field)
        .map(|o| format!("{} reads {} writes {}", o.owner, o.reads, o.writes))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn head(r: &FleetReport) -> String {
    let mut s = format!(
        "{} node(s), {} layout(s)",
        r.summary.nodes, r.summary.layouts
    );
    if r.summary.outlier_nodes > 0 {
        let _ = write!(
            s,
            ", {} node(s) outside the majority layout",
            r.summary.outlier_nodes
        );
    }
    if r.summary.nodes_with_errors > 0 {
        let _ = write!(s, ", {} with errors", r.summary.nodes_with_errors);
    }
    if r.summary.unreadable > 0 {
        let _ = write!(s, ", {} unreadable", r.summary.unreadable);
    }
    if r.summary.incomplete > 0 {
        let _ = write!(s, ", {} incomplete", r.summary.incomplete);
    }
    s
}

/// Plain text.
pub fn text(r: &FleetReport) -> String {
    let mut out = format!("markspace fleet: {}\n", head(r));
    if r.layouts.len() > 1 && r.outliers.is_empty() {
        out.push_str("  no majority layout: the largest layouts are equally common\n");
    }
    for o in &r.outliers {
        let _ = writeln!(out, "  outlier: {}: {}", o.summary, node_list(&o.nodes));
    }
    for l in &r.layouts {
        let _ = writeln!(
            out,
            "\nlayout {}: {} of {} node(s){}",
            l.id,
            l.count,
            r.summary.nodes - r.summary.unreadable,
            if l.majority { " (majority)" } else { "" }
        );
        let _ = writeln!(out, "  nodes: {}", node_list(&l.nodes));
        for field in Field::BOTH {
            if let Some(line) = owners_line(l, field) {
                let _ = writeln!(out, "  {}: {line}", field_words(field));
            }
        }
        for d in &l.differences {
            let _ = writeln!(out, "  differs: {d}");
        }
        for f in &l.findings {
            let _ = writeln!(
                out,
                "  {}[{}] {} ({} of {} node(s))",
                f.finding.severity.as_str(),
                f.finding.code,
                f.finding.title,
                f.nodes,
                l.count
            );
        }
    }
    let unreadable: Vec<_> = r.nodes.iter().filter(|n| n.error.is_some()).collect();
    if !unreadable.is_empty() {
        out.push_str("\nunreadable:\n");
        for n in unreadable {
            let _ = writeln!(
                out,
                "  {}: {}",
                n.name,
                n.error.as_deref().unwrap_or_default()
            );
        }
    }
    crate::report::escape_controls(&out).into_owned()
}

/// Markdown, for tickets.
pub fn markdown(r: &FleetReport) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("# markspace fleet\n\n{}.\n\n", head(r));
    if !r.outliers.is_empty() {
        out.push_str("## Outliers\n\n");
        for o in &r.outliers {
            let _ = writeln!(
                out,
                "- **{}** (layout {}): {}",
                cell(&o.summary),
                o.layout,
                cell(&node_list(&o.nodes))
            );
        }
        out.push('\n');
    }
    for l in &r.layouts {
        let _ = writeln!(
            out,
            "## Layout {}{}: {} node(s)\n\n{}\n",
            l.id,
            if l.majority { " (majority)" } else { "" },
            l.count,
            cell(&node_list(&l.nodes))
        );
        out.push_str("| owner | field | reads | writes |\n|---|---|---|---|\n");
        for o in &l.owners {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | `{}` |",
                cell(&o.owner),
                field_words(o.field),
                o.reads,
                o.writes
            );
        }
        out.push('\n');
        for d in &l.differences {
            let _ = writeln!(out, "- differs: {}", cell(d));
        }
        if !l.findings.is_empty() {
            out.push_str("\n| severity | code | finding | nodes |\n|---|---|---|---:|\n");
            for f in &l.findings {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} of {} |",
                    f.finding.severity.as_str(),
                    f.finding.code,
                    cell(&f.finding.title),
                    f.nodes,
                    l.count
                );
            }
        }
        out.push('\n');
    }
    for n in r.nodes.iter().filter(|n| n.error.is_some()) {
        let _ = writeln!(
            out,
            "- unreadable: `{}`: {}",
            cell(&n.name),
            cell(n.error.as_deref().unwrap_or_default())
        );
    }
    crate::report::escape_controls(&out).into_owned()
}
