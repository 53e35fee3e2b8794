//! Reports: one serialisable structure built from the analysis, rendered as text, JSON,
//! Markdown (with Mermaid flowcharts of paths), SARIF, HTML (inline SVG register map) or
//! WaveDrom bit-field JSON. Renderers only format.
//!
//! # JSON contract (version 1)
//!
//! ```text
//! {
//!   "version": 1,
//!   "markspace": "0.1.0",
//!   "registry": {"entries": 48, "incidents": 31, "digest": "…"},
//!   "inputs":   [{"file": "nodes/a/iptables-save.txt", "format": "iptables-save"}],
//!   "owners":   [{"id": "kube-proxy", "name": "kube-proxy", "rules": 3,
//!                 "bits":    {"mark": "0x00004000", "ctmark": "0x00000000"},   // read | written
//!                 "reads":   {"mark": "0x00004000", "ctmark": "0x00000000"},
//!                 "writes":  {"mark": "0x00004000", "ctmark": "0x00000000"},
//!                 "claimed": {"mark": "0x00004000", "ctmark": "0x00000000"},   // registry
//!                 "recognised_by": ["chain KUBE-MARK-MASQ (1)"],
//!                 "evidence": [{"signature": "chain", "pattern": "KUBE-MARK-MASQ",
//!                               "strength": "strong", "rules": 1}]}],
//!   "bitmap":   {"mark": [{"bit": 0, "readers": [], "writers": []}, … 32 entries],
//!                "ctmark": [… 32 entries]},
//!   "findings": [{"code": "MS001", "name": "shared-bits", "severity": "error",
//!                 "owners": ["calico", "tailscale"], "field": "mark", "bits": "0x00040000",
//!                 "title": "…", "evidence": [{"file": "…", "line": 57, "text": "…", "owner": "…"}],
//!                 "evidence_omitted": 0, "fix": "…",
//!                 "incidents": [{"id": "…", "title": "…", "links": ["…"]}],
//!                 "path": {"path": "forward", "clobber": true,        // or null
//!                          "steps": [{"hook": "forward", "table": "ip filter", "chain": "ts-forward",
//!                                     "file": "…", "line": 187, "owner": "tailscale",
//!                                     "action": "writes 0x000f0000"}]}}],
//!   "suppressed": [{"finding": {…}, "reason": "…", "expires": null}],   // --baseline
//!   "summary":  {"errors": 1, "warnings": 0, "infos": 0, "rules": 412, "mark_rules": 57,
//!                "duplicate_tables": 0, "skipped_lines": 0, "unknown_context_rules": 0,
//!                "incomplete": false, "suppressed": 0},
//!   "diagnostics": [{"level": "warning", "file": "…", "line": 3, "column": 1, "message": "…", "hint": null}]
//! }
//! ```
//!
//! Owner ids are registry ids (lowercase, dash-separated) or `unknown`. Bit values are always
//! `"0x%08x"` strings. `evidence[].line` is `null` for evidence that is a registry claim. Fields
//! are only ever added in a version; a removal or change of meaning bumps `version`.

pub mod baseline;
pub mod bitfield;
pub mod html;
pub mod markdown;
pub mod mermaid;
pub mod sarif;
pub mod text;

use serde::Serialize;

use crate::analysis::{Analysis, BitUse, Finding, Severity};
use crate::diagnostic::{Diagnostic, Level};
use crate::model::{Bits, Field, Node};

/// The JSON contract version.
pub const VERSION: u32 = 1;

/// A value per field (serialised as `"0x%08x"` strings).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PerField {
    /// Packet mark.
    pub mark: Bits,
    /// Connmark.
    pub ctmark: Bits,
}

impl PerField {
    fn of(v: [u32; 2]) -> Self {
        PerField {
            mark: Bits(v[0]),
            ctmark: Bits(v[1]),
        }
    }

    /// The value of one field.
    pub fn get(&self, field: Field) -> u32 {
        match field {
            Field::Mark => self.mark.0,
            Field::CtMark => self.ctmark.0,
        }
    }
}

