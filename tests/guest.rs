//! QEMU guests running Linux's own virtio-net driver, for the VM tests: the
//! image comes from `tests/guest/build.sh` (Debian packages only), the guest
//! is driven through its serial console.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Builds (once, cached in /var/tmp/ferrovs-guest) and returns (kernel, initramfs).
pub fn assets() -> (PathBuf, PathBuf) {
    let cache = PathBuf::from(
        std::env::var("FERROVS_GUEST_CACHE").unwrap_or_else(|_| "/var/tmp/ferrovs-guest".into()),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/build.sh");
    let st = Command::new(&script)
        .arg(&cache)
        .status()
        .expect("run tests/guest/build.sh");
    assert!(
        st.success(),
        "building the test guest failed (needs apt-get download access and busybox-static)"
    );
    (cache.join("vmlinuz"), cache.join("initramfs.gz"))
}

/// KVM only where it can run a stock kernel: real VT-x/AMD-V, not kvm_pvm.
pub fn use_kvm() -> bool {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Path::new("/dev/kvm").exists()
        && !Path::new("/sys/module/kvm_pvm").exists()
        && (cpu.contains(" vmx") || cpu.contains(" svm"))
}

#[derive(Clone, Debug)]
pub struct GuestConfig {
    pub name: String,
    pub socket: PathBuf,
    /// QEMU listens on the socket (ferrovsd port in client mode).
    pub qemu_server: bool,
    /// Set on the device and, from the kernel command line, by the guest.
    pub mac: String,
    pub ip: String,
    pub mtu: Option<u32>,
    pub queues: u16,
    /// vCPUs; 0 = one per queue pair (Linux uses min(queues, vCPUs) pairs).
    pub vcpus: u16,
    pub mem_mb: u32,
}

impl GuestConfig {
    pub fn new(name: &str, socket: &Path, n: u8) -> GuestConfig {
        GuestConfig {
            name: name.into(),
            socket: socket.into(),
            qemu_server: false,
            mac: format!("52:54:00:00:00:{n:02x}"),
            ip: format!("10.0.0.{n}"),
            mtu: None,
            queues: 1,
            vcpus: 0,
            mem_mb: 256,
        }
    }
}

pub struct Guest {
    pub cfg: GuestConfig,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    seq: AtomicUsize,
}

impl Guest {
    /// Starts QEMU; does not wait for the guest (QEMU itself waits for the
    /// first vhost-user handshake).
    pub fn start(cfg: GuestConfig) -> Guest {
        let (kernel, initrd) = assets();
        let kvm = use_kvm();
        let mut append = format!(
            "console=ttyS0 quiet panic=-1 fv.ip={}/24 fv.mac={}",
            cfg.ip, cfg.mac
        );
        if let Some(m) = cfg.mtu {
            append.push_str(&format!(" fv.mtu={m}"));
        }
        let chardev = format!(
            "socket,id=c0,path={}{}",
            cfg.socket.display(),
            if cfg.qemu_server {
                ",server=on,wait=off"
            } else {
                ",reconnect=1"
            }
        );
        let mut netdev = "vhost-user,id=n0,chardev=c0".to_string();
        let mut device = format!("virtio-net-pci,netdev=n0,mac={},romfile=", cfg.mac);
        if cfg.queues > 1 {
            netdev.push_str(&format!(",queues={}", cfg.queues));
            device.push_str(&format!(
                ",mq=on,vectors={}",
                if kvm { 2 * cfg.queues + 2 } else { 0 }
            ));
        } else if !kvm {
            // QEMU 7.2 under TCG segfaults on vhost-user + MSI-X: legacy INTx.
            device.push_str(",vectors=0");
        }
        let mem = format!("memory-backend-memfd,id=mem,size={}M,share=on", cfg.mem_mb);
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-machine",
            if kvm {
                "q35,accel=kvm"
            } else {
                "q35,accel=tcg"
            },
        ])
        .args(["-cpu", if kvm { "host" } else { "max" }])
        .args([
            "-m",
            &format!("{}", cfg.mem_mb),
            "-smp",
            &(if cfg.vcpus > 0 {
                cfg.vcpus
            } else {
                cfg.queues.max(1)
            })
            .to_string(),
        ])
        .args([
            "-nographic",
            "-no-user-config",
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "stdio",
        ])
        .args(["-object", &mem, "-numa", "node,memdev=mem"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args([
            "-append", &append, "-chardev", &chardev, "-netdev", &netdev, "-device", &device,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("qemu-system-x86_64 not found: apt-get install qemu-system-x86");
        let out = crate::capture_output(&mut child);
        let stdin = child.stdin.take();
        Guest {
            cfg,
            child: Some(child),
            stdin,
            out,
            seq: AtomicUsize::new(0),
        }
    }

    pub fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Waits for the n-th "FV-READY" line (n = 1 for the first boot).
    pub fn wait_ready(&self, nth: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.output().matches("FV-READY").count() >= nth {
                // Let the console shell start.
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "guest {} did not come up; console:\n{}",
            self.cfg.name,
            self.output()
        );
    }

    /// Runs a shell command on the console; returns (exit code, output).
    pub fn sh(&self, command: &str, within: Duration) -> (i32, String) {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let marker = format!("FVDONE{n}X");
        let start = self.output().len();
        {
            let mut o = self.stdin_handle();
            // Two lines, so that a command ending in `&` stays valid shell.
            writeln!(o, "{command}").unwrap();
            writeln!(o, "echo {marker}$?Y").unwrap();
            o.flush().unwrap();
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let all = self.output();
            let tail = &all[start.min(all.len())..];
            // The echo of our own line shows "$?"; the real output shows digits.
            if let Some(i) = tail.find(&marker).and_then(|_| find_done(tail, &marker)) {
                let (pos, code) = i;
                return (code, tail[..pos].to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "guest {}: {command:?} did not finish in {within:?}; console:\n{}",
            self.cfg.name,
            self.output()
        );
    }

    fn stdin_handle(&self) -> &ChildStdin {
        self.stdin.as_ref().expect("guest console")
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn find_done(tail: &str, marker: &str) -> Option<(usize, i32)> {
    let mut from = 0;
    while let Some(i) = tail[from..].find(marker) {
        let at = from + i;
        let rest = &tail[at + marker.len()..];
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && rest[digits.len()..].starts_with('Y') {
            return Some((at, digits.parse().unwrap()));
        }
        from = at + marker.len();
    }
    None
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
    }
}

fn md5(data: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("fv-md5-{}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    let (_, out) = crate::netns::sh(&format!("md5sum {}", path.display()));
    let _ = std::fs::remove_file(&path);
    out.split_whitespace().next().unwrap_or("").to_string()
}

fn guest_md5(out: &str) -> Option<String> {
    out.split_whitespace()
        .find(|w| w.len() == 32)
        .map(String::from)
}

/// `bytes` (a multiple of 1 KiB) over TCP each way between the namespace's
/// kernel (`ns_ip`) and `guest` (`guest_ip`), compared by MD5.
pub fn exchange_tcp(
    guest: &Guest,
    net: &crate::netns::NetnsVeth,
    guest_ip: &str,
    ns_ip: &str,
    bytes: usize,
) {
    use std::io::Read;
    const CMD: Duration = Duration::from_secs(120);
    let guest_ip = guest_ip.to_string();
    let ns_ip = ns_ip.to_string();
    // Namespace -> guest: pseudo-random bytes, compared by checksum.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let blob: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let want = md5(&blob);
    let (code, _) = guest.sh("(sleep 300 | nc -l -p 5001 > /tmp/got &) ; sleep 0.5", CMD);
    assert_eq!(code, 0);
    let sent = blob.clone();
    let to = format!("{guest_ip}:5001");
    net.run_inside(move || {
        let mut c =
            std::net::TcpStream::connect_timeout(&to.parse().unwrap(), Duration::from_secs(10))
                .expect("connect to the guest from the namespace");
        c.write_all(&sent).expect("send to the guest");
        c.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let (_, got) = guest.sh(
        &format!("i=0; while [ $(wc -c < /tmp/got) -lt {bytes} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; md5sum /tmp/got; wc -c < /tmp/got"),
        CMD,
    );
    assert_eq!(
        guest_md5(&got).as_deref(),
        Some(want.as_str()),
        "namespace -> guest transfer: {got}"
    );

    // Guest -> namespace.
    let at = format!("{ns_ip}:5002");
    let listener =
        net.run_inside(move || std::net::TcpListener::bind(&at).expect("listen in the namespace"));
    let (_, sum) = guest.sh(
        &format!(
            "dd if=/dev/urandom of=/tmp/blob bs=1024 count={} 2>/dev/null; md5sum /tmp/blob",
            bytes / 1024
        ),
        CMD,
    );
    let reader = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept the guest");
        c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut got = Vec::with_capacity(bytes);
        let mut buf = [0u8; 65536];
        while got.len() < bytes {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    });
    let (code, out) = guest.sh(&format!("nc -w 5 {ns_ip} 5002 < /tmp/blob"), CMD);
    assert_eq!(code, 0, "{out}");
    let got = reader.join().unwrap();
    assert_eq!(
        got.len(),
        bytes,
        "guest -> namespace: {} of {bytes} bytes",
        got.len()
    );
    assert_eq!(
        guest_md5(&sum),
        Some(md5(&got)),
        "guest -> namespace transfer corrupted"
    );
}
