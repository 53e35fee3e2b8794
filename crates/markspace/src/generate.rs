//! Realistic large nodes, generated, for benchmarks and scale tests.
//!
//! The shapes are those the real programs install, so that a benchmark measures what an operator
//! would feed markspace:
//!
//! - kube-proxy in iptables mode (`pkg/proxy/iptables/proxier.go`): `KUBE-SERVICES` with one
//!   rule per service port, a `KUBE-SVC-<hash>` chain per service port that masquerades
//!   off-cluster sources and picks an endpoint with `-m statistic --mode random --probability`,
//!   a `KUBE-SEP-<hash>` chain per endpoint (hairpin masquerade, then DNAT), `KUBE-EXT-<hash>`
//!   and `KUBE-NODEPORTS` for NodePorts, `KUBE-FW-<hash>` for load balancers with source ranges,
//!   `KUBE-MARK-MASQ` and `KUBE-POSTROUTING` with the 0x4000 bit, comments
//!   `"ns/svc:port cluster IP"`;
//! - Calico (`felix/rules/*.go`): dispatch chains, per-endpoint `cali-tw-`/`cali-fw-` chains,
//!   per-policy `cali-pi-`/`cali-po-` chains and per-namespace profiles, `cali:` comments and the
//!   0x10000 (accept), 0x20000 (pass) and 0x40000 (scratch) mark bits;
//! - Cilium's fixed chains (`pkg/datapath/iptables/iptables.go`) with its 0xf00 magic marks,
//!   TPROXY and socket matches;
//! - Tailscale's `ts-` chains (`util/linuxfw/iptables_runner.go`): its subnet-router bit
//!   0x40000 inside its 0xff0000 mask, set in `ts-forward` and masqueraded in
//!   `ts-postrouting`;
//! - an adversarial node ([`Adversarial`]): K owners, each recognised by its registry chain
//!   prefix, writing and testing overlapping bits over many mangle chains, with connmark saves
//!   and restores and ACCEPTs in between, so that every pair of owners meets on every path;
//! - kube-proxy in nftables mode (`pkg/proxy/nftables/proxier.go`): `table ip kube-proxy` with
//!   the `service-ips` and `service-nodeports` verdict maps, per-service and per-endpoint
//!   chains and `numgen random` load balancing, as `nft list ruleset` prints it.
//!
//! Everything is deterministic: the same spec gives the same bytes. The output loads with
//! `iptables-restore --test` and `nft -c -f` (checked by `scripts/bench.sh`).

use std::fmt::{self, Write as _};

/// kube-proxy's services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KubeProxy {
    /// Service ports.
    pub services: usize,
    /// Endpoints behind each service port (every 101st service has none).
    pub endpoints: usize,
}

/// Calico's workload endpoints and policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calico {
    /// Workload endpoints (pods) on the node.
    pub endpoints: usize,
    /// Network policies; each endpoint is selected by two of them.
    pub policies: usize,
}

/// What a generated node runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// kube-proxy in iptables mode.
    pub kube_proxy: Option<KubeProxy>,
    /// Calico.
    pub calico: Option<Calico>,
    /// Cilium's iptables chains (a fixed set).
    pub cilium: bool,
    /// Tailscale's iptables chains (a fixed set).
    pub tailscale: bool,
}

/// Average `iptables-save` lines per kube-proxy service port with `endpoints` endpoints: the
/// `KUBE-SERVICES` rule, the `KUBE-SVC` chain line and its masquerade rule, one rule per
/// endpoint in it, three lines per `KUBE-SEP` chain, and the NodePort and load-balancer shares.
fn kube_proxy_lines_per_service(endpoints: usize) -> f64 {
    3.0 + 4.0 * endpoints as f64 + 4.0 / 5.0 + 1.0 / 25.0 + 4.0 / 50.0
}

impl KubeProxy {
    /// Enough service ports for about `lines` lines of `iptables-save` output.
    pub fn with_lines(lines: usize, endpoints: usize) -> Self {
        let per = kube_proxy_lines_per_service(endpoints);
        KubeProxy {
            services: ((lines as f64 / per).round() as usize).max(1),
            endpoints,
        }
    }
}

/// Writes one formatted line. Writing into a `String` cannot fail, so the `fmt::Result` carries
/// nothing.
fn line(out: &mut String, args: fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
    out.push('\n');
}

macro_rules! rule {
    ($out:expr, $($arg:tt)*) => { line($out, format_args!($($arg)*)) };
}

/// A deterministic 64-bit mix (splitmix64), for chain hashes and comment ids.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `n` characters of base32 (`A-Z2-7`), as kube-proxy's chain hashes (`KUBE-SVC-` + 16).
fn base32(seed: u64, n: usize) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut s = String::with_capacity(n);
    let mut x = mix(seed);
    for i in 0..n {
        if i % 12 == 11 {
            x = mix(x);
        }
        s.push(ALPHABET[(x & 31) as usize] as char);
        x >>= 5;
    }
    s
}

/// A Calico rule id: 16 characters of URL-safe base64, as in `cali:6gwbT8clXdHdC1b1`.
fn cali_id(seed: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = mix(seed ^ 0xca11_ca11);
    (0..16)
        .map(|i| {
            if i == 10 {
                x = mix(x);
            }
            let c = ALPHABET[(x & 63) as usize] as char;
            x >>= 6;
            c
        })
        .collect()
}

/// The chain suffix of Calico policy `p` (`cali-pi-_<id>`), within iptables' 28 characters.
fn policy_name(p: usize) -> String {
    format!("_{}", cali_id(0x9011 + p as u64))
}

/// An IPv4 address as dotted quad.
struct Ip(u32);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.to_be_bytes();
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

const SERVICE_CIDR_BASE: u32 = 0x0a60_0000; // 10.96.0.0/12
const POD_CIDR: &str = "10.128.0.0/9";
const POD_BASE: u32 = 0x0a80_0000; // 10.128.0.0
const LB_BASE: u32 = 0x6440_0000; // 100.64.0.0/10

/// One kube-proxy service port and what kube-proxy derives from it.
struct Service {
    index: usize,
    ns: String,
    name: String,
    port_name: &'static str,
    proto: &'static str,
    port: u16,
    target_port: u16,
    cluster_ip: Ip,
    endpoints: usize,
    node_port: Option<u16>,
    lb_ip: Option<Ip>,
    /// A load balancer with `loadBalancerSourceRanges` (gets a `KUBE-FW-` chain).
    firewall: bool,
    hash: String,
}

