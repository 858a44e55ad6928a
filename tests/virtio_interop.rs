//! Our virtio-user driver (through ferrovs-testpmd) against vhost-user
//! backends: DPDK testpmd's net_vhost and ferrovsd's own vhost-user ports.
//! (OVS-DPDK's dpdkvhostuser is in virtio_ovs.rs.)
//!
//! Every run sends random payloads with a checksum from two ports at once
//! (flowgen, paced so no ring overflows) and checks at the far end that
//! every frame arrived intact; the backend's own counters must agree.

use ferrovs_tests::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// dpdk-testpmd forwarding (io) between two net_vhost ports on CPU 1.
struct DpdkVhostSwitch {
    child: Option<Child>,
    out: Arc<Mutex<String>>,
    socks: [PathBuf; 2],
}

impl DpdkVhostSwitch {
    fn start(dir: &Path, queues: usize) -> DpdkVhostSwitch {
        let socks = [dir.join("vh0.sock"), dir.join("vh1.sock")];
        let mut child = Command::new("stdbuf")
            .args([
                "-o0",
                "-e0",
                "dpdk-testpmd",
                "-l",
                "0,1",
                "--main-lcore",
                "0",
                "--no-pci",
            ])
            .args(["--no-huge", "-m", "1024", "--file-prefix"])
            .arg(format!("fvi{}", std::process::id()))
            .arg("--vdev")
            .arg(format!(
                "net_vhost0,iface={},queues={queues}",
                socks[0].display()
            ))
            .arg("--vdev")
            .arg(format!(
                "net_vhost1,iface={},queues={queues}",
                socks[1].display()
            ))
            .args([
                "--",
                "-a",
                "--forward-mode=io",
                "--nb-cores=1",
                "--no-mlockall",
            ])
            // A stats period keeps non-interactive testpmd running without stdin.
            .args(["--total-num-mbufs=32768", "--stats-period=1"])
            .arg(format!("--rxq={queues}"))
            .arg(format!("--txq={queues}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run dpdk-testpmd (apt-get install dpdk-dev)");
        let out = capture_output(&mut child);
        let sw = DpdkVhostSwitch {
            child: Some(child),
            out,
            socks,
        };
        let t0 = std::time::Instant::now();
        while !sw.socks.iter().all(|s| s.exists()) {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "net_vhost sockets missing: {}",
                sw.out.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sw
    }

    /// Stops testpmd (SIGINT) and returns each port's (rx, tx) from its
    /// final statistics.
    fn stop(mut self) -> Vec<(u64, u64)> {
        let mut c = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
        let _ = c.wait();
        std::thread::sleep(Duration::from_millis(100));
        let text = self.out.lock().unwrap().clone();
        let mut ports = Vec::new();
        let num = |s: &str, key: &str| -> u64 {
            s.split(key)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap()
        };
        // Final per-port blocks: "---- Forward statistics for port N ----"
        for block in text.split("Forward statistics for port").skip(1) {
            if ports.len() == 2 {
                break;
            }
            ports.push((num(block, "RX-packets:"), num(block, "TX-packets:")));
        }
        assert_eq!(
            ports.len(),
            2,
            "no final statistics in testpmd output:\n{text}"
        );
        ports
    }
}

impl Drop for DpdkVhostSwitch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The runtime directory testpmd's EAL made for its file prefix.
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/fvi{}", std::process::id()));
    }
}

fn vu(sock: &Path, extra: &str) -> String {
    format!("--port=virtio-user:path={}{extra}", sock.display())
}

/// flowgen through a backend joining `socks`, after a tx-first burst per
/// port (counted in the port totals, unchecked); returns the summary after
/// checking every generated frame came back intact.
fn flowgen_through(socks: &[PathBuf; 2], extra: &str, size: usize, pkts: u64, pps: u64) -> Value {
    // 4096-entry rings hold 40 ms at 100 kpps per port: a backend that
    // stalls for a scheduler slice on this busy 2-vCPU machine (the debug
    // ferrovsd does, now and then) must not turn into lost frames.
    let extra = if extra.contains("queue-size") {
        extra.to_string()
    } else {
        format!("{extra},queue-size=4096")
    };
    let args: Vec<String> = vec![
        vu(&socks[0], &extra),
        vu(&socks[1], &extra),
        "--forward-mode=flowgen".into(),
        "--tx-first".into(),
        "--flows=16".into(),
        format!("--txpkts={size}"),
        format!("--nb-pkts={pkts}"),
        format!("--tx-pps={pps}"),
        "--lcores=0".into(),
        "--link-wait=20".into(),
        "--duration=60".into(),
    ];
    let s = ferrovs_testpmd(&args, Duration::from_secs(90));
    let generated = s["generated"].as_u64().unwrap();
    assert_eq!(generated, pkts, "{s:#}");
    assert_eq!(s["checked"]["bad"], 0, "corrupted frames: {s:#}");
    assert_eq!(
        s["checked"]["good"].as_u64().unwrap(),
        generated,
        "frames lost: {s:#}"
    );
    for p in s["ports"].as_array().unwrap() {
        assert!(p["drops"].as_object().unwrap().is_empty(), "drops: {s:#}");
        assert_eq!(p["link_up"], true);
    }
    s
}

