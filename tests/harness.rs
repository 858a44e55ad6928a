//! Test harness for ferrovsd against real peers: starts the daemon and DPDK
//! testpmd instances (virtio-user PMD), drives testpmd's interactive prompt
//! through a pipe, and talks to the management socket. Everything started
//! here is killed and removed on drop, even when a test fails.
//!
//! Tests take a machine-wide lock: on a 2-core machine two tests full of
//! busy-polling processes at once would only measure the scheduler.

pub mod guest;
pub mod netns;
pub mod ovs;
#[path = "vhost_frontend.rs"]
pub mod vhost_frontend;

pub use ferrovs_proto as proto;
use ferrovs_proto::{PmdStats, PortStats, PortStatsArgs, Reply, ReplyLine, Request, Show};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: next to this test executable's profile dir.
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("FERROVS_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let p = profile_dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` first (the README's test command does)",
        p.display()
    );
    p
}

/// Holds the machine-wide test lock (flock) for the test's lifetime.
pub struct SerialGuard(#[allow(dead_code)] std::fs::File);

pub fn serial() -> SerialGuard {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/ferrovs-tests.lock")
        .unwrap();
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock failed");
    SerialGuard(f)
}

/// A fresh, short directory (sun_path is 108 bytes) removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = PathBuf::from(format!("/tmp/fvt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU for ferrovsd's PMD: the last one, so testpmd's forwarding lcore (CPU 0)
/// does not share it on a 2-core machine.
pub fn pmd_cpu() -> usize {
    let n = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    n - 1
}

pub struct Ferrovsd {
    pub child: Option<Child>,
    pub run_dir: PathBuf,
    pub log: PathBuf,
}

impl Ferrovsd {
    /// Starts ferrovsd with `config` (TOML text; None = the embedded default)
    /// and waits for its management socket.
    pub fn start(dir: &Path, config: Option<&str>) -> Ferrovsd {
        Ferrovsd::start_on(dir, config, &pmd_cpu().to_string())
    }

    /// As `start`, with PMD threads on `cores` (a CPU list such as "0-1").
    pub fn start_on(dir: &Path, config: Option<&str>, cores: &str) -> Ferrovsd {
        Ferrovsd::start_under(dir, config, cores, &[])
    }

    /// As `start_on`, run through `wrapper` (e.g. `taskset -c 0`).
    pub fn start_under(
        dir: &Path,
        config: Option<&str>,
        cores: &str,
        wrapper: &[&str],
    ) -> Ferrovsd {
        let run_dir = dir.join("run");
        let log = dir.join("ferrovsd.log");
        let mut cmd = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(bin("ferrovsd"));
                c
            }
            None => Command::new(bin("ferrovsd")),
        };
        // Port 0: every instance gets its own free port for /metrics.
        cmd.arg("--run-dir")
            .arg(&run_dir)
            .arg("--pmd-cores")
            .arg(cores)
            .args(["--metrics-addr", "127.0.0.1:0"]);
        if let Some(c) = config {
            let p = dir.join("ferrovsd.toml");
            std::fs::write(&p, c).unwrap();
            cmd.arg("--config").arg(p);
        }
        let logf = std::fs::File::create(&log).unwrap();
        cmd.stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .env("FERROVS_LOG", "info");
        let child = cmd.spawn().expect("spawn ferrovsd");
        let d = Ferrovsd {
            child: Some(child),
            run_dir,
            log,
        };
        d.wait_for_socket();
        d
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "ferrovsd did not open its socket; log:\n{}",
            self.log_text()
        );
    }

    /// GET /metrics from this instance (address from `show`).
    pub fn scrape(&self) -> String {
        let addr = self.show().metrics_addr.expect("metrics served");
        http_get(&addr, "/metrics").1
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("ferrovsd.sock")
    }

    pub fn port_socket(&self, name: &str) -> PathBuf {
        self.run_dir.join(format!("{name}.sock"))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ferrovs-ctl --socket <ours> ARGS` as an operator runs it: Ok(stdout),
    /// or Err with its exit status, stderr and stdout.
    pub fn ctl_try(&self, args: &[&str]) -> Result<String, String> {
        let o = Command::new(bin("ferrovs-ctl"))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run ferrovs-ctl");
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if o.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "[{}] {}{out}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ))
        }
    }

    /// `ctl_try` that must succeed (the panic shows ferrovsd's log too).
    pub fn ctl(&self, args: &[&str]) -> String {
        self.ctl_try(args).unwrap_or_else(|e| {
            panic!(
                "ferrovs-ctl {args:?} failed: {e}\nferrovsd log:\n{}",
                self.log_text()
            )
        })
    }

    /// `ferrovs-ctl --json ARGS`, parsed.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ctl(&a);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ferrovs-ctl {a:?}: not JSON ({e}): {out}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends one line to the management socket; returns the reply line.
    fn exchange(&self, line: &[u8]) -> String {
        let mut s = UnixStream::connect(self.socket()).expect("connect management socket");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(line).unwrap();
        s.write_all(b"\n").unwrap();
        let mut reply = String::new();
        BufReader::new(&s).read_line(&mut reply).unwrap();
        reply
    }

    /// Sends one request as JSON, as given (malformed arguments too);
    /// returns the whole reply object.
    pub fn request(&self, command: &str, args: Value) -> Value {
        let line = serde_json::to_vec(&json!({ "command": command, "args": args })).unwrap();
        let reply = self.exchange(&line);
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"))
    }

    /// A request given as JSON that must succeed; returns its result.
    pub fn ok(&self, command: &str, args: Value) -> Value {
        let r = self.request(command, args);
        assert_eq!(r["ok"], json!(true), "{command} failed: {r}");
        r["result"].clone()
    }

    /// Sends a typed request; its typed result, or ferrovsd's error.
    pub fn call(&self, request: &Request) -> Result<Reply, String> {
        let line = serde_json::to_vec(request).unwrap();
        let reply = self.exchange(&line);
        let r: ReplyLine =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("bad reply {reply:?}: {e}"));
        let command = request.command();
        let result = r.into_result()?;
        Ok(Reply::parse(command, result.clone())
            .unwrap_or_else(|e| panic!("{} reply does not parse ({e}): {result}", command.name())))
    }

    /// A typed request that must succeed.
    pub fn typed(&self, request: Request) -> Reply {
        self.call(&request).unwrap_or_else(|e| {
            panic!(
                "{} failed: {e}\nferrovsd log:\n{}",
                request.command().name(),
                self.log_text()
            )
        })
    }

    pub fn show(&self) -> Show {
        match self.typed(Request::Show) {
            Reply::Show(s) => s,
            r => panic!("show answered {r:?}"),
        }
    }

    /// `port-stats` of one port.
    /// Every rx queue as `pmd-rxq-show` reports it.
    pub fn rxqs(&self) -> Vec<proto::RxqUsage> {
        match self.typed(Request::PmdRxqShow) {
            Reply::PmdRxqShow(r) => r.pmds.into_iter().flat_map(|p| p.queues).collect(),
            r => panic!("pmd-rxq-show answered {r:?}"),
        }
    }

    /// Rx queue `queue` of `port` as `pmd-rxq-show` reports it.
    pub fn rxq(&self, port: &str, queue: u16) -> proto::RxqUsage {
        self.rxqs()
            .into_iter()
            .find(|q| q.port == port && q.queue == queue)
            .unwrap_or_else(|| panic!("no rx queue {port}/{queue} in pmd-rxq-show"))
    }

    /// Waits until rx queue `queue` of `port` is in `mode`; false after `within`.
    pub fn wait_rxq_mode(&self, port: &str, queue: u16, mode: &str, within: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < within {
            if self.rxq(port, queue).mode == mode {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A switch drop counted on `port` (`port-stats` switch_drops; 0 when absent).
    pub fn switch_drop(&self, port: &str, reason: &str) -> u64 {
        self.port_stats(port)
            .switch_drops
            .get(reason)
            .copied()
            .unwrap_or(0)
    }

    pub fn port_stats(&self, name: &str) -> PortStats {
        let r = self.typed(Request::PortStats(PortStatsArgs {
            name: Some(name.into()),
        }));
        match r {
            Reply::PortStats(mut v) if v.len() == 1 => v.remove(0),
            r => panic!("port-stats {name} answered {r:?}"),
        }
    }

    pub fn pmd_stats(&self) -> Vec<PmdStats> {
        match self.typed(Request::PmdStats) {
            Reply::PmdStats(v) => v,
            r => panic!("pmd-stats answered {r:?}"),
        }
    }

    /// Port counters from `port-stats`.
    pub fn port(&self, name: &str) -> PortCounters {
        let p = self.port_stats(name);
        let drops = |queues: &[proto::QueueStats]| -> Vec<(String, u64)> {
            queues
                .iter()
                .flat_map(|q| q.drops.iter().map(|(k, n)| (k.clone(), *n)))
                .collect()
        };
        PortCounters {
            rx: p.rx_packets,
            tx: p.tx_packets,
            rx_dropped: p.rx_dropped,
            tx_dropped: p.tx_dropped,
            rx_drops: drops(&p.rx),
            tx_drops: drops(&p.tx),
        }
    }

    /// Names of the bridge's ports, in port-number order (from `show`).
    pub fn port_names(&self) -> Vec<String> {
        self.show().ports.into_iter().map(|p| p.name).collect()
    }

    /// Sum of the switch's own drops (runt, same_port, no_buffer) over PMDs.
    pub fn datapath_drops(&self) -> u64 {
        self.pmd_stats().iter().flat_map(|p| p.drops.values()).sum()
    }

    /// Waits until every port's counters stop moving (traffic has drained).
    pub fn wait_quiet(&self, ports: &[&str]) {
        let mut last = Vec::new();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            let now: Vec<_> = ports.iter().map(|p| self.port(p)).collect();
            if now == last {
                return;
            }
            last = now;
        }
        panic!("traffic through ferrovsd never settled");
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(st) = c.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!(
            "ferrovsd did not exit within {within:?} of SIGTERM; log:\n{}",
            self.log_text()
        );
    }
}

impl Drop for Ferrovsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            // A killed ferrovsd with dpdk ports cannot remove its EAL directory.
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/ferrovsd{}", c.id()));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortCounters {
    pub rx: u64,
    pub tx: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_drops: Vec<(String, u64)>,
    pub tx_drops: Vec<(String, u64)>,
}

impl PortCounters {
    /// Transmit drops counted with `reason` (0 when none).
    pub fn tx_drop(&self, reason: &str) -> u64 {
        self.tx_drops
            .iter()
            .filter(|d| d.0 == reason)
            .map(|d| d.1)
            .sum()
    }
}

/// One dpdk-testpmd with one virtio-user port on a ferrovsd socket, driven
/// through its interactive prompt.
pub struct Testpmd {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    prefix: String,
    pub mac: String,
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Testpmd {
    /// Starts testpmd attached to `socket` with port MAC `mac`, in `mode`
    /// (rxonly, txonly, io, macswap ...) with 64-byte frames to `peer`.
    pub fn start(socket: &Path, mac: &str, mode: &str, peer: &str) -> Testpmd {
        let prefix = format!(
            "fvt{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        for attempt in 0..3 {
            // stdbuf: testpmd's printf output would sit in a pipe buffer until exit.
            let mut child = Command::new("stdbuf")
                .args(["-o0", "-e0", "dpdk-testpmd"])
                .args([
                    "-l",
                    "0,1",
                    "--main-lcore",
                    "1",
                    "--no-pci",
                    "--no-huge",
                    "-m",
                    "512",
                    "--file-prefix",
                    &prefix,
                ])
                .arg("--vdev")
                .arg(format!(
                    "net_virtio_user0,path={},queues=1,queue_size=1024,mac={mac}",
                    socket.display()
                ))
                .args([
                    "--",
                    "-i",
                    "--no-mlockall",
                    "--total-num-mbufs=8192",
                    "--txpkts=64",
                    "--burst=32",
                ])
                .arg(format!("--forward-mode={mode}"))
                .arg(format!("--eth-peer=0,{peer}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cannot run stdbuf (coreutils)");
            let out = capture_output(&mut child);
            assert!(
                Path::new("/usr/bin/dpdk-testpmd").exists() || which("dpdk-testpmd"),
                "dpdk-testpmd not found: apt-get install dpdk-dev (the README's test command installs it)"
            );
            let stdin = child.stdin.take();
            let mut t = Testpmd {
                child: Some(child),
                stdin,
                out,
                prefix: prefix.clone(),
                mac: mac.into(),
            };
            if t.wait_for("testpmd> ", Duration::from_secs(30))
                && !t.output().contains("Failed to start device")
            {
                return t;
            }
            // DPDK 22.11's virtio-user sometimes fails its handshake under load ("Interrupted system call"): retry.
            eprintln!("testpmd start attempt {attempt} failed:\n{}", t.output());
            drop(t);
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("dpdk-testpmd did not start on {}", socket.display());
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits for `pat` to appear in the output; false on timeout or exit.
    pub fn wait_for(&mut self, pat: &str, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        while Instant::now() < deadline {
            if self.output().contains(pat) {
                return true;
            }
            if let Some(c) = self.child.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    return false;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Runs one prompt command and returns its output. testpmd prints the
    /// prompt when it reads the next line, so a harmless marker command
    /// follows and the output ends where the marker's echo starts.
    pub fn cmd(&mut self, c: &str) -> String {
        let before = self.output().len();
        let stdin = self.stdin.as_mut().expect("testpmd stdin");
        writeln!(stdin, "{c}").unwrap();
        writeln!(stdin, "show config fwd-marker").unwrap();
        stdin.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let o = self.output();
            if o.len() > before {
                if let Some(end) = o[before..].find("testpmd> show config fwd-marker") {
                    // The marker's own (error) reply must not leak into the next command.
                    std::thread::sleep(Duration::from_millis(30));
                    return o[before..before + end].to_string();
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("testpmd did not answer {c:?}; output:\n{}", self.output());
    }

    /// (RX-packets, TX-packets) of port 0 from `show port stats 0`.
    pub fn stats(&mut self) -> (u64, u64) {
        let o = self.cmd("show port stats 0");
        let grab = |key: &str| -> u64 {
            let i = o.find(key).unwrap_or_else(|| panic!("no {key} in {o}"));
            o[i + key.len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (grab("RX-packets:"), grab("TX-packets:"))
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "quit");
        }
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// A config with `n` vhost-user server ports named vhost0.. in the run dir.
pub fn config_with_ports(n: usize) -> String {
    let mut c = String::from("[pmd]\nsleep-max = 100\n[memory]\nn-mbufs = 16384\n");
    for i in 0..n {
        c.push_str(&format!(
            "[[port]]\nname = \"vhost{i}\"\ntype = \"vhost-user\"\npath = \"vhost{i}.sock\"\n"
        ));
    }
    c
}

/// Collects a child's stdout and stderr into one string, in raw chunks (a
/// prompt has no newline), from background threads.
pub fn capture_output(child: &mut Child) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    for mut stream in streams.into_iter().flatten() {
        let o = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    out
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn mac(i: u8) -> String {
    format!("02:00:00:00:00:{i:02x}")
}

/// `--port` arguments for ferrovs-testpmd: a virtio-user port on each of the
/// switch's ports vhost0 .. vhost{n-1}, with MACs mac(1) .. mac(n).
pub fn virtio_user_ports(sw: &Ferrovsd, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "--port=virtio-user:path={},mac={}",
                sw.port_socket(&format!("vhost{i}")).display(),
                mac(i as u8 + 1)
            )
        })
        .collect()
}

/// Runs ferrovs-testpmd to completion with `args` (plus `--json --quiet`)
/// and returns its summary. Killed after `timeout`; panics with its output
/// if it fails.
pub fn ferrovs_testpmd(args: &[String], timeout: Duration) -> Value {
    FerrovsTestpmd::spawn(args).finish(timeout)
}

/// `n` checked 64 B frames at 20 kpps from port `from`'s peer (MAC 1) to
/// port `to`'s (MAC 2), two virtio-user ports of one ferrovs-testpmd; its summary.
pub fn checked_frames(sw: &Ferrovsd, from: &str, to: &str, n: u64) -> Value {
    let port = |name: &str, m: u8| {
        format!(
            "--port=virtio-user:path={},mac={}",
            sw.port_socket(name).display(),
            mac(m)
        )
    };
    let args: Vec<String> = vec![
        port(from, 1),
        port(to, 2),
        "--forward-mode=flowgen".into(),
        "--tx-ports=0".into(),
        "--txpkts=64".into(),
        "--tx-pps=20000".into(),
        format!("--nb-pkts={n}"),
        "--lcores=0".into(),
        "--link-wait=20".into(),
        "--duration=60".into(),
    ];
    ferrovs_testpmd(&args, Duration::from_secs(90))
}

/// Starts ferrovs-testpmd in the background (for runs a test steers while
/// they go on); the child is killed on drop.
pub struct FerrovsTestpmd {
    pub child: Option<Child>,
    out: Arc<Mutex<String>>,
}

impl FerrovsTestpmd {
    pub fn spawn(args: &[String]) -> FerrovsTestpmd {
        Self::spawn_cmd(Command::new(bin("ferrovs-testpmd")), args)
    }

    /// As `spawn`, inside network namespace `ns` (for `dpdk:` ports on an
    /// interface that lives there).
    pub fn spawn_in_netns(ns: &str, args: &[String]) -> FerrovsTestpmd {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(bin("ferrovs-testpmd"));
        Self::spawn_cmd(c, args)
    }

    fn spawn_cmd(mut cmd: Command, args: &[String]) -> FerrovsTestpmd {
        let mut child = cmd
            .args(args)
            .args(["--json", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrovs-testpmd");
        let out = capture_output(&mut child);
        FerrovsTestpmd {
            child: Some(child),
            out,
        }
    }

    /// Waits for it to finish and parses the summary (stdout and stderr are
    /// captured together; the JSON document is the part from the first '{').
    pub fn finish(mut self, timeout: Duration) -> Value {
        let mut child = self.child.take().unwrap();
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "ferrovs-testpmd ran over {timeout:?}: {}",
                    self.out.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(100));
        let text = self.out.lock().unwrap().clone();
        assert!(
            status.success(),
            "ferrovs-testpmd failed ({status}): {text}"
        );
        let start = text
            .find("{\n")
            .unwrap_or_else(|| panic!("no JSON in: {text}"));
        let end = text.rfind("\n}").map(|i| i + 2).unwrap_or(text.len());
        serde_json::from_str(&text[start..end]).unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
    }
}

impl Drop for FerrovsTestpmd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            // A killed run with dpdk: ports cannot remove its EAL directory.
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/fvtp{}", c.id()));
        }
    }
}

/// A plain HTTP/1.0 GET: (status line, body).
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut c =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    let (head, body) = s.split_once("\r\n\r\n").unwrap_or((&s, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The value of one sample (`name{labels}`, labels in exposition order) in a scrape.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
