//! Ports coming and going under traffic, peers reconnecting, clean shutdown.

use ferrovs_tests::*;
use serde_json::json;
use std::time::Duration;

/// B's delivered count grows over `secs` while traffic runs.
fn delivered_grows(sw: &Ferrovsd, port: &str, secs: f64) -> u64 {
    let before = sw.port(port).tx;
    std::thread::sleep(Duration::from_secs_f64(secs));
    let after = sw.port(port).tx;
    assert!(
        after > before + 100,
        "{port} stopped receiving: {before} -> {after}"
    );
    after - before
}

#[test]
fn ports_are_added_and_removed_while_traffic_flows() {
    let _g = serial();
    let dir = TempDir::new("ports");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(3)));
    let mut rx = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    rx.cmd("start");
    let mut tx = Testpmd::start(&sw.port_socket("vhost0"), &mac(1), "txonly", &mac(2));
    tx.cmd("start");
    delivered_grows(&sw, "vhost1", 1.0);

    // Add a port at runtime; attach a peer to it; remove another, all under traffic.
    let sock = sw.run_dir.join("extra.sock");
    sw.ok(
        "add-port",
        json!({ "name": "extra", "type": "vhost-user", "path": sock.to_str().unwrap() }),
    );
    assert!(sock.exists());
    let mut extra = Testpmd::start(&sock, &mac(9), "rxonly", &mac(1));
    extra.cmd("start");
    delivered_grows(&sw, "vhost1", 0.5);
    sw.ok("del-port", json!({ "name": "vhost2" }));
    assert!(
        !sw.port_socket("vhost2").exists(),
        "a removed port's socket is unlinked"
    );
    delivered_grows(&sw, "vhost1", 0.5);
    sw.ok("del-port", json!({ "name": "extra" }));
    delivered_grows(&sw, "vhost1", 0.5);

    let names = sw.port_names();
    assert_eq!(names, vec!["vhost0", "vhost1"]);
    assert!(sw.request("del-port", json!({ "name": "vhost2" }))["error"]
        .as_str()
        .unwrap()
        .contains("no port"));
    tx.cmd("stop");
}

#[test]
fn killed_testpmd_reconnects_and_traffic_resumes() {
    let _g = serial();
    let dir = TempDir::new("reconn");
    let sw = Ferrovsd::start(dir.path(), None);
    let mut rx = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    rx.cmd("start");
    let mut tx = Testpmd::start(&sw.port_socket("vhost0"), &mac(1), "txonly", &mac(2));
    tx.cmd("start");
    delivered_grows(&sw, "vhost1", 1.0);
    rx.kill9();
    drop(rx);
    std::thread::sleep(Duration::from_millis(500));
    let show = sw.ok("show", json!({}));
    assert_eq!(
        show["ports"][1]["link"], "down",
        "a vanished peer shows as down"
    );
    let mut rx = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    rx.cmd("start");
    delivered_grows(&sw, "vhost1", 1.0);
    let (got, _) = rx.stats();
    assert!(got > 0, "the restarted receiver gets traffic");
    let show = sw.ok("show", json!({}));
    assert_eq!(show["ports"][1]["connections"], "2");
    tx.cmd("stop");
}

#[test]
fn sigterm_stops_cleanly_and_removes_sockets() {
    let _g = serial();
    let dir = TempDir::new("term");
    let mut sw = Ferrovsd::start(dir.path(), None);
    let mut rx = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    rx.cmd("start");
    let mut tx = Testpmd::start(&sw.port_socket("vhost0"), &mac(1), "txonly", &mac(2));
    tx.cmd("start");
    delivered_grows(&sw, "vhost1", 0.5);
    let pid = sw.pid();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert!(
        threads >= 4,
        "expected PMD, vhost control, management threads; saw {threads}"
    );
    let comms: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        // A short-lived thread may be gone by the time its comm is read.
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect();
    assert!(
        comms.contains(&format!("pmd{}", pmd_cpu())),
        "PMD thread named pmd<core>: {comms:?}"
    );
    let code = sw.terminate(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log:\n{}", sw.log_text());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "no process or thread left behind"
    );
    let left: Vec<_> = std::fs::read_dir(&sw.run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sock"))
        .collect();
    assert!(left.is_empty(), "sockets left in the run dir: {left:?}");
    assert!(sw.log_text().contains("stopped"));
}

/// Started under `taskset -c 0` with its PMD on CPU 1 (OVS's pmd-cpu-mask
/// may name CPUs outside the inherited affinity too): the PMD runs on 1,
/// every other thread (vhost control, management, OpenFlow, metrics,
/// housekeeping) on 0.
#[test]
fn the_pmd_gets_its_core_and_every_other_thread_the_control_cores() {
    if pmd_cpu() < 1 {
        eprintln!("SKIPPED: needs 2 CPUs");
        return;
    }
    let _g = serial();
    let dir = TempDir::new("cores");
    let sw = Ferrovsd::start_under(dir.path(), None, "1", &["taskset", "-c", "0"]);
    // A scrape starts the metrics server's connection thread too.
    let _ = sw.scrape();
    let show = sw.ctl(&["show"]);
    assert!(show.contains("control threads on CPU(s) 0"), "{show}");
    let mut seen = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{}/task", sw.pid())).unwrap() {
        let t = t.unwrap().path();
        // A short-lived thread may be gone by now.
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(t.join("comm")),
            std::fs::read_to_string(t.join("status")),
        ) else {
            continue;
        };
        let comm = comm.trim().to_string();
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string();
        let want = if comm.starts_with("pmd") { "1" } else { "0" };
        assert_eq!(cpus, want, "thread {comm} may run on {cpus}");
        seen.push(comm);
    }
    assert!(seen.iter().any(|c| c == "pmd1"), "{seen:?}");
    assert!(seen.len() >= 4, "{seen:?}");
}
