//! The ruleset model: tables, chains, rules in order, jumps, and which hooks reach each rule.
//!
//! Parsers fill a [`RulesetBuilder`]; [`RulesetBuilder::finish`] resolves jumps and computes, for
//! every chain, the set of hooks from whose base chains it is reachable. The analysis never sees
//! any input syntax, only this model.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use hashbrown::HashTable;
use rustc_hash::FxHasher;
use serde::Serialize;

use crate::model::MarkOp;
use crate::source::{SourceId, Span};

/// Address family of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// arptables / nft `arp`.
    Arp,
    /// ebtables / nft `bridge`.
    Bridge,
    /// nft `inet` (IPv4 and IPv6).
    Inet,
    /// iptables / nft `ip`.
    Ip,
    /// ip6tables / nft `ip6`.
    Ip6,
    /// nft `netdev`.
    Netdev,
}

impl Family {
    /// The nft family keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Netdev => "netdev",
        }
    }
}

/// Which program and kernel backend a table came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `iptables-save`/`iptables -S`/`-L` of the legacy (x_tables) backend.
    IptablesLegacy,
    /// The same tools on the nf_tables backend (`iptables-nft`).
    IptablesNft,
    /// iptables output whose backend the input does not say.
    Iptables,
    /// A native nftables table.
    Nftables,
}

/// A netfilter hook, in the order a packet meets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// netdev ingress.
    Ingress,
    /// PREROUTING.
    Prerouting,
    /// INPUT.
    Input,
    /// FORWARD.
    Forward,
    /// OUTPUT.
    Output,
    /// POSTROUTING.
    Postrouting,
    /// netdev egress.
    Egress,
}

impl Hook {
    /// All hooks in kernel order.
    pub const ALL: [Hook; 7] = [
        Hook::Ingress,
        Hook::Prerouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::Postrouting,
        Hook::Egress,
    ];