fn port_field(s: &Value, port: usize, f: &str) -> u64 {
    s["ports"][port][f].as_u64().unwrap()
}

#[test]
fn virtio_user_through_dpdk_net_vhost() {
    let _g = serial();
    let dir = TempDir::new("vi-dpdk");
    let sw = DpdkVhostSwitch::start(dir.path(), 1);
    let s = flowgen_through(&sw.socks, "", 64, 200_000, 200_000);
    let dpdk = sw.stop();
    // What we sent on port i, net_vhost i received; what it sent, we received.
    for i in 0..2 {
        assert_eq!(
            dpdk[i].0,
            port_field(&s, i, "tx_packets"),
            "port {i}: {dpdk:?} {s:#}"
        );
        assert_eq!(
            dpdk[i].1,
            port_field(&s, i, "rx_packets"),
            "port {i}: {dpdk:?} {s:#}"
        );
    }
}

#[test]
fn virtio_user_jumbo_indirect_without_mergeable_buffers_or_event_idx() {
    let _g = serial();
    let dir = TempDir::new("vi-dpdk2");
    let sw = DpdkVhostSwitch::start(dir.path(), 1);
    let s = flowgen_through(
        &sw.socks,
        ",tx-indirect=1,mrg-rxbuf=0,event-idx=0",
        1518,
        50_000,
        50_000,
    );
    let dpdk = sw.stop();
    let sent = port_field(&s, 0, "tx_packets") + port_field(&s, 1, "tx_packets");
    assert_eq!(dpdk[0].0 + dpdk[1].0, sent, "{dpdk:?} {s:#}");
}

#[test]
fn virtio_user_multiqueue_with_dpdk_net_vhost() {
    let _g = serial();
    let dir = TempDir::new("vi-dpdkmq");
    let sw = DpdkVhostSwitch::start(dir.path(), 2);
    let s = flowgen_through(&sw.socks, ",queues=2", 64, 100_000, 100_000);
    let dpdk = sw.stop();
    let sent = port_field(&s, 0, "tx_packets") + port_field(&s, 1, "tx_packets");
    assert_eq!(dpdk[0].0 + dpdk[1].0, sent, "{dpdk:?} {s:#}");
}

fn two_port_ferrovsd(dir: &Path) -> Ferrovsd {
    Ferrovsd::start(dir, Some(&config_with_ports(2)))
}

#[test]
fn virtio_user_through_ferrovsd_vhost_user() {
    let _g = serial();
    let dir = TempDir::new("vi-fv");
    let sw = two_port_ferrovsd(dir.path());
    let socks = [sw.port_socket("vhost0"), sw.port_socket("vhost1")];
    let s = flowgen_through(&socks, "", 64, 200_000, 200_000);
    sw.wait_quiet(&["vhost0", "vhost1"]);
    for (i, name) in ["vhost0", "vhost1"].iter().enumerate() {
        let c = sw.port(name);
        assert_eq!(c.rx, port_field(&s, i, "tx_packets"), "{name}");
        assert_eq!(c.tx, port_field(&s, i, "rx_packets"), "{name}");
        assert!(c.rx_drops.is_empty(), "{name}: {:?}", c.rx_drops);
    }
    // The features our driver asked for were negotiated with ferrovsd.
    let show = sw.ok("show", json!({}));
    let text = show.to_string();
    for f in ["MRG_RXBUF", "EVENT_IDX", "INDIRECT_DESC", "VERSION_1"] {
        assert!(text.contains(f), "{f} not negotiated: {show:#}");
    }
    // 1518-byte frames through indirect tables, both directions checked.
    flowgen_through(&socks, ",tx-indirect=1", 1518, 50_000, 50_000);
}

