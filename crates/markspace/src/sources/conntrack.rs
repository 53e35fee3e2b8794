//! Live connections: `conntrack -L` (`… mark=N …` per entry, decimal; `-o extended` prefixes the
//! layer-3 protocol). Each distinct connmark value becomes an [`Observation::ConnmarkValue`]
//! with the number of entries carrying it: what the connmark bits really hold on the node.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::source::SourceId;
use crate::touchpoint::Observation;

use super::sink::Sink;
use super::text::{c_u32, first_line, words, FirstLine, LineAt};

const PROTOS: &[&str] = &[
    "ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "gre", "udplite", "unknown",
];

fn is_entry(l: &str) -> bool {
    l.split_whitespace()
        .next()
        .is_some_and(|p| PROTOS.contains(&p))
        && l.contains(" src=")
}

/// Whether a text is `conntrack -L` output.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => cmd.split_whitespace().next() == Some("conntrack"),
        Some(FirstLine::Line(_, l)) => is_entry(l),
        None => false,
    }
}

/// Reads `conntrack -L` output.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
    for (at, line) in LineAt::lines(text, source) {
        if !is_entry(line.trim()) {
            continue;
        }
        for w in words(line) {
            let Some(v) = w.text.strip_prefix("mark=") else {
                continue;
            };
            match c_u32(v) {
                Some(mark) => *counts.entry(mark).or_default() += 1,
                None => {
                    diags.push(
                        Diagnostic::error(
                            at.span(w.at, w.text.len()),
                            format!("invalid connmark `{}`", w.text),
                        )
                        .with_hint("conntrack -L prints the connmark in decimal: `mark=16384`"),
                    );
                }
            }
        }
    }
    for (value, count) in counts {
        sink.observations
            .push((source, Observation::ConnmarkValue { value, count }));
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values() {
        let text = "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=16384 use=1\nudp      17 29 src=1.1.1.1 dst=2.2.2.2 sport=3 dport=4 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=4 dport=3 mark=0 use=1\nipv4     2 tcp      6 10 TIME_WAIT src=1.1.1.1 dst=2.2.2.2 sport=5 dport=6 src=2.2.2.2 dst=1.1.1.1 sport=6 dport=5 [ASSURED] mark=16384 zone=3 use=1\nconntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n";
        assert!(detect(text));
        let mut sink = Sink::default();
        assert!(parse(text, SourceId(0), "conntrack", &mut sink).is_empty());
        let obs: Vec<_> = sink.observations.into_iter().map(|(_, o)| o).collect();
        assert_eq!(
            obs,
            vec![
                Observation::ConnmarkValue { value: 0, count: 1 },
                Observation::ConnmarkValue {
                    value: 16384,
                    count: 2
                }
            ]
        );
    }
}
