//! The bundled example nodes, as the README uses them.

use crate::util::{findings, owner, root, run};

fn example(name: &str) -> String {
    root()
        .join("examples/nodes")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn tailscale_with_calico_shows_the_known_conflict() {
    let r = run(&["audit", "--format", "json", &example("tailscale-calico")]);
    check!(r, r.code == 1);
    let j = r.json();
    let hit = findings(&j, "MS001").into_iter().any(|f| {
        let owners: Vec<&str> = f["owners"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.as_str())
            .collect();
        let bits =
            u32::from_str_radix(f["bits"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        f["severity"] == "error"
            && owners.contains(&"tailscale")
            && owners.contains(&"calico")
            && bits & 0x40000 != 0
    });
    check!(r, hit);
}

#[test]
fn kube_proxy_with_calico_is_clean() {
    let r = run(&["audit", "--format", "json", &example("kube-proxy-calico")]);
    check!(r, r.code == 0);
    let j = r.json();
    check!(
        r,
        owner(&j, "kube-proxy").is_some_and(|o| o["writes"]["mark"] == "0x00004000")
    );
    check!(r, owner(&j, "calico").is_some());
}

#[test]
fn cilium_with_kube_proxy_attributes_both() {
    let r = run(&["audit", "--format", "json", &example("cilium-kube-proxy")]);
    let j = r.json();
    check!(r, owner(&j, "cilium").is_some());
    check!(r, owner(&j, "kube-proxy").is_some());
    check!(r, r.code == 0 || r.code == 1);
}

#[test]
fn tailscale_mark_survives_masquerade_and_calico_accept_shadows_it() {
    let r = run(&["audit", "--format", "json", &example("tailscale-calico")]);
    let j = r.json();
    let survives = findings(&j, "MS022");
    check!(
        r,
        survives
            .iter()
            .any(|f| f["owners"][0] == "tailscale" && f["bits"] == "0x00040000")
    );
    let shadowed = findings(&j, "MS020");
    check!(
        r,
        shadowed
            .iter()
            .any(|f| f["owners"][0] == "calico" && f["owners"][1] == "tailscale")
    );
    // kube-proxy clears its bit after MASQUERADE: no MS022 for it.
    check!(r, !survives.iter().any(|f| f["owners"][0] == "kube-proxy"));
}

#[test]
fn nft_only_node_shows_tailscale_endianness_bug_and_mullvad_whole_mark() {
    let r = run(&[
        "audit",
        "--format",
        "json",
        &example("nft-tailscale-mullvad"),
    ]);
    check!(r, r.code == 1);
    let j = r.json();
    let bits = |f: &serde_json::Value| {
        u32::from_str_radix(f["bits"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    check!(
        r,
        owner(&j, "tailscale").is_some_and(|o| o["writes"]["mark"] == "0x0000ff00")
    );
    check!(
        r,
        findings(&j, "MS008")
            .into_iter()
            .any(|f| f["owners"][0] == "tailscale" && bits(f) == 0x0000_ff00)
    );
    check!(
        r,
        findings(&j, "MS001").into_iter().any(|f| bits(f) == 0x4000)
    );
    check!(
        r,
        findings(&j, "MS003")
            .into_iter()
            .any(|f| f["owners"][0] == "mullvad" && f["severity"] == "error")
    );
    // No knob moves Mullvad's value: the fix says why, with the registry's source.
    check!(
        r,
        r.stdout.contains(
            "found no registered knob of mullvad that moves it to free bits: TUNNEL_FWMARK"
        ) && r
            .stdout
            .contains("(source: mullvad/mullvadvpn-app mullvad-types/src/lib.rs")
    );
}
