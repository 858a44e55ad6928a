//! `dpdk` ports: a NIC through DPDK's ethdev drivers. Here the NIC is
//! DPDK's `net_af_packet` on a veth whose other end sits in a network
//! namespace this test makes; the namespace's own kernel stack pings a
//! DPDK testpmd (virtio-user, icmpecho) behind a vhost-user port.

use ferrovs_tests::*;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn sh(cmd: &str) -> (bool, String) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// A veth pair, one end in a fresh namespace; both removed on drop.
struct NetnsVeth {
    ns: String,
    host_if: String,
}

impl NetnsVeth {
    fn new(ip_cidr: &str) -> NetnsVeth {
        let id = std::process::id() % 100_000;
        let (ns, host_if, ns_if) = (format!("fvt{id}"), format!("fvh{id}"), format!("fvn{id}"));
        let v = NetnsVeth { ns, host_if };
        for c in [
            format!("ip netns add {}", v.ns),
            format!("ip link add {} type veth peer name {ns_if}", v.host_if),
            format!("ip link set {ns_if} netns {}", v.ns),
            format!("ip -n {} addr add {ip_cidr} dev {ns_if}", v.ns),
            format!("ip -n {} link set {ns_if} up", v.ns),
            format!("ip -n {} link set lo up", v.ns),
            format!("ip link set {} up", v.host_if),
        ] {
            let (ok, out) = sh(&c);
            assert!(ok, "{c}: {out}");
        }
        v
    }
}

impl Drop for NetnsVeth {
    fn drop(&mut self) {
        let _ = sh(&format!("ip link del {} 2>/dev/null; ip netns del {}", self.host_if, self.ns));
    }
}

#[test]
fn netns_kernel_pings_a_vhost_peer_through_a_dpdk_af_packet_port() {
    let _g = serial();
    let dir = TempDir::new("dp-ping");
    let net = NetnsVeth::new("10.99.0.1/24");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(1)));
    let r = sw.request(
        "add-port",
        json!({"name": "phy0", "type": "dpdk", "devargs": format!("net_af_packet0,iface={}", net.host_if)}),
    );
    assert_eq!(
        r["ok"], true,
        "add-port type=dpdk failed (build ferrovsd with --features switch/dpdk, as scripts/test does): {r}"
    );
    // A bad devargs string is a clear error, and the daemon stays up.
    let bad = sw.request("add-port", json!({"name": "bad0", "type": "dpdk", "devargs": "net_nosuch0,x=y"}));
    assert_eq!(bad["ok"], false);
    assert!(bad["error"].as_str().unwrap().contains("cannot probe"), "{bad}");
    let show = sw.ok("show", json!({}));
    let phy = show["ports"].as_array().unwrap().iter().find(|p| p["name"] == "phy0").unwrap().clone();
    assert_eq!(phy["type"], "dpdk");
    assert_eq!(phy["driver"], "net_af_packet", "{phy}");
    assert_eq!(phy["link"], "up", "{phy}");

    let mut tp = Testpmd::start(&sw.port_socket("vhost0"), &mac(2), "icmpecho", &mac(1));
    tp.cmd("start");
    let (ok, out) = sh(&format!("ip netns exec {} ping -c 5 -i 0.2 -W 2 10.99.0.2", net.ns));
    eprintln!("{out}");
    assert!(ok && out.contains(" 0% packet loss"), "ping through ferrovsd failed:\n{out}\n{}", sw.log_text());
    let c = sw.port("phy0");
    assert!(c.rx >= 5 && c.tx >= 5, "phy0 rx {} tx {}", c.rx, c.tx);
    drop(tp);
    sw.ok("del-port", json!({"name": "phy0"}));
    let eal_dir = format!("/var/run/dpdk/ferrovsd{}", sw.pid());
    let mut sw = sw;
    assert_eq!(sw.terminate(Duration::from_secs(10)), Some(0));
    assert!(!std::path::Path::new(&eal_dir).exists(), "{eal_dir} left behind");
}
