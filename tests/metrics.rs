//! ferrovsd's Prometheus endpoint against the real tools: promtool checks a
//! live scrape under traffic, a real Prometheus server scrapes it and its
//! PromQL `rate()` must match a known packet stream, and hostile HTTP
//! clients get errors without disturbing anything.

use ferrovs_tests::*;
use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn vu(sock: &std::path::Path) -> String {
    format!("--port=virtio-user:path={}", sock.display())
}

fn promtool_check(text: &str) -> (bool, String) {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: apt-get install prometheus (the README's test command does)");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn live_scrape_under_traffic_passes_promtool_and_matches_the_counters() {
    let _g = serial();
    let dir = TempDir::new("mx-live");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let socks = [sw.port_socket("vhost0"), sw.port_socket("vhost1")];
    let run = FerrovsTestpmd::spawn(&[
        vu(&socks[0]),
        vu(&socks[1]),
        "--forward-mode=flowgen".into(),
        "--tx-pps=100000".into(),
        "--lcores=0".into(),
        "--duration=4".into(),
    ]);
    std::thread::sleep(Duration::from_secs(2));
    let text = sw.scrape();
    let (ok, out) = promtool_check(&text);
    assert!(ok, "promtool check metrics failed:\n{out}\n{text}");
    assert!(text.contains("ferrovs_pmd_packets_total{core="), "{text}");
    run.finish(Duration::from_secs(20));
    sw.wait_quiet(&["vhost0", "vhost1"]);
    let text = sw.scrape();
    for name in ["vhost0", "vhost1"] {
        let c = sw.port(name);
        let q = format!("{{port=\"{name}\",queue=\"0\"}}");
        assert_eq!(
            sample(&text, &format!("ferrovs_port_rx_packets_total{q}")),
            Some(c.rx as f64),
            "{name}"
        );
        assert_eq!(
            sample(&text, &format!("ferrovs_port_tx_packets_total{q}")),
            Some(c.tx as f64),
            "{name}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("ferrovs_port_link_up{{port=\"{name}\",type=\"vhost-user\"}}")
            ),
            Some(0.0),
            "the peer has gone"
        );
    }
    assert_eq!(sample(&text, "ferrovs_fdb_entries"), Some(2.0));
    assert!(sample(&text, "ferrovs_fdb_learned_total").unwrap() >= 2.0);
    assert!(sample(&text, "ferrovs_mbufs").unwrap() > 0.0);
    let pmd_total: f64 = text
        .lines()
        .filter(|l| l.starts_with("ferrovs_pmd_packets_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(
        pmd_total,
        (sw.port("vhost0").rx + sw.port("vhost1").rx) as f64
    );
}

#[test]
fn hostile_http_clients_get_errors_and_change_nothing() {
    let _g = serial();
    let dir = TempDir::new("mx-hostile");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let addr = sw.ok("show", serde_json::json!({}))["metrics_addr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "loopback only by default: {addr}"
    );
    assert!(http_get(&addr, "/nope").0.contains("404"));
    // Garbage, a request that never ends, a huge header, a silent client.
    for payload in [
        &b"\x00\xff garbage\r\n\r\n"[..],
        &b"GET /metrics HTTP/1.1\r\nX: "[..],
    ] {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        let _ = c.write_all(payload);
    }
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    let _ = c.write_all(&vec![b'a'; 20_000]);
    let _silent = std::net::TcpStream::connect(&addr).unwrap();
    let mut post = std::net::TcpStream::connect(&addr).unwrap();
    write!(post, "POST /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut post, &mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
    // Still serving and still switching.
    let (status, body) = http_get(&addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("ferrovs_build_info"));
    sw.ok("show", serde_json::json!({}));
}

/// A Prometheus server scraping ferrovsd every second, in its own dir.
struct PromServer {
    child: Option<Child>,
    addr: String,
}

impl PromServer {
    fn start(dir: &std::path::Path, target: &str) -> PromServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ferrovsd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus not found: apt-get install prometheus");
        PromServer {
            child: Some(child),
            addr: format!("127.0.0.1:{port}"),
        }
    }

    fn query(&self, promql: &str) -> Option<Value> {
        let q: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let conn = std::net::TcpStream::connect(&self.addr).ok()?;
        drop(conn);
        let (status, body) = http_get(&self.addr, &format!("/api/v1/query?query={q}"));
        status
            .contains("200")
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn prometheus_rate_matches_a_known_packet_stream() {
    let _g = serial();
    let dir = TempDir::new("mx-prom");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let target = sw.ok("show", serde_json::json!({}))["metrics_addr"]
        .as_str()
        .unwrap()
        .to_string();
    let prom = PromServer::start(dir.path(), &target);
    let run = FerrovsTestpmd::spawn(&[
        vu(&sw.port_socket("vhost0")),
        "--forward-mode=txonly".into(),
        "--tx-pps=50000".into(),
        "--lcores=0".into(),
        "--duration=16".into(),
    ]);
    // Let a few scrapes of steady traffic accumulate, then ask.
    std::thread::sleep(Duration::from_secs(10));
    let promql = "sum(rate(ferrovs_port_rx_packets_total{port=\"vhost0\"}[5s]))";
    let t0 = Instant::now();
    let rate = loop {
        let v = prom.query(promql);
        let r = v
            .as_ref()
            .and_then(|v| {
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .map(String::from)
            })
            .and_then(|s| s.parse::<f64>().ok());
        if let Some(r) = r {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no answer from Prometheus: {v:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    // Every query of the Grafana board is valid PromQL with data behind it.
    let board: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/grafana-ferrovs.json"
        ))
        .unwrap(),
    )
    .unwrap();
    for p in board["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "5s")
                .replace("$instance", ".*");
            let v = prom
                .query(&e)
                .unwrap_or_else(|| panic!("Prometheus refused {e:?}"));
            assert_eq!(v["status"], "success", "{e}: {v}");
            // Drop series exist only once something was dropped for that reason.
            if !e.contains("_dropped_total") {
                assert!(
                    !v["data"]["result"].as_array().unwrap().is_empty(),
                    "no data for {e}"
                );
            }
        }
    }
    let s = run.finish(Duration::from_secs(30));
    eprintln!("Prometheus rate(): {rate:.0} pkt/s for a 50000 pkt/s stream");
    assert!(
        (rate - 50_000.0).abs() / 50_000.0 < 0.10,
        "rate() {rate} vs 50000 pkt/s; {s:#}"
    );
}

#[test]
fn prometheus_config_example_is_valid() {
    let o = Command::new("promtool")
        .args([
            "check",
            "config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/prometheus.yml"),
        ])
        .output()
        .expect("promtool");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn ctl_top_shows_ports_and_cores() {
    let _g = serial();
    let dir = TempDir::new("mx-top");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let o = Command::new(bin("ferrovs-ctl"))
        .arg("--socket")
        .arg(sw.socket())
        .args(["top", "interval=0.2", "count=2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(text.matches("PMD CORE").count(), 2, "{text}");
    assert!(text.contains("vhost0") && text.contains("vhost1"), "{text}");
    // OVS's name for the PMD summary works too.
    let o = Command::new(bin("ferrovs-ctl"))
        .arg("--socket")
        .arg(sw.socket())
        .arg("pmd-stats-show")
        .output()
        .unwrap();
    assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("avg batch"));
}

/// Trickles `byte` every 200 ms into `w` until the peer stops taking it or
/// `limit` passes; returns how long the peer kept the connection.
fn trickle(mut w: impl Write, limit: Duration) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if w.write_all(b"G").and_then(|_| w.flush()).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    t0.elapsed()
}

/// Slowloris (issue 12): clients that send a byte every 200 ms hold neither
/// /metrics nor a management slot. Other scrapes are answered meanwhile, and
/// each slow request is cut off at its deadline with an error.
#[test]
fn slow_clients_hold_neither_metrics_nor_the_management_socket() {
    let _g = serial();
    let dir = TempDir::new("mx-slow");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let addr = sw.ok("show", serde_json::json!({}))["metrics_addr"]
        .as_str()
        .unwrap()
        .to_string();
    let slow_http: Vec<_> = (0..3)
        .map(|_| {
            let c = std::net::TcpStream::connect(&addr).unwrap();
            std::thread::spawn(move || trickle(c, Duration::from_secs(20)))
        })
        .collect();
    let mgmt = std::os::unix::net::UnixStream::connect(sw.socket()).unwrap();
    let mut mgmt_reply = mgmt.try_clone().unwrap();
    let slow_mgmt = std::thread::spawn(move || trickle(mgmt, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..5 {
        let t0 = Instant::now();
        let (status, body) = http_get(&addr, "/metrics");
        assert!(status.contains("200"), "{status}");
        assert!(body.contains("ferrovs_build_info"));
        // The old single-threaded server made this wait for the slow clients.
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "a scrape waited {:?}",
            t0.elapsed()
        );
        sw.ok("show", serde_json::json!({}));
    }
    for h in slow_http {
        let held = h.join().unwrap();
        assert!(
            held < Duration::from_secs(10),
            "an HTTP slowloris held on for {held:?}"
        );
    }
    let held = slow_mgmt.join().unwrap();
    assert!(
        held < Duration::from_secs(12),
        "a management slowloris held on for {held:?}"
    );
    let mut reply = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(&mut mgmt_reply)
        .read_line(&mut reply)
        .unwrap();
    assert!(reply.contains("not complete within"), "{reply}");
}
