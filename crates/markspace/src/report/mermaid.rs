//! Mermaid flowcharts of packet paths, for Markdown (GitHub, GitLab and most wikis draw a
//! ```` ```mermaid ```` block): a trace path, or the path a finding shows, as nodes in one
//! subgraph per hook, joined in the order the packet meets them.
//!
//! Labels are quoted and every character Mermaid or its HTML labels would read as syntax is
//! written as a Mermaid entity (`#quot;`, `#lt;`…), so a rule comment cannot end a label, add
//! an edge or inject markup.

use std::fmt::Write;

use crate::analysis::PathEvidence;
use crate::trace::{PathTrace, Step};

/// Longest rule text shown in a node (the rest is cut with `…`).
const TEXT_MAX: usize = 90;

/// A trace path as a Mermaid block (top to bottom): the starting marks, each hook with the
/// chains and rules met in it, routing decisions, the verdict.
pub fn trace_path(p: &PathTrace, start_mark: u32, start_ctmark: u32) -> String {
    let mut g = Graph::new("TD");
    g.node(
        "stadium",
        &format!(
            "packet: mark {} ctmark {}",
            crate::model::hex(start_mark),
            crate::model::hex(start_ctmark)
        ),
        None,
    );
    for s in &p.steps {
        match s {
            Step::Hook { hook } => g.subgraph(&format!("{hook:?}").to_uppercase()),
            Step::Chain { table, chain, .. } => {
                g.node("box", &format!("[{table}] {chain}"), Some("chain"))
            }
            Step::Rule {
                file,
                line,
                text,
                owner,
                matched,
                mark,
                ctmark,
                verdict,
                ..
            } => {
                let mut l = format!(
                    "{} {file}:{line} ({owner}){}\n{}",
                    if *matched { "match" } else { "miss" },
                    verdict
                        .as_deref()
                        .map(|v| format!(" → {v}"))
                        .unwrap_or_default(),
                    cut(text)
                );
                if mark.0 != mark.1 {
                    let _ = write!(l, "\nmark {} → {}", mark.0, mark.1);
                }
                if ctmark.0 != ctmark.1 {
                    let _ = write!(l, "\nctmark {} → {}", ctmark.0, ctmark.1);
                }
                g.node("box", &l, Some(if *matched { "hit" } else { "miss" }));
            }
            Step::Policy { chain, policy } => {
                g.node("box", &format!("policy of {chain}: {policy}"), None)
            }
            Step::Program { .. } => {
                let l = s.program_line().unwrap_or_default();
                g.node("box", &l, Some("hit"))
            }
            Step::Route {
                stage,
                mark,
                rule,
                table,
            } => {
                g.end_subgraph();
                g.node(
                    "rhombus",
                    &format!(
                        "route {stage}: mark {mark} → table {table}\n{}",
                        rule.as_deref().unwrap_or("no fwmark rule matched")
                    ),
                    Some("route"),
                );
            }
            Step::Note { text } => g.node("box", &format!("note: {text}"), Some("note")),
        }
    }
    g.end_subgraph();
    g.node(
        "circle",
        &format!("{}\nmark {} ctmark {}", p.verdict, p.mark, p.ctmark),
        Some(if p.verdict == "ACCEPT" {
            "accept"
        } else {
            "drop"
        }),
    );
    g.finish()
}

/// The path a finding shows (left to right): each owner's use of the bits, by hook.
pub fn finding_path(p: &PathEvidence) -> String {
    let mut g = Graph::new("LR");
    let mut hook = None;
    for s in &p.steps {
        if hook != Some(s.hook) {
            g.end_subgraph();
            g.subgraph(&format!("{:?}", s.hook).to_uppercase());
            hook = Some(s.hook);
        }
        g.node(
            "box",
            &format!(
                "{}: {}\n{}:{} [{} {}]",
                s.owner, s.action, s.file, s.line, s.table, s.chain
            ),
            Some(if p.clobber { "clobber" } else { "hit" }),
        );
    }
    g.end_subgraph();
    g.finish()
}

/// A flowchart being written: nodes `n0`, `n1`… joined in order.
struct Graph {
    out: String,
    nodes: usize,
    in_subgraph: bool,
    subgraphs: usize,
}

impl Graph {
    fn new(direction: &str) -> Graph {
        Graph {
            out: format!("```mermaid\nflowchart {direction}\n"),
            nodes: 0,
            in_subgraph: false,
            subgraphs: 0,
        }
    }

