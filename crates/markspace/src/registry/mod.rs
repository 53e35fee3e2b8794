//! The registry: who uses which bits, how to recognise them, and known conflicts.
//!
//! The data is one TOML file per software under this crate's `registry/`, embedded in the
//! binary at build time; [`Registry::load_dir`] reads more (or replacement) entries from a
//! directory. [`Registry::attribute`] names the owner of a rule from its chain, comment and
//! table; anything that matches no signature belongs to [`UNKNOWN`].

mod attribution;
pub mod query;
mod quoted;
pub mod schema;
mod validate;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

pub use attribution::{strength, Attribution, Evidence, RuleContext, UNKNOWN};
pub(crate) use attribution::{Found, Pattern};
pub use schema::{Incident, Software};
pub use validate::{validate, Problem};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/registry_files.rs"));
}

/// A registry file that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid TOML or not the schema.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The loaded knowledge base.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// All software, sorted by id.
    pub software: Vec<Software>,
    /// Known conflicts.
    pub incidents: Vec<Incident>,
    /// The file each entry came from.
    pub files: HashMap<String, String>,
    matcher: attribution::Matcher,
}

/// Which registry a report was made with: its size and a digest of its content (every entry
/// and incident as loaded, `--registry DIR` included), so two reports can be compared.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RegistryVersion {
    /// Software entries.
    pub entries: usize,
    /// Known incidents.
    pub incidents: usize,
    /// FNV-1a 64 of the entries and incidents as JSON, in hex.
    pub digest: String,
}

impl Registry {
    /// Its size and content digest.
    pub fn version(&self) -> RegistryVersion {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(
            serde_json::to_string(&self.software)
                .unwrap_or_default()
                .as_bytes(),
        );
        feed(
            serde_json::to_string(&self.incidents)
                .unwrap_or_default()
                .as_bytes(),
        );
        RegistryVersion {
            entries: self.software.len(),
            incidents: self.incidents.len(),
            digest: format!("{h:016x}"),
        }
    }

    /// The registry embedded in the binary.
    pub fn embedded() -> Result<Registry, RegistryError> {
        let mut r = Registry::default();
        for (name, text) in embedded::EMBEDDED {
            r.add_file(name, text)?;
        }
        r.rebuild();
        Ok(r)
    }

