//! `trace`: a concrete packet walked through the kernel pipeline of a snapshot.
//!
//! The pipeline follows the kernel (DESIGN §3, `net/netfilter/core.c` hook order, priorities from
//! `include/uapi/linux/netfilter_ipv4.h`): for each hook the base chains of every table of the
//! packet's family (iptables tables and nft chains alike) run in priority order; NAT chains run
//! only for the first packet of a tracked connection, and a DNAT there rewrites the destination
//! the later rules and the routing decision see; the routing decision consults `ip rule` fwmark
//! selectors with the mark as it is at that point; on the output path a mark change in a route
//! chain (iptables mangle OUTPUT, nft `type route`) re-routes.
//!
//! A condition trace cannot decide (an ipset, `statistic`, an address the user did not give)
//! forks the walk: both branches are shown, each with the assumption it made, unless `--assume`
//! settles it. Forks are bounded ([`Options::max_paths`]); past the bound an undecided condition
//! is taken as not matching, and the path says so.

use std::borrow::Cow;

use crate::model::{hex, CopySource, Field, MarkOp, MarkState, Node, WriteOp};
use crate::packet::{Cond, CtState, Flow, NatTo, Outcome, Packet, PathKind, FIELD_CONDITION_NAMES};
use crate::registry::Registry;
use crate::ruleset::{Action, ChainId, ChainType, Family, Hook, Rule, RuleId, Verdict};
use crate::touchpoint::Attach;

mod bpf;
mod route;
mod steps;
use route::route;
pub use steps::{Options, PathTrace, Step, Trace};

/// One stage of the pipeline.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Hook(Hook),
    Chain(ChainId),
    Route(&'static str),
    /// The eBPF programs attached here ([`crate::touchpoint::Attach`]).
    Bpf(Attach),
}

#[derive(Clone, Debug)]
struct Frame {
    chain: ChainId,
    next: usize,
}

#[derive(Clone, Debug)]
struct Walker {
    stage: usize,
    frames: Vec<Frame>,
    state: MarkState,
    tracked: bool,
    /// Whether a DNAT (REDIRECT…) / SNAT (MASQUERADE…) rule of this path rewrote the
    /// connection (first packets only: conntrack's `DNAT` / `SNAT` states).
    dnat: bool,
    snat: bool,
    /// The destination after a DNAT of this path (address, port; `None`: not determined), for
    /// the hooks after it.
    dnat_to: Option<NatTo>,
    path: PathTrace,
    /// The mark when the current route-type chain started (re-route check).
    route_mark: Option<u32>,
    /// Decisions forced at a fork, by (rule, condition index): taken when the walker reaches it.
    forced: Vec<(RuleId, usize, bool)>,
}

/// The base chains of a hook for the packet's family, in priority order.
fn base_chains(node: &Node, hook: Hook, v6: bool) -> Vec<ChainId> {
    let set = &node.ruleset;
    let mut chains: Vec<(i32, usize, ChainId)> = set
        .chains
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let base = c.base?;
            let table = set.table(c.table);
            let family_ok = match table.family {
                Family::Ip => !v6,
                Family::Ip6 => v6,
                Family::Inet => true,
                _ => false,
            };
            (base.hook == hook && family_ok && table.duplicate_of.is_none()).then_some((
                base.priority,
                c.table.0 as usize,
                ChainId(i as u32),
            ))
        })
        .collect();
    chains.sort();
    chains.into_iter().map(|(_, _, c)| c).collect()
}

