//! From registry entries to allocation units: what moves together, what is fixed, and the
//! whole-field practices no assignment can fix.

use std::collections::BTreeMap;

use crate::registry::schema::{Claim, ClaimKind, Knob, KnobKind, Software, Style};
use crate::registry::Registry;

use super::types::{slot, Hazard, MoveKind, PlannedSoftware, Request, Wanted};
use super::version::{self, Range};

/// A request `plan` cannot read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// No registry entry has this id.
    #[error("unknown software `{0}` (`markspace registry list` shows every id)")]
    UnknownSoftware(String),
    /// `--set` names a knob the entry does not have.
    #[error("`{software}` has no knob `{knob}` (its knobs: {known})")]
    UnknownKnob {
        /// The software.
        software: String,
        /// The knob asked for.
        knob: String,
        /// The knobs it has.
        known: String,
    },
    /// `--set` or `--keep` names software not in the plan.
    #[error("`{0}` is not among the software to plan; add it to the list")]
    NotPlanned(String),
    /// `--set` gives a movable knob a value that is not a number of its kind.
    #[error("`{software}.{knob}`: `{value}` is not a {kind}")]
    BadValue {
        /// The software.
        software: String,
        /// The knob.
        knob: String,
        /// The value typed.
        value: String,
        /// What was expected.
        kind: &'static str,
    },
}

/// The knob (or knobs tied by `same_as`) that moves a unit.
#[derive(Clone, Debug)]
pub struct Mover {
    /// `(software, knob)` pairs set together.
    pub knobs: Vec<(String, String)>,
    /// How the value maps to bits.
    pub kind: MoveKind,
    /// The default: bit number, mask or value.
    pub default: u32,
    /// Mask knobs: fewest bits.
    pub min_bits: u32,
    /// Mask knobs: one run of bits.
    pub contiguous: bool,
}

/// Claims that move together, or one fixed claim.
#[derive(Clone, Debug)]
pub struct Unit {
    /// The owners (more than one when `same_as` ties knobs of cooperating software).
    pub owners: Vec<String>,
    /// Claim ids, `owner/claim`.
    pub claims: Vec<String>,
    /// What moves it; `None` when fixed.
    pub mover: Option<Mover>,
    /// Why it is fixed.
    pub fixed: Option<String>,
    /// Default bits per slot (see [`super::slot`]).
    pub default: [u32; 4],
    /// Sources of its claims.
    pub sources: Vec<String>,
}

/// The units of one request.
#[derive(Clone, Debug, Default)]
pub struct UnitSet {
    /// Allocation units, in the order of the request and the entries' claims.
    pub units: Vec<Unit>,
    /// Whole-field practices.
    pub hazards: Vec<Hazard>,
    /// Assumptions made.
    pub notes: Vec<String>,
    /// The software planned.
    pub software: Vec<PlannedSoftware>,
}

/// The value a knob has in the plan's settings: the user's `--set`, else its default (the
/// first word, lower case: `true (>=1.27)` reads `true`).
fn setting<'a>(request: &'a Request, sw: &str, knob: &'a Knob) -> String {
    request
        .settings
        .iter()
        .find(|s| s.software == sw && s.knob == knob.id)
        .map_or(knob.default.as_str(), |s| s.value.as_str())
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Whether every `when` condition of a claim holds under the plan's settings.
fn conditions_hold(request: &Request, sw: &Software, claim: &Claim) -> bool {
    claim.when.iter().all(|cond| {
        let (knob, want, negate) = match cond.split_once("!=") {
            Some((k, v)) => (k, v, true),
            None => match cond.split_once('=') {
                Some((k, v)) => (k, v, false),
                None => return true,
            },
        };
        let Some(k) = sw.knobs.iter().find(|k| k.id == knob.trim()) else {
            return true;
        };
        (setting(request, &sw.id, k) == want.trim().to_ascii_lowercase()) != negate
    })
}

/// The default of a knob `plan` can move, as a number of its kind.
pub(crate) fn movable_default(k: &Knob) -> Option<(MoveKind, u32)> {
    k.movable_default().map(|(kind, v)| {
        let kind = match kind {
            KnobKind::Bit => MoveKind::Bit,
            KnobKind::Mask => MoveKind::Mask,
            _ => MoveKind::Value,
        };
        (kind, v)
    })
}

