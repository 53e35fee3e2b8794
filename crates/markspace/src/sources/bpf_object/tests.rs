//! Listings: round trip, bad lines, and the audit's touchpoints.

use super::*;
use crate::model::{Field, MarkWrite};

fn object(insns: &[[u8; 8]]) -> Object {
    Object {
        code: vec![Code {
            section: "tc".into(),
            insns: insns.iter().map(|b| Insn::decode(*b)).collect(),
            functions: vec![(0, "set_mark".into())],
            leaders: Default::default(),
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
        text.contains("     1: 6321080000000000  *(u32 *)(r1 +8) = r2  ; set_mark+1\n"),
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
        "1: 6321080000000000  *(u32 *)(r1 +8) = r2  ; set_mark+1"
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

#[test]
fn reads_the_example_object_with_its_call_into_text_relocated() {
    let o = crate::bpf::read_elf(include_bytes!("../../../../../examples/bpf/marks.o")).unwrap();
    let names: Vec<(&str, &str)> = o
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.kind.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("set_whole", "sched_cls"),
            ("cil_to_host", "sched_cls"),
            ("sock_mark", "cgroup_sock")
        ]
    );
    let to_host = &o.programs[1];
    let e = o.effects(to_host);
    let writes: Vec<MarkWrite> = e.writes.iter().map(|(_, w)| *w).collect();
    assert_eq!(writes, [MarkWrite::set_xmark(Field::Mark, 0xa00, 0xf00)]);
    let code = &o.code[to_host.code];
    assert_eq!(code.function_of(e.writes[0].0), Some(("set_magic", 5)));
    let sock = o.effects(&o.programs[2]);
    assert_eq!(
        sock.writes.iter().map(|(_, w)| *w).collect::<Vec<_>>(),
        [MarkWrite::constant(Field::Mark, 0, 0x3100_0000)]
    );
}

#[test]
fn truncated_and_corrupted_objects_never_panic() {
    let good = include_bytes!("../../../../../examples/bpf/marks.o");
    for len in (0..good.len()).step_by(7) {
        crate::fuzzing::bpf_elf(&good[..len]);
    }
    let mut x = 0x9e37_79b9_u32;
    for _ in 0..3000 {
        let mut bad = good.to_vec();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % bad.len();
            bad[at] = (x >> 8) as u8;
        }
        crate::fuzzing::bpf_elf(&bad);
    }
}

/// `bpftool -j prog dump xlated opcodes` prints an LD_IMM64's `imm` as 12 bytes (its imm, then
/// the second slot's code, registers, offset and imm), as bpftool v7.1 does: the constant is
/// read back whole and the masked write found.
#[test]
fn xlated_ld_imm64_of_twelve_bytes() {
    // (code, dst, src, off, imm) as bpftool prints them, the mark at sk_buff+164.
    const Z4: &str = r#""0x00","0x00","0x00","0x00""#;
    const IMM64: &str =
        r#""0xff","0xf0","0xff","0xff","0x00","0x00","0x00","0x00","0x00","0x00","0x00","0x00""#;
    const MARK: &str = r#""0xa4","0x00""#;
    const Z2: &str = r#""0x00","0x00""#;
    let insns = [
        ("0x61", "0x2", "0x1", MARK, Z4),  // r2 = *(u32 *)(r1 +164)
        ("0x18", "0x4", "0x0", Z2, IMM64), // r4 = 0xfffff0ff
        ("0x5f", "0x2", "0x4", Z2, Z4),    // r2 &= r4
        ("0x63", "0x1", "0x2", MARK, Z4),  // *(u32 *)(r1 +164) = r2
        ("0xb7", "0x0", "0x0", Z2, Z4),    // r0 = 0
        ("0x95", "0x0", "0x0", Z2, Z4),    // exit
    ];
    let json = insns
        .iter()
        .map(|(code, dst, src, off, imm)| {
            format!(
                r#"{{"disasm":"","opcodes":{{"code":"{code}","src_reg":"{src}","dst_reg":"{dst}","off":[{off}],"imm":[{imm}]}}}}"#
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let json = format!("[{json}]");
    let text = xlated::listing(&json, "clear_f00", "sched_cls", 164, 16).unwrap();
    let (sink, diags) = read(&text);
    assert!(diags.is_empty(), "{diags:?}");
    let writes: Vec<_> = sink
        .touchpoints
        .iter()
        .flat_map(|t| &t.ops)
        .filter(|op| matches!(op, MarkOp::Write(_)))
        .collect();
    assert_eq!(
        writes,
        [&MarkOp::Write(MarkWrite::constant(
            Field::Mark,
            0xffff_f0ff,
            0
        ))],
        "{text}"
    );
}
