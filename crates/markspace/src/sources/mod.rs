//! Input formats: each knows its syntax and turns text into the ruleset model.
//!
//! Every format registers in [`ALL`] with a name, a detector and a parser. Parsers do no I/O:
//! they take a text, its [`SourceId`] and display name, and add to a [`RulesetBuilder`],
//! returning diagnostics. Reading files and directories lives in [`crate::snapshot`].

pub(crate) mod bpf_object;
pub(crate) mod bpftool;
pub(crate) mod conntrack;
pub(crate) mod iplink;
pub(crate) mod iprule;
pub mod iptables;
pub(crate) mod ipvs;
pub(crate) mod lines;
pub mod nft;
pub(crate) mod ovs;
pub(crate) mod paste;
mod sink;
pub(crate) mod ss;
pub(crate) mod sysctl;
pub(crate) mod tc;
pub(crate) mod text;
pub(crate) mod wireguard;
pub(crate) mod xfrm;

use crate::diagnostic::Diagnostic;
use crate::packet::DetailDecoder;
use crate::source::SourceId;
pub use sink::Sink;

/// One input format.
pub struct Format {
    /// Short name used in messages and `--format-of` overrides (`iptables-save`).
    pub name: &'static str,
    /// What it is, for `--help` and errors.
    pub description: &'static str,
    /// Whether a text is in this format (looks at the first lines only).
    pub detect: fn(&str) -> bool,
    /// Reads a text of this format.
    pub parse: fn(&str, SourceId, &str, &mut Sink) -> Vec<Diagnostic>,
    /// Decodes the non-mark conditions of one of its rules, for formats with netfilter rules
    /// whose conditions markspace reads (`trace` evaluates them).
    pub details: Option<DetailDecoder>,
}

