//! VLAN tenants with real Linux guests (their own virtio-net driver and
//! 802.1Q code) on ferrovsd ports whose VLAN options are set in the config,
//! by `ferrovs-ctl add-port ... tag=N` and by `ferrovs-ctl set-port` at runtime.
//!
//! Three guests, not four: under TCG on two cores every guest costs a
//! lot, so guest C plays both roles in turn (an access port on VLAN 20, then
//! a trunk of VLANs 10 and 20 after `set-port`), and B moves from VLAN 10 to
//! VLAN 20 for the last phase so that the trunk has a VLAN-20 peer:
//!
//! 1. A, B access VLAN 10 (config), C access VLAN 20 (add-port tag=20), all
//!    in 10.0.10.0/24: A and B ping; C reaches neither and they do not reach
//!    C; nothing at all is sent to C's port.
//! 2. C moves its address to an 802.1Q subinterface eth0.10: its tagged
//!    frames are dropped at its access port (switch drop "vlan" rises), and it
//!    still reaches nobody.
//! 3. `set-port C tag= trunks=10,20 vlan-mode=trunk`: C's eth0.10 reaches A and B.
//! 4. `set-port B tag=20`: C's eth0.20 (10.0.20.0/24) reaches B; A no longer
//!    reaches B, C's eth0.10 still reaches A.
//!
//! The guest's 8021q module (and llc, stp, garp, mrp it needs) is in the
//! initramfs that tests/guest/build.sh makes; C loads it with insmod.

use ferrovs_tests::guest::{Guest, GuestConfig};
use ferrovs_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(120);
const CMD: Duration = Duration::from_secs(60);

/// A switch drop counted on `port`, from `ferrovs-ctl --json port-stats PORT`.
fn switch_drop(sw: &Ferrovsd, port: &str, reason: &str) -> u64 {
    let v: Value = serde_json::from_str(&sw.ctl(&["--json", "port-stats", port])).unwrap();
    v[0]["switch_drops"][reason].as_u64().unwrap_or(0)
}

/// Pings until one answer comes back (ARP and learning), then `count`
/// pings must all be answered.
fn ping_ok(from: &Guest, to: &str, count: u32) {
    let (code, out) = from.sh(
        &format!(
            "ping -c 20 -w 20 -W 1 {to} | grep -q 'bytes from' ; ping -c {count} -i 0.2 -W 2 {to}"
        ),
        CMD,
    );
    assert_eq!(code, 0, "{}: ping {to} failed:\n{out}", from.cfg.name);
    assert!(
        out.contains(&format!(
            "{count} packets transmitted, {count} packets received, 0% packet loss"
        )),
        "{}: {out}",
        from.cfg.name
    );
}

/// Three pings (and the ARP requests before them) that must all go unanswered.
fn ping_fails(from: &Guest, to: &str) {
    let (code, out) = from.sh(&format!("ping -c 3 -w 4 -W 1 {to}"), CMD);
    // No answer: "0 packets received", or sendto failing once ARP has given up.
    assert!(
        code != 0 && out.contains("PING") && !out.contains("bytes from"),
        "{} reached {to} across VLANs:\n{out}",
        from.cfg.name
    );
}

/// Runs a guest command that must succeed.
fn sh_ok(g: &Guest, cmd: &str) -> String {
    let (code, out) = g.sh(cmd, CMD);
    assert_eq!(code, 0, "{}: {cmd}:\n{out}", g.cfg.name);
    out
}

