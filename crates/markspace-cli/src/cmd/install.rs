//! `markspace completions SHELL` and `markspace man`: shell completions and the manual page,
//! generated from the same clap definition as the parser, so they cannot drift from it.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::output;

/// Prints the completion script of a shell.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "markspace", &mut buf);
    output::print(&String::from_utf8(buf)?)?;
    Ok(0)
}

/// Prints the manual page (roff): the command, then a section per subcommand.
pub(crate) fn man() -> anyhow::Result<u8> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    man.render_subcommands_section(&mut buf)?;
    // One section per subcommand with its own options (clap_mangen lists only their names).
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("markspace {}", sub.get_name());
        let sub = sub.clone().bin_name(&name);
        let nested = sub.has_subcommands();
        let page = clap_mangen::Man::new(sub);
        let mut part = Vec::new();
        page.render_synopsis_section(&mut part)?;
        page.render_description_section(&mut part)?;
        page.render_options_section(&mut part)?;
        if nested {
            page.render_subcommands_section(&mut part)?;
        }
        // Each part's headings become subsection headings under the subcommand.
        let text = String::from_utf8(part)?.replace(".SH ", ".SS ");
        buf.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        buf.extend_from_slice(text.as_bytes());
    }
    buf.extend_from_slice(EXIT_STATUS.as_bytes());
    man.render_version_section(&mut buf)?;
    output::print(&String::from_utf8(buf)?)?;
    Ok(0)
}

/// The exit statuses (main.rs decides them).
const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"
.TP
0
nothing at or above \\fB--fail-on\\fR (default: no error finding)
.TP
1
findings at or above \\fB--fail-on\\fR
.TP
2
a usage or input error (nothing was audited)
.TP
3
incomplete: a source the audit needs was not read, or pasted lines were skipped, and no
finding reached \\fB--fail-on\\fR
";
