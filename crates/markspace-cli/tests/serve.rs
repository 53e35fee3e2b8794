//! `markspace serve`: a real Prometheus scraping the exporter inside a network namespace whose
//! rules collide, then not; the textfile mode; a deadline that kills a cycle; 1,000 parallel
//! scrapes; the exporter's memory on the 230k-line node.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netns_testkit::{is_root, Netns};

use crate::util::{root, Dir};

/// A child process killed when dropped (also when the test panics).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` over HTTP/1.0: the status code and the body. Hand-written: a test needs no HTTP
/// client crate for one request shape.
fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// A free loopback port (bound, then released for the exporter).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until `f` returns `Some`, or panics after `secs` with `what`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `serve` on snapshots at a fresh loopback port, once its first audit is served.
fn serve_snapshot(paths: &[&str], interval: &str) -> (Killed, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_markspace"))
        .args(["serve", "--listen", &addr, "--interval", interval])
        .args(paths)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    wait_for(120, "the first audit", || {
        get(&addr, "/healthz")
            .ok()
            .filter(|(_, b)| b.contains(": complete"))
    });
    (child, addr)
}

/// VmRSS and VmHWM of a process, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Calico's accept bit and Tailscale's subnet-route mask in one FORWARD path (MS001, error).
pub(crate) const CONFLICT: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:cali-FORWARD - [0:0]
:ts-forward - [0:0]
-A FORWARD -m comment --comment \"cali:wUHhoiAYhphO9Mso\" -j cali-FORWARD
-A FORWARD -j ts-forward
-A FORWARD -m comment --comment \"cali:S93hcgKJrXEqnTfs\" -m mark --mark 0x10000/0x10000 -j ACCEPT
-A cali-FORWARD -m comment --comment \"cali:A_sPAO0mcxbT9mOV\" -j MARK --set-xmark 0x10000/0x10000
-A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000
-A ts-forward -m mark --mark 0x40000/0xff0000 -j ACCEPT
COMMIT
";

