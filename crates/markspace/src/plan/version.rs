//! Release versions and the registry's version ranges (`">=3.1, <3.30"`), as `plan` reads them.
//!
//! Hand-written rather than a semver crate: registry versions are dotted numbers of any length
//! (`1.27`, `3.30.1`, `1.0.0-rc5`) and ranges carry prose notes (`<1.98.2 (nftables mode, …)`),
//! which semver parsers reject; the whole job is a comparison of number lists.

use std::cmp::Ordering;
use std::fmt;

/// A release: its dotted numbers (a pre-release suffix is ignored: `1.0.0-rc5` is `1.0.0`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub struct Version(Vec<u64>);

impl Version {
    /// Reads `1.27`, `v3.30.1`, `1.0.0-rc5`; `None` when it does not start with a number.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().trim_start_matches('v');
        let core = t.split(['-', '+', ' ']).next().unwrap_or("");
        let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty()).map(Version)
    }

    fn cmp_padded(&self, other: &Version) -> Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| {
                let a = self.0.get(i).copied().unwrap_or(0);
                let b = other.0.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

/// One comparison of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

/// A conjunction of comparisons: `>=3.1, <3.30`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range(Vec<(Op, Version)>);

impl Range {
    /// Reads a registry range; a trailing note in parentheses is ignored. `None` when any part
    /// is not a comparison with a version (prose like `before PR #54`): such a claim is taken
    /// to hold in every version, and `plan` says so.
    pub fn parse(text: &str) -> Option<Range> {
        let t = text.split('(').next().unwrap_or("").trim();
        if t.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for part in t.split(',') {
            let p = part.trim();
            let (op, rest) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .iter()
            .find_map(|(s, op)| p.strip_prefix(s).map(|r| (*op, r)))?;
            out.push((op, Version::parse(rest)?));
        }
        Some(Range(out))
    }

    /// Whether `v` lies in the range.
    pub fn contains(&self, v: &Version) -> bool {
        self.0.iter().all(|(op, bound)| {
            let o = v.cmp_padded(bound);
            match op {
                Op::Ge => o.is_ge(),
                Op::Gt => o.is_gt(),
                Op::Le => o.is_le(),
                Op::Lt => o.is_lt(),
                Op::Eq => o.is_eq(),
            }
        })
    }

    /// The versions its comparisons name (`>=3.1, <3.30` gives 3.1 and 3.30): the releases
    /// where a claim appears or goes away.
    pub fn bounds(&self) -> Vec<Version> {
        self.0.iter().map(|(_, v)| v.clone()).collect()
    }

    /// Whether the range is open upwards (it holds for the current release when no version is
    /// given).
    pub fn is_current(&self) -> bool {
        self.0.iter().all(|(op, _)| matches!(op, Op::Ge | Op::Gt))
    }
}

/// Whether a claim or knob with this `versions` text holds for `version` (`None`: the current
/// release). Unreadable ranges hold everywhere.
pub fn holds(versions: Option<&str>, version: Option<&Version>) -> bool {
    let Some(range) = versions.and_then(Range::parse) else {
        return true;
    };
    match version {
        Some(v) => range.contains(v),
        None => range.is_current(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn reads_versions_with_prefixes_and_suffixes() {
        assert_eq!(v("v1.27").to_string(), "1.27");
        assert_eq!(v("1.0.0-rc5").to_string(), "1.0.0");
        assert!(Version::parse("latest").is_none());
    }

    #[test]
    fn ranges_bound_both_ways() {
        let r = Range::parse(">=3.1, <3.30").unwrap();
        assert!(r.contains(&v("3.1")));
        assert!(r.contains(&v("3.29.4")));
        assert!(!r.contains(&v("3.30")));
        assert!(!r.contains(&v("3.0")));
        assert!(!r.is_current());
        assert!(Range::parse(">=1.96.0").unwrap().is_current());
    }

    #[test]
    fn notes_are_ignored_and_prose_holds_everywhere() {
        let r = Range::parse("<1.98.2 (nftables mode, little-endian hosts)").unwrap();
        assert!(r.contains(&v("1.98.1")));
        assert!(!r.contains(&v("1.98.2")));
        assert!(Range::parse("before PR #54").is_none());
        assert!(holds(Some("before PR #54"), Some(&v("1.0"))));
    }

    #[test]
    fn without_a_version_only_open_ranges_hold() {
        assert!(holds(Some(">=1.29"), None));
        assert!(!holds(Some("<1.28"), None));
        assert!(holds(Some("<1.28"), Some(&v("1.27"))));
        assert!(holds(None, None));
    }
}
