//! What every check shares: the [`Finding`] it reports with its evidence types, and the context
//! [`Ctx`] it runs in, with the helpers that turn uses into evidence.
//!
//! The checks themselves are in [`super::checks`]; the codes they report in
//! [`super::catalogue`].

use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::model::{hex, Field, MarkOp, Node, WriteOp};
use crate::registry::Registry;
use crate::ruleset::{RuleId, Ruleset};
use crate::source::SourceMap;

use super::catalogue::{Code, Severity};
use super::path::PathEvidence;
use super::usage::{fi, Site, Usage, Use};

/// One piece of evidence: a rule (file, line, text) or a registry claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceItem {
    /// The input file, or `registry/<id>.toml` for a registry claim.
    pub file: String,
    /// 1-based line, absent for registry claims.
    pub line: Option<u32>,
    /// The rule as written, or the claim described.
    pub text: String,
    /// The owner of the rule or claim.
    pub owner: String,
}

/// A known incident a finding reproduces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IncidentRef {
    /// Incident id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Links.
    pub links: Vec<String>,
}

impl From<&crate::registry::Incident> for IncidentRef {
    fn from(i: &crate::registry::Incident) -> Self {
        IncidentRef {
            id: i.id.clone(),
            title: i.title.clone(),
            links: i.links.clone(),
        }
    }
}

/// One finding.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Its code, serialised as the stable code (`"MS001"`) followed by its name
    /// (`"name": "shared-bits"`), both from the catalogue.
    pub code: Code,
    /// Severity.
    pub severity: Severity,
    /// Owner ids involved.
    pub owners: Vec<String>,
    /// The field.
    pub field: Field,
    /// The bits involved.
    pub bits: u32,
    /// One line.
    pub title: String,
    /// The rules (or registry claims) that prove it.
    pub evidence: Vec<EvidenceItem>,
    /// Evidence left out to keep the report short.
    pub evidence_omitted: usize,
    /// A concrete fix.
    pub fix: String,
    /// Known incidents this reproduces.
    pub incidents: Vec<IncidentRef>,
    /// The packet path on which the owners meet, hook by hook (absent when not path-specific).
    pub path: Option<PathEvidence>,
}

impl Finding {
    /// The stable short name of its code (`shared-bits`).
    pub fn name(&self) -> &'static str {
        self.code.name()
    }
}

/// The JSON contract's field order (README "The JSON contract"): `code` and `name` come from the
/// catalogue entry of the code, `bits` is a `0x%08x` string.
impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Finding", 12)?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("owners", &self.owners)?;
        st.serialize_field("field", &self.field)?;
        st.serialize_field("bits", &hex(self.bits))?;
        st.serialize_field("title", &self.title)?;
        st.serialize_field("evidence", &self.evidence)?;
        st.serialize_field("evidence_omitted", &self.evidence_omitted)?;
        st.serialize_field("fix", &self.fix)?;
        st.serialize_field("incidents", &self.incidents)?;
        st.serialize_field("path", &self.path)?;
        st.end()
    }
}

/// Evidence rows per owner before the rest is counted as omitted.
pub(super) const EVIDENCE_PER_OWNER: usize = 3;

/// How a field is named in titles.
pub(super) fn field_name(f: Field) -> &'static str {
    match f {
        Field::Mark => "packet mark",
        Field::CtMark => "connmark",
    }
}

/// What the checks need.
pub(crate) struct Ctx<'a> {
    pub(crate) node: &'a crate::model::Node,
    pub(crate) set: &'a Ruleset,
    pub(crate) sources: &'a SourceMap,
    pub(crate) registry: &'a Registry,
    pub(crate) usage: &'a Usage,
    /// Rule traversal order per hook, computed when a finding needs it.
    pub(crate) orders: [std::cell::OnceCell<Vec<u32>>; 7],
    /// Per owner and field, the bits another owner cannot move into and the constant whole value
    /// it writes ([`super::fix::whole_aware_bits`]), computed once when a fix needs them.
    pub(crate) whole_aware: std::cell::OnceCell<Vec<[super::derived::WholeAware; 2]>>,
    /// Each owner's uses in path order ([`super::derived::PathEvents`]), found once when a
    /// meeting needs them.
    pub(crate) path_events: std::cell::OnceCell<super::derived::PathEvents>,
    /// Rule-changing fixes proposed for findings (by index in the checks' output), checked by
    /// [`super::verify::settle`] before any is printed.
    pub(crate) proposals: std::cell::RefCell<Vec<(usize, super::proposal::Proposal)>>,
    /// False while a proposed fix is being audited (its findings' fixes are not checked again).
    pub(crate) verify: bool,
}

