//! Findings that need touchpoints outside netfilter, end to end: input files in a directory,
//! [`NodeLoader`] detects and parses them, [`analyze`] attributes and finds, [`Report`] is what
//! users see.

use std::fs;
use std::path::PathBuf;

use markspace::analysis::{analyze, Finding, Severity};
use markspace::diagnostic::Level;
use markspace::registry::Registry;
use markspace::report::Report;
use markspace::snapshot::NodeLoader;

/// A temporary directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "markspace-tp-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        fs::create_dir_all(&p).expect("temp dir");
        Dir(p)
    }

    fn file(&self, name: &str, text: &str) -> &Self {
        fs::write(self.0.join(name), text).expect("write input");
        self
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Loads a directory, analyses it, and returns the report (asserting no parse errors and that
/// every file was recognised).
fn audit(dir: &Dir) -> Report {
    let mut loader = NodeLoader::new();
    loader.add_path(&dir.0).expect("inputs load");
    let node = loader.finish();
    let errors: Vec<_> = node
        .diagnostics
        .iter()
        .filter(|d| d.level == Level::Error)
        .map(|d| d.render(&node.sources).to_string())
        .collect();
    assert!(errors.is_empty(), "parse errors:\n{}", errors.join("\n"));
    assert!(node.skipped.is_empty(), "unrecognised: {:?}", node.skipped);
    let registry = Registry::embedded().expect("registry");
    let analysis = analyze(&node, &registry);
    Report::new(&node, &analysis)
}

fn find<'r>(report: &'r Report, code: &str, owners: &[&str]) -> Option<&'r Finding> {
    report
        .findings
        .iter()
        .find(|f| f.code == code && owners.iter().all(|o| f.owners.iter().any(|x| x == o)))
}

fn describe(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| format!("{} {:?} {:?} {}", f.code, f.severity, f.owners, f.title))
        .collect::<Vec<_>>()
        .join("\n")
}

const KUBELET: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m comment --comment \"kubernetes firewall for dropping marked packets\" -m mark --mark 0x8000/0x8000 -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-MARK-DROP - [0:0]
:KUBE-SERVICES - [0:0]
-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.99/32 -p tcp -m comment --comment \"default/web has no endpoints\" -m tcp --dport 80 -j KUBE-MARK-DROP
-A KUBE-MARK-DROP -j MARK --set-xmark 0x8000/0x8000
COMMIT
";

#[test]
fn wireguard_fwmark_collides_with_kubelet_drop_bit() {
    let d = Dir::new("wg");
    d.file("iptables-save.txt", KUBELET)
        .file("wg-show-all-fwmark.txt", "wg0\t0xca6c\n");
    let r = audit(&d);
    let f = find(&r, "MS003", &["wireguard", "kubelet"])
        .unwrap_or_else(|| panic!("no MS003 naming wireguard and kubelet:\n{}", describe(&r)));
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.owners[0], "wireguard", "the whole write is WireGuard's");
    let wg = f
        .evidence
        .iter()
        .find(|e| e.owner == "wireguard")
        .expect("wireguard evidence");
    assert!(wg.file.ends_with("wg-show-all-fwmark.txt"));
    assert_eq!(wg.line, Some(1));
    assert!(wg.text.contains("0xca6c"), "{}", wg.text);
    assert!(f.evidence.iter().any(|e| e.owner == "kubelet"));
    assert!(
        f.fix.contains("FwMark") && f.fix.contains("0x00008000"),
        "{}",
        f.fix
    );
}

#[test]
fn tailscale_ip_rule_reads_cilium_proxy_socket_mark() {
    let d = Dir::new("ts");
    d.file(
        "ip-rule.txt",
        "0:\tfrom all lookup local\n5210:\tfrom all fwmark 0x80000/0xff0000 lookup main\n5230:\tfrom all fwmark 0x80000/0xff0000 lookup default\n5250:\tfrom all fwmark 0x80000/0xff0000 unreachable\n5270:\tfrom all lookup 52\n32766:\tfrom all lookup main\n",
    )
    .file(
        "ss-tanpe.txt",
        "State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\nESTAB  0      0      10.0.1.5:41234     10.0.2.7:8080     users:((\"cilium-envoy\",pid=4242,fd=77)) uid:1337 ino:99 sk:1 fwmark:0x80b00 <->\n",
    );
    let r = audit(&d);
    let f = find(&r, "MS003", &["cilium", "tailscale"])
        .unwrap_or_else(|| panic!("no finding naming cilium and tailscale:\n{}", describe(&r)));
    assert_eq!(f.severity, Severity::Error);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.owner == "tailscale" && e.text.contains("5210")));
    assert!(f
        .evidence
        .iter()
        .any(|e| e.owner == "cilium" && e.text.contains("fwmark:0x80b00")));
    let ts = r
        .owners
        .iter()
        .find(|o| o.id == "tailscale")
        .expect("tailscale");
    assert_eq!(ts.reads.mark.to_string(), "0x00ff0000");
}