    /// The iptables builtin chain name of this hook.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Ingress => "INGRESS",
            Hook::Prerouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::Postrouting => "POSTROUTING",
            Hook::Egress => "EGRESS",
        }
    }

    /// The hook of an iptables/ebtables builtin chain name.
    pub fn from_builtin(name: &str) -> Option<Hook> {
        Some(match name {
            "PREROUTING" | "BROUTING" => Hook::Prerouting,
            "INPUT" => Hook::Input,
            "FORWARD" => Hook::Forward,
            "OUTPUT" => Hook::Output,
            "POSTROUTING" => Hook::Postrouting,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of hooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HookSet(u8);

impl HookSet {
    /// The empty set.
    pub const EMPTY: HookSet = HookSet(0);

    /// Adds a hook.
    pub fn insert(&mut self, hook: Hook) {
        self.0 |= hook.bit();
    }

    /// Whether the set has the hook.
    pub fn contains(self, hook: Hook) -> bool {
        self.0 & hook.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether two sets share a hook.
    pub fn intersects(self, other: HookSet) -> bool {
        self.0 & other.0 != 0
    }

    /// The union of two sets.
    pub fn union(self, other: HookSet) -> HookSet {
        HookSet(self.0 | other.0)
    }

    /// The hooks in kernel order.
    pub fn iter(self) -> impl Iterator<Item = Hook> {
        Hook::ALL.into_iter().filter(move |h| self.contains(*h))
    }
}

impl Serialize for HookSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The nft chain type of a base chain (`filter`, `nat`, `route`); iptables tables map onto them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    /// `type filter` (iptables filter, raw, mangle except OUTPUT, security).
    Filter,
    /// `type nat`.
    Nat,
    /// `type route`: a mark change re-routes the packet (iptables mangle OUTPUT).
    Route,
}

/// Where a base chain is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct BaseChain {
    /// The hook.
    pub hook: Hook,
    /// The priority: lower runs first (raw -300, mangle -150, dstnat -100, filter 0, security 50,
    /// srcnat 100).
    pub priority: i32,
    /// The chain type.
    pub kind: ChainType,
}

impl BaseChain {
    /// The base chain of an iptables builtin chain in a table, or `None` if the chain is not a
    /// builtin of that table (`net/ipv4/netfilter/iptable_*.c`).
    pub fn iptables_builtin(table: &str, chain: &str) -> Option<BaseChain> {
        let hook = Hook::from_builtin(chain)?;
        let (priority, kind) = match (table, hook) {
            ("raw", Hook::Prerouting | Hook::Output) => (-300, ChainType::Filter),
            ("mangle", Hook::Output) => (-150, ChainType::Route),
            ("mangle", _) => (-150, ChainType::Filter),
            ("nat", Hook::Prerouting | Hook::Output) => (-100, ChainType::Nat),
            ("nat", Hook::Input | Hook::Postrouting) => (100, ChainType::Nat),
            ("filter", Hook::Input | Hook::Forward | Hook::Output) => (0, ChainType::Filter),
            ("security", Hook::Input | Hook::Forward | Hook::Output) => (50, ChainType::Filter),
            // ebtables tables
            ("broute", Hook::Prerouting) => (-200, ChainType::Filter),
            _ => return None,
        };
        Some(BaseChain {
            hook,
            priority,
            kind,
        })
    }
}

/// Index of a table in a [`Ruleset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(pub u32);
/// Index of a chain in a [`Ruleset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u32);
/// A chain's rules, in order.
pub type ChainRules = smallvec::SmallVec<[RuleId; 4]>;

/// Index of a rule in a [`Ruleset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// What a rule does with the packet after its mark operations: where the traversal goes next.
///
/// Control flow (accept, drop, return, jump, goto, verdict maps) is here; what a target or
/// statement does besides (NAT, queueing, logging, conntrack settings) is its typed [`Action`],
/// normalised by the parsers from every spelling (`MASQUERADE`, `masquerade`, `{"masquerade":
/// null}`), so that nothing downstream of the parsers compares target names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the next rule (no target, or a target whose whole effect is its mark
    /// operations: `MARK`, `CONNMARK`, nft `meta mark set`).
    Continue,
    /// Run a non-terminating action (`LOG`, `NOTRACK`, `CT --zone`…), then go on with the next
    /// rule.
    Then(Action),
    /// Accept: leave this base chain.
    Accept,
    /// Drop the packet.
    Drop,
    /// Jump to a chain and come back.
    Jump(ChainId),
    /// Go to a chain and do not come back.
    Goto(ChainId),
    /// Return to the calling chain.
    Return,
    /// Leave this base chain with an absolute verdict given by a terminating action
    /// (MASQUERADE, DNAT, TPROXY, NFQUEUE, REJECT…).
    Terminal(Action),
    /// One of several verdicts chosen by a map lookup (nft `vmap`); when no element matches,
    /// the next rule runs. Jumps and gotos in it are reachability edges. Boxed twice so that a
    /// verdict stays two words.
    Map(Box<Vec<Verdict>>),
}

/// What a target or statement does to the packet besides its mark operations and control flow.
///
/// One variant per behaviour the analysis and `trace` distinguish; everything else is
/// [`Action::Other`], whose name as written is the rule's target label (for display only: no
/// check reads it). One byte, so that a [`Verdict`], and so every [`Rule`], stays small.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Source NAT to the outgoing interface's address (`MASQUERADE`, nft `masquerade`).
    Masquerade,
    /// Source NAT to given addresses (`SNAT`, nft `snat`).
    Snat,
    /// Destination NAT (`DNAT`, nft `dnat`).
    Dnat,
    /// Destination NAT to the local machine (`REDIRECT`, nft `redirect`).
    Redirect,
    /// Stateless 1:1 prefix NAT (`NETMAP`): destination NAT in PREROUTING/OUTPUT, source NAT in
    /// POSTROUTING/INPUT.
    Netmap,
    /// Transparent proxying to a local socket (`TPROXY`).
    Tproxy,
    /// No connection tracking for the packet (`NOTRACK`, `CT --notrack`, nft `notrack`).
    Notrack,
    /// Sets the conntrack zone (`CT --zone`, nft `ct zone set`).
    CtZone,
    /// Attaches a conntrack helper (`CT --helper`, nft `ct helper set`).
    CtHelper,
    /// Hands the packet to userspace (`NFQUEUE`, `QUEUE`, nft `queue`).
    Queue,
    /// Drops the packet with an error reply (`REJECT`, nft `reject`).
    Reject,
    /// Logs the packet (`LOG`, `NFLOG`, `ULOG`, nft `log`).
    Log,
    /// Answers a TCP handshake itself (`SYNPROXY`, nft `synproxy`).
    Synproxy,
    /// Any other target or statement; [`Rule::target`] has its name as written.
    Other,
}

