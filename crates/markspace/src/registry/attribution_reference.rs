//! The attribution as it was before [`Matcher::hit`] (each match formatted its pattern into a
//! `String`, every rule built three vectors): kept as the reference the fast one is compared
//! with on generated nodes (the attribution tests beside the parsers, and `analysis::oracle_tests`).

use super::super::schema::Software;
use super::{strength, Attribution, Evidence, Matcher, RuleContext, UNKNOWN};

impl Matcher {
    fn chain_owner_ref(&self, chain: &str) -> Option<(usize, &'static str, String)> {
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
    pub(crate) fn attribute_touchpoint_ref(
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
            // A registered `ip rule` priority range before values: small fwmark values are
            // reused (mwan3's 0x500/0x3f00 is its fifth interface, not Cilium's 0x500).
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
            .or_else(|| self.strong_value_ref(values))
            .or_else(|| self.bit_value_ref(values))
            .or_else(|| {
                let t = ctx.table.as_deref().filter(|_| ip_rule)?;
                self.rule_tables
                    .get(t)
                    .map(|i| (*i, "routing-table", t.to_string()))
            })
            .or_else(|| self.kind_claim_ref(subsystem, values))
            .or_else(|| {
                let name = ctx.device.as_deref()?.trim_end_matches(['+', '*']);
                self.devices
                    .iter()
                    .find(|(d, _)| !d.is_empty() && name.starts_with(d.as_str()))
                    .map(|(d, i)| (*i, "device", d.clone()))
            });
        Self::named_ref(software, found)
    }

    /// A strong value: a signature value, a multi-bit value one software's claims name, or a
    /// `value/mask` pattern.
    fn strong_value_ref(&self, values: &[u32]) -> Option<(usize, &'static str, String)> {
        values
            .iter()
            .find_map(|v| {
                self.values
                    .get(v)
                    .map(|i| (*i, "value", crate::model::hex(*v)))
            })
            .or_else(|| {
                values.iter().filter(|v| v.count_ones() > 1).find_map(|v| {
                    self.claim_values
                        .get(v)
                        .map(|i| (*i, "value", crate::model::hex(*v)))
                })
            })
            .or_else(|| {
                values.iter().find_map(|c| {
                    self.patterns
                        .iter()
                        .find(|(v, m, _)| c & m == *v)
                        .map(|(v, m, i)| (*i, "value-mask", format!("{v:#x}/{m:#x}")))
                })
            })
    }

    /// A touchpoint value equal to the bits of exactly one software's claim of that touchpoint's
    /// kind (Weave's xfrm `mark 0x20000/0x20000` and its xfrm-mark claim 0x20000): medium.
    fn kind_claim_ref(
        &self,
        subsystem: crate::touchpoint::Subsystem,
        values: &[u32],
    ) -> Option<(usize, &'static str, String)> {
        use super::super::schema::ClaimKind as K;
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
            unique.then(|| (*i, "claim", crate::model::hex(*bits)))
        })
    }

    /// Bits a rule reads or writes that are exactly the bits of one software's claim on that
    /// field (Tailscale's `meta mark & 0x00ff0000`, AWS VPC CNI's connmark `0x80`): medium.
    fn claim_mask_ref(&self, masks: &[[u32; 2]]) -> Option<(usize, &'static str, String)> {
        masks.iter().find_map(|m| {
            (0..2).find_map(|f| {
                self.claim_bits[f]
                    .get(&m[f])
                    .map(|i| (*i, "claim", crate::model::hex(m[f])))
            })
        })
    }

    /// A single-bit value one software's claims name (`0x4000`): medium.
    fn bit_value_ref(&self, values: &[u32]) -> Option<(usize, &'static str, String)> {
        values.iter().filter(|v| v.count_ones() == 1).find_map(|v| {
            self.claim_values
                .get(v)
                .map(|i| (*i, "value-bit", crate::model::hex(*v)))
        })
    }

    fn named_ref(
        software: &[Software],
        found: Option<(usize, &'static str, String)>,
    ) -> Attribution {
        match found {
            Some((i, signature, pattern)) => Attribution {
                owner: software[i].id.clone(),
                evidence: Evidence {
                    signature,
                    pattern,
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

    pub(crate) fn attribute_ref(
        &self,
        software: &[Software],
        ctx: &RuleContext<'_>,
    ) -> Attribution {
        let found = ctx
            .text
            .and_then(|t| self.quoted.find_ref(t))
            .map(|(i, line)| (i, "rule", line))
            .or_else(|| {
                self.chains
                    .get(ctx.chain)
                    .map(|i| (*i, "chain", ctx.chain.to_string()))
            })
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
            })
            .or_else(|| self.strong_value_ref(ctx.values))
            .or_else(|| {
                if !ctx.nft {
                    return None;
                }
                self.table_prefixes
                    .iter()
                    .find(|(p, _)| ctx.table.starts_with(p.as_str()))
                    .map(|(p, i)| (*i, "table-prefix", p.clone()))
            })
            .or_else(|| {
                self.prefixes
                    .iter()
                    .find(|(p, _)| ctx.chain.starts_with(p.as_str()))
                    .map(|(p, i)| (*i, "chain-prefix", p.clone()))
            })
            .or_else(|| {
                let (i, _, pattern) = self.chain_owner_ref(ctx.jump?)?;
                Some((i, "jump", pattern))
            })
            .or_else(|| self.claim_mask_ref(ctx.masks))
            .or_else(|| self.bit_value_ref(ctx.values))
            .or_else(|| {
                ctx.interfaces.iter().find_map(|iface| {
                    let name = iface.trim_end_matches(['+', '*']);
                    self.devices
                        .iter()
                        .find(|(d, _)| !d.is_empty() && name.starts_with(d.as_str()))
                        .map(|(d, i)| (*i, "device", d.clone()))
                })
            });
        Self::named_ref(software, found)
    }
}

/// The old `Registry::attribute_rule`: three vectors per rule and [`Matcher::attribute_ref`].
fn attribute_rule_ref(
    reg: &super::super::Registry,
    set: &crate::ruleset::Ruleset,
    id: crate::ruleset::RuleId,
    text: &str,
) -> Attribution {
    use crate::ruleset::{Origin, Verdict};
    let rule = set.rule(id);
    let chain = set.chain(rule.chain);
    let table = set.table(chain.table);
    let jump = match &rule.verdict {
        Verdict::Jump(c) | Verdict::Goto(c) => Some(&*set.chain(*c).name),
        _ => None,
    };
    let labels = rule.labels();
    let interfaces: Vec<&str> = labels
        .map_or(&[][..], |l| &l.interfaces)
        .iter()
        .map(|i| &**i)
        .collect();
    let values = crate::model::constant_values(rule.ops());
    let masks = super::super::op_masks(rule.ops());
    reg.matcher.attribute_ref(
        &reg.software,
        &RuleContext {
            table: &table.name,
            nft: table.origin == Origin::Nftables,
            chain: &chain.name,
            comment: rule.comment(),
            jump,
            interfaces: &interfaces,
            values: &values,
            masks: &masks,
            text: Some(text),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{kube_proxy_nft, KubeProxy};
    use crate::model::Node;
    use crate::registry::{Registry, RuleScratch};
    use crate::snapshot::NodeLoader;

    fn load_text(name: &str, text: &str) -> Node {
        let mut l = NodeLoader::new();
        l.add_text(name, text.as_bytes().to_vec(), true)
            .expect("a generated node");
        l.finish()
    }

    /// Every rule and touchpoint with mark operations of `node`: the old attribution, the new
    /// one through `attribute_rule`/`attribute_touchpoint`, and the allocation-free hit with
    /// its pattern formatted. Returns the number of rules and touchpoints compared; adds the
    /// signatures seen to `seen`.
    fn compare(
        reg: &Registry,
        node: &Node,
        what: &str,
        seen: &mut std::collections::BTreeSet<&'static str>,
    ) -> usize {
        let set = &node.ruleset;
        let mut scratch = RuleScratch::default();
        let mut n = 0;
        for (i, rule) in set.rules.iter().enumerate() {
            if rule.ops().is_empty() {
                continue;
            }
            let id = crate::ruleset::RuleId(i as u32);
            let text = node.sources.text(rule.span);
            let old = attribute_rule_ref(reg, set, id, text);
            seen.insert(old.evidence.signature);
            assert_eq!(reg.attribute_rule(set, id, text), old, "{what}: {text}");
            let hit = reg.rule_hit(set, id, text, &mut scratch);
            assert_eq!(Matcher::named(&reg.software, hit), old, "{what}: {text}");
            n += 1;
        }
        for tp in &node.touchpoints {
            if tp.ops.is_empty() {
                continue;
            }
            let values = crate::model::constant_values(&tp.ops);
            let old = reg.matcher.attribute_touchpoint_ref(
                &reg.software,
                tp.subsystem,
                &tp.context,
                &values,
            );
            seen.insert(old.evidence.signature);
            seen.insert("(touchpoint)");
            assert_eq!(
                reg.attribute_touchpoint(tp.subsystem, &tp.context, &values),
                old,
                "{what}: {tp:?}"
            );
            let hit = reg.touchpoint_hit(tp.subsystem, &tp.context, &values);
            assert_eq!(Matcher::named(&reg.software, hit), old, "{what}: {tp:?}");
            n += 1;
        }
        n
    }

    #[test]
    fn fast_and_reference_attribution_agree_on_generated_nodes() {
        let reg = Registry::embedded().expect("registry");
        let texts = crate::analysis::oracle_tests::generated_nodes(true);
        let (mut n, mut seen) = (0, Default::default());
        for text in &texts {
            n += compare(&reg, &load_text("node.txt", text), "generated", &mut seen);
        }
        let nft = kube_proxy_nft(KubeProxy::with_lines(2000, 2));
        n += compare(
            &reg,
            &load_text("node.nft", &nft),
            "generated nft",
            &mut seen,
        );
        assert!(n > 2000, "only {n} rules compared");
        for s in ["rule", "chain", "comment", "table"] {
            assert!(seen.contains(s), "no {s} signature among {seen:?}");
        }
    }

    /// The same on real inputs: the pastes of `tests/pastes` (many formats, touchpoints among
    /// them) and the example nodes, where the quoted rules, comments, tables and touchpoint
    /// signatures match.
    #[test]
    fn fast_and_reference_attribution_agree_on_pastes_and_examples() {
        let reg = Registry::embedded().expect("registry");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("tests/pastes")];
        let nodes = root.join("../../examples/nodes");
        let mut entries: Vec<_> = std::fs::read_dir(&nodes)
            .expect("examples/nodes")
            .map(|e| e.expect("an entry").path())
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        dirs.extend(entries);
        let (mut n, mut files, mut seen) = (0, 0, Default::default());
        for dir in &dirs {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .expect("a directory")
                .map(|e| e.expect("an entry").path())
                .filter(|p| p.is_file())
                .collect();
            paths.sort();
            for p in paths {
                let mut l = NodeLoader::new();
                if l.add_path(&p).is_err() {
                    continue;
                }
                files += 1;
                n += compare(&reg, &l.finish(), &p.display().to_string(), &mut seen);
            }
            // The directory as one node too (snapshots are read that way).
            let mut l = NodeLoader::new();
            if l.add_path(dir).is_ok() {
                n += compare(&reg, &l.finish(), &dir.display().to_string(), &mut seen);
            }
        }
        assert!(files > 20 && n > 200, "{files} files, {n} rules compared");
        eprintln!("{files} files, {n} rules and touchpoints, signatures {seen:?}");
        for s in ["rule", "chain", "comment", "value", "(touchpoint)", "none"] {
            assert!(seen.contains(s), "no {s} signature among {seen:?}");
        }
    }
}
