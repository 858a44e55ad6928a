//! VXLAN ports (issue 16) against real peers: Linux's own `vxlan` device
//! in a network namespace the test makes (its underlay a veth whose other
//! end is ferrovsd's dpdk af_packet port), and two ferrovsd instances, each
//! in its own namespace, with a Linux VTEP as a third remote.

use ferrovs_tests::guest::{exchange_tcp, Guest, GuestConfig};
use ferrovs_tests::netns::{sh, NetnsVeth};
use ferrovs_tests::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn must(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "{cmd}: {out}");
    out
}

fn if_mac(ns: &str, ifname: &str) -> String {
    must(&format!(
        "ip netns exec {ns} cat /sys/class/net/{ifname}/address"
    ))
    .trim()
    .to_string()
}

/// A Linux VXLAN device `name` (VNI `vni`, address `ip_cidr`) in `ns`,
/// sending to `remote` over `dev`.
fn linux_vxlan(
    ns: &str,
    name: &str,
    vni: u32,
    local: &str,
    remote: &str,
    dev: &str,
    ip_cidr: &str,
) {
    for c in [
        format!("ip -n {ns} link add {name} type vxlan id {vni} remote {remote} local {local} dstport 4789 dev {dev}"),
        format!("ip -n {ns} addr add {ip_cidr} dev {name}"),
        format!("ip -n {ns} link set {name} up"),
    ] {
        must(&c);
    }
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tunnel_of(sw: &Ferrovsd, port: &str) -> ferrovs_tests::proto::TunnelStatus {
    sw.show()
        .ports
        .into_iter()
        .find(|p| p.name == port)
        .and_then(|p| p.tunnel)
        .unwrap_or_else(|| panic!("no tunnel port {port}"))
}

fn fdb(sw: &Ferrovsd) -> Vec<Value> {
    sw.ctl_json(&["fdb-show"])["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The namespace's kernel reaches a Linux guest on a ferrovsd vhost-user
/// port through Linux's VXLAN and ferrovsd's: ping both ways, 4 MiB over
/// TCP each way byte-identical; a frame with another VNI is dropped and
/// counted; show, fdb-show and /metrics name the remote.
#[test]
fn linux_vxlan_reaches_a_guest_behind_a_ferrovsd_vxlan_port() {
    let _g = serial();
    let dir = TempDir::new("vxlan-linux");
    let net = NetnsVeth::new("10.99.0.2/24");
    linux_vxlan(
        &net.ns,
        "vx0",
        42,
        "10.99.0.2",
        "10.99.0.1",
        &net.ns_if,
        "192.168.42.2/24",
    );
    linux_vxlan(
        &net.ns,
        "vx1",
        43,
        "10.99.0.2",
        "10.99.0.1",
        &net.ns_if,
        "192.168.43.2/24",
    );
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(1)));
    sw.ctl(&[
        "add-port",
        "phy0",
        "type=dpdk",
        &format!("devargs=net_af_packet0,iface={},framecnt=4096", net.host_if),
    ]);
    // Mistakes are clear errors.
    for (args, says) in [
        (
            vec![
                "type=vxlan",
                "remote-ip=10.99.0.2",
                "local-ip=10.99.0.1",
                "key=42",
                "underlay=nope",
            ],
            "underlay: no port",
        ),
        (
            vec![
                "type=vxlan",
                "remote-ip=10.99.0.2",
                "local-ip=10.99.0.1",
                "underlay=vhost0",
            ],
            "tunnels go through a dpdk port",
        ),
        (
            vec![
                "type=vxlan",
                "remote-ip=10.99.0.x",
                "local-ip=10.99.0.1",
                "underlay=phy0",
            ],
            "remote-ip:",
        ),
        (
            vec![
                "type=vxlan",
                "remote-ip=10.99.0.2",
                "local-ip=10.99.0.1",
                "key=16777216",
                "underlay=phy0",
            ],
            "key:",
        ),
    ] {
        let mut a = vec!["add-port", "bad"];
        a.extend(args);
        let e = sw.ctl_try(&a).unwrap_err();
        assert!(e.contains(says), "{a:?}: {e}");
    }
    sw.ctl(&[
        "add-port",
        "vx0",
        "type=vxlan",
        "remote-ip=10.99.0.2",
        "local-ip=10.99.0.1",
        "key=42",
        "underlay=phy0",
    ]);
    // vhost0's MTU 1500 does not fit a 1500-byte underlay with 50 bytes more.
    assert!(
        sw.log_text()
            .contains("tunnel vx0 carries at most 1450 over underlay phy0"),
        "{}",
        sw.log_text()
    );
    let e = sw.ctl_try(&["del-port", "phy0"]).unwrap_err();
    assert!(e.contains("underlay of vx0"), "{e}");
    // ARP resolves the remote to the namespace's veth.
    wait_until("ARP for 10.99.0.2", Duration::from_secs(10), || {
        tunnel_of(&sw, "vx0").remotes[0].arp == "reachable"
    });
    let t = tunnel_of(&sw, "vx0");
    assert_eq!(
        t.remotes[0].mac.as_deref(),
        Some(if_mac(&net.ns, &net.ns_if).as_str())
    );
    assert_eq!((t.key, t.dst_port, t.overlay_mtu), (42, 4789, 1450));

    let mut cfg = GuestConfig::new("g", &sw.port_socket("vhost0"), 2);
    cfg.ip = "192.168.42.1".into();
    let guest = Guest::start(cfg);
    guest.wait_ready(1, Duration::from_secs(90));
    let (code, out) = guest.sh(
        "ping -c 20 -w 20 -W 1 192.168.42.2 | grep -q 'bytes from'; ping -c 5 -i 0.2 -W 2 192.168.42.2",
        Duration::from_secs(60),
    );
    assert_eq!(
        code,
        0,
        "guest -> Linux VXLAN ping:\n{out}\n{}",
        sw.log_text()
    );
    let (ok, out) = net.exec("ping -c 5 -i 0.2 -W 2 192.168.42.1");
    assert!(
        ok && out.contains(" 0% packet loss"),
        "Linux VXLAN -> guest ping:\n{out}"
    );
    exchange_tcp(&guest, &net, "192.168.42.1", "192.168.42.2", 4 << 20);

    // The namespace's MAC on vx0 sits behind the remote; the guest's is local.
    let vx_mac = if_mac(&net.ns, "vx0");
    let entries = fdb(&sw);
    let e = entries
        .iter()
        .find(|e| e["mac"] == vx_mac.as_str())
        .unwrap_or_else(|| panic!("{vx_mac} not learned: {entries:?}"));
    assert_eq!(
        (e["port"].as_str(), e["remote"].as_str()),
        (Some("vx0"), Some("10.99.0.2")),
        "{e}"
    );
    let text = sw.ctl(&["fdb-show"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("vx0") && l.ends_with("10.99.0.2")),
        "{text}"
    );
    let shown = sw.ctl(&["show"]);
    assert!(
        shown.contains("remote 10.99.0.2 mac ") && shown.contains(" arp reachable "),
        "{shown}"
    );

    // Another VNI on the same UDP port: dropped and counted, never delivered.
    // (A static neighbour: each ping is one frame, no ARP retries.)
    let (ok, out) = net.exec("ip neigh add 192.168.43.1 lladdr 02:00:00:00:43:01 dev vx1");
    assert!(ok, "{out}");
    let before = sw.switch_drop("phy0", "vxlan_bad_vni");
    let (ok, _) = net.exec("ping -c 3 -i 0.2 -W 1 192.168.43.1");
    assert!(!ok, "nothing answers on VNI 43");
    assert!(
        sw.switch_drop("phy0", "vxlan_bad_vni") >= before + 3,
        "{}",
        sw.ctl(&["port-stats", "phy0"])
    );

    let t = tunnel_of(&sw, "vx0");
    let r = &t.remotes[0];
    assert!(r.tx_packets > 2000 && r.rx_packets > 2000, "{r:?}");
    assert_eq!(t.drops.values().sum::<u64>(), 0, "{t:?}");
    let m = sw.scrape();
    let rx = sample(
        &m,
        "ferrovs_tunnel_remote_rx_packets_total{port=\"vx0\",remote=\"10.99.0.2\"}",
    );
    assert!(rx.is_some_and(|n| n > 2000.0), "{rx:?}");
    assert_eq!(
        sample(
            &m,
            "ferrovs_tunnel_remote_resolved{port=\"vx0\",remote=\"10.99.0.2\"}"
        ),
        Some(1.0)
    );
    // The guest's large TCP segments were split before encapsulation.
    let soft_gso: u64 = sw.pmd_stats().iter().map(|p| p.soft_gso).sum();
    assert!(soft_gso > 0, "no software segmentation before the tunnel");
    let st = sw.port_stats("vx0");
    assert!(st.rx_packets > 2000 && st.tx_packets > 2000, "{st:?}");
}

/// Three hosts on one underlay bridge: two ferrovsd instances, each in its
/// own namespace with its own veth, and a Linux VTEP.
struct Underlay {
    names: Vec<String>,
}

impl Underlay {
    /// Namespaces `<tag>w` (the wire: a Linux bridge), and `<tag>a`,
    /// `<tag>b`, `<tag>c`, each with `eth0` on the wire at 10.98.0.1/2/3.
    fn new() -> Underlay {
        let tag = format!("fvx{}", std::process::id() % 100_000);
        let u = Underlay {
            names: ["w", "a", "b", "c"]
                .iter()
                .map(|s| format!("{tag}{s}"))
                .collect(),
        };
        let w = &u.names[0];
        must(&format!("ip netns add {w}"));
        must(&format!(
            "ip -n {w} link add br0 type bridge && ip -n {w} link set br0 up"
        ));
        for (i, h) in u.names[1..].iter().enumerate() {
            for c in [
                format!("ip netns add {h}"),
                format!("ip -n {w} link add p{i} type veth peer name eth0 netns {h}"),
                format!("ip -n {w} link set p{i} master br0 up"),
                format!("ip -n {h} addr add 10.98.0.{}/24 dev eth0", i + 1),
                format!("ip netns exec {h} ethtool -K eth0 tx off tso off gso off"),
                format!("ip netns exec {h} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"),
                format!("ip -n {h} link set eth0 up"),
                format!("ip -n {h} link set lo up"),
            ] {
                must(&c);
            }
        }
        u
    }

    fn host(&self, i: usize) -> &str {
        &self.names[i + 1]
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = sh(&format!("ip netns del {n}"));
        }
    }
}