impl Action {
    /// The action's name for reports: the iptables target name (`other` for [`Action::Other`],
    /// whose name is the rule's [`Rule::target`]).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Masquerade => "MASQUERADE",
            Action::Snat => "SNAT",
            Action::Dnat => "DNAT",
            Action::Redirect => "REDIRECT",
            Action::Netmap => "NETMAP",
            Action::Tproxy => "TPROXY",
            Action::Notrack => "NOTRACK",
            Action::CtZone => "CT zone",
            Action::CtHelper => "CT helper",
            Action::Queue => "NFQUEUE",
            Action::Reject => "REJECT",
            Action::Log => "LOG",
            Action::Synproxy => "SYNPROXY",
            Action::Other => "other",
        }
    }

    /// Whether the action rewrites the source address of the connection (conntrack's `SNAT`
    /// status). NETMAP depends on its hook and is not counted here.
    pub fn is_source_nat(&self) -> bool {
        matches!(self, Action::Masquerade | Action::Snat)
    }

    /// Whether the action rewrites the destination of the connection (conntrack's `DNAT`
    /// status). NETMAP depends on its hook and is not counted here.
    pub fn is_destination_nat(&self) -> bool {
        matches!(self, Action::Dnat | Action::Redirect)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Verdict {
    /// Whether the verdict ends the traversal of the current base chain.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Verdict::Accept | Verdict::Drop | Verdict::Terminal(_))
    }

    /// Whether the next rule of the chain runs after this one (no verdict, or a
    /// non-terminating action).
    pub fn continues(&self) -> bool {
        matches!(self, Verdict::Continue | Verdict::Then(_))
    }

    /// The action of the verdict, terminating or not.
    pub fn action(&self) -> Option<Action> {
        match self {
            Verdict::Then(a) | Verdict::Terminal(a) => Some(*a),
            _ => None,
        }
    }

    /// The chains a verdict jumps or goes to, including every chain of a verdict map.
    pub fn targets(&self) -> Vec<ChainId> {
        match self {
            Verdict::Jump(c) | Verdict::Goto(c) => vec![*c],
            Verdict::Map(options) => options.iter().flat_map(Verdict::targets).collect(),
            _ => Vec::new(),
        }
    }
}

/// One rule.
///
/// Most rules of a large node touch no mark (kube-proxy's DNAT and jump rules), so a rule is
/// small (48 bytes) and its mark operations and attribution labels sit behind one pointer that
/// is `None` for those rules: a million-rule model costs little more than its input text.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The chain it belongs to.
    pub chain: ChainId,
    /// The rule's line in its input.
    pub span: Span,
    /// What happens to the packet afterwards.
    pub verdict: Verdict,
    /// Mark operations and labels; `None` when the rule has no mark operation.
    marks: Option<Box<RuleMarks>>,
}

/// The mark operations of a rule and what attribution reads from it.
#[derive(Clone, Debug)]
struct RuleMarks {
    ops: Vec<MarkOp>,
    labels: RuleLabels,
}

/// What attribution reads from a rule besides its chain and verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleLabels {
    /// The text of its `comment` match(es), unescaped.
    pub comment: Option<Box<str>>,
    /// The target or verdict name as written (`MARK`, `ACCEPT`, a chain name).
    pub target: Option<Box<str>>,
    /// Interfaces the rule matches (`-i`/`-o`, nft `iifname`/`oifname`).
    pub interfaces: Vec<Box<str>>,
}

impl Rule {
    /// A rule. The labels are kept behind the same pointer as the mark operations, allocated only
    /// when there is either (parsers may pass `RuleLabels::default()` for rules whose labels
    /// attribution does not need, and save the copies).
    pub fn new(
        chain: ChainId,
        span: Span,
        verdict: Verdict,
        ops: Vec<MarkOp>,
        labels: RuleLabels,
    ) -> Rule {
        Rule {
            chain,
            span,
            verdict,
            marks: (!ops.is_empty() || labels != RuleLabels::default())
                .then(|| Box::new(RuleMarks { ops, labels })),
        }
    }

    /// Its mark operations in kernel order (matches, then the target).
    pub fn ops(&self) -> &[MarkOp] {
        self.marks.as_ref().map_or(&[], |m| &m.ops)
    }

    /// Replaces its mark operations and returns the old ones (a model-level rewrite: the
    /// analysis applies a proposed fix to a copy of the node this way and audits it again).
    pub fn replace_ops(&mut self, ops: Vec<MarkOp>) -> Vec<MarkOp> {
        match &mut self.marks {
            Some(m) => std::mem::replace(&mut m.ops, ops),
            None => {
                self.marks = Some(Box::new(RuleMarks {
                    ops,
                    labels: RuleLabels::default(),
                }));
                Vec::new()
            }
        }
    }

    /// Its comment, target name and interfaces, when the parser kept them (always for rules
    /// with mark operations).
    pub fn labels(&self) -> Option<&RuleLabels> {
        self.marks.as_ref().map(|m| &m.labels)
    }

    /// The name of what the rule does, for reports: its action's, or for [`Action::Other`] the
    /// target as written.
    pub fn action_name(&self) -> Option<&str> {
        match self.verdict.action()? {
            Action::Other => Some(self.target().unwrap_or("other")),
            a => Some(a.name()),
        }
    }

