//! The checks, registered once each in [`CHECKS`], and [`run_all`], which runs them and sorts
//! what they find.
//!
//! A check is a function over the [`Ctx`] that appends [`Finding`]s; its row says which codes of
//! the catalogue ([`super::catalogue::FINDINGS`]: code, name, severities, when) it reports. One
//! pass may report several codes (MS001 and MS002 come from one scan of the owner pairs), and
//! every code is reported by exactly one check (a test holds both tables to that).

mod claims;
mod dead;
mod implied;
mod paths;
mod shared;
mod sysctls;
mod whole;

use super::catalogue::Code;
use super::finding::{Ctx, Finding};

/// One registered check.
pub(crate) struct Check {
    /// The codes it reports.
    pub(crate) codes: &'static [Code],
    /// Runs it: appends its findings, in any order.
    pub(crate) run: fn(&Ctx<'_>, &mut Vec<Finding>),
}

/// Every check, in code order.
pub(crate) static CHECKS: &[Check] = &[
    Check {
        codes: &[Code::SharedBits, Code::ForeignRead],
        run: shared::shared_bits,
    },
    Check {
        codes: &[Code::WholeMarkWrite, Code::UnmaskedConnmark],
        run: whole::whole_writes,
    },
    Check {
        codes: &[Code::WholeMarkMatch],
        run: whole::whole_matches,
    },
    Check {
        codes: &[Code::NeverMatches],
        run: dead::never_matches,
    },
    Check {
        codes: &[Code::UnknownOwner],
        run: claims::unknown_owner,
    },
    Check {
        codes: &[Code::OutsideClaim],
        run: claims::outside_claim,
    },
    Check {
        codes: &[Code::UnreachableRules],
        run: dead::unreachable,
    },
    Check {
        codes: &[
            Code::RpFilterIgnoresMark,
            Code::SrcValidMarkForced,
            Code::FwmarkAcceptOff,
        ],
        run: sysctls::find,
    },
    Check {
        codes: &[Code::ImpliedWrite],
        run: implied::find,
    },
    Check {
        codes: &[Code::ShadowedMarkRule],
        run: paths::shadowed,
    },
    Check {
        codes: &[Code::MarkAfterRouting],
        run: paths::after_routing,
    },
    Check {
        codes: &[Code::MarkSurvives],
        run: paths::survives,
    },
];

/// Runs every check; the findings come sorted: errors first, then by code, field, owners and
/// bits (the order the JSON contract promises). The sort is stable, so findings equal in all
/// of these stay in the order their check reported them.
///
/// Before the sort, every fix a check proposed is checked on a copy of the node
/// ([`super::verify::settle`]; `reaudit` analyses a node without checking fixes again).
pub(crate) fn run_all(
    cx: &Ctx<'_>,
    reaudit: &dyn Fn(&crate::model::Node) -> Vec<Finding>,
) -> (Vec<Finding>, Vec<super::verify::VerifiedFix>) {
    let mut out = Vec::new();
    for check in CHECKS {
        let from = out.len();
        (check.run)(cx, &mut out);
        debug_assert!(
            out[from..].iter().all(|f| check.codes.contains(&f.code)),
            "a check reported a code outside its row {:?}",
            check.codes
        );
    }
    let mut fixes = super::verify::settle(cx, &mut out, reaudit);
    super::incidents::attach(cx.registry, &mut out);
    let mut order: Vec<usize> = (0..out.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&out[a], &out[b]);
        a.severity
            .cmp(&b.severity)
            .then(a.code.cmp(&b.code))
            .then(a.field.cmp(&b.field))
            .then(a.owners.cmp(&b.owners))
            .then(a.bits.cmp(&b.bits))
    });
    let mut position = vec![0; out.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    for f in &mut fixes {
        f.finding = position[f.finding];
    }
    fixes.sort_by_key(|f| f.finding);
    let mut slots: Vec<Option<Finding>> = out.into_iter().map(Some).collect();
    let sorted = order.iter().filter_map(|&i| slots[i].take()).collect();
    (sorted, fixes)
}

#[cfg(test)]
mod tests {
    use super::super::catalogue::{Code, FINDINGS};
    use super::CHECKS;

    #[test]
    fn every_code_is_catalogued_once_in_order() {
        let mut last = "";
        for (i, f) in FINDINGS.iter().enumerate() {
            assert_eq!(f.id as usize, i, "{} sits at the wrong place", f.code);
            assert!(f.code > last, "{} is out of order after {last}", f.code);
            assert!(
                f.code.len() == 5 && f.code.starts_with("MS"),
                "{} is not MSnnn",
                f.code
            );
            assert!(!f.severities.is_empty(), "{} has no severity", f.code);
            for s in f.severities {
                assert!(
                    f.severity_doc.contains(s.as_str()),
                    "{}'s severity text does not mention {}",
                    f.code,
                    s.as_str()
                );
            }
            last = f.code;
        }
        let names: std::collections::BTreeSet<_> = FINDINGS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FINDINGS.len(), "two codes share a name");
    }

    #[test]
    fn every_code_is_reported_by_exactly_one_check() {
        for f in &FINDINGS {
            let n = CHECKS.iter().filter(|c| c.codes.contains(&f.id)).count();
            assert_eq!(n, 1, "{} is in {n} checks' rows", f.code);
        }
        let listed: usize = CHECKS.iter().map(|c| c.codes.len()).sum();
        assert_eq!(listed, FINDINGS.len(), "a check lists a code twice");
        let first: Vec<Code> = CHECKS.iter().map(|c| c.codes[0]).collect();
        assert!(
            first.windows(2).all(|w| w[0] < w[1]),
            "CHECKS is not in code order"
        );
    }

    /// The README's findings table, generated from the catalogue.
    fn readme_table() -> String {
        let mut out = String::from("| code | name | severity | when |\n|---|---|---|---|\n");
        for f in &FINDINGS {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                f.code, f.name, f.severity_doc, f.when
            ));
        }
        out
    }

    /// The README's "### Findings" table is the catalogue. When this fails, change the
    /// catalogue (`analysis/catalogue.rs`) and rewrite the table from it with
    /// `MARKSPACE_BLESS=1 cargo test -p markspace --lib readme_findings_table`.
    #[test]
    fn readme_findings_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let start = readme
            .find("| code | name | severity | when |")
            .expect("the README has a findings table");
        let len = readme[start..]
            .split_inclusive('\n')
            .take_while(|l| l.starts_with('|'))
            .map(str::len)
            .sum::<usize>();
        let (found, expected) = (&readme[start..start + len], readme_table());
        if found == expected {
            return;
        }
        if std::env::var_os("MARKSPACE_BLESS").is_some() {
            let mut new = readme.clone();
            new.replace_range(start..start + len, &expected);
            std::fs::write(path, new).expect("rewrite README.md");
            return;
        }
        panic!(
            "README.md's findings table differs from analysis::catalogue::FINDINGS; \
             rewrite it with MARKSPACE_BLESS=1 cargo test -p markspace --lib readme_findings_table. \
             Expected:\n{expected}"
        );
    }
}