#[test]
fn cilium_ipsec_xfrm_mark_reads_kubelet_drop_bit() {
    let d = Dir::new("xfrm");
    d.file("iptables-save.txt", KUBELET).file(
        "ip-xfrm-policy.txt",
        "src 0.0.0.0/0 dst 10.56.1.0/24\n\tdir out priority 0\n\tmark 0x9e00/0xff00\n\ttmpl src 10.56.0.17 dst 10.56.1.238\n\t\tproto esp spi 0x00000009 reqid 1 mode tunnel\n",
    );
    let r = audit(&d);
    let f = r
        .findings
        .iter()
        .find(|f| {
            f.owners.iter().any(|o| o == "cilium")
                && f.owners.iter().any(|o| o == "kubelet")
                && f.bits & 0x8000 != 0
        })
        .unwrap_or_else(|| {
            panic!(
                "no finding naming cilium and kubelet on 0x8000:\n{}",
                describe(&r)
            )
        });
    assert_eq!(f.code, "MS013");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.owners, vec!["cilium".to_string(), "kubelet".to_string()]);
    let e = f
        .evidence
        .iter()
        .find(|e| e.owner == "cilium")
        .expect("cilium evidence");
    assert_eq!(e.line, Some(3));
    assert!(e.text.contains("mark 0x9e00/0xff00"));
}

#[test]
fn strict_rp_filter_without_src_valid_mark_next_to_fwmark_rules() {
    let d = Dir::new("rp");
    d.file(
        "ip-rule.txt",
        "0:\tfrom all lookup local\n32765:\tnot from all fwmark 0xca6c lookup 51820\n32766:\tfrom all lookup main\n",
    )
    .file(
        "sysctl-a.txt",
        "net.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.all.src_valid_mark = 0\nnet.ipv4.conf.eth0.rp_filter = 1\nnet.ipv4.tcp_fwmark_accept = 0\n",
    );
    let r = audit(&d);
    let f =
        find(&r, "MS010", &["wireguard"]).unwrap_or_else(|| panic!("no MS010:\n{}", describe(&r)));
    assert_eq!(f.severity, Severity::Warning);
    assert!(f
        .evidence
        .iter()
        .any(|e| e.text == "net.ipv4.conf.all.rp_filter = 1"));
    assert!(f.evidence.iter().any(|e| e.text.contains("fwmark 0xca6c")));
    assert!(
        find(&r, "MS012", &["wireguard"]).is_some(),
        "{}",
        describe(&r)
    );

    // With src_valid_mark=1 the reverse-path check sees the mark: no MS010, but MS011 says who
    // forced it next to whose rules.
    let d = Dir::new("svm");
    d.file(
        "ip-rule.txt",
        "5210:\tfrom all fwmark 0x80000/0xff0000 lookup main\n9:\tfrom all fwmark 0x200/0xf00 lookup 2004\n",
    )
    .file(
        "sysctl-a.txt",
        "net.ipv4.conf.all.rp_filter = 1\nnet.ipv4.conf.all.src_valid_mark = 1\n",
    );
    let r = audit(&d);
    assert!(find(&r, "MS010", &[]).is_none(), "{}", describe(&r));
    let f = find(&r, "MS011", &["cilium", "tailscale"])
        .unwrap_or_else(|| panic!("no MS011:\n{}", describe(&r)));
    assert_eq!(f.severity, Severity::Warning);
    // The incident names k3s too, which is not on this node: it does not attach (issue #13).
    assert!(!f
        .incidents
        .iter()
        .any(|i| i.id == "tailscale-src-valid-mark-policy-routing"));
}

#[test]
fn every_touchpoint_format_loads_from_a_directory() {
    let d = Dir::new("all");
    d.file("ip-j-rule.json", r#"[{"priority":1024,"src":"all","fwmark":"0x80","fwmask":"0x80","table":"main"}]"#)
        .file("tc-filter.txt", "filter parent ffff: protocol all pref 1 fw chain 0 handle 0x5/0xf classid 1:1\n")
        .file("tc-j-filter.json", r#"[{"protocol":"all","pref":1,"kind":"fw","chain":0,"options":{"handle":"0x5/0xf"}}]"#)
        .file("ovs.txt", " cookie=0x0, table=0, priority=1,pkt_mark=0x1/0x1 actions=NORMAL\n")
        .file("wg0.conf", "[Interface]\nFwMark = 0x1234\n")
        .file("ipvsadm.txt", "IP Virtual Server version 1.2.1 (size=4096)\nFWM  256 rr\n")
        .file("conntrack.txt", "tcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=16384 use=1\n")
        .file("bpftool-net.txt", "xdp:\n\ntc:\neth0(2) tcx/ingress cil_from_netdev prog_id 1 link_id 2\n")
        .file("ip-d-link.txt", "6: gre1@NONE: <POINTOPOINT,NOARP> mtu 1476\n    gre remote 10.0.0.2 local 10.0.0.1 fwmark 0x5\n");
    let mut loader = NodeLoader::new();
    loader.add_path(&d.0).expect("loads");
    let node = loader.finish();
    assert!(node.skipped.is_empty(), "{:?}", node.skipped);
    let mut formats: Vec<&str> = node.formats.iter().map(|(_, f)| *f).collect();
    formats.sort_unstable();
    assert_eq!(
        formats,
        vec![
            "bpftool",
            "conntrack",
            "ip-link",
            "ip-rule-json",
            "ipvsadm",
            "ovs-flows",
            "tc-filter",
            "tc-filter-json",
            "wireguard"
        ]
    );
    assert_eq!(node.touchpoints.len(), 7);
    assert_eq!(node.observations.len(), 2);
}