    /// The target or verdict name as written, when the parser kept it.
    pub fn target(&self) -> Option<&str> {
        self.labels().and_then(|l| l.target.as_deref())
    }

    /// The text of its `comment` match(es), when the parser kept it.
    pub fn comment(&self) -> Option<&str> {
        self.labels().and_then(|l| l.comment.as_deref())
    }
}

/// One chain.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The table it belongs to.
    pub table: TableId,
    /// Its name.
    pub name: Box<str>,
    /// Set for base chains.
    pub base: Option<BaseChain>,
    /// The policy of a base chain.
    pub policy: Option<Verdict>,
    /// Its rules in order (inline up to four: most chains of a large node are short).
    pub rules: ChainRules,
    /// False when the chain is only known from a jump to it (a truncated input).
    pub declared: bool,
    /// The hooks from whose base chains this chain is reachable (set by `finish`).
    pub hooks: HookSet,
}

/// One table.
#[derive(Clone, Debug)]
pub struct Table {
    /// The family.
    pub family: Family,
    /// The name (`filter`, `mangle`, `kube-proxy`…).
    pub name: Box<str>,
    /// The tool and backend it came from.
    pub origin: Origin,
    /// The input it came from.
    pub source: SourceId,
    /// Its chains, in order of first mention.
    pub chains: Vec<ChainId>,
    /// True when the input holds the whole table (an `iptables-save` table closed by `COMMIT`,
    /// or a full listing). Reachability is only trusted for complete tables.
    pub complete: bool,
    /// Set when another input already holds the same table with the same rules (the same
    /// ruleset as `iptables-save` and as `iptables -L`, as in sosreports and sysdumps): this copy
    /// is left out of the analysis.
    pub duplicate_of: Option<TableId>,
    /// True when the table was read from `nft` output (text or JSON), also when iptables-nft
    /// manages it (`origin` then says [`Origin::IptablesNft`]).
    pub nft_listing: bool,
}

/// The name of the table of rules pasted without one (no `*table`, `-t` or `table … {`): the
/// table, and with it the hook, is unknown, and such rules may run anywhere.
pub const UNKNOWN_TABLE: &str = "(unknown)";

/// The name of the chain of rules pasted without one (a bare rule spec, an `iptables -L` line
/// without its `Chain` header, an nft statement on its own).
pub const UNKNOWN_CHAIN: &str = "(unknown)";

/// The whole model of all netfilter inputs.
#[derive(Clone, Debug, Default)]
pub struct Ruleset {
    /// All tables.
    pub tables: Vec<Table>,
    /// All chains.
    pub chains: Vec<Chain>,
    /// All rules.
    pub rules: Vec<Rule>,
}

impl Ruleset {
    /// A table by id.
    pub fn table(&self, id: TableId) -> &Table {
        &self.tables[id.0 as usize]
    }

    /// A chain by id.
    pub fn chain(&self, id: ChainId) -> &Chain {
        &self.chains[id.0 as usize]
    }

    /// A rule by id.
    pub fn rule(&self, id: RuleId) -> &Rule {
        &self.rules[id.0 as usize]
    }

    /// The table of a rule.
    pub fn rule_table(&self, rule: &Rule) -> &Table {
        self.table(self.chain(rule.chain).table)
    }

    /// Whether a rule can run at all: its chain is reachable from a base chain, or its table is
    /// incomplete (a truncated paste, where the jumps into it may be missing).
    pub fn rule_may_run(&self, rule: &Rule) -> bool {
        let chain = self.chain(rule.chain);
        !chain.hooks.is_empty() || !self.table(chain.table).complete
    }

    /// Whether a rule belongs to a table that duplicates one read from another input.
    pub fn is_duplicate(&self, rule: &Rule) -> bool {
        self.table(self.chain(rule.chain).table)
            .duplicate_of
            .is_some()
    }
}

/// Builds a [`Ruleset`] while parsers read their inputs.
#[derive(Debug, Default)]
pub struct RulesetBuilder {
    set: Ruleset,
    /// Chain ids by (table, name), each with a 32-bit hash of its key. The table holds no
    /// names: it compares against the chains' own, so a lookup takes a `&str` and allocates
    /// nothing and no name is stored twice (parsers look up the chain of every rule and of
    /// every jump target; a large node has tens of thousands of chains). The stored hash lets
    /// the table grow without reading every chain again, and rules out most mismatches without
    /// reading one: on a large node those reads are cache misses.
    chain_index: HashTable<(u32, ChainId)>,
    /// The chains last looked up, most recent first, with their hashes. A few chains are the
    /// target of most jumps (kube-proxy's `KUBE-MARK-MASQ`, from every service and endpoint
    /// chain), and on a large node every probe of the index is a cache miss.
    recent: [Option<(u32, ChainId)>; 4],
}

