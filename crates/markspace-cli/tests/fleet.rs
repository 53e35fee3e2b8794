//! `markspace fleet`: 200 generated nodes of three layouts are grouped exactly; outliers are
//! named; an unreadable node is listed and gives exit 3; the formats.

use markspace::generate::{iptables_save, Calico, KubeProxy, Node};

use crate::util::{run, Dir};

/// Node `i` of the generated fleet: 140 kube-proxy + Calico, 40 kube-proxy + Calico + Tailscale,
/// 20 Cilium + kube-proxy; the sizes differ from node to node (services, endpoints) so that
/// only the layout can group them.
fn fleet_node(i: usize) -> (&'static str, Node) {
    let kube_proxy = Some(KubeProxy {
        services: 20 + i % 13 * 5,
        endpoints: 1 + i % 3,
    });
    let calico = Some(Calico {
        endpoints: 5 + i % 11,
        policies: 10 + i % 7,
    });
    match i % 20 {
        0 | 10 => (
            "cilium",
            Node {
                kube_proxy,
                cilium: true,
                ..Default::default()
            },
        ),
        1..=4 => (
            "calico-tailscale",
            Node {
                kube_proxy,
                calico,
                tailscale: true,
                ..Default::default()
            },
        ),
        _ => (
            "calico",
            Node {
                kube_proxy,
                calico,
                ..Default::default()
            },
        ),
    }
}

#[test]
fn groups_200_generated_nodes_by_layout() {
    let d = Dir::new();
    let mut expected: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for i in 0..200 {
        let (kind, node) = fleet_node(i);
        let dir = d.path().join(format!("node-{i:03}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("iptables-save.txt"), iptables_save(&node)).unwrap();
        expected
            .entry(kind)
            .or_default()
            .push(dir.display().to_string());
    }
    let root = d.path().display().to_string();
    let r = run(&["fleet", "--format", "json", &root]);
    assert!(r.code == 1, "exit {}: {}", r.code, r.stderr);
    let json = r.json();
    assert_eq!(json["summary"]["nodes"], 200);
    assert_eq!(json["summary"]["layouts"], 3);
    assert_eq!(json["summary"]["outlier_nodes"], 60);
    let layouts = json["layouts"].as_array().unwrap();
    let members = |k: usize| -> Vec<String> {
        layouts[k]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(members(0), expected["calico"]);
    assert_eq!(members(1), expected["calico-tailscale"]);
    assert_eq!(members(2), expected["cilium"]);
    assert_eq!(layouts[0]["majority"], true);
    let owners = |k: usize| -> Vec<&str> {
        let mut o: Vec<&str> = layouts[k]["owners"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["owner"].as_str().unwrap())
            .collect();
        o.dedup();
        o
    };
    assert!(owners(1).contains(&"tailscale") && !owners(0).contains(&"tailscale"));
    assert!(owners(2).contains(&"cilium") && !owners(2).contains(&"calico"));
    // The outlier sentence names the software that differs and whose bits it lands on.
    let outlier = json["outliers"][0]["summary"].as_str().unwrap();
    assert!(
        outlier
            .starts_with("40 of 200 nodes have tailscale on packet mark 0x00ff0000 next to calico"),
        "{outlier}"
    );
    // Tailscale's nodes carry the Calico collision, the others not.
    let codes = |k: usize| -> Vec<&str> {
        layouts[k]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .map(|f| f["code"].as_str().unwrap())
            .collect()
    };
    assert!(codes(1).contains(&"MS001"), "{:?}", codes(1));
    assert!(!codes(0).contains(&"MS001"), "{:?}", codes(0));
    // Every node points at its layout.
    for n in json["nodes"].as_array().unwrap() {
        assert!(n["layout"].as_u64().is_some(), "{n}");
    }
}

#[test]
fn unreadable_nodes_are_listed_and_exit_3() {
    let d = Dir::new();
    std::fs::create_dir(d.path().join("a")).unwrap();
    std::fs::create_dir(d.path().join("b")).unwrap();
    d.file(
        "a/ip-rule.txt",
        "0:\tfrom all lookup local\n32766:\tfrom all lookup main\n",
    );
    d.file(
        "b/iptables-save.txt",
        "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark zz\nCOMMIT\n",
    );
    let root = d.path().display().to_string();
    for (format, needle) in [
        ("text", "unreadable:"),
        ("markdown", "- unreadable: `"),
        ("json", "\"unreadable\": 1"),
    ] {
        let r = run(&["fleet", "--format", format, &root]);
        assert_eq!(r.code, 3, "{format}: {}", r.stderr);
        assert!(r.stdout.contains(needle), "{format}:\n{}", r.stdout);
        assert!(
            r.stdout.contains("iptables-save.txt:3"),
            "{format}:\n{}",
            r.stdout
        );
    }
    let r = run(&["fleet", "--format", "sarif", &root]);
    assert_eq!(r.code, 2);
}
