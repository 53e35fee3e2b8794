//! Attribution of the real rule lines each registry entry quotes, read by the parsers that read
//! them on a node (iptables rule specs, nft statements, `ip rule` lines): every entry's own
//! rules must be attributed to it.

use crate::registry::{Registry, RuleContext, UNKNOWN};
use crate::sources::iptables::rule::{parse_rule, Command, Dialect, KNOWN_TARGETS};
use crate::sources::iptables::tokens::tokenize;

fn registry() -> Registry {
    Registry::embedded().expect("embedded registry parses")
}

/// Attribution of one iptables rule line in a table, from its signatures alone or (`by_text`)
/// also from its text, which the registry quotes.
fn attribute_iptables(reg: &Registry, table: &str, line: &str, by_text: bool) -> Option<String> {
    let toks = tokenize(line).ok()?;
    let parsed = parse_rule(&toks, Dialect::Iptables).ok()?;
    let chain = match parsed.command? {
        Command::Append(c) | Command::Insert(c, _) => c.into_owned(),
        _ => return None,
    };
    let jump = parsed
        .target
        .as_deref()
        .filter(|t| !KNOWN_TARGETS.contains(t));
    let interfaces: Vec<&str> = parsed.interfaces.iter().map(|i| i.as_ref()).collect();
    let values = crate::analysis::constant_values(&parsed.ops);
    let masks = crate::registry::op_masks(&parsed.ops);
    let ctx = RuleContext {
        table,
        nft: false,
        chain: &chain,
        comment: parsed.comment.as_deref(),
        jump,
        interfaces: &interfaces,
        values: &values,
        masks: &masks,
        text: by_text.then_some(line),
    };
    Some(reg.attribute(&ctx).owner)
}

