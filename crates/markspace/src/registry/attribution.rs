//! Naming the owner of a rule from its evidence, strongest first.
//!
//! - **strong**: the rule's whole text quoted by one entry's `[[rules]]` ([`super::quoted`]), an exact chain name, a comment (substring or prefix), a native nft table's
//!   name, a registered `ip rule` priority range, and exact values: a registry signature value, a multi-bit value only one software's
//!   claims name (`0x6d6f6c65`, `0xf41`, `0xca6c`), a `value/mask` pattern (`0xe00/0xf00`);
//! - **medium**: name heuristics (an nft table name prefix, the longest matching chain prefix,
//!   the chain the rule jumps to: a builtin-chain rule jumping into `KUBE-POSTROUTING` is
//!   kube-proxy's), the bits of one software's claim exactly (`& 0x00ff0000`), a single-bit
//!   value only one software's claims name, and for touchpoints a value equal to exactly one
//!   software's claim of that kind (xfrm, WireGuard, …);
//! - **weak**: an interface it matches (`br-` is Docker's, and OpenWrt's `br-lan` too).
//!
//! A weaker kind is only consulted when no stronger one matched, so a weak heuristic never
//! overrides a value match. Every attribution carries its signature, pattern and strength. Only
//! rules with mark operations are attributed, so this runs a few thousand times even on a
//! million-rule node.

use rustc_hash::FxHashMap as HashMap;

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
    /// The bits each of its operations reads or writes, per field (`[mark, ctmark]`).
    pub masks: &'a [[u32; 2]],
    /// The rule's text as it appears in its input, when known.
    pub text: Option<&'a str>,
}

/// Why a rule was given to an owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `rule`, `chain`, `comment`, `table`, `value`, `value-mask`, `table-prefix`, `chain-prefix`,
    /// `jump`, `value-bit`, `device`, (touchpoints) `program`, `process`, `priority`, `claim`,
    /// `routing-table`, or `none`.
    pub signature: &'static str,
    /// The pattern that matched.
    pub pattern: String,
    /// How much the signature proves: `strong`, `medium`, `weak` ([`strength`]); `none` when
    /// nothing matched.
    pub strength: &'static str,
}

