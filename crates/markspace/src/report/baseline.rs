//! Baselines: findings a team has accepted, each with a reason and an optional expiry, so a CI
//! gate can stay on while they are worked on. Suppressed findings leave `findings` and the
//! counts but stay in the report under `suppressed`, with the reason.
//!
//! ```toml
//! [[suppress]]
//! code = "MS001"                      # required
//! owners = ["calico", "tailscale"]    # optional: the finding's owners, in any order
//! field = "mark"                      # optional: mark or ctmark
//! bits = "0x000f0000"                 # optional: the finding's bits must lie inside these
//! reason = "exit node only; INC-1234" # required, not empty
//! expires = "2027-01-31"              # optional, UTC day: from the next day on it no longer applies
//! ```

use serde::{Deserialize, Serialize};

use crate::analysis::Finding;
use crate::model::Bits;

/// One accepted finding.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// The finding's code (`MS001`).
    pub code: String,
    /// The finding's owners, in any order; any owners when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<String>>,
    /// `mark` or `ctmark`; either when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The finding's bits must lie inside these; any bits when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<Bits>,
    /// Why it is accepted (required).
    pub reason: String,
    /// The last UTC day (`YYYY-MM-DD`) it applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A baseline file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The accepted findings.
    #[serde(default)]
    pub suppress: Vec<Suppression>,
}

/// A finding a baseline suppressed, with the entry's reason.
#[derive(Clone, Debug, Serialize)]
pub struct Suppressed {
    /// The finding.
    pub finding: Finding,
    /// The baseline's reason.
    pub reason: String,
    /// The baseline's expiry, if any.
    pub expires: Option<String>,
}

impl Baseline {
    /// Reads a baseline; the error names the entry and what is wrong.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let b: Baseline = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, s) in b.suppress.iter().enumerate() {
            let n = i + 1;
            if s.reason.trim().is_empty() {
                return Err(format!(
                    "suppress entry {n} ({}): `reason` is empty; say why the finding is accepted",
                    s.code
                ));
            }
            if !(s.code.len() == 5 && s.code.starts_with("MS")) {
                return Err(format!(
                    "suppress entry {n}: `code` {:?} is not a finding code (MS001…)",
                    s.code
                ));
            }
            if let Some(f) = &s.field {
                if f != "mark" && f != "ctmark" {
                    return Err(format!(
                        "suppress entry {n} ({}): `field` must be mark or ctmark",
                        s.code
                    ));
                }
            }
            if let Some(e) = &s.expires {
                let ok = e.len() == 10
                    && e.bytes().enumerate().all(|(i, c)| {
                        if i == 4 || i == 7 {
                            c == b'-'
                        } else {
                            c.is_ascii_digit()
                        }
                    });
                if !ok {
                    return Err(format!(
                        "suppress entry {n} ({}): `expires` {e:?} is not a YYYY-MM-DD day",
                        s.code
                    ));
                }
            }
        }
        Ok(b)
    }

    /// A baseline accepting every one of these findings, each with a placeholder reason to edit.
    pub fn of(findings: &[Finding], today: &str) -> Baseline {
        Baseline {
            suppress: findings
                .iter()
                .map(|f| Suppression {
                    code: f.code.as_str().to_string(),
                    owners: Some(f.owners.clone()),
                    field: Some(f.field.as_str().to_string()),
                    bits: Some(Bits(f.bits)),
                    reason: format!(
                        "accepted by --write-baseline on {today}: {} (replace with why)",
                        f.title
                    ),
                    expires: None,
                })
                .collect(),
        }
    }

    /// The baseline as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

impl Suppression {
    /// Whether it accepts a finding.
    pub fn matches(&self, f: &Finding) -> bool {
        let mut owners = f.owners.clone();
        owners.sort();
        self.code == f.code.as_str()
            && self.owners.as_ref().is_none_or(|o| {
                let mut o = o.clone();
                o.sort();
                o == owners
            })
            && self.field.as_deref().is_none_or(|x| x == f.field.as_str())
            && self.bits.is_none_or(|Bits(b)| f.bits & !b == 0)
    }
}
