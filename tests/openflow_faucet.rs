//! Faucet (PyPI, pinned; an L2/L3 fabric controller speaking OpenFlow 1.3)
//! programs ferrovsd: ferrovsd dials it, Faucet lays out its four-table
//! pipeline, learns hosts from packet-ins and installs their rules. Two
//! VLANs over four ports: hosts in one VLAN reach each other, not the other
//! VLAN's. Faucet restarted: ferrovsd reconnects; ferrovsd kill -9'd and
//! restarted: Faucet programs it again. Gauge (Faucet's statistics
//! collector, a second controller connection) polls port stats, and what it
//! logs equals ferrovsd's own counters.
//!
//! The virtual environment is made once and cached
//! (`FERROVS_FAUCET_VENV`, default /var/tmp/ferrovs-faucet-venv).

use ferrovs_tests::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FAUCET: &str = "faucet==1.10.12";
const OS_KEN: &str = "os-ken==3.1.0";

/// The cached venv with the pinned Faucet, made on first use.
fn venv() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("FERROVS_FAUCET_VENV")
            .unwrap_or_else(|_| "/var/tmp/ferrovs-faucet-venv".into()),
    );
    let faucet = dir.join("bin/faucet");
    let ok = |f: &Path| {
        Command::new(f)
            .arg("-V")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("1.10.12"))
            .unwrap_or(false)
    };
    if ok(&faucet) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Debian's own Python (a pyenv one on PATH may lack venv/ensurepip).
    let py = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let st = Command::new(py)
        .args(["-m", "venv"])
        .arg(&dir)
        .status()
        .expect("python3 -m venv");
    assert!(
        st.success(),
        "python3 -m venv failed (apt install python3-venv)"
    );
    let st = Command::new(dir.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            FAUCET,
            OS_KEN,
        ])
        .status()
        .expect("pip");
    assert!(
        st.success() && ok(&faucet),
        "pip install {FAUCET} {OS_KEN} failed"
    );
    dir
}

/// A Faucet or Gauge process (`app`: "faucet" or "gauge"); its settings come
/// from FAUCET_* or GAUGE_* variables.
struct Faucet {
    child: Child,
}

impl Faucet {
    fn start(venv: &Path, dir: &Path, port: u16) -> Faucet {
        Faucet::start_app("faucet", venv, dir, port)
    }

    fn start_app(app: &str, venv: &Path, dir: &Path, port: u16) -> Faucet {
        let env = app.to_uppercase();
        std::fs::write(
            dir.join("ryu.conf"),
            "[DEFAULT]\necho_request_interval=3\nmaximum_unreplied_echo_requests=5\n",
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{app}.stderr")))
            .unwrap();
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(venv.join("bin").join(app))
            .arg(format!(
                "--ryu-config-file={}",
                dir.join("ryu.conf").display()
            ))
            .arg("--ryu-ofp-listen-host=127.0.0.1")
            .arg(format!("--ryu-ofp-tcp-listen-port={port}"))
            .env("PATH", path)
            .env(format!("{env}_CONFIG"), dir.join(format!("{app}.yaml")))
            .env(format!("{env}_LOG"), dir.join(format!("{app}.log")))
            .env(
                format!("{env}_EXCEPTION_LOG"),
                dir.join(format!("{app}_exception.log")),
            )
            .env(format!("{env}_PROMETHEUS_ADDR"), "127.0.0.1")
            .env(format!("{env}_PROMETHEUS_PORT"), "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {app}: {e}"));
        Faucet { child }
    }
}

impl Drop for Faucet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(port: u16, gauge: u16) -> String {
    let mut c = config_with_ports(4);
    c.push_str(&format!(
        "[openflow]\ncontroller = [\"tcp:127.0.0.1:{port}\", \"tcp:127.0.0.1:{gauge}\"]\n\
         fail-mode = \"secure\"\ndatapath-id = \"0x1\"\n"
    ));
    c
}