fn pipeline(node: &Node, p: &Packet) -> Vec<Stage> {
    let v6 = p.is_ipv6();
    let hooks: &[Hook] = match p.path {
        PathKind::Ingress => &[Hook::Prerouting, Hook::Input],
        PathKind::Forward => &[Hook::Prerouting, Hook::Forward, Hook::Postrouting],
        PathKind::Output => &[Hook::Output, Hook::Postrouting],
    };
    let mut stages = Vec::new();
    if p.path == PathKind::Output {
        stages.push(Stage::Route("output"));
    }
    if p.path != PathKind::Output {
        stages.push(Stage::Bpf(Attach::TcIngress));
    }
    for &hook in hooks {
        stages.push(Stage::Hook(hook));
        stages.extend(base_chains(node, hook, v6).into_iter().map(Stage::Chain));
        if hook == Hook::Prerouting {
            stages.push(Stage::Route("input"));
        }
    }
    // After the last hook (`ip_finish_output`, `__dev_queue_xmit`, socket receive).
    match p.path {
        PathKind::Ingress => stages.push(Stage::Bpf(Attach::CgroupSkbIngress)),
        PathKind::Forward => stages.push(Stage::Bpf(Attach::TcEgress)),
        PathKind::Output => {
            stages.push(Stage::Bpf(Attach::CgroupSkbEgress));
            stages.push(Stage::Bpf(Attach::TcEgress));
        }
    }
    stages
}

/// The condition names `--assume` accepts on this node: `all`, the packet fields a trace may
/// lack (`source address`…), and every condition the node's rules leave undecidable (their
/// modules and selectors: `statistic`, `set`, `nft meta pkttype`…), sorted.
pub fn assumable_names(node: &Node) -> Vec<String> {
    let mut names: std::collections::BTreeSet<String> = FIELD_CONDITION_NAMES
        .iter()
        .map(|n| n.to_string())
        .chain(["all".to_string(), "rpfilter".to_string()])
        .collect();
    let set = &node.ruleset;
    for (i, rule) in set.rules.iter().enumerate() {
        let family = set.rule_table(rule).family;
        if set.is_duplicate(rule) || !matches!(family, Family::Ip | Family::Ip6 | Family::Inet) {
            continue;
        }
        for test in node.rule_details(RuleId(i as u32)).tests {
            collect_unknown(&test.cond, &mut names);
        }
    }
    names.into_iter().collect()
}

fn collect_unknown(cond: &Cond, names: &mut std::collections::BTreeSet<String>) {
    match cond {
        Cond::Unknown(name) => {
            names.insert(name.clone());
        }
        Cond::Any(conds) => conds.iter().for_each(|c| collect_unknown(c, names)),
        _ => {}
    }
}

/// The `--assume` names of `options` that no condition of this node has, with the names it
/// has: a misspelt name would otherwise be ignored silently.
pub fn unknown_assumptions(node: &Node, options: &Options) -> Option<(Vec<String>, Vec<String>)> {
    if options.assume.is_empty() {
        return None;
    }
    let valid = assumable_names(node);
    let mut unknown: Vec<String> = options
        .assume
        .keys()
        .filter(|k| valid.binary_search(k).is_err())
        .cloned()
        .collect();
    unknown.sort();
    (!unknown.is_empty()).then_some((unknown, valid))
}

fn verdict_name(rule: &Rule, node: &Node) -> String {
    let v = &rule.verdict;
    match v {
        Verdict::Continue => "continue".into(),
        Verdict::Accept => "ACCEPT".into(),
        Verdict::Drop => "DROP".into(),
        Verdict::Return => "RETURN".into(),
        Verdict::Jump(c) => format!("jump {}", node.ruleset.chain(*c).name),
        Verdict::Goto(c) => format!("goto {}", node.ruleset.chain(*c).name),
        Verdict::Terminal(_) | Verdict::Then(_) => rule.action_name().unwrap_or("").to_string(),
        Verdict::Map(options) => format!("verdict map of {}", options.len()),
    }
}