/// The 32-bit hash of a chain's (table, name) in the index. Fx, because chain names are short
/// and the inputs are the operator's own files.
fn chain_hash(table: TableId, name: &str) -> u32 {
    let mut h = FxHasher::default();
    table.hash(&mut h);
    name.hash(&mut h);
    (h.finish() >> 32) as u32
}

/// The table's 64-bit hash of a stored 32-bit one: hashbrown takes buckets from the low bits
/// and tags from the top seven, so the bits are spread over the whole word.
fn spread(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl RulesetBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a table.
    pub fn add_table(
        &mut self,
        family: Family,
        name: &str,
        origin: Origin,
        source: SourceId,
    ) -> TableId {
        let id = TableId(self.set.tables.len() as u32);
        self.set.tables.push(Table {
            family,
            name: name.into(),
            origin,
            source,
            chains: Vec::new(),
            complete: false,
            duplicate_of: None,
            nft_listing: false,
        });
        id
    }

    /// Marks every table read from `source` as partial (a paste or fragment): the callers of
    /// its chains may lie outside the excerpt, so none of its rules is unreachable.
    pub fn mark_partial(&mut self, source: SourceId) {
        for t in &mut self.set.tables {
            if t.source == source {
                t.complete = false;
            }
        }
    }

    /// Mutable access to a table (to set its family, origin or completeness).
    pub fn table_mut(&mut self, id: TableId) -> &mut Table {
        &mut self.set.tables[id.0 as usize]
    }

    /// A table by id.
    pub fn table(&self, id: TableId) -> &Table {
        &self.set.tables[id.0 as usize]
    }

    /// The chain of this name in the table, created (undeclared) if it is new.
    pub fn chain(&mut self, table: TableId, name: &str) -> ChainId {
        let hash = chain_hash(table, name);
        let chains = &self.set.chains;
        let recent = self.recent.iter().position(|r| {
            r.is_some_and(|(h, c)| {
                h == hash && {
                    let c = &chains[c.0 as usize];
                    c.table == table && *c.name == *name
                }
            })
        });
        if let Some(k) = recent {
            let hit = self.recent[k];
            self.recent.copy_within(0..k, 1);
            self.recent[0] = hit;
            if let Some((_, id)) = hit {
                return id;
            }
        }
        let found = self.find_chain(hash, table, name);
        self.recent.copy_within(0..3, 1);
        if let Some(id) = found {
            self.recent[0] = Some((hash, id));
            return id;
        }
        let id = ChainId(self.set.chains.len() as u32);
        let t = &self.set.tables[table.0 as usize];
        let base =
            BaseChain::iptables_builtin(&t.name, name).filter(|_| t.origin != Origin::Nftables);
        self.set.chains.push(Chain {
            table,
            name: name.into(),
            base,
            policy: None,
            rules: ChainRules::new(),
            declared: false,
            hooks: HookSet::EMPTY,
        });
        self.set.tables[table.0 as usize].chains.push(id);
        self.chain_index
            .insert_unique(spread(hash), (hash, id), |&(h, _)| spread(h));
        self.recent[0] = Some((hash, id));
        id
    }

    fn find_chain(&self, hash: u32, table: TableId, name: &str) -> Option<ChainId> {
        let chains = &self.set.chains;
        self.chain_index
            .find(spread(hash), |&(h, c)| {
                h == hash && {
                    let c = &chains[c.0 as usize];
                    c.table == table && *c.name == *name
                }
            })
            .map(|&(_, c)| c)
    }

    /// Declares a chain (a `:CHAIN POLICY` line, `-N`, `-P` or a listing header).
    pub fn declare_chain(
        &mut self,
        table: TableId,
        name: &str,
        policy: Option<Verdict>,
    ) -> ChainId {
        let id = self.chain(table, name);
        let chain = &mut self.set.chains[id.0 as usize];
        chain.declared = true;
        if policy.is_some() {
            chain.policy = policy;
        }
        id
    }

    /// Whether the chain is a base chain (so far: `set_base` and `clear_base` may change it).
    pub fn is_base(&self, chain: ChainId) -> bool {
        self.set.chains[chain.0 as usize].base.is_some()
    }

    /// Whether the table has a declared chain of this name.
    pub fn is_declared(&self, table: TableId, name: &str) -> bool {
        self.find_chain(chain_hash(table, name), table, name)
            .is_some_and(|id| self.set.chains[id.0 as usize].declared)
    }

    /// Whether every chain of the table was declared (none is known only from a jump).
    pub fn all_chains_declared(&self, table: TableId) -> bool {
        self.set.tables[table.0 as usize]
            .chains
            .iter()
            .all(|c| self.set.chains[c.0 as usize].declared)
    }

    /// Marks a chain as a base chain (nft).
    pub fn set_base(&mut self, chain: ChainId, base: BaseChain) {
        self.set.chains[chain.0 as usize].base = Some(base);
    }

    /// Appends a rule to its chain, or inserts it at a 1-based position (`-I CHAIN N`).
    pub fn push_rule(&mut self, rule: Rule, position: Option<usize>) -> RuleId {
        let id = RuleId(self.set.rules.len() as u32);
        let chain = &mut self.set.chains[rule.chain.0 as usize];
        match position {
            Some(pos) => {
                let at = pos.saturating_sub(1).min(chain.rules.len());
                chain.rules.insert(at, id);
            }
            None => chain.rules.push(id),
        }
        self.set.rules.push(rule);
        id
    }

    /// Detaches a base chain from its hook (a chain of a dormant nft table).
    pub fn clear_base(&mut self, chain: ChainId) {
        self.set.chains[chain.0 as usize].base = None;
    }

    /// Replaces the verdict of a rule (an nft verdict map resolved once its map is known).
    pub fn set_verdict(&mut self, rule: RuleId, verdict: Verdict) {
        self.set.rules[rule.0 as usize].verdict = verdict;
    }

    /// Number of rules so far.
    pub fn rule_count(&self) -> usize {
        self.set.rules.len()
    }

    /// Resolves reachability and returns the model.
    pub fn finish(mut self) -> Ruleset {
        compute_hooks(&mut self.set);
        // Twins first: dropping rules renumbers them.
        drop_iptables_twins(&mut self.set);
        mark_duplicates(&mut self.set);
        self.set
    }
}