/// How much a signature proves (module docs): `strong`, `medium`, `weak`, or `none`.
pub fn strength(signature: &str) -> &'static str {
    match signature {
        "rule" | "chain" | "comment" | "table" | "value" | "value-mask" | "mark-pattern"
        | "program" | "process" | "priority" => "strong",
        "table-prefix" | "chain-prefix" | "jump" | "value-bit" | "routing-table" | "claim" => {
            "medium"
        }
        "device" => "weak",
        _ => "none",
    }
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
    /// Values the claims of exactly one software name (none below 0x10: small numbers are
    /// everyone's).
    claim_values: HashMap<u32, usize>,
    /// Claims of touchpoint kinds (xfrm marks, WireGuard fwmarks, `ip rule`, OVS, sockets): kind,
    /// bits, software.
    kind_claims: Vec<(super::schema::ClaimKind, u32, usize)>,
    /// Claim bits per field (`[mark, ctmark]`) that exactly one software claims.
    claim_bits: [HashMap<u32, usize>; 2],
    /// `ip rule` priority ranges (inclusive) and tables.
    priorities: Vec<(u32, u32, usize)>,
    rule_tables: HashMap<String, usize>,
    programs: Vec<(String, usize)>,
    processes: Vec<(String, usize)>,
    /// `(value, mask)` patterns for touchpoint constants.
    patterns: Vec<(u32, u32, usize)>,
    /// Rule lines the entries quote.
    quoted: super::quoted::QuotedRules,
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
        let mut m = Matcher {
            quoted: super::quoted::QuotedRules::new(software),
            ..Matcher::default()
        };
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
        let mut named: HashMap<u32, Option<usize>> = HashMap::default();
        for (i, s) in software.iter().enumerate() {
            for v in s.claims.iter().flat_map(|c| &c.values) {
                if v.shared_with.is_some() {
                    continue;
                }
                let v = u32::from(v.value);
                if v < 0x10 {
                    continue;
                }
                let e = named.entry(v).or_insert(Some(i));
                if *e != Some(i) {
                    *e = None;
                }
            }
        }
        for (i, s) in software.iter().enumerate() {
            for c in &s.claims {
                use super::schema::ClaimKind as K;
                if !matches!(c.kind, K::Mark | K::Ctmark | K::TproxyMark) {
                    m.kind_claims.push((c.kind, u32::from(c.bits), i));
                }
            }
        }
        let mut bits: [HashMap<u32, Option<usize>>; 2] = Default::default();
        for (i, s) in software.iter().enumerate() {
            for c in &s.claims {
                use super::schema::ClaimKind as K;
                let f = match c.kind {
                    K::Mark => 0,
                    K::Ctmark => 1,
                    _ => continue,
                };
                let b = u32::from(c.bits);
                if b == 0 || b == u32::MAX {
                    continue;
                }
                let e = bits[f].entry(b).or_insert(Some(i));
                if *e != Some(i) {
                    *e = None;
                }
            }
        }
        for (to, from) in m.claim_bits.iter_mut().zip(bits) {
            *to = from
                .into_iter()
                .filter_map(|(b, i)| Some((b, i?)))
                .collect();
        }
        m.claim_values = named
            .into_iter()
            .filter_map(|(v, i)| Some((v, i?)))
            .collect();
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

    fn chain_owner<'p>(&'p self, chain: &'p str) -> Option<Found<'p>> {
        if let Some(i) = self.chains.get(chain) {
            return Some((*i, "chain", Pattern::Str(chain)));
        }
        self.prefixes
            .iter()
            .find(|(p, _)| chain.starts_with(p.as_str()))
            .map(|(p, i)| (*i, "chain-prefix", Pattern::Str(p)))
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
        Self::named(software, self.touchpoint_hit(subsystem, ctx, values))
    }

    /// [`Self::attribute_touchpoint`] without formatting its pattern.
    pub(crate) fn touchpoint_hit<'p>(
        &'p self,
        subsystem: crate::touchpoint::Subsystem,
        ctx: &'p crate::touchpoint::TouchContext,
        values: &[u32],
    ) -> Option<Found<'p>> {
        let ip_rule = subsystem == crate::touchpoint::Subsystem::IpRule;
        let by_name = |list: &'p [(String, usize)], name: Option<&str>, kind: &'static str| {
            let name = name?;
            list.iter()
                .find(|(n, _)| name == n || name.starts_with(n.as_str()))
                .map(|(n, i)| (*i, kind, Pattern::Str(n)))
        };
        by_name(&self.programs, ctx.program.as_deref(), "program")
            .or_else(|| by_name(&self.processes, ctx.process.as_deref(), "process"))
            // A registered `ip rule` priority range before values: small fwmark values are
            // reused (mwan3's 0x500/0x3f00 is its fifth interface, not Cilium's 0x500).
            .or_else(|| {
                let prio = ctx.priority.filter(|_| ip_rule)?;
                self.priorities
                    .iter()
                    .find(|(lo, hi, _)| (*lo..=*hi).contains(&prio))
                    .map(|(lo, hi, i)| (*i, "priority", Pattern::Range(*lo, *hi)))
            })
            .or_else(|| self.strong_value(values))
            .or_else(|| self.bit_value(values))
            .or_else(|| {
                let t = ctx.table.as_deref().filter(|_| ip_rule)?;
                self.rule_tables
                    .get(t)
                    .map(|i| (*i, "routing-table", Pattern::Str(t)))
            })
            .or_else(|| self.kind_claim(subsystem, values))
            .or_else(|| {
                let name = ctx.device.as_deref()?.trim_end_matches(['+', '*']);
                self.devices
                    .iter()
                    .find(|(d, _)| !d.is_empty() && name.starts_with(d.as_str()))
                    .map(|(d, i)| (*i, "device", Pattern::Str(d)))
            })
    }

    /// A strong value: a signature value, a multi-bit value one software's claims name, or a
    /// `value/mask` pattern.
    fn strong_value(&self, values: &[u32]) -> Option<Found<'static>> {
        if values.is_empty() {
            return None;
        }
        values
            .iter()
            .find_map(|v| self.values.get(v).map(|i| (*i, "value", Pattern::Hex(*v))))
            .or_else(|| {
                values.iter().filter(|v| v.count_ones() > 1).find_map(|v| {
                    self.claim_values
                        .get(v)
                        .map(|i| (*i, "value", Pattern::Hex(*v)))
                })
            })
            .or_else(|| {
                values.iter().find_map(|c| {
                    self.patterns
                        .iter()
                        .find(|(v, m, _)| c & m == *v)
                        .map(|(v, m, i)| (*i, "value-mask", Pattern::ValueMask(*v, *m)))
                })
            })
    }

    /// A touchpoint value equal to the bits of exactly one software's claim of that touchpoint's
    /// kind (Weave's xfrm `mark 0x20000/0x20000` and its xfrm-mark claim 0x20000): medium.
    fn kind_claim(
        &self,
        subsystem: crate::touchpoint::Subsystem,
        values: &[u32],
    ) -> Option<Found<'static>> {
        use super::schema::ClaimKind as K;
        use crate::touchpoint::Subsystem as S;
        let kinds: &[K] = match subsystem {
            S::Xfrm => &[K::XfrmMark, K::XfrmOutputMark],
            S::Wireguard => &[K::WgFwmark],
            S::IpRule => &[K::IpRule],
            S::Ovs => &[K::OvsPktMark, K::OvsCtMark],
            S::Socket => &[K::SocketMark],
            _ => return None,
        };
        values.iter().filter(|v| **v >= 0x10).find_map(|v| {
            // Only a value that is the whole claim says much (Weave's `0x20000/0x20000`): a
            // value inside a wider claim (a bit of a 16-bit routing-mark space) is anyone's.
            let mut owners = self
                .kind_claims
                .iter()
                .filter(|(k, bits, _)| kinds.contains(k) && *v == *bits);
            let (_, bits, i) = owners.next()?;
            let unique = owners.all(|(_, _, j)| j == i);
            unique.then_some((*i, "claim", Pattern::Hex(*bits)))
        })
    }

    /// Bits a rule reads or writes that are exactly the bits of one software's claim on that
    /// field (Tailscale's `meta mark & 0x00ff0000`, AWS VPC CNI's connmark `0x80`): medium.
    fn claim_mask(&self, masks: &[[u32; 2]]) -> Option<Found<'static>> {
        masks.iter().find_map(|m| {
            (0..2).find_map(|f| {
                self.claim_bits[f]
                    .get(&m[f])
                    .map(|i| (*i, "claim", Pattern::Hex(m[f])))
            })
        })
    }

    /// A single-bit value one software's claims name (`0x4000`): medium.
    fn bit_value(&self, values: &[u32]) -> Option<Found<'static>> {
        values.iter().filter(|v| v.count_ones() == 1).find_map(|v| {
            self.claim_values
                .get(v)
                .map(|i| (*i, "value-bit", Pattern::Hex(*v)))
        })
    }

    pub(crate) fn named(software: &[Software], found: Option<Found<'_>>) -> Attribution {
        match found {
            Some((i, signature, pattern)) => Attribution {
                owner: software[i].id.clone(),
                evidence: Evidence {
                    signature,
                    pattern: pattern.to_string(),
                    strength: strength(signature),
                },
            },
            None => Attribution {
                owner: UNKNOWN.to_string(),
                evidence: Evidence {
                    signature: "none",
                    pattern: String::new(),
                    strength: "none",
                },
            },
        }
    }

    pub(crate) fn attribute(&self, software: &[Software], ctx: &RuleContext<'_>) -> Attribution {
        Self::named(software, self.hit(&RuleFacts::from(ctx)))
    }

    /// The owner of a rule (index into the registry's entries), the signature and the pattern
    /// that matched: [`Self::attribute`] without an allocation, for every rule with a mark
    /// operation. The kinds of evidence are tried in the same order; within one kind, cheap
    /// checks (a hash lookup by the chain name) run before the token hash of the rule's text.
    pub(crate) fn hit<'p>(&'p self, ctx: &RuleFacts<'p, '_>) -> Option<Found<'p>> {
        ctx.text
            .and_then(|t| self.quoted.find(t))
            .map(|(i, line)| (i, "rule", Pattern::Str(line)))
            .or_else(|| {
                self.chains
                    .get(ctx.chain)
                    .map(|i| (*i, "chain", Pattern::Str(ctx.chain)))
            })
            .or_else(|| {
                let c = ctx.comment?;
                self.comment_prefixes
                    .iter()
                    .find(|(p, _)| c.starts_with(p.as_str()))
                    .or_else(|| self.comments.iter().find(|(p, _)| c.contains(p.as_str())))
                    .map(|(p, i)| (*i, "comment", Pattern::Str(p)))
            })
            .or_else(|| {
                if !ctx.nft {
                    return None;
                }
                self.tables
                    .get(ctx.table)
                    .map(|i| (*i, "table", Pattern::Str(ctx.table)))
            })
            .or_else(|| self.strong_value(ctx.values))
            .or_else(|| {
                if !ctx.nft {
                    return None;
                }
                self.table_prefixes
                    .iter()
                    .find(|(p, _)| ctx.table.starts_with(p.as_str()))
                    .map(|(p, i)| (*i, "table-prefix", Pattern::Str(p)))
            })
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| ctx.chain.starts_with(p.as_str()))
                    .map(|(p, i)| (*i, "chain-prefix", Pattern::Str(p)))
            })
            .or_else(|| {
                let (i, _, pattern) = self.chain_owner(ctx.jump?)?;
                Some((i, "jump", pattern))
            })
            .or_else(|| self.claim_mask(ctx.masks))
            .or_else(|| self.bit_value(ctx.values))
            .or_else(|| {
                ctx.interfaces.iter().find_map(|iface| {
                    let name = iface.trim_end_matches(['+', '*']);
                    self.devices
                        .iter()
                        .find(|(d, _)| !d.is_empty() && name.starts_with(d.as_str()))
                        .map(|(d, i)| (*i, "device", Pattern::Str(d)))
                })
            })
    }
}