/// Runs a trace.
pub fn trace(
    node: &Node,
    registry: &Registry,
    packet: Packet,
    start: MarkState,
    options: &Options,
) -> Trace {
    let stages = pipeline(node, &packet);
    let max_paths = options.max_paths.max(1);
    let mut work = vec![Walker {
        stage: 0,
        frames: Vec::new(),
        state: start,
        tracked: true,
        dnat: false,
        snat: false,
        dnat_to: None,
        path: PathTrace {
            steps: Vec::new(),
            verdict: "ACCEPT".into(),
            mark: String::new(),
            ctmark: String::new(),
            table: None,
            assumptions: Vec::new(),
        },
        route_mark: None,
        forced: Vec::new(),
    }];
    let mut done = Vec::new();
    let mut truncated = false;
    while let Some(mut w) = work.pop() {
        let forks_left = max_paths.saturating_sub(done.len() + work.len() + 1);
        match run(
            node,
            registry,
            &packet,
            &stages,
            &mut w,
            options,
            forks_left > 0,
        ) {
            Run::Done => {
                w.path.mark = hex(w.state.mark);
                w.path.ctmark = hex(w.state.ctmark);
                done.push(w.path);
            }
            Run::Fork(other) => {
                work.push(*other);
                work.push(w);
            }
            Run::Truncated => {
                truncated = true;
                w.path.mark = hex(w.state.mark);
                w.path.ctmark = hex(w.state.ctmark);
                done.push(w.path);
            }
        }
    }
    Trace {
        packet,
        start,
        paths: done,
        truncated,
    }
}

enum Run {
    Done,
    Fork(Box<Walker>),
    Truncated,
}

