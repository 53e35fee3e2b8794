//! eBPF programs in the trace: at an attach point ([`Attach`]), every program placed there
//! (by its section name, or by the `tc filter show` / `bpftool net` line that names it, on the
//! packet's device) runs from the packet's mark; the abstract interpreter started from that
//! mark gives the mark at the program's exit, or which of its bits depend on other data.

use crate::model::{hex, MarkState, Node};
use crate::packet::Packet;
use crate::registry::Registry;
use crate::touchpoint::{attach_lines, placements, Attach, Subsystem, TouchContext};

use super::steps::Step;

/// Runs the programs attached at `at` on the packet with marks `state`, adding their steps.
pub(super) fn run(
    node: &Node,
    registry: &Registry,
    p: &Packet,
    at: Attach,
    state: &mut MarkState,
    steps: &mut Vec<Step>,
) {
    if node.programs.is_empty() {
        return;
    }
    let lines = attach_lines(&node.observations);
    // The device the attach point sees: the input device at ingress, the output one at egress.
    let device = match at {
        Attach::TcIngress | Attach::CgroupSkbIngress => p.in_iface.as_deref(),
        _ => p.out_iface.as_deref(),
    };
    for prog in &node.programs {
        let places = placements(prog.attach, Some(&prog.name), &lines);
        // On another device than the packet's (when both are known): not on this path.
        let Some((_, on)) = places
            .iter()
            .find(|(a, dev)| *a == at && (dev.is_none() || device.is_none() || *dev == device))
        else {
            continue;
        };
        let before = state.mark;
        let (after, unknown) = match prog.code.exit_mark(before) {
            Some((known, value)) => ((before & !known) | (value & known), !known),
            // No path ends (every path is a tail call or loops): the mark is not known.
            None => (before, u32::MAX),
        };
        state.mark = after;
        let ctx = TouchContext {
            program: Some(prog.name.clone()),
            ..TouchContext::default()
        };
        let owner = registry
            .attribute_touchpoint(Subsystem::Bpf, &ctx, &[])
            .owner;
        steps.push(Step::Program {
            program: prog.name.clone(),
            attach: at.as_str().to_string(),
            device: on
                .map(str::to_string)
                .or_else(|| device.map(str::to_string)),
            file: node.sources.name(prog.span).to_string(),
            line: prog.span.line,
            owner,
            mark: (hex(before), hex(after)),
            unknown: (unknown != 0).then(|| hex(unknown)),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::model::MarkState;
    use crate::packet::{CtState, Packet, PathKind};
    use crate::registry::Registry;
    use crate::snapshot::NodeLoader;
    use crate::trace::{trace, Options, Step};

    /// `cil_to_netdev` at tc egress: `mark = (mark & ~0xf00) | 0xa00`; `opaque` at tc ingress:
    /// `mark = skb->len`.
    const LISTING: &str = "# bpf-object: eBPF programs of an ELF object, relocated by markspace (one line per instruction)
program cil_to_netdev section tc/egress code 0 entry 0
program opaque section tc/ingress code 1 entry 0
code 0 tc/egress 6
     0: 6112080000000000  r2 = *(u32 *)(r1 +8)
     1: 57020000fff0ffff  r2 &= -3841
     2: 47020000000a0000  r2 |= 2560
     3: 6321080000000000  *(u32 *)(r1 +8) = r2
     4: b700000000000000  r0 = 0
     5: 9500000000000000  exit
code 1 tc/ingress 4
     0: 6112000000000000  r2 = *(u32 *)(r1 +0)
     1: 6321080000000000  *(u32 *)(r1 +8) = r2
     2: b700000000000000  r0 = 0
     3: 9500000000000000  exit
";

    fn programs(path: PathKind, mark: u32) -> Vec<String> {
        let mut l = NodeLoader::new();
        l.add_text("progs.txt", LISTING.as_bytes().to_vec(), true)
            .unwrap();
        let node = l.finish();
        let p = Packet {
            in_iface: Some("eth0".into()),
            out_iface: Some("eth1".into()),
            src: Some("10.0.1.2".parse().unwrap()),
            dst: Some("192.168.7.7".parse().unwrap()),
            proto: Some(17),
            sport: Some(40000),
            dport: Some(53),
            path,
            state: CtState::New,
        };
        let start = MarkState {
            mark,
            ..MarkState::default()
        };
        let t = trace(
            &node,
            &Registry::embedded().unwrap(),
            p,
            start,
            &Options::default(),
        );
        t.paths[0]
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Program { .. }))
            .filter_map(Step::program_line)
            .chain([t.paths[0].mark.clone()])
            .collect()
    }

    #[test]
    fn programs_run_at_their_attach_point_from_the_packet_mark() {
        assert_eq!(
            programs(PathKind::Output, 0x1234),
            [
                "bpf cil_to_netdev at tc egress dev eth1 (cilium) progs.txt:2  mark 0x00001234 -> 0x00001a34",
                "0x00001a34"
            ]
        );
        assert_eq!(
            programs(PathKind::Forward, 0xffff_ffff),
            [
                "bpf opaque at tc ingress dev eth0 (unknown) progs.txt:3  mark 0xffffffff -> 0xffffffff (bits 0xffffffff depend on other data: left as they were)",
                "bpf cil_to_netdev at tc egress dev eth1 (cilium) progs.txt:2  mark 0xffffffff -> 0xfffffaff",
                "0xfffffaff"
            ]
        );
        // Ingress: tc ingress only (no egress, no cgroup program here).
        assert_eq!(programs(PathKind::Ingress, 0).len(), 2);
    }
}
