//! Adding nft tables, chains and rules to the ruleset model, the same way for text and JSON.

use std::collections::{HashMap, HashSet};

use crate::diagnostic::Diagnostic;
use crate::ruleset::{
    BaseChain, ChainId, Family, Origin, Rule, RuleId, RuleLabels, RulesetBuilder, TableId, Verdict,
};
use crate::source::{SourceId, Span};

use super::ast::VerdictAst;
use super::lower::{Lowered, RuleVerdict};

/// The nft tables of one input as they are read.
pub(crate) struct NftBuild<'b> {
    b: &'b mut RulesetBuilder,
    source: SourceId,
    tables: HashMap<(Family, String), TableId>,
    /// The table looked up last: JSON names the table in every rule and chain.
    last_table: Option<(Family, String, TableId)>,
    /// Verdicts of named verdict maps, per table.
    vmaps: HashMap<(TableId, String), Vec<VerdictAst>>,
    /// Rules whose verdict is a named verdict map, resolved at the end.
    pending: Vec<(RuleId, TableId, String)>,
    /// Tables iptables-nft manages (a `# Warning: table ip filter is managed by iptables-nft`
    /// line, or an `xt` expression in a rule).
    managed: HashSet<(Family, String)>,
    /// Tables with `flags dormant`: their base chains are not attached.
    dormant: HashSet<TableId>,
    /// Tables read from a whole-table listing (`table … { … }`); tables built from `add`
    /// commands are complete only when every chain they mention is declared.
    listed: HashSet<TableId>,
}

impl<'b> NftBuild<'b> {
    pub(crate) fn new(b: &'b mut RulesetBuilder, source: SourceId) -> Self {
        NftBuild {
            b,
            source,
            tables: HashMap::new(),
            last_table: None,
            vmaps: HashMap::new(),
            pending: Vec::new(),
            managed: HashSet::new(),
            dormant: HashSet::new(),
            listed: HashSet::new(),
        }
    }

    /// The table of this family and name, added on first use.
    pub(crate) fn table(&mut self, family: Family, name: &str) -> TableId {
        if let Some((f, n, id)) = &self.last_table {
            if *f == family && n == name {
                return *id;
            }
        }
        let b = &mut *self.b;
        let source = self.source;
        let id = *self
            .tables
            .entry((family, name.to_string()))
            .or_insert_with(|| {
                let id = b.add_table(family, name, Origin::Nftables, source);
                b.table_mut(id).nft_listing = true;
                id
            });
        self.last_table = Some((family, name.to_string(), id));
        id
    }

    /// Marks a table as read from a whole `table { … }` block.
    pub(crate) fn listed(&mut self, table: TableId) {
        self.listed.insert(table);
    }

    /// Marks a table as not wholly read (its block was cut off).
    pub(crate) fn unlisted(&mut self, table: TableId) {
        self.listed.remove(&table);
    }

    /// Marks a table as dormant.
    pub(crate) fn dormant(&mut self, table: TableId) {
        self.dormant.insert(table);
    }

    /// Records that iptables-nft manages a table.
    pub(crate) fn managed(&mut self, family: Family, name: &str) {
        self.managed.insert((family, name.to_string()));
    }

    /// Declares a chain, with its hook when it is a base chain.
    pub(crate) fn chain(&mut self, table: TableId, name: &str, base: Option<BaseChain>) -> ChainId {
        let id = self.b.declare_chain(table, name, None);
        if let Some(base) = base {
            self.b.set_base(id, base);
        }
        id
    }

    /// Sets a base chain's policy.
    pub(crate) fn policy(&mut self, table: TableId, chain: &str, policy: &str) {
        let v = match policy {
            "drop" => Verdict::Drop,
            _ => Verdict::Accept,
        };
        self.b.declare_chain(table, chain, Some(v));
    }

    /// Records the verdicts of a named verdict map.
    pub(crate) fn vmap(&mut self, table: TableId, name: &str, verdicts: Vec<VerdictAst>) {
        self.vmaps
            .entry((table, name.to_string()))
            .or_default()
            .extend(verdicts);
    }

