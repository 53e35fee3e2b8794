use super::*;
use crate::diagnostic::Diagnostic;
use crate::model::{MarkState, ReadTest};
use crate::source::SourceId;
use crate::sources::sink::Sink;
use crate::touchpoint::Observation;

fn run(text: &str, name: &str) -> (Sink, Vec<Diagnostic>) {
    let mut sink = Sink::default();
    let d = if detect_json(text) {
        parse_json(text, SourceId(0), name, &mut sink)
    } else {
        assert!(detect_text(text), "not detected: {text}");
        parse_text(text, SourceId(0), name, &mut sink)
    };
    (sink, d)
}

fn write_result(op: &MarkOp, mark: u32, ctmark: u32) -> (u32, u32) {
    let MarkOp::Write(w) = op else {
        panic!("not a write: {op:?}")
    };
    let mut s = MarkState {
        mark,
        ctmark,
        skmark: 0,
    };
    s.apply(w);
    (s.mark, s.ctmark)
}

#[test]
fn fw_handle_and_skbedit_with_double_space() {
    let text = "filter parent ffff: protocol all pref 2 fw chain 0\nfilter parent ffff: protocol all pref 2 fw chain 0 handle 0x6/0xff classid 1:1\n\taction order 1: skbedit  mark 33554432/0x2000000 pipe\n\t index 2 ref 1 bind 1\n";
    let (sink, d) = run(text, "tc_-s_filter_show_dev_eth0_ingress");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(sink.touchpoints.len(), 2);
    let fw = &sink.touchpoints[0];
    assert_eq!(fw.span.line, 2);
    assert_eq!(fw.context.device.as_deref(), Some("eth0"));
    assert_eq!(fw.context.priority, Some(2));
    let MarkOp::Read(r) = fw.ops[0] else { panic!() };
    assert_eq!(
        r.test,
        ReadTest::Equals {
            value: 6,
            mask: 0xff
        }
    );
    let sk = &sink.touchpoints[1];
    assert_eq!(sk.span.line, 3);
    assert_eq!(write_result(&sk.ops[0], 0xffff_ffff, 0), (0xffff_ffff, 0));
    assert_eq!(write_result(&sk.ops[0], 0, 0), (0x0200_0000, 0));
    // Without a mask skbedit replaces the whole mark.
    let (s, _) = run(
        "filter protocol ip pref 1 u32 chain 0 \n\taction order 1: skbedit  mark 7 pipe\n",
        "x",
    );
    assert_eq!(write_result(&s.touchpoints[0].ops[0], 0xf0, 0), (7, 0));
}

#[test]
fn connmark_ctinfo_ct_actions() {
    let text = "filter protocol all pref 1 matchall chain 0 handle 0x1\n\taction order 1: connmark zone 0 pipe\n\t index 1 ref 1 bind 1\n\taction order 2: ctinfo zone 0 pipe\n\t index 1 ref 1 bind 1 cpmark 0x00ff0000\n\taction order 3: ct commit mark 5/0xf zone 0 pipe\n";
    let (sink, d) = run(text, "x");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(sink.touchpoints.len(), 3);
    assert_eq!(
        write_result(&sink.touchpoints[0].ops[0], 0x1234, 0xabcd),
        (0xabcd, 0xabcd)
    );
    assert_eq!(
        write_result(&sink.touchpoints[1].ops[0], 0x1234, 0x00ab_cdef),
        (0x00ab_0000, 0x00ab_cdef)
    );
    assert_eq!(
        write_result(&sink.touchpoints[2].ops[0], 0, 0xffff_fff0),
        (0, 0xffff_fff5)
    );
    // act_ct does not mask the value: ct = V | (ct & ~M).
    let op = ct_mark_set(0x30, Some(0xf)).unwrap();
    assert_eq!(write_result(&op, 0, 0x5), (0, 0x30));
    assert!(ct_mark_set(5, Some(0)).is_none());
}

#[test]
fn bpf_filters_are_programs() {
    let text = "$ tc filter show dev eth0 ingress\nfilter protocol all pref 1 bpf chain 0 \nfilter protocol all pref 1 bpf chain 0 handle 0x1 cil_from_netdev-eth0 direct-action not_in_hw id 1169 name cil_from_netdev tag 91a9c2c3d5e4f6a7 jited \n$ tc filter show dev lxc1 egress\nfilter protocol all pref 1 bpf chain 0 handle 0x1 bpf_lxc.o:[from-container] direct-action not_in_hw id 15843 tag a7a920f725fab0ef jited\n";
    let (sink, d) = run(text, "x");
    assert!(d.is_empty());
    assert!(sink.touchpoints.is_empty());
    let progs: Vec<_> = sink.observations.iter().map(|(_, o)| o.clone()).collect();
    assert_eq!(
        progs,
        vec![
            Observation::BpfProgram {
                name: "cil_from_netdev".into(),
                attach: "tc ingress".into(),
                device: Some("eth0".into()),
                line: 3
            },
            Observation::BpfProgram {
                name: "bpf_lxc.o:[from-container]".into(),
                attach: "tc egress".into(),
                device: Some("lxc1".into()),
                line: 5
            },
        ]
    );
}

#[test]
fn json_forms() {
    let text = r#"[{"protocol":"all","pref":2,"kind":"fw","chain":0},{"protocol":"all","pref":2,"kind":"fw","chain":0,"options":{"handle":"0x6/0xff","classid":"1:1","actions":[{"order":1,"kind":"skbedit","mark":33554432,"mask":"0x2000000","control_action":{"type":"pipe"}}]}},{"protocol":"all","pref":3,"kind":"fw","chain":0,"options":{"fw":{"mark":"0x7","mask":"0xf"}}},{"protocol":"all","pref":1,"kind":"bpf","chain":0,"options":{"handle":"0x1","bpf_name":"cil_from_netdev-eth0","direct-action":true,"prog":{"id":1169,"name":"cil_from_netdev","tag":"91a9","jited":1}}}]"#;
    let (sink, d) = run(text, "tc-filter-show-dev-eth0-ingress.md");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(sink.touchpoints.len(), 2);
    assert_eq!(sink.touchpoints[0].ops.len(), 2);
    assert_eq!(sink.touchpoints[0].ops[0], fw_read(6, Some(0xff)));
    assert_eq!(
        sink.touchpoints[0].ops[1],
        skbedit_mark(0x200_0000, Some(0x200_0000))
    );
    assert_eq!(sink.touchpoints[1].ops[0], fw_read(7, Some(0xf)));
    assert_eq!(sink.touchpoints[0].context.device.as_deref(), Some("eth0"));
    assert!(
        matches!(&sink.observations[0].1, Observation::BpfProgram { name, attach, .. } if name == "cil_from_netdev" && attach == "tc ingress")
    );
}

#[test]
fn malformed_values_are_errors() {
    let (_, d) = run(
        "filter protocol all pref 2 fw chain 0 handle 0xq classid 1:1\n",
        "x",
    );
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("invalid fw handle"));
    let (_, d) = run(
        "filter protocol all pref 2 u32 chain 0\n\taction order 1: skbedit  mark x/0x1 pipe\n",
        "x",
    );
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].span.line, 2);
}

#[test]
fn file_names() {
    assert_eq!(
        from_file_name("sos_commands/networking/tc_-s_filter_show_dev_eth0_ingress"),
        (Some("eth0".to_string()), Some("ingress"))
    );
    assert_eq!(
        from_file_name("cmd/tc-filter-show-dev-cilium_host-egress.md"),
        (Some("cilium_host".to_string()), Some("egress"))
    );
}