/// Marks tables whose family, name and rules equal an earlier table from another input.
///
/// The fingerprint covers, per chain (sorted by name, since tools order chains differently), the
/// chain name and each rule's mark operations, target, comment and jump target, so the same
/// ruleset read as `iptables-save` and as `iptables -L` matches, and any real difference keeps
/// both tables.
fn mark_duplicates(set: &mut Ruleset) {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    /// Family, name, rule fingerprint and rule count of a table.
    type Key = (Family, Box<str>, u64, usize);
    let mut seen: HashMap<Key, (TableId, SourceId)> = HashMap::new();
    // Only a table whose family and name another input also holds can be a duplicate, and
    // fingerprinting hashes every rule: a single iptables-save of a million rules skips it.
    let mut inputs: HashMap<(Family, &str), (SourceId, bool)> = HashMap::new();
    for table in &set.tables {
        let (first, several) = inputs
            .entry((table.family, &*table.name))
            .or_insert((table.source, false));
        *several |= *first != table.source;
    }
    let candidate: Vec<bool> = set
        .tables
        .iter()
        .map(|t| inputs[&(t.family, &*t.name)].1)
        .collect();
    drop(inputs);
    let candidates = candidate.iter().enumerate().filter(|(_, c)| **c);
    for t in candidates.map(|(t, _)| t) {
        let table = &set.tables[t];
        let mut chains: Vec<(&str, u64)> = table
            .chains
            .iter()
            .map(|c| {
                let chain = &set.chains[c.0 as usize];
                let mut h = DefaultHasher::new();
                for r in &chain.rules {
                    let rule = &set.rules[r.0 as usize];
                    rule.ops().hash(&mut h);
                    rule.target().hash(&mut h);
                    rule.comment().hash(&mut h);
                    if let Verdict::Jump(to) | Verdict::Goto(to) = rule.verdict {
                        set.chains[to.0 as usize].name.hash(&mut h);
                    }
                }
                (&*chain.name, h.finish())
            })
            .collect();
        chains.sort_unstable();
        let mut h = DefaultHasher::new();
        chains.hash(&mut h);
        let rules: usize = table
            .chains
            .iter()
            .map(|c| set.chains[c.0 as usize].rules.len())
            .sum();
        let key = (table.family, table.name.clone(), h.finish(), rules);
        match seen.get(&key) {
            Some((first, source)) if *source != table.source && rules > 0 => {
                set.tables[t].duplicate_of = Some(*first);
            }
            Some(_) => {}
            None => {
                seen.insert(key, (TableId(t as u32), table.source));
            }
        }
    }
}

/// The iptables table names (`iptables/nft.c`, `xtables_ipv4`…), which iptables-nft creates as
/// nf_tables tables of the same name.
const IPTABLES_TABLES: [&str; 6] = ["filter", "nat", "mangle", "raw", "security", "broute"];