/// The acceptance test: Prometheus (Debian's `prometheus`) scrapes `serve` in a namespace with
/// colliding rules and sees `markspace_findings{severity="error"}` above 0; once the rules are
/// flushed, the next collection brings it to 0.
#[test]
fn prometheus_sees_the_error_come_and_go() {
    if !is_root() {
        eprintln!("prometheus test SKIPPED: not root (CI runs as root)");
        return;
    }
    let ns = Netns::new("serve");
    ns.exec(&["iptables-restore"], Some(CONFLICT));
    let d = Dir::new();
    let config = d.file(
        "prometheus.yml",
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: markspace\n    static_configs:\n      - targets: ['127.0.0.1:9745']\n",
    );
    let netns = |argv: &[&str]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns.name()]).args(argv);
        c
    };
    let _serve = Killed(
        netns(&[
            env!("CARGO_BIN_EXE_markspace"),
            "serve",
            "--listen",
            "127.0.0.1:9745",
            "--interval",
            "1",
            "--timeout",
            "30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let data = d.path().join("tsdb");
    let _prometheus = Killed(
        netns(&[
            "prometheus",
            &format!("--config.file={config}"),
            &format!("--storage.tsdb.path={}", data.display()),
            "--web.listen-address=127.0.0.1:9090",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs (scripts/test.sh installs Debian's prometheus)"),
    );
    let query = |expr: &str| -> Option<f64> {
        let out = netns(&[
            "promtool",
            "query",
            "instant",
            "-o",
            "json",
            "http://127.0.0.1:9090",
            expr,
        ])
        .output()
        .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        json.as_array()?.first()?["value"][1].as_str()?.parse().ok()
    };
    let expr = r#"sum(markspace_findings{severity="error"})"#;
    let errors = wait_for(90, "Prometheus to scrape an error finding", || {
        query(expr).filter(|v| *v > 0.0)
    });
    assert!(errors >= 1.0);
    // The exporter says which source each value came from, and that the collection worked.
    assert_eq!(
        query(r#"markspace_collect_success{source="iptables-save"}"#),
        Some(1.0)
    );
    assert_eq!(
        query(r#"markspace_bit_owner_info{field="mark",bit="18",owner="tailscale"}"#),
        Some(1.0)
    );
    ns.exec(&["iptables", "-F"], None);
    ns.exec(&["iptables", "-X"], None);
    wait_for(60, "the error finding to go back to 0", || {
        query(expr).filter(|v| *v == 0.0)
    });
}

/// `--textfile` writes the metrics and exits; a deadline too short for any audit kills the
/// cycle, writes `collect_success{source="audit"} 0` and exits 3.
#[test]
fn textfile_is_written_and_a_timeout_is_a_failure() {
    let d = Dir::new();
    let node = d.file("node.rules", CONFLICT);
    let out = d.path().join("markspace.prom");
    let out_s = out.display().to_string();
    let r = crate::util::run(&["serve", "--textfile", &out_s, &node]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("markspace_findings{code=\"MS001\",severity=\"error\"} 1"),
        "{text}"
    );
    assert!(text.contains("markspace_collect_success{source=\"audit\"} 1"));
    assert!(text.ends_with("# EOF\n"));
    // Nothing but the file itself is left in its directory (the temporary file was renamed).
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    let r = crate::util::run(&["serve", "--textfile", &out_s, "--timeout", "0.001", &node]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("markspace_collect_success{source=\"audit\"} 0"),
        "{text}"
    );
    assert!(text.contains("markspace_collections_total{result=\"timeout\"} 1"));
    assert!(!text.contains("markspace_findings"), "{text}");
}

/// 1,000 scrapes at once on loopback: every one answered with the whole metrics text, and a
/// second round leaves the exporter's memory where the first left it.
#[test]
fn survives_a_thousand_parallel_scrapes_without_growth() {
    let (child, addr) = serve_snapshot(&["examples/nodes/tailscale-calico"], "3600");
    let round = || {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(1000));
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let addr = addr.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    get(&addr, "/metrics")
                })
            })
            .collect();
        for h in handles {
            let (code, body) = h.join().unwrap().expect("every scrape connects and reads");
            assert_eq!(code, 200);
            assert!(body.ends_with("# EOF\n"), "{body}");
            assert!(body.contains("markspace_findings{code=\"MS001\",severity=\"error\"} 1"));
        }
    };
    round();
    std::thread::sleep(Duration::from_secs(1));
    let (first, _) = rss_kb(child.0.id());
    round();
    std::thread::sleep(Duration::from_secs(1));
    let (second, peak) = rss_kb(child.0.id());
    eprintln!("serve RSS after 1,000 parallel scrapes: {first} kB; after 1,000 more: {second} kB (peak {peak} kB)");
    assert!(
        second <= first + 512,
        "RSS grew from {first} kB to {second} kB over the second 1,000 scrapes"
    );
}

/// On the 230k-line node (kube-proxy, `markspace::generate`), the exporter holds under 30 MB
/// between collections: the audit runs in a child process whose memory goes with it.
#[test]
fn stays_under_30_mb_between_collections_on_the_230k_line_node() {
    let d = Dir::new();
    let node = markspace::generate::Node {
        kube_proxy: Some(markspace::generate::KubeProxy::with_lines(230_000, 3)),
        ..Default::default()
    };
    let text = markspace::generate::iptables_save(&node);
    let lines = text.lines().count();
    let file = d.file("iptables-save.txt", &text);
    drop(text);
    let (child, addr) = serve_snapshot(&[&file], "3600");
    let (code, body) = get(&addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("markspace_rules "), "{body}");
    let (rss, peak) = rss_kb(child.0.id());
    eprintln!("serve on a {lines}-line node: RSS {rss} kB between collections, peak {peak} kB");
    assert!(lines > 200_000);
    assert!(rss < 30 * 1024, "RSS {rss} kB");
}
