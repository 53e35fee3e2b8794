use super::*;
use crate::model::{MarkOp, ReadTest, ALL_BITS};
use crate::source::SourceId;
use crate::sources::sink::Sink;
use crate::touchpoint::TouchContext;

fn listing(line: &str) -> IpRule {
    parse_line(line, LineForm::Listing).expect("parses")
}

fn read_of(rule: &IpRule) -> Option<(u32, u32, bool)> {
    rule.read().map(|r| match r.test {
        ReadTest::Equals { value, mask } => (value, mask, r.invert),
        _ => unreachable!("ip rule reads are equalities"),
    })
}

#[test]
fn listing_masks() {
    let r = listing("5210:\tfrom all fwmark 0x80000/0xff0000 lookup main");
    assert_eq!(r.priority, Some(5210));
    assert_eq!(read_of(&r), Some((0x80000, 0xff0000, false)));
    assert_eq!(r.target, Some(Target::Lookup("main".into())));
    // Printed without a mask: all 32 bits, for nonzero and zero values alike.
    assert_eq!(
        read_of(&listing("30: from all fwmark 0x1745ec lookup 7")),
        Some((0x1745ec, ALL_BITS, false))
    );
    assert_eq!(
        read_of(&listing("101: from all fwmark 0 lookup 101")),
        Some((0, ALL_BITS, false))
    );
    // A value with bits outside the mask is normalised into it (the kernel xors then masks).
    assert_eq!(
        read_of(&listing("1: from all fwmark 0x1ff/0xf0 lookup 1")),
        Some((0xf0, 0xf0, false))
    );
    // Mask 0 matches everything: no read.
    assert_eq!(
        read_of(&listing("102: from all fwmark 0x5/0 lookup 102")),
        None
    );
    let not = listing("32765:\tnot from all fwmark 0xca6c lookup 51820");
    assert_eq!(read_of(&not), Some((0xca6c, ALL_BITS, true)));
    assert!(listing("0:\tfrom all lookup local").read().is_none());
}

#[test]
fn listing_targets_and_flags() {
    let r = listing("9000:\tfrom all fwmark 0x2024 goto 9002");
    assert_eq!(r.target, Some(Target::Goto(9002)));
    let r = listing("5250:\tfrom all fwmark 0x80000/0xff0000 unreachable");
    assert_eq!(r.target, Some(Target::Action("unreachable".into())));
    let r = listing("105: from all lookup main suppress_prefixlength 0");
    assert_eq!(r.suppress_prefixlength, Some(0));
    let r = listing("1000:   from all lookup [l3mdev-table]");
    assert!(r.l3mdev);
    let r = listing("30:    from all fwmark 0x1745ec lookup 7        <- not ours, OVN's own");
    assert!(!r.not, "`not` in an annotation is not the rule's");
    assert_eq!(r.target, Some(Target::Lookup("7".into())));
    let r = listing("100: from all iif eth0 [detached] fwmark 0x1 lookup 5 proto static");
    assert_eq!(r.iif.as_deref(), Some("eth0"));
}

#[test]
fn command_masks() {
    let cmd = |l: &str| parse_line(l, LineForm::Command).expect("parses");
    // `ip rule add fwmark 0` has mask 0: it matches every packet.
    assert_eq!(read_of(&cmd("ip rule add fwmark 0 lookup 100")), None);
    assert_eq!(
        read_of(&cmd("ip -f inet rule add fwmark 1337 lookup 133")),
        Some((1337, ALL_BITS, false))
    );
    let r = cmd("sudo ip -6 rule add not fwmark 51820 table 51820 pref 5");
    assert_eq!(read_of(&r), Some((51820, ALL_BITS, true)));
    assert!(r.ipv6);
    assert_eq!(r.priority, Some(5));
    assert_eq!(r.target, Some(Target::Lookup("51820".into())));
    assert_eq!(
        read_of(&cmd("ip rule add fwmark 0/0xffffffff lookup 9")),
        Some((0, ALL_BITS, false))
    );
}

#[test]
fn malformed_lines_are_errors_with_columns() {
    let e = parse_line("30:\tfrom all fwmark 0xZZ lookup 7", LineForm::Listing).unwrap_err();
    assert_eq!(e.0, 20);
    assert!(e.1.contains("invalid fwmark"));
    let e = parse_line("30:\tfrom all fwmark", LineForm::Listing).unwrap_err();
    assert!(e.1.contains("without a value"));
}

fn run(text: &str, name: &str) -> (Sink, Vec<crate::diagnostic::Diagnostic>) {
    let mut sink = Sink::default();
    let diags = if detect_json(text) {
        parse_json(text, SourceId(0), name, &mut sink)
    } else {
        assert!(detect_text(text), "detected: {text}");
        parse_text(text, SourceId(0), name, &mut sink)
    };
    (sink, diags)
}

