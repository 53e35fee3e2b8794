//! The plan's request and result types: plain data every stage and renderer shares.

use serde::Serialize;

use crate::model::Field;
use crate::registry::schema::Namespace;

use super::version::Version;

/// One software the user asked for, optionally at a version (`kubelet@1.27`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Registry id.
    pub id: String,
    /// The release; `None` plans the current one (claims whose range is open upwards).
    pub version: Option<Version>,
}

impl Wanted {
    /// Reads `ID` or `ID@VERSION`.
    pub fn parse(text: &str) -> Result<Wanted, String> {
        let (id, version) = match text.split_once('@') {
            Some((id, v)) => (
                id,
                Some(Version::parse(v).ok_or_else(|| {
                    format!("`{text}`: `{v}` is not a version (expected digits and dots: 1.27)")
                })?),
            ),
            None => (text, None),
        };
        if id.is_empty() {
            return Err(format!("`{text}`: no software id before `@`"));
        }
        Ok(Wanted {
            id: id.to_string(),
            version,
        })
    }
}

/// A setting the user fixes for the plan (`--set tailscale.firewall-mode=nftables`): claims'
/// `when` conditions read it, and a movable knob set this way is not moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetKnob {
    /// Registry id of the software.
    pub software: String,
    /// The knob's id.
    pub knob: String,
    /// The value as typed.
    pub value: String,
}

impl SetKnob {
    /// Reads `SOFTWARE.KNOB=VALUE`.
    pub fn parse(text: &str) -> Result<SetKnob, String> {
        let bad =
            || format!("`{text}` is not SOFTWARE.KNOB=VALUE (tailscale.firewall-mode=nftables)");
        let (lhs, value) = text.split_once('=').ok_or_else(bad)?;
        let (software, knob) = lhs.split_once('.').ok_or_else(bad)?;
        if software.is_empty() || knob.is_empty() || value.is_empty() {
            return Err(bad());
        }
        Ok(SetKnob {
            software: software.to_string(),
            knob: knob.to_string(),
            value: value.to_string(),
        })
    }
}

/// Bits an existing node's owner was seen using (`plan --node`): kept where they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Owner id (`unknown` for rules no entry recognises).
    pub owner: String,
    /// Packet-mark bits it reads or writes.
    pub mark: u32,
    /// Connmark bits it reads or writes.
    pub ctmark: u32,
}

/// What to plan.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The software, in the order given.
    pub software: Vec<Wanted>,
    /// Settings fixed by the user.
    pub settings: Vec<SetKnob>,
    /// Software that must not move (its knobs stay at their defaults).
    pub keep: Vec<String>,
    /// Owners of an existing node and their bits, kept where they are.
    pub observed: Vec<Observed>,
}

/// The plan: a plain serialisable result every renderer formats (text, Markdown, JSON, HTML).
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The software planned, in the order given.
    pub software: Vec<PlannedSoftware>,
    /// Whether an assignment exists.
    pub feasible: bool,
    /// How many settings the plan changes from their defaults (0 when infeasible).
    pub changes: usize,
    /// Every movable knob in play, changed or not.
    pub settings: Vec<PlannedSetting>,
    /// Every allocation unit with its default and planned bits.
    pub allocations: Vec<Allocation>,
    /// Whole-field practices no assignment removes (an unmasked connmark restore, an exact
    /// whole-mark match): the audit of the planned node still reports them.
    pub hazards: Vec<Hazard>,
    /// When infeasible: the smallest set of claims that cannot coexist, and what would help.
    pub conflict: Option<Conflict>,
    /// Facts the plan assumed (unreadable version ranges, observed owners).
    pub notes: Vec<String>,
}

impl Plan {
    /// Each unit's bits in one field of one namespace, in allocation order.
    pub fn in_slot(
        &self,
        field: Field,
        ns: Namespace,
    ) -> impl Iterator<Item = (&Allocation, &SlotBits)> {
        self.allocations.iter().flat_map(move |a| {
            a.bits
                .iter()
                .filter(move |b| b.field == field && b.namespace == ns)
                .map(move |b| (a, b))
        })
    }
}

/// One planned software.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedSoftware {
    /// Registry id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The version planned, `null` for the current release.
    pub version: Option<String>,
    /// True when `--keep` forbids moving it.
    pub kept: bool,
}

