//! The node a plan describes, as real rules: every planned software's registry rule templates
//! (its `[[rules]]` lines of format `iptables` and `ip-rule`) with the plan's settings applied
//! ([`super::remap`]), as an `iptables-restore` file and `ip rule add` argument lists. Loaded
//! into a network namespace, collected and audited, it proves the plan (or, built with the
//! default settings, shows the conflicts the plan removes).
//!
//! Each non-base chain a template writes to is reached by a jump from the base chain its name
//! contains (`cali-PREROUTING` from `PREROUTING`, `ts-forward` from `FORWARD`), or from the
//! table's first base chain, so every rule sits on a real hook.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::registry::Registry;

use super::remap::{moves_of, planned_software};
use super::types::Plan;

/// A generated node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeneratedNode {
    /// `iptables-restore` input (IPv4).
    pub iptables: String,
    /// `ip rule add` arguments, one rule each (`["pref", "5210", "fwmark", …]`).
    pub ip_rules: Vec<Vec<String>>,
}

/// The base chains of each iptables table, in hook order.
fn base_chains(table: &str) -> &'static [&'static str] {
    match table {
        "raw" => &["PREROUTING", "OUTPUT"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "filter" => &["INPUT", "FORWARD", "OUTPUT"],
        _ => &[],
    }
}

/// The node of `plan`: with the planned settings, or with every default when `defaults`.
pub fn generate(registry: &Registry, plan: &Plan, defaults: bool) -> GeneratedNode {
    // table -> (chain -> rule lines)
    let mut tables: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut out = GeneratedNode::default();
    for p in &plan.software {
        let Some(sw) = registry.get(&p.id) else {
            continue;
        };
        let moves = if defaults {
            Vec::new()
        } else {
            moves_of(plan, &p.id)
        };
        let sw = planned_software(sw, &moves);
        for r in &sw.rules {
            match r.format.as_str() {
                "iptables" if !base_chains(&r.table).is_empty() => {
                    let text = r.text.trim();
                    let Some(rest) = text
                        .strip_prefix("-A ")
                        .or_else(|| text.strip_prefix("-I "))
                    else {
                        continue;
                    };
                    let chain = rest.split_whitespace().next().unwrap_or("").to_string();
                    tables
                        .entry(r.table.clone())
                        .or_default()
                        .entry(chain)
                        .or_default()
                        .push(format!("-A {rest}"));
                }
                "ip-rule" => {
                    if let Some(args) = ip_rule_args(&r.text) {
                        out.ip_rules.push(args);
                    }
                }
                _ => {}
            }
        }
    }
    for (table, chains) in &tables {
        let bases = base_chains(table);
        let _ = writeln!(out.iptables, "*{table}");
        for b in bases {
            let _ = writeln!(out.iptables, ":{b} ACCEPT [0:0]");
        }
        for chain in chains.keys().filter(|c| !bases.contains(&c.as_str())) {
            let _ = writeln!(out.iptables, ":{chain} - [0:0]");
        }
        for chain in chains.keys().filter(|c| !bases.contains(&c.as_str())) {
            let upper = chain.to_ascii_uppercase();
            let from = bases
                .iter()
                .find(|b| upper.contains(*b))
                .or(bases.first())
                .copied()
                .unwrap_or("INPUT");
            let _ = writeln!(out.iptables, "-A {from} -j {chain}");
        }
        for lines in chains.values() {
            for l in lines {
                let _ = writeln!(out.iptables, "{l}");
            }
        }
        let _ = writeln!(out.iptables, "COMMIT");
    }
    out
}

/// `5210:\tfrom all fwmark 0x80000/0xff0000 lookup main` as `ip rule add` arguments.
fn ip_rule_args(text: &str) -> Option<Vec<String>> {
    let (prio, rest) = text.split_once(':')?;
    let prio: u32 = prio.trim().parse().ok()?;
    let mut args = vec!["pref".to_string(), prio.to_string()];
    args.extend(rest.split_whitespace().map(str::to_string));
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_rules_become_arguments() {
        assert_eq!(
            ip_rule_args("5210:\tfrom all fwmark 0x80000/0xff0000 lookup main").unwrap(),
            [
                "pref",
                "5210",
                "from",
                "all",
                "fwmark",
                "0x80000/0xff0000",
                "lookup",
                "main"
            ]
        );
        assert!(ip_rule_args("no priority").is_none());
    }

    #[test]
    fn chains_hang_off_the_base_chain_they_name() {
        let reg = Registry::embedded().unwrap();
        let req = super::super::Request {
            software: vec![super::super::Wanted::parse("tailscale").unwrap()],
            ..Default::default()
        };
        let plan = super::super::plan(&reg, &req).unwrap();
        let node = generate(&reg, &plan, false);
        assert!(
            node.iptables.contains("-A FORWARD -j ts-forward\n"),
            "{}",
            node.iptables
        );
        assert!(node.iptables.contains("-A POSTROUTING -j ts-postrouting\n"));
        assert!(node
            .ip_rules
            .iter()
            .any(|r| r.contains(&"0x80000/0xff0000".to_string())));
    }
}