impl Ctx<'_> {
    /// The traversal order of rules at a hook (see [`super::path::traversal_order`]).
    pub(crate) fn order(&self, hook: crate::ruleset::Hook) -> &[u32] {
        self.orders[hook as usize].get_or_init(|| super::path::traversal_order(self.set, hook))
    }

    /// Registers the fixes proposed for the finding about to be pushed at `index`.
    pub(crate) fn propose(&self, index: usize, proposal: super::proposal::Proposal) {
        if self.verify {
            self.proposals.borrow_mut().push((index, proposal));
        }
    }

    pub(super) fn owner_id(&self, i: usize) -> &str {
        &self.usage.owners[i].id
    }

    /// Evidence for a rule ([`rule_evidence`]).
    pub(super) fn rule_evidence(&self, id: RuleId, owner: &str) -> EvidenceItem {
        rule_evidence(self.node, id, owner)
    }

    pub(super) fn evidence_of(&self, u: &Use) -> EvidenceItem {
        evidence_of(self.node, self.usage, u)
    }

    /// Evidence for an owner: its uses whose bits in `field` meet `bits`, filtered by `pick`,
    /// one row per rule. Rules that set (rather than clear or test) the bits come first: they
    /// are the ones that show the collision.
    pub(super) fn evidence(
        &self,
        owner: usize,
        field: Field,
        bits: u32,
        pick: impl Fn(&Use) -> bool,
        out: &mut Vec<EvidenceItem>,
        omitted: &mut usize,
    ) {
        let f = fi(field);
        let mut picked: Vec<&Use> = Vec::new();
        for u in self.usage.of(owner) {
            if (u.reads[f] | u.writes[f]) & bits == 0 || !pick(u) {
                continue;
            }
            if picked.last().is_some_and(|p| p.site == u.site) {
                continue;
            }
            picked.push(u);
        }
        let sets = |u: &Use| match u.op {
            MarkOp::Write(w) => match w.op {
                WriteOp::Const { xor, .. } => xor & bits != 0,
                _ => true,
            },
            MarkOp::Read(_) => false,
        };
        picked.sort_by_key(|u| !sets(u));
        for u in picked.iter().take(EVIDENCE_PER_OWNER) {
            out.push(self.evidence_of(u));
        }
        *omitted += picked.len().saturating_sub(EVIDENCE_PER_OWNER);
    }

    /// Known incidents are attached once every check has run, from each finding's whole list
    /// of owners and its kind ([`super::incidents::attach`]); a check leaves them empty.
    pub(super) fn incidents(
        &self,
        _owners: &[&str],
        _field: Field,
        _bits: u32,
    ) -> Vec<IncidentRef> {
        Vec::new()
    }
}

/// Evidence for a rule: its file, line and text (prefixed with its table and chain when the
/// line does not say them, as nft rule lines do not).
pub(super) fn rule_evidence(node: &Node, id: RuleId, owner: &str) -> EvidenceItem {
    let set = &node.ruleset;
    let rule = set.rule(id);
    let text = node.sources.text(rule.span).trim();
    let text = if text.starts_with("-A") || text.starts_with("-I") || text.starts_with('[') {
        text.to_string()
    } else {
        let table = set.rule_table(rule);
        format!("[{} {}] {}", table.name, set.chain(rule.chain).name, text)
    };
    EvidenceItem {
        file: node.sources.name(rule.span).to_string(),
        line: Some(rule.span.line),
        text,
        owner: owner.to_string(),
    }
}

/// Evidence for one attributed use: its rule ([`rule_evidence`]) or its touchpoint outside
/// netfilter (`[subsystem] text`), with its owner's id.
pub fn evidence_of(node: &Node, usage: &Usage, u: &Use) -> EvidenceItem {
    let owner = &usage.owners[u.owner].id;
    match u.site {
        Site::Rule(id) => rule_evidence(node, id, owner),
        Site::Touchpoint(i) => {
            let tp = &node.touchpoints[i as usize];
            EvidenceItem {
                file: node.sources.name(tp.span).to_string(),
                line: Some(tp.span.line),
                text: format!(
                    "[{}] {}",
                    tp.subsystem.as_str(),
                    node.sources.text(tp.span).trim()
                ),
                owner: owner.clone(),
            }
        }
    }
}