/// ferrovsd in namespace `ns` with vhost0 and a tunnel (VNI 42) from
/// `local` to `remotes` through its eth0.
fn host_switch(dir: &TempDir, ns: &str, local: &str, remotes: &str) -> Ferrovsd {
    let cfg = format!(
        "[pmd]\nsleep-max = 200\n\
         [[port]]\nname = \"vhost0\"\ntype = \"vhost-user\"\npath = \"vhost0.sock\"\n\
         [[port]]\nname = \"phy0\"\ntype = \"dpdk\"\ndevargs = \"net_af_packet0,iface=eth0,framecnt=4096\"\n\
         [[port]]\nname = \"vx0\"\ntype = \"vxlan\"\nremote-ip = \"{remotes}\"\nlocal-ip = \"{local}\"\nkey = 42\nunderlay = \"phy0\"\n"
    );
    Ferrovsd::start_under(
        dir.path(),
        Some(&cfg),
        &pmd_cpu().to_string(),
        &["ip", "netns", "exec", ns],
    )
}

/// ferrovs-testpmd: port 0 on `from`'s vhost0 as MAC `from_mac` sends `n`
/// checked frames to `dst`; port 1 on `to`'s vhost0 as `to_mac` receives
/// (`tx_first`: after each sent one frame to the other).
fn across(
    from: &Ferrovsd,
    from_mac: &str,
    to: &Ferrovsd,
    to_mac: &str,
    dst: &str,
    n: u64,
    tx_first: bool,
) -> Value {
    let mut a = vec![
        format!(
            "--port=virtio-user:path={},mac={from_mac}",
            from.port_socket("vhost0").display()
        ),
        format!(
            "--port=virtio-user:path={},mac={to_mac}",
            to.port_socket("vhost0").display()
        ),
        "--forward-mode=txonly".into(),
        "--port-topology=loop".into(),
        "--tx-ports=0".into(),
        "--lcores=0".into(),
        "--no-huge".into(),
        "--tx-pps=5000".into(),
        "--link-wait=20".into(),
        "--duration=30".into(),
        format!("--eth-peer=0,{dst}"),
        format!("--nb-pkts={n}"),
    ];
    if tx_first {
        // Both VMs announce themselves first (the receiver to the sender).
        a.push("--tx-first".into());
        a.push(format!("--eth-peer=1,{from_mac}"));
    }
    ferrovs_testpmd(&a, Duration::from_secs(60))
}