/// Every supported format, in detection order.
pub const ALL: &[Format] = &[
    Format {
        name: "iptables-save",
        description:
            "iptables-save / ip6tables-save output, `iptables -S` output, or iptables commands",
        detect: iptables::save::detect,
        parse: |text, id, name, sink| {
            iptables::save::parse_in(text, id, name, &mut sink.ruleset, sink.fragment)
        },
        details: Some(|text, span| iptables::conds::details(&text[span.range()])),
    },
    Format {
        name: "iptables-list",
        description: "iptables -L listings (-L, -nvL, --line-numbers, -x)",
        detect: iptables::listing::detect,
        parse: |text, id, name, sink| {
            iptables::listing::parse_in(text, id, name, &mut sink.ruleset, sink.fragment)
        },
        details: Some(|text, span| iptables::listing_conds::details(&text[span.range()])),
    },
    Format {
        name: "nft-json",
        description: "nft -j list ruleset (libnftables JSON)",
        detect: nft::json::detect,
        parse: |text, id, name, sink| nft::json::parse(text, id, name, &mut sink.ruleset),
        details: Some(nft::conds::json_details),
    },
    Format {
        name: "nft-text",
        description: "nft list ruleset output (also -a, with counters) or nft scripts (add rule …)",
        detect: nft::text::detect,
        parse: |text, id, name, sink| {
            nft::text::parse_in(text, id, name, &mut sink.ruleset, sink.fragment)
        },
        details: Some(nft::conds::text_details),
    },
    Format {
        name: "ip-rule",
        description: "`ip rule show` / `ip -6 rule` listings and `ip rule add` commands",
        detect: iprule::detect_text,
        parse: iprule::parse_text,
        details: None,
    },
    Format {
        name: "ip-rule-json",
        description: "`ip -j rule show` output",
        detect: iprule::detect_json,
        parse: iprule::parse_json,
        details: None,
    },
    Format {
        name: "ip-xfrm",
        description: "`ip xfrm policy` / `ip [-s] xfrm state` output",
        detect: xfrm::detect,
        parse: xfrm::parse,
        details: None,
    },
    Format {
        name: "tc-filter",
        description: "`tc [-s] filter show` output (one or several devices)",
        detect: tc::detect_text,
        parse: tc::parse_text,
        details: None,
    },
    Format {
        name: "tc-filter-json",
        description: "`tc -j filter show` output",
        detect: tc::detect_json,
        parse: tc::parse_json,
        details: None,
    },
    Format {
        name: "ovs-flows",
        description: "`ovs-ofctl dump-flows BRIDGE` output and `ovs-ofctl add-flow` commands",
        detect: ovs::detect,
        parse: ovs::parse,
        details: None,
    },
    Format {
        name: "ss",
        description: "`ss -e` socket listings (`ss -tuanpe`, `ss -peaonmi`): socket marks",
        detect: ss::detect,
        parse: ss::parse,
        details: None,
    },
    Format {
        name: "wireguard",
        description: "`wg show [all fwmark]`, `wg showconf`, wg-quick `.conf` files",
        detect: wireguard::detect,
        parse: wireguard::parse,
        details: None,
    },
    Format {
        name: "sysctl",
        description: "`sysctl -a` output or sysctl.conf files (src_valid_mark, rp_filter, fwmark_reflect, tcp_fwmark_accept)",
        detect: sysctl::detect,
        parse: sysctl::parse,
        details: None,
    },
    Format {
        name: "ipvsadm",
        description: "`ipvsadm -Ln` (fwmark virtual services)",
        detect: ipvs::detect,
        parse: ipvs::parse,
        details: None,
    },
    Format {
        name: "conntrack",
        description: "`conntrack -L` (connmark values of live connections)",
        detect: conntrack::detect,
        parse: conntrack::parse,
        details: None,
    },
    Format {
        name: "bpftool",
        description: "`bpftool net` / `bpftool prog show` (eBPF programs that may touch marks)",
        detect: bpftool::detect,
        parse: bpftool::parse,
        details: None,
    },
    Format {
        name: "bpf-object",
        description: "eBPF ELF objects (`.o`), read as markspace's listing of their relocated programs: every mark read and write, by abstract interpretation",
        detect: bpf_object::detect,
        parse: bpf_object::parse,
        details: None,
    },
    Format {
        name: "ip-link",
        description: "`ip -d link` / `ip -d address` (tunnel device fwmark)",
        detect: iplink::detect,
        parse: iplink::parse,
        details: None,
    },
];

/// A binary input format: recognised by its bytes and read into the text of a format of
/// [`ALL`] (its listing), which is what the model's spans point into.
pub struct Binary {
    /// Short name (`bpf-elf`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Whether the bytes are in this format (magic numbers).
    pub detect: fn(&[u8]) -> bool,
    /// Reads the bytes into the listing, or says at which byte and why it cannot.
    pub decode: Decode,
    /// The format of [`ALL`] that reads the listing.
    pub listing: &'static str,
}

/// Reads a binary input into its listing, or says at which byte and why it cannot.
pub type Decode = fn(&[u8]) -> Result<String, (u64, String)>;

/// Every binary format.
pub const BINARY: &[Binary] = &[Binary {
    name: "bpf-elf",
    description:
        "eBPF ELF objects (clang -target bpf, Cilium's bpf_*.o, anything tc or libbpf loads)",
    detect: bpf_object::detect_bytes,
    decode: bpf_object::decode,
    listing: "bpf-object",
}];

/// The binary format of some bytes, if any.
pub fn detect_binary(bytes: &[u8]) -> Option<&'static Binary> {
    BINARY.iter().find(|b| (b.detect)(bytes))
}

/// The format of a text, if any format recognises it.
pub fn detect(text: &str) -> Option<&'static Format> {
    ALL.iter().find(|f| (f.detect)(text))
}

/// A format by name.
pub fn by_name(name: &str) -> Option<&'static Format> {
    ALL.iter().find(|f| f.name == name)
}

#[cfg(test)]
mod attribution_tests;
#[cfg(test)]
mod corpus_tests;