impl Service {
    fn new(index: usize, endpoints: usize) -> Self {
        let udp = index % 9 == 4;
        let (port_name, port, target_port) = if udp {
            ("dns", 53, 53)
        } else {
            match index % 3 {
                0 => ("http", 80, 8080),
                1 => ("https", 443, 8443),
                _ => ("grpc", 9090, 9090),
            }
        };
        let lb = index.is_multiple_of(25);
        Service {
            index,
            ns: format!("ns-{}", index / 40),
            name: format!("svc-{index}"),
            port_name,
            proto: if udp { "udp" } else { "tcp" },
            port,
            target_port,
            cluster_ip: Ip(SERVICE_CIDR_BASE + 1 + index as u32),
            endpoints: if index % 101 == 100 { 0 } else { endpoints },
            node_port: index
                .is_multiple_of(5)
                .then(|| 30000 + (index % 2768) as u16),
            lb_ip: lb.then(|| Ip(LB_BASE + 1 + index as u32)),
            firewall: lb && index.is_multiple_of(50),
            hash: base32(index as u64, 16),
        }
    }

    /// `ns/svc:port`, kube-proxy's service port name.
    fn spn(&self) -> String {
        format!("{}/{}:{}", self.ns, self.name, self.port_name)
    }

    /// The address of endpoint `j`.
    fn endpoint_ip(&self, j: usize) -> Ip {
        Ip(POD_BASE + 2 + (self.index * 8 + j) as u32)
    }

    fn endpoint_hash(&self, j: usize) -> String {
        base32(
            ((self.index as u64) << 16) ^ (j as u64) ^ 0x5e9_0000_0000,
            16,
        )
    }
}

/// The chains and rules of one iptables table while they are generated.
struct Table {
    name: &'static str,
    /// Chains in order of creation with their policy (`-` for user chains) and rules.
    chains: Vec<(String, &'static str, String)>,
}

impl Table {
    fn new(name: &'static str, builtins: &[&str]) -> Self {
        Table {
            name,
            chains: builtins
                .iter()
                .map(|c| (c.to_string(), "ACCEPT", String::new()))
                .collect(),
        }
    }

    /// The rules of a chain, created empty if it is new. Linear search: generation is not what
    /// is measured, and builtin and fixed chains are few; per-service chains use [`Table::add`].
    fn chain(&mut self, name: &str) -> &mut String {
        let at = match self.chains.iter().position(|(n, _, _)| n == name) {
            Some(i) => i,
            None => {
                self.chains.push((name.to_string(), "-", String::new()));
                self.chains.len() - 1
            }
        };
        &mut self.chains[at].2
    }

    /// Adds a chain known to be new and returns its rules.
    fn add(&mut self, name: String) -> &mut String {
        self.chains.push((name, "-", String::new()));
        let last = self.chains.len() - 1;
        &mut self.chains[last].2
    }