/// An owner in the report.
#[derive(Clone, Debug, Serialize)]
pub struct OwnerReport {
    /// Registry id or `unknown`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Rules with mark operations.
    pub rules: usize,
    /// Bits read or written.
    pub bits: PerField,
    /// Bits read.
    pub reads: PerField,
    /// Bits written.
    pub writes: PerField,
    /// Bits the registry says it uses.
    pub claimed: PerField,
    /// Signatures that recognised its rules, with counts.
    pub recognised_by: Vec<String>,
    /// The same, structured: which evidence decided each group of its rules and how strong it
    /// is (`strong`: exact names and values; `medium`: name prefixes, jumps, single-bit values;
    /// `weak`: interfaces; `none` for `unknown`).
    pub evidence: Vec<EvidenceReport>,
}

/// One kind of evidence that attributed rules to an owner.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceReport {
    /// The signature kind (`chain`, `comment`, `value`, `value-mask`, `chain-prefix`, `device`…).
    pub signature: String,
    /// The pattern that matched.
    pub pattern: String,
    /// `strong`, `medium`, `weak` or `none`.
    pub strength: &'static str,
    /// How many of its rules and touchpoints it decided.
    pub rules: usize,
}

/// Both bit maps.
#[derive(Clone, Debug, Serialize)]
pub struct Bitmap {
    /// Packet mark, bits 0..=31.
    pub mark: Vec<BitUse>,
    /// Connmark, bits 0..=31.
    pub ctmark: Vec<BitUse>,
}

/// An input in the report.
#[derive(Clone, Debug, Serialize)]
pub struct InputReport {
    /// Display name.
    pub file: String,
    /// Detected format.
    pub format: String,
}

/// Counts.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Error findings.
    pub errors: usize,
    /// Warning findings.
    pub warnings: usize,
    /// Info findings.
    pub infos: usize,
    /// All rules read.
    pub rules: usize,
    /// Rules with mark operations (each counted once).
    pub mark_rules: usize,
    /// Tables read twice (the same ruleset in two forms) and counted once.
    pub duplicate_tables: usize,
    /// Lines of pastes and fragments that could not be read and were skipped (each is a
    /// warning in `diagnostics`); when nonzero the result may be incomplete.
    pub skipped_lines: usize,
    /// Mark rules pasted without their table or chain (read into `(unknown)`): where they run is
    /// unknown, and the analysis assumes they meet every other owner's uses.
    pub unknown_context_rules: usize,
    /// True when a source the audit needs could not be read (see the diagnostics with line 0):
    /// the findings are those of what was read, and the exit status says so.
    pub incomplete: bool,
    /// Findings a baseline suppressed (listed under `suppressed`).
    pub suppressed: usize,
}

/// A diagnostic in the report.
#[derive(Clone, Debug, Serialize)]
pub struct DiagnosticReport {
    /// `error` or `warning`.
    pub level: Level,
    /// File.
    pub file: String,
    /// Line.
    pub line: u32,
    /// Column.
    pub column: u32,
    /// Message.
    pub message: String,
    /// Hint.
    pub hint: Option<String>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Contract version.
    pub version: u32,
    /// markspace's version (the library's).
    pub markspace: &'static str,
    /// The registry the audit used (set by the caller that loaded it; null otherwise).
    pub registry: Option<crate::registry::RegistryVersion>,
    /// Inputs read.
    pub inputs: Vec<InputReport>,
    /// Owners seen.
    pub owners: Vec<OwnerReport>,
    /// Bit maps.
    pub bitmap: Bitmap,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Findings a baseline accepted ([`baseline`]), with its reason; not in `findings` or the
    /// counts.
    pub suppressed: Vec<baseline::Suppressed>,
    /// Counts.
    pub summary: Summary,
    /// Parse problems.
    pub diagnostics: Vec<DiagnosticReport>,
}

