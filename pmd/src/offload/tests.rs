use super::*;
use crate::mbuf::Pool;

const ALL: OffloadCaps = OffloadCaps {
    csum: true,
    tso4: true,
    tso6: true,
};

/// virtio-net header bytes 0..10.
fn vhdr(flags: u8, gso: u8, gso_size: u16, start: u16, offset: u16) -> [u8; 10] {
    let mut h = [0u8; 10];
    h[0] = flags;
    h[1] = gso;
    h[4..6].copy_from_slice(&gso_size.to_le_bytes());
    h[6..8].copy_from_slice(&start.to_le_bytes());
    h[8..10].copy_from_slice(&offset.to_le_bytes());
    h
}

fn sum(parts: &[&[u8]]) -> u16 {
    let mut c = Csum::default();
    for p in parts {
        c.add(p);
    }
    c.fold()
}

/// An Ethernet/IPv4 (or IPv6)/TCP frame as a guest hands it over with
/// CHECKSUM_PARTIAL: the TCP checksum field holds the pseudo-header sum.
/// `vlan`: one 802.1Q tag. The payload counts up from `seed`.
fn tcp_frame(v6: bool, vlan: bool, payload: usize, seed: u8) -> (Vec<u8>, usize) {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
    }
    let l3 = f.len() + 2;
    let tcp_len = 32 + payload; // 12 bytes of options
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let c = !sum(&[&f[l3..l3 + 20]]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let l4 = f.len();
    // Ports, seq 1000, ack, data offset 8 (32 bytes), flags PSH|ACK|FIN|CWR.
    f.extend_from_slice(&[
        0x30, 0x39, 0x00, 0x50, 0, 0, 0x03, 0xe8, 0, 0, 0, 1, 0x80, 0x89,
    ]);
    f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    f.extend((0..payload).map(|i| (i as u8).wrapping_add(seed)));
    let pseudo = pseudo_sum(&f, l3, v6, tcp_len);
    f[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
    (f, l4)
}

fn pseudo_sum(f: &[u8], l3: usize, v6: bool, tcp_len: usize) -> u16 {
    if v6 {
        sum(&[
            &f[l3 + 8..l3 + 40],
            &(tcp_len as u32).to_be_bytes(),
            &[0, 0, 0, 6],
        ])
    } else {
        sum(&[
            &f[l3 + 12..l3 + 20],
            &[0, 6],
            &(tcp_len as u16).to_be_bytes(),
        ])
    }
}

/// Whether a finished frame's IPv4 header and TCP checksums verify.
fn checksums_ok(f: &[u8]) -> bool {
    let t = TcpFrame::parse(f).unwrap();
    let tcp_len = f.len() - t.l4;
    let ip_ok = t.v6 || sum(&[&f[t.l3..t.l4]]) == 0xffff;
    let p = pseudo_sum(f, t.l3, t.v6, tcp_len);
    ip_ok && sum(&[&p.to_be_bytes(), &f[t.l4..]]) == 0xffff
}

fn mbuf(c: &mut PoolCache, f: &[u8], o: Offload) -> Mbuf {
    let mut m = c.alloc().unwrap();
    m.fill(f);
    m.set_offload(o);
    m
}

#[test]
fn headers_asking_for_what_was_not_negotiated_are_refused() {
    let csum = vhdr(NET_HDR_F_NEEDS_CSUM, 0, 0, 34, 16);
    let none = OffloadCaps::default();
    assert_eq!(Offload::from_virtio(&csum, none), Err(BadOffload));
    assert!(Offload::from_virtio(&csum, ALL).unwrap().needs_csum);
    let tso4 = vhdr(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 1448, 34, 16);
    let csum_only = OffloadCaps { csum: true, ..none };
    assert_eq!(Offload::from_virtio(&tso4, csum_only), Err(BadOffload));
    assert_eq!(Offload::from_virtio(&tso4, ALL).unwrap().gso, Gso::Tcp4);
    for bad in [
        vhdr(0, NET_HDR_GSO_TCPV4, 1448, 0, 0), // GSO without a checksum
        vhdr(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 0, 34, 16), // segments of 0 bytes
        vhdr(NET_HDR_F_NEEDS_CSUM, NET_HDR_GSO_TCPV4, 87, 34, 16), // below TCP's minimum MSS
        vhdr(NET_HDR_F_NEEDS_CSUM, 3, 1448, 34, 6), // UDP (not offered)
        vhdr(NET_HDR_F_NEEDS_CSUM, 0x81, 1448, 34, 16), // ECN (not offered)
    ] {
        assert_eq!(Offload::from_virtio(&bad, ALL), Err(BadOffload), "{bad:?}");
    }
    // Only the checksum offload is off: a plain header still passes.
    assert_eq!(Offload::from_virtio(&[0; 10], none), Ok(Offload::default()));
}

/// CVE-2024-11614: csum_start beyond the frame (0xffff), or an offset that
/// puts the field past its end, never fits.
#[test]
fn checksum_offsets_outside_the_frame_do_not_fit() {
    let at = |start, offset| {
        Offload::from_virtio(&vhdr(NET_HDR_F_NEEDS_CSUM, 0, 0, start, offset), ALL).unwrap()
    };
    assert!(at(34, 16).fits(100));
    assert!(!at(0xffff, 16).fits(100));
    assert!(!at(34, 0xffff).fits(100));
    assert!(!at(90, 16).fits(100), "field past the end");
    assert!(at(82, 16).fits(100), "field ends at the last byte");
    assert!(!at(4, 16).fits(100), "inside the Ethernet header");
}

#[test]
fn a_checksum_left_partial_is_completed() {
    let mut c = PoolCache::new(Pool::new(64, false).unwrap());
    for (v6, vlan) in [(false, false), (true, false), (false, true)] {
        let (f, l4) = tcp_frame(v6, vlan, 1001, 7);
        assert!(!checksums_ok(&f));
        let o = Offload {
            needs_csum: true,
            csum_start: l4 as u16,
            csum_offset: 16,
            ..Offload::default()
        };
        let mut m = mbuf(&mut c, &f, o);
        assert!(complete_csum(&mut m));
        assert!(checksums_ok(m.data()), "v6 {v6} vlan {vlan}");
        assert!(m.offload().is_none());
        c.free(m);
    }
}

#[test]
fn a_large_segment_is_split_into_valid_frames_in_order() {
    let mut c = PoolCache::new(Pool::with_data_room(256, 16 * 1024, false).unwrap());
    for (v6, vlan) in [(false, false), (true, false), (false, true)] {
        let payload = 14_000;
        let (f, l4) = tcp_frame(v6, vlan, payload, 3);
        let mss = 1448;
        let o = Offload {
            needs_csum: true,
            gso: if v6 { Gso::Tcp6 } else { Gso::Tcp4 },
            csum_start: l4 as u16,
            csum_offset: 16,
            gso_size: mss as u16,
        };
        let m = mbuf(&mut c, &f, o);
        let mut segs = Vec::new();
        let mut next = 0;
        loop {
            let mut b = Batch::new();
            let (upto, total) = segment(&m, next, &mut c, &mut b).unwrap();
            assert_eq!(total, payload.div_ceil(mss));
            segs.extend(b.drain().map(|s| s.data().to_vec()));
            for s in b.drain() {
                c.free(s);
            }
            if upto == total {
                break;
            }
            next = upto;
        }
        c.free(m);
        let hdrs = l4 + 32;
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(s.len() <= hdrs + mss);
            assert!(
                checksums_ok(s),
                "segment {i}: checksums (v6 {v6} vlan {vlan})"
            );
            let seq = u32::from_be_bytes(s[l4 + 4..l4 + 8].try_into().unwrap());
            assert_eq!(seq, 1000 + (i * mss) as u32);
            let flags = s[l4 + 13];
            let last = i + 1 == segs.len();
            assert_eq!(flags & 0x09 != 0, last, "FIN/PSH only on the last");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR only on the first");
            if !v6 {
                let l3 = l4 - 20;
                let id = u16::from_be_bytes([s[l3 + 4], s[l3 + 5]]);
                assert_eq!(id, 0x1234 + i as u16);
            }
            assert_eq!(
                s[..l4 - if v6 { 40 } else { 20 }],
                f[..l4 - if v6 { 40 } else { 20 }]
            );
            joined.extend_from_slice(&s[hdrs..]);
        }
        assert_eq!(joined, f[hdrs..], "the payload, in order");
    }
}

