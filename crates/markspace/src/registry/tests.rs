//! Checks of the embedded registry data (attribution of real rule lines through the parsers is
//! tested in `sources/attribution_tests.rs`).

use super::{validate, Registry, UNKNOWN};

fn registry() -> Registry {
    Registry::embedded().expect("embedded registry parses")
}

#[test]
fn embedded_registry_is_valid() {
    let reg = registry();
    let problems = validate(&reg);
    assert!(
        problems.is_empty(),
        "registry problems:\n{}",
        problems
            .iter()
            .map(|p| format!("{}: {}", p.entry, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn core_software_is_registered() {
    let reg = registry();
    for id in [
        "kube-proxy",
        "kubelet",
        "calico",
        "cilium",
        "tailscale",
        "wireguard",
    ] {
        assert!(reg.get(id).is_some(), "missing registry entry {id}");
    }
    assert!(reg
        .get("kube-proxy")
        .is_some_and(|s| s.claimed(crate::model::Field::Mark) & 0x4000 != 0));
}

#[test]
fn bug_claims_are_not_claimed() {
    let reg = registry();
    let ts = reg.get("tailscale").expect("tailscale entry");
    assert!(ts.claims.iter().any(|c| c.bug && c.bits.0 == 0x0000_ff00));
    assert_eq!(ts.claimed(crate::model::Field::Mark) & 0x0000_ff00, 0);
}

#[test]
fn touchpoint_attribution_by_device_process_pattern() {
    use crate::touchpoint::{Subsystem, TouchContext};
    let reg = registry();
    let who = |s: Subsystem, ctx: TouchContext, values: &[u32]| {
        reg.attribute_touchpoint(s, &ctx, values).owner
    };
    let wg0 = TouchContext {
        device: Some("wg0".into()),
        ..TouchContext::default()
    };
    assert_eq!(who(Subsystem::Wireguard, wg0, &[0xca6c]), "wireguard");
    let ts = TouchContext {
        process: Some("tailscaled".into()),
        ..TouchContext::default()
    };
    assert_eq!(who(Subsystem::Socket, ts, &[0x80000]), "tailscale");
    let envoy = TouchContext {
        process: Some("cilium-envoy".into()),
        ..TouchContext::default()
    };
    assert_eq!(who(Subsystem::Socket, envoy, &[0x80b00]), "cilium");
    // Cilium's IPsec selector with key index 9: the fixed 0xe00 nibble names it.
    assert_eq!(
        who(Subsystem::Xfrm, TouchContext::default(), &[0x9e00]),
        "cilium"
    );
    // A tc priority is not an ip rule priority.
    let tc = TouchContext {
        priority: Some(5210),
        ..TouchContext::default()
    };
    assert_eq!(who(Subsystem::Tc, tc, &[0x1]), UNKNOWN);
    let prog = TouchContext {
        program: Some("cil_from_netdev".into()),
        ..TouchContext::default()
    };
    assert_eq!(who(Subsystem::Bpf, prog, &[]), "cilium");
}

/// A minimal entry with one knob, for the load-time checks of knob defaults.
fn entry_with_knob(kind: &str, default: &str) -> String {
    format!(
        "id = \"x\"\nname = \"X\"\ncategory = \"cni\"\nuses_marks = false\nsource = \"s\"\n\n\
         [[knobs]]\nid = \"k\"\nname = \"K\"\nwhere = \"flag\"\ndefault = \"{default}\"\n\
         kind = \"{kind}\"\nsource = \"s\"\n"
    )
}

#[test]
fn knob_defaults_are_typed_at_load() {
    use super::schema::{KnobDefault, KnobKind};
    let load = |kind: &str, default: &str| {
        let mut reg = Registry::default();
        reg.add_file("registry/x.toml", &entry_with_knob(kind, default))
            .map(|()| reg.software[0].knobs[0].clone())
    };
    let k = load("bit", "14").unwrap();
    assert_eq!(
        (k.kind, k.typed_default),
        (KnobKind::Bit, KnobDefault::Bit(14))
    );
    assert_eq!(
        load("mask", "0xffff0000").unwrap().typed_default,
        KnobDefault::Mask(crate::model::Bits(0xffff_0000))
    );
    assert_eq!(
        load("value", "0x80").unwrap().typed_default,
        KnobDefault::Value(Some(crate::model::Bits(0x80)))
    );
    for prose in ["unset", "0 (unset)", "0/0x00000000 (unused); if_id 0"] {
        assert_eq!(
            load("value", prose).unwrap().typed_default,
            KnobDefault::Value(None),
            "{prose}"
        );
    }
    assert_eq!(load("bool", "No").unwrap().typed_default, KnobDefault::Text);
    for (kind, bad) in [
        ("bit", "32"),
        ("bit", "x"),
        ("mask", "0xfffff0000"),
        ("value", "0x8g"),
    ] {
        let err = load(kind, bad).unwrap_err().to_string();
        assert!(
            err.starts_with("registry/x.toml: ") && err.contains("knob `k`") && err.contains(bad),
            "{kind} {bad}: {err}"
        );
    }
    let err = load("colour", "1").unwrap_err().to_string();
    assert!(err.contains("colour"), "{err}");
}

/// The validation messages of one entry's text.
fn problems_of(text: &str) -> Vec<String> {
    let mut reg = Registry::default();
    reg.add_file("registry/x.toml", text).unwrap();
    super::validate(&reg)
        .into_iter()
        .map(|p| p.message)
        .collect()
}

#[test]
fn rejects_when_conditions_over_unknown_knobs_and_bad_same_as() {
    let text = "id = \"x\"\nname = \"X\"\ncategory = \"vpn\"\nsource = \"s\"\n\
         [[claims]]\nid = \"c\"\nkind = \"mark\"\nbits = \"0x1\"\naccess = \"write\"\nstyle = \"bitwise\"\n\
         use = \"other\"\nsource = \"s\"\nwhen = [\"nosuch=true\"]\n\
         [[knobs]]\nid = \"k\"\nname = \"K\"\nwhere = \"flag\"\ndefault = \"0\"\nkind = \"bit\"\n\
         claims = [\"c\"]\nsource = \"s\"\n  [knobs.plan]\n  same_as = \"nosuch/knob\"\n";
    let problems = problems_of(text);
    assert!(
        problems
            .iter()
            .any(|m| m.contains("`when` condition `nosuch=true`")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|m| m.contains("plan.same_as `nosuch/knob`")),
        "{problems:?}"
    );
}

#[test]
fn fixed_statements_are_checked() {
    let text = "id = \"x\"\nname = \"X\"\ncategory = \"vpn\"\nsource = \"s\"\n\
         [[claims]]\nid = \"c\"\nkind = \"mark\"\nbits = \"0x1\"\naccess = \"write\"\nstyle = \"bitwise\"\n\
         use = \"other\"\nsource = \"s\"\n\
         [[claims]]\nid = \"d\"\nkind = \"mark\"\nbits = \"0x2\"\naccess = \"write\"\nstyle = \"bitwise\"\n\
         use = \"other\"\nsource = \"s\"\n\
         [[knobs]]\nid = \"k\"\nname = \"K\"\nwhere = \"flag\"\ndefault = \"0\"\nkind = \"bit\"\n\
         claims = [\"c\"]\nsource = \"s\"\n\
         [[fixed]]\nclaims = [\"c\", \"nosuch\"]\nreason = \"compiled in\"\nsource = \"s\"\n\
         [[fixed]]\nclaims = [\"d\"]\nreason = \"compiled in\"\nsource = \" \"\n";
    let problems = problems_of(text);
    for want in [
        "fixed statement names unknown claim `nosuch`",
        "claim `c` is listed fixed but a knob moves it",
        "fixed statement for `d` has no source",
    ] {
        assert!(problems.iter().any(|m| m == want), "{want}: {problems:?}");
    }
    // A fixed statement needs a reason and a source in the file.
    let bad = text.replace(
        "reason = \"compiled in\"\nsource = \"s\"\n",
        "source = \"s\"\n",
    );
    assert!(Registry::default()
        .add_file("registry/x.toml", &bad)
        .is_err());
}

/// Every claim of an entry that uses marks is either moved by a knob `plan` can turn, or covered
/// by a `[[fixed]]` statement with a reason and a source: `plan` never falls back to an
/// unsourced "no knob moves these bits".
#[test]
fn every_entry_has_a_knob_or_a_sourced_fixed_statement() {
    let reg = registry();
    let mut missing = Vec::new();
    for s in reg.software.iter().filter(|s| s.uses_marks) {
        for c in s.claims.iter().filter(|c| !c.bug) {
            let fixed = s
                .fixed_for(&c.id)
                .is_some_and(|f| !f.reason.trim().is_empty() && !f.source.trim().is_empty());
            if !s.knob_moves(c) && !fixed {
                missing.push(format!("{}/{}", s.id, c.id));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "claims with neither a knob that moves them nor a [[fixed]] statement:\n{}",
        missing.join("\n")
    );
}