    fn write(&self, out: &mut String) {
        rule!(out, "*{}", self.name);
        for (name, policy, _) in &self.chains {
            rule!(out, ":{name} {policy} [0:0]");
        }
        for (_, _, rules) in &self.chains {
            out.push_str(rules);
        }
        out.push_str("COMMIT\n");
    }
}

/// The four tables of an `iptables-save` dump.
struct Tables {
    raw: Table,
    mangle: Table,
    filter: Table,
    nat: Table,
}

/// A node's rules as `iptables-save` (nf_tables backend) prints them.
pub fn iptables_save(node: &Node) -> String {
    let mut t = Tables {
        raw: Table::new("raw", &["PREROUTING", "OUTPUT"]),
        mangle: Table::new(
            "mangle",
            &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        ),
        filter: Table::new("filter", &["INPUT", "FORWARD", "OUTPUT"]),
        nat: Table::new("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]),
    };
    // Calico inserts its jumps at the top of the builtin chains, so it goes first.
    if let Some(c) = node.calico {
        calico(&mut t, c);
    }
    if node.cilium {
        cilium(&mut t);
    }
    if node.tailscale {
        tailscale(&mut t);
    }
    if let Some(k) = node.kube_proxy {
        kube_proxy(&mut t, k);
    }
    let mut out = String::new();
    out.push_str("# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 2026\n");
    for table in [&t.raw, &t.mangle, &t.filter, &t.nat] {
        table.write(&mut out);
    }
    out.push_str("# Completed on Thu Jan  1 00:00:00 2026\n");
    out
}

fn kube_proxy(t: &mut Tables, k: KubeProxy) {
    for table in [&mut t.mangle, &mut t.filter, &mut t.nat] {
        table.chain("KUBE-KUBELET-CANARY");
        table.chain("KUBE-PROXY-CANARY");
    }
    t.mangle.chain("KUBE-IPTABLES-HINT");

    // filter
    let f = &mut t.filter;
    const NEW: &str = "-m conntrack --ctstate NEW";
    rule!(f.chain("INPUT"), "-A INPUT {NEW} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL");
    rule!(
        f.chain("INPUT"),
        "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"
    );
    rule!(f.chain("INPUT"), "-A INPUT {NEW} -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES");
    rule!(f.chain("INPUT"), "-A INPUT -j KUBE-FIREWALL");
    rule!(f.chain("FORWARD"), "-A FORWARD {NEW} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL");
    rule!(
        f.chain("FORWARD"),
        "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
    );
    rule!(
        f.chain("FORWARD"),
        "-A FORWARD {NEW} -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
    );
    rule!(f.chain("FORWARD"), "-A FORWARD {NEW} -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES");
    rule!(f.chain("OUTPUT"), "-A OUTPUT {NEW} -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL");
    rule!(
        f.chain("OUTPUT"),
        "-A OUTPUT {NEW} -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
    );
    rule!(f.chain("OUTPUT"), "-A OUTPUT -j KUBE-FIREWALL");
    f.chain("KUBE-EXTERNAL-SERVICES");
    rule!(f.chain("KUBE-FIREWALL"), "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP");
    rule!(
        f.chain("KUBE-FORWARD"),
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"
    );
    rule!(f.chain("KUBE-FORWARD"), "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT");
    rule!(f.chain("KUBE-FORWARD"), "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
    f.chain("KUBE-NODEPORTS");
    f.chain("KUBE-PROXY-FIREWALL");
    f.chain("KUBE-SERVICES");

    // nat
    let n = &mut t.nat;
    rule!(
        n.chain("PREROUTING"),
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
    );
    rule!(
        n.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
    );
    rule!(
        n.chain("POSTROUTING"),
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"
    );
    rule!(
        n.chain("KUBE-MARK-MASQ"),
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
    );
    n.chain("KUBE-NODEPORTS");
    let post = n.chain("KUBE-POSTROUTING");
    rule!(
        post,
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
    );
    rule!(post, "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0");
    rule!(post, "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully");
    n.chain("KUBE-SERVICES");

    // Rules of the shared chains are collected apart and appended once, so that each service's
    // own chains can be added without searching.
    let (mut services, mut nodeports, mut filter_services, mut firewall) =
        (String::new(), String::new(), String::new(), String::new());
    for i in 0..k.services {
        let s = Service::new(i, k.endpoints);
        let spn = s.spn();
        let (proto, port) = (s.proto, s.port);
        if s.endpoints == 0 {
            rule!(&mut filter_services, "-A KUBE-SERVICES -d {}/32 -p {proto} -m comment --comment \"{spn} has no endpoints\" -m {proto} --dport {port} -j REJECT --reject-with icmp-port-unreachable", s.cluster_ip);
            continue;
        }
        let svc = format!("KUBE-SVC-{}", s.hash);
        rule!(&mut services, "-A KUBE-SERVICES -d {}/32 -p {proto} -m comment --comment \"{spn} cluster IP\" -m {proto} --dport {port} -j {svc}", s.cluster_ip);
        let ext = format!("KUBE-EXT-{}", s.hash);
        let has_ext = s.node_port.is_some() || s.lb_ip.is_some();
        if let Some(lb) = &s.lb_ip {
            if s.firewall {
                let fw = format!("KUBE-FW-{}", s.hash);
                rule!(&mut services, "-A KUBE-SERVICES -d {lb}/32 -p {proto} -m comment --comment \"{spn} loadbalancer IP\" -m {proto} --dport {port} -j {fw}");
                let r = n.add(fw.clone());
                rule!(r, "-A {fw} -s 198.51.100.0/24 -m comment --comment \"{spn} loadbalancer IP\" -j {ext}");
                rule!(r, "-A {fw} -m comment --comment \"other traffic to {spn} will be dropped by KUBE-PROXY-FIREWALL\"");
                rule!(&mut firewall, "-A KUBE-PROXY-FIREWALL -d {lb}/32 -p {proto} -m comment --comment \"{spn} traffic not accepted by {fw}\" -m {proto} --dport {port} -j DROP");
            } else {
                rule!(&mut services, "-A KUBE-SERVICES -d {lb}/32 -p {proto} -m comment --comment \"{spn} loadbalancer IP\" -m {proto} --dport {port} -j {ext}");
            }
        }
        if let Some(np) = s.node_port {
            rule!(&mut nodeports, "-A KUBE-NODEPORTS -p {proto} -m comment --comment \"{spn}\" -m {proto} --dport {np} -j {ext}");
        }
        if has_ext {
            let r = n.add(ext.clone());
            rule!(r, "-A {ext} -m comment --comment \"masquerade traffic for {spn} external destinations\" -j KUBE-MARK-MASQ");
            rule!(r, "-A {ext} -j {svc}");
        }
        let r = n.add(svc.clone());
        rule!(r, "-A {svc} ! -s {POD_CIDR} -d {}/32 -p {proto} -m comment --comment \"{spn} cluster IP\" -m {proto} --dport {port} -j KUBE-MARK-MASQ", s.cluster_ip);
        for j in 0..s.endpoints {
            let ip = s.endpoint_ip(j);
            let sep = s.endpoint_hash(j);
            let left = s.endpoints - j;
            if left > 1 {
                // The kernel keeps the probability as a 31-bit fraction, and iptables-save
                // prints that back (`libxt_statistic.c`): 1/3 shows as 0.33333333349.
                let fixed = (f64::from(1u32 << 31) / left as f64).round();
                let p = fixed / f64::from(1u32 << 31);
                rule!(r, "-A {svc} -m comment --comment \"{spn} -> {ip}:{}\" -m statistic --mode random --probability {p:.11} -j KUBE-SEP-{sep}", s.target_port);
            } else {
                rule!(
                    r,
                    "-A {svc} -m comment --comment \"{spn} -> {ip}:{}\" -j KUBE-SEP-{sep}",
                    s.target_port
                );
            }
        }
        for j in 0..s.endpoints {
            let ip = s.endpoint_ip(j);
            let sep = format!("KUBE-SEP-{}", s.endpoint_hash(j));
            let r = n.add(sep.clone());
            rule!(
                r,
                "-A {sep} -s {ip}/32 -m comment --comment \"{spn}\" -j KUBE-MARK-MASQ"
            );
            rule!(r, "-A {sep} -p {proto} -m comment --comment \"{spn}\" -m {proto} -j DNAT --to-destination {ip}:{}", s.target_port);
        }
    }
    rule!(&mut services, "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS");
    n.chain("KUBE-SERVICES").push_str(&services);
    n.chain("KUBE-NODEPORTS").push_str(&nodeports);
    t.filter.chain("KUBE-SERVICES").push_str(&filter_services);
    t.filter.chain("KUBE-PROXY-FIREWALL").push_str(&firewall);
}

fn calico(t: &mut Tables, c: Calico) {
    let mut seq = 0u64;
    let mut id = move || {
        seq += 1;
        cali_id(seq)
    };

    // raw
    let r = &mut t.raw;
    rule!(
        r.chain("PREROUTING"),
        "-A PREROUTING -m comment --comment \"cali:{}\" -j cali-PREROUTING",
        id()
    );
    rule!(
        r.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"cali:{}\" -j cali-OUTPUT",
        id()
    );
    r.chain("cali-from-host-endpoint");
    let pre = r.chain("cali-PREROUTING");
    rule!(
        pre,
        "-A cali-PREROUTING -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x0/0xf0000",
        id()
    );
    rule!(pre, "-A cali-PREROUTING -i cali+ -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x40000/0x40000", id());
    rule!(pre, "-A cali-PREROUTING -m comment --comment \"cali:{}\" -m mark --mark 0x0/0x40000 -j cali-from-host-endpoint", id());
    rule!(pre, "-A cali-PREROUTING -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j ACCEPT", id());
    let out = r.chain("cali-OUTPUT");
    rule!(
        out,
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x0/0xf0000",
        id()
    );
    rule!(
        out,
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -j cali-to-host-endpoint",
        id()
    );
    rule!(
        out,
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j ACCEPT",
        id()
    );
    r.chain("cali-to-host-endpoint");

    // mangle
    let m = &mut t.mangle;
    rule!(
        m.chain("PREROUTING"),
        "-A PREROUTING -m comment --comment \"cali:{}\" -j cali-PREROUTING",
        id()
    );
    m.chain("cali-from-host-endpoint");
    let pre = m.chain("cali-PREROUTING");
    rule!(pre, "-A cali-PREROUTING -m comment --comment \"cali:{}\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", id());
    rule!(pre, "-A cali-PREROUTING -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j ACCEPT", id());
    rule!(
        pre,
        "-A cali-PREROUTING -m comment --comment \"cali:{}\" -j cali-from-host-endpoint",
        id()
    );
    rule!(pre, "-A cali-PREROUTING -m comment --comment \"cali:{}\" -m comment --comment \"Host endpoint policy accepted packet.\" -m mark --mark 0x10000/0x10000 -j ACCEPT", id());

    // nat
    let n = &mut t.nat;
    rule!(
        n.chain("PREROUTING"),
        "-A PREROUTING -m comment --comment \"cali:{}\" -j cali-PREROUTING",
        id()
    );
    rule!(
        n.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"cali:{}\" -j cali-OUTPUT",
        id()
    );
    rule!(
        n.chain("POSTROUTING"),
        "-A POSTROUTING -m comment --comment \"cali:{}\" -j cali-POSTROUTING",
        id()
    );
    n.chain("cali-fip-dnat");
    n.chain("cali-fip-snat");
    rule!(
        n.chain("cali-PREROUTING"),
        "-A cali-PREROUTING -m comment --comment \"cali:{}\" -j cali-fip-dnat",
        id()
    );
    rule!(
        n.chain("cali-OUTPUT"),
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -j cali-fip-dnat",
        id()
    );
    let post = n.chain("cali-POSTROUTING");
    rule!(
        post,
        "-A cali-POSTROUTING -m comment --comment \"cali:{}\" -j cali-fip-snat",
        id()
    );
    rule!(
        post,
        "-A cali-POSTROUTING -m comment --comment \"cali:{}\" -j cali-nat-outgoing",
        id()
    );
    rule!(n.chain("cali-nat-outgoing"), "-A cali-nat-outgoing -s {POD_CIDR} ! -d {POD_CIDR} -m comment --comment \"cali:{}\" -j MASQUERADE --random-fully", id());

    // filter
    let f = &mut t.filter;
    rule!(
        f.chain("INPUT"),
        "-A INPUT -m comment --comment \"cali:{}\" -j cali-INPUT",
        id()
    );
    rule!(
        f.chain("FORWARD"),
        "-A FORWARD -m comment --comment \"cali:{}\" -j cali-FORWARD",
        id()
    );
    rule!(
        f.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"cali:{}\" -j cali-OUTPUT",
        id()
    );
    for empty in [
        "cali-from-hep-forward",
        "cali-to-hep-forward",
        "cali-from-host-endpoint",
        "cali-to-host-endpoint",
        "cali-cidr-block",
    ] {
        f.chain(empty);
    }
    let fwd = f.chain("cali-FORWARD");
    rule!(
        fwd,
        "-A cali-FORWARD -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x0/0xe0000",
        id()
    );
    rule!(fwd, "-A cali-FORWARD -m comment --comment \"cali:{}\" -m mark --mark 0x0/0x10000 -j cali-from-hep-forward", id());
    rule!(
        fwd,
        "-A cali-FORWARD -i cali+ -m comment --comment \"cali:{}\" -j cali-from-wl-dispatch",
        id()
    );
    rule!(
        fwd,
        "-A cali-FORWARD -o cali+ -m comment --comment \"cali:{}\" -j cali-to-wl-dispatch",
        id()
    );
    rule!(
        fwd,
        "-A cali-FORWARD -m comment --comment \"cali:{}\" -j cali-to-hep-forward",
        id()
    );
    rule!(
        fwd,
        "-A cali-FORWARD -m comment --comment \"cali:{}\" -j cali-cidr-block",
        id()
    );
    rule!(fwd, "-A cali-FORWARD -m comment --comment \"cali:{}\" -m comment --comment \"Policy explicitly accepted packet.\" -m mark --mark 0x10000/0x10000 -j ACCEPT", id());
    let inp = f.chain("cali-INPUT");
    rule!(
        inp,
        "-A cali-INPUT -i cali+ -m comment --comment \"cali:{}\" -g cali-wl-to-host",
        id()
    );
    rule!(
        inp,
        "-A cali-INPUT -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j ACCEPT",
        id()
    );
    rule!(
        inp,
        "-A cali-INPUT -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x0/0xf0000",
        id()
    );
    rule!(
        inp,
        "-A cali-INPUT -m comment --comment \"cali:{}\" -j cali-from-host-endpoint",
        id()
    );
    rule!(inp, "-A cali-INPUT -m comment --comment \"cali:{}\" -m comment --comment \"Host endpoint policy accepted packet.\" -m mark --mark 0x10000/0x10000 -j ACCEPT", id());
    let out = f.chain("cali-OUTPUT");
    rule!(
        out,
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j ACCEPT",
        id()
    );
    rule!(
        out,
        "-A cali-OUTPUT -o cali+ -m comment --comment \"cali:{}\" -j RETURN",
        id()
    );
    rule!(
        out,
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x0/0xf0000",
        id()
    );
    rule!(
        out,
        "-A cali-OUTPUT -m comment --comment \"cali:{}\" -j cali-to-host-endpoint",
        id()
    );
    rule!(out, "-A cali-OUTPUT -m comment --comment \"cali:{}\" -m comment --comment \"Host endpoint policy accepted packet.\" -m mark --mark 0x10000/0x10000 -j ACCEPT", id());
    let wl = f.chain("cali-wl-to-host");
    rule!(
        wl,
        "-A cali-wl-to-host -m comment --comment \"cali:{}\" -j cali-from-wl-dispatch",
        id()
    );
    rule!(wl, "-A cali-wl-to-host -m comment --comment \"cali:{}\" -m comment --comment \"Configured DefaultEndpointToHostAction\" -j ACCEPT", id());

    let policies = c.policies.max(1);
    let namespaces = c.endpoints.div_ceil(20).max(1);
    // Per-policy chains: ingress (cali-pi-) and egress (cali-po-).
    for p in 0..policies {
        let name = policy_name(p);
        for (dir, port) in [("pi", 8080 + p % 100), ("po", 5432 + p % 100)] {
            let chain = format!("cali-{dir}-{name}");
            let r = f.add(chain.clone());
            rule!(r, "-A {chain} -p tcp -m comment --comment \"cali:{}\" -m multiport --dports {port},9090 -j MARK --set-xmark 0x10000/0x10000", id());
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j RETURN", id());
        }
    }
    // Per-namespace profiles.
    for ns in 0..namespaces {
        for dir in ["pri", "pro"] {
            let chain = format!("cali-{dir}-kns.ns-{ns}");
            let r = f.add(chain.clone());
            rule!(
                r,
                "-A {chain} -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x10000/0x10000",
                id()
            );
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m mark --mark 0x10000/0x10000 -j RETURN", id());
        }
    }
    // Per-endpoint chains and the dispatch chains that reach them.
    let (mut from, mut to) = (String::new(), String::new());
    for e in 0..c.endpoints {
        let iface = format!("cali{:011x}", mix(e as u64) & 0xfff_ffff_ffff);
        let ns = e / 20;
        let pols = [e % policies, (e * 7 + 3) % policies];
        rule!(&mut from, "-A cali-from-wl-dispatch -i {iface} -m comment --comment \"cali:{}\" -g cali-fw-{iface}", id());
        rule!(
            &mut to,
            "-A cali-to-wl-dispatch -o {iface} -m comment --comment \"cali:{}\" -g cali-tw-{iface}",
            id()
        );
        for (dir, pol, prof) in [("tw", "pi", "pri"), ("fw", "po", "pro")] {
            let chain = format!("cali-{dir}-{iface}");
            let r = f.add(chain.clone());
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", id());
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m conntrack --ctstate INVALID -j DROP", id());
            if dir == "fw" {
                rule!(r, "-A {chain} -p udp -m comment --comment \"cali:{}\" -m comment --comment \"Drop VXLAN encapped packets originating in workloads\" -m multiport --dports 4789 -j DROP", id());
            }
            rule!(
                r,
                "-A {chain} -m comment --comment \"cali:{}\" -j MARK --set-xmark 0x0/0x10000",
                id()
            );
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m comment --comment \"Start of policies\" -j MARK --set-xmark 0x0/0x20000", id());
            for p in pols {
                let name = policy_name(p);
                rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m mark --mark 0x0/0x20000 -j cali-{pol}-{name}", id());
                rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m comment --comment \"Return if policy accepted\" -m mark --mark 0x10000/0x10000 -j RETURN", id());
            }
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m comment --comment \"Drop if no policies passed packet\" -m mark --mark 0x0/0x20000 -j DROP", id());
            rule!(
                r,
                "-A {chain} -m comment --comment \"cali:{}\" -j cali-{prof}-kns.ns-{ns}",
                id()
            );
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m comment --comment \"Return if profile accepted\" -m mark --mark 0x10000/0x10000 -j RETURN", id());
            rule!(r, "-A {chain} -m comment --comment \"cali:{}\" -m comment --comment \"Drop if no profiles matched\" -j DROP", id());
        }
    }
    rule!(&mut from, "-A cali-from-wl-dispatch -m comment --comment \"cali:{}\" -m comment --comment \"Unknown interface\" -j DROP", id());
    rule!(&mut to, "-A cali-to-wl-dispatch -m comment --comment \"cali:{}\" -m comment --comment \"Unknown interface\" -j DROP", id());
    f.chain("cali-from-wl-dispatch").push_str(&from);
    f.chain("cali-to-wl-dispatch").push_str(&to);
}

