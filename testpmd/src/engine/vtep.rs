//! vtep: the far end of a switch's VXLAN tunnel, reflecting. On the port
//! that stands for the switch's underlay it plays the remote tunnel endpoint
//! `--vtep-ip` with the port's own MAC:
//!
//! - an ARP request for `--vtep-ip` is answered (an ARP reply from the port's
//!   MAC, out the same port), so the switch can resolve its remote;
//! - a VXLAN frame (untagged IPv4 to `--vtep-ip`, not a fragment, UDP to
//!   port 4789, VXLAN I flag set) goes back out the same port with the outer
//!   MACs and IPv4 addresses swapped, UDP ports and VNI kept, and the inner
//!   Ethernet source and destination swapped: the switch decapsulates it,
//!   learns the inner destination behind the tunnel and delivers the frame
//!   to the VM port that sent it — one encapsulation and one decapsulation
//!   per round trip;
//! - anything else is counted and freed.
//!
//! Every rewrite is in place (no allocation, no copy of the frame), and no
//! checksum needs an update: the outer IPv4 header and the UDP pseudo-header
//! hold the same 16-bit words after the address swap, only in another order,
//! and the inner MACs sit at even offsets of the UDP payload, so swapping
//! them moves whole words too (ones' complement sums do not depend on order).

use super::Engine;
use crate::stream::Stream;
use pmd::port::bump;
use pmd::PoolCache;

/// VXLAN's IANA UDP port.
pub const VXLAN_PORT: u16 = 4789;
const ETH_HDR: usize = 14;
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
/// ARP for IPv4 over Ethernet: htype 1, ptype 0x0800, hlen 6, plen 4.
const ARP_ETH_IPV4: [u8; 6] = [0x00, 0x01, 0x08, 0x00, 6, 4];
const ARP_LEN: usize = 28;
const UDP_HDR: usize = 8;
const VXLAN_HDR: usize = 8;
/// The VXLAN flags bit that says the VNI is valid (RFC 7348).
const VXLAN_FLAG_I: u8 = 0x08;

// Which frames of a burst go back is kept in one word.
const _: () = assert!(pmd::BURST <= 64);

/// What the endpoint did with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten into the ARP reply: send it.
    ArpReply,
    /// Rewritten into the reflected VXLAN frame: send it.
    Reflected,
    /// Not for us: untouched, to be freed.
    Other,
}

/// Swaps the 6 bytes at `a` with the 6 at `b` (`a + 6 <= b`).
#[inline]
fn swap6(f: &mut [u8], a: usize, b: usize) {
    let (x, y) = f.split_at_mut(b);
    x[a..a + 6].swap_with_slice(&mut y[..6]);
}

/// Answers one frame in place as the endpoint `ip` with MAC `mac`; a frame
/// it does not answer is left as it was.
#[inline]
pub fn answer(f: &mut [u8], ip: [u8; 4], mac: [u8; 6]) -> Verdict {
    if f.len() < ETH_HDR + ARP_LEN {
        return Verdict::Other;
    }
    match [f[12], f[13]] {
        ETHERTYPE_ARP => arp_reply(f, ip, mac),
        ETHERTYPE_IPV4 => reflect(f, ip),
        _ => Verdict::Other,
    }
}

/// An ARP request for `ip` becomes its reply (RFC 826): to the asker's
/// Ethernet address, from `mac`; sender and target swapped, the sender
/// hardware address ours.
fn arp_reply(f: &mut [u8], ip: [u8; 4], mac: [u8; 6]) -> Verdict {
    let a = ETH_HDR;
    if f[a..a + 6] != ARP_ETH_IPV4 || f[a + 6..a + 8] != [0, 1] || f[a + 24..a + 28] != ip {
        return Verdict::Other;
    }
    f.copy_within(6..12, 0);
    f[6..12].copy_from_slice(&mac);
    f[a + 7] = 2;
    // Target := the asker (its sender fields), sender := us.
    f.copy_within(a + 8..a + 18, a + 18);
    f[a + 8..a + 14].copy_from_slice(&mac);
    f[a + 14..a + 18].copy_from_slice(&ip);
    Verdict::ArpReply
}

/// A VXLAN frame to `ip` is turned back towards its sender (see the module
/// comment for what changes and why no checksum does).
fn reflect(f: &mut [u8], ip: [u8; 4]) -> Verdict {
    let l3 = ETH_HDR;
    let ihl = usize::from(f[l3] & 0x0f) * 4;
    let l4 = l3 + ihl;
    let inner = l4 + UDP_HDR + VXLAN_HDR;
    if f[l3] >> 4 != 4
        || ihl < 20
        || f.len() < inner + ETH_HDR
        || f[l3 + 9] != 17
        // More fragments, or a fragment offset: no whole UDP datagram here.
        || u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]) & 0x3fff != 0
        || f[l3 + 16..l3 + 20] != ip
        || u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]) != VXLAN_PORT
        || f[l4 + UDP_HDR] & VXLAN_FLAG_I == 0
    {
        return Verdict::Other;
    }
    swap6(f, 0, 6);
    let (src, dst) = f[l3 + 12..l3 + 20].split_at_mut(4);
    src.swap_with_slice(dst);
    swap6(f, inner, inner + 6);
    Verdict::Reflected
}