/// Removes the rules that one node's inputs show twice: an `nft list ruleset` of a node whose
/// iptables-nft tables are also given as `iptables-save`. An nft-listed table is a twin of an
/// iptables-listed table of the same family and iptables name from another input; the rules of
/// its chains that the iptables table also has are dropped, so each rule is counted once (the
/// iptables form is kept: nft prints xtables extensions without their parameters in JSON and
/// translates some of them lossily in text). Chains only nft shows (native chains added to the
/// shared table, like Tailscale's in nftables mode) stay. Runs after reachability, so they keep
/// the hooks the dropped copies reached them from.
fn drop_iptables_twins(set: &mut Ruleset) {
    let drop_chain = twin_chains(set);
    if !drop_chain.contains(&true) {
        return;
    }
    let mut new_id = vec![None; set.rules.len()];
    let mut kept = Vec::with_capacity(set.rules.len());
    for (i, rule) in std::mem::take(&mut set.rules).into_iter().enumerate() {
        if !drop_chain[rule.chain.0 as usize] {
            new_id[i] = Some(RuleId(kept.len() as u32));
            kept.push(rule);
        }
    }
    set.rules = kept;
    for chain in &mut set.chains {
        chain.rules = chain
            .rules
            .iter()
            .filter_map(|r| new_id[r.0 as usize])
            .collect();
    }
}

/// The nft-listed tables that may be an iptables table's twin: iptables table names in the
/// families iptables-nft writes.
fn iptables_nft_listing(t: &Table) -> bool {
    t.nft_listing
        && matches!(
            t.family,
            Family::Ip | Family::Ip6 | Family::Arp | Family::Bridge
        )
        && IPTABLES_TABLES.contains(&&*t.name)
}

/// Whether `t` is an iptables listing of the same table as the nft listing `nft`, from another
/// input.
fn is_twin(nft: &Table, t: &Table) -> bool {
    !t.nft_listing
        && t.source != nft.source
        && t.family == nft.family
        && t.name == nft.name
        && t.origin != Origin::IptablesLegacy
}

/// By chain id: the chains of nft-listed iptables-nft tables that a twin iptables listing
/// also has ([`drop_iptables_twins`] drops their rules). The twins' chain names are hashed:
/// comparing each nft chain with every twin chain was quadratic in chains (tens of thousands
/// on a kube-proxy node; 96 ms of the model stage at 30k iptables-save lines given with their
/// `nft list ruleset`, now 7 ms).
fn twin_chains(set: &Ruleset) -> Vec<bool> {
    let mut drop_chain = vec![false; set.chains.len()];
    for nft in set.tables.iter().filter(|t| iptables_nft_listing(t)) {
        let names: HashSet<&str> = set
            .tables
            .iter()
            .filter(|t| is_twin(nft, t))
            .flat_map(|t| t.chains.iter().map(|tc| &*set.chains[tc.0 as usize].name))
            .collect();
        for c in &nft.chains {
            if names.contains(&*set.chains[c.0 as usize].name) {
                drop_chain[c.0 as usize] = true;
            }
        }
    }
    drop_chain
}

/// [`twin_chains`] as it was first written, every nft chain against every twin chain: the
/// oracle.
#[cfg(test)]
fn naive_twin_chains(set: &Ruleset) -> Vec<bool> {
    let mut drop_chain = vec![false; set.chains.len()];
    for nft in set.tables.iter().filter(|t| iptables_nft_listing(t)) {
        let twins: Vec<&Table> = set.tables.iter().filter(|t| is_twin(nft, t)).collect();
        for c in &nft.chains {
            let name = &set.chains[c.0 as usize].name;
            drop_chain[c.0 as usize] = twins.iter().any(|t| {
                t.chains
                    .iter()
                    .any(|tc| set.chains[tc.0 as usize].name == *name)
            });
        }
    }
    drop_chain
}

