//! Findings that only paths reveal (DESIGN §3: "distinct bits do not guarantee integration").
//!
//! The codes are MS020 shadowed-mark-rule, MS021 mark-after-routing and MS022 mark-survives
//! (see the catalogue, [`crate::analysis::catalogue::FINDINGS`]).

use rustc_hash::FxHashMap as HashMap;

use crate::model::{hex, Field, MarkOp, MarkWrite, Rewrite, RewriteSite, WriteOp};
use crate::registry::UNKNOWN;
use crate::ruleset::{ChainId, ChainType, Hook, RuleId, Verdict};
use crate::touchpoint::Subsystem;

use crate::analysis::catalogue::{Code, Severity};
use crate::analysis::finding::{Ctx, Finding, IncidentRef};
use crate::analysis::proposal::{Candidate, Proposal};
use crate::analysis::usage::{fi, Site, Use};

/// Rules of one base chain in traversal order (jumps entered once, at their first jump).
fn base_chain_rules(cx: &Ctx<'_>, base: ChainId) -> Vec<RuleId> {
    let mut out = Vec::new();
    let mut entered = vec![false; cx.set.chains.len()];
    crate::analysis::path::walk_base_chain(cx.set, base, &mut entered, |rule| out.push(rule));
    out
}

/// Every rule's owner and whether it writes, by rule id (0 for rules without mark operations,
/// so the table starts as zeroed memory whose pages only become resident where a rule has uses:
/// a kube-proxy node has a handful among 166k rules). Built once: the findings below ask for
/// the owners of every rule in a base chain's traversal order, and scanning the uses for each
/// would be quadratic. A rule's uses are consecutive and in rule order (`usage::collect` walks
/// the rules in order, touchpoints after them), so the few rules whose uses a finding shows
/// are found by binary search.
struct RuleUses<'a> {
    uses: &'a [Use],
    /// Per rule id, zero for rules without uses, else its owner plus one, with [`WRITES`] set
    /// when it writes: the backward walk of [`shadowed_pairs`] reads these four bytes per rule
    /// rather than a use and the rule's operations, each a cache miss on a large node.
    owner: Vec<u32>,
}

/// The bit of [`RuleUses::owner`] set for rules that write a mark.
const WRITES: u32 = 1 << 31;

impl<'a> RuleUses<'a> {
    fn new(cx: &Ctx<'a>) -> Self {
        let mut owner = vec![0u32; cx.set.rules.len()];
        for u in &cx.usage.uses {
            if let Site::Rule(id) = u.site {
                let id = id.0 as usize;
                if owner[id] == 0 {
                    owner[id] = u.owner as u32 + 1;
                }
                if matches!(u.op, MarkOp::Write(_)) {
                    owner[id] |= WRITES;
                }
            }
        }
        RuleUses {
            uses: &cx.usage.uses,
            owner,
        }
    }

    /// The owner index of a rule with mark operations.
    fn owner(&self, rule: RuleId) -> Option<usize> {
        match self.owner[rule.0 as usize] & !WRITES {
            0 => None,
            o => Some(o as usize - 1),
        }
    }

    /// The owner index of a rule that writes a mark.
    fn writer(&self, rule: RuleId) -> Option<usize> {
        let o = self.owner[rule.0 as usize];
        (o & WRITES != 0).then(|| (o & !WRITES) as usize - 1)
    }

    /// The uses of a rule.
    fn of(&self, rule: RuleId) -> impl Iterator<Item = &'a Use> + '_ {
        let from = self
            .uses
            .partition_point(|u| matches!(u.site, Site::Rule(r) if r.0 < rule.0));
        self.uses[from..]
            .iter()
            .take_while(move |u| u.site == Site::Rule(rule))
    }
}

/// The owner of a rule even without mark operations (ACCEPT rules usually have none): the owner
/// of the first mark rule in the same chain (remembered per chain).
fn accept_owner(
    cx: &Ctx<'_>,
    owners: &RuleUses<'_>,
    chain_owners: &mut HashMap<ChainId, Option<usize>>,
    rule: RuleId,
) -> Option<usize> {
    if let Some(o) = owners.owner(rule) {
        return Some(o);
    }
    let chain = cx.set.rule(rule).chain;
    *chain_owners.entry(chain).or_insert_with(|| {
        cx.set
            .chain(chain)
            .rules
            .iter()
            .find_map(|r| owners.owner(*r))
    })
}