/// Gauge's port stats watcher, logging to `port_stats.txt` every second.
fn gauge_yaml(dir: &Path) -> String {
    format!(
        "faucet_configs:\n  - {}\n\
         watchers:\n  port_stats:\n    dps: ['fv1']\n    type: 'port_stats'\n    interval: 1\n    db: 'text'\n\
         dbs:\n  text:\n    type: 'text'\n    file: '{}'\n",
        dir.join("faucet.yaml").display(),
        dir.join("port_stats.txt").display()
    )
}

/// Gauge's latest value of `stat` (e.g. "fv1-vhost0-packets-in").
fn gauge_stat(dir: &Path, stat: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("port_stats.txt")).ok()?;
    text.lines()
        .rev()
        .find_map(|l| {
            let mut f = l.split('\t');
            let (_, name, value) = (f.next()?, f.next()?, f.next()?);
            (name == stat).then(|| value.parse().ok())
        })
        .flatten()
}

/// Gauge's port counters, polled over OpenFlow, equal ferrovsd's (the
/// traffic has stopped; Gauge polls once a second).
fn gauge_agrees(sw: &Ferrovsd, dir: &Path) {
    let t0 = Instant::now();
    loop {
        let mut diffs = Vec::new();
        for i in 0..4 {
            let p = sw.port_stats(&format!("vhost{i}"));
            for (what, ours) in [("packets-in", p.rx_packets), ("packets-out", p.tx_packets)] {
                let stat = format!("fv1-vhost{i}-{what}");
                let gauge = gauge_stat(dir, &stat);
                if gauge != Some(ours) {
                    diffs.push(format!("{stat}: Gauge {gauge:?}, ferrovsd {ours}"));
                }
            }
        }
        if diffs.is_empty() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Gauge disagrees: {diffs:?}\ngauge log:\n{}",
            std::fs::read_to_string(dir.join("gauge.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Waits until ferrovsd says its controller is connected and Faucet's
/// pipeline is in (its flood rules in table 3).
fn programmed(sw: &Ferrovsd, dir: &Path) {
    let t0 = Instant::now();
    loop {
        let show = sw.ok("show", json!({}));
        let connected = show["openflow"]["controllers"]
            .as_array()
            .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["state"] == "connected"));
        let flows = sw.ok("dump-flows", json!({ "flow": "table=3" }));
        if connected && flows.as_array().is_some_and(|f| f.len() > 3) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "Faucet never programmed ferrovsd: {show:#}\nfaucet log:\n{}",
            std::fs::read_to_string(dir.join("faucet.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// ferrovs-testpmd over the four ports: `tx` lists (port, destination MAC
/// index) pairs that send `n` frames each.
fn spawn(sw: &Ferrovsd, tx: &[(usize, u8)], n: u64, pps: u64) -> FerrovsTestpmd {
    let mut a = virtio_user_ports(sw, 4);
    a.push("--forward-mode=flowgen".into());
    a.push(format!(
        "--tx-ports={}",
        tx.iter()
            .map(|t| t.0.to_string())
            .collect::<Vec<_>>()
            .join(",")
    ));
    for (p, d) in tx {
        a.push(format!("--eth-peer={p},{}", mac(*d)));
    }
    a.extend([
        "--txpkts=64".to_string(),
        format!("--tx-pps={pps}"),
        format!("--nb-pkts={}", n * tx.len() as u64),
        "--lcores=0".into(),
        "--link-wait=30".into(),
        // Faucet installs a port's rules when it sees the port come up.
        "--start-delay=2".into(),
        "--duration=120".into(),
    ]);
    FerrovsTestpmd::spawn(&a)
}

fn rx(s: &Value, port: usize) -> u64 {
    s["ports"][port]["rx_packets"].as_u64().unwrap()
}

/// Every host talks to its VLAN partner: Faucet learns all four (packet-ins)
/// and installs their rules while the traffic runs, every frame arrives;
/// then a host sends to the other VLAN's MAC and nothing crosses.
fn learn_and_check(sw: &Ferrovsd, dir: &Path) {
    // Port i (MAC i+1): vhost0,1 in VLAN 100; vhost2,3 in VLAN 200.
    let n = 4000;
    let run = spawn(sw, &[(0, 2), (1, 1), (2, 4), (3, 3)], n, 1000);
    let t0 = Instant::now();
    let learned = loop {
        let t2 = sw
            .ok("dump-flows", json!({ "flow": "table=2" }))
            .to_string();
        if (1..=4).all(|i| t2.contains(&mac(i))) {
            break t2;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "Faucet's eth_dst rules never came: {t2}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let s = run.finish(Duration::from_secs(150));
    let got: Vec<u64> = (0..4).map(|p| rx(&s, p)).collect();
    assert_eq!(
        got,
        vec![n; 4],
        "{s:#}\nports {:#}\npmds {:#}\nlearned {learned}",
        sw.ok("port-stats", json!({})),
        sw.ok("pmd-stats", json!({}))
    );
    let log = std::fs::read_to_string(dir.join("faucet.log")).unwrap_or_default();
    for i in 1..=4u8 {
        assert!(
            log.contains(&format!("L2 learned on Port {i} {}", mac(i))),
            "{log}"
        );
    }
    // VLAN 100's host sends to VLAN 200's MAC: it stays in VLAN 100.
    let s = spawn(sw, &[(0, 4)], 500, 2000).finish(Duration::from_secs(150));
    assert_eq!((rx(&s, 1), rx(&s, 2), rx(&s, 3)), (500, 0, 0), "{s:#}");
}

#[test]
fn faucet_programs_ferrovsd_two_vlans_and_survives_restarts() {
    let _g = serial();
    let venv = venv();
    let dir = TempDir::new("faucet");
    std::fs::write(
        dir.path().join("faucet.yaml"),
        "vlans:\n  red: {vid: 100}\n  blue: {vid: 200}\n\
         dps:\n  fv1:\n    dp_id: 0x1\n    hardware: \"Open vSwitch\"\n    interfaces:\n\
         \x20     1: {name: vhost0, native_vlan: red}\n\
         \x20     2: {name: vhost1, native_vlan: red}\n\
         \x20     3: {name: vhost2, native_vlan: blue}\n\
         \x20     4: {name: vhost3, native_vlan: blue}\n",
    )
    .unwrap();
    let port = free_port();
    let mut faucet = Faucet::start(&venv, dir.path(), port);
    let gauge_port = free_port();
    std::fs::write(dir.path().join("gauge.yaml"), gauge_yaml(dir.path())).unwrap();
    let gauge = Faucet::start_app("gauge", &venv, dir.path(), gauge_port);
    let cfg = config(port, gauge_port);
    let mut sw = Ferrovsd::start(dir.path(), Some(&cfg));
    programmed(&sw, dir.path());
    learn_and_check(&sw, dir.path());
    gauge_agrees(&sw, dir.path());
    // Faucet's view agrees with ferrovsd's: it saw every port up.
    let log = std::fs::read_to_string(dir.path().join("faucet.log")).unwrap();
    assert!(
        log.contains("Port 4") && !log.contains("Traceback"),
        "{log}"
    );

    // Faucet restarted: ferrovsd re-dials, Faucet starts over, traffic flows.
    drop(faucet);
    faucet = Faucet::start(&venv, dir.path(), port);
    std::thread::sleep(Duration::from_secs(2));
    programmed(&sw, dir.path());
    learn_and_check(&sw, dir.path());

    // ferrovsd kill -9'd and started again: Faucet programs the new one.
    let pid = sw.pid();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = sw.child.take().map(|mut c| c.wait());
    sw = Ferrovsd::start(dir.path(), Some(&cfg));
    programmed(&sw, dir.path());
    learn_and_check(&sw, dir.path());
    gauge_agrees(&sw, dir.path());
    drop(gauge);
    drop(faucet);
}
