//! DPDK's vhost-user CVEs replayed against ferrovsd's vhost-user port by a
//! frontend of our own (raw messages, `vhost_frontend`), plus a frontend that
//! truncates guest memory. Each case ends with the daemon alive, two other
//! ports forwarding checked frames, and the bad input refused or counted.
//! Facts about each CVE: ../shared/notes/next-research.md.

use ferrovs_tests::vhost_frontend::*;
use ferrovs_tests::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const SRC: [u8; 6] = [2, 0, 0, 0, 0, 0xa1];

/// Three ports: vhost0 for the attacker, vhost1 and vhost2 for witnesses.
fn switch(dir: &std::path::Path) -> Ferrovsd {
    Ferrovsd::start(dir, Some(&config_with_ports(3)))
}

/// The attacker's port has not hurt anyone: 2000 checked frames go from
/// vhost1 to vhost2 through the same PMD.
fn witnesses_forward(sw: &Ferrovsd) {
    let n = 2000u64;
    let s = checked_frames(sw, "vhost1", "vhost2", n);
    assert_eq!(s["ports"][1]["rx_packets"], n, "witness lost frames: {s:#}");
    assert_eq!(s["ports"][1]["checked"]["bad"], 0, "{s:#}");
}

/// Frames and drops (by reason) ferrovsd counted on the attacker's port.
fn attacker_rx(sw: &Ferrovsd) -> (u64, u64, Vec<(String, u64)>) {
    let p = sw.port("vhost0");
    (p.rx, p.rx_dropped, p.rx_drops)
}