#[test]
fn attribution_recognises_real_rules() {
    let reg = registry();
    let mut recognised = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut by_text_only = Vec::new();
    for sw in &reg.software {
        for rule in sw
            .rules
            .iter()
            .filter(|r| r.format == "iptables" && r.recognisable)
        {
            let line = rule.text.trim();
            if !(line.starts_with("-A") || line.starts_with("-I")) {
                continue;
            }
            checked += 1;
            // Signatures first (chains, comments, values…); a line they miss must then be
            // recognised by its quoted text, and is listed.
            match attribute_iptables(&reg, &rule.table, line, false) {
                Some(owner) if owner == sw.id => {
                    recognised.insert(sw.id.clone());
                }
                Some(owner) => match attribute_iptables(&reg, &rule.table, line, true) {
                    Some(by_text) if by_text == sw.id => by_text_only.push(line),
                    _ => failures.push(format!("{}: `{line}` attributed to {owner}", sw.id)),
                },
                None => failures.push(format!("{}: `{line}` does not parse", sw.id)),
            }
        }
    }
    println!(
        "attribution: {checked} real iptables rule lines checked, {} software recognised by signatures: {}",
        recognised.len(),
        recognised.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    println!(
        "attribution: {} lines recognised only as quoted text: {by_text_only:?}",
        by_text_only.len()
    );
    assert!(
        failures.is_empty(),
        "attribution failures:\n{}",
        failures.join("\n")
    );
    for id in ["kube-proxy", "kubelet", "calico", "cilium", "tailscale"] {
        assert!(
            recognised.contains(id),
            "{id} not recognised from its own rules"
        );
    }
}

/// Attribution of one nft rule line inside its `family table` and a chain no software names
/// (or the chain of an `add rule FAMILY TABLE CHAIN …` command).
fn attribute_nft(reg: &Registry, table: &str, line: &str) -> Result<String, String> {
    let (lowered, command) =
        crate::sources::nft::text::parse_rule_line(line).map_err(|e| e.message)?;
    let (table, chain) = match &command {
        Some((_, t, c)) => (t.as_str(), c.as_str()),
        None => (table.rsplit(' ').next().unwrap_or(table), "markspace-test"),
    };
    if lowered.ops.is_empty() {
        return Err("no mark operation".to_string());
    }
    let jump = match &lowered.verdict {
        Some(crate::sources::nft::lower::RuleVerdict::One(
            crate::sources::nft::ast::VerdictAst::Jump(c)
            | crate::sources::nft::ast::VerdictAst::Goto(c),
        )) => Some(c.as_str()),
        _ => None,
    };
    let interfaces: Vec<&str> = lowered.interfaces.iter().map(String::as_str).collect();
    let values = crate::analysis::constant_values(&lowered.ops);
    let masks = crate::registry::op_masks(&lowered.ops);
    let ctx = RuleContext {
        table,
        nft: true,
        chain,
        comment: lowered.comment.as_deref(),
        jump,
        interfaces: &interfaces,
        values: &values,
        masks: &masks,
        text: None,
    };
    Ok(reg.attribute(&ctx).owner)
}

#[test]
fn attribution_recognises_real_nft_rules() {
    let reg = registry();
    let mut recognised = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for sw in &reg.software {
        for rule in sw.rules.iter().filter(|r| r.format == "nft") {
            let line = rule.text.trim();
            checked += 1;
            match attribute_nft(&reg, &rule.table, line) {
                Ok(owner) if owner == sw.id || !rule.recognisable => {
                    recognised.insert(sw.id.clone());
                }
                Ok(owner) => failures.push(format!(
                    "{}: `{line}` in table {} attributed to {owner}",
                    sw.id, rule.table
                )),
                Err(e) => failures.push(format!("{}: `{line}`: {e}", sw.id)),
            }
        }
    }
    println!(
        "attribution: {checked} real nft rule lines checked, {} software recognised: {}",
        recognised.len(),
        recognised.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    assert!(
        failures.is_empty(),
        "nft attribution failures:\n{}",
        failures.join("\n")
    );
    for id in [
        "kube-proxy",
        "tailscale",
        "mullvad",
        "wireguard",
        "firewalld",
    ] {
        assert!(
            recognised.contains(id),
            "{id} not recognised from its nft rules"
        );
    }
}

#[test]
fn wg_quick_tables_are_recognised_by_prefix() {
    let reg = registry();
    let owner = attribute_nft(
        &reg,
        "ip wg-quick-mullvad0",
        "meta l4proto udp meta mark set ct mark",
    );
    assert_eq!(owner.as_deref(), Ok("wireguard"));
}

#[test]
fn a_quoted_rule_names_its_software_in_any_chain_context() {
    let reg = registry();
    // Weave's filter OUTPUT drop reads a single bit five entries claim and sits in a builtin
    // chain without a comment: only its text, which Weave's entry quotes, says whose it is.
    let line =
        "-A OUTPUT ! -p esp -m policy --dir out --pol none -m mark --mark 0x20000/0x20000 -j DROP";
    assert_eq!(
        attribute_iptables(&reg, "filter", line, false).as_deref(),
        Some(UNKNOWN)
    );
    assert_eq!(
        attribute_iptables(&reg, "filter", line, true).as_deref(),
        Some("weave-net")
    );
    // The same rule with another value is not the quoted one.
    let other = line.replace("0x20000/0x20000", "0x40000/0x40000");
    assert_ne!(
        attribute_iptables(&reg, "filter", &other, true).as_deref(),
        Some("weave-net")
    );
}

#[test]
fn unmatched_rules_are_unknown() {
    let reg = registry();
    let owner = attribute_iptables(
        &reg,
        "mangle",
        "-A MY-OWN-CHAIN -j MARK --set-xmark 0x1/0x1",
        true,
    );
    assert_eq!(owner.as_deref(), Some(UNKNOWN));
}

/// Attribution of one `ip rule` line (listing or command form).
fn attribute_ip_rule(reg: &Registry, line: &str) -> Result<String, String> {
    use crate::sources::iprule::{is_listing, parse_line, LineForm};
    let form = if is_listing(line) {
        LineForm::Listing
    } else {
        LineForm::Command
    };
    let rule = parse_line(line, form).map_err(|(_, m, _)| m)?;
    let values = rule
        .read()
        .map(|r| crate::analysis::constant_values(&[crate::model::MarkOp::Read(r)]))
        .unwrap_or_default();
    Ok(reg
        .attribute_touchpoint(
            crate::touchpoint::Subsystem::IpRule,
            &rule.context(),
            &values,
        )
        .owner)
}

#[test]
fn attribution_recognises_real_ip_rules() {
    let reg = registry();
    let mut checked = 0;
    let mut recognised = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for sw in &reg.software {
        for rule in sw
            .rules
            .iter()
            .filter(|r| r.format == "ip-rule" && r.recognisable)
        {
            checked += 1;
            match attribute_ip_rule(&reg, rule.text.trim()) {
                Ok(owner) if owner == sw.id => {
                    recognised.insert(sw.id.clone());
                }
                Ok(owner) => {
                    failures.push(format!("{}: `{}` attributed to {owner}", sw.id, rule.text))
                }
                Err(e) => failures.push(format!("{}: `{}` does not parse: {e}", sw.id, rule.text)),
            }
        }
    }
    println!(
        "attribution: {checked} real ip rule lines checked, {} software recognised: {}",
        recognised.len(),
        recognised.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    assert!(
        failures.is_empty(),
        "ip rule attribution failures:\n{}",
        failures.join("\n")
    );
    for id in ["tailscale", "wireguard", "cilium", "aws-vpc-cni"] {
        assert!(
            recognised.contains(id),
            "{id} not recognised from its ip rules"
        );
    }
}

/// The field's acceptance bar: attribution recognises at least 25 software from rule lines they
/// really install, across iptables, nft and `ip rule` forms (only lines whose owner is right).
#[test]
fn at_least_25_software_recognised_from_their_own_rules() {
    let reg = registry();
    let mut recognised = std::collections::BTreeSet::new();
    for sw in &reg.software {
        for rule in sw.rules.iter().filter(|r| r.recognisable) {
            let line = rule.text.trim();
            let owner = match rule.format.as_str() {
                "iptables" if line.starts_with("-A") || line.starts_with("-I") => {
                    attribute_iptables(&reg, &rule.table, line, false)
                }
                "nft" => attribute_nft(&reg, &rule.table, line).ok(),
                "ip-rule" => attribute_ip_rule(&reg, line).ok(),
                _ => None,
            };
            if owner.as_deref() == Some(sw.id.as_str()) {
                recognised.insert(sw.id.clone());
            }
        }
    }
    println!(
        "attribution: {} software recognised from their own iptables, nft and ip rule lines: {}",
        recognised.len(),
        recognised.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    assert!(
        recognised.len() >= 25,
        "only {} software recognised",
        recognised.len()
    );
}
