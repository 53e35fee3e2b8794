//! The `markspace` command: argument parsing and glue around the library.
//!
//! Exit status (one place decides, as ripgrep does): 0 = nothing at or above `--fail-on`,
//! 1 = findings at or above it, 2 = usage or input error, 3 = incomplete (a source not read,
//! pasted lines skipped). A closed pipe counts as success.

mod cli;
mod cmd;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Audit(args) => cmd::audit::run(args),
        cli::Command::Registry(args) => cmd::registry::run(args),
        cli::Command::Collect(args) => cmd::collect::run(args),
        cli::Command::Trace(args) => cmd::trace::run(args),
        cli::Command::Plan(args) => cmd::plan::run(args),
        cli::Command::Serve(args) => cmd::serve::run(args),
        cli::Command::Fleet(args) => cmd::fleet::run(args),
        cli::Command::Completions { shell } => cmd::install::completions(shell),
        cli::Command::Man => cmd::install::man(),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if output::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("markspace: error: {}", one_cause_each(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes joined by `: `, leaving out a cause whose text the message before
/// it already ends with (an I/O error its wrapper prints, as `/nonexistent` shows), so each
/// cause is said once.
fn one_cause_each(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}
