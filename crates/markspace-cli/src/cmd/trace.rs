//! `markspace trace`.

use std::collections::HashMap;
use std::fmt::Write;

use anyhow::{bail, Context};
use markspace::diagnostic::Level;
use markspace::model::{Bits, MarkState};
use markspace::packet::{proto_number, CtState, Packet, PathKind};
use markspace::snapshot::NodeLoader;
use markspace::trace::{trace, Options, Step, Trace};

use crate::cli::{PathArg, StateArg, TraceArgs, TraceFormat as Format};
use crate::output;

pub(crate) fn run(args: TraceArgs) -> anyhow::Result<u8> {
    let registry = super::load_registry(args.registry.as_deref())?;
    let mut loader = NodeLoader::new();
    for p in &args.paths {
        loader.add_path(p)?;
    }
    let node = loader.finish();
    let errors: Vec<String> = node
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .map(|d| d.render(&node.sources).to_string())
        .collect();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        return Ok(2);
    }
    let value = |s: &str, what: &str| {
        s.trim()
            .parse::<Bits>()
            .map(u32::from)
            .with_context(|| format!("--{what} `{s}` is not a 32-bit value"))
    };
    let proto = match args.proto.as_deref() {
        None => None,
        Some(p) => match proto_number(p) {
            Some(n) => n,
            None => bail!("--proto `{p}` is not a protocol name or number"),
        },
    };
    // Reverse-path filtering is assumed to pass (a valid source) unless told otherwise.
    let mut assume = HashMap::from([("rpfilter".to_string(), true)]);
    for a in &args.assume {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--assume `{a}`: write NAME=yes or NAME=no")
        };
        let v = match v {
            "yes" | "true" | "match" => true,
            "no" | "false" | "nomatch" => false,
            _ => bail!("--assume `{a}`: the value is yes or no"),
        };
        assume.insert(k.to_string(), v);
    }
    let options = Options {
        assume,
        max_paths: args.max_paths,
    };
    if let Some((unknown, valid)) = markspace::trace::unknown_assumptions(&node, &options) {
        bail!(
            "--assume: no condition of these rules is named {}\n  = hint: the names are: {}",
            unknown
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            valid.join(", ")
        )
    }
    let packet = Packet {
        in_iface: args.in_iface.clone(),
        out_iface: args.out_iface.clone(),
        src: args.src,
        dst: args.dst,
        proto,
        sport: args.sport,
        dport: args.dport,
        path: match args.path {
            PathArg::Ingress => PathKind::Ingress,
            PathArg::Forward => PathKind::Forward,
            PathArg::Output => PathKind::Output,
        },
        state: match args.state {
            StateArg::New => CtState::New,
            StateArg::Established => CtState::Established,
            StateArg::Reply => CtState::Reply,
        },
    };
    let mark = value(&args.mark, "mark")?;
    let start = MarkState {
        mark,
        ctmark: value(&args.ctmark, "ctmark")?,
        skmark: mark,
    };
    let t = trace(&node, &registry, packet, start, &options);
    match args.format {
        Format::Json => {
            output::print(&(serde_json::to_string_pretty(&super::stamped(&registry, &t)?)? + "\n"))?
        }
        Format::Markdown => output::print(&markspace::report::markdown::trace(&t, &inputs(&node)))?,
        Format::Html => output::print(&markspace::report::html::trace(&t, &inputs(&node)))?,
        // Rule text and chain names come from the input: never send its control characters.
        Format::Text => output::print(&markspace::report::escape_controls(&render(&t)))?,
    }
    Ok(0)
}

/// The inputs the trace walked, as the audit report lists them.
fn inputs(node: &markspace::model::Node) -> Vec<markspace::report::InputReport> {
    node.formats
        .iter()
        .map(|(file, format)| markspace::report::InputReport {
            file: file.clone(),
            format: format.to_string(),
        })
        .collect()
}

fn render(t: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace: {:?} path, {:?} packet, mark {:#010x} ctmark {:#010x}: {} path(s){}",
        t.packet.path,
        t.packet.state,
        t.start.mark,
        t.start.ctmark,
        t.paths.len(),
        if t.truncated {
            " (path limit reached: some undecided conditions taken as not matching)"
        } else {
            ""
        }
    );
    for (i, p) in t.paths.iter().enumerate() {
        let _ = writeln!(
            out,
            "\npath {} -> {}  (mark {} ctmark {}{})",
            i + 1,
            p.verdict,
            p.mark,
            p.ctmark,
            p.table
                .as_deref()
                .map(|t| format!(", table {t}"))
                .unwrap_or_default()
        );
        for a in &p.assumptions {
            let _ = writeln!(out, "  assuming {a}");
        }
        for s in &p.steps {
            match s {
                Step::Hook { hook } => {
                    let _ = writeln!(out, "  == {}", format!("{hook:?}").to_uppercase());
                }
                Step::Chain {
                    table,
                    chain,
                    priority,
                    ..
                } => {
                    let _ = writeln!(out, "    [{table}] {chain} (priority {priority})");
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
                    assumed,
                    ..
                } => {
                    let changed = if mark.0 != mark.1 || ctmark.0 != ctmark.1 {
                        format!(
                            "  mark {} -> {}  ctmark {} -> {}",
                            mark.0, mark.1, ctmark.0, ctmark.1
                        )
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        out,
                        "      {} {file}:{line} ({owner}){}{}",
                        if *matched { "match" } else { "miss " },
                        verdict
                            .as_deref()
                            .map(|v| format!(" -> {v}"))
                            .unwrap_or_default(),
                        changed
                    );
                    let _ = writeln!(out, "          {text}");
                    for a in assumed {
                        let _ = writeln!(out, "          ({a})");
                    }
                }
                Step::Policy { chain, policy } => {
                    let _ = writeln!(out, "      policy of {chain}: {policy}");
                }
                Step::Program { .. } => {
                    let _ = writeln!(out, "    {}", s.program_line().unwrap_or_default());
                }
                Step::Route {
                    stage,
                    mark,
                    rule,
                    table,
                } => {
                    let _ = writeln!(
                        out,
                        "  -- route {stage}: mark {mark} -> table {table}{}",
                        rule.as_deref()
                            .map(|r| format!(" by `{r}`"))
                            .unwrap_or_else(|| " (no fwmark rule matched)".into())
                    );
                }
                Step::Note { text } => {
                    let _ = writeln!(out, "      note: {text}");
                }
            }
        }
    }
    out
}
