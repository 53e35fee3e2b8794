//! iptables, ip6tables, arptables and ebtables inputs.
//!
//! Three forms are read, each auto-detected per file:
//! - `iptables-save`/`ip6tables-save` (legacy and nft backends, with or without `-c` counters),
//!   and `iptables -S` output, also pasted with shell prompt lines (`$ sudo iptables -t nat -S`
//!   sets the table) or as `iptables -t mangle -A …` commands: `save`;
//! - the human listings `iptables -L`, `-nvL`, `-L -n -v --line-numbers`, `-vnxL`, as sosreport
//!   collects them: `listing`.
//!
//! Both feed the same rule model; `rule` knows the option syntax and the kernel semantics of
//! every mark extension, `tokens` splits lines into words.

pub(crate) mod conds;
pub(crate) mod listing;
pub(crate) mod listing_conds;
pub mod rule;
pub(crate) mod save;
pub(crate) mod tokens;

use std::collections::HashMap;

use crate::model::MarkOp;
use crate::ruleset::{
    Action, BaseChain, ChainId, Family, Hook, Origin, Rule, RuleLabels, RulesetBuilder, TableId,
    Verdict,
};
use crate::source::{SourceId, Span};

/// The tables of one iptables input as they are being read.
pub(crate) struct TableSet {
    source: SourceId,
    tables: HashMap<(Family, String), TableId>,
    /// Tables whose rules showed an IPv6 address.
    pub(crate) saw_ipv6: HashMap<TableId, bool>,
}

impl TableSet {
    pub(crate) fn new(source: SourceId) -> Self {
        TableSet {
            source,
            tables: HashMap::new(),
            saw_ipv6: HashMap::new(),
        }
    }

    /// The table of this family and name, added on first use.
    pub(crate) fn table(
        &mut self,
        b: &mut RulesetBuilder,
        family: Family,
        name: &str,
        origin: Origin,
    ) -> TableId {
        *self
            .tables
            .entry((family, name.to_string()))
            .or_insert_with(|| b.add_table(family, name, origin, self.source))
    }

    /// A fresh table even if one of the name exists (a second `*filter` block, as in
    /// `iptables-legacy-save; iptables-nft-save` pasted together).
    pub(crate) fn fresh_table(
        &mut self,
        b: &mut RulesetBuilder,
        family: Family,
        name: &str,
        origin: Origin,
    ) -> TableId {
        let id = b.add_table(family, name, origin, self.source);
        self.tables.insert((family, name.to_string()), id);
        id
    }

    /// Sets the family of tables whose rules showed IPv6 addresses, and decides completeness of
    /// tables not closed by `COMMIT`: complete when every builtin chain of the table is declared and
    /// every chain jumped to is declared.
    pub(crate) fn finish(self, b: &mut RulesetBuilder) {
        for (id, v6) in &self.saw_ipv6 {
            if *v6 && b.table(*id).family == Family::Ip {
                b.table_mut(*id).family = Family::Ip6;
            }
        }
        for id in self.tables.values() {
            if !b.table(*id).complete {
                let name = b.table(*id).name.to_string();
                let builtins = builtin_chains(&name).all(|c| b.is_declared(*id, c));
                let complete = builtins && b.all_chains_declared(*id);
                b.table_mut(*id).complete = complete;
            }
        }
    }
}

/// The builtin chains of an iptables table name.
pub(crate) fn builtin_chains(table: &str) -> impl Iterator<Item = &'static str> + '_ {
    Hook::ALL
        .into_iter()
        .map(Hook::as_str)
        .filter(move |c| BaseChain::iptables_builtin(table, c).is_some())
}

/// The verdict of a target name, resolving jumps to user chains in the table. `ct` is what a
/// `CT` target's options say it does (`--notrack`, `--zone`, `--helper`).
pub(crate) fn verdict_of(
    b: &mut RulesetBuilder,
    table: TableId,
    target: Option<&str>,
    goto: bool,
    implied: Option<&str>,
    ct: Option<Action>,
) -> Verdict {
    if let Some(v) = implied {
        return simple_verdict(v).unwrap_or(Verdict::Continue);
    }
    let Some(name) = target else {
        return Verdict::Continue;
    };
    if let Some(v) = simple_verdict(name) {
        return v;
    }
    if rule::is_known_target(name) {
        return target_verdict(name, ct);
    }
    let chain = b.chain(table, name);
    if goto {
        Verdict::Goto(chain)
    } else {
        Verdict::Jump(chain)
    }
}