/// Marks every chain with the hooks of the base chains that reach it: sets of hooks flow along
/// jumps and gotos (also those inside verdict maps), breadth first from all base chains at once,
/// until nothing changes. A chain reached from several hooks (kube-proxy's `KUBE-SERVICES`, from
/// PREROUTING and OUTPUT) usually gathers them all before its rules are walked, so a large node
/// is walked about once rather than once per hook. Iterative, so deep or cyclic jump graphs
/// cannot overflow the stack; a chain is queued again only when it gains a hook, at most once
/// per hook.
fn compute_hooks(set: &mut Ruleset) {
    let mut queue: VecDeque<ChainId> = VecDeque::new();
    for (i, chain) in set.chains.iter_mut().enumerate() {
        if let Some(base) = chain.base {
            chain.hooks.insert(base.hook);
            queue.push_back(ChainId(i as u32));
        }
    }
    while let Some(id) = queue.pop_front() {
        let hooks = set.chains[id.0 as usize].hooks;
        for k in 0..set.chains[id.0 as usize].rules.len() {
            let rule = set.chains[id.0 as usize].rules[k];
            let verdict = &set.rules[rule.0 as usize].verdict;
            let single = std::slice::from_ref(verdict);
            let verdicts = match verdict {
                Verdict::Map(vs) => &vs[..],
                _ => single,
            };
            for v in verdicts {
                if let Verdict::Jump(to) | Verdict::Goto(to) = *v {
                    let target = &mut set.chains[to.0 as usize].hooks;
                    let joined = target.union(hooks);
                    if joined != *target {
                        *target = joined;
                        queue.push_back(to);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(chain: ChainId, verdict: Verdict) -> Rule {
        let span = Span {
            source: SourceId(0),
            line: 1,
            start: 0,
            len: 0,
        };
        Rule::new(chain, span, verdict, Vec::new(), RuleLabels::default())
    }

    /// The twins of a kube-proxy node given as `iptables-save` and as the `nft list ruleset`
    /// of the same tables (written here the way nft prints them, chains only), plus a native
    /// chain nft alone shows.
    #[test]
    fn twin_chains_match_the_naive_scan() {
        let save = crate::generate::iptables_save(&crate::generate::Node {
            kube_proxy: Some(crate::generate::KubeProxy::with_lines(600, 2)),
            ..Default::default()
        });
        let mut nft = String::new();
        let mut table = "";
        for line in save.lines() {
            if let Some(t) = line.strip_prefix('*') {
                if !table.is_empty() {
                    nft.push_str("}\n");
                }
                table = t;
                nft.push_str(&format!(
                    "# Warning: table ip {t} is managed by iptables-nft, do not touch!\ntable ip {t} {{\n"
                ));
            } else if let Some(chain) = line.strip_prefix(':') {
                let name = chain.split(' ').next().unwrap_or(chain);
                nft.push_str(&format!("\tchain {name} {{\n\t}}\n"));
            }
        }
        nft.push_str("\tchain ts-native-only {\n\t}\n}\n");
        let mut l = crate::snapshot::NodeLoader::new();
        l.add_text("iptables-save.txt", save.into_bytes(), true)
            .expect("iptables-save");
        l.add_text("nft-ruleset.txt", nft.into_bytes(), true)
            .expect("nft text");
        let node = l.finish();
        let set = &node.ruleset;
        let fast = twin_chains(set);
        assert_eq!(fast, naive_twin_chains(set));
        let twins = fast.iter().filter(|t| **t).count();
        assert!(twins > 100, "only {twins} twin chains");
        let native = set.chains.iter().position(|c| &*c.name == "ts-native-only");
        assert_eq!(native.map(|i| fast[i]), Some(false));
    }

    #[test]
    fn rules_stay_small() {
        assert!(std::mem::size_of::<Verdict>() <= 16);
        assert!(std::mem::size_of::<Rule>() <= 48);
    }

    #[test]
    fn reachability_follows_jumps_and_survives_cycles() {
        let mut b = RulesetBuilder::new();
        let t = b.add_table(Family::Ip, "nat", Origin::Iptables, SourceId(0));
        let pre = b.declare_chain(t, "PREROUTING", None);
        let post = b.declare_chain(t, "POSTROUTING", None);
        let a = b.declare_chain(t, "A", None);
        let c = b.declare_chain(t, "C", None);
        let orphan = b.declare_chain(t, "ORPHAN", None);
        b.push_rule(rule(pre, Verdict::Jump(a)), None);
        b.push_rule(rule(a, Verdict::Goto(c)), None);
        b.push_rule(rule(c, Verdict::Jump(a)), None);
        b.push_rule(rule(post, Verdict::Jump(c)), None);
        let set = b.finish();
        assert!(set.chain(a).hooks.contains(Hook::Prerouting));
        assert!(set.chain(a).hooks.contains(Hook::Postrouting));
        assert!(set.chain(c).hooks.contains(Hook::Prerouting));
        assert!(set.chain(orphan).hooks.is_empty());
        assert_eq!(set.chain(pre).base.map(|b| b.priority), Some(-100));
        assert_eq!(set.chain(post).base.map(|b| b.priority), Some(100));
    }

    #[test]
    fn insert_position_is_one_based() {
        let mut b = RulesetBuilder::new();
        let t = b.add_table(Family::Ip, "filter", Origin::Iptables, SourceId(0));
        let c = b.declare_chain(t, "INPUT", None);
        let r1 = b.push_rule(rule(c, Verdict::Accept), None);
        let r2 = b.push_rule(rule(c, Verdict::Drop), Some(1));
        let set = b.finish();
        assert_eq!(set.chain(c).rules.as_slice(), [r2, r1]);
    }
}