impl Report {
    /// Builds the report of a node's analysis.
    pub fn new(node: &Node, analysis: &Analysis) -> Report {
        let owners = analysis
            .usage
            .owners
            .iter()
            .map(|o| OwnerReport {
                id: o.id.clone(),
                name: o.name.clone(),
                rules: o.rules,
                bits: PerField::of([o.used(Field::Mark), o.used(Field::CtMark)]),
                reads: PerField::of(o.reads),
                writes: PerField::of(o.writes),
                claimed: PerField::of(o.claimed),
                recognised_by: o
                    .recognised_by
                    .iter()
                    .map(|(k, n)| format!("{k} ({n})"))
                    .collect(),
                evidence: o
                    .recognised_by
                    .iter()
                    .map(|(k, n)| {
                        // Keys are `signature pattern`, or `no signature`.
                        let (sig, pattern) = match k.split_once(' ') {
                            Some(("no", "signature")) | None => ("none", ""),
                            Some((s, p)) => (s, p),
                        };
                        EvidenceReport {
                            signature: sig.to_string(),
                            pattern: pattern.to_string(),
                            strength: crate::registry::strength(sig),
                            rules: *n,
                        }
                    })
                    .collect(),
            })
            .collect();
        let count = |s: Severity| analysis.findings.iter().filter(|f| f.severity == s).count();
        let mark_rules = node
            .ruleset
            .rules
            .iter()
            .filter(|r| !r.ops().is_empty() && !node.ruleset.is_duplicate(r))
            .count();
        let unknown_context_rules = node
            .ruleset
            .rules
            .iter()
            .filter(|r| !r.ops().is_empty() && !node.ruleset.is_duplicate(r))
            .filter(|r| {
                let chain = node.ruleset.chain(r.chain);
                &*chain.name == crate::ruleset::UNKNOWN_CHAIN
                    || &*node.ruleset.table(chain.table).name == crate::ruleset::UNKNOWN_TABLE
            })
            .count();
        let duplicate_tables = node
            .ruleset
            .tables
            .iter()
            .filter(|t| t.duplicate_of.is_some())
            .count();
        Report {
            version: VERSION,
            markspace: env!("CARGO_PKG_VERSION"),
            registry: None,
            inputs: node
                .formats
                .iter()
                .map(|(f, k)| InputReport {
                    file: f.clone(),
                    format: k.to_string(),
                })
                .collect(),
            owners,
            bitmap: Bitmap {
                mark: analysis.bitmap[0].clone(),
                ctmark: analysis.bitmap[1].clone(),
            },
            findings: analysis.findings.clone(),
            suppressed: Vec::new(),
            summary: Summary {
                errors: count(Severity::Error),
                warnings: count(Severity::Warning),
                infos: count(Severity::Info),
                rules: node.ruleset.rules.len(),
                mark_rules,
                duplicate_tables,
                skipped_lines: node.skipped_lines,
                unknown_context_rules,
                incomplete: false,
                suppressed: 0,
            },
            diagnostics: node
                .diagnostics
                .iter()
                .map(|d| diagnostic_report(node, d))
                .collect(),
        }
    }

    /// Records a source that could not be read: an error diagnostic on line 0 of `file`, and
    /// `summary.incomplete`.
    pub fn not_read(&mut self, file: &str, message: String, hint: Option<String>) {
        self.summary.incomplete = true;
        self.diagnostics.push(DiagnosticReport {
            level: Level::Error,
            file: file.to_string(),
            line: 0,
            column: 0,
            message,
            hint,
        });
    }

    /// The diagnostics about sources not read ([`Report::not_read`]).
    pub fn unread(&self) -> impl Iterator<Item = &DiagnosticReport> {
        self.diagnostics
            .iter()
            .filter(|d| d.line == 0 && d.level == Level::Error)
    }