    fn verdict(&mut self, table: TableId, v: &VerdictAst) -> Verdict {
        match v {
            VerdictAst::Accept => Verdict::Accept,
            VerdictAst::Drop => Verdict::Drop,
            VerdictAst::Continue => Verdict::Continue,
            VerdictAst::Return => Verdict::Return,
            VerdictAst::Jump(c) => Verdict::Jump(self.b.chain(table, c)),
            VerdictAst::Goto(c) => Verdict::Goto(self.b.chain(table, c)),
            VerdictAst::Terminal(a) => Verdict::Terminal(*a),
        }
    }

    /// Adds a rule at the end of its chain (or first, for `insert rule`), with warnings for
    /// xtables mark extensions whose parameters nft does not show.
    pub(crate) fn rule(
        &mut self,
        table: TableId,
        chain: &str,
        span: Span,
        lowered: Lowered,
        first: bool,
        diags: &mut Vec<Diagnostic>,
    ) {
        let chain_id = self.b.chain(table, chain);
        if !lowered.xt.is_empty() {
            let t = self.b.table(table);
            self.managed.insert((t.family, t.name.to_string()));
        }
        for (target, name) in &lowered.xt {
            if super::xt_touches_marks(name) {
                let kind = if *target { "target" } else { "match" };
                diags.push(
                    Diagnostic::warning(
                        span,
                        format!(
                            "iptables-nft `xt {kind} {name}`: nft does not show its parameters, so \
                             markspace cannot tell which mark bits it uses"
                        ),
                    )
                    .with_hint(
                        "audit this node's `iptables-save` (or the `nft list ruleset` text, where \
                         nft prints most extensions translated) for the exact operation",
                    ),
                );
            }
        }
        let (verdict, target, named) = match &lowered.verdict {
            None => match &lowered.effect {
                Some(a) => (Verdict::Then(*a), None, None),
                None => (Verdict::Continue, None, None),
            },
            Some(RuleVerdict::One(v)) => {
                let target = match v {
                    VerdictAst::Jump(c) | VerdictAst::Goto(c) => c.clone(),
                    VerdictAst::Terminal(a) => a.name().to_string(),
                    other => format!("{other:?}").to_lowercase(),
                };
                (self.verdict(table, v), Some(target), None)
            }
            Some(RuleVerdict::Map(vs)) => {
                let vs: Vec<Verdict> = vs.iter().map(|v| self.verdict(table, v)).collect();
                (Verdict::Map(vs.into()), Some("vmap".to_string()), None)
            }
            Some(RuleVerdict::NamedMap(n)) => {
                (Verdict::Continue, Some("vmap".to_string()), Some(n.clone()))
            }
        };
        let id = self.b.push_rule(
            Rule::new(
                chain_id,
                span,
                verdict,
                lowered.ops,
                RuleLabels {
                    comment: lowered.comment.map(String::into_boxed_str),
                    target: target.map(String::into_boxed_str),
                    interfaces: lowered
                        .interfaces
                        .into_iter()
                        .map(String::into_boxed_str)
                        .collect(),
                },
            ),
            first.then_some(1),
        );
        if let Some(n) = named {
            self.pending.push((id, table, n));
        }
    }

    /// Resolves named verdict maps, sets origins and completeness.
    pub(crate) fn finish(mut self) {
        for (rule, table, name) in std::mem::take(&mut self.pending) {
            let vs = self.vmaps.get(&(table, name)).cloned().unwrap_or_default();
            let vs: Vec<Verdict> = vs.iter().map(|v| self.verdict(table, v)).collect();
            self.b.set_verdict(rule, Verdict::Map(vs.into()));
        }
        for ((family, name), id) in &self.tables {
            if self.managed.contains(&(*family, name.clone())) {
                self.b.table_mut(*id).origin = Origin::IptablesNft;
            }
            let complete = self.listed.contains(id) || self.b.all_chains_declared(*id);
            self.b.table_mut(*id).complete = complete;
        }
        for id in &self.dormant {
            let chains = self.b.table(*id).chains.clone();
            for c in chains {
                self.b.clear_base(c);
            }
        }
    }
}