fn cilium(t: &mut Tables) {
    const NOT_PROXY: &str = "-m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0x800/0xf00";
    let r = &mut t.raw;
    rule!(
        r.chain("PREROUTING"),
        "-A PREROUTING -m comment --comment \"cilium-feeder: CILIUM_PRE_raw\" -j CILIUM_PRE_raw"
    );
    rule!(
        r.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"cilium-feeder: CILIUM_OUTPUT_raw\" -j CILIUM_OUTPUT_raw"
    );
    rule!(r.chain("CILIUM_PRE_raw"), "-A CILIUM_PRE_raw -m mark --mark 0x200/0xf00 -m comment --comment \"cilium: NOTRACK for proxy traffic\" -j CT --notrack");
    let out = r.chain("CILIUM_OUTPUT_raw");
    rule!(out, "-A CILIUM_OUTPUT_raw -o lxc+ -m mark --mark 0xa00/0xfffffeff -m comment --comment \"cilium: NOTRACK for proxy return traffic\" -j CT --notrack");
    rule!(out, "-A CILIUM_OUTPUT_raw -o cilium_host -m mark --mark 0xa00/0xfffffeff -m comment --comment \"cilium: NOTRACK for proxy return traffic\" -j CT --notrack");
    rule!(out, "-A CILIUM_OUTPUT_raw -o lxc+ -m mark --mark 0x800/0xe00 -m comment --comment \"cilium: NOTRACK for L7 proxy upstream traffic\" -j CT --notrack");

    let m = &mut t.mangle;
    rule!(m.chain("PREROUTING"), "-A PREROUTING -m comment --comment \"cilium-feeder: CILIUM_PRE_mangle\" -j CILIUM_PRE_mangle");
    rule!(m.chain("POSTROUTING"), "-A POSTROUTING -m comment --comment \"cilium-feeder: CILIUM_POST_mangle\" -j CILIUM_POST_mangle");
    m.chain("CILIUM_POST_mangle");
    let pre = m.chain("CILIUM_PRE_mangle");
    rule!(pre, "-A CILIUM_PRE_mangle ! -o lo -m socket --transparent {NOT_PROXY} -m comment --comment \"cilium: any->pod redirect proxied traffic to host proxy\" -j MARK --set-xmark 0x200/0xffffffff");
    for proto in ["tcp", "udp"] {
        rule!(pre, "-A CILIUM_PRE_mangle -p {proto} -m mark --mark 0x3a8a0200 -m comment --comment \"cilium: TPROXY to host cilium-dns-egress proxy\" -j TPROXY --on-port 36410 --on-ip 127.0.0.1 --tproxy-mark 0x200/0xffffffff");
    }

    let f = &mut t.filter;
    rule!(
        f.chain("INPUT"),
        "-A INPUT -m comment --comment \"cilium-feeder: CILIUM_INPUT\" -j CILIUM_INPUT"
    );
    rule!(
        f.chain("FORWARD"),
        "-A FORWARD -m comment --comment \"cilium-feeder: CILIUM_FORWARD\" -j CILIUM_FORWARD"
    );
    rule!(
        f.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"cilium-feeder: CILIUM_OUTPUT\" -j CILIUM_OUTPUT"
    );
    let fwd = f.chain("CILIUM_FORWARD");
    rule!(fwd, "-A CILIUM_FORWARD -o cilium_host -m comment --comment \"cilium: any->cluster on cilium_host forward accept\" -j ACCEPT");
    rule!(fwd, "-A CILIUM_FORWARD -i cilium_host -m comment --comment \"cilium: cluster->any on cilium_host forward accept (nodeport)\" -j ACCEPT");
    rule!(fwd, "-A CILIUM_FORWARD -i lxc+ -m comment --comment \"cilium: cluster->any on lxc+ forward accept\" -j ACCEPT");
    rule!(fwd, "-A CILIUM_FORWARD -i cilium_net -m comment --comment \"cilium: cluster->any on cilium_net forward accept (nodeport)\" -j ACCEPT");
    rule!(f.chain("CILIUM_INPUT"), "-A CILIUM_INPUT -m mark --mark 0x200/0xf00 -m comment --comment \"cilium: ACCEPT for proxy traffic\" -j ACCEPT");
    let out = f.chain("CILIUM_OUTPUT");
    rule!(out, "-A CILIUM_OUTPUT -m mark --mark 0xa00/0xfffffeff -m comment --comment \"cilium: ACCEPT for proxy return traffic\" -j ACCEPT");
    rule!(out, "-A CILIUM_OUTPUT -m mark --mark 0x800/0xe00 -m comment --comment \"cilium: ACCEPT for l7 proxy upstream traffic\" -j ACCEPT");
    rule!(out, "-A CILIUM_OUTPUT -m mark ! --mark 0xe00/0xf00 -m mark ! --mark 0xd00/0xf00 -m mark ! --mark 0x400/0xf00 -m mark ! --mark 0xa00/0xe00 -m mark ! --mark 0x800/0xe00 -m mark ! --mark 0xf00/0xf00 -m comment --comment \"cilium: host->any mark as from host\" -j MARK --set-xmark 0xc00/0xf00");

    let n = &mut t.nat;
    rule!(
        n.chain("PREROUTING"),
        "-A PREROUTING -m comment --comment \"cilium-feeder: CILIUM_PRE_nat\" -j CILIUM_PRE_nat"
    );
    rule!(
        n.chain("OUTPUT"),
        "-A OUTPUT -m comment --comment \"cilium-feeder: CILIUM_OUTPUT_nat\" -j CILIUM_OUTPUT_nat"
    );
    rule!(
        n.chain("POSTROUTING"),
        "-A POSTROUTING -m comment --comment \"cilium-feeder: CILIUM_POST_nat\" -j CILIUM_POST_nat"
    );
    n.chain("CILIUM_PRE_nat");
    n.chain("CILIUM_OUTPUT_nat");
    let post = n.chain("CILIUM_POST_nat");
    rule!(post, "-A CILIUM_POST_nat -s 10.0.0.0/24 ! -d 10.0.0.0/8 ! -o cilium_+ -m comment --comment \"cilium masquerade non-cluster\" -j MASQUERADE");
    rule!(post, "-A CILIUM_POST_nat -m mark --mark 0xa00/0xe00 -m comment --comment \"exclude proxy return traffic from masquerade\" -j ACCEPT");
    rule!(post, "-A CILIUM_POST_nat -s 127.0.0.1/32 -o cilium_host -m comment --comment \"cilium host->cluster from 127.0.0.1 masquerade\" -j SNAT --to-source 10.0.0.1");
    rule!(post, "-A CILIUM_POST_nat -o cilium_host -m mark --mark 0xf00/0xf00 -m conntrack --ctstate DNAT -m comment --comment \"hairpin traffic that originated from a local pod\" -j SNAT --to-source 10.0.0.1");
}

