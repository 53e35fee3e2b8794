//! eBPF programs: `bpftool net [show]` and `bpftool prog [show]`.
//!
//! `__sk_buff->mark` is writable from `tc` (sched_cls/sched_act, tcx), `cgroup_skb` and
//! `lwt_*` programs (`net/core/filter.c`, `*_is_valid_access`), and `cgroup/sock` programs set
//! the socket mark. Their mark operations are invisible in these listings, so each program is an
//! [`Observation::BpfProgram`] with its attach point; attribution names the owner from the
//! registry's `programs` (Cilium's `cil_from_netdev`).
//!
//! ```text
//! tc:
//! eth0(2) clsact/ingress bpf_network.o:[from-network] id 221
//! eth0(2) tcx/ingress cil_from_netdev prog_id 1169 link_id 4
//! ```
//!
//! ```text
//! 1169: sched_cls  name cil_from_netdev  tag 91a9c2c3d5e4f6a7  gpl
//! ```

use crate::diagnostic::Diagnostic;
use crate::source::{Lines, SourceId};
use crate::touchpoint::Observation;

use super::sink::Sink;
use super::text::{first_line, prompt_command, FirstLine};

/// Program types that can touch the packet or socket mark.
const MARK_TYPES: &[&str] = &[
    "sched_cls",
    "sched_act",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "lwt_seg6local",
    "sock_ops",
];

const SECTIONS: &[&str] = &["xdp:", "tc:", "flow_dissector:", "netfilter:", "tcx:"];

/// `ID: TYPE  name NAME  tag …` of `bpftool prog show`.
fn prog_line(l: &str) -> Option<(&str, Option<&str>)> {
    let mut w = l.split_whitespace();
    let id = w.next()?.strip_suffix(':')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let kind = w.next()?;
    let rest: Vec<&str> = w.collect();
    if !rest.contains(&"tag") {
        return None;
    }
    let name = rest
        .iter()
        .position(|x| *x == "name")
        .and_then(|i| rest.get(i + 1).copied());
    Some((kind, name))
}

/// Whether a text is `bpftool net` or `bpftool prog` output.
pub(crate) fn detect(text: &str) -> bool {
    match first_line(text, &['#']) {
        Some(FirstLine::Command(cmd)) => cmd.split_whitespace().next() == Some("bpftool"),
        Some(FirstLine::Line(_, l)) => SECTIONS.contains(&l) || prog_line(l).is_some(),
        None => false,
    }
}

/// Reads `bpftool net` / `bpftool prog` output.
pub(crate) fn parse(text: &str, source: SourceId, _name: &str, sink: &mut Sink) -> Vec<Diagnostic> {
    let mut section = String::new();
    for (line_no, _, line) in Lines::new(text) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || prompt_command(l).is_some() {
            continue;
        }
        if SECTIONS.contains(&l) {
            section = l.trim_end_matches(':').to_string();
            continue;
        }
        if let Some((kind, name)) = prog_line(l) {
            if let Some(name) = name.filter(|_| MARK_TYPES.contains(&kind)) {
                sink.observations.push((
                    source,
                    Observation::BpfProgram {
                        name: name.to_string(),
                        attach: kind.to_string(),
                        device: None,
                        line: line_no,
                    },
                ));
            }
            continue;
        }
        if section != "tc" && section != "tcx" {
            continue;
        }
        // `DEV(IFINDEX) ATTACH NAME id N` / `… NAME prog_id N link_id M`.
        let ws: Vec<&str> = l.split_whitespace().collect();
        let (Some(dev), Some(attach), Some(name)) = (ws.first(), ws.get(1), ws.get(2)) else {
            continue;
        };
        let device = dev.split_once('(').map_or(*dev, |(d, _)| d);
        sink.observations.push((
            source,
            Observation::BpfProgram {
                name: name.to_string(),
                attach: attach.to_string(),
                device: Some(device.to_string()),
                line: line_no,
            },
        ));
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        assert!(detect(text));
        let mut sink = Sink::default();
        parse(text, SourceId(0), "bpftool", &mut sink);
        sink.observations
            .iter()
            .map(|(_, o)| match o {
                Observation::BpfProgram {
                    name,
                    attach,
                    device,
                    line,
                } => format!(
                    "{line}:{name}@{attach}/{}",
                    device.as_deref().unwrap_or("-")
                ),
                _ => panic!(),
            })
            .collect()
    }

    #[test]
    fn net_show() {
        let text = "xdp:\n\ntc:\neth0(2) clsact/ingress bpf_network.o:[from-network] id 221\ncilium_host(5) clsact/ingress bpf_host.o:[to-host] id 222\neth0(2) tcx/ingress cil_from_netdev prog_id 1169 link_id 4\n\nflow_dissector:\n\n";
        assert_eq!(
            names(text),
            vec![
                "4:bpf_network.o:[from-network]@clsact/ingress/eth0",
                "5:bpf_host.o:[to-host]@clsact/ingress/cilium_host",
                "6:cil_from_netdev@tcx/ingress/eth0",
            ]
        );
    }

    #[test]
    fn prog_show() {
        let text = "1169: sched_cls  name cil_from_netdev  tag 91a9c2c3d5e4f6a7  gpl\n\tloaded_at 2024-05-01T10:00:00+0000  uid 0\n\txlated 1234B  jited 800B  memlock 4096B  map_ids 1,2\n1170: kprobe  name trace_x  tag 00  gpl\n1171: cgroup_sock  name sock_mark  tag 01\n";
        assert_eq!(
            names(text),
            vec!["1:cil_from_netdev@sched_cls/-", "5:sock_mark@cgroup_sock/-"]
        );
    }
}