    fn subgraph(&mut self, title: &str) {
        self.end_subgraph();
        let _ = writeln!(
            self.out,
            "  subgraph s{}[\"{}\"]",
            self.subgraphs,
            label(title)
        );
        self.subgraphs += 1;
        self.in_subgraph = true;
    }

    fn end_subgraph(&mut self) {
        if self.in_subgraph {
            self.out.push_str("  end\n");
            self.in_subgraph = false;
        }
    }

    /// A node of a shape (`box`, `stadium`, `rhombus`, `circle`), joined to the one before.
    fn node(&mut self, shape: &str, text: &str, class: Option<&str>) {
        let (open, close) = match shape {
            "stadium" => ("([", "])"),
            "rhombus" => ("{", "}"),
            "circle" => ("((", "))"),
            _ => ("[", "]"),
        };
        let indent = if self.in_subgraph { "    " } else { "  " };
        let _ = write!(
            self.out,
            "{indent}n{}{open}\"{}\"{close}",
            self.nodes,
            label(text)
        );
        if let Some(c) = class {
            let _ = write!(self.out, ":::{c}");
        }
        self.out.push('\n');
        self.nodes += 1;
    }

    fn finish(mut self) -> String {
        self.end_subgraph();
        for i in 1..self.nodes {
            let _ = writeln!(self.out, "  n{} --> n{i}", i - 1);
        }
        self.out.push_str(
            "  classDef hit stroke:#2f9e62,stroke-width:2px\n\
             \x20 classDef miss stroke:#999,stroke-dasharray:4 2,color:#777\n\
             \x20 classDef route fill:#eef4fb,stroke:#6a9fd4\n\
             \x20 classDef chain fill:#f5f7f9,stroke:#ccc\n\
             \x20 classDef note fill:#fff,stroke:#ccc,color:#555\n\
             \x20 classDef accept fill:#e6f4ea,stroke:#2f9e62\n\
             \x20 classDef drop fill:#fde0e0,stroke:#c62828\n\
             \x20 classDef clobber stroke:#c62828,stroke-width:3px\n```\n",
        );
        self.out
    }
}

/// A rule's text, cut to [`TEXT_MAX`] characters.
fn cut(text: &str) -> String {
    if text.chars().count() <= TEXT_MAX {
        return text.to_string();
    }
    let mut s: String = text.chars().take(TEXT_MAX).collect();
    s.push('…');
    s
}

/// A label's text with Mermaid's and HTML's syntax characters as entities, control characters
/// escaped, and line breaks as `<br/>`.
fn label(text: &str) -> String {
    let text = super::escape_controls(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '`' => out.push_str("#96;"),
            '\n' => out.push_str("<br/>"),
            '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_cannot_end_the_label_or_inject_markup() {
        let l = label("x\"] --> evil[\"<img src=x onerror=alert(1)> #x; `md` &amp;\nnext");
        assert_eq!(
            l,
            "x#quot;] --#gt; evil[#quot;#lt;img src=x onerror=alert(1)#gt; #35;x; #96;md#96; #amp;amp;<br/>next"
        );
    }

    #[test]
    fn long_rule_text_is_cut() {
        let t = "a".repeat(200);
        assert_eq!(cut(&t).chars().count(), TEXT_MAX + 1);
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn a_path_is_nodes_in_subgraphs_joined_in_order() {
        let p = PathTrace {
            steps: vec![
                Step::Hook {
                    hook: crate::ruleset::Hook::Prerouting,
                },
                Step::Policy {
                    chain: "PREROUTING".into(),
                    policy: "ACCEPT".into(),
                },
            ],
            verdict: "ACCEPT".into(),
            mark: "0x00000000".into(),
            ctmark: "0x00000000".into(),
            table: None,
            assumptions: vec![],
        };
        let m = trace_path(&p, 0, 0);
        assert!(m.starts_with("```mermaid\nflowchart TD\n"), "{m}");
        assert!(
            m.contains(
                "  subgraph s0[\"PREROUTING\"]\n    n1[\"policy of PREROUTING: ACCEPT\"]\n  end\n"
            ),
            "{m}"
        );
        assert!(m.contains("n0 --> n1\n  n1 --> n2\n"), "{m}");
        assert!(
            m.contains("n2((\"ACCEPT<br/>mark 0x00000000 ctmark 0x00000000\")):::accept"),
            "{m}"
        );
    }
}
