//! A veth pair whose far end sits in a network namespace the test makes:
//! the "wire" behind a `dpdk` port (net_af_packet on the host end), with a
//! real kernel stack on the other side.

use std::process::Command;

pub fn sh(cmd: &str) -> (bool, String) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// The namespace `ns` holds `ns_if` (address `ip_cidr`); `host_if` stays
/// here. Both go away on drop.
pub struct NetnsVeth {
    pub ns: String,
    pub host_if: String,
    pub ns_if: String,
}

impl NetnsVeth {
    pub fn new(ip_cidr: &str) -> NetnsVeth {
        let id = std::process::id() % 100_000;
        let v = NetnsVeth {
            ns: format!("fvt{id}"),
            host_if: format!("fvh{id}"),
            ns_if: format!("fvn{id}"),
        };
        let (ns, host_if, ns_if) = (&v.ns, &v.host_if, &v.ns_if);
        for c in [
            format!("ip netns add {ns}"),
            format!("ip link add {host_if} type veth peer name {ns_if}"),
            format!("ip link set {ns_if} netns {ns}"),
            format!("ip -n {ns} addr add {ip_cidr} dev {ns_if}"),
            // A packet socket sees the kernel's frames as handed to the veth:
            // with checksum and segmentation offloads on, half-made checksums
            // and 64 KiB "frames" would cross the wire.
            format!("ip netns exec {ns} ethtool -K {ns_if} tx off tso off gso off"),
            format!("ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"),
            format!("ip -n {ns} link set {ns_if} up"),
            format!("ip -n {ns} link set lo up"),
            format!("ip link set {host_if} up"),
        ] {
            let (ok, out) = sh(&c);
            assert!(ok, "{c}: {out} (needs iproute2 and ethtool)");
        }
        v
    }

    /// Runs a shell command inside the namespace.
    pub fn exec(&self, cmd: &str) -> (bool, String) {
        sh(&format!("ip netns exec {} {cmd}", self.ns))
    }

    /// Runs `f` on a thread that has entered the namespace: its sockets are
    /// the namespace's.
    pub fn run_inside<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.ns);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            use std::os::fd::AsRawFd;
            // SAFETY: setns on this thread only; the fd is a netns handle.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread inside the namespace panicked")
    }
}

impl Drop for NetnsVeth {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip link del {} 2>/dev/null; ip netns del {}",
            self.host_if, self.ns
        ));
    }
}
