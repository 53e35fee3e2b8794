//! nftables inputs: `nft list ruleset` text and `nft -j list ruleset` JSON.
//!
//! - `text` reads the text form as `nft list ruleset` prints it (also with `-a` handles,
//!   counters, comments, sets and maps, as sosreport collects it and users paste it) and nft
//!   scripts of `add rule …` commands;
//! - `json` reads the libnftables JSON form (`libnftables-json(5)`).
//!
//! Both produce the same rule syntax tree (`ast`); `rule` parses rule text into it, and
//! `lower` gives every statement its exact kernel meaning in the mark algebra. `build` adds
//! tables, chains and rules to the ruleset model the same way for both forms, and recognises
//! tables that iptables-nft manages (so a node's `iptables-save` and `nft list ruleset` do not
//! count its rules twice, see `ruleset::drop_iptables_twins`).

pub(crate) mod ast;
pub(crate) mod build;
pub(crate) mod conds;
pub(crate) mod json;
pub(crate) mod lex;
pub(crate) mod lower;
pub(crate) mod rule;
pub(crate) mod tape;
pub(crate) mod text;

#[cfg(test)]
mod conformance_tests;

use crate::ruleset::{ChainType, Family, Hook};

/// The family of an nft family keyword.
pub(crate) fn family(word: &str) -> Option<Family> {
    Some(match word {
        "ip" => Family::Ip,
        "ip6" => Family::Ip6,
        "inet" => Family::Inet,
        "arp" => Family::Arp,
        "bridge" => Family::Bridge,
        "netdev" => Family::Netdev,
        _ => return None,
    })
}

/// The hook of an nft hook keyword.
pub(crate) fn hook(word: &str) -> Option<Hook> {
    Some(match word {
        "prerouting" => Hook::Prerouting,
        "input" => Hook::Input,
        "forward" => Hook::Forward,
        "output" => Hook::Output,
        "postrouting" => Hook::Postrouting,
        "ingress" => Hook::Ingress,
        "egress" => Hook::Egress,
        _ => return None,
    })
}

/// The chain type of an nft type keyword (unknown types behave as `filter`).
pub(crate) fn chain_type(word: &str) -> ChainType {
    match word {
        "nat" => ChainType::Nat,
        "route" => ChainType::Route,
        _ => ChainType::Filter,
    }
}

/// The number of a named chain priority (`src/rule.c`, `std_prios` and `bridge_std_prios`).
fn named_priority(family: Family, name: &str) -> Option<i32> {
    if family == Family::Bridge {
        return Some(match name {
            "dstnat" => -300,
            "filter" => -200,
            "out" => 100,
            "srcnat" => 300,
            _ => return None,
        });
    }
    Some(match name {
        "raw" => -300,
        "mangle" => -150,
        "dstnat" => -100,
        "filter" => 0,
        "security" => 50,
        "srcnat" => 100,
        _ => return None,
    })
}

/// A chain priority as written: a number, a name, or `name + N` / `name - N` (spaced or not).
pub(crate) fn priority(family: Family, text: &str) -> Option<i32> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if let Ok(n) = t.parse::<i32>() {
        return Some(n);
    }
    let split = t.find(['+', '-']).filter(|&i| i > 0);
    let (name, delta) = match split {
        Some(i) => {
            let (name, rest) = t.split_at(i);
            let n: i32 = rest[1..].parse().ok()?;
            (name, if rest.starts_with('-') { -n } else { n })
        }
        None => (t.as_str(), 0),
    };
    named_priority(family, name).map(|p| p + delta)
}

/// Whether an xtables extension touches marks (its operation is unknown when nft shows only
/// its name).
pub(crate) fn xt_touches_marks(name: &str) -> bool {
    matches!(
        name,
        "MARK" | "CONNMARK" | "mark" | "connmark" | "TPROXY" | "HMARK" | "socket" | "NFQUEUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(priority(Family::Ip, "mangle"), Some(-150));
        assert_eq!(priority(Family::Ip, "mangle - 5"), Some(-155));
        assert_eq!(priority(Family::Inet, "filter+10"), Some(10));
        assert_eq!(priority(Family::Ip, "-300"), Some(-300));
        assert_eq!(priority(Family::Bridge, "filter"), Some(-200));
        assert_eq!(priority(Family::Ip, "nonsense"), None);
    }
}
