//! Command-line definitions (what the user typed; no I/O here).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Who owns which bits of the Linux packet mark and connmark, and where they collide.
#[derive(Debug, Parser)]
#[command(name = "markspace", version, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Read a node's rules, attribute every mark operation, draw the bit map and report collisions.
    Audit(AuditArgs),
    /// Query the registry of who uses which mark bits.
    Registry(RegistryArgs),
    /// Capture a live node, read-only, into a snapshot directory that `audit` reads.
    Collect(CollectArgs),
    /// Walk a packet through the kernel pipeline of a snapshot: every hook, every rule that
    /// matched or touched a mark, the marks before and after, the routing decision, the verdict.
    Trace(TraceArgs),
    /// Assign conflict-free bits to the software on a node and print each tool's settings.
    Plan(PlanArgs),
    /// Prometheus exporter: collect and audit this node (or snapshots) on an interval and serve
    /// the last result as metrics, /report.json and /healthz; or write a textfile and exit.
    Serve(crate::cmd::serve::ServeArgs),
    /// Audit many nodes at once and group them by bit layout: which nodes differ, and how.
    Fleet(crate::cmd::fleet::FleetArgs),
    /// Print a shell completion script (`markspace completions bash > /etc/bash_completion.d/markspace`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page in roff (`markspace man > markspace.1; man ./markspace.1`).
    Man,
}

/// The way through the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PathArg {
    /// Delivered to a local socket (PREROUTING, INPUT).
    Ingress,
    /// Routed through (PREROUTING, FORWARD, POSTROUTING).
    Forward,
    /// Sent by a local socket (OUTPUT, POSTROUTING).
    Output,
}

/// The conntrack state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StateArg {
    /// First packet of a connection (NAT chains run).
    New,
    /// A later packet, original direction.
    Established,
    /// A reply.
    Reply,
}

#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    /// Snapshot files or directories (as for `audit`).
    #[arg(value_name = "SNAPSHOT", required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// The path through the node.
    #[arg(long, value_enum, default_value_t = PathArg::Forward)]
    pub(crate) path: PathArg,
    /// Input interface.
    #[arg(short = 'i', long = "in", value_name = "IFACE")]
    pub(crate) in_iface: Option<String>,
    /// Output interface.
    #[arg(long = "out", value_name = "IFACE")]
    pub(crate) out_iface: Option<String>,
    /// Source address.
    #[arg(short = 's', long)]
    pub(crate) src: Option<std::net::IpAddr>,
    /// Destination address.
    #[arg(short = 'd', long)]
    pub(crate) dst: Option<std::net::IpAddr>,
    /// Protocol (tcp, udp, icmp, or a number).
    #[arg(short = 'p', long)]
    pub(crate) proto: Option<String>,
    /// Source port.
    #[arg(long)]
    pub(crate) sport: Option<u16>,
    /// Destination port.
    #[arg(long)]
    pub(crate) dport: Option<u16>,
    /// Packet mark on arrival (on the output path: the socket mark).
    #[arg(short = 'm', long, default_value = "0")]
    pub(crate) mark: String,
    /// Connmark of the connection.
    #[arg(long, default_value = "0")]
    pub(crate) ctmark: String,
    /// Conntrack state.
    #[arg(long, value_enum, default_value_t = StateArg::New)]
    pub(crate) state: StateArg,
    /// Settle conditions trace cannot evaluate: `statistic=yes`, `set=no`, `all=no` (repeatable;
    /// names are match modules or `source address`, `destination port`…). Without it both
    /// branches are shown. `rpfilter` is assumed to pass unless `--assume rpfilter=no`.
    #[arg(long, value_name = "NAME=yes|no")]
    pub(crate) assume: Vec<String>,
    /// Most paths to show before undecided conditions are taken as not matching.
    #[arg(long, default_value_t = 16)]
    pub(crate) max_paths: usize,
    /// Output format: text, json, markdown (Mermaid flowcharts) or html (one self-contained page).
    #[arg(short = 'o', long, alias = "output", value_enum, default_value_t = TraceFormat::Text)]
    pub(crate) format: TraceFormat,
    /// Also read registry entries from this directory.
    #[arg(short = 'r', long, value_name = "DIR")]
    pub(crate) registry: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CollectArgs {
    /// Directory to write the snapshot into (created if missing; it must be empty). Default:
    /// a new `markspace-snapshot-<host>-<UTC time>` in the current directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Write into a non-empty --out that holds an earlier snapshot: its files (those its
    /// manifest.json lists, and the manifest) are removed first; any other file is refused.
    #[arg(long)]
    pub(crate) force: bool,
    /// Seconds each command may run before it is killed.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub(crate) timeout: u64,
}