/// A movable knob and the value the plan gives it.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedSetting {
    /// Registry id of the software.
    pub software: String,
    /// The knob's id.
    pub knob: String,
    /// The knob's own name.
    pub name: String,
    /// Where it is set (the registry's words).
    #[serde(rename = "where")]
    pub location: String,
    /// `bit`, `mask` or `value`.
    pub kind: &'static str,
    /// Its default as the plan reads it (`14`, `0xffff0000`).
    pub default: String,
    /// The planned value, same form.
    pub value: String,
    /// True when the value differs from the default.
    pub changed: bool,
    /// The setting in each tool's own syntax.
    pub snippets: Vec<Snippet>,
    /// Where the knob's facts come from.
    pub source: String,
}

/// One setting written for one tool.
#[derive(Clone, Debug, Serialize)]
pub struct Snippet {
    /// `env`, `flag`, `ini`, `json` or `yaml`.
    pub syntax: &'static str,
    /// The file, resource or command it goes into.
    pub target: String,
    /// The text to paste.
    pub text: String,
}

/// Bits one unit occupies by default and in the plan.
#[derive(Clone, Debug, Serialize)]
pub struct Allocation {
    /// Owner id.
    pub owner: String,
    /// The claims the unit holds (registry claim ids; `observed` for a node's own bits).
    pub claims: Vec<String>,
    /// The knob that moves it (`software/knob`), `null` when fixed.
    pub knob: Option<String>,
    /// Why it cannot move, when fixed.
    pub fixed: Option<String>,
    /// Per field and namespace.
    pub bits: Vec<SlotBits>,
    /// Where the claims' facts come from.
    pub sources: Vec<String>,
}

/// A unit's bits in one field of one namespace.
#[derive(Clone, Debug, Serialize)]
pub struct SlotBits {
    /// `mark` or `ctmark`.
    pub field: Field,
    /// `host` or `pod`.
    pub namespace: Namespace,
    /// Default bits, `0x%08x`.
    pub default: crate::model::Bits,
    /// Planned bits, `0x%08x` (the default when infeasible).
    pub planned: crate::model::Bits,
}

/// A whole-field practice: it replaces or compares all 32 bits (an unmasked connmark restore,
/// an exact `--mark V` match, an `ip rule fwmark V` without a mask), so it conflicts with every
/// other user of the field on its packets whatever bits they get.
#[derive(Clone, Debug, Serialize)]
pub struct Hazard {
    /// Owner id.
    pub owner: String,
    /// Registry claim id.
    pub claim: String,
    /// `mark` or `ctmark`.
    pub field: Field,
    /// `host` or `pod`.
    pub namespace: Namespace,
    /// What it does (the registry's description, first sentence).
    pub what: String,
    /// Other planned owners using the field in the same namespace.
    pub meets: Vec<String>,
    /// Where the fact comes from.
    pub source: String,
}

/// Why no assignment exists.
#[derive(Clone, Debug, Serialize)]
pub struct Conflict {
    /// A smallest set of units that cannot coexist: removing any one of them makes the rest
    /// feasible.
    pub core: Vec<Allocation>,
    /// The reason in one sentence.
    pub reason: String,
    /// Changes that make the request feasible (a mode, a version), each tried.
    pub remedies: Vec<String>,
}

/// Slot index of a field and namespace in a unit's occupancy (`[u32; 4]`).
pub(crate) fn slot(field: Field, ns: Namespace) -> usize {
    usize::from(field == Field::CtMark) * 2 + usize::from(ns == Namespace::Pod)
}

/// The field and namespace of a slot index.
pub(crate) fn slot_parts(i: usize) -> (Field, Namespace) {
    let field = if i >= 2 { Field::CtMark } else { Field::Mark };
    let ns = if i % 2 == 1 {
        Namespace::Pod
    } else {
        Namespace::Host
    };
    (field, ns)
}

/// How a movable knob's value maps to bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveKind {
    /// A bit number: the claim is that one bit.
    Bit,
    /// A mask the software allocates its bits from, lowest first.
    Mask,
    /// A whole value (the software writes or compares exactly this value).
    Value,
}

impl MoveKind {
    /// The word used in output.
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::Bit => "bit",
            MoveKind::Mask => "mask",
            MoveKind::Value => "value",
        }
    }
}

/// How a field is named in plan sentences.
pub(crate) fn field_word(f: Field) -> &'static str {
    match f {
        Field::Mark => "packet mark",
        Field::CtMark => "connmark",
    }
}