    /// Adds (or replaces, by id) entries from every `*.toml` file of a directory.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), RegistryError> {
        let io = |source| RegistryError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        paths.sort();
        for p in paths {
            let text = fs::read_to_string(&p).map_err(|source| RegistryError::Io {
                path: p.display().to_string(),
                source,
            })?;
            self.add_file(&p.display().to_string(), &text)?;
        }
        self.rebuild();
        Ok(())
    }

    fn add_file(&mut self, path: &str, text: &str) -> Result<(), RegistryError> {
        let invalid = |e: toml::de::Error| RegistryError::Invalid {
            path: path.to_string(),
            message: e.to_string(),
        };
        let base = path.rsplit('/').next().unwrap_or(path);
        if base == "incidents.toml" {
            let file: schema::IncidentFile = toml::from_str(text).map_err(invalid)?;
            self.incidents.extend(file.incidents);
            return Ok(());
        }
        let sw: Software = toml::from_str(text).map_err(invalid)?;
        self.files.insert(sw.id.clone(), path.to_string());
        match self.software.iter_mut().find(|s| s.id == sw.id) {
            Some(existing) => *existing = sw,
            None => self.software.push(sw),
        }
        Ok(())
    }

    fn rebuild(&mut self) {
        self.software.sort_by(|a, b| a.id.cmp(&b.id));
        self.matcher = attribution::Matcher::new(&self.software);
    }

    /// Replaces (or adds) one entry, as `--registry DIR` would (`plan` checks nodes against
    /// the entries its settings move).
    pub fn replace(&mut self, sw: Software) {
        match self.software.iter_mut().find(|s| s.id == sw.id) {
            Some(existing) => *existing = sw,
            None => self.software.push(sw),
        }
        self.rebuild();
    }

    /// A software by id.
    pub fn get(&self, id: &str) -> Option<&Software> {
        self.software.iter().find(|s| s.id == id)
    }

    /// Names the owner of a rule.
    pub fn attribute(&self, ctx: &RuleContext<'_>) -> Attribution {
        self.matcher.attribute(&self.software, ctx)
    }

    /// Names the owner of a rule of a ruleset: the one way the audit and `trace` build a rule's
    /// attribution context (table, chain, comment, jump target, interfaces, constant values,
    /// and `text`, the rule as its input spells it, for rules the registry quotes).
    pub fn attribute_rule(
        &self,
        set: &crate::ruleset::Ruleset,
        id: crate::ruleset::RuleId,
        text: &str,
    ) -> Attribution {
        let mut scratch = RuleScratch::default();
        attribution::Matcher::named(&self.software, self.rule_hit(set, id, text, &mut scratch))
    }

    /// [`Self::attribute_rule`] without an allocation: the index of the owner among
    /// [`Self::software`] (sorted by id), the signature and the pattern, or `None` for an
    /// unknown owner. `scratch` holds the rule's lists from one call to the next.
    pub(crate) fn rule_hit<'p>(
        &'p self,
        set: &'p crate::ruleset::Ruleset,
        id: crate::ruleset::RuleId,
        text: &'p str,
        scratch: &mut RuleScratch<'p>,
    ) -> Option<attribution::Found<'p>> {
        use crate::ruleset::{Origin, Verdict};
        let rule = set.rule(id);
        let chain = set.chain(rule.chain);
        let table = set.table(chain.table);
        let jump = match &rule.verdict {
            Verdict::Jump(c) | Verdict::Goto(c) => Some(&*set.chain(*c).name),
            _ => None,
        };
        scratch.interfaces.clear();
        if let Some(l) = rule.labels() {
            scratch.interfaces.extend(l.interfaces.iter().map(|i| &**i));
        }
        scratch.values.clear();
        scratch
            .values
            .extend(rule.ops().iter().filter_map(crate::model::constant_value));
        scratch.masks.clear();
        scratch.masks.extend(rule.ops().iter().map(op_mask));
        self.matcher.hit(&attribution::RuleFacts {
            table: &table.name,
            nft: table.origin == Origin::Nftables,
            chain: &chain.name,
            comment: rule.comment(),
            jump,
            interfaces: &scratch.interfaces,
            values: &scratch.values,
            masks: &scratch.masks,
            text: Some(text),
        })
    }

    /// [`Self::attribute_touchpoint`] without formatting the pattern ([`Self::rule_hit`]).
    pub(crate) fn touchpoint_hit<'p>(
        &'p self,
        subsystem: crate::touchpoint::Subsystem,
        ctx: &'p crate::touchpoint::TouchContext,
        values: &[u32],
    ) -> Option<attribution::Found<'p>> {
        self.matcher.touchpoint_hit(subsystem, ctx, values)
    }

    /// Names the owner of a touchpoint outside netfilter (ip rule, xfrm, tc, socket…).
    pub fn attribute_touchpoint(
        &self,
        subsystem: crate::touchpoint::Subsystem,
        ctx: &crate::touchpoint::TouchContext,
        values: &[u32],
    ) -> Attribution {
        self.matcher
            .attribute_touchpoint(&self.software, subsystem, ctx, values)
    }

    /// Whether `reader` declares that it reads `bits` of `owner`'s on purpose.
    pub fn cooperates(
        &self,
        reader: &str,
        owner: &str,
        field: crate::model::Field,
        bits: u32,
    ) -> bool {
        self.get(reader).is_some_and(|s| {
            s.reads_from
                .iter()
                .any(|r| r.owner == owner && r.kind.field() == field && r.bits.0 & bits == bits)
        })
    }

    /// Whether two software share bits by design (either lists the other in `cooperates_with`).
    pub fn by_design(&self, a: &str, b: &str) -> bool {
        let lists = |x: &str, y: &str| {
            self.get(x)
                .is_some_and(|s| s.cooperates_with.iter().any(|c| c == y))
        };
        lists(a, b) || lists(b, a)
    }

    /// Incidents that involve all of these software and these bits.
    pub fn incidents_for<'r>(
        &'r self,
        owners: &[&str],
        field: crate::model::Field,
        bits: u32,
    ) -> impl Iterator<Item = &'r Incident> + 'r {
        let owners: Vec<String> = owners.iter().map(|s| s.to_string()).collect();
        self.incidents.iter().filter(move |i| {
            i.kind.field() == field
                && i.bits.0 & bits != 0
                && owners.iter().all(|o| i.software.iter().any(|s| s == o))
        })
    }
}

#[cfg(test)]
mod tests;

/// The lists [`Registry::rule_hit`] builds for each rule, kept from rule to rule.
#[derive(Debug, Default)]
pub(crate) struct RuleScratch<'s> {
    interfaces: Vec<&'s str>,
    values: Vec<u32>,
    masks: Vec<[u32; 2]>,
}

/// The bits each operation reads or writes, per field (`[mark, ctmark]`), for attribution by
/// claimed bits.
pub fn op_masks(ops: &[crate::model::MarkOp]) -> Vec<[u32; 2]> {
    ops.iter().map(op_mask).collect()
}

/// The bits one operation reads or writes, per field ([`op_masks`]).
pub(crate) fn op_mask(op: &crate::model::MarkOp) -> [u32; 2] {
    use crate::model::{Field, MarkOp};
    let fi = |f: Field| usize::from(f == Field::CtMark);
    let mut m = [0u32; 2];
    match op {
        MarkOp::Read(r) => m[fi(r.field)] = r.bits(),
        MarkOp::Write(w) => {
            m[fi(w.field)] = w.bits();
            // A copy also reads its source's bits (`meta mark set ct mark & M`).
            match w.source_read() {
                Some((crate::model::CopySource::Mark, mask)) if w.field != Field::Mark => {
                    m[0] = mask
                }
                Some((crate::model::CopySource::CtMark, mask)) if w.field != Field::CtMark => {
                    m[1] = mask
                }
                _ => {}
            }
        }
    }
    m
}