/// Builds the units of `request`.
pub fn build(registry: &Registry, request: &Request) -> Result<UnitSet, PlanError> {
    let mut out = UnitSet::default();
    for s in &request.settings {
        if !request.software.iter().any(|w| w.id == s.software) {
            return Err(PlanError::NotPlanned(s.software.clone()));
        }
    }
    for k in &request.keep {
        if !request.software.iter().any(|w| w.id == *k) {
            return Err(PlanError::NotPlanned(k.clone()));
        }
    }
    let pins = pins(registry, request);
    // (software, knob) -> index of its unit
    let mut by_knob: BTreeMap<(String, String), usize> = BTreeMap::new();
    for wanted in &request.software {
        let sw = registry
            .get(&wanted.id)
            .ok_or_else(|| PlanError::UnknownSoftware(wanted.id.clone()))?;
        for s in request.settings.iter().filter(|s| s.software == sw.id) {
            if !sw.knobs.iter().any(|k| k.id == s.knob) {
                return Err(PlanError::UnknownKnob {
                    software: sw.id.clone(),
                    knob: s.knob.clone(),
                    known: sw
                        .knobs
                        .iter()
                        .map(|k| k.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let kept = request.keep.contains(&sw.id);
        out.software.push(PlannedSoftware {
            id: sw.id.clone(),
            name: sw.name.clone(),
            version: wanted.version.as_ref().map(ToString::to_string),
            kept,
        });
        add_software(request, wanted, sw, kept, &pins, &mut by_knob, &mut out)?;
    }
    tie_same_as(registry, &mut out);
    add_observed(request, &mut out);
    for h in &mut out.hazards {
        let f = slot(h.field, h.namespace);
        let mut meets: Vec<String> = out
            .units
            .iter()
            .filter(|u| u.default[f] != 0 && !u.owners.contains(&h.owner))
            .flat_map(|u| u.owners.iter().cloned())
            .collect();
        meets.sort();
        meets.dedup();
        h.meets = meets;
    }
    Ok(out)
}

/// A knob `plan` must leave at its default because a planned reader has the bits it moves
/// compiled in (`reads_from` with `literal`), or because it is tied (`same_as`) to such a knob.
#[derive(Clone, Debug)]
pub struct Pin {
    /// The owner.
    pub software: String,
    /// The owner's knob.
    pub knob: String,
    /// Why, with the reader's source.
    pub why: String,
}

/// The knobs planned literal readers pin: flannel RETURNs packets marked 0x4000 whatever
/// kube-proxy's masqueradeBit says, so moving that bit would break flannel silently.
pub fn pins(registry: &Registry, request: &Request) -> Vec<Pin> {
    let planned = |id: &str| request.software.iter().any(|w| w.id == id);
    let mut out: Vec<Pin> = Vec::new();
    for reader in request.software.iter().filter_map(|w| registry.get(&w.id)) {
        for r in &reader.reads_from {
            let Some(owner) = registry
                .get(&r.owner)
                .filter(|_| r.literal && planned(&r.owner))
            else {
                continue;
            };
            let read =
                |c: &&Claim| c.kind.field() == r.kind.field() && c.occupied() & r.bits.0 != 0;
            for c in owner.claims.iter().filter(read) {
                for k in owner.knobs.iter().filter(|k| k.moves(c)) {
                    if out.iter().any(|p| p.software == owner.id && p.knob == k.id) {
                        continue;
                    }
                    out.push(Pin {
                        software: owner.id.clone(),
                        knob: k.id.clone(),
                        why: format!(
                            "{} reads {}'s {} {} as a literal, so moving {} would break it: {} (source: {}{})",
                            reader.id,
                            owner.id,
                            super::types::field_word(r.kind.field()),
                            r.bits,
                            k.name,
                            r.why,
                            r.source,
                            if r.verified { "" } else { "; unverified" }
                        ),
                    });
                }
            }
        }
    }
    // A knob that must hold the same value as a pinned one is pinned with it.
    loop {
        let mut tied = Vec::new();
        for sw in request.software.iter().filter_map(|w| registry.get(&w.id)) {
            for k in &sw.knobs {
                let Some(target) = k.plan.same_as.as_deref() else {
                    continue;
                };
                let pinned = |p: &&Pin| format!("{}/{}", p.software, p.knob) == target;
                let free = !out.iter().any(|p| p.software == sw.id && p.knob == k.id);
                if let (Some(p), true) = (out.iter().find(pinned), free) {
                    tied.push(Pin {
                        software: sw.id.clone(),
                        knob: k.id.clone(),
                        why: format!("{} must equal {target}, and {}", k.name, p.why),
                    });
                }
            }
        }
        if tied.is_empty() {
            return out;
        }
        out.extend(tied);
    }
}

#[allow(clippy::too_many_arguments)]
fn add_software(
    request: &Request,
    wanted: &Wanted,
    sw: &Software,
    kept: bool,
    pins: &[Pin],
    by_knob: &mut BTreeMap<(String, String), usize>,
    out: &mut UnitSet,
) -> Result<(), PlanError> {
    let version = wanted.version.as_ref();
    for c in &sw.claims {
        if c.bug || !conditions_hold(request, sw, c) {
            continue;
        }
        if let (Some(text), Some(_)) = (c.versions.as_deref(), version) {
            if Range::parse(text).is_none() {
                out.notes.push(format!(
                    "{}/{}: its versions `{text}` are not a range; assumed to hold",
                    sw.id, c.id
                ));
            }
        }
        if !version::holds(c.versions.as_deref(), version) {
            continue;
        }
        let occ = c.occupied();
        let s = slot(c.kind.field(), c.namespace);
        // A whole-field rule (an exact 32-bit match, an unmasked copy between the fields)
        // conflicts with every other user of the field whatever bits they get: a hazard. Its
        // value, when it has one, is still allocated (a device's or socket's own mark).
        let whole_rule = c.style == Style::Whole
            && c.bits.0 == crate::model::ALL_BITS
            && matches!(
                c.kind,
                ClaimKind::Mark | ClaimKind::Ctmark | ClaimKind::IpRule | ClaimKind::TproxyMark
            );
        if occ == 0 || whole_rule {
            if c.style == Style::Whole {
                out.hazards.push(Hazard {
                    owner: sw.id.clone(),
                    claim: c.id.clone(),
                    field: c.kind.field(),
                    namespace: c.namespace,
                    what: first_sentence(&c.description),
                    meets: Vec::new(),
                    source: c.source.clone(),
                });
            }
            if occ == 0 {
                continue;
            }
        }
        let knob = sw
            .knobs
            .iter()
            .find(|k| k.moves(c) && version::holds(k.plan.versions.as_deref(), version));
        let mut default = [0u32; 4];
        default[s] = occ;
        let fixed_unit = |why: String, default: [u32; 4]| Unit {
            owners: vec![sw.id.clone()],
            claims: vec![format!("{}/{}", sw.id, c.id)],
            mover: None,
            fixed: Some(why),
            default,
            sources: vec![c.source.clone()],
        };
        let Some(k) = knob else {
            let why = sw.fixed_for(&c.id).map_or_else(
                || "no knob moves these bits (registry)".to_string(),
                |f| f.sourced(),
            );
            out.units.push(fixed_unit(why, default));
            continue;
        };
        if let Some(why) = &k.plan.not_alone {
            out.units
                .push(fixed_unit(format!("{} alone: {why}", k.name), default));
            continue;
        }
        let Some((kind, knob_default)) = movable_default(k) else {
            continue;
        };
        if let Some(user) = request
            .settings
            .iter()
            .find(|x| x.software == sw.id && x.knob == k.id)
        {
            let to = user_value(kind, &user.value).ok_or_else(|| PlanError::BadValue {
                software: sw.id.clone(),
                knob: k.id.clone(),
                value: user.value.clone(),
                kind: kind.name(),
            })?;
            if let Some(p) = pins.iter().find(|p| p.software == sw.id && p.knob == k.id) {
                out.notes.push(format!(
                    "{}.{} is set with --set although {}",
                    sw.id, k.id, p.why
                ));
            }
            let mv = super::remap::Move::new(kind, knob_default, to);
            let mut moved = [0u32; 4];
            moved[s] = mv.bits(occ);
            out.units.push(fixed_unit(
                format!("{} set to {} (--set)", k.name, user.value),
                moved,
            ));
            continue;
        }
        if let Some(p) = pins.iter().find(|p| p.software == sw.id && p.knob == k.id) {
            out.units.push(fixed_unit(p.why.clone(), default));
            continue;
        }
        if kept {
            out.units
                .push(fixed_unit(format!("{} kept (--keep)", sw.id), default));
            continue;
        }
        let key = (sw.id.clone(), k.id.clone());
        let i = *by_knob.entry(key.clone()).or_insert_with(|| {
            out.units.push(Unit {
                owners: vec![sw.id.clone()],
                claims: Vec::new(),
                mover: Some(Mover {
                    knobs: vec![key],
                    kind,
                    default: knob_default,
                    min_bits: k.plan.min_bits.map_or(1, u32::from),
                    contiguous: k.plan.contiguous,
                }),
                fixed: None,
                default: [0; 4],
                sources: Vec::new(),
            });
            out.units.len() - 1
        });
        let u = &mut out.units[i];
        u.claims.push(format!("{}/{}", sw.id, c.id));
        u.default[s] |= occ;
        if !u.sources.contains(&c.source) {
            u.sources.push(c.source.clone());
        }
    }
    Ok(())
}

/// A `--set` value of a movable knob's kind.
fn user_value(kind: MoveKind, text: &str) -> Option<u32> {
    let v = crate::model::Bits::parse(text).ok()?.0;
    match kind {
        MoveKind::Bit => (v < 32).then_some(v),
        MoveKind::Mask | MoveKind::Value => Some(v),
    }
}

/// Merges units whose knobs must hold the same value (`same_as`) into one, moved together.
fn tie_same_as(registry: &Registry, out: &mut UnitSet) {
    let mut i = 0;
    while i < out.units.len() {
        let partner = out.units[i].mover.as_ref().and_then(|m| {
            let (sw, knob) = m.knobs.first()?;
            let target = registry
                .get(sw)?
                .knobs
                .iter()
                .find(|k| k.id == *knob)?
                .plan
                .same_as
                .clone()?;
            let (tsw, tknob) = target.split_once('/')?;
            out.units.iter().position(|u| {
                u.mover.as_ref().is_some_and(|m2| {
                    m2.kind == m.kind
                        && m2.default == m.default
                        && m2.knobs.iter().any(|(a, b)| a == tsw && b == tknob)
                })
            })
        });
        match partner {
            Some(j) if j != i => {
                let u = out.units.remove(i.max(j));
                let keep = &mut out.units[i.min(j)];
                for o in u.owners {
                    if !keep.owners.contains(&o) {
                        keep.owners.push(o);
                    }
                }
                keep.claims.extend(u.claims);
                for s in 0..4 {
                    keep.default[s] |= u.default[s];
                }
                keep.sources.extend(u.sources);
                if let (Some(m), Some(m2)) = (keep.mover.as_mut(), u.mover) {
                    m.knobs.extend(m2.knobs);
                }
                // Re-examine the merged unit in case a third knob ties to it.
            }
            _ => i += 1,
        }
    }
}

/// A node's observed owners that are not planned: fixed at the bits they were seen using.
fn add_observed(request: &Request, out: &mut UnitSet) {
    for o in &request.observed {
        if request.software.iter().any(|w| w.id == o.owner) {
            continue;
        }
        let mut default = [0u32; 4];
        default[0] = o.mark;
        default[2] = o.ctmark;
        if default == [0; 4] {
            continue;
        }
        out.notes.push(format!(
            "{} is on the node (--node) and not planned: its bits stay where they are",
            o.owner
        ));
        out.units.push(Unit {
            owners: vec![o.owner.clone()],
            claims: vec![format!("{}/observed", o.owner)],
            mover: None,
            fixed: Some("already on the node (--node), not planned".into()),
            default,
            sources: vec!["--node snapshot".into()],
        });
    }
}

fn first_sentence(text: &str) -> String {
    let end = text.find(". ").map_or(text.len(), |i| i + 1);
    text[..end].trim().to_string()
}
