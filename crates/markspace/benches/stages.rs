//! The stages of `markspace audit` on generated nodes: read and parse, analysis, JSON report.
//!
//! `cargo bench -p markspace --bench stages` (divan). The inputs come from
//! `markspace::generate`: kube-proxy in iptables mode sized by `iptables-save` lines, and a
//! mark-heavy node (Calico, Cilium and kube-proxy together) where thousands of rules touch
//! marks. `scripts/bench.sh` times the whole command against the real tools.

use markspace::analysis::{analyze, Analysis};
use markspace::generate::{iptables_save, Calico, KubeProxy, Node as Spec};
use markspace::model::Node;
use markspace::registry::Registry;
use markspace::report::Report;
use markspace::snapshot::NodeLoader;

fn main() {
    divan::main();
}

/// `iptables-save` lines of the kube-proxy inputs.
const LINES: &[usize] = &[10_000, 100_000];

fn kube_proxy(lines: usize) -> String {
    iptables_save(&Spec {
        kube_proxy: Some(KubeProxy::with_lines(lines, 2)),
        ..Spec::default()
    })
}

/// About 30k lines, a third of whose rules touch marks.
fn mark_heavy() -> String {
    iptables_save(&Spec {
        kube_proxy: Some(KubeProxy::with_lines(10_000, 2)),
        calico: Some(Calico {
            endpoints: 1_000,
            policies: 50,
        }),
        cilium: true,
        tailscale: false,
    })
}

fn load(text: &str) -> Node {
    let mut loader = NodeLoader::new();
    // Generated text is always a valid iptables-save dump.
    let _ = loader.add_text("node.txt", text.as_bytes().to_vec(), true);
    loader.finish()
}

fn registry() -> Registry {
    Registry::embedded().unwrap_or_default()
}

/// Detect the format and parse into the model (the bytes are copied in, as a file read would).
#[divan::bench(args = LINES)]
fn parse_kube_proxy(bencher: divan::Bencher, lines: usize) {
    let text = kube_proxy(lines);
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| load(divan::black_box(&text)));
}

#[divan::bench]
fn parse_mark_heavy(bencher: divan::Bencher) {
    let text = mark_heavy();
    bencher
        .counter(divan::counter::BytesCount::new(text.len()))
        .bench(|| load(divan::black_box(&text)));
}

/// Attribution, bit maps and findings.
#[divan::bench(args = LINES)]
fn analyze_kube_proxy(bencher: divan::Bencher, lines: usize) {
    let node = load(&kube_proxy(lines));
    let registry = registry();
    bencher.bench(|| analyze(divan::black_box(&node), &registry));
}

#[divan::bench]
fn analyze_mark_heavy(bencher: divan::Bencher) {
    let node = load(&mark_heavy());
    let registry = registry();
    bencher.bench(|| analyze(divan::black_box(&node), &registry));
}

fn report_json(node: &Node, analysis: &Analysis) -> String {
    serde_json::to_string_pretty(&Report::new(node, analysis)).unwrap_or_default()
}

/// The report and its JSON text.
#[divan::bench]
fn report_json_mark_heavy(bencher: divan::Bencher) {
    let node = load(&mark_heavy());
    let analysis = analyze(&node, &registry());
    bencher.bench(|| report_json(divan::black_box(&node), &analysis));
}

/// Parsing the embedded registry, which every run pays once.
#[divan::bench]
fn registry_embedded() -> Registry {
    registry()
}

/// Plans 12 software with every knob in play (7 knobs, 6 of them move); the baseline beside it
/// plans kube-proxy alone (nothing to move).
fn plan_request(ids: &[&str]) -> markspace::plan::Request {
    markspace::plan::Request {
        software: ids
            .iter()
            .map(|s| markspace::plan::Wanted::parse(s).expect("valid id"))
            .collect(),
        ..Default::default()
    }
}

#[divan::bench]
fn plan_12_software(bencher: divan::Bencher) {
    let reg = registry();
    let req = plan_request(&[
        "calico",
        "kube-proxy",
        "kubelet@1.27",
        "tailscale",
        "wireguard",
        "aws-vpc-cni",
        "istio",
        "networkmanager-wireguard",
        "keepalived",
        "podman-netavark",
        "linkerd",
        "metallb",
    ]);
    bencher.bench(|| markspace::plan::plan(&reg, &req).expect("plans"));
}

#[divan::bench]
fn plan_one_software(bencher: divan::Bencher) {
    let reg = registry();
    let req = plan_request(&["kube-proxy"]);
    bencher.bench(|| markspace::plan::plan(&reg, &req).expect("plans"));
}
