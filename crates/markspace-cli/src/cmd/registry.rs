//! `markspace registry`.

use std::fmt::Write;

use markspace::model::{hex, Bits, Field};
use markspace::registry::query::{self, bit_ranges};
use markspace::registry::validate;

use crate::cli::{RegistryArgs, RegistryCommand, RegistryFormat as Format};
use crate::output;

fn json<T: serde::Serialize>(
    reg: &markspace::registry::Registry,
    key: &str,
    value: &T,
) -> anyhow::Result<u8> {
    let doc = super::envelope(reg, key, value)?;
    output::print(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    Ok(0)
}

pub(crate) fn run(args: RegistryArgs) -> anyhow::Result<u8> {
    let reg = super::load_registry(args.registry.as_deref())?;
    let export = matches!(args.command, RegistryCommand::Export);
    let format = match (args.format, export) {
        (Some(Format::Markdown), false) => {
            anyhow::bail!("--format markdown is only for `registry export`; use text or json")
        }
        (Some(Format::Text), true) => {
            anyhow::bail!("`registry export` prints markdown (the default) or json")
        }
        (Some(f), _) => f,
        (None, true) => Format::Markdown,
        (None, false) => Format::Text,
    };
    match args.command {
        RegistryCommand::List => {
            if format == Format::Json {
                return json(&reg, "software", &reg.software);
            }
            let field = |s: &markspace::registry::schema::Software, f: Field| {
                if s.uses_marks {
                    hex(s.claimed(f))
                } else {
                    "-".into()
                }
            };
            let rows: Vec<Vec<String>> = reg
                .software
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.category.clone(),
                        field(s, Field::Mark),
                        field(s, Field::CtMark),
                        s.summary.clone(),
                    ]
                })
                .collect();
            let out = output::table(
                &["id", "category", "mark", "ctmark", "summary"],
                &rows,
                output::width(),
            );
            output::print(&out)?;
            Ok(0)
        }
        RegistryCommand::Show { id } => {
            let Some(s) = reg.get(&id) else {
                anyhow::bail!("no registry entry `{id}`; `markspace registry list` shows them all");
            };
            if format == Format::Json {
                return json(&reg, "software", s);
            }
            output::print(&show_text(s))?;
            Ok(0)
        }
        RegistryCommand::Who { bits, ctmark } => {
            let mask = query::parse_bits(&bits).map_err(|e| anyhow::anyhow!("{e}"))?;
            let field = if ctmark { Field::CtMark } else { Field::Mark };
            let hits = query::who(&reg, mask, field);
            if format == Format::Json {
                return json(&reg, "claims", &hits);
            }
            let mut out = format!(
                "{} bits {} ({}): {} claim(s)\n",
                field.as_str(),
                hex(mask),
                bit_ranges(mask),
                hits.len()
            );
            for h in &hits {
                let _ = writeln!(
                    out,
                    "  {:24} {:28} {:16} bits {} overlap {}  {} {}{}",
                    h.software,
                    h.claim,
                    h.kind,
                    h.bits,
                    h.overlap,
                    if h.style == markspace::registry::schema::Style::Whole {
                        "whole"
                    } else {
                        "bitwise"
                    },
                    h.use_case,
                    h.versions
                        .as_deref()
                        .map(|v| format!(" [{v}]"))
                        .unwrap_or_default()
                );
                for (v, m) in &h.values {
                    let _ = writeln!(out, "      {v}  {m}");
                }
            }
            output::print(&out)?;
            Ok(0)
        }
        RegistryCommand::Decode { value, ctmark } => {
            let Bits(v) = value.trim().parse().map_err(|_| {
                anyhow::anyhow!("`{value}` is not a 32-bit value (write 0x80B00 or 527104)")
            })?;
            let field = if ctmark { Field::CtMark } else { Field::Mark };
            let hits = query::decode(&reg, v, field);
            if format == Format::Json {
                return json(&reg, "readings", &hits);
            }
            let mut out = format!(
                "{} value {} ({v}): read by {} claim(s)\n",
                field.as_str(),
                hex(v),
                hits.len()
            );
            for h in &hits {
                let number = h
                    .number
                    .as_ref()
                    .map(|(n, x)| format!("  {n} {x}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:24} {:28} bits {} = {}{number}{}",
                    h.software,
                    h.claim,
                    h.bits,
                    h.masked,
                    h.versions
                        .as_deref()
                        .map(|v| format!(" [{v}]"))
                        .unwrap_or_default()
                );
                for (val, m) in &h.meanings {
                    let _ = writeln!(out, "      {val}  {m}");
                }
            }
            output::print(&out)?;
            Ok(0)
        }
        RegistryCommand::Conflicts { ids } => {
            let overlaps = query::conflicts(&reg, &ids)
                .map_err(|e| anyhow::anyhow!("{e}; `markspace registry list` shows the ids"))?;
            if format == Format::Json {
                return json(&reg, "conflicts", &overlaps);
            }
            let mut out = format!(
                "{} overlap(s) between registered defaults\n",
                overlaps.len()
            );
            for o in &overlaps {
                let _ = writeln!(
                    out,
                    "  {} & {}  {} {}  ({} / {}){}",
                    o.a,
                    o.b,
                    o.field.as_str(),
                    o.bits,
                    o.claims_a.join(","),
                    o.claims_b.join(","),
                    if o.by_design {
                        "  shared by design"
                    } else {
                        ""
                    }
                );
                for (id, link) in &o.incidents {
                    let _ = writeln!(out, "      incident {id}: {link}");
                }
            }
            output::print(&out)?;
            Ok(0)
        }
        RegistryCommand::Export => {
            if format == Format::Json {
                let free: Vec<String> = Field::BOTH
                    .iter()
                    .map(|f| hex(query::free_bits(&reg, *f)))
                    .collect();
                let mut doc = super::envelope(&reg, "software", &reg.software)?;
                doc["incidents"] = serde_json::to_value(&reg.incidents)?;
                doc["free_bits"] = serde_json::json!({"mark": free[0], "ctmark": free[1]});
                output::print(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
                return Ok(0);
            }
            output::print(&query::export_markdown(&reg))?;
            Ok(0)
        }
        RegistryCommand::Check => {
            let problems = validate(&reg);
            if format == Format::Json {
                let list: Vec<serde_json::Value> = problems
                    .iter()
                    .map(|p| serde_json::json!({"entry": p.entry, "message": p.message}))
                    .collect();
                json(&reg, "problems", &list)?;
                return Ok(if problems.is_empty() { 0 } else { 1 });
            }
            for p in &problems {
                eprintln!("{}: {}", p.entry, p.message);
            }
            output::print(&format!(
                "{} entries, {} incidents, {} problem(s)\n",
                reg.software.len(),
                reg.incidents.len(),
                problems.len()
            ))?;
            Ok(if problems.is_empty() { 0 } else { 1 })
        }
    }
}

/// One entry as text: what it is, its claims with their values, its knobs, the claims no knob
/// moves with why.
fn show_text(s: &markspace::registry::schema::Software) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}): {}", s.name, s.id, s.category);
    let _ = writeln!(out, "  {}", s.summary);
    for c in &s.claims {
        let _ = writeln!(
            out,
            "  claim {}: {} bits {} ({:?}, {:?}){}",
            c.id,
            c.kind.field().as_str(),
            c.bits,
            c.access,
            c.style,
            if c.verified { "" } else { " [unverified]" }
        );
        let _ = writeln!(out, "    {}", c.description);
        for v in &c.values {
            let _ = writeln!(out, "    value {}: {}", v.value, v.meaning);
        }
    }
    for k in &s.knobs {
        let _ = writeln!(
            out,
            "  knob {} (default {}): {}",
            k.name, k.default, k.location
        );
    }
    for f in &s.fixed {
        let _ = writeln!(
            out,
            "  fixed {}: {}{}",
            f.claims.join(", "),
            f.reason,
            if f.verified { "" } else { " [unverified]" }
        );
        let _ = writeln!(out, "    source: {}", f.source);
    }
    let _ = writeln!(out, "  source: {}", s.source);
    out
}
