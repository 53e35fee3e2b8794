//! Paths drawn as a flow through the hooks: one box per hook (and per routing decision) in the
//! order the packet meets them, arrows between boxes, the rules inside each box, and the
//! verdict at the end. Used for trace paths and for the path a finding shows.

use crate::analysis::PathEvidence;
use crate::trace::{PathTrace, Step};

use super::markup::{html, Esc, Html};

/// A trace path: hooks, the chains and rules met in each, routing decisions and the verdict.
pub(super) fn trace_path(h: &mut Html, p: &PathTrace, start: (&str, &str)) {
    html!(h, "<ol class=\"flow\">\n<li class=\"stage start\"><h4>packet</h4><div>mark <code>{}</code></div><div>ctmark <code>{}</code></div></li>\n", Esc(start.0), Esc(start.1));
    let mut open = false;
    let close = |h: &mut Html, open: &mut bool| {
        if *open {
            html!(h, "</ul></li>\n");
            *open = false;
        }
    };
    for s in &p.steps {
        match s {
            Step::Hook { hook } => {
                close(h, &mut open);
                let name = format!("{hook:?}").to_uppercase();
                html!(
                    h,
                    "<li class=\"stage hook\" data-hook=\"{}\"><h4>{}</h4><ul>\n",
                    Esc(&name),
                    Esc(&name)
                );
                open = true;
            }
            Step::Route {
                stage,
                mark,
                rule,
                table,
            } => {
                close(h, &mut open);
                html!(
                    h,
                    "<li class=\"stage route\"><h4>route {}</h4><div>mark <code>{}</code></div><div>table <b>{}</b></div><div class=\"why\">{}</div></li>\n",
                    Esc(stage),
                    Esc(mark),
                    Esc(table),
                    Esc(rule.as_deref().map_or("no fwmark rule matched", |r| r))
                );
            }
            _ => {
                if !open {
                    html!(
                        h,
                        "<li class=\"stage hook\"><h4>before the hooks</h4><ul>\n"
                    );
                    open = true;
                }
                step(h, s);
            }
        }
    }
    close(h, &mut open);
    html!(
        h,
        "<li class=\"stage verdict v-{}\"><h4>{}</h4><div>mark <code>{}</code></div><div>ctmark <code>{}</code></div>{}</li>\n</ol>\n",
        Esc(&p.verdict.to_lowercase()),
        Esc(&p.verdict),
        Esc(&p.mark),
        Esc(&p.ctmark),
        Esc(&p.table.as_deref().map(|t| format!("table {t}")).unwrap_or_default())
    );
}

fn step(h: &mut Html, s: &Step) {
    match s {
        Step::Chain {
            table,
            chain,
            priority,
            ..
        } => html!(
            h,
            "<li class=\"chain\">[{}] <b>{}</b> <span class=\"prio\">priority {}</span></li>\n",
            Esc(table),
            Esc(chain),
            *priority
        ),
        Step::Rule {
            file,
            line,
            text,
            owner,
            matched,
            mark,
            ctmark,
            verdict,
            assumed,
            ..
        } => {
            let mut changes = String::new();
            if mark.0 != mark.1 {
                changes.push_str(&format!("mark {} → {} ", mark.0, mark.1));
            }
            if ctmark.0 != ctmark.1 {
                changes.push_str(&format!("ctmark {} → {}", ctmark.0, ctmark.1));
            }
            html!(
                h,
                "<li class=\"rule {}\" data-owner=\"{}\"><span class=\"loc\">{}:{}</span> <span class=\"owner\">{}</span> <span class=\"hit\">{}</span>{}<code>{}</code>",
                Esc(if *matched { "match" } else { "miss" }),
                Esc(owner),
                Esc(file),
                *line,
                Esc(owner),
                Esc(if *matched { "match" } else { "miss" }),
                Esc(&verdict.as_deref().map(|v| format!(" → {v} ")).unwrap_or_else(|| " ".into())),
                Esc(text)
            );
            if !changes.is_empty() {
                html!(h, "<div class=\"change\">{}</div>", Esc(changes.trim_end()));
            }
            for a in assumed {
                html!(h, "<div class=\"assumed\">assumed: {}</div>", Esc(a));
            }
            html!(h, "</li>\n");
        }
        Step::Program { owner, .. } => html!(
            h,
            "<li class=\"rule match\" data-owner=\"{}\"><code>{}</code></li>\n",
            Esc(owner),
            Esc(&s.program_line().unwrap_or_default())
        ),
        Step::Policy { chain, policy } => html!(
            h,
            "<li class=\"policy\">policy of {}: <b>{}</b></li>\n",
            Esc(chain),
            Esc(policy)
        ),
        Step::Note { text } => html!(h, "<li class=\"note\">{}</li>\n", Esc(text)),
        Step::Hook { .. } | Step::Route { .. } => {}
    }
}

/// The path a finding shows: its uses grouped by hook, in path order.
pub(super) fn finding_path(h: &mut Html, p: &PathEvidence) {
    html!(
        h,
        "<ol class=\"flow{}\">\n",
        Esc(if p.clobber { " clobber" } else { "" })
    );
    let mut current = None;
    for s in &p.steps {
        if current != Some(s.hook) {
            if current.is_some() {
                html!(h, "</ul></li>\n");
            }
            let name = format!("{:?}", s.hook).to_uppercase();
            html!(
                h,
                "<li class=\"stage hook\" data-hook=\"{}\"><h4>{}</h4><ul>\n",
                Esc(&name),
                Esc(&name)
            );
            current = Some(s.hook);
        }
        html!(
            h,
            "<li class=\"rule match\" data-owner=\"{}\"><span class=\"loc\">{}:{}</span> <span class=\"owner\">{}</span> {}<div>[{}] {}</div></li>\n",
            Esc(&s.owner),
            Esc(&s.file),
            s.line,
            Esc(&s.owner),
            Esc(&s.action),
            Esc(&s.table),
            Esc(&s.chain)
        );
    }
    if current.is_some() {
        html!(h, "</ul></li>\n");
    }
    html!(h, "</ol>\n");
}
