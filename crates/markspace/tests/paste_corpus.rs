//! The paste corpus (issue #14): real pastes from public issue threads, each read as a user
//! would give it to `markspace audit`, with its expected owners and findings
//! (`tests/pastes/manifest.toml` records the thread of each).

use std::path::Path;

use markspace::analysis::{analyze, Severity};
use markspace::diagnostic::Level;
use markspace::registry::Registry;
use markspace::snapshot::NodeLoader;

#[derive(serde::Deserialize)]
struct Manifest {
    paste: Vec<Paste>,
}

#[derive(serde::Deserialize)]
struct Paste {
    file: String,
    url: String,
    shape: String,
    #[serde(default)]
    excerpt: Option<String>,
    owners: Vec<String>,
    findings: Vec<String>,
    #[serde(default)]
    known_false: Vec<String>,
    #[serde(default)]
    gaps: Option<String>,
}

#[test]
fn real_pastes_are_read_and_give_the_expected_owners_and_findings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pastes");
    let manifest: Manifest =
        toml::from_str(&std::fs::read_to_string(dir.join("manifest.toml")).expect("manifest"))
            .expect("manifest parses");
    let registry = Registry::embedded().expect("registry");
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut with_false_errors = Vec::new();
    let mut skipped_lines = 0;
    for p in &manifest.paste {
        assert!(
            p.url.starts_with("https://github.com/"),
            "{}: source URL",
            p.file
        );
        assert!(!p.shape.is_empty(), "{}: shape", p.file);
        let _ = &p.excerpt;
        let mut loader = NodeLoader::new();
        if let Err(e) = loader.add_path(&dir.join(&p.file)) {
            failures.push(format!("{}: not read: {e}", p.file));
            continue;
        }
        let node = loader.finish();
        let mut problems = Vec::new();
        if node.formats.is_empty() {
            problems.push("no format read it".to_string());
        }
        for d in node.diagnostics.iter().filter(|d| d.level == Level::Error) {
            problems.push(format!(
                "input error at line {}: {}",
                d.span.line, d.message
            ));
        }
        skipped_lines += node.skipped_lines;
        let analysis = analyze(&node, &registry);
        let owners: Vec<&str> = analysis
            .usage
            .owners
            .iter()
            .map(|o| o.id.as_str())
            .collect();
        for o in &p.owners {
            if !owners.contains(&o.as_str()) {
                problems.push(format!("owner {o} not attributed (owners: {owners:?})"));
            }
        }
        let codes: Vec<&str> = analysis.findings.iter().map(|f| f.code.as_str()).collect();
        for c in &p.findings {
            if !codes.contains(&c.as_str()) {
                problems.push(format!("finding {c} missing (findings: {codes:?})"));
            }
        }
        for f in analysis
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
        {
            if !p.findings.iter().any(|c| c == f.code.as_str())
                && !p.known_false.iter().any(|c| c == f.code.as_str())
            {
                problems.push(format!(
                    "unexpected error {} between {:?}: {}",
                    f.code, f.owners, f.title
                ));
            }
        }
        let false_errors: Vec<&str> = analysis
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.code.as_str())
            .filter(|c| p.known_false.iter().any(|k| k == c))
            .collect();
        if !false_errors.is_empty() {
            with_false_errors.push(format!("{} ({})", p.file, false_errors.join(", ")));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}):\n    {}",
                p.file,
                p.url,
                problems.join("\n    ")
            ));
        } else if false_errors.is_empty() {
            passed += 1;
        }
        if let Some(g) = &p.gaps {
            println!("known gap: {}: {g}", p.file);
        }
    }
    println!(
        "paste corpus: {passed}/{} real pastes pass ({} skipped lines in all); {} with known false errors: {}",
        manifest.paste.len(),
        skipped_lines,
        with_false_errors.len(),
        with_false_errors.join("; ")
    );
    assert!(
        failures.is_empty(),
        "paste corpus failures:\n{}",
        failures.join("\n")
    );
}
