//! Naming the owner of a rule from its signatures.
//!
//! Strongest first: an exact chain name, a comment (substring or prefix), an nft table name or
//! table name prefix (only for native nft tables), the
//! longest matching chain prefix, the chain the rule jumps to (a rule in a builtin chain
//! that jumps into `KUBE-POSTROUTING` is kube-proxy's), an interface it matches, and last a
//! distinctive mark value. Only rules with mark operations are
//! attributed, so this runs a few thousand times even on a million-rule node.

use std::collections::HashMap;

use serde::Serialize;

use super::schema::Software;
use crate::model::Bits;

/// The owner id of rules no signature matches.
pub const UNKNOWN: &str = "unknown";

/// What is known about a rule for attribution.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleContext<'a> {
    /// The table name (`mangle`, or an nft table's name).
    pub table: &'a str,
    /// Whether the table is a native nft table.
    pub nft: bool,
    /// The chain name.
    pub chain: &'a str,
    /// The rule's comment.
    pub comment: Option<&'a str>,
    /// The chain the rule jumps or goes to, if any.
    pub jump: Option<&'a str>,
    /// Interfaces the rule matches (`-i`, `-o`, nft `iifname`/`oifname`).
    pub interfaces: &'a [&'a str],
    /// Constant mark values the rule compares or writes.
    pub values: &'a [u32],
}

/// Why a rule was given to an owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `chain`, `comment`, `table`, `chain-prefix`, `jump` or `none`.
    pub signature: &'static str,
    /// The pattern that matched.
    pub pattern: String,
}

/// The owner of a rule and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The registry id, or `unknown`.
    pub owner: String,
    /// The signature that matched.
    pub evidence: Evidence,
}

/// Lookup tables built once from the registry.
#[derive(Clone, Debug, Default)]
pub(crate) struct Matcher {
    chains: HashMap<String, usize>,
    prefixes: Vec<(String, usize)>,
    comments: Vec<(String, usize)>,
    comment_prefixes: Vec<(String, usize)>,
    tables: HashMap<String, usize>,
    table_prefixes: Vec<(String, usize)>,
    devices: Vec<(String, usize)>,
    values: HashMap<u32, usize>,
    /// `ip rule` priority ranges (inclusive) and tables.
    priorities: Vec<(u32, u32, usize)>,
    rule_tables: HashMap<String, usize>,
    programs: Vec<(String, usize)>,
    processes: Vec<(String, usize)>,
    /// `(value, mask)` patterns for touchpoint constants.
    patterns: Vec<(u32, u32, usize)>,
}

/// `"5210-5270"` or `"9"`.
pub(crate) fn priority_range(s: &str) -> Option<(u32, u32)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let p = s.trim().parse().ok()?;
            Some((p, p))
        }
    }
}

/// `"0x00000e00/0x00000f00"`.
pub(crate) fn mark_pattern(s: &str) -> Option<(u32, u32)> {
    let (v, m) = s.split_once('/')?;
    let num = |x: &str| Bits::parse(x.trim()).ok().map(u32::from);
    Some((num(v)?, num(m)?))
}

impl Matcher {
    pub(crate) fn new(software: &[Software]) -> Self {
        let mut m = Matcher::default();
        for (i, s) in software.iter().enumerate() {
            let sig = &s.signatures;
            for c in &sig.chains {
                m.chains.entry(c.clone()).or_insert(i);
            }
            m.prefixes
                .extend(sig.chain_prefixes.iter().map(|p| (p.clone(), i)));
            m.comments
                .extend(sig.comments.iter().map(|p| (p.clone(), i)));
            m.comment_prefixes
                .extend(sig.comment_prefixes.iter().map(|p| (p.clone(), i)));
            for t in &sig.tables {
                // "inet mullvad" and "mullvad" both name the table `mullvad`.
                let name = t.rsplit(' ').next().unwrap_or(t);
                m.tables.entry(name.to_string()).or_insert(i);
            }
            m.table_prefixes
                .extend(sig.table_prefixes.iter().map(|p| (p.clone(), i)));
        }
        for (i, s) in software.iter().enumerate() {
            m.devices.extend(
                s.signatures
                    .devices
                    .iter()
                    .map(|d| (d.trim_end_matches(['+', '*']).to_string(), i)),
            );
            for v in &s.signatures.values {
                m.values.entry(v.0).or_insert(i);
            }
            let sig = &s.signatures;
            m.priorities.extend(
                sig.ip_rule_priorities
                    .iter()
                    .filter_map(|p| priority_range(p))
                    .map(|(lo, hi)| (lo, hi, i)),
            );
            for t in &sig.ip_rule_tables {
                m.rule_tables.entry(t.clone()).or_insert(i);
            }
            m.programs
                .extend(sig.programs.iter().map(|p| (p.clone(), i)));
            m.processes
                .extend(sig.processes.iter().map(|p| (p.clone(), i)));
            m.patterns.extend(
                sig.mark_patterns
                    .iter()
                    .filter_map(|p| mark_pattern(p))
                    .map(|(v, mk)| (v, mk, i)),
            );
        }
        // Narrowest priority range first, longest program and process names first.
        m.priorities.sort_by_key(|(lo, hi, i)| (hi - lo, *lo, *i));
        m.programs
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        m.processes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        m.devices
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        // Longest prefix first, so `KUBE-ROUTER-` beats `KUBE-`.
        m.prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        m.comments
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        m.comment_prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        m.table_prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        m
    }

