//! The plan on the embedded registry: the acceptance cases and the solver's edges.

use super::*;
use crate::registry::Registry;

fn registry() -> Registry {
    Registry::embedded().expect("embedded registry")
}

fn request(ids: &[&str]) -> Request {
    Request {
        software: ids
            .iter()
            .map(|s| Wanted::parse(s).expect("valid"))
            .collect(),
        ..Request::default()
    }
}

fn planned(plan: &Plan, owner: &str, field: crate::model::Field) -> u32 {
    plan.allocations
        .iter()
        .filter(|a| a.owner.split('+').any(|o| o == owner))
        .flat_map(|a| a.bits.iter())
        .filter(|b| b.field == field && b.namespace == crate::registry::schema::Namespace::Host)
        .fold(0, |x, b| x | b.planned.0)
}

/// Why the unit holding `claim` (`software/claim`) is fixed; empty when it moves.
fn fixed_of<'p>(plan: &'p Plan, claim: &str) -> &'p str {
    plan.allocations
        .iter()
        .find(|a| a.claims.iter().any(|c| c == claim))
        .unwrap_or_else(|| panic!("no allocation holds {claim}"))
        .fixed
        .as_deref()
        .unwrap_or("")
}

/// No two allocations share a bit of one slot in a feasible plan unless they share an owner
/// (or cooperate by design) and already shared it by default.
fn assert_disjoint(reg: &Registry, plan: &Plan) {
    for (i, a) in plan.allocations.iter().enumerate() {
        for b in &plan.allocations[i + 1..] {
            let owners_a: Vec<&str> = a.owner.split('+').collect();
            let owners_b: Vec<&str> = b.owner.split('+').collect();
            let friendly = owners_a.iter().any(|x| owners_b.contains(x))
                || owners_a
                    .iter()
                    .all(|x| owners_b.iter().all(|y| reg.by_design(x, y)));
            for x in &a.bits {
                for y in &b.bits {
                    if x.field == y.field && x.namespace == y.namespace {
                        let shared_before = x.default.0 & y.default.0 != 0;
                        if friendly && shared_before {
                            continue;
                        }
                        assert_eq!(
                            x.planned.0 & y.planned.0,
                            0,
                            "{} and {} share bits",
                            a.owner,
                            b.owner
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn calico_moves_its_mask_off_tailscales_fixed_byte() {
    let reg = registry();
    let plan = plan(&reg, &request(&["calico", "tailscale"])).unwrap();
    assert!(plan.feasible);
    assert_eq!(plan.changes, 1);
    let s = plan.settings.iter().find(|s| s.changed).unwrap();
    assert_eq!(
        (s.software.as_str(), s.knob.as_str()),
        ("calico", "mark-mask")
    );
    assert_eq!(s.value, "0xff000000");
    let calico = planned(&plan, "calico", crate::model::Field::Mark);
    assert_eq!(calico & 0x00ff_0000, 0);
    assert_eq!(
        planned(&plan, "tailscale", crate::model::Field::Mark),
        0x00ff_0000
    );
    let felix = s
        .snippets
        .iter()
        .find(|x| x.syntax == "yaml")
        .expect("a FelixConfiguration snippet");
    assert_eq!(felix.text, "spec:\n  iptablesMarkMask: 0xff000000");
    assert_disjoint(&reg, &plan);
}

#[test]
fn nothing_changes_when_defaults_already_fit() {
    let plan = plan(&registry(), &request(&["calico", "kube-proxy"])).unwrap();
    assert!(plan.feasible);
    assert_eq!(plan.changes, 0);
}

#[test]
fn cilium_and_tailscale_cannot_coexist_and_the_core_names_fixed_claims() {
    let plan = plan(&registry(), &request(&["cilium", "tailscale"])).unwrap();
    assert!(!plan.feasible);
    let c = plan.conflict.as_ref().unwrap();
    assert_eq!(c.core.len(), 2, "{c:?}");
    assert!(c.core.iter().all(|a| a.fixed.is_some()));
    assert!(c.core.iter().any(|a| a.owner == "cilium"));
    assert!(c.core.iter().any(|a| a.owner == "tailscale"));
    assert!(c.core.iter().all(|a| !a.sources.is_empty()));
    assert!(c.reason.contains("packet mark"), "{}", c.reason);
}

#[test]
fn wireguard_leaves_the_kubernetes_bits_at_kubelet_127() {
    let reg = registry();
    let plan = plan(&reg, &request(&["wireguard", "kube-proxy", "kubelet@1.27"])).unwrap();
    assert!(plan.feasible);
    assert_eq!(plan.changes, 1);
    let s = plan.settings.iter().find(|s| s.changed).unwrap();
    assert_eq!(
        (s.software.as_str(), s.knob.as_str()),
        ("wireguard", "fwmark")
    );
    let v = crate::model::Bits::parse(&s.value).unwrap().0;
    assert_eq!(v & 0xc000, 0);
    assert_eq!(s.snippets[0].text, format!("FwMark = 0x{v:x}"));
    assert_disjoint(&reg, &plan);
}

#[test]
fn kubelet_from_128_has_no_bits_to_plan() {
    let plan = plan(&registry(), &request(&["kubelet@1.28"])).unwrap();
    assert!(plan.allocations.is_empty(), "{:?}", plan.allocations);
}

#[test]
fn tied_knobs_move_together() {
    // kube-proxy's and kubelet's masquerade bits are one unit: Calico with a mask over both
    // kube bits forces a move of neither (Calico moves), and the unit lists both knobs.
    let plan = plan(&registry(), &request(&["kube-proxy", "kubelet@1.27"])).unwrap();
    assert!(plan.allocations.iter().any(|a| a
        .knob
        .as_deref()
        .is_some_and(|k| k.contains("kube-proxy/masquerade-bit")
            && k.contains("kubelet/iptables-masquerade-bit"))));
}

#[test]
fn pod_namespace_claims_do_not_meet_host_claims() {
    // Istio's sidecar marks 1337 (0x539) live in pods; WireGuard's 0xca6c shares bits with it.
    let plan = plan(&registry(), &request(&["istio", "wireguard"])).unwrap();
    assert!(plan.feasible);
    assert_eq!(plan.changes, 0);
}

#[test]
fn kept_software_does_not_move() {
    let mut req = request(&["calico", "tailscale"]);
    req.keep.push("calico".into());
    let plan = plan(&registry(), &req).unwrap();
    assert!(!plan.feasible);
}

#[test]
fn settings_switch_claims_and_fixed_values_move_them() {
    let mut req = request(&["calico", "tailscale"]);
    req.settings
        .push(SetKnob::parse("calico.mark-mask=0x0000ff00").unwrap());
    let plan = plan(&registry(), &req).unwrap();
    assert!(plan.feasible);
    assert_eq!(plan.changes, 0);
    assert_eq!(
        planned(&plan, "calico", crate::model::Field::Mark),
        0x0000_ff00
    );
}

#[test]
fn unknown_ids_and_knobs_are_errors() {
    assert!(plan(&registry(), &request(&["nosuch"])).is_err());
    let mut req = request(&["calico"]);
    req.settings
        .push(SetKnob::parse("calico.nosuch=1").unwrap());
    assert!(plan(&registry(), &req).is_err());
    assert!(Wanted::parse("kubelet@x").is_err());
    assert!(SetKnob::parse("calico=1").is_err());
}

#[test]
fn planned_registry_moves_claims_and_rule_templates() {
    let reg = registry();
    let plan = plan(&reg, &request(&["calico", "tailscale"])).unwrap();
    let moved = remap::planned_registry(&reg, &plan);
    let calico = moved.get("calico").unwrap();
    assert_eq!(calico.claimed(crate::model::Field::Mark) & 0x00ff_0000, 0);
    assert!(calico
        .rules
        .iter()
        .any(|r| r.text.contains("--set-xmark 0x4000000/0x4000000")));
}

#[test]
fn whole_mark_rules_are_hazards_no_value_fixes() {
    // wg-quick's `ip rule not fwmark V` (no mask) and its unmasked connmark save/restore stay
    // whole-field whatever FwMark is: the plan lists them with the owners they meet.
    let plan = plan(
        &registry(),
        &request(&["wireguard", "kube-proxy", "kubelet@1.27"]),
    )
    .unwrap();
    let rule = plan
        .hazards
        .iter()
        .find(|h| h.claim == "wg-quick-rule")
        .expect("the unmasked ip rule is a hazard");
    assert_eq!(rule.meets, ["kube-proxy", "kubelet"]);
    assert!(plan.hazards.iter().any(|h| h.claim == "wg-quick-restore"));
    // Calico + Tailscale in iptables mode have none (Tailscale's whole nft rules need
    // firewall-mode=nftables).
    let plan2 = plan_of(&["calico", "tailscale"], &[]);
    assert!(plan2.hazards.is_empty(), "{:?}", plan2.hazards);
    let nft = plan_of(
        &["calico", "tailscale"],
        &["tailscale.firewall-mode=nftables"],
    );
    assert!(nft
        .hazards
        .iter()
        .any(|h| h.claim == "connmark-nft-restore"));
}

fn plan_of(ids: &[&str], set: &[&str]) -> Plan {
    let mut req = request(ids);
    req.settings = set.iter().map(|s| SetKnob::parse(s).unwrap()).collect();
    plan(&registry(), &req).unwrap()
}

#[test]
fn one_software_s_distinct_bits_stay_distinct() {
    // Twelve software where kube-proxy's masquerade bit and kubelet's drop bit both have to
    // move: they must not land on one bit.
    let reg = registry();
    let plan = plan_of(
        &[
            "calico",
            "kube-proxy",
            "kubelet@1.27",
            "tailscale",
            "wireguard",
            "aws-vpc-cni",
            "istio",
            "networkmanager-wireguard",
            "keepalived",
            // Not flannel: it reads 0x4000 as a literal, which pins kube-proxy's bit
            // (`literal_readers_pin_the_writers_knob`).
            "consul",
            "linkerd",
            "metallb",
        ],
        &[],
    );
    assert!(plan.feasible);
    let bit = |sw: &str, knob: &str| {
        plan.settings
            .iter()
            .find(|s| s.software == sw && s.knob == knob)
            .map(|s| s.value.clone())
    };
    assert_ne!(
        bit("kubelet", "iptables-drop-bit"),
        bit("kubelet", "iptables-masquerade-bit")
    );
    assert_eq!(
        bit("kube-proxy", "masquerade-bit"),
        bit("kubelet", "iptables-masquerade-bit")
    );
    assert_disjoint(&reg, &plan);
}

/// A claim no knob moves carries the registry's `[[fixed]]` reason and source into every output
/// form, never the bare "no knob moves these bits".
#[test]
fn fixed_claims_give_the_registrys_sourced_reason() {
    let reg = registry();
    let plan = plan(&reg, &request(&["calico", "tailscale", "kube-vip"])).unwrap();
    let why = fixed_of(&plan, "tailscale/fwmark-field");
    assert!(
        why.contains("LinuxFwmarkMask")
            && why.contains("source: tailscale/tailscale tsconst/linuxfw.go"),
        "{why}"
    );
    let vip = fixed_of(&plan, "kube-vip/wg-ctmark");
    assert!(vip.ends_with("; unverified)"), "{vip}");
    let json = serde_json::to_string(&plan).unwrap();
    for (form, out) in [
        ("text", render::text(&plan)),
        ("markdown", render::markdown(&plan)),
        ("html", crate::report::html::plan(&plan, None)),
        ("json", json),
    ] {
        assert!(
            out.contains("constants in tsconst/linuxfw.go")
                && out.contains("tsconst/linuxfw.go @ de9ec7ee"),
            "{form}: {out}"
        );
        assert!(!out.contains("no knob moves these bits"), "{form}: {out}");
    }
}

/// Flannel RETURNs packets carrying 0x4000 whatever kube-proxy's masqueradeBit says: with flannel
/// planned, kube-proxy's bit (and kubelet's, tied to it) stays where flannel looks, and a clash
/// that would need it moved has no assignment, naming flannel's source. A reader that follows
/// the owner's setting (CNI portmap through KUBE-MARK-MASQ) pins nothing, and a reader sharing
/// the bit by design (Kube-OVN, `cooperates_with`) keeps it with the owner.
#[test]
fn literal_readers_pin_the_writers_knob() {
    let reg = registry();
    // Docker's overlay mark 0xd0c4e3 has bit 14: kube-proxy moves when nothing reads its bit.
    let alone = plan(&reg, &request(&["kube-proxy", "docker"])).unwrap();
    assert!(alone.feasible && alone.changes == 1, "{alone:?}");
    let portmap = plan(&reg, &request(&["kube-proxy", "docker", "cni-portmap"])).unwrap();
    assert!(portmap.feasible, "{portmap:?}");
    let pinned = plan(&reg, &request(&["kube-proxy", "docker", "flannel"])).unwrap();
    assert!(!pinned.feasible, "{pinned:?}");
    let core = &pinned.conflict.as_ref().unwrap().core;
    assert!(core.iter().any(|a| a.owner == "kube-proxy"), "{core:?}");
    let why = fixed_of(&pinned, "kube-proxy/masquerade");
    assert!(
        why.starts_with("flannel reads kube-proxy's packet mark 0x00004000 as a literal")
            && why.contains("source: flannel-io/flannel"),
        "{why}"
    );
    // Tied by same_as: kubelet 1.27's masquerade bit is pinned with kube-proxy's.
    let tied = plan(&reg, &request(&["kube-proxy", "kubelet@1.27", "flannel"])).unwrap();
    let kubelet = fixed_of(&tied, "kubelet/masquerade");
    assert!(
        kubelet.contains("must equal kube-proxy/masquerade-bit, and flannel reads"),
        "{kubelet}"
    );
    // Reading a bit on purpose is no licence to share it: Cilium's IPsec key index writes
    // 0x4000 over kube-proxy's bit (cilium#8516), so there is no assignment.
    let mut ipsec = request(&["cilium", "kube-proxy"]);
    ipsec.settings = vec![SetKnob::parse("cilium.enable-ipsec=true").unwrap()];
    assert!(!plan(&reg, &ipsec).unwrap().feasible);
    // Kube-OVN uses kube-proxy's bit on purpose: both keep 0x4000, nothing moves.
    let ovn = plan(&reg, &request(&["kube-proxy", "kube-ovn"])).unwrap();
    assert!(ovn.feasible && ovn.changes == 0, "{ovn:?}");
    assert_eq!(
        planned(&ovn, "kube-proxy", crate::model::Field::Mark),
        0x4000
    );
}
