//! `markspace registry`.

use crate::util::run;

#[test]
fn list_json_has_every_entry_with_sources() {
    let r = run(&["registry", "list", "--format", "json"]);
    check!(r, r.code == 0);
    let j = r.json();
    check!(
        r,
        j["version"] == 1 && j["markspace"].is_string() && j["registry"]["digest"].is_string()
    );
    let list = j["software"].as_array().expect("a list");
    check!(r, list.len() >= 6);
    for s in list {
        check!(r, s["source"].as_str().is_some_and(|x| !x.is_empty()));
        for c in s["claims"].as_array().unwrap() {
            check!(r, c["source"].as_str().is_some_and(|x| !x.is_empty()));
        }
    }
}

#[test]
fn check_passes_on_the_embedded_registry() {
    let r = run(&["registry", "check"]);
    check!(r, r.code == 0);
}

#[test]
fn list_has_the_whole_field() {
    let r = run(&["registry", "list", "--format", "json"]);
    let j = r.json();
    check!(r, j["software"].as_array().is_some_and(|l| l.len() >= 45));
}

#[test]
fn who_0x4000_includes_kube_proxy() {
    for bits in ["0x4000", "14", "14-14"] {
        let r = run(&["registry", "who", bits, "--format", "json"]);
        check!(r, r.code == 0);
        let j = r.json();
        check!(
            r,
            j["claims"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["software"] == "kube-proxy" && h["overlap"] == "0x00004000")
        );
    }
    let r = run(&["registry", "who", "32"]);
    check!(r, r.code == 2 && r.stderr.contains("bit number"));
}

#[test]
fn decode_0x80b00_explains_cilium_and_tailscale() {
    let r = run(&["registry", "decode", "0x80B00", "--format", "json"]);
    check!(r, r.code == 0);
    let j = r.json();
    let hits = j["readings"].as_array().unwrap();
    let has = |sw: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        hits.iter().any(|h| h["software"] == sw && pred(h))
    };
    check!(
        r,
        has("cilium", &|h| h["number"][0] == "identity"
            && h["number"][1] == 8)
    );
    check!(
        r,
        has("cilium", &|h| h["meanings"].as_array().unwrap().iter().any(
            |m| m[0] == "0x00000b00" && m[1].as_str().unwrap().contains("PROXY_EGRESS")
        ))
    );
    check!(
        r,
        has("tailscale", &|h| h["meanings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m[0] == "0x00080000"))
    );
    let text = run(&["registry", "decode", "0x80B00"]);
    check!(text, text.stdout.contains("identity 8"));
}

#[test]
fn export_shows_istio_as_0x539() {
    let r = run(&["registry", "export"]);
    check!(r, r.code == 0);
    check!(
        r,
        r.stdout.contains("## Bitwise Mark Registry")
            && r.stdout.contains("## Non-Bitwise Mark Registry")
    );
    check!(
        r,
        r.stdout.contains("## Known conflicts") && r.stdout.contains("## Free bits")
    );
    check!(
        r,
        r.stdout
            .lines()
            .any(|l| l.contains("Istio") && l.contains("0x00000539"))
    );
    check!(r, !r.stdout.contains("0x1337 "));
    let j = run(&["registry", "export", "--format", "json"]).json();
    check!(r, j["software"].as_array().is_some_and(|s| s.len() >= 45));
}

#[test]
fn conflicts_between_tailscale_and_calico_name_the_incident() {
    let r = run(&[
        "registry",
        "conflicts",
        "tailscale",
        "calico",
        "--format",
        "json",
    ]);
    check!(r, r.code == 0);
    let j = r.json();
    check!(
        r,
        j["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["incidents"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i[0] == "tailscale-calico-0x40000"))
    );
    let bad = run(&["registry", "conflicts", "no-such-thing"]);
    check!(bad, bad.code == 2);
}

#[test]
fn every_json_document_carries_the_versions() {
    let example = crate::util::root().join("examples/nodes/tailscale-calico");
    let example = example.to_str().unwrap();
    for args in [
        &["registry", "list", "--format", "json"][..],
        &["registry", "show", "kube-proxy", "--format", "json"],
        &["registry", "who", "0x4000", "--format", "json"],
        &["registry", "decode", "0x80B00", "--format", "json"],
        &["registry", "conflicts", "--format", "json"],
        &["registry", "export", "--format", "json"],
        &["registry", "check", "--format", "json"],
        &["audit", "--fail-on", "never", "--format", "json", example],
        &["trace", example, "--format", "json"],
    ] {
        let r = run(args);
        check!(r, r.code == 0);
        let j = r.json();
        check!(r, j["version"] == 1);
        check!(r, j["markspace"] == env!("CARGO_PKG_VERSION"));
        check!(
            r,
            j["registry"]["entries"].as_u64().is_some_and(|n| n >= 45)
        );
        check!(
            r,
            j["registry"]["digest"]
                .as_str()
                .is_some_and(|d| d.len() == 16)
        );
    }
}

#[test]
fn show_lists_the_fixed_statements_with_their_sources() {
    let r = run(&["registry", "show", "tailscale"]);
    check!(r, r.code == 0);
    check!(
        r,
        r.stdout
            .contains("fixed fwmark-field, bypass-socket, bypass-rules")
            && r.stdout.contains("constants in tsconst/linuxfw.go")
            && r.stdout
                .contains("source: tailscale/tailscale tsconst/linuxfw.go @ de9ec7ee")
    );
    // An unverified statement says so.
    let r = run(&["registry", "show", "kube-vip"]);
    check!(
        r,
        r.code == 0
            && r.stdout
                .contains("The name of the listen-port setting was not checked [unverified]")
    );
    let j = run(&["registry", "show", "tailscale", "--format", "json"]).json();
    let fixed = &j["software"]["fixed"][0];
    check!(
        r,
        fixed["claims"][0] == "fwmark-field"
            && fixed["source"]
                .as_str()
                .is_some_and(|s| s.contains("tsconst/linuxfw.go"))
            && fixed["verified"] == true
    );
}