fn tailscale(t: &mut Tables) {
    let f = &mut t.filter;
    rule!(f.chain("INPUT"), "-A INPUT -j ts-input");
    rule!(f.chain("FORWARD"), "-A FORWARD -j ts-forward");
    let inp = f.chain("ts-input");
    rule!(inp, "-A ts-input -s 100.101.102.103/32 -i lo -j ACCEPT");
    rule!(
        inp,
        "-A ts-input -s 100.115.92.0/23 ! -i tailscale0 -j RETURN"
    );
    rule!(inp, "-A ts-input -s 100.64.0.0/10 ! -i tailscale0 -j DROP");
    rule!(inp, "-A ts-input -i tailscale0 -j ACCEPT");
    rule!(inp, "-A ts-input -p udp -m udp --dport 41641 -j ACCEPT");
    let fwd = f.chain("ts-forward");
    rule!(
        fwd,
        "-A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000"
    );
    rule!(
        fwd,
        "-A ts-forward -m mark --mark 0x40000/0xff0000 -j ACCEPT"
    );
    rule!(fwd, "-A ts-forward -s 100.64.0.0/10 -o tailscale0 -j DROP");
    rule!(fwd, "-A ts-forward -o tailscale0 -j ACCEPT");
    rule!(
        t.nat.chain("POSTROUTING"),
        "-A POSTROUTING -j ts-postrouting"
    );
    rule!(
        t.nat.chain("ts-postrouting"),
        "-A ts-postrouting -m mark --mark 0x40000/0xff0000 -j MASQUERADE"
    );
}

