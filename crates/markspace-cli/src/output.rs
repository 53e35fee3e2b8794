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

/// The width to fit tables to: `COLUMNS` when set to a number, else the terminal's width when
/// stdout is a terminal, else none (a pipe or a file gets whole lines, for grep).
pub(crate) fn width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return Some(n);
    }
    let out = io::stdout();
    if !out.is_terminal() {
        return None;
    }
    rustix::termios::tcgetwinsize(&out)
        .ok()
        .map(|w| usize::from(w.ws_col))
        .filter(|&n| n > 0)
}

/// A table with a header row, columns as wide as their widest cell, two spaces apart. With a
/// width, the last column is cut with `…` so each line fits (it keeps at least 12 characters).
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>], width: Option<usize>) -> String {
    let chars = |s: &str| s.chars().count();
    let last = headers.len().saturating_sub(1);
    let mut widths: Vec<usize> = headers.iter().map(|h| chars(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(chars(cell));
        }
    }
    let before_last: usize = widths[..last].iter().map(|w| w + 2).sum();
    let room = width.map(|w| w.saturating_sub(before_last).max(12));
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                match room {
                    Some(r) if chars(cell) > r => {
                        line.extend(cell.chars().take(r - 1));
                        line.push('…');
                    }
                    _ => line.push_str(cell),
                }
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', widths[i] - chars(cell) + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Vec<String>> {
        vec![
            vec![
                "calico".into(),
                "0x000f0000".into(),
                "Calico's policy marks, and a long tail of words".into(),
            ],
            vec!["kube-proxy".into(), "0x0000c000".into(), "short".into()],
        ]
    }

    #[test]
    fn columns_line_up_under_upper_case_headers() {
        let t = table(&["id", "mark", "summary"], &rows(), None);
        assert_eq!(
            t,
            "ID          MARK        SUMMARY\n\
             calico      0x000f0000  Calico's policy marks, and a long tail of words\n\
             kube-proxy  0x0000c000  short\n"
        );
    }

    #[test]
    fn the_last_column_is_cut_to_the_width() {
        let t = table(&["id", "mark", "summary"], &rows(), Some(40));
        for line in t.lines() {
            assert!(line.chars().count() <= 40, "{line:?}");
        }
        assert!(
            t.contains("calico      0x000f0000  Calico's policy…\n"),
            "{t}"
        );
        assert!(t.contains("kube-proxy  0x0000c000  short\n"), "{t}");
    }

    #[test]
    fn a_narrow_terminal_keeps_some_of_the_last_column() {
        let t = table(&["id", "mark", "summary"], &rows(), Some(10));
        assert!(t.contains("Calico's po…"), "{t}");
    }
}
