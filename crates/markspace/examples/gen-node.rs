//! Prints a generated node (see `markspace::generate`) for benchmarks and scale tests.
//!
//! ```text
//! cargo run --release -p markspace --example gen-node -- iptables --lines 230000 > node.txt
//! cargo run --release -p markspace --example gen-node -- nft --lines 230000 > node.nft
//!
//! cargo run --release -p markspace --example gen-node -- iptables --no-kube-proxy \
//!     --calico 1000 --policies 50000 > calico.txt
//! cargo run --release -p markspace --example gen-node -- adversarial --lines 320000 > adv.txt
//!
//! gen-node iptables|nft [--lines N | --services N] [--endpoints M]
//!                       [--calico ENDPOINTS] [--policies P] [--cilium] [--tailscale]
//!                       [--no-kube-proxy]
//! gen-node adversarial [--lines N] [--owners K]
//! ```
//!
//! `--lines N` sizes kube-proxy for about N lines of `iptables-save` output; `nft` with the same
//! `--lines` prints the same services in kube-proxy's nftables mode; `adversarial` prints about
//! N lines of K owners (default 8) colliding over mangle chains.

use std::io::Write;
use std::process::ExitCode;

use markspace::generate::{
    adversarial, iptables_save, kube_proxy_nft, Adversarial, Calico, KubeProxy, Node,
};

const USAGE: &str = "usage: gen-node iptables|nft [--lines N | --services N] [--endpoints M] [--calico ENDPOINTS] [--policies P] [--cilium] [--tailscale] [--no-kube-proxy]\n       gen-node adversarial [--lines N] [--owners K]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-node: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut args = args.into_iter();
    let mode = args.next().ok_or("missing mode")?;
    let (mut lines, mut services, mut endpoints) = (None, None, 2);
    let (mut calico, mut policies, mut cilium, mut kube_proxy) = (None, 20, false, true);
    let (mut tailscale, mut owners) = (false, 8);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--lines" => lines = Some(num("--lines")?),
            "--services" => services = Some(num("--services")?),
            "--endpoints" => endpoints = num("--endpoints")?,
            "--calico" => calico = Some(num("--calico")?),
            "--policies" => policies = num("--policies")?,
            "--cilium" => cilium = true,
            "--tailscale" => tailscale = true,
            "--owners" => owners = num("--owners")?,
            "--no-kube-proxy" => kube_proxy = false,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let k = match (lines, services) {
        (_, Some(services)) => KubeProxy {
            services,
            endpoints,
        },
        (Some(lines), None) => KubeProxy::with_lines(lines, endpoints),
        (None, None) => KubeProxy::with_lines(10_000, endpoints),
    };
    match mode.as_str() {
        "iptables" => Ok(iptables_save(&Node {
            kube_proxy: kube_proxy.then_some(k),
            calico: calico.map(|endpoints| Calico {
                endpoints,
                policies,
            }),
            cilium,
            tailscale,
        })),
        "nft" => Ok(kube_proxy_nft(k)),
        "adversarial" => Ok(adversarial(Adversarial::with_lines(
            lines.unwrap_or(10_000),
            owners,
        ))),
        other => Err(format!("unknown mode `{other}`")),
    }
}