/// ferrovsd's open fds once they stop moving down to `want` (threads may hold
/// a transient one for a moment); a leak stays above it.
fn fds_settled(pid: u32, want: usize) -> usize {
    let t0 = Instant::now();
    loop {
        let n = open_fds(pid);
        if n <= want || t0.elapsed() > Duration::from_secs(3) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn drop_count(drops: &[(String, u64)], reason: &str) -> u64 {
    drops.iter().filter(|d| d.0 == reason).map(|d| d.1).sum()
}

/// Waits until the attacker port's rx + rx_dropped reach `n`.
fn wait_accounted(sw: &Ferrovsd, n: u64) -> (u64, u64, Vec<(String, u64)>) {
    let t0 = Instant::now();
    loop {
        let r = attacker_rx(sw);
        if r.0 + r.1 >= n || t0.elapsed() > Duration::from_secs(10) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn cve_2018_1059_buffers_and_indirect_tables_straddling_a_region_end_or_gap_are_dropped() {
    let _g = serial();
    let dir = TempDir::new("cve-2018-1059");
    let sw = switch(dir.path());
    // Region A: [0, 1 MiB); a 64 KiB gap; region B: [1 MiB + 64 KiB, 1 MiB + 128 KiB).
    let a_end = 1u64 << 20;
    let b = GuestMemory::new(64 << 10, a_end + (64 << 10), true);
    let b_end = b.gpa + b.len as u64;
    let mut g = Guest::with_memory(
        &sw.port_socket("vhost0"),
        GuestMemory::new(1 << 20, 0, true),
        vec![b],
    );

    let bad: [(u64, u32, u16); 5] = [
        (a_end - 100, 200, 0),             // buffer across A's end into the gap
        (a_end + 100, 100, 0),             // buffer inside the gap
        (a_end + (64 << 10) - 50, 100, 0), // buffer across the gap into B
        (b_end - 10, 100, 0),              // buffer across B's end
        (a_end - 16, 64, DESC_F_INDIRECT), // indirect table across A's end
    ];
    for (i, (addr, len, flags)) in bad.iter().enumerate() {
        g.write_desc(TXQ, i as u16, *addr, *len, *flags, 0);
        g.push_avail(TXQ, i as u16);
    }
    // A good frame after them still goes through.
    g.send_frame(10, &broadcast_frame(SRC, 60));
    let offered = g.avail_idx(TXQ);
    assert!(
        g.wait_used(TXQ, offered),
        "every chain is returned, good or bad"
    );
    let (rx, dropped, drops) = wait_accounted(&sw, 6);
    assert_eq!(rx, 1, "{drops:?}");
    assert_eq!(dropped, 5, "{drops:?}");
    assert_eq!(drop_count(&drops, "invalid_desc_addr"), 5, "{drops:?}");
    witnesses_forward(&sw);
}

#[test]
fn cve_2019_14818_repeated_setup_and_stray_fds_leak_nothing() {
    let _g = serial();
    let dir = TempDir::new("cve-2019-14818");
    let sw = switch(dir.path());
    let pid = sw.pid();
    let fds0 = open_fds(pid);
    let rss0 = rss_kib(pid);
    {
        let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
        let (table, fds) = g.mem_table();
        for _ in 0..10_000 {
            g.fe.send(req::SET_VRING_NUM, &state(TXQ, 256), &[])
                .unwrap();
            g.fe.send(req::SET_MEM_TABLE, &table, &fds).unwrap();
        }
        // Still answering, and the ring still works.
        assert!(g.fe.get_u64(req::GET_FEATURES).unwrap() & F_VERSION_1 != 0);
        g.send_frame(0, &broadcast_frame(SRC, 60));
        assert!(g.wait_used(TXQ, 1));
    }
    // Extra fds on every message type; a refused message may end the
    // connection: start a new one then.
    let extra = [eventfd(), eventfd(), eventfd()];
    let extra_fds: Vec<i32> = extra.iter().map(|f| f.as_raw_fd()).collect();
    let payloads: [(u32, Vec<u8>); 9] = [
        (req::GET_FEATURES, vec![]),
        (req::SET_FEATURES, F_VERSION_1.to_le_bytes().to_vec()),
        (req::SET_OWNER, vec![]),
        (req::SET_VRING_NUM, state(TXQ, 256).to_vec()),
        (req::SET_VRING_BASE, state(TXQ, 0).to_vec()),
        (req::GET_VRING_BASE, state(TXQ, 0).to_vec()),
        (req::SET_VRING_KICK, 1u64.to_le_bytes().to_vec()),
        (req::SET_VRING_CALL, 1u64.to_le_bytes().to_vec()),
        (req::GET_PROTOCOL_FEATURES, vec![]),
    ];
    let mut fe = RawFrontend::connect(&sw.port_socket("vhost0"));
    let mut reconnects = 0;
    for round in 0..200 {
        for (code, body) in &payloads {
            if fe.send(*code, body, &extra_fds).is_err() || fe.closed_by_peer() {
                fe = RawFrontend::connect(&sw.port_socket("vhost0"));
                reconnects += 1;
            }
        }
        if round % 50 == 0 {
            assert!(sw.ctl_try(&["show"]).is_ok());
        }
    }
    eprintln!("{reconnects} connections ended by refused messages");
    drop(fe);
    // Back to the shape we started from: no connection on vhost0.
    let t0 = Instant::now();
    while sw.ctl(&["show"]).contains("vhost0")
        && open_fds(pid) > fds0
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (fds1, rss1) = (fds_settled(pid, fds0), rss_kib(pid));
    eprintln!("open fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB");
    assert!(fds1 <= fds0, "file descriptors leaked: {fds0} -> {fds1}");
    assert!(
        rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} to {rss1} KiB"
    );
    witnesses_forward(&sw);
}

#[test]
fn cve_2020_10722_log_base_with_overflowing_size_and_offset_is_refused() {
    let _g = serial();
    let dir = TempDir::new("cve-2020-10722");
    let sw = switch(dir.path());
    let pid = sw.pid();
    let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    let fds0 = open_fds(pid);
    let log = GuestMemory::new(4096, 0, true);
    let mut body = Vec::new();
    body.extend_from_slice(&u64::MAX.to_le_bytes()); // mmap_size
    body.extend_from_slice(&(u64::MAX - 4095).to_le_bytes()); // mmap_offset
    for _ in 0..100 {
        g.fe.send(req::SET_LOG_BASE, &body, &[log.fd.as_raw_fd()])
            .unwrap();
    }
    // Logging is not offered: refused, fds closed, connection intact.
    assert!(g.fe.get_u64(req::GET_FEATURES).unwrap() & F_VERSION_1 != 0);
    assert!(fds_settled(pid, fds0) <= fds0, "log fds kept");
    g.send_frame(0, &broadcast_frame(SRC, 60));
    assert!(g.wait_used(TXQ, 1));
    // SET_LOG_FD is not a message we know: the connection ends, its fds with it.
    g.fe.send(req::SET_LOG_FD, &[], &[log.fd.as_raw_fd()])
        .unwrap();
    assert!(g.fe.wait_closed(Duration::from_secs(5)));
    drop(g);
    let t0 = Instant::now();
    while open_fds(pid) >= fds0 && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(open_fds(pid) < fds0, "the connection's fds are closed");
    witnesses_forward(&sw);
}

#[test]
fn cve_2020_10723_vring_index_beyond_16_bits_is_not_truncated() {
    let _g = serial();
    let dir = TempDir::new("cve-2020-10723");
    let sw = switch(dir.path());
    let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    // Each would hit queue 1 if the index were cut to 16 bits (or to 8).
    for index in [0x1_0001u32, 0x101, 0xffff_0001] {
        g.fe.send(req::SET_VRING_NUM, &state(index, 16), &[])
            .unwrap();
        g.fe.send(req::SET_VRING_BASE, &state(index, 77), &[])
            .unwrap();
        g.fe.send(req::GET_VRING_BASE, &state(index, 0), &[])
            .unwrap();
        let mut addr = [0u8; 40];
        addr[..4].copy_from_slice(&index.to_le_bytes());
        g.fe.send(req::SET_VRING_ADDR, &addr, &[]).unwrap();
    }
    assert!(g.fe.get_u64(req::GET_FEATURES).unwrap() & F_VERSION_1 != 0);
    // Queue 1 is as set up: 256 entries, base 0, running. Head 200 would be
    // out of range for a 16-entry ring.
    g.send_frame(200, &broadcast_frame(SRC, 60));
    assert!(g.wait_used(TXQ, 1), "queue 1 was stopped or moved");
    let (rx, dropped, drops) = wait_accounted(&sw, 1);
    assert_eq!((rx, dropped), (1, 0), "{drops:?}");
    witnesses_forward(&sw);
}

#[test]
fn cve_2020_10725_zero_length_descriptor_at_an_unmapped_address_is_dropped() {
    let _g = serial();
    let dir = TempDir::new("cve-2020-10725");
    let sw = switch(dir.path());
    let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    // Alone, and at the end of a chain whose header is fine.
    g.write_desc(TXQ, 0, 0xdead_0000_0000, 0, 0, 0);
    g.push_avail(TXQ, 0);
    g.mem.write(BUFFERS, &[0u8; NET_HDR]);
    g.write_desc(TXQ, 1, BUFFERS, NET_HDR as u32, DESC_F_NEXT, 2);
    g.write_desc(TXQ, 2, 0xdead_0000_0000, 0, 0, 0);
    g.push_avail(TXQ, 1);
    // Inside an indirect table.
    let t = BUFFERS + 0x8000;
    let mut entry = [0u8; 16];
    entry[..8].copy_from_slice(&0xdead_0000_0000u64.to_le_bytes());
    g.mem.write(t, &entry);
    g.write_desc(TXQ, 3, t, 16, DESC_F_INDIRECT, 0);
    g.push_avail(TXQ, 3);
    g.send_frame(10, &broadcast_frame(SRC, 60));
    assert!(g.wait_used(TXQ, 4));
    let (rx, dropped, drops) = wait_accounted(&sw, 4);
    assert_eq!((rx, dropped), (1, 3), "{drops:?}");
    assert_eq!(drop_count(&drops, "invalid_desc_len"), 3, "{drops:?}");
    witnesses_forward(&sw);
}

#[test]
fn cve_2020_10726_cve_2021_3839_cve_2022_0669_inflight_messages_are_refused_and_fds_closed() {
    let _g = serial();
    let dir = TempDir::new("cve-inflight");
    let sw = switch(dir.path());
    let pid = sw.pid();
    let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    let fds0 = open_fds(pid);
    let inflight = GuestMemory::new(4096, 0, true);
    // mmap_size, mmap_offset, num_queues, queue_size: sizes that overflowed DPDK's checks.
    let mut body = Vec::new();
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    body.extend_from_slice(&(u64::MAX - 100).to_le_bytes());
    body.extend_from_slice(&0xffffu16.to_le_bytes());
    body.extend_from_slice(&0xffffu16.to_le_bytes());
    body.extend_from_slice(&[0; 4]);
    for _ in 0..100 {
        g.fe.send(req::GET_INFLIGHT_FD, &body, &[]).unwrap();
        g.fe.send(req::SET_INFLIGHT_FD, &body, &[inflight.fd.as_raw_fd()])
            .unwrap();
    }
    assert!(g.fe.get_u64(req::GET_FEATURES).unwrap() & F_VERSION_1 != 0);
    assert!(fds_settled(pid, fds0) <= fds0, "inflight fds kept");
    g.send_frame(0, &broadcast_frame(SRC, 60));
    assert!(g.wait_used(TXQ, 1));
    witnesses_forward(&sw);
}

#[test]
fn cve_2022_2132_chains_shorter_than_the_header_or_with_a_split_header() {
    let _g = serial();
    let dir = TempDir::new("cve-2022-2132");
    let sw = switch(dir.path());
    let mut rx = Guest::connect(&sw.port_socket("vhost1"), 1 << 20);
    rx.post_rx(16);
    let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    // 8 bytes in all: less than the 12-byte header, no frame.
    g.write_desc(TXQ, 0, BUFFERS, 4, DESC_F_NEXT, 1);
    g.write_desc(TXQ, 1, BUFFERS + 4, 4, 0, 0);
    g.push_avail(TXQ, 0);
    // Header over three descriptors (4 + 4 + 4), then the frame: legal virtio.
    let frame = broadcast_frame(SRC, 80);
    let base = BUFFERS + 0x2000;
    g.mem.write(base, &[0u8; NET_HDR]);
    g.mem.write(base + 0x100, &frame);
    g.write_desc(TXQ, 2, base, 4, DESC_F_NEXT, 3);
    g.write_desc(TXQ, 3, base + 4, 4, DESC_F_NEXT, 4);
    g.write_desc(TXQ, 4, base + 8, 4, DESC_F_NEXT, 5);
    g.write_desc(TXQ, 5, base + 0x100, frame.len() as u32, 0, 0);
    g.push_avail(TXQ, 2);
    // Header split 5 + 7 with the frame starting in the second descriptor.
    let mut hdr_and_frame = vec![0u8; NET_HDR];
    hdr_and_frame.extend_from_slice(&frame);
    let base2 = BUFFERS + 0x3000;
    g.mem.write(base2, &hdr_and_frame[..5]);
    g.mem.write(base2 + 0x100, &hdr_and_frame[5..]);
    g.write_desc(TXQ, 6, base2, 5, DESC_F_NEXT, 7);
    g.write_desc(
        TXQ,
        7,
        base2 + 0x100,
        (hdr_and_frame.len() - 5) as u32,
        0,
        0,
    );
    g.push_avail(TXQ, 6);
    assert!(g.wait_used(TXQ, 3));
    let (rxn, dropped, drops) = wait_accounted(&sw, 3);
    assert_eq!((rxn, dropped), (2, 1), "{drops:?}");
    assert_eq!(drop_count(&drops, "invalid_desc_len"), 1, "{drops:?}");
    assert!(rx.wait_used(RXQ, 2), "both split-header frames delivered");
    assert_eq!(rx.received(0), frame);
    assert_eq!(rx.received(1), frame);
    drop(rx);
    witnesses_forward(&sw);
}

#[test]
fn cve_2020_14376_cve_2020_14377_descriptors_rewritten_during_the_walk_cannot_escape() {
    let _g = serial();
    let dir = TempDir::new("cve-toctou");
    let sw = switch(dir.path());
    let mut g = Guest::connect(&sw.port_socket("vhost0"), 1 << 20);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (d, _, _) = ring_gpa(TXQ);
    // The "guest thread": rewrites addr/len/flags/next of descriptors 0..8
    // with good and hostile values while the switch walks them.
    let table = g.mem.uva() + d;
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let hostile: [(u64, u32, u16, u16); 5] = [
                (BUFFERS, 72, 0, 0),
                (BUFFERS, u32::MAX, 0, 0),
                (0xdead_0000_0000, 64, 0, 0),
                (BUFFERS, 72, DESC_F_NEXT, 0),
                (BUFFERS, 72, DESC_F_NEXT | DESC_F_INDIRECT, 1),
            ];
            let mut k = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (addr, len, flags, next) = hostile[k % hostile.len()];
                let i = (k / hostile.len()) % 8;
                // SAFETY: descriptor i of the TX table lies in the guest memory
                // this test mapped (it lives until after the join below).
                unsafe {
                    let p = (table as *mut u8).add(16 * i);
                    std::ptr::write_volatile(p.cast::<u64>(), addr);
                    std::ptr::write_volatile(p.add(8).cast::<u32>(), len);
                    std::ptr::write_volatile(p.add(12).cast::<u16>(), flags);
                    std::ptr::write_volatile(p.add(14).cast::<u16>(), next);
                }
                k += 1;
            }
        })
    };
    g.mem.write(BUFFERS, &{
        let mut b = vec![0u8; NET_HDR];
        b.extend_from_slice(&broadcast_frame(SRC, 60));
        b
    });
    let offered = 20_000u16;
    for n in 0..offered {
        g.push_avail(TXQ, n % 8);
        // Keep at most 8 chains outstanding so heads are not reused early.
        while g.avail_idx(TXQ).wrapping_sub(g.used_idx(TXQ)) >= 8 {
            std::hint::spin_loop();
        }
    }
    assert!(g.wait_used(TXQ, offered), "every offered chain came back");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    let (rx, dropped, drops) = wait_accounted(&sw, offered as u64);
    eprintln!("{rx} frames, {dropped} dropped: {drops:?}");
    assert_eq!(
        rx + dropped,
        offered as u64,
        "every chain is a frame or a counted drop: {drops:?}"
    );
    witnesses_forward(&sw);
}