fn checked(s: &Value, port: usize, what: &str) -> u64 {
    s["ports"][port]["checked"][what].as_u64().unwrap_or(0)
}

fn rx_packets(ns: &str, ifname: &str) -> u64 {
    let j: Value =
        serde_json::from_str(&must(&format!("ip -n {ns} -s -j link show {ifname}"))).unwrap();
    j[0]["stats64"]["rx"]["packets"].as_u64().unwrap()
}

/// Two ferrovsd hosts and a Linux VTEP: VMs reach each other across the
/// overlay, a broadcast reaches each remote exactly once, and a MAC that
/// moves from one host to the other is relearned on both.
#[test]
fn two_ferrovsd_hosts_and_a_linux_vtep_share_a_tenant_network() {
    let _g = serial();
    let u = Underlay::new();
    let (da, db) = (TempDir::new("vxlan-a"), TempDir::new("vxlan-b"));
    let a = host_switch(&da, u.host(0), "10.98.0.1", "10.98.0.2,10.98.0.3");
    let b = host_switch(&db, u.host(1), "10.98.0.2", "10.98.0.1,10.98.0.3");
    let c = u.host(2);
    // The Linux VTEP: head-end replication to both ferrovsd hosts.
    must(&format!(
        "ip -n {c} link add vx0 type vxlan id 42 local 10.98.0.3 dstport 4789 dev eth0"
    ));
    for r in ["10.98.0.1", "10.98.0.2"] {
        must(&format!(
            "ip netns exec {c} bridge fdb append 00:00:00:00:00:00 dev vx0 dst {r}"
        ));
    }
    must(&format!(
        "ip -n {c} addr add 192.168.98.3/24 dev vx0 && ip -n {c} link set vx0 up"
    ));
    for (sw, n) in [(&a, 2), (&b, 2)] {
        wait_until("every remote resolved", Duration::from_secs(10), || {
            tunnel_of(sw, "vx0")
                .remotes
                .iter()
                .filter(|r| r.arp == "reachable")
                .count()
                == n
        });
    }

    // VM X (MAC 1) on host A sends 2000 checked frames to VM Y (MAC 2) on host B.
    let (x, y, z) = (mac(1), mac(2), mac(3));
    let s = across(&a, &x, &b, &y, &y, 2000, true);
    assert_eq!(checked(&s, 1, "bad"), 0, "{s:#}");
    assert_eq!(
        checked(&s, 1, "good"),
        2000,
        "A -> B across the overlay: {s:#}"
    );
    let behind = |sw: &Ferrovsd, m: &str| {
        fdb(sw).into_iter().find(|e| e["mac"] == m).map(|e| {
            (
                e["port"].as_str().unwrap().to_string(),
                e["remote"].as_str().map(String::from),
            )
        })
    };
    assert_eq!(
        behind(&b, &x),
        Some(("vx0".into(), Some("10.98.0.1".into())))
    );
    assert_eq!(
        behind(&a, &y),
        Some(("vx0".into(), Some("10.98.0.2".into()))),
        "A: {}\nB: {}",
        a.ctl(&["fdb-show"]),
        b.ctl(&["fdb-show"]),
    );

    // One broadcast from A: B's VM gets it once, the Linux VTEP once.
    let c_before = rx_packets(c, "vx0");
    let a_tx: Vec<u64> = tunnel_of(&a, "vx0")
        .remotes
        .iter()
        .map(|r| r.tx_packets)
        .collect();
    let s = across(&a, &x, &b, &y, "ff:ff:ff:ff:ff:ff", 1, false);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        checked(&s, 1, "good"),
        1,
        "B's VM got the broadcast once: {s:#}"
    );
    assert_eq!(
        rx_packets(c, "vx0") - c_before,
        1,
        "the Linux VTEP got it once"
    );
    let a_tx_after: Vec<u64> = tunnel_of(&a, "vx0")
        .remotes
        .iter()
        .map(|r| r.tx_packets)
        .collect();
    assert_eq!(a_tx_after[0] - a_tx[0], 1, "one copy to B");
    assert_eq!(a_tx_after[1] - a_tx[1], 1, "one copy to C");

    // X moves from host A to host B (beside Y's host now, talking to Z on A).
    let s = across(&b, &x, &a, &z, &z, 1000, true);
    assert_eq!(checked(&s, 1, "good"), 1000, "B -> A after the move: {s:#}");
    assert_eq!(
        behind(&b, &x),
        Some(("vhost0".into(), None)),
        "B: X is local now"
    );
    assert_eq!(
        behind(&a, &x),
        Some(("vx0".into(), Some("10.98.0.2".into()))),
        "A: X is behind B"
    );
    // And traffic to X from A now goes to host B.
    let s = across(&a, &z, &b, &x, &x, 1000, false);
    assert_eq!(checked(&s, 1, "good"), 1000, "A -> X at B: {s:#}");
    let moved: u64 = a.ctl_json(&["fdb-show"])["stats"]["moved"]
        .as_u64()
        .unwrap();
    assert!(moved >= 1, "A counted the move");
}
