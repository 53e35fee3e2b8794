//! Archives read directly, in memory: a Cilium sysdump zip with nested bugtool tarballs, a
//! sosreport tarball, an archive of collected snapshots (with their manifests), by `audit`
//! and by `fleet`.

use markspace::generate::{tar_gz as targz, zip as zipped};

use crate::util::{root, run, Dir};

fn example(node: &str) -> Vec<u8> {
    std::fs::read(
        root()
            .join("examples/nodes")
            .join(node)
            .join("iptables-save.txt"),
    )
    .unwrap()
}

fn write(d: &Dir, name: &str, bytes: &[u8]) -> String {
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// `cilium sysdump`'s shape: a zip holding one `cilium-bugtool-<pod>.tar.gz` per node.
fn sysdump(nodes: &[(&str, &str)]) -> Vec<u8> {
    let tarballs: Vec<(String, Vec<u8>)> = nodes
        .iter()
        .map(|(pod, example_node)| {
            let rules = example(example_node);
            let inner = format!("cilium-bugtool-{pod}-20260101/cmd/iptables-save--c.md");
            (
                format!("cilium-sysdump-20260101/cilium-bugtool-{pod}-20260101.tar.gz"),
                targz(&[(&inner, &rules), ("cilium-bugtool-x/conf/bin", b"\0\x01")]),
            )
        })
        .collect();
    let mut files: Vec<(&str, &[u8])> = tarballs
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    files.push(("cilium-sysdump-20260101/k8s-nodes.yaml", b"items: []\n"));
    zipped(&files)
}

#[test]
fn audit_reads_a_one_node_sysdump_zip() {
    let d = Dir::new();
    let zip = write(
        &d,
        "sysdump.zip",
        &sysdump(&[("cilium-abcde", "tailscale-calico")]),
    );
    let r = run(&["audit", "--format", "json", "--fail-on", "never", &zip]);
    check!(r, r.code == 0);
    check!(r, r.stderr.contains("read cilium-bugtool"));
    let j = r.json();
    let input = j["inputs"][0]["file"].as_str().unwrap();
    check!(
        r,
        input.ends_with(".tar.gz/cilium-bugtool-cilium-abcde-20260101/cmd/iptables-save--c.md")
    );
    check!(r, crate::util::findings(&j, "MS001").len() == 1);
}

#[test]
fn a_sysdump_of_several_nodes_is_refused_by_audit_and_split_by_fleet() {
    let d = Dir::new();
    let zip = write(
        &d,
        "sysdump.zip",
        &sysdump(&[
            ("cilium-a", "kube-proxy-calico"),
            ("cilium-b", "kube-proxy-calico"),
            ("cilium-c", "tailscale-calico"),
        ]),
    );
    let r = run(&["audit", &zip]);
    check!(r, r.code == 2);
    check!(
        r,
        r.stderr.contains("hold 3 nodes") && r.stderr.contains("markspace fleet")
    );
    let r = run(&["fleet", "--format", "json", &zip]);
    check!(r, r.code == 1);
    let j = r.json();
    check!(
        r,
        j["summary"]["nodes"] == 3 && j["summary"]["layouts"] == 2
    );
    let outlier = &j["outliers"][0];
    check!(r, outlier["count"] == 1);
    check!(
        r,
        outlier["nodes"][0]
            .as_str()
            .unwrap()
            .contains("cilium-bugtool-cilium-c")
    );
    // The same sysdump unzipped into a directory of tarballs: the same nodes.
    let dir = d.path().join("unzipped");
    std::fs::create_dir(&dir).unwrap();
    for (pod, node) in [
        ("a", "kube-proxy-calico"),
        ("b", "kube-proxy-calico"),
        ("c", "tailscale-calico"),
    ] {
        let inner = format!("cilium-bugtool-{pod}/cmd/iptables-save--c.md");
        let tarball = targz(&[(&inner, &example(node))]);
        std::fs::write(dir.join(format!("cilium-bugtool-{pod}.tar.gz")), tarball).unwrap();
    }
    let r = run(&["fleet", "--format", "json", &dir.display().to_string()]);
    check!(r, r.code == 1);
    check!(r, r.json()["summary"]["nodes"] == 3);
    let r = run(&["audit", &dir.display().to_string()]);
    check!(r, r.code == 2 && r.stderr.contains("hold 3 nodes"));
}

#[test]
fn audit_reads_a_sosreport_tarball() {
    let d = Dir::new();
    let listing = b"Chain KUBE-POSTROUTING (1 references)\n pkts bytes target     prot opt in     out     source               destination\n    0     0 RETURN     0    --  *      *       0.0.0.0/0            0.0.0.0/0            mark match ! 0x4000/0x4000\n    0     0 MARK       0    --  *      *       0.0.0.0/0            0.0.0.0/0            MARK xor 0x4000\n";
    let tgz = targz(&[
        (
            "sosreport-node1-2026/sos_commands/firewall_tables/iptables_-t_nat_-nvL",
            listing,
        ),
        (
            "sosreport-node1-2026/sos_commands/logs/iptables-save",
            b"*mangle\n-A X -j MARK --set-xmark 0x1/0xffffffff\nCOMMIT\n",
        ),
        ("sosreport-node1-2026/var/log/messages", b"kernel: hello\n"),
    ]);
    let p = write(&d, "sosreport-node1-2026.tar.gz", &tgz);
    let r = run(&["audit", "--format", "json", &p]);
    check!(r, r.code == 0);
    check!(r, r.stderr.contains("read sosreport"));
    let j = r.json();
    check!(r, j["inputs"].as_array().unwrap().len() == 1);
    check!(
        r,
        j["owners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == "kube-proxy")
    );
}

/// Collected snapshots, archived: the manifest inside still makes an unread source exit 3.
#[test]
fn archived_snapshots_keep_their_manifest() {
    let d = Dir::new();
    let failed = br#"{"steps": [{"argv": ["iptables-save"], "status": "failed", "exit_code": 1, "note": "iptables-save: Permission denied"}]}"#;
    let tgz = targz(&[
        (
            "snaps/node-a/iptables-save.txt",
            &example("kube-proxy-calico"),
        ),
        ("snaps/node-a/manifest.json", b"{\"steps\": []}"),
        ("snaps/node-b/ip6tables-save.txt", b"*filter\nCOMMIT\n"),
        ("snaps/node-b/manifest.json", failed),
    ]);
    let p = write(&d, "snaps.tgz", &tgz);
    let r = run(&["fleet", "--format", "json", &p]);
    check!(r, r.code == 3);
    let j = r.json();
    check!(
        r,
        j["summary"]["nodes"] == 2 && j["summary"]["incomplete"] == 1
    );
    check!(
        r,
        j["nodes"][1]["name"]
            .as_str()
            .unwrap()
            .ends_with("snaps/node-b")
    );
    check!(r, j["nodes"][1]["incomplete"] == true);
    let one = targz(&[
        ("node-b/ip6tables-save.txt", b"*filter\nCOMMIT\n"),
        ("node-b/manifest.json", failed),
    ]);
    let p = write(&d, "one.tar.gz", &one);
    let r = run(&["audit", &p]);
    check!(r, r.code == 3);
    check!(r, r.stderr.contains("not read: IPv4 iptables rules"));
}

#[test]
fn a_corrupt_archive_is_an_input_error() {
    let d = Dir::new();
    let mut t = targz(&[("a/iptables-save.txt", &example("tailscale-calico"))]);
    t.truncate(t.len() / 2);
    let p = write(&d, "cut.tgz", &t);
    let r = run(&["audit", &p]);
    check!(r, r.code == 2);
    check!(r, r.stderr.contains("cut.tgz"));
}