/// The (ACCEPT rule, skipped rule, ACCEPT owner, skipped owner) pairs of one base chain's
/// traversal order that MS020 reports, in order: each owner pair once, at its first ACCEPT, with
/// the skipped owner's first mark-writing rule after it; pairs of two unknown owners never.
///
/// One backward walk keeps, per owner, the nearest mark write ahead, so this is linear in the
/// rules (times the handful of owners at each ACCEPT), not ACCEPTs times rules.
fn shadowed_pairs(
    cx: &Ctx<'_>,
    owners: &RuleUses<'_>,
    chain_owners: &mut HashMap<ChainId, Option<usize>>,
    order: &[RuleId],
) -> Vec<(RuleId, RuleId, usize, usize)> {
    // (ACCEPT position, its owner, skipped owner, position of the skipped write)
    let mut candidates: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut next_write: Vec<Option<usize>> = vec![None; cx.usage.owners.len()];
    for (pos, &rule) in order.iter().enumerate().rev() {
        let r = cx.set.rule(rule);
        if r.verdict == Verdict::Accept {
            if let Some(a) = accept_owner(cx, owners, chain_owners, rule) {
                for (b, q) in next_write.iter().enumerate() {
                    if let Some(q) = *q {
                        if b != a {
                            candidates.push((pos, a, b, q));
                        }
                    }
                }
            }
        }
        if let Some(b) = owners.writer(rule) {
            next_write[b] = Some(pos);
        }
    }
    candidates.sort_unstable_by_key(|&(pos, _, _, q)| (pos, q));
    let mut reported: Vec<(usize, usize)> = Vec::new();
    let mut pairs = Vec::new();
    for (pos, a, b, q) in candidates {
        if reported.contains(&(a, b))
            || (cx.usage.owners[a].id == UNKNOWN && cx.usage.owners[b].id == UNKNOWN)
        {
            continue;
        }
        reported.push((a, b));
        pairs.push((order[pos], order[q], a, b));
    }
    pairs
}

/// MS020: an ACCEPT of one owner before another owner's mark rules in the same base chain
/// (the pairs of [`shadowed_pairs`]).
pub(super) fn shadowed(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    // A pair is two owners: with one (a Calico node of 50,000 policies, a kube-proxy node) no
    // traversal can find one, and the traversals are most of this check's time.
    if cx.usage.owners.len() < 2 {
        return;
    }
    let owners = RuleUses::new(cx);
    let mut chain_owners = HashMap::default();
    for (i, chain) in cx.set.chains.iter().enumerate() {
        if chain.base.is_none() {
            continue;
        }
        if cx.set.table(chain.table).duplicate_of.is_some() {
            continue;
        }
        let order = base_chain_rules(cx, ChainId(i as u32));
        for (rule, later, a, b) in shadowed_pairs(cx, &owners, &mut chain_owners, &order) {
            let (ia, ib) = (
                cx.usage.owners[a].id.as_str(),
                cx.usage.owners[b].id.as_str(),
            );
            let connmark = cx.set.rule(later).ops().iter().any(|op| matches!(op, MarkOp::Write(w) if w.field == Field::CtMark || w.is_connmark_copy()));
            let field = cx
                .set
                .rule(later)
                .ops()
                .first()
                .map_or(Field::Mark, MarkOp::field);
            let bits = owners
                .of(later)
                .fold(0, |acc, u| acc | u.writes[fi(field)] | u.reads[fi(field)]);
            let table = cx.set.table(chain.table);
            out.push(Finding {
                    code: Code::ShadowedMarkRule,
                    // Connmark state (a save or a restore) persists for the whole connection: losing
                    // it breaks replies (the AWS VPC CNI case). A skipped packet-mark write is
                    // usually the tail of a policy the ACCEPT already settled.
                    severity: if connmark { Severity::Warning } else { Severity::Info },
                    owners: vec![ia.to_string(), ib.to_string()],
                    field,
                    bits,
                    title: format!(
                        "{ia} ACCEPTs packets in {} {} {} before {ib}'s mark rules run: for those packets {ib}'s mark writes never happen",
                        table.family.as_str(),
                        table.name,
                        chain.name,
                    ),
                    evidence: vec![cx.rule_evidence(rule, ia), cx.rule_evidence(later, ib)],
                    evidence_omitted: 0,
                    fix: format!(
                        "Make sure {ib}'s rule runs before {ia}'s ACCEPT for the packets it must see (insert it earlier in {} {}, or in a base chain of lower priority), or narrow the ACCEPT.",
                        table.name, chain.name
                    ),
                    incidents: cx.incidents(&[ia, ib], field, bits),
                    path: None,
                });
        }
    }
}

