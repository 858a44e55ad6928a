//! One copy between guests (issue 15): a frame from one vhost-user port to
//! another is copied once, sending guest -> receiving guest, with the headers
//! the switch decided on copied privately first. Checked frames at 64, 1518
//! and 9000 bytes, a receiver whose ring is full half the time, floods, and a
//! guest that rewrites its transmit buffer while the switch works on it.

use ferrovs_tests::vhost_frontend::*;
use ferrovs_tests::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of a leased frame the switch copies privately (pmd's LEASE_HEAD).
const HEAD: usize = 192;

/// Three vhost-user ports with MTU 9000 (so a jumbo packet pool).
fn switch(dir: &std::path::Path) -> Ferrovsd {
    let mut c = String::from("[pmd]\nsleep-max = 100\n[memory]\nn-mbufs = 16384\n");
    for i in 0..3 {
        c.push_str(&format!(
            "[[port]]\nname = \"vhost{i}\"\ntype = \"vhost-user\"\npath = \"vhost{i}.sock\"\nmtu-request = 9000\n"
        ));
    }
    Ferrovsd::start(dir, Some(&c))
}

/// ferrovs-testpmd on vhost0..2 (MACs 1..3): port 0 generates `n` checked
/// frames of `size` bytes to `dst`, ports 1 and 2 receive and check.
fn run(sw: &Ferrovsd, size: usize, n: u64, dst: &str, extra: &[&str]) -> Value {
    let mut a = virtio_user_ports(sw, 3);
    a.extend(
        [
            "--forward-mode=txonly",
            "--port-topology=loop",
            "--tx-ports=0",
            "--tx-first",
            "--lcores=0",
            "--mbuf-size=9216",
            "--no-huge",
            "--duration=60",
        ]
        .map(String::from),
    );
    a.push(format!("--eth-peer=0,{dst}"));
    a.push(format!("--txpkts={size}"));
    a.push(format!("--nb-pkts={n}"));
    a.extend(extra.iter().map(|s| s.to_string()));
    ferrovs_testpmd(&a, Duration::from_secs(90))
}

fn checked(s: &Value, port: usize, what: &str) -> u64 {
    s["ports"][port]["checked"][what].as_u64().unwrap()
}

fn one_copy(sw: &Ferrovsd, port: &str) -> u64 {
    sw.port_stats(port).one_copy_frames
}

#[test]
fn checked_frames_cross_between_guests_in_one_copy_at_64_1518_and_9000_bytes() {
    let _g = serial();
    let dir = TempDir::new("one-copy-sizes");
    let sw = switch(dir.path());
    for (size, n) in [(64usize, 100_000u64), (1518, 50_000), (9000, 10_000)] {
        let before = one_copy(&sw, "vhost1");
        let s = run(&sw, size, n, &mac(2), &["--tx-pps=100000"]);
        let good = checked(&s, 1, "good");
        assert_eq!(
            checked(&s, 1, "bad"),
            0,
            "{size} B: corrupted frames: {s:#}"
        );
        assert!(
            good >= n * 99 / 100,
            "{size} B: {good} of {n} arrived: {s:#}"
        );
        let copied = one_copy(&sw, "vhost1") - before;
        if size < 1024 {
            assert_eq!(copied, 0, "{size} B frames are copied whole, twice");
        } else {
            assert!(
                copied >= good,
                "{size} B: {copied} one-copy frames for {good} received"
            );
        }
        eprintln!("{size} B: {good} good, {copied} in one copy");
    }
}

/// The receiver stops reading for 20 ms in every 40: the switch meets a full
/// ring half the time. Every frame arrives intact or is a counted drop, and
/// the sender's buffers all come back (the generator finishes).
#[test]
fn with_the_receiving_ring_full_half_the_time_frames_arrive_intact_or_are_counted() {
    let _g = serial();
    let dir = TempDir::new("one-copy-full");
    let sw = switch(dir.path());
    let n = 60_000u64;
    let s = run(
        &sw,
        1518,
        n,
        &mac(2),
        &["--tx-pps=300000", "--rx-pause=20,20", "--drain-ms=1500"],
    );
    let good = checked(&s, 1, "good");
    assert_eq!(checked(&s, 1, "bad"), 0, "corrupted frames: {s:#}");
    sw.wait_quiet(&["vhost0", "vhost1"]);
    let out = sw.port_stats("vhost1");
    let full = out
        .tx
        .iter()
        .map(|q| q.drops.get("ring_full").copied().unwrap_or(0))
        .sum::<u64>();
    assert!(full > 0, "the ring was never full: {out:?}");
    let sent = sw.port_stats("vhost0").rx_packets;
    assert!(
        good + full >= sent - 64 && good + full <= sent,
        "{sent} frames sent: {good} arrived intact, {full} dropped on a full ring"
    );
    assert!(one_copy(&sw, "vhost1") >= good);
}

/// An unknown destination: the frame is flooded to both other guests, each
/// copy straight from the sender's buffer.
#[test]
fn a_flood_reaches_every_other_guest_each_in_one_copy() {
    let _g = serial();
    let dir = TempDir::new("one-copy-flood");
    let sw = switch(dir.path());
    let n = 20_000u64;
    let s = run(&sw, 1518, n, "02:00:00:00:00:99", &["--tx-pps=100000"]);
    for port in [1, 2] {
        assert_eq!(checked(&s, port, "bad"), 0, "port {port}: {s:#}");
        assert!(
            checked(&s, port, "good") >= n * 99 / 100,
            "port {port}: {s:#}"
        );
    }
    assert!(one_copy(&sw, "vhost1") >= n * 99 / 100);
    assert!(one_copy(&sw, "vhost2") >= n * 99 / 100);
}

/// A guest flips its one transmit buffer between two frames that differ only
/// in the destination (guest B or guest C) and the payload, while it keeps
/// offering that buffer. Each frame goes where its private header copy says,
/// and arrives with that header: B never gets a frame addressed to C, nor C
/// one addressed to B (the payload may be torn, as the guest tore it).
#[test]
fn a_guest_rewriting_its_buffer_never_gets_a_header_delivered_that_the_switch_did_not_decide_on() {
    let _g = serial();
    let dir = TempDir::new("one-copy-rewrite");
    let sw = switch(dir.path());
    let (ma, mb, mc) = (
        [2, 0, 0, 0, 0, 0xa1],
        [2, 0, 0, 0, 0, 0xb1],
        [2, 0, 0, 0, 0, 0xc1],
    );
    let mut a = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    let mut b = Guest::connect(&sw.port_socket("vhost1"), 1 << 20);
    let mut c = Guest::connect(&sw.port_socket("vhost2"), 1 << 20);
    // B and C make themselves known; then they offer receive buffers.
    b.send_frame(0, &broadcast_frame(mb, 60));
    c.send_frame(0, &broadcast_frame(mc, 60));
    assert!(b.wait_used(TXQ, 1) && c.wait_used(TXQ, 1));
    sw.wait_quiet(&["vhost1", "vhost2"]);
    let frame = |dst: [u8; 6], fill: u8| {
        let mut f = broadcast_frame(ma, 1514);
        f[..6].copy_from_slice(&dst);
        f[HEAD..].fill(fill);
        f
    };
    let (to_b, to_c) = (frame(mb, 0xbb), frame(mc, 0xcc));
    let slot = 0u16;
    a.send_frame(slot, &to_b);
    assert!(a.wait_used(TXQ, 1));
    let buf = a.mem.uva() + BUFFERS + NET_HDR as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, to_b, to_c) = (stop.clone(), to_b.clone(), to_c.clone());
        std::thread::spawn(move || {
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let f = if k.is_multiple_of(2) { &to_c } else { &to_b };
                // SAFETY: the buffer lies in guest memory this test mapped,
                // which lives until after the join below.
                unsafe { std::ptr::copy_nonoverlapping(f.as_ptr(), buf as *mut u8, f.len()) };
                k += 1;
            }
            k
        })
    };
    let rounds = 300u16;
    let per_round = 32u16;
    let (mut at_b, mut at_c, mut torn) = (0u64, 0u64, 0u64);
    let (mut seen_b, mut seen_c) = (0u16, 0u16);
    for _ in 0..rounds {
        b.post_rx(per_round);
        c.post_rx(per_round);
        let want = a.avail_idx(TXQ).wrapping_add(per_round);
        for _ in 0..per_round {
            a.push_avail(TXQ, slot);
        }
        // A's chains come back only after their frames were written out.
        assert!(a.wait_used(TXQ, want), "the sender's chains come back");
        for (g, seen, own, other, count) in [
            (&b, &mut seen_b, mb, mc, &mut at_b),
            (&c, &mut seen_c, mc, mb, &mut at_c),
        ] {
            let upto = g.used_idx(RXQ);
            while *seen != upto {
                let f = g.received(*seen);
                *seen = seen.wrapping_add(1);
                assert_eq!(f.len(), 1514);
                assert_eq!(
                    f[..6],
                    own,
                    "a frame for {other:x?} was delivered to {own:x?}"
                );
                assert_eq!(f[6..HEAD], to_b[6..HEAD], "headers as decided");
                let payload_ok =
                    f[HEAD..].iter().all(|&x| x == 0xbb) || f[HEAD..].iter().all(|&x| x == 0xcc);
                torn += (!payload_ok) as u64;
                *count += 1;
            }
        }
        // Unused receive buffers are offered again next round (same slots).
        b.set_avail_idx(RXQ, b.used_idx(RXQ));
        c.set_avail_idx(RXQ, c.used_idx(RXQ));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(flipper.join().unwrap() > 0);
    eprintln!("{at_b} frames to B, {at_c} to C, {torn} with a payload the guest tore");
    assert!(
        at_b > 0 && at_c > 0,
        "both destinations seen: {at_b} / {at_c}"
    );
    assert!(one_copy(&sw, "vhost1") + one_copy(&sw, "vhost2") >= at_b + at_c);
}