/// Chain prefixes of the adversarial node's owners, each one registry entry's signature.
const ADVERSARIAL_PREFIXES: [&str; 12] = [
    "cali-",
    "ts-",
    "CILIUM_",
    "FLANNEL-",
    "ANTREA-",
    "WEAVE-",
    "KUBE-ROUTER-",
    "OVN-KUBE-",
    "NETBIRD-",
    "SUBMARINER-",
    "kubespan_",
    "mwan3_",
];

/// An adversarial mark-heavy node: `owners` programs, each writing, testing, saving and
/// restoring its own 8-bit mask, where owner `o`'s mask is `0xff << (4 o mod 24)`, so that
/// neighbours share four bits; `chains` mangle chains, owned in turn and jumped to from the five
/// mangle hooks in turn, with `rules_per_chain` rules each, mixing mark writes and clears, mark
/// tests that RETURN or ACCEPT, connmark saves and restores, and plain ACCEPTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adversarial {
    /// Owners, at most 12.
    pub owners: usize,
    /// User chains.
    pub chains: usize,
    /// Rules in each user chain.
    pub rules_per_chain: usize,
}

impl Adversarial {
    /// About `lines` lines of `iptables-save` output: chains of 30 rules (each chain costs two
    /// more lines, its declaration and its jump).
    pub fn with_lines(lines: usize, owners: usize) -> Self {
        Adversarial {
            owners,
            chains: (lines / 32).max(1),
            rules_per_chain: 30,
        }
    }
}