#[test]
fn virtio_user_reconnects_when_the_backend_restarts() {
    let _g = serial();
    let dir = TempDir::new("vi-recon");
    let mut sw = two_port_ferrovsd(dir.path());
    let socks = [sw.port_socket("vhost0"), sw.port_socket("vhost1")];
    let run = FerrovsTestpmd::spawn(&[
        vu(&socks[0], ""),
        vu(&socks[1], ""),
        "--forward-mode=flowgen".into(),
        "--tx-pps=50000".into(),
        "--lcores=0".into(),
        "--duration=10".into(),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let before = sw.port("vhost0").rx;
    assert!(before > 0, "no traffic before the restart");
    // kill -9: the backend vanishes without a word; the sockets stay behind.
    let mut c = sw.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    drop(sw);
    let sw = two_port_ferrovsd(dir.path());
    std::thread::sleep(Duration::from_secs(3));
    let after = sw.port("vhost0").rx;
    assert!(
        after > 10_000,
        "traffic did not resume after the backend restarted: {after}"
    );
    let s = run.finish(Duration::from_secs(30));
    assert_eq!(s["checked"]["bad"], 0, "{s:#}");
    assert!(
        s["ports"][0]["link_up"] == true && s["ports"][1]["link_up"] == true,
        "{s:#}"
    );
}

/// CPU time (user + system, in seconds) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm field.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn interrupt_mode_receiver_sleeps_and_still_gets_every_packet() {
    let _g = serial();
    let dir = TempDir::new("vi-irq");
    let sw = two_port_ferrovsd(dir.path());
    let socks = [sw.port_socket("vhost0"), sw.port_socket("vhost1")];
    let rx = FerrovsTestpmd::spawn(&[
        vu(&socks[1], ",mac=02:00:00:00:00:02"),
        "--forward-mode=rxonly".into(),
        "--rx-mode=interrupt".into(),
        "--lcores=0".into(),
        "--duration=6".into(),
    ]);
    let pid = rx.child.as_ref().unwrap().id();
    std::thread::sleep(Duration::from_millis(500));
    let tx = ferrovs_testpmd(
        &[
            vu(&socks[0], ",mac=02:00:00:00:00:01"),
            "--forward-mode=txonly".into(),
            "--eth-peer=0,02:00:00:00:00:02".into(),
            "--tx-pps=2000".into(),
            "--nb-pkts=8000".into(),
            "--lcores=1".into(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(tx["generated"], 8000);
    let cpu = cpu_seconds(pid);
    let s = rx.finish(Duration::from_secs(20));
    assert_eq!(s["checked"]["good"], 8000, "{s:#}");
    // A busy-polling receiver would burn ~6 s of CPU in 6 s.
    assert!(cpu < 2.0, "interrupt-mode receiver used {cpu:.2} s of CPU");
    eprintln!("interrupt-mode receiver: {cpu:.2} s CPU over 6 s for 8000 packets");
}

#[test]
fn two_ferrovsd_chained_through_a_virtio_user_port() {
    let _g = serial();
    let dir = TempDir::new("vi-chain");
    let (da, db) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    // B: a guest port and a trunk port that A attaches to.
    let b = Ferrovsd::start(
        &db,
        Some(
            "[pmd]\nsleep-max = 100\n[memory]\nn-mbufs = 16384\n\
             [[port]]\nname = \"vhost1\"\ntype = \"vhost-user\"\npath = \"vhost1.sock\"\n\
             [[port]]\nname = \"trunk\"\ntype = \"vhost-user\"\npath = \"trunk.sock\"\n",
        ),
    );
    // A: a guest port, and (added at runtime) the uplink to B's trunk.
    let a = Ferrovsd::start(&da, Some(&config_with_ports(1)));
    let trunk = b.port_socket("trunk");
    a.ok(
        "add-port",
        json!({"name": "uplink", "type": "virtio-user", "path": trunk.display().to_string()}),
    );
    let t0 = std::time::Instant::now();
    let uplink = loop {
        let show = a.ok("show", json!({}));
        let p = show["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "uplink")
            .unwrap()
            .clone();
        if p["link"] == "up" {
            break p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "uplink never came up: {p:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(uplink["type"], "virtio-user");
    assert!(
        uplink["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "MRG_RXBUF"),
        "{uplink:#}"
    );
    // Guests on A and B reach each other through both switches, intact.
    // Paced low: both daemons' PMDs share one CPU here and take turns in
    // scheduler slices of several ms, which a faster stream would overrun
    // in the unoptimised test build (release binaries take 30 kpps here).
    let socks = [a.port_socket("vhost0"), b.port_socket("vhost1")];
    let s = flowgen_through(&socks, "", 64, 20_000, 8_000);
    a.wait_quiet(&["vhost0", "uplink"]);
    b.wait_quiet(&["vhost1", "trunk"]);
    // Everything A's guest sent crossed the uplink and reached B's guest.
    let (up, tr) = (a.port("uplink"), b.port("trunk"));
    assert_eq!(up.tx, tr.rx, "uplink tx vs trunk rx");
    assert_eq!(tr.tx, up.rx, "trunk tx vs uplink rx");
    assert_eq!(up.tx, port_field(&s, 0, "tx_packets"));
    assert_eq!(up.rx, port_field(&s, 1, "tx_packets"));
    // Removing the uplink at runtime leaves both daemons healthy.
    a.ok("del-port", json!({"name": "uplink"}));
    assert_eq!(a.port_names(), vec!["vhost0".to_string()]);
    b.ok("show", json!({}));
}

#[test]
fn full_speed_runs_stop_without_leaving_garbage_in_the_backend() {
    let _g = serial();
    let dir = TempDir::new("vi-stop");
    let sw = two_port_ferrovsd(dir.path());
    let socks = [sw.port_socket("vhost0"), sw.port_socket("vhost1")];
    // Unpaced, with a first burst right after link-up, twice: stopping must
    // stop the backend's rings (GET_VRING_BASE) before the driver takes its
    // ring memory back, or the backend reads zeroed descriptors.
    for _ in 0..2 {
        let s = ferrovs_testpmd(
            &[
                vu(&socks[0], ""),
                vu(&socks[1], ""),
                "--forward-mode=flowgen".into(),
                "--tx-first".into(),
                "--lcores=0".into(),
                "--duration=2".into(),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(s["checked"]["bad"], 0, "{s:#}");
    }
    sw.wait_quiet(&["vhost0", "vhost1"]);
    for name in ["vhost0", "vhost1"] {
        let c = sw.port(name);
        assert!(
            c.rx > 0 && c.rx_drops.is_empty(),
            "{name}: rx {} drops {:?}",
            c.rx,
            c.rx_drops
        );
    }
}

fn wait_for_socket(p: &Path) {
    let t0 = std::time::Instant::now();
    while !p.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{} never appeared",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ferrovs_testpmd_vhost_port_serves_dpdk_virtio_user() {
    let _g = serial();
    let dir = TempDir::new("vi-vhost");
    let sock = dir.path().join("be.sock");
    // Our vhost-user backend as the sink, DPDK's virtio-user driver as the source.
    let sink = FerrovsTestpmd::spawn(&[
        format!("--port=vhost:path={},mac={}", sock.display(), mac(2)),
        "--forward-mode=rxonly".into(),
        "--lcores=1".into(),
        "--duration=8".into(),
    ]);
    wait_for_socket(&sock);
    let mut tp = Testpmd::start(&sock, &mac(1), "txonly", &mac(2));
    tp.cmd("start");
    std::thread::sleep(Duration::from_secs(2));
    tp.cmd("stop");
    let (_, sent) = tp.stats();
    drop(tp);
    let s = sink.finish(Duration::from_secs(20));
    assert!(sent > 10_000, "testpmd sent only {sent}");
    assert_eq!(port_field(&s, 0, "rx_packets"), sent, "{s:#}");
    // DPDK's txonly frames are not ours: counted, not judged.
    assert_eq!(s["checked"]["foreign"].as_u64().unwrap(), sent, "{s:#}");
}

#[test]
fn ferrovs_testpmd_echo_backend_and_generator_talk_to_each_other() {
    let _g = serial();
    let dir = TempDir::new("vi-echo");
    let sock = dir.path().join("echo.sock");
    // One ferrovs-testpmd echoes (macswap) on a vhost port; another generates
    // checked frames on a virtio-user port and checks what comes back.
    let echo = FerrovsTestpmd::spawn(&[
        format!("--port=vhost:path={}", sock.display()),
        "--forward-mode=macswap".into(),
        "--lcores=1".into(),
        "--duration=8".into(),
    ]);
    wait_for_socket(&sock);
    let s = ferrovs_testpmd(
        &[
            vu(&sock, ""),
            "--forward-mode=txonly".into(),
            "--latency".into(),
            "--tx-pps=50000".into(),
            "--nb-pkts=50000".into(),
            "--lcores=0".into(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(s["checked"]["good"], 50_000, "{s:#}");
    assert_eq!(s["checked"]["bad"], 0, "{s:#}");
    assert!(s["latency"]["p50_us"].as_f64().unwrap() > 0.0, "{s:#}");
    let e = echo.finish(Duration::from_secs(20));
    assert_eq!(port_field(&e, 0, "rx_packets"), 50_000, "{e:#}");
}
