//! `markspace registry`.

use std::fmt::Write;

use markspace::model::hex;
use markspace::registry::validate;

use crate::cli::{Format, RegistryArgs, RegistryCommand};
use crate::output;

pub(crate) fn run(args: RegistryArgs) -> anyhow::Result<u8> {
    let reg = super::load_registry(args.registry.as_deref())?;
    match args.command {
        RegistryCommand::List => {
            if args.format == Format::Json {
                output::print(&(serde_json::to_string_pretty(&reg.software)? + "\n"))?;
                return Ok(0);
            }
            let mut out = String::new();
            for s in &reg.software {
                let mark = s.claimed(markspace::model::Field::Mark);
                let ct = s.claimed(markspace::model::Field::CtMark);
                let _ = writeln!(
                    out,
                    "{:24} {:14} mark {}  ctmark {}  {}",
                    s.id,
                    s.category,
                    if s.uses_marks {
                        hex(mark)
                    } else {
                        "-".repeat(10)
                    },
                    if s.uses_marks {
                        hex(ct)
                    } else {
                        "-".repeat(10)
                    },
                    s.summary
                );
            }
            output::print(&out)?;
            Ok(0)
        }
        RegistryCommand::Show { id } => {
            let Some(s) = reg.get(&id) else {
                anyhow::bail!("no registry entry `{id}`; `markspace registry list` shows them all");
            };
            output::print(&(serde_json::to_string_pretty(s)? + "\n"))?;
            Ok(0)
        }
        RegistryCommand::Check => {
            let problems = validate(&reg);
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