pub struct Vtep {
    ip: [u8; 4],
}

impl Vtep {
    pub fn new(ip: [u8; 4]) -> Vtep {
        Vtep { ip }
    }
}

impl Engine for Vtep {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let n = s.receive(cache);
        if n == 0 {
            return 0;
        }
        // The stream sends out the port it receives on (checked at start),
        // so its transmit MAC is the port's own.
        let mac = s.tx_mac;
        let (mut back, mut arp, mut reflected) = (0u64, 0u64, 0u64);
        for i in 0..s.batch.len() {
            match answer(s.batch.get_mut(i).data_mut(), self.ip, mac) {
                Verdict::ArpReply => arp += 1,
                Verdict::Reflected => reflected += 1,
                Verdict::Other => continue,
            }
            back |= 1 << i;
        }
        let other = s.batch.len() as u64 - arp - reflected;
        if other > 0 {
            let mut i = 0;
            s.batch.retain(
                |_| {
                    i += 1;
                    back & (1 << (i - 1)) != 0
                },
                |m| cache.free(m),
            );
        }
        bump(&s.counters.vtep_arp_replies, arp);
        bump(&s.counters.vtep_reflected, reflected);
        bump(&s.counters.vtep_other, other);
        if !s.batch.is_empty() {
            s.send(cache);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Ports;
    use crate::stream::Stream;
    use pmd::{Batch, Pool};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    const US: [u8; 6] = [0x02, 0, 0, 0, 0, 0xbb];
    const SWITCH: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
    const VTEP_IP: [u8; 4] = [192, 0, 2, 2];
    const LOCAL_IP: [u8; 4] = [192, 0, 2, 1];
    const VM: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const BEHIND: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    fn sum16(b: &[u8]) -> u32 {
        b.chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum()
    }

    fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// The switch asking who has `tpa` (broadcast, padded to 60 bytes).
    fn arp_request(tpa: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend(SWITCH);
        f.extend([0x08, 0x06]);
        f.extend(ARP_ETH_IPV4);
        f.extend([0, 1]);
        f.extend(SWITCH);
        f.extend(LOCAL_IP);
        f.extend([0; 6]);
        f.extend(tpa);
        f.resize(60, 0);
        f
    }

    /// What the switch sends into the tunnel: an inner frame from VM to
    /// BEHIND, in IPv4 (DF, checksummed) / UDP (checksum 0, or the real one
    /// with `udp_csum`) / VXLAN VNI 42, to `dst_ip`.
    fn vxlan_frame(dst_ip: [u8; 4], inner_len: usize, udp_csum: bool) -> Vec<u8> {
        let mut inner = Vec::from(BEHIND);
        inner.extend(VM);
        inner.extend([0x08, 0x00]);
        inner.extend((0..inner_len - 14).map(|i| i as u8));
        let udp_len = 8 + 8 + inner.len();
        let mut f = Vec::from(US);
        f.extend(SWITCH);
        f.extend([0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0];
        ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        ip.extend(LOCAL_IP);
        ip.extend(dst_ip);
        let c = !fold(sum16(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend(&ip);
        let mut udp = vec![0xc3, 0x50];
        udp.extend(VXLAN_PORT.to_be_bytes());
        udp.extend((udp_len as u16).to_be_bytes());
        udp.extend([0, 0]);
        udp.extend([VXLAN_FLAG_I, 0, 0, 0, 0, 0, 42, 0]);
        udp.extend(&inner);
        if udp_csum {
            let pseudo = sum16(&ip[12..20]) + 17 + udp_len as u32;
            let c = !fold(pseudo + sum16(&udp));
            udp[6..8].copy_from_slice(&c.to_be_bytes());
        }
        f.extend(udp);
        f
    }

    #[test]
    fn an_arp_request_for_us_becomes_our_reply() {
        let mut f = arp_request(VTEP_IP);
        assert_eq!(answer(&mut f, VTEP_IP, US), Verdict::ArpReply);
        let mut want = Vec::from(SWITCH);
        want.extend(US);
        want.extend([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0, 2]);
        want.extend(US);
        want.extend(VTEP_IP);
        want.extend(SWITCH);
        want.extend(LOCAL_IP);
        want.resize(60, 0);
        assert_eq!(f, want);
    }

    #[test]
    fn a_vxlan_frame_is_reflected_with_its_checksums_still_right() {
        for (inner_len, udp_csum) in [(60, false), (1514, false), (61, true), (1514, true)] {
            let orig = vxlan_frame(VTEP_IP, inner_len, udp_csum);
            let mut f = orig.clone();
            assert_eq!(answer(&mut f, VTEP_IP, US), Verdict::Reflected);
            // Outer MACs and IPs swapped, everything else as it was.
            let mut want = orig.clone();
            want[0..6].copy_from_slice(&SWITCH);
            want[6..12].copy_from_slice(&US);
            want[26..30].copy_from_slice(&VTEP_IP);
            want[30..34].copy_from_slice(&LOCAL_IP);
            // Inner destination := the VM, source := the MAC behind the tunnel.
            want[50..56].copy_from_slice(&VM);
            want[56..62].copy_from_slice(&BEHIND);
            assert_eq!(f, want, "inner {inner_len} B");
            // Ports (0xc350 -> 4789), VNI 42 unchanged.
            assert_eq!(f[34..38], [0xc3, 0x50, 0x12, 0xb5]);
            assert_eq!(f[42..50], [8, 0, 0, 0, 0, 0, 42, 0]);
            // The IPv4 header checksum still verifies, unchanged.
            assert_eq!(f[24..26], orig[24..26]);
            assert_eq!(fold(sum16(&f[14..34])), 0xffff);
            if udp_csum {
                let udp_len = f.len() as u32 - 34;
                let pseudo = sum16(&f[26..34]) + 17 + udp_len;
                assert_eq!(fold(pseudo + sum16(&f[34..])), 0xffff);
                assert_eq!(f[40..42], orig[40..42]);
            } else {
                assert_eq!(f[40..42], [0, 0]);
            }
        }
    }

    #[test]
    fn frames_not_for_the_endpoint_are_left_alone() {
        let mut not_ours = vec![
            arp_request(LOCAL_IP), // ARP for someone else
            vxlan_frame(LOCAL_IP, 60, false),
            vxlan_frame(VTEP_IP, 60, false)[..60].to_vec(), // inner Ethernet cut short
        ];
        // An ARP reply to us, not a request.
        let mut reply = arp_request(VTEP_IP);
        reply[21] = 2;
        not_ours.push(reply);
        let v = vxlan_frame(VTEP_IP, 60, false);
        let edit = |at: usize, b: u8| {
            let mut f = v.clone();
            f[at] = b;
            f
        };
        not_ours.extend([
            edit(37, 0xb6), // UDP to 4790
            edit(23, 6),    // TCP
            edit(20, 0x20), // more fragments
            edit(21, 1),    // a fragment offset
            edit(14, 0x65), // IP version 6
            edit(14, 0x44), // IHL below 5
            edit(42, 0),    // VXLAN I flag clear
            edit(12, 0x86), // EtherType 0x8600
        ]);
        let mut tagged = v[..12].to_vec();
        tagged.extend([0x81, 0x00, 0, 7]);
        tagged.extend(&v[12..]);
        not_ours.push(tagged);
        not_ours.push(vec![0; 20]);
        for (k, f) in not_ours.iter_mut().enumerate() {
            let orig = f.clone();
            assert_eq!(answer(f, VTEP_IP, US), Verdict::Other, "frame {k}");
            assert_eq!(*f, orig, "frame {k} changed");
        }
        // Options in the outer header are walked over.
        let mut opts = v[..34].to_vec();
        opts[14] = 0x46;
        opts.extend([1, 1, 1, 0]);
        opts.extend(&v[34..]);
        assert_eq!(answer(&mut opts, VTEP_IP, US), Verdict::Reflected);
        assert_eq!(opts[54..66], [VM, BEHIND].concat());
    }

    /// Through a stream: replies and reflections go back out, the rest is
    /// freed and counted.
    #[test]
    fn the_engine_sends_answers_back_and_frees_the_rest() {
        let pool = Pool::new(64, false).unwrap();
        let ports = Ports::open(&["ring".to_string(), "ring".to_string()], &pool, "").unwrap();
        let mut cache = PoolCache::new(Arc::clone(&pool));
        let frames = [
            vxlan_frame(LOCAL_IP, 60, false),
            arp_request(VTEP_IP),
            vec![0u8; 60],
            vxlan_frame(VTEP_IP, 100, false),
        ];
        let mut b = Batch::new();
        for f in &frames {
            let mut m = cache.alloc().unwrap();
            m.fill(f);
            b.push(m).unwrap();
        }
        ports.list[0].port.tx_burst(0, &mut cache, &mut b);
        // Port 1 receives; its answers go back out of it to port 0.
        let mut s = Stream::looped(1, &ports.list[1].port, US);
        let mut e = Vtep::new(VTEP_IP);
        assert_eq!(e.burst(&mut s, &mut cache), 4);
        let c = &s.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(
            (
                n(&c.vtep_arp_replies),
                n(&c.vtep_reflected),
                n(&c.vtep_other)
            ),
            (1, 1, 2)
        );
        let mut back = Batch::new();
        assert_eq!(ports.list[0].port.rx_burst(0, &mut cache, &mut back), 2);
        assert_eq!(back.get(0).data()[..12], [SWITCH, US].concat());
        assert_eq!(back.get(0).data()[20..22], [0, 2]);
        assert_eq!(back.get(1).data()[26..30], VTEP_IP);
        assert_eq!(back.get(1).data()[50..56], VM);
        cache.free_batch(&mut back);
        // The two frames not answered went back to the pool.
        assert_eq!(pool.stats().in_use, 0);
        assert_eq!(e.burst(&mut s, &mut cache), 0);
        drop(s);
        drop(cache);
        ports.close(&pool);
    }
}
