//! Guest offloads with real Linux guests (issue 15): their virtio-net driver
//! negotiates checksum and TCP segmentation offloads with ferrovsd, and 64 MiB
//! of TCP cross byte for byte
//! - between two guests that both take them (large segments passed whole),
//! - to a guest whose port has `offloads = false` (the switch splits them),
//! - between an access port and a trunk whose guest uses an 802.1Q
//!   subinterface (the tag pushed and popped under the offloads).
//!
//! Under TCG here; the guests are the bottleneck, not the switch.

use ferrovs_tests::guest::{Guest, GuestConfig};
use ferrovs_tests::*;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(120);
const CMD: Duration = Duration::from_secs(60);
const LONG: Duration = Duration::from_secs(400);
const MIB: usize = 64;

fn switch(dir: &std::path::Path, port1_extra: &str, port0_extra: &str) -> Ferrovsd {
    let c = format!(
        "[pmd]\nsleep-max = 100\n\
         [[port]]\nname = \"vhost0\"\ntype = \"vhost-user\"\npath = \"vhost0.sock\"\n{port0_extra}\
         [[port]]\nname = \"vhost1\"\ntype = \"vhost-user\"\npath = \"vhost1.sock\"\n{port1_extra}"
    );
    Ferrovsd::start(dir, Some(&c))
}

fn guests(sw: &Ferrovsd) -> (Guest, Guest) {
    let a = Guest::start(GuestConfig::new("a", &sw.port_socket("vhost0"), 1));
    let b = Guest::start(GuestConfig::new("b", &sw.port_socket("vhost1"), 2));
    a.wait_ready(1, BOOT);
    b.wait_ready(1, BOOT);
    (a, b)
}

fn sh_ok(g: &Guest, cmd: &str, within: Duration) -> String {
    let (code, out) = g.sh(cmd, within);
    assert_eq!(code, 0, "{cmd}:\n{out}");
    out
}

/// `ethtool -k` in the guest: (tx checksumming, TCP segmentation offload) on?
fn offloads_on(g: &Guest, dev: &str) -> (bool, bool) {
    let out = sh_ok(g, &format!("/sbin/ethtool -k {dev}"), CMD);
    let on = |feature: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(feature) && l.contains(": on"))
    };
    let r = (on("tx-checksumming"), on("tcp-segmentation-offload"));
    eprintln!("{}: ethtool -k {dev}: {r:?}\n{out}", g.cfg.name);
    r
}

/// Pings until one answer comes back (ARP and learning).
fn reach(from: &Guest, to: &str) {
    sh_ok(
        from,
        &format!("ping -c 30 -w 30 -W 1 {to} | grep -q 'bytes from'"),
        CMD,
    );
}

/// `MIB` MiB of random bytes from `from` to `to` (at `to_ip`) over TCP,
/// compared by md5.
fn transfer(from: &Guest, to: &Guest, to_ip: &str, port: u16) {
    let sum_from = sh_ok(
        from,
        &format!(
            "dd if=/dev/urandom of=/tmp/blob bs=1048576 count={MIB} 2>/dev/null; md5sum /tmp/blob"
        ),
        LONG,
    );
    sh_ok(
        to,
        &format!("rm -f /tmp/got; (sleep 900 | nc -l -p {port} > /tmp/got &) ; sleep 0.5"),
        CMD,
    );
    sh_ok(from, &format!("nc -w 10 {to_ip} {port} < /tmp/blob"), LONG);
    let bytes = MIB << 20;
    let sum_to = sh_ok(
        to,
        &format!("i=0; while [ $(wc -c < /tmp/got) -lt {bytes} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; md5sum /tmp/got; wc -c < /tmp/got"),
        LONG,
    );
    let hash = |s: &str| {
        s.split_whitespace()
            .find(|w| w.len() == 32)
            .map(String::from)
    };
    assert!(hash(&sum_from).is_some(), "{sum_from}");
    assert_eq!(
        hash(&sum_from),
        hash(&sum_to),
        "{MIB} MiB did not arrive intact\nsent: {sum_from}\ngot: {sum_to}"
    );
    sh_ok(from, "rm -f /tmp/blob", CMD);
    sh_ok(to, "rm -f /tmp/got", CMD);
}

fn soft(sw: &Ferrovsd) -> (u64, u64) {
    sw.pmd_stats()
        .iter()
        .fold((0, 0), |(g, c), p| (g + p.soft_gso, c + p.soft_csum))
}

#[test]
fn guests_with_offloads_move_64_mib_in_large_segments_passed_whole() {
    let _g = serial();
    let dir = TempDir::new("vmo-tso");
    let sw = switch(dir.path(), "", "");
    let (a, b) = guests(&sw);
    assert_eq!(offloads_on(&a, "eth0"), (true, true), "guest A's offloads");
    assert_eq!(offloads_on(&b, "eth0"), (true, true), "guest B's offloads");
    reach(&a, "10.0.0.2");
    transfer(&a, &b, "10.0.0.2", 5001);
    let (p0, p1) = (sw.port_stats("vhost0"), sw.port_stats("vhost1"));
    assert!(p0.gso_rx_frames > 0, "{p0:?}");
    assert!(p1.gso_tx_frames > 0, "{p1:?}");
    assert!(p1.one_copy_frames > 0, "{p1:?}");
    assert_eq!(soft(&sw).0, 0, "nothing split in software");
}

#[test]
fn a_guest_port_without_offloads_gets_segments_split_by_the_switch() {
    let _g = serial();
    let dir = TempDir::new("vmo-soft");
    let sw = switch(dir.path(), "offloads = false\n", "");
    let (a, b) = guests(&sw);
    assert_eq!(offloads_on(&a, "eth0"), (true, true));
    assert_eq!(
        offloads_on(&b, "eth0"),
        (false, false),
        "B's port offers none"
    );
    reach(&a, "10.0.0.2");
    transfer(&a, &b, "10.0.0.2", 5001);
    transfer(&b, &a, "10.0.0.1", 5002);
    let (soft_gso, _) = soft(&sw);
    assert!(soft_gso > 0, "A's large segments were split for B");
    assert_eq!(sw.port_stats("vhost1").gso_tx_frames, 0);
}

/// A on an access port of VLAN 10, B on a trunk with its address on eth0.10:
/// large segments gain a tag towards B and lose it towards A.
#[test]
fn offloads_cross_an_access_and_trunk_vlan_pair() {
    let _g = serial();
    let dir = TempDir::new("vmo-vlan");
    let sw = switch(dir.path(), "trunks = \"10\"\n", "tag = 10\n");
    let (a, b) = guests(&sw);
    sh_ok(
        &b,
        "for m in llc stp garp mrp 8021q; do insmod /lib/modules/$m.ko || exit 1; done; \
         ip addr flush dev eth0 && ip link add link eth0 name eth0.10 type vlan id 10 && \
         ip link set eth0.10 up && ip addr add 10.0.0.2/24 dev eth0.10",
        CMD,
    );
    assert!(offloads_on(&b, "eth0.10").1, "TSO on the VLAN device");
    reach(&a, "10.0.0.2");
    transfer(&a, &b, "10.0.0.2", 5001);
    transfer(&b, &a, "10.0.0.1", 5002);
    let (p0, p1) = (sw.port_stats("vhost0"), sw.port_stats("vhost1"));
    assert!(
        p0.gso_rx_frames > 0 && p1.gso_tx_frames > 0,
        "{p0:?}\n{p1:?}"
    );
    assert!(
        p1.gso_rx_frames > 0 && p0.gso_tx_frames > 0,
        "{p0:?}\n{p1:?}"
    );
}