/// The adversarial node ([`Adversarial`]) as `iptables-save` prints it.
pub fn adversarial(a: Adversarial) -> String {
    const HOOKS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    let owners = a.owners.clamp(1, ADVERSARIAL_PREFIXES.len());
    let mut mangle = Table::new("mangle", &HOOKS);
    for c in 0..a.chains {
        let o = c % owners;
        let shift = (4 * o) % 24;
        let mask = 0xffu32 << shift;
        let name = format!("{}M{c}", ADVERSARIAL_PREFIXES[o]);
        rule!(mangle.chain(HOOKS[c % 5]), "-A {} -j {name}", HOOKS[c % 5]);
        let r = mangle.add(name.clone());
        for i in 0..a.rules_per_chain {
            let h = mix(((c as u64) << 20) ^ i as u64);
            let v = [0x1u32, 0x4, 0x10, 0x40][(h >> 8) as usize % 4] << shift;
            match h % 8 {
                0 | 1 => rule!(r, "-A {name} -j MARK --set-xmark {v:#x}/{v:#x}"),
                2 => rule!(r, "-A {name} -j MARK --set-xmark 0x0/{mask:#x}"),
                3 => rule!(r, "-A {name} -m mark --mark {v:#x}/{v:#x} -j RETURN"),
                4 => rule!(r, "-A {name} -m mark --mark {v:#x}/{v:#x} -j ACCEPT"),
                5 => rule!(
                    r,
                    "-A {name} -j CONNMARK --save-mark --nfmask {mask:#x} --ctmask {mask:#x}"
                ),
                6 => rule!(
                    r,
                    "-A {name} -j CONNMARK --restore-mark --nfmask {mask:#x} --ctmask {mask:#x}"
                ),
                _ => rule!(
                    r,
                    "-A {name} -p tcp -m tcp --dport {} -j ACCEPT",
                    1024 + (h >> 16) % 60000
                ),
            }
        }
    }
    let mut out = String::new();
    out.push_str("# Generated by iptables-save v1.8.9 (nf_tables) on Thu Jan  1 00:00:00 2026\n");
    mangle.write(&mut out);
    out.push_str("# Completed on Thu Jan  1 00:00:00 2026\n");
    out
}

/// kube-proxy's nftables-mode table, as `nft list ruleset` prints it.
pub fn kube_proxy_nft(k: KubeProxy) -> String {
    let services: Vec<Service> = (0..k.services)
        .map(|i| Service::new(i, k.endpoints))
        .collect();
    // nftables chain names: `service-<hash8>-ns/svc/proto/port`, `endpoint-…__ip/port`.
    let svc_chain = |s: &Service| {
        format!(
            "service-{}-{}/{}/{}/{}",
            &s.hash[..8],
            s.ns,
            s.name,
            s.proto,
            s.port_name
        )
    };
    let ext_chain = |s: &Service| {
        format!(
            "external-{}-{}/{}/{}/{}",
            &s.hash[..8],
            s.ns,
            s.name,
            s.proto,
            s.port_name
        )
    };
    let ep_chain = |s: &Service, j: usize| {
        format!(
            "endpoint-{}-{}/{}/{}/{}__{}/{}",
            &s.endpoint_hash(j)[..8],
            s.ns,
            s.name,
            s.proto,
            s.port_name,
            s.endpoint_ip(j),
            s.target_port
        )
    };
    let mut o = String::new();
    let out = &mut o;
    rule!(out, "table ip kube-proxy {{");
    rule!(out, "\tcomment \"rules for kube-proxy\"");
    // Sets and maps with their elements, one element a line.
    // Set and map elements, `per_line` to a line as nft wraps them.
    let elements = |out: &mut String, items: Vec<String>, per_line: usize| {
        if items.is_empty() {
            return;
        }
        out.push_str("\t\telements = { ");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(if i % per_line == 0 {
                    ",\n\t\t\t     "
                } else {
                    ", "
                });
            }
            out.push_str(item);
        }
        out.push_str(" }\n");
    };
    rule!(
        out,
        "\tset cluster-ips {{\n\t\ttype ipv4_addr\n\t\tcomment \"Active ClusterIPs\""
    );
    elements(
        out,
        services.iter().map(|s| s.cluster_ip.to_string()).collect(),
        2,
    );
    rule!(out, "\t}}");
    rule!(out, "\n\tset nodeport-ips {{\n\t\ttype ipv4_addr\n\t\tcomment \"IPs that accept NodePort traffic\"\n\t\telements = {{ 172.18.0.2 }}\n\t}}");
    rule!(out, "\n\tmap no-endpoint-services {{\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"vmap to drop or reject packets to services with no endpoints\"");
    elements(
        out,
        services
            .iter()
            .filter(|s| s.endpoints == 0)
            .map(|s| {
                format!(
                    "{} . {} . {} comment \"{}\" : goto reject-chain",
                    s.cluster_ip,
                    s.proto,
                    s.port,
                    s.spn()
                )
            })
            .collect(),
        1,
    );
    rule!(out, "\t}}");
    rule!(out, "\n\tmap no-endpoint-nodeports {{\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"vmap to drop or reject packets to service nodeports with no endpoints\"\n\t}}");
    rule!(out, "\n\tmap firewall-ips {{\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"destinations that are subject to LoadBalancerSourceRanges\"");
    elements(
        out,
        services
            .iter()
            .filter(|s| s.firewall && s.endpoints > 0)
            .filter_map(|s| {
                let lb = s.lb_ip.as_ref()?;
                Some(format!(
                    "{lb} . {} . {} comment \"{}\" : goto firewall-{}",
                    s.proto,
                    s.port,
                    s.spn(),
                    &svc_chain(s)["service-".len()..]
                ))
            })
            .collect(),
        1,
    );
    rule!(out, "\t}}");
    rule!(out, "\n\tmap service-ips {{\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n\t\tcomment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\"");
    let mut ips = Vec::new();
    for s in services.iter().filter(|s| s.endpoints > 0) {
        ips.push(format!(
            "{} . {} . {} : goto {}",
            s.cluster_ip,
            s.proto,
            s.port,
            svc_chain(s)
        ));
        if let Some(lb) = &s.lb_ip {
            ips.push(format!(
                "{lb} . {} . {} : goto {}",
                s.proto,
                s.port,
                ext_chain(s)
            ));
        }
    }
    elements(out, ips, 1);
    rule!(out, "\t}}");
    rule!(out, "\n\tmap service-nodeports {{\n\t\ttype inet_proto . inet_service : verdict\n\t\tcomment \"NodePort traffic\"");
    elements(
        out,
        services
            .iter()
            .filter(|s| s.endpoints > 0)
            .filter_map(|s| {
                Some(format!(
                    "{} . {} : goto {}",
                    s.proto,
                    s.node_port?,
                    ext_chain(s)
                ))
            })
            .collect(),
        1,
    );
    rule!(out, "\t}}");

    for (name, hook, prio, rules) in [
        (
            "filter-prerouting",
            "filter hook prerouting",
            "dstnat - 10",
            &["ct state new jump firewall-check"][..],
        ),
        (
            "filter-input",
            "filter hook input",
            "-110",
            &[
                "ct state new jump nodeport-endpoints-check",
                "ct state new jump service-endpoints-check",
            ],
        ),
        (
            "filter-forward",
            "filter hook forward",
            "-110",
            &[
                "ct state new jump service-endpoints-check",
                "ct state new jump cluster-ips-check",
            ],
        ),
        (
            "filter-output",
            "filter hook output",
            "-110",
            &[
                "ct state new jump service-endpoints-check",
                "ct state new jump firewall-check",
            ],
        ),
        (
            "filter-output-post-dnat",
            "filter hook output",
            "-90",
            &["ct state new jump cluster-ips-check"],
        ),
        (
            "nat-prerouting",
            "nat hook prerouting",
            "dstnat",
            &["jump services"],
        ),
        ("nat-output", "nat hook output", "-100", &["jump services"]),
        (
            "nat-postrouting",
            "nat hook postrouting",
            "srcnat",
            &["jump masquerading"],
        ),
    ] {
        rule!(
            out,
            "\n\tchain {name} {{\n\t\ttype {hook} priority {prio}; policy accept;"
        );
        for r in rules {
            rule!(out, "\t\t{r}");
        }
        rule!(out, "\t}}");
    }
    for (name, rules) in [
        (
            "nodeport-endpoints-check",
            &["ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"][..],
        ),
        (
            "service-endpoints-check",
            &["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"],
        ),
        (
            "firewall-check",
            &["ip daddr . meta l4proto . th dport vmap @firewall-ips"],
        ),
        (
            "services",
            &[
                "ip daddr . meta l4proto . th dport vmap @service-ips",
                "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
            ],
        ),
        (
            "masquerading",
            &[
                "meta mark & 0x00004000 == 0x00000000 return",
                "meta mark set meta mark ^ 0x00004000",
                "masquerade fully-random",
            ],
        ),
        (
            "cluster-ips-check",
            &[
                "ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"",
                "ip daddr 10.96.0.0/12 drop comment \"Drop traffic to unallocated ClusterIPs\"",
            ],
        ),
        (
            "mark-for-masquerade",
            &["meta mark set meta mark | 0x00004000"],
        ),
        ("reject-chain", &["reject"]),
    ] {
        rule!(out, "\n\tchain {name} {{");
        for r in rules {
            rule!(out, "\t\t{r}");
        }
        rule!(out, "\t}}");
    }
    for s in services.iter().filter(|s| s.endpoints > 0) {
        let svc = svc_chain(s);
        rule!(out, "\n\tchain {svc} {{");
        rule!(
            out,
            "\t\tip daddr {} {} dport {} ip saddr != {POD_CIDR} jump mark-for-masquerade",
            s.cluster_ip,
            s.proto,
            s.port
        );
        let targets: Vec<String> = (0..s.endpoints)
            .map(|j| format!("{j} : goto {}", ep_chain(s, j)))
            .collect();
        rule!(
            out,
            "\t\tnumgen random mod {} vmap {{ {} }}",
            s.endpoints,
            targets.join(", ")
        );
        rule!(out, "\t}}");
        if s.node_port.is_some() || s.lb_ip.is_some() {
            rule!(out, "\n\tchain {} {{", ext_chain(s));
            rule!(out, "\t\tjump mark-for-masquerade");
            rule!(out, "\t\tgoto {svc}");
            rule!(out, "\t}}");
        }
        if s.firewall {
            rule!(out, "\n\tchain firewall-{} {{", &svc["service-".len()..]);
            rule!(out, "\t\tip saddr != 198.51.100.0/24 drop");
            rule!(out, "\t}}");
        }
        for j in 0..s.endpoints {
            let ip = s.endpoint_ip(j);
            rule!(out, "\n\tchain {} {{", ep_chain(s, j));
            rule!(out, "\t\tip saddr {ip} jump mark-for-masquerade");
            rule!(
                out,
                "\t\tmeta l4proto {} dnat to {ip}:{}",
                s.proto,
                s.target_port
            );
            rule!(out, "\t}}");
        }
    }
    rule!(out, "}}");
    o
}

