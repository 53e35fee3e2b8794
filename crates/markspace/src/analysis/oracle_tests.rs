//! The analysis against the implementations its fast paths replaced, on generated nodes: the
//! same findings (JSON) with the naive selections switched on as without (the clobber
//! witnesses and the path events of [`super::meeting`]).

use crate::generate::{adversarial, iptables_save, Adversarial, Calico, KubeProxy, Node as Spec};
use crate::model::Node;
use crate::registry::Registry;
use crate::snapshot::NodeLoader;

fn load(text: &str) -> Node {
    let mut l = NodeLoader::new();
    l.add_text("node.txt", text.as_bytes().to_vec(), true)
        .expect("an iptables-save text");
    l.finish()
}

fn findings(node: &Node, registry: &Registry, naive: bool) -> String {
    super::meeting::NAIVE.set(naive);
    let analysis = super::analyze(node, registry);
    super::meeting::NAIVE.set(false);
    serde_json::to_string_pretty(&analysis.findings).expect("findings serialise")
}

/// The generated nodes both comparisons run on: kube-proxy + Calico + Cilium + Tailscale, a
/// Calico node of many policies (with Tailscale when `tailscale`), and the adversarial
/// generator at 2, 5 and 12 owners.
pub(crate) fn generated_nodes(tailscale: bool) -> Vec<String> {
    let mut nodes = vec![
        iptables_save(&Spec {
            kube_proxy: Some(KubeProxy::with_lines(2000, 2)),
            calico: Some(Calico {
                endpoints: 40,
                policies: 20,
            }),
            cilium: true,
            tailscale: true,
        }),
        iptables_save(&Spec {
            calico: Some(Calico {
                endpoints: 10,
                policies: 200,
            }),
            tailscale,
            ..Spec::default()
        }),
    ];
    for owners in [2, 5, 12] {
        nodes.push(adversarial(Adversarial {
            owners,
            chains: 40,
            rules_per_chain: 12,
        }));
    }
    nodes
}

#[test]
fn fast_and_naive_analysis_agree_on_generated_nodes() {
    let registry = Registry::embedded().expect("registry");
    let nodes = generated_nodes(false);
    let mut clobbers = 0;
    for text in &nodes {
        let node = load(text);
        // The masked bits found while the uses are numbered, against a scan of each owner's.
        let usage = super::usage::collect(&node, &registry);
        for o in 0..usage.owners.len() {
            for f in crate::model::Field::BOTH {
                assert_eq!(usage.masked_writes(o, f), usage.masked_writes_scan(o, f));
                assert_eq!(usage.masked_reads(o, f), usage.masked_reads_scan(o, f));
            }
        }
        let fast = findings(&node, &registry, false);
        let naive = findings(&node, &registry, true);
        assert!(fast == naive, "the findings differ on:\n{text}");
        clobbers += fast.matches("\"clobber\": true").count();
    }
    assert!(
        clobbers >= 10,
        "only {clobbers} clobbers: the nodes do not exercise MS001 paths"
    );
}
