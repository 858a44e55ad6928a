//! OVS-DPDK as a test peer: a private ovsdb-server and ovs-vswitchd-dpdk
//! (everything under one temp dir) with bridge `br0` (netdev datapath,
//! NORMAL action) and two `dpdkvhostuser` ports `vhu0`/`vhu1`, whose
//! sockets OVS listens on. Its PMD runs on CPU 1. Both daemons are our
//! children (not `--detach`ed: a daemon that outlives its parent would be
//! reparented, and only its new parent could reap it), so they can be
//! waited for; they are stopped, their directory removed and any hugepages
//! reserved for them given back on drop, even when a test panics.
//!
//! The netdev datapath creates the kernel tap devices `ovs-netdev` and
//! `br0`, so only one such OVS can run on a machine at a time (tests hold
//! `serial()`; a stray OVS shows as "creating tap device failed: Device or
//! resource busy" in the log tail of the panic).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The DPDK build of ovs-vswitchd (Debian's openvswitch-switch-dpdk).
pub const OVS_VSWITCHD: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
const NR_HUGEPAGES: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
/// Free 2 MiB pages needed: OVS's 1 GiB socket memory plus its own
/// allocations (~700 pages, it always runs --in-memory), and the driver
/// under test's packet buffers (ferrovs-testpmd: 32768 mbufs, ~40 pages).
const HUGEPAGES_NEEDED: u64 = 768;

pub struct Ovs {
    pub dir: PathBuf,
    ovsdb: Option<Child>,
    vswitchd: Option<Child>,
    /// nr_hugepages before we raised it, to restore on drop.
    hugepages_restore: Option<u64>,
}

fn hugepages_free() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("HugePages_Free in /proc/meminfo")
}

/// Makes sure HUGEPAGES_NEEDED 2 MiB pages are free; returns the previous
/// nr_hugepages when it had to raise it.
fn reserve_hugepages() -> Option<u64> {
    let free = hugepages_free();
    if free >= HUGEPAGES_NEEDED {
        return None;
    }
    let old: u64 = std::fs::read_to_string(NR_HUGEPAGES)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let want = old + HUGEPAGES_NEEDED - free;
    if let Err(e) = std::fs::write(NR_HUGEPAGES, want.to_string()) {
        panic!("OVS-DPDK needs {HUGEPAGES_NEEDED} free 2 MiB hugepages ({free} free) and raising {NR_HUGEPAGES} failed: {e}");
    }
    let got = hugepages_free();
    if got < HUGEPAGES_NEEDED {
        let _ = std::fs::write(NR_HUGEPAGES, old.to_string());
        panic!("OVS-DPDK needs {HUGEPAGES_NEEDED} free 2 MiB hugepages; only {got} after asking for {want} (memory fragmented?)");
    }
    Some(old)
}