/// Advances a walker until its path ends or a condition forks it.
fn run(
    node: &Node,
    registry: &Registry,
    p: &Packet,
    stages: &[Stage],
    w: &mut Walker,
    options: &Options,
    may_fork: bool,
) -> Run {
    let set = &node.ruleset;
    let original = p;
    let mut truncated = false;
    loop {
        // The packet as rewritten by a DNAT earlier on this path.
        let p = &*seen(original, w);
        // Inside a chain: run its next rule.
        if let Some(frame) = w.frames.last().cloned() {
            let chain = set.chain(frame.chain);
            let Some(&rule_id) = chain.rules.get(frame.next) else {
                // End of chain: return to the caller, or the base chain's policy.
                w.frames.pop();
                if w.frames.is_empty() {
                    let policy = chain.policy.clone().unwrap_or(Verdict::Accept);
                    if policy == Verdict::Drop {
                        w.path.steps.push(Step::Policy {
                            chain: chain.name.to_string(),
                            policy: "DROP".into(),
                        });
                        w.path.verdict = "DROP".into();
                        return if truncated { Run::Truncated } else { Run::Done };
                    }
                    end_base_chain(node, p, w);
                }
                continue;
            };
            if let Some(top) = w.frames.last_mut() {
                top.next += 1;
            }
            let rule = set.rule(rule_id);
            // Non-mark conditions, decoded by the rule's format.
            let details = node.rule_details(rule_id);
            let tests = &details.tests;
            let mut assumed = Vec::new();
            let mut matched = true;
            // The NAT of a later packet's connection happened on its first packet, unseen.
            let first = p.state == CtState::New;
            let flow = Flow {
                tracked: w.tracked,
                dnat: first.then_some(w.dnat),
                snat: first.then_some(w.snat),
            };
            for (k, t) in tests.iter().enumerate() {
                let outcome = match w.forced.iter().find(|(r, i, _)| *r == rule_id && *i == k) {
                    Some((_, _, true)) => Outcome::Yes,
                    Some((_, _, false)) => Outcome::No,
                    None => t.eval(p, &flow),
                };
                match outcome {
                    Outcome::Yes => {}
                    Outcome::No => {
                        matched = false;
                        break;
                    }
                    Outcome::Unknown(name) => {
                        let settled = options
                            .assume
                            .get(&name)
                            .or_else(|| options.assume.get("all"))
                            .copied();
                        match settled {
                            Some(true) => assumed.push(format!("{name}: assumed to match")),
                            Some(false) => {
                                matched = false;
                                break;
                            }
                            None if may_fork => {
                                // Fork: this walker takes "matches", the other "does not".
                                let mut other = w.clone();
                                if let Some(top) = other.frames.last_mut() {
                                    top.next -= 1;
                                }
                                other.forced.push((rule_id, k, false));
                                other.path.assumptions.push(format!(
                                    "{name} does not match at {}",
                                    where_of(node, rule_id)
                                ));
                                if let Some(top) = w.frames.last_mut() {
                                    top.next -= 1;
                                }
                                w.forced.push((rule_id, k, true));
                                w.path
                                    .assumptions
                                    .push(format!("{name} matches at {}", where_of(node, rule_id)));
                                return Run::Fork(Box::new(other));
                            }
                            None => {
                                truncated = true;
                                assumed.push(format!(
                                    "{name}: undecided, taken as not matching (path limit)"
                                ));
                                matched = false;
                                break;
                            }
                        }
                    }
                }
            }
            // Mark operations, in kernel order.
            let before = w.state;
            if matched {
                for op in rule.ops() {
                    match op {
                        MarkOp::Read(r) => {
                            let value = match r.field {
                                Field::Mark => Some(w.state.mark),
                                Field::CtMark => w.tracked.then_some(w.state.ctmark),
                            };
                            let hit = value.and_then(|v| r.eval(v));
                            match hit {
                                Some(true) => {}
                                Some(false) => {
                                    matched = false;
                                    break;
                                }
                                None => {
                                    if value.is_none() {
                                        // connmark match on an untracked packet
                                        matched = false;
                                        break;
                                    }
                                    assumed.push(
                                        "opaque mark test (set or map): assumed to match".into(),
                                    );
                                }
                            }
                        }
                        MarkOp::Write(wr) => {
                            if wr.field == Field::CtMark && !w.tracked {
                                continue;
                            }
                            if matches!(
                                wr.op,
                                WriteOp::Copy {
                                    src: CopySource::CtMark,
                                    ..
                                }
                            ) && !w.tracked
                            {
                                continue;
                            }
                            if !w.state.apply(wr) {
                                assumed.push(
                                    "data-dependent write: value unknown, mark left as is".into(),
                                );
                            }
                        }
                    }
                }
            }
            if matched && rule.verdict == Verdict::Then(Action::Notrack) {
                w.tracked = false;
            }
            let show = matched || !rule.ops().is_empty();
            if show {
                let table = set.rule_table(rule);
                let chain = set.chain(rule.chain);
                let owner = registry
                    .attribute_rule(&node.ruleset, rule_id, node.sources.text(rule.span))
                    .owner;
                w.path.steps.push(Step::Rule {
                    file: node.sources.name(rule.span).to_string(),
                    line: rule.span.line,
                    chain: format!("{} {}", table.name, chain.name),
                    text: node.sources.text(rule.span).trim().to_string(),
                    owner,
                    matched,
                    mark: (hex(before.mark), hex(w.state.mark)),
                    ctmark: (hex(before.ctmark), hex(w.state.ctmark)),
                    verdict: (matched && rule.verdict != Verdict::Continue)
                        .then(|| verdict_name(rule, node)),
                    assumed,
                });
            }
            if !matched {
                continue;
            }
            match &rule.verdict {
                Verdict::Continue | Verdict::Then(_) => {}
                Verdict::Map(_) => {
                    // The key of an nft verdict map is not kept in the model: the walk goes
                    // on as if no element matched, and says so.
                    w.path.steps.push(Step::Note {
                        text: format!(
                            "verdict map at {} not evaluated: taken as no element matching",
                            where_of(node, rule_id)
                        ),
                    });
                }
                Verdict::Jump(c) => w.frames.push(Frame { chain: *c, next: 0 }),
                Verdict::Goto(c) => {
                    w.frames.pop();
                    w.frames.push(Frame { chain: *c, next: 0 });
                }
                Verdict::Return => {
                    w.frames.pop();
                    if w.frames.is_empty() {
                        end_base_chain(node, p, w);
                    }
                }
                Verdict::Accept => {
                    w.frames.clear();
                    end_base_chain(node, p, w);
                }
                Verdict::Drop => {
                    w.path.verdict = "DROP".into();
                    return if truncated { Run::Truncated } else { Run::Done };
                }
                Verdict::Terminal(action) => match action {
                    Action::Reject | Action::Queue | Action::Synproxy => {
                        w.path.verdict = verdict_name(rule, node);
                        return if truncated { Run::Truncated } else { Run::Done };
                    }
                    Action::Tproxy => {
                        w.path.steps.push(Step::Note {
                            text: "TPROXY: delivered to a local proxy socket".into(),
                        });
                        w.path.verdict = action.name().to_string();
                        return if truncated { Run::Truncated } else { Run::Done };
                    }
                    _ => {
                        // NAT targets accept the packet for this base chain, and set the
                        // connection's NAT state.
                        let hook = w
                            .frames
                            .first()
                            .and_then(|f| set.chain(f.chain).base)
                            .map(|b| b.hook);
                        match action {
                            Action::Dnat | Action::Redirect => {
                                w.dnat = true;
                                w.dnat_to = Some(details.nat_to.unwrap_or(NatTo {
                                    addr: None,
                                    port: Some(None),
                                }));
                            }
                            Action::Snat | Action::Masquerade => w.snat = true,
                            Action::Netmap
                                if matches!(hook, Some(Hook::Prerouting | Hook::Output)) =>
                            {
                                w.dnat = true
                            }
                            Action::Netmap => w.snat = true,
                            _ => {}
                        }
                        w.frames.clear();
                        end_base_chain(node, p, w);
                    }
                },
            }
            continue;
        }
        // Between chains: the next stage.
        let Some(stage) = stages.get(w.stage).copied() else {
            return if truncated { Run::Truncated } else { Run::Done };
        };
        w.stage += 1;
        match stage {
            Stage::Hook(hook) => w.path.steps.push(Step::Hook { hook }),
            Stage::Chain(c) => {
                let chain = set.chain(c);
                let table = set.table(chain.table);
                // The pipeline holds base chains only.
                let Some(base) = chain.base else { continue };
                // NAT chains see the first packet of a tracked connection only
                // (`nf_nat_inet_fn`: no conntrack entry, no NAT).
                if base.kind == ChainType::Nat && (p.state != CtState::New || !w.tracked) {
                    continue;
                }
                w.path.steps.push(Step::Chain {
                    table: format!("{} {}", table.family.as_str(), table.name),
                    chain: chain.name.to_string(),
                    priority: base.priority,
                    origin: table.origin,
                });
                w.route_mark = (base.kind == ChainType::Route && p.path == PathKind::Output)
                    .then_some(w.state.mark);
                w.frames.push(Frame { chain: c, next: 0 });
            }
            Stage::Route(kind) => route(node, p, w.state.mark, &mut w.path, kind),
            Stage::Bpf(at) => bpf::run(node, registry, p, at, &mut w.state, &mut w.path.steps),
        }
    }
}

