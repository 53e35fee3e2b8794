//! Listings: round trip, bad lines, and the audit's touchpoints.

use super::*;
use crate::model::{Field, MarkWrite};

fn object(insns: &[[u8; 8]]) -> Object {
    Object {
        code: vec![Code {
            section: "tc".into(),
            insns: insns.iter().map(|b| Insn::decode(*b)).collect(),
        }],
        programs: vec![Program {
            name: "set_mark".into(),
            kind: "sched_cls".into(),
            context: crate::bpf::Context::Skb(8),
            code: 0,
            entry: 0,
        }],
    }
}

const SET_1337: [[u8; 8]; 4] = [
    [0xb7, 0x02, 0, 0, 0x37, 0x13, 0, 0],
    [0x63, 0x21, 0x08, 0, 0, 0, 0, 0],
    [0xb7, 0x00, 0, 0, 0, 0, 0, 0],
    [0x95, 0, 0, 0, 0, 0, 0, 0],
];

fn read(text: &str) -> (Sink, Vec<Diagnostic>) {
    let mut sink = Sink::default();
    let d = parse(text, SourceId(0), "x.o", &mut sink);
    (sink, d)
}

#[test]
fn listing_reads_back_and_finds_the_whole_write() {
    let text = listing(&object(&SET_1337));
    assert!(detect(&text));
    assert!(
        text.contains("     1: 6321080000000000  *(u32 *)(r1 +8) = r2\n"),
        "{text}"
    );
    let (sink, diags) = read(&text);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(sink.touchpoints.len(), 1);
    let tp = &sink.touchpoints[0];
    assert_eq!(tp.subsystem, Subsystem::Bpf);
    assert_eq!(tp.context.program.as_deref(), Some("set_mark"));
    assert_eq!(
        tp.ops,
        vec![MarkOp::Write(MarkWrite::constant(Field::Mark, 0, 0x1337))]
    );
    assert_eq!(
        &text[tp.span.range()],
        "1: 6321080000000000  *(u32 *)(r1 +8) = r2"
    );
}

#[test]
fn rejects_a_bad_hex_byte_with_its_column() {
    let text = listing(&object(&SET_1337)).replace("6321080000000000", "63210800zz000000");
    let (_, diags) = read(&text);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let line = text.lines().position(|l| l.contains("zz")).unwrap() + 1;
    assert_eq!(diags[0].span.line as usize, line);
    assert_eq!(&text[diags[0].span.start as usize..][..2], "zz");
}

#[test]
fn rejects_a_truncated_listing() {
    let text = listing(&object(&SET_1337));
    let cut = &text[..text.find("     3:").unwrap()];
    let (_, diags) = read(cut);
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].message.contains("1 instructions early"),
        "{diags:?}"
    );
}