impl Ovs {
    /// Starts ovsdb-server and ovs-vswitchd-dpdk in a fresh directory of
    /// their own and waits for both vhost-user sockets.
    pub fn start() -> Ovs {
        assert!(
            Path::new(OVS_VSWITCHD).exists(),
            "{OVS_VSWITCHD} not found: apt-get install openvswitch-switch-dpdk openvswitch-switch \
             (the README's test command installs them)"
        );
        // Short: it holds the sockets (sun_path is 108 bytes).
        let dir = PathBuf::from(format!("/tmp/fvt-ovs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The Ovs exists from here on, so a failure below still cleans up.
        let mut ovs = Ovs {
            dir,
            ovsdb: None,
            vswitchd: None,
            hugepages_restore: reserve_hugepages(),
        };
        let db = ovs.dir.join("conf.db");
        ovs.run(
            "ovsdb-tool",
            &[
                "create",
                &db.to_string_lossy(),
                "/usr/share/openvswitch/vswitch.ovsschema",
            ],
        );
        let remote = format!("--remote=punix:{}", ovs.db_sock().display());
        ovs.ovsdb = Some(ovs.spawn(
            "ovsdb-server",
            &[&db.to_string_lossy(), &remote, "--pidfile"],
            "ovsdb-server",
        ));
        ovs.wait_for("ovsdb-server's socket", |o| o.db_sock().exists());
        ovs.vsctl(&["--no-wait", "init"]);
        let prefix = format!("--file-prefix fvt-ovs-{}", std::process::id());
        ovs.vsctl(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:dpdk-init=true",
            "other_config:pmd-cpu-mask=0x2",
            "other_config:dpdk-socket-mem=1024",
            &format!("other_config:dpdk-extra=--no-pci {prefix}"),
        ]);
        ovs.vswitchd = Some(ovs.spawn(
            OVS_VSWITCHD,
            &[&format!("unix:{}", ovs.db_sock().display()), "--pidfile"],
            "ovs-vswitchd",
        ));
        ovs.vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ]);
        for p in ["vhu0", "vhu1"] {
            ovs.vsctl(&[
                "add-port",
                "br0",
                p,
                "--",
                "set",
                "Interface",
                p,
                "type=dpdkvhostuser",
            ]);
        }
        // NORMAL (MAC learning) as in the default flow, but one flow per
        // input port, whose counter tells what OVS received there.
        ovs.ofctl(&["del-flows", "br0"]);
        for p in ["vhu0", "vhu1"] {
            ovs.ofctl(&["add-flow", "br0", &format!("in_port={p},actions=NORMAL")]);
        }
        ovs.wait_for("vhost-user sockets vhu0 and vhu1", |o| {
            o.sockets().iter().all(|s| s.exists())
        });
        ovs
    }

    /// The vhost-user server sockets of vhu0 and vhu1.
    pub fn sockets(&self) -> [PathBuf; 2] {
        [self.dir.join("vhu0"), self.dir.join("vhu1")]
    }

    fn db_sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// A command with OVS's directories pointed at ours.
    fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c
    }

    /// Starts a daemon in the foreground as our child, logging to `<log>.log`.
    fn spawn(&self, prog: &str, args: &[&str], log: &str) -> Child {
        let f = std::fs::File::create(self.dir.join(format!("{log}.stderr"))).unwrap();
        let mut c = self.command(prog);
        c.args(args)
            .arg(format!(
                "--log-file={}",
                self.dir.join(format!("{log}.log")).display()
            ))
            .args(["-vconsole:off", "-vsyslog:off"])
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f);
        // SAFETY: prctl is async-signal-safe and touches no memory of ours.
        // It makes the kernel SIGKILL the daemon if the test process dies
        // without running destructors (killed, timed out), so a busy-polling
        // PMD and 1 GiB of hugepages never outlive it.
        unsafe {
            c.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        c.spawn().unwrap_or_else(|e| {
            panic!("cannot run {prog}: {e} (apt-get install openvswitch-switch)")
        })
    }

    /// Runs an OVS tool to completion; panics with its output and the log tail on failure.
    fn run(&self, prog: &str, args: &[&str]) -> Output {
        let o = self.command(prog).args(args).output().unwrap_or_else(|e| {
            panic!("cannot run {prog}: {e} (apt-get install openvswitch-switch)")
        });
        if !o.status.success() {
            panic!(
                "{prog} {args:?} failed ({}): {}{}\n{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                self.log_tail()
            );
        }
        o
    }

    /// ovs-vsctl against our database; returns its stdout.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.db_sock().display());
        let mut a = vec![db.as_str(), "--timeout=30"];
        a.extend_from_slice(args);
        String::from_utf8_lossy(&self.run("ovs-vsctl", &a).stdout).into_owned()
    }

    fn wait_for(&mut self, what: &str, ready: impl Fn(&Ovs) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            let exited = [&mut self.ovsdb, &mut self.vswitchd]
                .into_iter()
                .flatten()
                .any(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                panic!(
                    "OVS: no {what} ({}); {}",
                    if exited {
                        "a daemon exited"
                    } else {
                        "timed out"
                    },
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of both daemons' logs (for failure messages), without
    /// the coverage counter dumps OVS adds to its own warnings.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for f in [
            "ovsdb-server.stderr",
            "ovsdb-server.log",
            "ovs-vswitchd.stderr",
            "ovs-vswitchd.log",
        ] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.contains("|coverage|")).collect();
            s += &format!(
                "--- {f} (last 40 lines):\n{}\n",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        s
    }

    /// The whole ovs-vswitchd log.
    pub fn vswitchd_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ovs-vswitchd.log")).unwrap_or_default()
    }

    /// Packets OVS received on vhu0 and vhu1: the counters of the bridge's
    /// flows `in_port=vhuN` (everything the driver behind the port
    /// transmitted). Per-port rx/tx counters of vhost ports are not
    /// available from this OVS build (`ovs-ofctl dump-ports` prints "?",
    /// `dpctl/show -s` "could not retrieve stats (Protocol error)", with
    /// DPDK's own virtio-user too). OVS folds datapath flow statistics into
    /// OpenFlow rules every 500 ms, so this waits until the counters have
    /// held still for a second.
    pub fn rx_packets(&self) -> [u64; 2] {
        let read = || -> [u64; 2] {
            let out = self.ofctl(&["--names", "dump-flows", "br0"]);
            ["in_port=vhu0", "in_port=vhu1"].map(|m| {
                let line = out
                    .lines()
                    .find(|l| l.contains(m))
                    .unwrap_or_else(|| panic!("no flow {m}: {out}"));
                let n = line
                    .split("n_packets=")
                    .nth(1)
                    .and_then(|r| r.split(',').next());
                n.and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("no n_packets in {line}"))
            })
        };
        let (mut last, mut since) = (read(), Instant::now());
        let deadline = Instant::now() + Duration::from_secs(15);
        while since.elapsed() < Duration::from_millis(1100) {
            assert!(Instant::now() < deadline, "OVS flow counters never settled");
            std::thread::sleep(Duration::from_millis(100));
            let n = read();
            if n != last {
                (last, since) = (n, Instant::now());
            }
        }
        last
    }

    /// ovs-ofctl against our bridge; returns its stdout.
    pub fn ofctl(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run("ovs-ofctl", args).stdout).into_owned()
    }

    /// The Interface table's `statistics` map of `port` (every counter the
    /// port keeps, e.g. vhost `ovs_tx_failure_drops`; refreshed every 5 s).
    pub fn interface_statistics(&self, port: &str) -> BTreeMap<String, u64> {
        let out = self.vsctl(&["get", "Interface", port, "statistics"]);
        // {rx_bytes=0, rx_packets=0, ...}
        out.trim()
            .trim_matches(|c| c == '{' || c == '}')
            .split(", ")
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.trim_matches('"').to_string(), v.parse().ok()?)))
            .collect()
    }

    /// Stops ovs-vswitchd and ovsdb-server: a polite `exit` (`--cleanup`
    /// removes the ports), then SIGKILL if they are still there after 10 s.
    fn stop(&mut self) {
        for (child, name, extra) in [
            (self.vswitchd.take(), "ovs-vswitchd-dpdk", "--cleanup"),
            (self.ovsdb.take(), "ovsdb-server", ""),
        ] {
            let Some(mut c) = child else { continue };
            // The control socket is named after the program: ovs-vswitchd-dpdk.<pid>.ctl.
            let ctl = self.dir.join(format!("{name}.{}.ctl", c.id()));
            let _ = self
                .command("ovs-appctl")
                .args(["--timeout=10", "-t", &ctl.to_string_lossy(), "exit"])
                .args((!extra.is_empty()).then_some(extra))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/fvt-ovs-{}", std::process::id()));
        if let Some(old) = self.hugepages_restore.take() {
            if let Err(e) = std::fs::write(NR_HUGEPAGES, old.to_string()) {
                eprintln!("could not restore {NR_HUGEPAGES} to {old}: {e}");
            }
        }
    }
}