#[test]
fn a_large_segment_without_tcp_headers_is_not_split() {
    let mut c = PoolCache::new(Pool::new(64, false).unwrap());
    let (mut f, l4) = tcp_frame(false, false, 3000, 1);
    f[l4 - 11] = 17; // IPv4 protocol: UDP
    let o = Offload {
        needs_csum: true,
        gso: Gso::Tcp4,
        csum_start: l4 as u16,
        csum_offset: 16,
        gso_size: 1000,
    };
    let m = mbuf(&mut c, &f[..2000], o);
    assert_eq!(segment(&m, 0, &mut c, &mut Batch::new()), None);
    c.free(m);
}

#[test]
fn a_sum_fed_in_odd_pieces_equals_the_sum_at_once() {
    let data: Vec<u8> = (0..999u32).map(|i| (i * 7) as u8).collect();
    let whole = sum(&[&data]);
    for cut in [1, 2, 3, 500, 997] {
        assert_eq!(sum(&[&data[..cut], &data[cut..]]), whole, "cut at {cut}");
    }
    assert_eq!(
        sum(&[&data[..1], &data[1..2], &data[2..5], &data[5..]]),
        whole
    );
}

/// A UDP checksum that sums to 0 goes out as 0xffff (0 means "none").
#[test]
fn a_udp_checksum_of_zero_is_sent_as_all_ones() {
    let mut c = PoolCache::new(Pool::new(64, false).unwrap());
    let mut f = vec![0u8; 14 + 20 + 8 + 2];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    let udp = 34;
    // Two payload bytes that make the sum over the UDP part 0xffff, so the
    // complement would be 0.
    let s = sum(&[&f[udp..]]);
    f[udp + 8..udp + 10].copy_from_slice(&(!s).to_be_bytes());
    assert_eq!(sum(&[&f[udp..]]), 0xffff);
    let o = Offload {
        needs_csum: true,
        csum_start: udp as u16,
        csum_offset: 6,
        ..Offload::default()
    };
    let mut m = mbuf(&mut c, &f, o);
    assert!(complete_csum(&mut m));
    assert_eq!(m.data()[udp + 6..udp + 8], [0xff, 0xff]);
    c.free(m);
}
