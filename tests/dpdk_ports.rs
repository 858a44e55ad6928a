//! `dpdk` ports: a NIC through DPDK's ethdev drivers. Here the NIC is
//! DPDK's `net_af_packet` on a veth whose other end sits in a network
//! namespace this test makes. Behind ferrovsd's vhost-user port: DPDK
//! testpmd (virtio-user, icmpecho), ferrovs-testpmd, or a QEMU Linux guest.

use ferrovs_tests::guest::{Guest, GuestConfig};
use ferrovs_tests::netns::NetnsVeth;
use ferrovs_tests::*;
use serde_json::json;
use std::time::Duration;

/// The switch's end of the wire. 4096 frames in the packet-socket ring
/// (default 512): 400 ms of slack at 10 kpps for an unoptimised ferrovsd
/// that a busy 2-vCPU machine stalls now and then.
fn phy_devargs(net: &NetnsVeth) -> String {
    format!("net_af_packet0,iface={},framecnt=4096", net.host_if)
}

/// ferrovsd with vhost0 and `phy0`, a dpdk af_packet port on the host end of `net`.
fn switch_with_phy(dir: &TempDir, net: &NetnsVeth) -> Ferrovsd {
    switch_with_dpdk_port(dir, &phy_devargs(net))
}

/// ferrovsd with vhost0 and `phy0`, a dpdk port on `devargs`.
fn switch_with_dpdk_port(dir: &TempDir, devargs: &str) -> Ferrovsd {
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(1)));
    let r = sw.request(
        "add-port",
        json!({"name": "phy0", "type": "dpdk", "devargs": devargs}),
    );
    assert_eq!(
        r["ok"], true,
        "add-port type=dpdk failed (build ferrovsd with --features switch/dpdk, as scripts/test does): {r}"
    );
    sw
}

#[test]
fn netns_kernel_pings_a_vhost_peer_through_a_dpdk_af_packet_port() {
    let _g = serial();
    let dir = TempDir::new("dp-ping");
    let net = NetnsVeth::new("10.99.0.1/24");
    let sw = switch_with_phy(&dir, &net);
    // A bad devargs string is a clear error, and the daemon stays up.
    let bad = sw.request(
        "add-port",
        json!({"name": "bad0", "type": "dpdk", "devargs": "net_nosuch0,x=y"}),
    );
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().contains("cannot probe"),
        "{bad}"
    );
    // What an operator reads: `ferrovs-ctl show` names driver and link.
    let o = std::process::Command::new(bin("ferrovs-ctl"))
        .arg("--socket")
        .arg(sw.socket())
        .arg("show")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("port phy0 (") && text.contains(": dpdk link up"),
        "{text}"
    );
    assert!(text.contains("driver net_af_packet speed"), "{text}");
    let phy = show_port(&sw, "phy0");
    assert_eq!(phy["type"], "dpdk");
    assert_eq!(phy["driver"], "net_af_packet", "{phy}");
    assert_eq!(phy["link"], "up", "{phy}");

    let mut tp = Testpmd::start(&sw.port_socket("vhost0"), &mac(2), "icmpecho", &mac(1));
    tp.cmd("start");
    let (ok, out) = net.exec("ping -c 5 -i 0.2 -W 2 10.99.0.2");
    eprintln!("{out}");
    assert!(
        ok && out.contains(" 0% packet loss"),
        "ping through ferrovsd failed:\n{out}\n{}",
        sw.log_text()
    );
    let c = sw.port("phy0");
    assert!(c.rx >= 5 && c.tx >= 5, "phy0 rx {} tx {}", c.rx, c.tx);
    drop(tp);
    sw.ok("del-port", json!({"name": "phy0"}));
    // More rx queues than the device has is a clear error (af_packet has
    // qpairs=1 unless told otherwise) ...
    let r = sw.request(
        "add-port",
        json!({"name": "phy0", "type": "dpdk", "devargs": phy_devargs(&net), "n-rxq": "2"}),
    );
    assert_eq!(r["ok"], false, "{r}");
    assert!(r["error"].as_str().unwrap().contains("qpairs"), "{r}");
    // ... and neither it nor del-port leave the device plugged: the same
    // name comes back, now with two queue pairs.
    let two = format!("{},qpairs=2", phy_devargs(&net));
    let r = sw.request(
        "add-port",
        json!({"name": "phy0", "type": "dpdk", "devargs": two, "n-rxq": "2"}),
    );
    assert_eq!(r["ok"], true, "re-adding phy0 with 2 queues: {r}");
    let phy = show_port(&sw, "phy0");
    assert!(phy["queues"].as_str().unwrap().starts_with("2 rx"), "{phy}");
    sw.ok("del-port", json!({"name": "phy0"}));
    let eal_dir = format!("/var/run/dpdk/ferrovsd{}", sw.pid());
    let mut sw = sw;
    assert_eq!(sw.terminate(Duration::from_secs(10)), Some(0));
    assert!(
        !std::path::Path::new(&eal_dir).exists(),
        "{eal_dir} left behind"
    );
}