#[test]
fn text_touchpoints_carry_context_and_lines() {
    let text = "0:\tfrom all lookup local\n5210:\tfrom all fwmark 0x80000/0xff0000 lookup main\n5270:\tfrom all lookup 52\n";
    let (sink, diags) = run(text, "ip-rule.txt");
    assert!(diags.is_empty());
    assert_eq!(sink.touchpoints.len(), 1);
    let tp = &sink.touchpoints[0];
    assert_eq!(tp.span.line, 2);
    assert_eq!(tp.context.priority, Some(5210));
    assert_eq!(tp.context.table.as_deref(), Some("main"));
    assert!(!tp.context.ipv6);
    let start = tp.span.start as usize;
    assert!(text[start..].starts_with("5210:"));
}

#[test]
fn prompts_switch_family_and_skip_other_commands() {
    let text = "sh-5.2# ip rule\n\n30:\tfrom all fwmark 0x1745ec lookup 7\nsh-5.2# ip -6 rule\n10:\tfrom all fwmark 0xa00/0xf00 lookup 2005\nsh-5.2# iptables -t mangle -L\n1:\tfrom all fwmark 0x1 lookup 1 not an ip rule section\n";
    let (sink, diags) = run(text, "session.txt");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(sink.touchpoints.len(), 2);
    assert!(!sink.touchpoints[0].context.ipv6);
    assert!(sink.touchpoints[1].context.ipv6);
}

#[test]
fn json_matches_text() {
    // Captured from iproute2-6.1.0 (`ip -j rule show` in a netns).
    let json = r#"[{"priority":0,"src":"all","table":"local"},{"priority":101,"src":"all","fwmark":"0","table":"101"},{"priority":102,"src":"all","fwmark":"0x5","fwmask":"0","table":"102"},{"priority":103,"not":null,"src":"all","fwmark":"0xca6c","table":"51820"},{"priority":104,"src":"all","fwmark":"0","fwmask":"0xff","table":"104"},{"priority":106,"src":"all","fwmark":"0x10","goto":1024},{"priority":107,"src":"all","fwmark":"0x11","action":"unreachable"},{"priority":1024,"src":"all","fwmark":"0x80","fwmask":"0x80","table":"main"}]"#;
    let text = "0:\tfrom all lookup local\n101:\tfrom all fwmark 0 lookup 101\n102:\tfrom all fwmark 0x5/0 lookup 102\n103:\tnot from all fwmark 0xca6c lookup 51820\n104:\tfrom all fwmark 0/0xff lookup 104\n106:\tfrom all fwmark 0x10 goto 1024\n107:\tfrom all fwmark 0x11 unreachable\n1024:\tfrom all fwmark 0x80/0x80 lookup main\n";
    let (a, da) = run(json, "ip-j-rule.json");
    let (b, db) = run(text, "ip-rule.txt");
    assert!(da.is_empty() && db.is_empty(), "{da:?} {db:?}");
    let ops = |s: &Sink| -> Vec<(Vec<MarkOp>, TouchContext)> {
        s.touchpoints
            .iter()
            .map(|t| (t.ops.clone(), t.context.clone()))
            .collect()
    };
    assert_eq!(ops(&a), ops(&b));
    assert_eq!(a.touchpoints.len(), 6);
    // Each JSON touchpoint spans its own object.
    let t = &a.touchpoints[1];
    assert!(json[t.span.range()].starts_with("{\"priority\":103"));
}

#[test]
fn json_errors() {
    let (_, d) = run(r#"[{"priority":1,"fwmark":"zz","table":"1"}]"#, "x.json");
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("invalid fwmark"));
    let mut sink = Sink::default();
    let d = parse_json(r#"[{"priority":1,"fwm"#, SourceId(0), "x", &mut sink);
    assert!(d[0].message.contains("truncated"));
}

#[test]
fn detection() {
    assert!(detect_text("0:\tfrom all lookup local\n"));
    assert!(detect_text("# comment\nip rule add fwmark 1 lookup 2\n"));
    assert!(!detect_text("-A KUBE-FIREWALL -j DROP\n"));
    assert!(!detect_text("src 10.0.0.1 dst 10.0.0.2\n"));
    assert!(detect_json(
        "[{\"priority\":0,\"src\":\"all\",\"table\":\"local\"}]"
    ));
    assert!(!detect_json("[{\"protocol\":\"all\"}]"));
}

/// Web UIs (OpenWrt LuCI's `Priority<TAB>Rule` table) drop the colon after the priority.
#[test]
fn listing_lines_without_the_colon() {
    assert!(super::text::is_listing(
        "2001\tfrom all fwmark 0x100/0x3f00 lookup 1"
    ));
    assert!(super::text::is_listing("0:\tfrom all lookup local"));
    assert!(!super::text::is_listing("Priority\tRule"));
    assert!(!super::text::is_listing("2001 to all"));
}
