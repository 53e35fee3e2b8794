//! Self-contained HTML pages: one file with its styles inline, no script, no font, no network
//! (a `Content-Security-Policy` of `default-src 'none'` says so to the browser as well), to
//! attach to an incident ticket.
//!
//! - [`audit`]: the register map of both fields as inline SVG (one row per owner, shared and
//!   conflicting bits highlighted, each cell's hover text naming the rules), the findings with
//!   their evidence, fixes and paths, the owners, the inputs and the registry used.
//! - [`trace`]: each path of a trace as a flow through the hooks, with the rules met and the
//!   marks before and after.
//! - [`plan`]: the planned bits per field and namespace (the default positions the plan moves
//!   away from, and the overlaps that removes), the settings to paste per tool, why no
//!   assignment exists, the hazards left.
//! - [`fleet`]: per layout group its nodes, register map (owners that differ from the majority
//!   highlighted) and findings with node counts; the outliers; the unreadable nodes.
//!
//! Every string from the input reaches the page through [`markup`]'s escaping helper; the
//! template macro refuses anything else at compile time. A new page is a
//! module here that writes its sections with [`markup::html!`], draws maps with
//! `register::draw`, and wraps them in [`page`].

mod audit;
mod fleet;
mod flow;
pub(crate) mod markup;
mod plan;
mod register;
mod trace;

use std::collections::HashMap;

use crate::analysis::{evidence_of, Analysis, EvidenceItem, Site};
use crate::model::Node;

pub use audit::render as audit;
pub use fleet::render as fleet;
pub use plan::render as plan;
pub use trace::render as trace;

use markup::{html, Esc, Fragment, Html};

/// Rules shown in one cell's hover text.
const RULES_PER_CELL: usize = 5;

/// For the register map's hover text: per owner, field and bit, the first rules that read or
/// write the bit and how many more do.
#[derive(Debug, Default)]
pub struct BitRules {
    cells: HashMap<(String, usize, u8), Cell>,
}

#[derive(Debug, Default)]
struct Cell {
    rules: Vec<EvidenceItem>,
    more: usize,
    last: Option<Site>,
}

impl BitRules {
    /// The rules of a node's analysis (each rule once per cell, in rule order).
    pub fn of(node: &Node, analysis: &Analysis) -> BitRules {
        let usage = &analysis.usage;
        let mut cells: HashMap<(String, usize, u8), Cell> = HashMap::new();
        for u in &usage.uses {
            let mut evidence = None;
            for f in 0..2 {
                let mask = u.reads[f] | u.writes[f];
                for bit in (0..32u8).filter(|b| mask & (1 << b) != 0) {
                    let cell = cells
                        .entry((usage.owners[u.owner].id.clone(), f, bit))
                        .or_default();
                    if cell.last == Some(u.site) {
                        continue;
                    }
                    cell.last = Some(u.site);
                    if cell.rules.len() < RULES_PER_CELL {
                        let e = evidence.get_or_insert_with(|| evidence_of(node, usage, u));
                        cell.rules.push(e.clone());
                    } else {
                        cell.more += 1;
                    }
                }
            }
        }
        BitRules { cells }
    }

    fn cell(&self, owner: &str, field: usize, bit: u8) -> Option<(&[EvidenceItem], &usize)> {
        self.cells
            .get(&(owner.to_string(), field, bit))
            .map(|c| (c.rules.as_slice(), &c.more))
    }
}

/// The whole document around a body.
fn page(title: &str, body: Fragment) -> String {
    let mut h = Html::new();
    html!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"markspace {}\">\n<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        Esc(env!("CARGO_PKG_VERSION")),
        Esc(title),
        Css,
        body
    );
    h.into_string()
}

/// The stylesheet (a constant: markup by construction).
struct Css;

impl markup::Markup for Css {
    fn fmt_markup(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(include_str!("style.css"))
    }
}

/// The inputs table, shared by the pages.
fn inputs(h: &mut Html, inputs: &[crate::report::InputReport]) {
    html!(
        h,
        "<section id=\"inputs\"><h2>Inputs</h2>\n<table><thead><tr><th>file</th><th>format</th></tr></thead><tbody>\n"
    );
    for i in inputs {
        html!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td></tr>\n",
            Esc(&i.file),
            Esc(&i.format)
        );
    }
    html!(h, "</tbody></table>\n</section>\n");
}