/// MS021: a mark read by ip rules, written only after the routing decision.
pub(super) fn after_routing(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    let rule_bits = cx
        .node
        .touchpoints
        .iter()
        .filter(|t| t.subsystem == Subsystem::IpRule)
        .flat_map(|t| t.ops.iter())
        .filter_map(|op| match op {
            MarkOp::Read(r) if r.field == Field::Mark => Some(r.bits()),
            _ => None,
        })
        .fold(0u32, |a, b| a | b);
    if rule_bits == 0 {
        return;
    }
    // Tables with an OUTPUT chain of type route (where a mark change re-routes), by table id:
    // asked for every mark-writing rule, so found once.
    let mut route_tables = vec![false; cx.set.tables.len()];
    for c in &cx.set.chains {
        if c.base
            .is_some_and(|b| b.hook == Hook::Output && b.kind == ChainType::Route)
        {
            route_tables[c.table.0 as usize] = true;
        }
    }
    let mut seen = Vec::new();
    for u in &cx.usage.uses {
        let Site::Rule(id) = u.site else { continue };
        let written = u.writes[fi(Field::Mark)] & rule_bits;
        if written == 0 || u.hooks.is_empty() || seen.contains(&u.owner) {
            continue;
        }
        let rule = cx.set.rule(id);
        let chain = cx.set.chain(rule.chain);
        // Hooks where a mark change can still steer routing: PREROUTING (before route input),
        // OUTPUT in a route chain (re-route).
        let route_chain = route_tables[chain.table.0 as usize];
        let early =
            u.hooks.contains(Hook::Prerouting) || (u.hooks.contains(Hook::Output) && route_chain);
        if early {
            continue;
        }
        seen.push(u.owner);
        let id_s = cx.usage.owners[u.owner].id.clone();
        let hooks: Vec<&str> = u.hooks.iter().map(|h| h.as_str()).collect();
        out.push(Finding {
            code: Code::MarkAfterRouting,
            severity: Severity::Warning,
            owners: vec![id_s.clone()],
            field: Field::Mark,
            bits: written,
            title: format!(
                "{id_s} writes bits {} that ip rules route by, but only in {} (after the routing decision)",
                hex(written),
                hooks.join(", ")
            ),
            evidence: vec![cx.rule_evidence(id, &id_s)],
            evidence_omitted: 0,
            fix: "Set marks meant for policy routing in mangle PREROUTING (forwarded and incoming packets) or mangle OUTPUT / an nft `type route` chain (local packets), where the routing decision still sees them.".to_string(),
            incidents: Vec::new(),
            path: None,
        });
    }
}