#[test]
fn a_frontend_truncating_unsealable_guest_memory_is_dropped_and_the_switch_lives() {
    let _g = serial();
    let dir = TempDir::new("truncate");
    let sw = switch(dir.path());
    let mut g = Guest::with_memory(
        &sw.port_socket("vhost0"),
        GuestMemory::new(1 << 20, 0, false),
        Vec::new(),
    );
    g.send_frame(0, &broadcast_frame(SRC, 60));
    assert!(g.wait_used(TXQ, 1));
    // SAFETY: truncating our own memfd, as a hostile frontend would.
    assert_eq!(unsafe { libc::ftruncate(g.mem.fd.as_raw_fd(), 0) }, 0);
    assert!(
        g.fe.wait_closed(Duration::from_secs(10)),
        "the connection is dropped"
    );
    let show = sw.ctl(&["show"]);
    assert!(show.contains("truncated"), "{show}");
    witnesses_forward(&sw);
}

/// CVE-2024-11614: a guest that negotiated checksum offload asks for a
/// checksum whose start lies beyond the frame (0xffff), whose field would
/// end past it, or that starts inside the Ethernet header; then it moves
/// csum_start back and forth while the switch reads the header. Each bad
/// header is a counted `invalid_offload` drop; good ones are finished in
/// software for the witnesses (who negotiated no offloads).
#[test]
fn cve_2024_11614_checksum_offsets_beyond_the_frame_are_dropped() {
    let _g = serial();
    let dir = TempDir::new("cve-csum-start");
    let sw = switch(dir.path());
    const F_CSUM: u64 = 1;
    let mut g = Guest::with_features(
        &sw.port_socket("vhost0"),
        GuestMemory::new(1 << 20, 0, true),
        Vec::new(),
        F_CSUM,
    );
    let header = |start: u16, offset: u16| {
        let mut h = [0u8; NET_HDR];
        h[0] = 1; // NEEDS_CSUM
        h[6..8].copy_from_slice(&start.to_le_bytes());
        h[8..10].copy_from_slice(&offset.to_le_bytes());
        h
    };
    let frame = broadcast_frame(SRC, 60);
    let bad = [(0xffff, 16), (34, 0xffff), (50, 16), (4, 2)];
    for (i, &(start, offset)) in bad.iter().enumerate() {
        g.send_with_header(i as u16, &header(start, offset), &frame);
    }
    g.send_with_header(8, &header(34, 16), &frame);
    let (rx, _, drops) = wait_accounted(&sw, 5);
    assert_eq!(drop_count(&drops, "invalid_offload"), 4, "{drops:?}");
    assert_eq!(rx, 1, "the good header's frame arrives");

    // The header changes while the switch reads it: it reads it once.
    let slot = 9u16;
    g.send_with_header(slot, &header(34, 16), &frame);
    let field = g.mem.uva() + BUFFERS + slot as u64 * 4096 + 6;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut k = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v: u16 = if k.is_multiple_of(2) { 0xffff } else { 34 };
                // SAFETY: the header lies in guest memory this test mapped,
                // which lives until after the join below.
                unsafe { std::ptr::write_volatile(field as *mut u16, v) };
                k = k.wrapping_add(1);
            }
        })
    };
    let offered = 20_000u16;
    let start = g.avail_idx(TXQ);
    for _ in 0..offered {
        g.push_avail(TXQ, slot);
        while g.avail_idx(TXQ).wrapping_sub(g.used_idx(TXQ)) >= 8 {
            std::hint::spin_loop();
        }
    }
    assert!(g.wait_used(TXQ, start.wrapping_add(offered)));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    let (rx, dropped, drops) = wait_accounted(&sw, 6 + offered as u64);
    eprintln!("{rx} frames, {dropped} dropped: {drops:?}");
    assert_eq!(rx + dropped, 6 + offered as u64, "{drops:?}");
    witnesses_forward(&sw);
}