/// Where the FDB learned `mac` (VLAN, port name).
fn learned(sw: &Ferrovsd, mac: &str) -> Vec<(u64, String)> {
    let fdb = sw.ok("fdb-show", json!({}));
    let mut v: Vec<(u64, String)> = fdb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["mac"] == mac)
        .map(|e| {
            (
                e["vlan"].as_u64().unwrap(),
                e["port"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn port_show(sw: &Ferrovsd, name: &str) -> Value {
    let show = sw.ok("show", json!({}));
    show["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no port {name} in {show:#}"))
}

#[test]
fn access_and_trunk_ports_separate_and_join_guest_vlans() {
    let _g = serial();
    let t0 = Instant::now();
    let dir = TempDir::new("vlan-vm");
    // A and B: access VLAN 10 from the config (one by tag alone, one with the mode spelled out).
    let cfg = "[pmd]\nsleep-max = 100\n\
               [[port]]\nname = \"vhost0\"\ntype = \"vhost-user\"\npath = \"vhost0.sock\"\ntag = 10\n\
               [[port]]\nname = \"vhost1\"\ntype = \"vhost-user\"\npath = \"vhost1.sock\"\ntag = 10\nvlan-mode = \"access\"\n";
    let sw = Ferrovsd::start(dir.path(), Some(cfg));
    // C: access VLAN 20, added at runtime.
    sw.ctl(&[
        "add-port",
        "vhost2",
        "type=vhost-user",
        "path=vhost2.sock",
        "tag=20",
    ]);
    for (p, tag) in [("vhost0", 10), ("vhost1", 10), ("vhost2", 20)] {
        let s = port_show(&sw, p);
        assert_eq!(
            (&s["vlan_mode"], &s["tag"]),
            (&json!("access"), &json!(tag)),
            "{s:#}"
        );
    }

    let mut ca = GuestConfig::new("a", &sw.port_socket("vhost0"), 1);
    ca.ip = "10.0.10.1".into();
    let mut cb = GuestConfig::new("b", &sw.port_socket("vhost1"), 2);
    cb.ip = "10.0.10.2".into();
    // C sits in VLAN 10's subnet but on VLAN 20: only the switch keeps it out.
    let mut cc = GuestConfig::new("c", &sw.port_socket("vhost2"), 3);
    cc.ip = "10.0.10.3".into();
    let (a, b, c) = (Guest::start(ca), Guest::start(cb), Guest::start(cc));
    a.wait_ready(1, BOOT);
    b.wait_ready(1, BOOT);
    c.wait_ready(1, BOOT);
    eprintln!("guests up after {:?}", t0.elapsed());
    let (mac_a, mac_b, mac_c) = (a.cfg.mac.clone(), b.cfg.mac.clone(), c.cfg.mac.clone());

    // Phase 1: VLAN 10 works, VLAN 20 is apart.
    ping_ok(&a, "10.0.10.2", 5);
    ping_ok(&b, "10.0.10.1", 3);
    ping_fails(&c, "10.0.10.1");
    ping_fails(&c, "10.0.10.2");
    ping_fails(&a, "10.0.10.3");
    let pc = sw.port("vhost2");
    assert!(pc.rx > 0, "C sent its ARP requests: {pc:?}");
    assert_eq!(
        (pc.tx, pc.tx_dropped),
        (0, 0),
        "nothing of VLAN 10 was ever sent towards C's VLAN-20 port: {pc:?}"
    );
    assert_eq!(learned(&sw, &mac_a), [(10, "vhost0".to_string())]);
    assert_eq!(learned(&sw, &mac_c), [(20, "vhost2".to_string())]);
    eprintln!("phase 1 done after {:?}", t0.elapsed());

    // Phase 2: C tags its frames with VLAN 10 itself; its access port drops them.
    let out = sh_ok(
        &c,
        "for m in llc stp garp mrp 8021q; do insmod /lib/modules/$m.ko || exit 1; done; \
         ip addr flush dev eth0 && ip link add link eth0 name eth0.10 type vlan id 10 && \
         ip link set eth0.10 up && ip addr add 10.0.10.3/24 dev eth0.10 && ip addr show eth0.10",
    );
    assert!(out.contains("10.0.10.3/24"), "{out}");
    let vlan_drops0 = switch_drop(&sw, "vhost2", "vlan");
    let rx0 = sw.port("vhost2").rx;
    ping_fails(&c, "10.0.10.1");
    let vlan_drops1 = switch_drop(&sw, "vhost2", "vlan");
    let rx1 = sw.port("vhost2").rx;
    eprintln!(
        "C's tagged frames: {} received, {} dropped as vlan",
        rx1 - rx0,
        vlan_drops1 - vlan_drops0
    );
    assert!(
        vlan_drops1 >= vlan_drops0 + 3,
        "C's VID-10 ARP requests are counted as vlan drops on its port: {vlan_drops0} -> {vlan_drops1}"
    );
    assert!(
        vlan_drops1 - vlan_drops0 <= rx1 - rx0,
        "only frames C sent count as its port's vlan drops"
    );
    assert_eq!(sw.port("vhost2").tx, 0, "still nothing towards C");
    ping_ok(&a, "10.0.10.2", 2);
    eprintln!("phase 2 done after {:?}", t0.elapsed());

    // Phase 3: C's port becomes a trunk of VLANs 10 and 20.
    let out = sw.ctl(&[
        "--json",
        "set-port",
        "vhost2",
        "tag=",
        "trunks=10,20",
        "vlan-mode=trunk",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["vlan_mode"], "trunk", "{v}");
    assert_eq!(v["tag"], Value::Null, "{v}");
    let s = port_show(&sw, "vhost2");
    assert_eq!(
        (&s["vlan_mode"], &s["trunks"]),
        (&json!("trunk"), &json!("10,20")),
        "{s:#}"
    );
    ping_ok(&c, "10.0.10.1", 5);
    ping_ok(&c, "10.0.10.2", 3);
    ping_ok(&a, "10.0.10.3", 3);
    assert_eq!(learned(&sw, &mac_c), [(10, "vhost2".to_string())]);
    eprintln!("phase 3 done after {:?}", t0.elapsed());

    // Phase 4: B moves to VLAN 20 (keeping 10.0.10.2, adding 10.0.20.2);
    // C gets eth0.20.
    sw.ctl(&["set-port", "vhost1", "tag=20"]);
    sh_ok(&b, "ip addr add 10.0.20.2/24 dev eth0");
    sh_ok(
        &c,
        "ip link add link eth0 name eth0.20 type vlan id 20 && ip link set eth0.20 up && \
         ip addr add 10.0.20.3/24 dev eth0.20",
    );
    ping_ok(&c, "10.0.20.2", 5);
    ping_ok(&b, "10.0.20.3", 3);
    ping_ok(&c, "10.0.10.1", 3);
    ping_fails(&a, "10.0.10.2");
    ping_fails(&c, "10.0.10.2");
    assert_eq!(
        learned(&sw, &mac_c),
        [(10, "vhost2".to_string()), (20, "vhost2".to_string())],
        "C is known in both VLANs, on its trunk"
    );
    let in_b = learned(&sw, &mac_b);
    assert!(
        in_b.contains(&(20, "vhost1".to_string())) && !in_b.iter().any(|e| e.0 == 10),
        "B is known in VLAN 20 only: {in_b:?}"
    );
    eprintln!("phase 4 done after {:?}", t0.elapsed());
}
