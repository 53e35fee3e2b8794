//! Bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs` are one-line shims), kept in the library
//! so they can check internal properties, and replayed by an ordinary test
//! (`tests/fuzz_replay.rs`) so stable `cargo test` guards against regressions.
//!
//! Each body checks more than "no panic": every diagnostic's span lies inside the input and on
//! the line it names, and the whole pipeline (parse, analyse, render) completes.

use std::sync::OnceLock;

use crate::analysis::analyze;
use crate::model::Node;
use crate::registry::Registry;
use crate::report::{self, Report};
use crate::ruleset::RulesetBuilder;
use crate::snapshot::NodeLoader;
use crate::source::SourceId;
use crate::sources;

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| Registry::embedded().unwrap_or_default())
}

fn check_spans(node: &Node) {
    for d in &node.diagnostics {
        let text = &node.sources.file(d.span.source).text;
        let start = d.span.start as usize;
        assert!(
            start <= text.len(),
            "diagnostic starts past the input: {d:?}"
        );
        let line = 1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..start]).count();
        assert_eq!(
            line as u32, d.span.line,
            "diagnostic names the wrong line: {d:?}"
        );
    }
}

/// The whole `audit` on arbitrary bytes: detection, parsing, analysis and all three renderers.
pub fn audit(data: &[u8]) {
    let mut loader = NodeLoader::new();
    if loader.add_text("fuzz", data.to_vec(), true).is_err() {
        return;
    }
    let node = loader.finish();
    check_spans(&node);
    let analysis = analyze(&node, registry());
    let report = Report::new(&node, &analysis);
    let _ = report::text::render(&report, true);
    let _ = report::markdown::render(&report);
    let _ = serde_json::to_string(&report);
}

/// One format's parser on arbitrary text, bypassing detection.
pub fn parse_format(name: &str, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(format) = sources::by_name(name) else {
        return;
    };
    let mut sink = sources::Sink::default();
    let diags = (format.parse)(text, SourceId(0), "fuzz", &mut sink);
    for d in &diags {
        assert!(d.span.start as usize <= text.len(), "{d:?}");
    }
    let _ = sink.ruleset.finish();
    let _ = RulesetBuilder::new();
}

/// eBPF ELF objects: decoding never panics, and the listing markspace writes of an object it
/// read is always read back without a diagnostic, with every program analysed.
pub fn bpf_elf(data: &[u8]) {
    let Some(binary) = sources::detect_binary(data) else {
        // Most mutations break the magic: test the reader behind the detector too.
        let _ = crate::bpf::read_elf(data);
        return;
    };
    let Ok(text) = (binary.decode)(data) else {
        return;
    };
    let Some(format) = sources::by_name(binary.listing) else {
        panic!("no listing format {}", binary.listing);
    };
    assert!((format.detect)(&text));
    let mut sink = sources::Sink::default();
    let diags = (format.parse)(&text, SourceId(0), "fuzz.o", &mut sink);
    assert!(
        diags
            .iter()
            .all(|d| d.level != crate::diagnostic::Level::Error),
        "markspace's own listing reads back with errors: {diags:?}"
    );
}
