//! `markspace plan`: conflict-free bits for the software on a node, the settings to paste, the
//! planned node's rules, and `--check` for drift.
//!
//! Exit status: 0 a plan exists (with `--check`: the node matches it), 1 no assignment exists
//! (with `--check`: the node drifted or planned owners clash), 2 usage or input error.

use anyhow::Context;
use markspace::analysis::analyze;
use markspace::diagnostic::Level;
use markspace::plan::{self, Observed, Request, SetKnob, Wanted};
use markspace::registry::Registry;
use markspace::report::Report;
use markspace::snapshot::NodeLoader;

use crate::cli::{PlanArgs, PlanFormat};
use crate::output;

pub(crate) fn run(args: PlanArgs) -> anyhow::Result<u8> {
    let registry = super::load_registry(args.registry.as_deref())?;
    let mut request = Request::default();
    for s in &args.software {
        request
            .software
            .push(Wanted::parse(s).map_err(anyhow::Error::msg)?);
    }
    for s in &args.settings {
        request
            .settings
            .push(SetKnob::parse(s).map_err(anyhow::Error::msg)?);
    }
    request.keep = args.keep.clone();
    if let Some(node) = &args.node {
        let report = audit(node, &registry)?;
        request.observed = report
            .owners
            .iter()
            .map(|o| Observed {
                owner: o.id.clone(),
                mark: o.bits.mark.0,
                ctmark: o.bits.ctmark.0,
            })
            .collect();
    }
    let plan = plan::plan(&registry, &request)?;
    if let Some(dir) = &args.emit_node {
        let node = plan::node::generate(&registry, &plan, args.defaults);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let rules = dir.join("iptables.rules");
        std::fs::write(&rules, &node.iptables)
            .with_context(|| format!("writing {}", rules.display()))?;
        let ip = dir.join("ip-rules.txt");
        let lines: String = node.ip_rules.iter().map(|r| r.join(" ") + "\n").collect();
        std::fs::write(&ip, lines).with_context(|| format!("writing {}", ip.display()))?;
    }
    if let Some(snapshot) = &args.check {
        let planned = plan::remap::planned_registry(&registry, &plan);
        let report = audit(snapshot, &planned)?;
        let check = plan::check::check(&plan, &report);
        let text = match args.format {
            PlanFormat::Json => {
                let doc = serde_json::json!({"plan": plan, "check": check});
                serde_json::to_string_pretty(&super::stamped(&registry, &doc)?)? + "\n"
            }
            PlanFormat::Markdown => format!(
                "{}\n## Check\n\n```text\n{}```\n",
                plan::render::markdown(&plan),
                plan::check::text(&check)
            ),
            PlanFormat::Text => plan::check::text(&check),
            PlanFormat::Html => {
                markspace::report::html::plan(&plan, Some(&plan::check::text(&check)))
            }
        };
        output::print(&text)?;
        return Ok(u8::from(!check.ok));
    }
    let text = match args.format {
        PlanFormat::Json => {
            serde_json::to_string_pretty(&super::stamped(&registry, &plan)?)? + "\n"
        }
        PlanFormat::Markdown => plan::render::markdown(&plan),
        PlanFormat::Text => plan::render::text(&plan),
        PlanFormat::Html => markspace::report::html::plan(&plan, None),
    };
    output::print(&text)?;
    Ok(u8::from(!plan.feasible))
}

/// Audits a snapshot with `registry`; input errors stop the run.
fn audit(path: &std::path::Path, registry: &Registry) -> anyhow::Result<Report> {
    let mut loader = NodeLoader::new();
    loader
        .add_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let node = loader.finish();
    let errors: Vec<String> = node
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .map(|d| d.render(&node.sources).to_string())
        .collect();
    if !errors.is_empty() {
        anyhow::bail!(
            "{} could not be read:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
    let analysis = analyze(&node, registry);
    Ok(Report::new(&node, &analysis))
}