/// ferrovs-testpmd's own `dpdk:` port (af_packet, inside the namespace)
/// sends `n` checked frames at `pps`; they cross the veth, ferrovsd's dpdk
/// port and its vhost-user port to the same ferrovs-testpmd's virtio-user
/// sink, which must get every one intact.
fn send_counted(sw: &Ferrovsd, net: &NetnsVeth, n: u64, pps: u64) {
    let args: Vec<String> = [
        format!(
            "--port=dpdk:mac={},devargs=net_af_packet0,iface={}",
            mac(1),
            net.ns_if
        ),
        format!(
            "--port=virtio-user:path={},mac={},queue-size=4096",
            sw.port_socket("vhost0").display(),
            mac(2)
        ),
        "--port-topology=loop".into(),
        "--tx-ports=0".into(),
        "--forward-mode=txonly".into(),
        format!("--eth-peer=0,{}", mac(2)),
        "--tx-first".into(),
        format!("--nb-pkts={n}"),
        format!("--tx-pps={pps}"),
        "--lcores=0".into(),
        "--no-huge".into(),
    ]
    .into();
    let tp = FerrovsTestpmd::spawn_in_netns(&net.ns, &args);
    let pid = tp.child.as_ref().unwrap().id();
    let s = tp.finish(Duration::from_secs(60));
    assert_eq!(s["generated"].as_u64().unwrap(), n, "{s:#}");
    assert_eq!(s["checked"]["bad"], 0, "corrupted frames: {s:#}");
    assert_eq!(
        s["checked"]["good"].as_u64().unwrap(),
        n,
        "frames lost: {s:#}\nphy0: {:?}\nvhost0: {:?}\n{}",
        sw.port("phy0"),
        sw.port("vhost0"),
        sw.log_text()
    );
    // The generator's EAL directory went with it.
    assert!(!std::path::Path::new(&format!("/var/run/dpdk/fvtp{pid}")).exists());
}

#[test]
fn testpmd_dpdk_port_frames_cross_ferrovsd_dpdk_port_counted_and_intact() {
    let _g = serial();
    let dir = TempDir::new("dp-count");
    let net = NetnsVeth::new("10.99.0.1/24");
    let sw = switch_with_phy(&dir, &net);
    const N: u64 = 20_000;
    send_counted(&sw, &net, N, 10_000);
    let phy = sw.port("phy0");
    assert!(phy.rx >= N, "phy0 counted {} received", phy.rx);
    assert!(
        phy.rx_drops.iter().all(|(_, n)| *n == 0),
        "{:?}",
        phy.rx_drops
    );
}

/// The same through DPDK's `net_af_xdp` (an AF_XDP socket on the veth).
#[test]
fn af_xdp_port_forwards_counted_frames() {
    let _g = serial();
    let dir = TempDir::new("dp-xdp");
    let net = NetnsVeth::new("10.99.0.1/24");
    let sw = switch_with_dpdk_port(&dir, &format!("net_af_xdp0,iface={}", net.host_if));
    let phy = show_port(&sw, "phy0");
    assert_eq!(phy["driver"], "net_af_xdp", "{phy}");
    send_counted(&sw, &net, 5_000, 10_000);
}

