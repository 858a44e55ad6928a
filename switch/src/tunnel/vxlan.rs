//! VXLAN over IPv4 (RFC 7348) as bytes: the 50-byte outer header a frame
//! leaves with, and the checks a received one passes before its inner
//! frame is switched. Pure functions on byte slices: no state, no packet
//! memory of its own (fuzzed by `fuzz_targets/vxlan_underlay.rs`).

use pmd::offload::Csum;

/// Outer Ethernet (14) + IPv4 without options (20) + UDP (8) + VXLAN (8).
pub const OUTER_LEN: usize = 50;
pub const ETH_P_IPV4: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
const IPPROTO_UDP: u8 = 17;
/// The VXLAN header's I flag: the VNI is valid (the only flag RFC 7348 has).
const FLAG_VNI: u8 = 0x08;
/// Source ports for ECMP/RSS entropy: Linux's and OVS's default range.
pub const SRC_PORT_MIN: u16 = 32768;
pub const SRC_PORT_MAX: u16 = 61000;
const TTL: u8 = 64;
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// The outer header of one tunnel towards one remote, except what changes
/// per packet (lengths, checksum, source port) and the remote's MAC (ARP
/// may learn a new one at any time).
#[derive(Clone, Copy, Debug)]
pub struct Outer {
    bytes: [u8; OUTER_LEN],
    /// Ones' complement sum of the IPv4 header words that never change.
    ip_sum: u32,
}

impl Outer {
    pub fn new(
        src_mac: [u8; 6],
        src_ip: [u8; 4],
        dst_ip: [u8; 4],
        dst_port: u16,
        vni: u32,
    ) -> Outer {
        let mut b = [0u8; OUTER_LEN];
        b[6..12].copy_from_slice(&src_mac);
        b[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
        let ip = &mut b[14..34];
        ip[0] = 0x45;
        // DF, as OVS sets by default (df_default): an underlay too small is
        // an error to see, not fragments to reassemble.
        ip[6] = 0x40;
        ip[8] = TTL;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&src_ip);
        ip[16..20].copy_from_slice(&dst_ip);
        let mut c = Csum::default();
        c.add(ip);
        let udp = &mut b[34..42];
        udp[2..4].copy_from_slice(&dst_port.to_be_bytes());
        // UDP checksum 0: allowed over IPv4 and what Linux sends by default.
        let vx = &mut b[42..50];
        vx[0] = FLAG_VNI;
        vx[4..7].copy_from_slice(&vni.to_be_bytes()[1..4]);
        Outer {
            bytes: b,
            ip_sum: c.fold() as u32,
        }
    }

