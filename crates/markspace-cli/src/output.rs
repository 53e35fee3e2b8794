//! Writing to stdout, with a closed pipe treated as success.

use std::io::{self, IsTerminal, Write};

use crate::cli::Color;

/// Writes text to stdout.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Whether an error is a closed pipe (`markspace audit … | head`).
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Whether to colour stdout.
pub(crate) fn use_color(choice: Color) -> bool {
    color_for(choice, io::stdout().is_terminal())
}

/// Whether to colour stderr.
pub(crate) fn stderr_color(choice: Color) -> bool {
    color_for(choice, io::stderr().is_terminal())
}

/// `auto` colours a terminal unless `NO_COLOR` is set (non-empty).
fn color_for(choice: Color, terminal: bool) -> bool {
    match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}