    fn chain_owner(&self, chain: &str) -> Option<(usize, &'static str, String)> {
        if let Some(i) = self.chains.get(chain) {
            return Some((*i, "chain", chain.to_string()));
        }
        self.prefixes
            .iter()
            .find(|(p, _)| chain.starts_with(p.as_str()))
            .map(|(p, i)| (*i, "chain-prefix", p.clone()))
    }

    /// Attribution of a touchpoint, strongest first: eBPF program, socket process, `ip rule`
    /// priority, distinctive value, routing table (priority and table only for policy routing: a
    /// tc or OVS priority means something else; a value beats a table because small table
    /// numbers such as 100 are shared by many how-tos), device, mark pattern.
    pub(crate) fn attribute_touchpoint(
        &self,
        software: &[Software],
        subsystem: crate::touchpoint::Subsystem,
        ctx: &crate::touchpoint::TouchContext,
        values: &[u32],
    ) -> Attribution {
        let ip_rule = subsystem == crate::touchpoint::Subsystem::IpRule;
        let by_name = |list: &[(String, usize)], name: Option<&str>, kind: &'static str| {
            let name = name?;
            list.iter()
                .find(|(n, _)| name == n || name.starts_with(n.as_str()))
                .map(|(n, i)| (*i, kind, n.clone()))
        };
        let found = by_name(&self.programs, ctx.program.as_deref(), "program")
            .or_else(|| by_name(&self.processes, ctx.process.as_deref(), "process"))
            .or_else(|| {
                let prio = ctx.priority.filter(|_| ip_rule)?;
                self.priorities
                    .iter()
                    .find(|(lo, hi, _)| (*lo..=*hi).contains(&prio))
                    .map(|(lo, hi, i)| {
                        (
                            *i,
                            "priority",
                            if lo == hi {
                                lo.to_string()
                            } else {
                                format!("{lo}-{hi}")
                            },
                        )
                    })
            })
            .or_else(|| {
                values.iter().find_map(|v| {
                    self.values
                        .get(v)
                        .map(|i| (*i, "value", crate::model::hex(*v)))
                })
            })
            .or_else(|| {
                let t = ctx.table.as_deref().filter(|_| ip_rule)?;
                self.rule_tables
                    .get(t)
                    .map(|i| (*i, "routing-table", t.to_string()))
            })
            .or_else(|| {
                let name = ctx.device.as_deref()?.trim_end_matches(['+', '*']);
                self.devices
                    .iter()
                    .find(|(d, _)| !d.is_empty() && name.starts_with(d.as_str()))
                    .map(|(d, i)| (*i, "device", d.clone()))
            })
            .or_else(|| {
                values.iter().find_map(|c| {
                    self.patterns
                        .iter()
                        .find(|(v, m, _)| c & m == *v)
                        .map(|(v, m, i)| (*i, "mark-pattern", format!("{v:#x}/{m:#x}")))
                })
            });
        Self::named(software, found)
    }

    fn named(software: &[Software], found: Option<(usize, &'static str, String)>) -> Attribution {
        match found {
            Some((i, signature, pattern)) => Attribution {
                owner: software[i].id.clone(),
                evidence: Evidence { signature, pattern },
            },
            None => Attribution {
                owner: UNKNOWN.to_string(),
                evidence: Evidence {
                    signature: "none",
                    pattern: String::new(),
                },
            },
        }
    }

    pub(crate) fn attribute(&self, software: &[Software], ctx: &RuleContext<'_>) -> Attribution {
        let found = self
            .chains
            .get(ctx.chain)
            .map(|i| (*i, "chain", ctx.chain.to_string()))
            .or_else(|| {
                let c = ctx.comment?;
                self.comment_prefixes
                    .iter()
                    .find(|(p, _)| c.starts_with(p.as_str()))
                    .or_else(|| self.comments.iter().find(|(p, _)| c.contains(p.as_str())))
                    .map(|(p, i)| (*i, "comment", p.clone()))
            })
            .or_else(|| {
                if !ctx.nft {
                    return None;
                }
                self.tables
                    .get(ctx.table)
                    .map(|i| (*i, "table", ctx.table.to_string()))
                    .or_else(|| {
                        self.table_prefixes
                            .iter()
                            .find(|(p, _)| ctx.table.starts_with(p.as_str()))
                            .map(|(p, i)| (*i, "table-prefix", p.clone()))
                    })
            })
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| ctx.chain.starts_with(p.as_str()))
                    .map(|(p, i)| (*i, "chain-prefix", p.clone()))
            })
            .or_else(|| {
                let (i, _, pattern) = self.chain_owner(ctx.jump?)?;
                Some((i, "jump", pattern))
            })
            .or_else(|| {
                ctx.interfaces.iter().find_map(|iface| {
                    let name = iface.trim_end_matches(['+', '*']);
                    self.devices
                        .iter()
                        .find(|(d, _)| !d.is_empty() && name.starts_with(d.as_str()))
                        .map(|(d, i)| (*i, "device", d.clone()))
                })
            })
            .or_else(|| {
                ctx.values.iter().find_map(|v| {
                    self.values
                        .get(v)
                        .map(|i| (*i, "value", crate::model::hex(*v)))
                })
            });
        Self::named(software, found)
    }
}