    /// Writes the 50 bytes in front of an inner frame of `inner_len` bytes,
    /// sent to `dst_mac` from UDP port `src_port`. `inner_len` must be at
    /// most 65 535 - 36 (the caller's MTU check keeps it far below).
    #[inline]
    pub fn write(&self, out: &mut [u8], dst_mac: [u8; 6], inner_len: usize, src_port: u16) {
        let out = &mut out[..OUTER_LEN];
        out.copy_from_slice(&self.bytes);
        out[0..6].copy_from_slice(&dst_mac);
        let ip_len = (inner_len + OUTER_LEN - 14) as u16;
        out[16..18].copy_from_slice(&ip_len.to_be_bytes());
        let mut s = self.ip_sum + ip_len as u32;
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        out[24..26].copy_from_slice(&(!(s as u16)).to_be_bytes());
        out[34..36].copy_from_slice(&src_port.to_be_bytes());
        out[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    }
}

/// A UDP source port from the inner flow (MACs; past up to two 802.1Q
/// tags, the IPv4 or IPv6 addresses and protocol, and the TCP/UDP ports of
/// an unfragmented IPv4 packet or an IPv6 one without extension headers),
/// so one flow keeps one path and flows spread over ECMP links and the
/// receiver's RSS queues.
#[inline]
pub fn src_port(inner: &[u8]) -> u16 {
    if inner.len() < 14 {
        return SRC_PORT_MIN;
    }
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let mut h = word(&inner[0..8]) ^ word(&inner[6..14]).rotate_left(17);
    let mut l3 = 12;
    while l3 < 20 && inner.len() >= l3 + 6 && inner[l3..l3 + 2] == [0x81, 0x00] {
        l3 += 4;
    }
    let et = inner
        .get(l3..l3 + 2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let ip = &inner[(l3 + 2).min(inner.len())..];
    let mut ports: Option<&[u8]> = None;
    if et == ETH_P_IPV4 && ip.len() >= 20 && ip[0] >> 4 == 4 {
        h ^= word(&ip[12..20]).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ip[9] as u64;
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
        if !fragment && (ip[9] == 6 || ip[9] == 17) {
            ports = ip.get(ihl..ihl + 4);
        }
    } else if et == 0x86dd && ip.len() >= 40 {
        for a in ip[8..40].chunks_exact(8) {
            h = (h ^ word(a)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        h ^= ip[6] as u64;
        if ip[6] == 6 || ip[6] == 17 {
            ports = ip.get(40..44);
        }
    }
    if let Some(p) = ports {
        h ^= (u32::from_le_bytes(p.try_into().expect("4 bytes")) as u64) << 7;
    }
    let h = (h.wrapping_mul(0xff51_afd7_ed55_8ccd) >> 32) as u32;
    let span = (SRC_PORT_MAX - SRC_PORT_MIN + 1) as u64;
    SRC_PORT_MIN + ((h as u64 * span) >> 32) as u16
}

/// A frame that reached the underlay, as the decapsulation stage sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Underlay {
    /// VXLAN for `local_ip`: the inner frame is `[inner_at, inner_at + inner_len)`.
    Vxlan {
        src_ip: [u8; 4],
        dst_port: u16,
        vni: u32,
        inner_at: usize,
        inner_len: usize,
    },
    /// ARP: for the ARP stage.
    Arp,
    /// Addressed to `local_ip` on a tunnel port but not well-formed VXLAN
    /// (lengths, IPv4 checksum, fragments, flags, UDP checksum).
    Malformed,
    /// Anything else: not ours to take.
    Other,
}

/// Classifies an untagged underlay frame. `is_tunnel_port(p)`: some
/// tunnel on this underlay listens on UDP port `p`.
pub fn classify(f: &[u8], local_ip: [u8; 4], is_tunnel_port: impl Fn(u16) -> bool) -> Underlay {
    if f.len() < 14 {
        return Underlay::Other;
    }
    let et = u16::from_be_bytes([f[12], f[13]]);
    if et == ETH_P_ARP {
        return Underlay::Arp;
    }
    if et != ETH_P_IPV4 || f.len() < 14 + 20 {
        return Underlay::Other;
    }
    let ip = &f[14..];
    if ip[16..20] != local_ip || ip[9] != IPPROTO_UDP || ip[0] >> 4 != 4 {
        return Underlay::Other;
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ihl < 20 || ip.len() < ihl + 8 {
        return Underlay::Malformed;
    }
    let dst_port = u16::from_be_bytes([ip[ihl + 2], ip[ihl + 3]]);
    if !is_tunnel_port(dst_port) {
        return Underlay::Other;
    }
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    // Ethernet may pad a short frame: the IPv4 length says where it ends.
    if total > ip.len() || total < ihl + 8 + 8 + 14 {
        return Underlay::Malformed;
    }
    // A fragment cannot be decapsulated (OVS and Linux drop them too).
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return Underlay::Malformed;
    }
    let mut c = Csum::default();
    c.add(&ip[..ihl]);
    if c.fold() != 0xffff {
        return Underlay::Malformed;
    }
    let udp = &ip[ihl..total];
    if u16::from_be_bytes([udp[4], udp[5]]) as usize != udp.len() {
        return Underlay::Malformed;
    }
    if udp[6..8] != [0, 0] && !udp_checksum_ok(&ip[12..20], udp) {
        return Underlay::Malformed;
    }
    let vx = &udp[8..16];
    // The I flag and nothing else; reserved bits zero (as Linux checks).
    if vx[0] != FLAG_VNI || vx[1..4] != [0, 0, 0] || vx[7] != 0 {
        return Underlay::Malformed;
    }
    Underlay::Vxlan {
        src_ip: ip[12..16].try_into().expect("4 bytes"),
        dst_port,
        vni: u32::from_be_bytes([0, vx[4], vx[5], vx[6]]),
        inner_at: 14 + ihl + 16,
        inner_len: total - ihl - 16,
    }
}

/// Checks a UDP checksum over IPv4 (`addrs`: source and destination).
fn udp_checksum_ok(addrs: &[u8], udp: &[u8]) -> bool {
    let mut c = Csum::default();
    c.add(addrs);
    c.add_u16(IPPROTO_UDP as u16);
    c.add_u16(udp.len() as u16);
    c.add(udp);
    c.fold() == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: [u8; 4] = [10, 0, 0, 1];
    const REMOTE: [u8; 4] = [10, 0, 0, 2];

    fn inner() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xb]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xa]);
        f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[23] = 17;
        f
    }

    /// A VXLAN frame from REMOTE to LOCAL, as a remote VTEP would send it.
    pub(crate) fn encapsulated(vni: u32, inner: &[u8]) -> Vec<u8> {
        let o = Outer::new([2, 0, 0, 0, 0, 2], REMOTE, LOCAL, 4789, vni);
        let mut h = [0u8; OUTER_LEN];
        o.write(&mut h, [2, 0, 0, 0, 0, 1], inner.len(), src_port(inner));
        [&h[..], inner].concat()
    }

    fn classify_ours(f: &[u8]) -> Underlay {
        classify(f, LOCAL, |p| p == 4789)
    }

    #[test]
    fn outer_header_is_what_linux_sends() {
        let f = encapsulated(42, &inner());
        assert_eq!(f.len(), 110);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[12..14], &[8, 0]);
        let ip = &f[14..34];
        assert_eq!(ip[0], 0x45);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 96, "IPv4 total length");
        assert_eq!(ip[6] & 0x40, 0x40, "DF");
        assert_eq!((ip[8], ip[9]), (64, 17));
        let mut c = Csum::default();
        c.add(ip);
        assert_eq!(c.fold(), 0xffff, "IPv4 header checksum");
        let udp = &f[34..42];
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        assert!((SRC_PORT_MIN..=SRC_PORT_MAX).contains(&sport));
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 4789);
        assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 76, "UDP length");
        assert_eq!(&udp[6..8], &[0, 0], "no UDP checksum");
        assert_eq!(&f[42..50], &[8, 0, 0, 0, 0, 0, 42, 0]);
        assert_eq!(&f[50..], &inner()[..]);
    }

    #[test]
    fn checksum_is_right_for_every_length() {
        let o = Outer::new(
            [2; 6],
            [192, 168, 255, 254],
            [172, 31, 200, 9],
            4789,
            MAX_VNI,
        );
        for len in [14usize, 60, 1514, 9018, 65_000] {
            let mut h = [0u8; OUTER_LEN];
            o.write(&mut h, [0xff; 6], len, 61000);
            let mut c = Csum::default();
            c.add(&h[14..34]);
            assert_eq!(c.fold(), 0xffff, "length {len}");
        }
    }

    #[test]
    fn one_flow_one_port_and_flows_spread() {
        let a = inner();
        assert_eq!(src_port(&a), src_port(&a));
        let mut ports = std::collections::HashSet::new();
        for i in 0..64u8 {
            let mut f = a.clone();
            f[36] = i; // UDP destination port of the inner flow
            ports.insert(src_port(&f));
        }
        assert!(
            ports.len() > 50,
            "{} distinct ports of 64 flows",
            ports.len()
        );
        assert_eq!(src_port(&[0u8; 3]), SRC_PORT_MIN);
        // Behind a VLAN tag, and over IPv6, flows spread too.
        let spread = |make: &dyn Fn(u8) -> Vec<u8>| {
            (0..64u8)
                .map(|i| src_port(&make(i)))
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        let tagged = |i: u8| {
            let mut f = a.clone();
            f.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
            f[40] = i;
            f
        };
        assert!(spread(&tagged) > 50);
        let v6 = |i: u8| {
            let mut f = vec![0u8; 78];
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            f[14] = 0x60;
            f[20] = 17;
            f[54] = 0x80; // UDP source port
            f[57] = i; // UDP destination port
            f
        };
        assert!(spread(&v6) > 50);
        // Fragments of one datagram: one port, whatever the payload says.
        let frag = |i: u8| {
            let mut f = a.clone();
            f[20] = 0x20; // MF
            f[36] = i;
            f
        };
        assert_eq!(spread(&frag), 1);
        for n in 0..80 {
            let _ = src_port(&v6(1)[..n.min(78)]);
            let _ = src_port(&tagged(1)[..n.min(64)]);
        }
    }

    #[test]
    fn a_good_frame_decapsulates() {
        let f = encapsulated(42, &inner());
        assert_eq!(
            classify_ours(&f),
            Underlay::Vxlan {
                src_ip: REMOTE,
                dst_port: 4789,
                vni: 42,
                inner_at: 50,
                inner_len: 60
            }
        );
        // Ethernet padding after the IPv4 datagram is not inner frame.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 8]);
        assert!(matches!(
            classify_ours(&padded),
            Underlay::Vxlan { inner_len: 60, .. }
        ));
    }

    #[test]
    fn a_good_udp_checksum_passes_and_a_bad_one_does_not() {
        let mut f = encapsulated(42, &inner());
        let mut c = Csum::default();
        c.add(&f[26..34]);
        c.add_u16(17);
        c.add_u16(76);
        c.add(&f[34..]);
        let sum = !c.fold();
        f[40..42].copy_from_slice(&sum.to_be_bytes());
        assert!(matches!(classify_ours(&f), Underlay::Vxlan { .. }));
        f[60] ^= 1;
        assert_eq!(classify_ours(&f), Underlay::Malformed);
    }

    #[test]
    fn malformed_frames_are_named() {
        let good = encapsulated(42, &inner());
        let bad = |at: usize, v: u8| {
            let mut f = good.clone();
            f[at] = v;
            classify_ours(&f)
        };
        assert_eq!(bad(24, 0), Underlay::Malformed, "IPv4 checksum");
        assert_eq!(bad(42, 0x0c), Underlay::Malformed, "unknown flag");
        assert_eq!(bad(42, 0), Underlay::Malformed, "no I flag");
        assert_eq!(bad(43, 1), Underlay::Malformed, "reserved bits");
        assert_eq!(
            bad(49, 1),
            Underlay::Malformed,
            "reserved byte after the VNI"
        );
        assert_eq!(bad(14, 0x44), Underlay::Malformed, "IHL 4");
        let mut frag = good.clone();
        frag[20] |= 0x20; // MF
        let mut c = Csum::default();
        frag[24..26].copy_from_slice(&[0, 0]);
        c.add(&frag[14..34]);
        let s = !c.fold();
        frag[24..26].copy_from_slice(&s.to_be_bytes());
        assert_eq!(classify_ours(&frag), Underlay::Malformed, "fragment");
        let mut long = good.clone();
        long[17] += 1; // IPv4 length past the frame
        assert_eq!(classify_ours(&long), Underlay::Malformed);
        let mut udp_len = good.clone();
        udp_len[39] -= 1;
        assert_eq!(classify_ours(&udp_len), Underlay::Malformed, "UDP length");
        assert_eq!(classify_ours(&good[..40]), Underlay::Malformed, "cut short");
    }

    #[test]
    fn other_traffic_is_not_taken() {
        let good = encapsulated(42, &inner());
        assert_eq!(
            classify(&good, [10, 0, 0, 9], |p| p == 4789),
            Underlay::Other,
            "not our IP"
        );
        assert_eq!(
            classify(&good, LOCAL, |p| p == 8472),
            Underlay::Other,
            "not a tunnel port"
        );
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        assert_eq!(classify_ours(&arp), Underlay::Arp);
        let mut v6 = good.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(classify_ours(&v6), Underlay::Other);
        for n in 0..good.len() {
            // Never a panic, whatever the length.
            let _ = classify_ours(&good[..n]);
        }
    }
}
