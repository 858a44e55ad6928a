//! ferrovsd between DPDK testpmd instances (virtio-user PMD): delivery with
//! exact accounting, and L2 learning.

use ferrovs_tests::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn txonly_arrives_and_every_loss_is_counted() {
    let _g = serial();
    let dir = TempDir::new("acct");
    let sw = Ferrovsd::start(dir.path(), None); // embedded default: vhost0, vhost1
    let mut rx = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    rx.cmd("start");
    let mut tx = Testpmd::start(&sw.port_socket("vhost0"), &mac(1), "txonly", &mac(2));
    tx.cmd("start");
    std::thread::sleep(Duration::from_secs(3));
    tx.cmd("stop");
    sw.wait_quiet(&["vhost0", "vhost1"]);
    std::thread::sleep(Duration::from_millis(300));
    let (_, gen_tx) = tx.stats();
    let (rcv_rx, _) = rx.stats();
    let a = sw.port("vhost0");
    let b = sw.port("vhost1");
    let dp_drops = sw.datapath_drops();
    eprintln!("generator tx {gen_tx}, switch rx {a:?}, switch tx {b:?}, datapath drops {dp_drops}, receiver rx {rcv_rx}");
    assert!(
        gen_tx > 10_000,
        "the generator sent too little to mean anything: {gen_tx}"
    );
    assert_eq!(
        a.rx + a.rx_dropped,
        gen_tx,
        "every frame the generator queued was taken by ferrovsd"
    );
    assert_eq!(
        a.rx,
        b.tx + b.tx_dropped + dp_drops,
        "every frame received was sent or dropped with a reason"
    );
    assert_eq!(
        rcv_rx, b.tx,
        "the receiver got exactly what ferrovsd says it sent"
    );
    for (reason, n) in b.tx_drops.iter().chain(&a.rx_drops) {
        assert!(!reason.is_empty() && *n > 0);
    }
    // show reports what DPDK's virtio driver negotiated.
    let show = sw.ok("show", json!({}));
    let feats = show["ports"][0]["features"].as_array().unwrap();
    for f in ["VERSION_1", "MRG_RXBUF", "INDIRECT_DESC"] {
        assert!(
            feats.iter().any(|x| x == f),
            "{f} not negotiated: {feats:?}"
        );
    }
    assert_eq!(show["ports"][0]["link"], "up");
}

#[test]
fn learning_sends_unicast_to_one_port_and_broadcast_to_all_others() {
    let _g = serial();
    let dir = TempDir::new("learn");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(3)));
    let mut a = Testpmd::start(&sw.port_socket("vhost0"), &mac(1), "rxonly", &mac(2));
    let mut b = Testpmd::start(
        &sw.port_socket("vhost1"),
        &mac(2),
        "rxonly",
        "ff:ff:ff:ff:ff:ff",
    );
    let mut c = Testpmd::start(
        &sw.port_socket("vhost2"),
        &mac(3),
        "rxonly",
        "ff:ff:ff:ff:ff:ff",
    );
    // B and C announce themselves with a short broadcast burst each.
    for t in [&mut b, &mut c] {
        t.cmd("set fwd txonly");
        t.cmd("start");
        std::thread::sleep(Duration::from_millis(200));
        t.cmd("stop");
        t.cmd("set fwd rxonly");
        t.cmd("start");
    }
    a.cmd("start");
    sw.wait_quiet(&["vhost0", "vhost1", "vhost2"]);
    let fdb = sw.ok("fdb-show", json!({}));
    let learned: Vec<_> = fdb["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["mac"].clone(), e["port"].clone()))
        .collect();
    assert!(
        learned.contains(&(json!(mac(2)), json!("vhost1"))),
        "{learned:?}"
    );
    assert!(
        learned.contains(&(json!(mac(3)), json!("vhost2"))),
        "{learned:?}"
    );

    // Unicast from A to B's MAC reaches only B.
    let (b0, c0) = (sw.port("vhost1"), sw.port("vhost2"));
    a.cmd("stop");
    a.cmd("set fwd txonly");
    a.cmd("start");
    std::thread::sleep(Duration::from_millis(1500));
    a.cmd("stop");
    sw.wait_quiet(&["vhost0", "vhost1", "vhost2"]);
    let (b1, c1, a1) = (sw.port("vhost1"), sw.port("vhost2"), sw.port("vhost0"));
    assert!(
        b1.tx + b1.tx_dropped - b0.tx - b0.tx_dropped > 1000,
        "B got the unicast stream"
    );
    assert_eq!(
        c1.tx + c1.tx_dropped,
        c0.tx + c0.tx_dropped,
        "C saw none of A's unicast to B"
    );

    // Broadcast from A reaches B and C, never A itself.
    a.cmd("set eth-peer 0 ff:ff:ff:ff:ff:ff");
    a.cmd("start");
    std::thread::sleep(Duration::from_millis(1500));
    a.cmd("stop");
    sw.wait_quiet(&["vhost0", "vhost1", "vhost2"]);
    let (b2, c2, a2) = (sw.port("vhost1"), sw.port("vhost2"), sw.port("vhost0"));
    let sent = a2.rx - a1.rx;
    assert!(sent > 1000);
    assert_eq!(
        b2.tx + b2.tx_dropped - b1.tx - b1.tx_dropped,
        sent,
        "B got every broadcast (delivered or counted)"
    );
    assert_eq!(
        c2.tx + c2.tx_dropped - c1.tx - c1.tx_dropped,
        sent,
        "C got every broadcast (delivered or counted)"
    );
    assert_eq!(
        a2.tx + a2.tx_dropped,
        a1.tx + a1.tx_dropped,
        "nothing went back to A"
    );
}

/// One receiver stops reading: its ring fills and its drops are counted as
/// ring_full, while the others keep receiving.
#[test]
fn a_guest_that_stops_reading_does_not_stall_the_others() {
    let _g = serial();
    let dir = TempDir::new("slow");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(3)));
    let mut b = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    let mut c = Testpmd::start(&sw.port_socket("vhost2"), &mac(3), "rxonly", &mac(1));
    b.cmd("start");
    c.cmd("start");
    // Broadcast from A goes to both B and C.
    let mut a = Testpmd::start(
        &sw.port_socket("vhost0"),
        &mac(1),
        "txonly",
        "ff:ff:ff:ff:ff:ff",
    );
    a.cmd("start");
    let rate = |secs: f64| {
        let b0 = sw.port("vhost1").tx;
        std::thread::sleep(Duration::from_secs_f64(secs));
        (sw.port("vhost1").tx - b0) as f64 / secs
    };
    let before = rate(2.0);
    c.cmd("stop"); // C's driver no longer empties its receive ring
    std::thread::sleep(Duration::from_millis(300));
    let c_full0 = sw.port("vhost2").tx_drop("ring_full");
    let after = rate(2.0);
    let c_full1 = sw.port("vhost2").tx_drop("ring_full");
    a.cmd("stop");
    eprintln!("B received {before:.0} pps before C stopped reading, {after:.0} pps after");
    assert!(
        c_full1 > c_full0 + 1000,
        "C's full ring is counted as ring_full drops"
    );
    // Not a benchmark: only a stall (or a collapse) must fail here.
    assert!(
        after > before * 0.3,
        "B slowed from {before:.0} to {after:.0} pps when C stopped reading"
    );
}