    /// A copy whose every string that may come from the input (file names, rule text, chain
    /// names, comments inside titles and fixes, diagnostics) has its control characters
    /// escaped ([`escape_controls`]): what the text and Markdown renderers print, so that an
    /// ESC, OSC or BEL sequence in a rule comment never reaches the terminal.
    pub fn for_terminal(&self) -> Report {
        let mut r = self.clone();
        let e = |s: &mut String| {
            if let std::borrow::Cow::Owned(o) = escape_controls(s) {
                *s = o;
            }
        };
        for i in &mut r.inputs {
            e(&mut i.file);
        }
        for o in &mut r.owners {
            e(&mut o.id);
            e(&mut o.name);
            o.recognised_by.iter_mut().for_each(e);
        }
        for f in &mut r.findings {
            f.owners.iter_mut().for_each(e);
            e(&mut f.title);
            e(&mut f.fix);
            for ev in &mut f.evidence {
                e(&mut ev.file);
                e(&mut ev.text);
                e(&mut ev.owner);
            }
            for i in &mut f.incidents {
                e(&mut i.title);
                i.links.iter_mut().for_each(e);
            }
            if let Some(p) = &mut f.path {
                for st in &mut p.steps {
                    e(&mut st.table);
                    e(&mut st.chain);
                    e(&mut st.file);
                    e(&mut st.owner);
                    e(&mut st.action);
                }
            }
        }
        for b in [&mut r.bitmap.mark, &mut r.bitmap.ctmark] {
            for u in b.iter_mut() {
                u.readers.iter_mut().for_each(e);
                u.writers.iter_mut().for_each(e);
            }
        }
        for x in &mut r.suppressed {
            e(&mut x.reason);
            e(&mut x.finding.title);
            x.finding.owners.iter_mut().for_each(e);
        }
        for d in &mut r.diagnostics {
            e(&mut d.file);
            e(&mut d.message);
            if let Some(h) = &mut d.hint {
                e(h);
            }
        }
        r
    }

    /// The findings at or above a severity.
    pub fn count_at_least(&self, level: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity <= level).count()
    }
}

/// Baselines ([`baseline`]).
impl Report {
    /// Moves the findings a baseline accepts to `suppressed` and counts them there; entries
    /// past their expiry (`today` is a UTC `YYYY-MM-DD`) no longer apply, and a warning says so.
    pub fn apply_baseline(&mut self, baseline: &baseline::Baseline, file: &str, today: &str) {
        let mut keep = Vec::new();
        for f in std::mem::take(&mut self.findings) {
            let entry = baseline.suppress.iter().find(|s| s.matches(&f));
            match entry {
                Some(s) if s.expires.as_deref().is_none_or(|e| e >= today) => {
                    self.suppressed.push(baseline::Suppressed {
                        finding: f,
                        reason: s.reason.clone(),
                        expires: s.expires.clone(),
                    });
                }
                Some(s) => {
                    self.diagnostics.push(DiagnosticReport {
                        level: crate::diagnostic::Level::Warning,
                        file: file.to_string(),
                        line: 0,
                        column: 0,
                        message: format!(
                            "the baseline entry for {} ({}) expired on {}: the finding is reported again",
                            f.code,
                            f.owners.join(", "),
                            s.expires.as_deref().unwrap_or("")
                        ),
                        hint: Some(format!("bits {}; renew it with a new `expires` or fix the finding", crate::model::hex(f.bits))),
                    });
                    keep.push(f);
                }
                None => keep.push(f),
            }
        }
        self.findings = keep;
        let count =
            |s: crate::analysis::Severity| self.findings.iter().filter(|f| f.severity == s).count();
        self.summary.errors = count(crate::analysis::Severity::Error);
        self.summary.warnings = count(crate::analysis::Severity::Warning);
        self.summary.infos = count(crate::analysis::Severity::Info);
        self.summary.suppressed = self.suppressed.len();
    }
}

/// Escapes control characters (C0 but newline and tab, DEL, C1) as `\x1b`-style text, so that
/// input echoed to a terminal or into Markdown cannot move the cursor, set the title, ring the
/// bell or start an OSC 8 hyperlink.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn diagnostic_report(node: &Node, d: &Diagnostic) -> DiagnosticReport {
    let r = d.render(&node.sources);
    DiagnosticReport {
        level: d.level,
        file: r.location.file.clone(),
        line: r.location.line,
        column: r.location.column,
        message: d.message.clone(),
        hint: d.hint.clone(),
    }
}