/// Output formats of `trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TraceFormat {
    /// Human-readable.
    Text,
    /// JSON with version, markspace's and the registry's versions.
    Json,
    /// Markdown, each path a Mermaid flowchart through the hooks.
    Markdown,
    /// One self-contained HTML page, each path drawn as a flow through the hooks.
    Html,
}

/// Output formats of `registry` (markdown only for `registry export`, whose default it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RegistryFormat {
    /// Human-readable.
    Text,
    /// JSON with version, markspace's and the registry's versions.
    Json,
    /// Markdown (only `registry export`).
    Markdown,
}

/// Output formats of `audit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuditFormat {
    /// Human-readable, with a register diagram.
    Text,
    /// The documented JSON contract.
    Json,
    /// Markdown, for tickets and pull requests.
    Markdown,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
    /// One self-contained HTML page: SVG register map, findings, paths, inputs.
    Html,
    /// The bit map as a WaveDrom bit-field document (JSON; two lanes: mark, connmark).
    Bitfield,
}

/// When to exit 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FailOn {
    /// Error findings.
    Error,
    /// Warning or error findings.
    Warning,
    /// Any finding.
    Info,
    /// Never (exit 0 unless the input is bad).
    Never,
}

/// When to colour text output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

#[derive(Clone, Debug, Args)]
pub(crate) struct AuditArgs {
    /// Files, directories or archives (.tar.gz, .tgz, .tar, .zip) to read (iptables-save,
    /// iptables -S, iptables -L …); `-` reads stdin.
    #[arg(value_name = "PATH", required_unless_present = "live")]
    pub(crate) paths: Vec<PathBuf>,
    /// Collect this node (read-only, as `markspace collect`) into a temporary directory and audit it.
    #[arg(short = 'l', long)]
    pub(crate) live: bool,
    /// With --live: seconds each collection command may run.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub(crate) timeout: u64,
    /// Output format.
    #[arg(short = 'o', long, alias = "output", value_enum, default_value_t = AuditFormat::Text)]
    pub(crate) format: AuditFormat,
    /// Exit 1 when there are findings at or above this severity.
    #[arg(short = 'f', long, value_enum, default_value_t = FailOn::Error)]
    pub(crate) fail_on: FailOn,
    /// Also read registry entries from this directory (they replace built-in entries of the same id).
    #[arg(short = 'r', long, value_name = "DIR")]
    pub(crate) registry: Option<PathBuf>,
    /// When to use colours in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub(crate) color: Color,
    /// Read every input strictly: a malformed line is an error and nothing is audited (the
    /// default for machine output; pastes and fragments are otherwise read leniently).
    #[arg(long, conflicts_with = "lenient")]
    pub(crate) strict: bool,
    /// Read every input leniently: a malformed line is a warning, skipped and counted (the
    /// default for pastes and fragments); a run that skipped lines exits 3 unless findings
    /// reached --fail-on.
    #[arg(long)]
    pub(crate) lenient: bool,
    /// Findings this baseline file accepts (TOML `[[suppress]]` entries: code, owners, field,
    /// bits, a required reason, an optional expiry) leave the counts and the exit status and
    /// are listed as suppressed.
    #[arg(short = 'b', long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// Write a baseline accepting every finding of this audit to FILE (edit each reason).
    #[arg(long, value_name = "FILE")]
    pub(crate) write_baseline: Option<PathBuf>,
    /// A directory holding several nodes (one subdirectory each) is audited node by node: one
    /// report section per node and a summary of their exit statuses (without it, such a
    /// directory is refused with the list of nodes).
    #[arg(long)]
    pub(crate) each: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    #[command(subcommand)]
    pub(crate) command: RegistryCommand,
    /// Also read registry entries from this directory.
    #[arg(short = 'r', long, value_name = "DIR", global = true)]
    pub(crate) registry: Option<PathBuf>,
    /// Output format: text or json (and markdown for `export`, its default).
    #[arg(short = 'o', long, alias = "output", value_enum, global = true)]
    pub(crate) format: Option<RegistryFormat>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// List every software in the registry.
    List,
    /// Show one software's entry.
    Show {
        /// Registry id (`kube-proxy`, `calico`, …).
        id: String,
    },
    /// Every software claiming any of these bits: `0x4000`, `14`, `16-31`, `0xff0000`, `14,15`.
    Who {
        /// The bits.
        bits: String,
        /// Ask about the connmark instead of the packet mark.
        #[arg(long)]
        ctmark: bool,
    },
    /// What each software would read from a mark value (`decode 0x80B00`).
    Decode {
        /// The value (hex with 0x, or decimal).
        value: String,
        /// Decode a connmark value instead of a packet mark.
        #[arg(long)]
        ctmark: bool,
    },
    /// Which registered defaults overlap, with known incidents (all software when none is named).
    Conflicts {
        /// Registry ids.
        ids: Vec<String>,
    },
    /// The whole registry as Markdown tables (the public fwmark registry's shape) or JSON.
    Export,
    /// Check the registry data (ids, sources, values inside masks, knob defaults).
    Check,
}