/// A `.tar.gz` of `(path, content)` files, for tests of archive reading.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        // Writing into memory cannot fail.
        let _ = tar.append_data(&mut h, name, *data);
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .unwrap_or_default()
}

/// A `.zip` (deflated) of `(path, content)` files, for tests of archive reading.
pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        // Writing into memory cannot fail.
        let _ = z.start_file(*name, options);
        let _ = z.write_all(data);
    }
    z.finish().map(|c| c.into_inner()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_spec() {
        let k = KubeProxy::with_lines(10_000, 2);
        let text = iptables_save(&Node {
            kube_proxy: Some(k),
            ..Node::default()
        });
        let lines = text.lines().count();
        assert!((9_000..11_000).contains(&lines), "{lines} lines");
    }

    #[test]
    fn output_is_deterministic() {
        let node = Node {
            kube_proxy: Some(KubeProxy {
                services: 30,
                endpoints: 3,
            }),
            calico: Some(Calico {
                endpoints: 5,
                policies: 3,
            }),
            cilium: true,
            tailscale: true,
        };
        assert_eq!(iptables_save(&node), iptables_save(&node));
        let adv = Adversarial::with_lines(2_000, 5);
        assert_eq!(adversarial(adv), adversarial(adv));
        let nft = kube_proxy_nft(KubeProxy {
            services: 30,
            endpoints: 3,
        });
        assert!(nft.starts_with("table ip kube-proxy {"));
        assert!(nft.contains("numgen random mod 3 vmap"));
    }

    #[test]
    fn chain_names_fit_iptables() {
        let node = Node {
            kube_proxy: Some(KubeProxy {
                services: 60,
                endpoints: 2,
            }),
            calico: Some(Calico {
                endpoints: 30,
                policies: 4,
            }),
            cilium: true,
            tailscale: true,
        };
        let text = iptables_save(&node) + &adversarial(Adversarial::with_lines(40_000, 12));
        for l in text.lines().filter(|l| l.starts_with(':')) {
            let name = l[1..].split(' ').next().unwrap_or("");
            assert!(name.len() <= 28, "{name}");
        }
    }
}