/// One port's entry in `show`.
fn show_port(sw: &Ferrovsd, name: &str) -> serde_json::Value {
    let show = sw.ok("show", json!({}));
    let port = show["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name);
    port.unwrap_or_else(|| panic!("no port {name} in {show}"))
        .clone()
}

/// The namespace's kernel and a Linux guest (its own virtio-net driver on
/// ferrovsd's vhost-user port) ping and move 4 MiB over TCP each way.
#[test]
fn netns_kernel_and_a_linux_guest_talk_tcp_through_a_dpdk_port() {
    let _g = serial();
    const BLOB: usize = 4 << 20;
    const CMD: Duration = Duration::from_secs(120);
    let dir = TempDir::new("dp-tcp");
    let net = NetnsVeth::new("10.99.0.1/24");
    let sw = switch_with_phy(&dir, &net);
    let mut cfg = GuestConfig::new("g", &sw.port_socket("vhost0"), 2);
    cfg.ip = "10.99.0.2".into();
    let guest = Guest::start(cfg);
    guest.wait_ready(1, Duration::from_secs(90));
    let (code, out) = guest.sh(
        "ping -c 20 -w 20 -W 1 10.99.0.1 | grep -q 'bytes from'; ping -c 5 -i 0.2 -W 2 10.99.0.1",
        CMD,
    );
    assert_eq!(code, 0, "guest -> namespace ping:\n{out}");
    let (ok, out) = net.exec("ping -c 5 -i 0.2 -W 2 10.99.0.2");
    assert!(
        ok && out.contains(" 0% packet loss"),
        "namespace -> guest ping:\n{out}"
    );

    ferrovs_tests::guest::exchange_tcp(&guest, &net, "10.99.0.2", "10.99.0.1", BLOB);

    let phy = sw.port("phy0");
    assert!(
        phy.rx_drops.iter().all(|(_, n)| *n == 0) && phy.tx_drops.iter().all(|(_, n)| *n == 0),
        "{phy:?}"
    );
    // The guest handed TCP over in large segments with checksums left to
    // the switch; the DPDK port takes neither, so the switch did them.
    let pmds = sw.pmd_stats();
    let (soft_gso, soft_csum) = pmds
        .iter()
        .fold((0, 0), |(g, c), p| (g + p.soft_gso, c + p.soft_csum));
    assert!(soft_gso > 0 && soft_csum > 0, "{pmds:?}");
}

/// Hybrid polling on a dpdk port (issue 14): DPDK's own `net_virtio_user`
/// vdev inside ferrovsd, its backend a ferrovs-testpmd vhost-user port that
/// sends 50 frames a second. Between frames the queue sleeps on its DPDK rx
/// interrupt (`notified`); every frame wakes it, and none is lost.
#[test]
fn a_dpdk_port_with_rx_interrupts_sleeps_between_frames_and_loses_none() {
    let _g = serial();
    let dir = TempDir::new("dp-intr");
    let backend = dir.path().join("backend.sock");
    const N: u64 = 150;
    let gen = FerrovsTestpmd::spawn(&[
        format!("--port=vhost:path={},mac={}", backend.display(), mac(7)),
        "--forward-mode=txonly".into(),
        "--txpkts=64".into(),
        "--tx-pps=50".into(),
        "--burst=1".into(),
        format!("--nb-pkts={N}"),
        "--lcores=0".into(),
        "--link-wait=30".into(),
        "--duration=30".into(),
    ]);
    let sw = switch_with_dpdk_port(
        &dir,
        &format!("net_virtio_user9,path={},queues=1", backend.display()),
    );
    let phy = show_port(&sw, "phy0");
    assert_eq!(phy["driver"], "net_virtio_user", "{phy}");
    assert!(
        sw.wait_rxq_mode("phy0", 0, "notified", Duration::from_secs(20)),
        "the idle dpdk queue never slept on its rx interrupt: {:?}",
        sw.rxq("phy0", 0)
    );
    let s = gen.finish(Duration::from_secs(60));
    let sent = s["ports"][0]["tx_packets"].as_u64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sw.port("phy0").rx < sent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        sw.port("phy0").rx,
        sent,
        "frames lost on the dpdk port: {s:#}"
    );
    let q = sw.rxq("phy0", 0);
    // Most frames found the queue asleep and woke it (a frame can come
    // while it is still polled); none waited for the 100 ms periodic look.
    assert!(q.wakeups >= N / 2, "{q:?}");
    assert_eq!(q.late_wakeups, 0, "{q:?}");
}