/// Output formats of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// A bit map and the settings to paste.
    Text,
    /// The plan as JSON (schema/plan.schema.json).
    Json,
    /// Markdown in the public fwmark registry's shape.
    Markdown,
    /// One self-contained HTML page: the planned bit map, the settings to paste, the hazards.
    Html,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Registry ids, optionally with a version: `calico tailscale kubelet@1.27`.
    #[arg(value_name = "SOFTWARE", required = true)]
    pub(crate) software: Vec<String>,
    /// Plan around what this snapshot already runs: its other owners keep their bits.
    #[arg(long, value_name = "SNAPSHOT")]
    pub(crate) node: Option<PathBuf>,
    /// Software that must not move (repeatable).
    #[arg(long, value_name = "ID")]
    pub(crate) keep: Vec<String>,
    /// Fix a setting: `tailscale.firewall-mode=nftables`, `calico.mark-mask=0xff000000`
    /// (repeatable).
    #[arg(long = "set", value_name = "SOFTWARE.KNOB=VALUE")]
    pub(crate) settings: Vec<String>,
    /// Compare a node with the plan (drift): exit 1 when it uses bits the plan does not give
    /// it or planned owners clash.
    #[arg(long, value_name = "SNAPSHOT", conflicts_with = "node")]
    pub(crate) check: Option<PathBuf>,
    /// Write the node the plan describes (registry rule templates with the planned settings):
    /// `iptables.rules` for iptables-restore and `ip-rules.txt`, one `ip rule add` argument
    /// list a line.
    #[arg(long, value_name = "DIR")]
    pub(crate) emit_node: Option<PathBuf>,
    /// With --emit-node: write the node with every default setting instead.
    #[arg(long, requires = "emit_node")]
    pub(crate) defaults: bool,
    /// Output format.
    #[arg(short = 'o', long, alias = "output", value_enum, default_value_t = PlanFormat::Text)]
    pub(crate) format: PlanFormat,
    /// Also read registry entries from this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) registry: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// clap's own consistency checks: no two arguments of a command share a short flag, a long
    /// name or an alias (a global one included), every `conflicts_with` names an argument.
    #[test]
    fn short_flags_and_aliases_do_not_clash() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dash_o_is_format_everywhere() {
        for args in [
            &["markspace", "audit", "-o", "json", "x"][..],
            &["markspace", "trace", "-o", "html", "x"],
            &["markspace", "registry", "list", "-o", "json"],
            &["markspace", "audit", "--output", "sarif", "x"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parses");
            let json_like = match cli.command {
                Command::Audit(a) => matches!(a.format, AuditFormat::Json | AuditFormat::Sarif),
                Command::Trace(t) => t.format == TraceFormat::Html,
                Command::Registry(r) => r.format == Some(RegistryFormat::Json),
                _ => false,
            };
            assert!(json_like, "{args:?}");
        }
    }
}
