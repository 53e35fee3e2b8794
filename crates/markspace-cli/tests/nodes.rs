//! A directory holding several nodes is never merged into one: it is refused with the list of
//! nodes, or audited node by node with `--each`.

use crate::util::{root, run};

#[test]
fn a_directory_of_nodes_is_refused_or_audited_each() {
    let dir = root().join("examples/nodes");
    let dir = dir.to_str().unwrap();
    let r = run(&["audit", dir]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for node in [
        "tailscale-calico",
        "wireguard-kubefirewall",
        "cilium-kube-proxy",
    ] {
        assert!(r.stderr.contains(node), "{}", r.stderr);
    }
    assert!(r.stderr.contains("--each"), "{}", r.stderr);
    assert!(r.stdout.is_empty());

    let r = run(&["audit", "--each", "--format", "json", dir]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let json = r.json();
    let nodes = json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6);
    assert_eq!(json["exit_status"], 1);
    for n in nodes {
        let report = &n["report"];
        // Each node's report holds only its own inputs.
        let path = n["path"].as_str().unwrap();
        for input in report["inputs"].as_array().unwrap() {
            assert!(
                input["file"].as_str().unwrap().starts_with(path),
                "{input} in {path}"
            );
        }
    }
    let r = run(&["audit", "--each", dir]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("6 node(s) audited; exit status per node:"),
        "{}",
        r.stdout
    );
    // One node's directory is audited as before.
    let r = run(&[
        "audit",
        "--fail-on",
        "never",
        &format!("{dir}/tailscale-calico"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