/// The typed action of a target extension (`libxt_*.c`, `libebt_*.c`, `libarpt_*.c`): whether it
/// ends the base chain (the kernel target returns an absolute verdict) and what it does.
fn target_verdict(name: &str, ct: Option<Action>) -> Verdict {
    let terminal = match name {
        "MASQUERADE" => Action::Masquerade,
        "SNAT" => Action::Snat,
        "DNAT" => Action::Dnat,
        "REDIRECT" => Action::Redirect,
        "NETMAP" => Action::Netmap,
        "TPROXY" => Action::Tproxy,
        "NFQUEUE" | "QUEUE" => Action::Queue,
        "REJECT" => Action::Reject,
        "SYNPROXY" => Action::Synproxy,
        // Their whole effect is their mark operations.
        "MARK" | "CONNMARK" | "mark" => return Verdict::Continue,
        "NOTRACK" => return Verdict::Then(Action::Notrack),
        "CT" => return Verdict::Then(ct.unwrap_or(Action::Other)),
        "LOG" | "NFLOG" | "ULOG" | "log" | "nflog" | "ulog" => return Verdict::Then(Action::Log),
        // ebtables' MAC `snat`/`dnat`/`redirect`, arptables' `arpreply`, CLUSTERIP, MIRROR.
        _ if rule::TERMINAL_TARGETS.contains(&name) => return Verdict::Terminal(Action::Other),
        _ => return Verdict::Then(Action::Other),
    };
    Verdict::Terminal(terminal)
}

fn simple_verdict(name: &str) -> Option<Verdict> {
    Some(match name {
        "ACCEPT" => Verdict::Accept,
        "DROP" => Verdict::Drop,
        "RETURN" => Verdict::Return,
        "CONTINUE" => Verdict::Continue,
        _ => return None,
    })
}

/// Appends one parsed rule.
///
/// The comment, target name and interfaces serve attribution and `trace`. They are copied for
/// rules with mark operations, rules of base chains (whose owner often shows only in a comment
/// or an interface) and rules whose target neither ends nor leaves the chain (`NOTRACK`, `CT`,
/// `LOG`: `trace` reads their names). The rest, a million-rule node's DNAT and jump rules in
/// chains named after their owner, keep none: copying them would cost more than the rest of
/// the parse.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_rule<I: AsRef<str>>(
    b: &mut RulesetBuilder,
    chain: ChainId,
    span: Span,
    ops: Vec<MarkOp>,
    verdict: Verdict,
    comment: Option<&str>,
    target: Option<&str>,
    interfaces: &[I],
    position: Option<usize>,
) {
    let keep = !ops.is_empty()
        || b.is_base(chain)
        || (verdict.continues() && target.is_some())
        // Its name is the only record of what it does.
        || verdict.action() == Some(Action::Other);
    let labels = if !keep {
        RuleLabels::default()
    } else {
        RuleLabels {
            comment: comment.map(Box::from),
            target: target.map(Box::from),
            interfaces: interfaces.iter().map(|i| Box::from(i.as_ref())).collect(),
        }
    };
    b.push_rule(Rule::new(chain, span, verdict, ops, labels), position);
}

/// Guesses the table from a file name such as sosreport's `iptables_-t_mangle_-nvL`.
pub(crate) fn table_from_name(name: &str) -> Option<&'static str> {
    for t in ["mangle", "nat", "raw", "security", "filter"] {
        for pat in [
            format!("-t_{t}"),
            format!("-t {t}"),
            format!("-t{t}"),
            format!("_{t}_"),
            format!("{t}."),
        ] {
            if name.contains(&pat) {
                return Some(t);
            }
        }
    }
    None
}

/// Whether a file name says the input is IPv6.
pub(crate) fn ipv6_from_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.contains("ip6") || base.contains("v6")
}

#[cfg(test)]
pub(crate) mod conformance_tests;