/// The packet as the walker's rules see it: its destination rewritten by a DNAT of this path.
fn seen<'a>(p: &'a Packet, w: &Walker) -> Cow<'a, Packet> {
    match w.dnat_to {
        None => Cow::Borrowed(p),
        Some(NatTo { addr, port }) => {
            let mut q = p.clone();
            q.dst = addr;
            if let Some(port) = port {
                q.dport = port;
            }
            Cow::Owned(q)
        }
    }
}

/// After a base chain: an output-path route chain that changed the mark re-routes.
fn end_base_chain(node: &Node, p: &Packet, w: &mut Walker) {
    if let Some(m) = w.route_mark.take() {
        if m != w.state.mark && p.path == PathKind::Output {
            route(node, p, w.state.mark, &mut w.path, "re-route");
        }
    }
}

fn where_of(node: &Node, rule: RuleId) -> String {
    let r = node.ruleset.rule(rule);
    format!("{}:{}", node.sources.name(r.span), r.span.line)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::snapshot::NodeLoader;

    fn node(rules: &str) -> Node {
        let mut l = NodeLoader::new();
        l.add_text("iptables-save.txt", rules.as_bytes().to_vec(), true)
            .unwrap();
        l.finish()
    }

    fn forward(node: &Node, dport: u16) -> PathTrace {
        let p = Packet {
            in_iface: Some("vc".into()),
            out_iface: Some("vs".into()),
            src: Some("10.0.1.2".parse().unwrap()),
            dst: Some("192.168.7.7".parse().unwrap()),
            proto: Some(17),
            sport: Some(40000),
            dport: Some(dport),
            path: PathKind::Forward,
            state: CtState::New,
        };
        let t = trace(
            node,
            &Registry::default(),
            p,
            MarkState::default(),
            &Options::default(),
        );
        assert_eq!(t.paths.len(), 1);
        t.paths.into_iter().next().unwrap()
    }

    /// Found by the trace differential test (scenario "raw, mangle and nat in priority
    /// order"): `--ctstate DNAT` after a DNAT rule matched in nat PREROUTING; the trace took
    /// the state as NEW only and dropped the packet by FORWARD's policy.
    #[test]
    fn dnat_state_after_a_dnat_rule() {
        let n = node(
            "*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -d 192.168.7.7/32 -p udp -m udp --dport 7000 -j DNAT --to-destination 192.168.2.2:5000
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
",
        );
        assert_eq!(forward(&n, 7000).verdict, "ACCEPT");
        assert_eq!(forward(&n, 7001).verdict, "DROP");
    }

    /// Found by the trace differential test (scenario "rules after a DNAT see the endpoint"):
    /// the hooks after nat PREROUTING match the DNATed destination, not the Service address.
    #[test]
    fn rules_after_a_dnat_see_the_new_destination() {
        let n = node(
            "*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -d 192.168.7.7/32 -p udp -m udp --dport 7000 -j DNAT --to-destination 192.168.2.2:5000
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
-A PREROUTING -d 192.168.7.7/32 -j MARK --set-xmark 0x100/0x100
-A FORWARD -d 192.168.7.7/32 -j MARK --set-xmark 0x8000/0x8000
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -d 192.168.2.2/32 -p udp -m udp --dport 5000 -j ACCEPT
COMMIT
",
        );
        let p = forward(&n, 7000);
        assert_eq!((&*p.verdict, &*p.mark), ("ACCEPT", "0x00000100"));
        // Not DNATed: the original destination all the way.
        let p = forward(&n, 7001);
        assert_eq!((&*p.verdict, &*p.mark), ("DROP", "0x00008100"));
    }

    /// Found by the trace differential test (scenario "NOTRACK makes CONNMARK a no-op"): an
    /// untracked packet is in state UNTRACKED (not NEW) and skips the nat chains.
    #[test]
    fn untracked_packets_skip_nat_and_are_untracked() {
        let n = node(
            "*raw
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 5000 -j NOTRACK
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j MARK --set-xmark 0x1000/0x1000
COMMIT
*mangle
:FORWARD ACCEPT [0:0]
-A FORWARD -m conntrack --ctstate UNTRACKED -j MARK --set-xmark 0x400/0x400
-A FORWARD -m state --state NEW -j MARK --set-xmark 0x800/0x800
COMMIT
",
        );
        assert_eq!(forward(&n, 5000).mark, "0x00000400");
        assert_eq!(forward(&n, 5001).mark, "0x00001800");
    }
}