/// MS022: bits acted on by a NAT rule in POSTROUTING and never cleared by their owner.
pub(super) fn survives(cx: &Ctx<'_>, out: &mut Vec<Finding>) {
    for (o, owner) in cx.usage.owners.iter().enumerate() {
        if owner.id == UNKNOWN {
            continue;
        }
        let field = Field::Mark;
        // Bits tested by the owner's NAT rules in POSTROUTING.
        let mut nat_reads: Vec<(RuleId, u32)> = Vec::new();
        let mut sets = 0u32;
        let mut clears = 0u32;
        for u in cx.usage.of(o) {
            let Site::Rule(id) = u.site else { continue };
            let rule = cx.set.rule(id);
            match u.op {
                MarkOp::Read(r)
                    if r.field == field
                        && u.hooks.contains(Hook::Postrouting)
                        && !r.invert
                        && matches!(&rule.verdict, Verdict::Terminal(a) if a.is_source_nat()) =>
                {
                    nat_reads.push((id, r.bits()));
                }
                MarkOp::Write(w) if w.field == field => match w.op {
                    WriteOp::Const { keep, xor } => {
                        sets |= xor;
                        // Bits forced to 0, or toggled back by an xor after a test.
                        clears |= !keep & !xor;
                        if keep == crate::model::ALL_BITS {
                            clears |= xor;
                        }
                    }
                    _ => clears |= w.bits(),
                },
                _ => {}
            }
        }
        for (rule, bits) in nat_reads {
            let kept = bits & sets & !clears;
            if kept == 0 {
                continue;
            }
            let setter = cx
                .usage
                .of(o)
                .find(|u| u.writes[fi(field)] & kept != 0)
                .and_then(|u| {
                    if let Site::Rule(id) = u.site {
                        Some(id)
                    } else {
                        None
                    }
                });
            // The fix, in the shape kube-proxy uses since kubernetes#92035: the packets the NAT
            // rule selects go to a chain that clears the bits, then translates. (A MARK rule
            // with the same match put before the NAT rule would clear the bits the NAT rule
            // then tests, and nothing would be translated.) In the algebra: the NAT rule itself
            // clears the bits after its test, which `verify` audits before it is printed.
            let nat = cx.set.rule(rule);
            let chain = &cx.set.chain(nat.chain).name;
            let target = nat.action_name().unwrap_or("MASQUERADE");
            let helper: String = format!("{chain}-NAT").chars().take(28).collect();
            let proposal_text = format!(
                "Clear the bits once the NAT rule has selected the packet, as kube-proxy does since kubernetes#92035: replace `-j {target}` (with its options) in that rule by `-j {helper}`, and add `-N {helper}`, `-A {helper} -j MARK --set-xmark 0x0/{kept_hex}`, `-A {helper} -j {target}` (same options). nft: put `meta mark set meta mark & {keep_hex}` right before `{nft}` in the same rule.",
                kept_hex = hex(kept),
                keep_hex = hex(!kept),
                nft = target.to_ascii_lowercase(),
            );
            let mut ops = nat.ops().to_vec();
            ops.push(MarkOp::Write(MarkWrite::set_xmark(field, 0, kept)));
            let proposal = Proposal {
                    owner: o,
                    candidates: vec![Candidate {
                        text: proposal_text,
                        rewrites: vec![Rewrite {
                            site: RewriteSite::Rule(rule),
                            ops,
                        }],
                        moves_value: false,
                    }],
                    none: format!(
                        "No verified rule change clears bits {} here without causing another finding: clear them by hand after the NAT decision, where no other owner still needs them.",
                        hex(kept)
                    ),
                };
            let fix = proposal.first_text();
            cx.propose(out.len(), proposal);
            let mut evidence_rows = vec![cx.rule_evidence(rule, &owner.id)];
            if let Some(s) = setter {
                evidence_rows.insert(0, cx.rule_evidence(s, &owner.id));
            }
            out.push(Finding {
                code: Code::MarkSurvives,
                severity: Severity::Warning,
                owners: vec![owner.id.clone()],
                field,
                bits: kept,
                title: format!(
                    "{}'s bits {} select packets for NAT in POSTROUTING and are never cleared: a packet that re-enters the stack (VXLAN keeps the mark; forwarding to a container on this host) is translated twice",
                    owner.id,
                    hex(kept)
                ),
                evidence: evidence_rows,
                evidence_omitted: 0,
                fix,
                incidents: cx
                    .registry
                    .incidents
                    .iter()
                    .filter(|i| i.software.iter().any(|s| s == &owner.id) && i.kind.field() == field && i.bits.0 & kept != 0 && (i.mechanism.contains("twice") || i.title.contains("twice") || i.mechanism.contains("re-enter")))
                    .map(IncidentRef::from)
                    .collect(),
                path: None,
            });
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Node;
    use crate::registry::Registry;
    use crate::snapshot::NodeLoader;

    /// MS020's selection as it was first written, scanning every later rule for every ACCEPT:
    /// the oracle for [`shadowed_pairs`].
    fn naive_pairs(cx: &Ctx<'_>, order: &[RuleId]) -> Vec<(RuleId, RuleId, usize, usize)> {
        let owner = |r: RuleId| {
            cx.usage
                .uses
                .iter()
                .find(|u| u.site == Site::Rule(r))
                .map(|u| u.owner)
        };
        let mut reported = Vec::new();
        let mut pairs = Vec::new();
        for (pos, &rule) in order.iter().enumerate() {
            if cx.set.rule(rule).verdict != Verdict::Accept {
                continue;
            }
            let chain = cx.set.rule(rule).chain;
            let Some(a) =
                owner(rule).or_else(|| cx.set.chain(chain).rules.iter().find_map(|r| owner(*r)))
            else {
                continue;
            };
            for &later in &order[pos + 1..] {
                let Some(b) = owner(later) else { continue };
                if b == a || reported.contains(&(a, b)) {
                    continue;
                }
                if cx.usage.owners[a].id == UNKNOWN && cx.usage.owners[b].id == UNKNOWN {
                    continue;
                }
                let writes = cx
                    .set
                    .rule(later)
                    .ops()
                    .iter()
                    .any(|op| matches!(op, MarkOp::Write(_)));
                if !writes {
                    continue;
                }
                reported.push((a, b));
                pairs.push((rule, later, a, b));
            }
        }
        pairs
    }

    fn node(text: &str) -> Node {
        let mut l = NodeLoader::new();
        l.add_text("node.txt", text.as_bytes().to_vec(), true)
            .expect("an iptables-save text");
        l.finish()
    }

    /// Base chains full of ACCEPTs and mark writes of several owners, in a pseudo-random order.
    fn tangled(seed: u64) -> String {
        let mut x = seed;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let prefixes = ["cali-", "KUBE-", "ts-", "CILIUM_", "X-"];
        let mut chains = Vec::new();
        let mut rules = Vec::new();
        for c in 0..12 {
            let name = format!("{}C{c}", prefixes[next(5) as usize]);
            for _ in 0..1 + next(6) {
                let bit = 1u32 << next(32);
                rules.push(match next(6) {
                    0 | 1 => format!("-A {name} -j MARK --set-xmark {bit:#x}/{bit:#x}"),
                    2 => format!("-A {name} -m mark --mark {bit:#x}/{bit:#x} -j ACCEPT"),
                    3 => format!("-A {name} -j ACCEPT"),
                    4 => format!(
                        "-A {name} -j CONNMARK --save-mark --nfmask {bit:#x} --ctmask {bit:#x}"
                    ),
                    _ => format!("-A {name} -m mark --mark {bit:#x}/{bit:#x} -j RETURN"),
                });
            }
            chains.push(name);
        }
        let mut text = String::from("*mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
        for c in &chains {
            text.push_str(&format!(":{c} - [0:0]\n"));
        }
        for base in ["PREROUTING", "OUTPUT"] {
            for _ in 0..10 {
                let c = &chains[next(chains.len() as u64) as usize];
                text.push_str(&match next(4) {
                    0 => format!("-A {base} -j ACCEPT\n"),
                    _ => format!("-A {base} -j {c}\n"),
                });
            }
        }
        for r in rules {
            text.push_str(&r);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        text
    }

    #[test]
    fn shadowed_pairs_match_the_naive_scan() {
        let registry = Registry::embedded().expect("registry");
        let mut texts: Vec<String> = (1..=60).map(tangled).collect();
        texts.push(crate::generate::iptables_save(&crate::generate::Node {
            kube_proxy: Some(crate::generate::KubeProxy::with_lines(3000, 2)),
            calico: Some(crate::generate::Calico {
                endpoints: 20,
                policies: 10,
            }),
            cilium: true,
            tailscale: true,
        }));
        let mut compared = 0;
        for text in &texts {
            let node = node(text);
            let usage = crate::analysis::usage::collect(&node, &registry);
            let cx = Ctx {
                set: &node.ruleset,
                sources: &node.sources,
                node: &node,
                registry: &registry,
                usage: &usage,
                orders: Default::default(),
                whole_aware: Default::default(),
                path_events: Default::default(),
                proposals: Default::default(),
                verify: false,
            };
            let owners = RuleUses::new(&cx);
            let mut chain_owners = HashMap::default();
            for (i, chain) in node.ruleset.chains.iter().enumerate() {
                if chain.base.is_none() {
                    continue;
                }
                let order = base_chain_rules(&cx, ChainId(i as u32));
                let fast = shadowed_pairs(&cx, &owners, &mut chain_owners, &order);
                assert_eq!(fast, naive_pairs(&cx, &order), "{text}");
                compared += fast.len();
            }
        }
        assert!(
            compared > 20,
            "only {compared} pairs: the inputs do not exercise MS020"
        );
    }
}