/// A match: the index of the software, the signature, the pattern.
pub(crate) type Found<'p> = (usize, &'static str, Pattern<'p>);

/// The pattern of a match, borrowed or as numbers, formatted ([`Evidence::pattern`]) only when
/// an [`Attribution`] is asked for: the audit counts patterns per owner without formatting one
/// per rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Pattern<'p> {
    /// A name or line, as it is.
    Str(&'p str),
    /// A value, as [`crate::model::hex`] prints it.
    Hex(u32),
    /// A `value/mask` pattern: `0xe00/0xf00`.
    ValueMask(u32, u32),
    /// An `ip rule` priority range: `5210-5270`, or `9` for a range of one.
    Range(u32, u32),
}

impl Pattern<'_> {
    /// Equality, by pointer first for borrowed names (the registry's patterns).
    pub(crate) fn same(&self, other: &Pattern<'_>) -> bool {
        match (self, other) {
            (Pattern::Str(a), Pattern::Str(b)) => std::ptr::eq(*a, *b) || a == b,
            (a, b) => a == b,
        }
    }
}

impl std::fmt::Display for Pattern<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Pattern::Str(s) => f.write_str(s),
            Pattern::Hex(v) => write!(f, "{}", Bits(v)),
            Pattern::ValueMask(v, m) => write!(f, "{v:#x}/{m:#x}"),
            Pattern::Range(lo, hi) if lo == hi => write!(f, "{lo}"),
            Pattern::Range(lo, hi) => write!(f, "{lo}-{hi}"),
        }
    }
}

/// [`RuleContext`] with the rule's strings (`'s`, from the ruleset and its input text) apart
/// from the per-rule lists (`'x`, scratch buffers the caller reuses from rule to rule), so a
/// match can borrow the strings past the next rule.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RuleFacts<'s, 'x> {
    pub(crate) table: &'s str,
    pub(crate) nft: bool,
    pub(crate) chain: &'s str,
    pub(crate) comment: Option<&'s str>,
    pub(crate) jump: Option<&'s str>,
    pub(crate) interfaces: &'x [&'s str],
    pub(crate) values: &'x [u32],
    pub(crate) masks: &'x [[u32; 2]],
    pub(crate) text: Option<&'s str>,
}

impl<'a> From<&RuleContext<'a>> for RuleFacts<'a, 'a> {
    fn from(c: &RuleContext<'a>) -> Self {
        RuleFacts {
            table: c.table,
            nft: c.nft,
            chain: c.chain,
            comment: c.comment,
            jump: c.jump,
            interfaces: c.interfaces,
            values: c.values,
            masks: c.masks,
            text: c.text,
        }
    }
}

#[cfg(test)]
#[path = "attribution_reference.rs"]
mod reference;
