//! Test frames: Ethernet[/802.1Q]/IPv4/UDP with a payload the far end can check.
//!
//! Payload (right after the UDP header: offset 42, or 46 behind a VLAN
//! tag): magic `FE 55`, a 16-bit checksum, a 32-bit sequence number, a
//! 64-bit send timestamp (CLOCK_MONOTONIC ns, shared by every process on
//! the host, 0 when latency is off), then random bytes. The checksum covers
//! the sequence number and the random bytes, so a corrupted or truncated
//! frame is caught wherever it is received, and a switch may push or pop a
//! tag without the frame turning bad.

use pmd::Mbuf;

pub const ETH_HDR: usize = 14;
/// An 802.1Q tag (TPID, TCI) between the MACs and the EtherType.
pub const VLAN_TAG: usize = 4;
const TPID_8021Q: [u8; 2] = [0x81, 0x00];
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
// Payload fields, counted from the start of the IP header (which moves
// with the tag).
const PAYLOAD: usize = 20 + 8;
const MAGIC: [u8; 2] = [0xfe, 0x55];
const SEQ: usize = PAYLOAD + 4;
const TS: usize = PAYLOAD + 8;
const RANDOM: usize = PAYLOAD + 16;
/// Smallest frame that carries the checked payload (60 = Ethernet minimum).
pub const MIN_FRAME: usize = 60;
/// Smallest tagged frame: popping its tag still leaves a minimum frame.
pub const MIN_TAGGED_FRAME: usize = MIN_FRAME + VLAN_TAG;
/// Per-VLAN counter slots: VIDs 0..=4095, then `UNTAGGED`.
pub const VLAN_SLOTS: usize = 4097;
pub const UNTAGGED: usize = 4096;
const TEMPLATES: usize = 16;

/// Nanoseconds on the host-wide monotonic clock (vDSO: no system call).
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What generated frames look like.
#[derive(Clone, Debug)]
pub struct FrameSpec {
    pub size: usize,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: [u8; 4],
    pub dst_ip: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    /// Distinct flows: flow k adds k to the source IP's last octets and the
    /// source UDP port (txonly) or destination IP (flowgen).
    pub flows: u32,
    /// Flow k's 802.1Q tag: `vlans[k % len]` (None: untagged; empty: no
    /// flow tagged). A tag takes 4 bytes of payload, not of frame size.
    pub vlans: Vec<Option<u16>>,
    /// Priority code point of tagged frames.
    pub pcp: u8,
    /// Flow k's source MAC: `src_mac` with its last two bytes plus k % macs.
    pub macs: u32,
    /// Flow k's UDP destination port: `dst_port` + k % dst_ports.
    pub dst_ports: u32,
}

impl FrameSpec {
    /// One flow, no tag, no variation: the rest as given.
    pub fn plain(size: usize, src_mac: [u8; 6], dst_mac: [u8; 6]) -> FrameSpec {
        FrameSpec {
            size,
            src_mac,
            dst_mac,
            src_ip: [198, 18, 0, 1],
            dst_ip: [198, 18, 0, 2],
            src_port: 9,
            dst_port: 9,
            flows: 1,
            vlans: Vec::new(),
            pcp: 0,
            macs: 1,
            dst_ports: 1,
        }
    }

    /// Whether any flow is sent with a tag.
    pub fn tagged(&self) -> bool {
        self.vlans.iter().any(Option::is_some)
    }
}

/// `k % n`, without a division when there is nothing to vary.
#[inline]
fn nth(k: u32, n: u32) -> u32 {
    if n > 1 {
        k % n
    } else {
        0
    }
}

/// Last two bytes of a source MAC moved on by `add` (a learning switch sees
/// a new address per step).
#[inline]
fn mac_tail(mac: &[u8; 6], add: u32) -> [u8; 2] {
    u16::from_be_bytes([mac[4], mac[5]])
        .wrapping_add(add as u16)
        .to_be_bytes()
}

fn sum16(bytes: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut it = bytes.chunks_exact(2);
    for w in &mut it {
        s += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    if let [b] = it.remainder() {
        s += (*b as u32) << 8;
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Random frames of one layout (untagged or tagged) and the sums of their
/// random bytes.
#[derive(Default)]
struct Templates {
    /// Where the IP header starts.
    l3: usize,
    frames: Vec<Vec<u8>>,
    random_sums: Vec<u32>,
}

impl Templates {
    fn new(spec: &FrameSpec, tagged: bool, rng: &mut u64) -> Templates {
        let l3 = if tagged { ETH_HDR + VLAN_TAG } else { ETH_HDR };
        let size = spec.size.max(MIN_FRAME + l3 - ETH_HDR);
        let mut t = Templates {
            l3,
            ..Templates::default()
        };
        for _ in 0..TEMPLATES {
            let mut f = headers(spec, l3, size);
            for b in &mut f[l3 + RANDOM..] {
                // xorshift64: reproducible random payloads, no dependency.
                *rng ^= *rng << 13;
                *rng ^= *rng >> 7;
                *rng ^= *rng << 17;
                *b = *rng as u8;
            }
            t.random_sums.push(sum16(&f[l3 + RANDOM..]));
            t.frames.push(f);
        }
        t
    }
}

/// A `size`-byte frame of flow 0 up to the magic; the IP header at `l3`
/// (behind a tag whose TCI is written per frame when `l3` leaves room).
fn headers(spec: &FrameSpec, l3: usize, size: usize) -> Vec<u8> {
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&spec.dst_mac);
    f[6..12].copy_from_slice(&spec.src_mac);
    if l3 > ETH_HDR {
        f[12..14].copy_from_slice(&TPID_8021Q);
    }
    f[l3 - 2..l3].copy_from_slice(&ETHERTYPE_IPV4);
    let ip = &mut f[l3..l3 + 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((size - l3) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&spec.src_ip);
    ip[16..20].copy_from_slice(&spec.dst_ip);
    let c = !fold(sum16(ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let udp = &mut f[l3 + 20..l3 + PAYLOAD];
    udp[0..2].copy_from_slice(&spec.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&((size - l3 - 20) as u16).to_be_bytes());
    // UDP checksum 0: none (IPv4 allows it), so flow fields need no update.
    f[l3 + PAYLOAD..l3 + PAYLOAD + 2].copy_from_slice(&MAGIC);
    f
}

/// Builds frames from a few random templates; per packet it only writes
/// the flow fields, sequence number, timestamp and checksums.
pub struct Generator {
    spec: FrameSpec,
    /// Untagged and tagged templates; a layout no flow uses has none.
    layouts: [Templates; 2],
    /// Flow k's TCI (PCP and VID) is `tcis[k % len]`, None: untagged.
    tcis: Vec<Option<u16>>,
    seq: u32,
    next_tpl: usize,
    pub stamp: bool,
}

impl Generator {
    pub fn new(spec: FrameSpec, seed: u64, stamp: bool) -> Generator {
        let mut tcis: Vec<Option<u16>> = spec
            .vlans
            .iter()
            .map(|v| v.map(|vid| (u16::from(spec.pcp & 7) << 13) | (vid & 0x0fff)))
            .collect();
        if tcis.is_empty() {
            tcis.push(None);
        }
        let mut rng = seed | 1;
        let layouts = [false, true].map(|tagged| {
            if tcis.iter().any(|t| t.is_some() == tagged) {
                Templates::new(&spec, tagged, &mut rng)
            } else {
                Templates::default()
            }
        });
        Generator {
            spec,
            layouts,
            tcis,
            seq: 0,
            next_tpl: 0,
            stamp,
        }
    }

    /// Writes one frame of flow `flow` into `m`. `vary_dst` selects which
    /// address the flow number changes (flowgen: destination IP).
    /// Hot path: a template copy and a few stores; checksums are updated
    /// incrementally (RFC 1624), never recomputed.
    #[inline]
    pub fn fill(&mut self, m: &mut Mbuf, flow: u32, vary_dst: bool, now: u64) {
        let k = nth(flow, self.spec.flows);
        let tci = self.tcis[nth(k, self.tcis.len() as u32) as usize];
        let t = self.next_tpl;
        self.next_tpl = if t + 1 == TEMPLATES { 0 } else { t + 1 };
        let tpl = &self.layouts[usize::from(tci.is_some())];
        let (l3, random_sum) = (tpl.l3, tpl.random_sums[t]);
        m.fill(&tpl.frames[t]);
        let f = m.data_mut();
        if let Some(tci) = tci {
            f[ETH_HDR..ETH_HDR + 2].copy_from_slice(&tci.to_be_bytes());
        }
        if self.spec.macs > 1 {
            f[10..12].copy_from_slice(&mac_tail(&self.spec.src_mac, k % self.spec.macs));
        }
        if self.spec.flows > 1 {
            let ip_csum = u16::from_be_bytes([f[l3 + 10], f[l3 + 11]]);
            let (off, base) = if vary_dst {
                (16, u32::from_be_bytes(self.spec.dst_ip))
            } else {
                (12, u32::from_be_bytes(self.spec.src_ip))
            };
            let new = base.wrapping_add(k);
            f[l3 + off..l3 + off + 4].copy_from_slice(&new.to_be_bytes());
            let c = csum_replace32(ip_csum, base, new);
            f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            if !vary_dst {
                let sport = self.spec.src_port.wrapping_add(k as u16);
                f[l3 + 20..l3 + 22].copy_from_slice(&sport.to_be_bytes());
            }
        }
        if self.spec.dst_ports > 1 {
            let dport = self
                .spec
                .dst_port
                .wrapping_add((k % self.spec.dst_ports) as u16);
            f[l3 + 22..l3 + 24].copy_from_slice(&dport.to_be_bytes());
        }
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        f[l3 + SEQ..l3 + SEQ + 4].copy_from_slice(&seq.to_be_bytes());
        let csum = !fold(random_sum + (seq >> 16) + (seq & 0xffff));
        f[l3 + PAYLOAD + 2..l3 + PAYLOAD + 4].copy_from_slice(&csum.to_be_bytes());
        if self.stamp {
            f[l3 + TS..l3 + TS + 8].copy_from_slice(&now.to_ne_bytes());
        }
    }
}

/// Internet checksum `c` after a 32-bit field changes from `old` to `new`.
fn csum_replace32(c: u16, old: u32, new: u32) -> u16 {
    let sum =
        (!c) as u32 + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold(sum)
}

/// What a receiver learns from one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Not one of our frames (no magic): counted, not judged.
    Foreign,
    Good {
        sent_ns: u64,
    },
    Bad,
}

/// Where the IP header starts: after the MACs, at most one 802.1Q tag and
/// the EtherType (a shorter frame answers as if untagged).
#[inline]
fn l3_offset(frame: &[u8]) -> usize {
    if frame.len() >= ETH_HDR + VLAN_TAG && frame[12..14] == TPID_8021Q {
        ETH_HDR + VLAN_TAG
    } else {
        ETH_HDR
    }
}

/// Counter slot of a received frame: the VID of its 802.1Q tag, or
/// `UNTAGGED`.
#[inline]
pub fn vlan_slot(frame: &[u8]) -> usize {
    if l3_offset(frame) > ETH_HDR {
        usize::from(u16::from_be_bytes([frame[14], frame[15]]) & 0x0fff)
    } else {
        UNTAGGED
    }
}

/// Judges the payload behind the Ethernet header and its tag, if any: a
/// switch may have pushed or popped one on the way.
#[inline]
pub fn check(frame: &[u8]) -> Check {
    let l3 = l3_offset(frame);
    if frame.len() < MIN_FRAME + l3 - ETH_HDR
        || frame[l3 - 2..l3] != ETHERTYPE_IPV4
        || frame[l3 + 9] != 17
        || frame[l3 + PAYLOAD..l3 + PAYLOAD + 2] != MAGIC
    {
        return match crate::tcp::check(frame) {
            None => Check::Foreign,
            Some(true) => Check::Good { sent_ns: 0 },
            Some(false) => Check::Bad,
        };
    }
    let ip_len = u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]) as usize;
    if ip_len + l3 != frame.len() {
        return Check::Bad;
    }
    let stored = u16::from_be_bytes([frame[l3 + PAYLOAD + 2], frame[l3 + PAYLOAD + 3]]);
    let sum = sum16(&frame[l3 + SEQ..l3 + SEQ + 4]) + sum16(&frame[l3 + RANDOM..]);
    if !fold(sum) != stored {
        return Check::Bad;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&frame[l3 + TS..l3 + TS + 8]);
    Check::Good {
        sent_ns: u64::from_ne_bytes(ts),
    }
}

/// Clears the magic, so receivers count the frame as not ours (tx-first).
pub fn unmark(frame: &mut [u8]) {
    let p = l3_offset(frame) + PAYLOAD;
    frame[p] = 0;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pmd::{Pool, PoolCache};

    /// Frames of `size` bytes from MAC 1 / 10.0.0.1 to MAC 2 / 10.0.0.2, four flows.
    pub(crate) fn spec(size: usize) -> FrameSpec {
        FrameSpec {
            size,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: [10, 0, 0, 1],
            dst_ip: [10, 0, 0, 2],
            src_port: 1024,
            dst_port: 1024,
            flows: 4,
            vlans: Vec::new(),
            pcp: 0,
            macs: 1,
            dst_ports: 1,
        }
    }

    /// The frames of flows `0..n` (one generator, so sequence numbers run on).
    fn frames(spec: FrameSpec, n: u32, vary_dst: bool) -> Vec<Vec<u8>> {
        let mut cache = PoolCache::new(Pool::new(8, false).unwrap());
        let mut g = Generator::new(spec, 3, false);
        let mut m = cache.alloc().unwrap();
        let out = (0..n)
            .map(|flow| {
                g.fill(&mut m, flow, vary_dst, 0);
                m.data().to_vec()
            })
            .collect();
        cache.free(m);
        out
    }

    /// The IPv4 header checksum of a frame whose IP header is at `l3`
    /// verifies, and its total length is what follows the Ethernet header.
    fn assert_ip_ok(f: &[u8], l3: usize) {
        assert_eq!(fold(sum16(&f[l3..l3 + 20])), 0xffff);
        assert_eq!(
            u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize,
            f.len() - l3
        );
    }

    fn pop_tag(f: &[u8]) -> Vec<u8> {
        [&f[..12], &f[12 + VLAN_TAG..]].concat()
    }

    fn push_tag(f: &[u8], tci: u16) -> Vec<u8> {
        [&f[..12], &TPID_8021Q[..], &tci.to_be_bytes()[..], &f[12..]].concat()
    }

    #[test]
    fn generated_frames_check_good_and_corruption_is_caught() {
        let mut cache = PoolCache::new(Pool::new(64, false).unwrap());
        for size in [60, 64, 1518] {
            let mut g = Generator::new(spec(size), 7, true);
            let mut m = cache.alloc().unwrap();
            for flow in 0..5 {
                g.fill(&mut m, flow, flow % 2 == 0, 12345);
                assert_eq!(m.len(), size);
                assert_eq!(check(m.data()), Check::Good { sent_ns: 12345 });
                // IPv4 header checksum verifies to zero.
                assert_eq!(fold(sum16(&m.data()[ETH_HDR..ETH_HDR + 20])), 0xffff);
            }
            let last = m.len() - 1;
            m.data_mut()[last] ^= 0x40;
            assert_eq!(check(m.data()), Check::Bad);
            if size > MIN_FRAME {
                m.set_len(size - 1);
                assert_eq!(check(m.data()), Check::Bad);
            }
            cache.free(m);
        }
        assert_eq!(check(&[0u8; 80]), Check::Foreign);
    }

    #[test]
    fn tagged_frames_carry_tpid_vid_pcp_and_keep_their_size() {
        for size in [MIN_TAGGED_FRAME, 128, 1518] {
            let mut sp = spec(size);
            sp.vlans = vec![Some(10)];
            sp.pcp = 5;
            for f in frames(sp, 4, false) {
                assert_eq!(f.len(), size);
                assert_eq!(f[12..14], [0x81, 0x00]);
                assert_eq!(u16::from_be_bytes([f[14], f[15]]), 5 << 13 | 10);
                assert_eq!(f[16..18], [0x08, 0x00]);
                assert_ip_ok(&f, ETH_HDR + VLAN_TAG);
                assert_eq!(vlan_slot(&f), 10);
                assert!(matches!(check(&f), Check::Good { .. }));
            }
        }
    }

    #[test]
    fn a_tag_pushed_or_popped_on_the_way_still_checks_good() {
        let mut sp = spec(MIN_TAGGED_FRAME);
        sp.vlans = vec![Some(4095)];
        let tagged = frames(sp.clone(), 1, false).remove(0);
        let popped = pop_tag(&tagged);
        assert_eq!(popped.len(), MIN_FRAME);
        assert_eq!(check(&popped), Check::Good { sent_ns: 0 });
        assert_eq!(vlan_slot(&popped), UNTAGGED);
        sp.vlans.clear();
        let plain = frames(sp, 1, false).remove(0);
        let pushed = push_tag(&plain, 7 << 13 | 300);
        assert_eq!(check(&pushed), Check::Good { sent_ns: 0 });
        assert_eq!(vlan_slot(&pushed), 300);
        // The payload is still judged behind the tag: corruption, and an IP
        // length that no longer matches, are caught.
        let mut bad = pushed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(check(&bad), Check::Bad);
        assert_eq!(check(&pushed[..pushed.len() - 1]), Check::Bad);
        // Two tags are beyond what the checker reads.
        assert_eq!(check(&push_tag(&pushed, 20)), Check::Foreign);
        assert_eq!(vlan_slot(&[0u8; 10]), UNTAGGED);
    }

    #[test]
    fn vlan_list_cycles_by_flow() {
        let mut sp = spec(100);
        sp.flows = 6;
        sp.vlans = vec![Some(10), None, Some(0)];
        let slots: Vec<usize> = frames(sp, 8, true).iter().map(|f| vlan_slot(f)).collect();
        // Flow numbers wrap at --flows first: flows 6 and 7 are flows 0 and 1.
        assert_eq!(slots, [10, UNTAGGED, 0, 10, UNTAGGED, 0, 10, UNTAGGED]);
        for f in frames(spec(100), 2, true) {
            assert_eq!(vlan_slot(&f), UNTAGGED);
        }
    }

    #[test]
    fn every_frame_of_a_mixed_list_checks_good_at_the_same_size() {
        let mut sp = spec(64);
        sp.flows = 8;
        sp.vlans = vec![None, Some(1), Some(2)];
        sp.macs = 3;
        sp.dst_ports = 5;
        for (k, f) in frames(sp, 16, false).iter().enumerate() {
            assert_eq!(f.len(), 64, "flow {k}");
            assert!(matches!(check(f), Check::Good { .. }), "flow {k}");
            assert_ip_ok(f, if vlan_slot(f) == UNTAGGED { 14 } else { 18 });
        }
    }

    #[test]
    fn source_macs_and_destination_ports_vary_by_flow() {
        let mut sp = spec(80);
        sp.src_mac = [2, 0, 0, 9, 0xff, 0xfe];
        sp.flows = 12;
        sp.macs = 3;
        sp.dst_ports = 4;
        sp.vlans = vec![None, Some(5)];
        for (k, f) in frames(sp, 12, false).iter().enumerate() {
            let l3 = if k % 2 == 0 { 14 } else { 18 };
            // The last two bytes count on and wrap; the rest stays.
            let tail = 0xfffeu16.wrapping_add((k % 3) as u16);
            assert_eq!(f[6..12], [2, 0, 0, 9, (tail >> 8) as u8, tail as u8]);
            let port = |o: usize| u16::from_be_bytes([f[l3 + o], f[l3 + o + 1]]);
            assert_eq!(port(22), 1024 + (k % 4) as u16, "dst port of flow {k}");
            // txonly's own variation stays: source IP and port.
            assert_eq!(port(20), 1024 + k as u16);
            assert_eq!(f[l3 + 15], 1 + k as u8);
            assert_ip_ok(f, l3);
            assert!(matches!(check(f), Check::Good { .. }));
        }
        // One of each: every flow has the port's own MAC and port.
        for f in frames(spec(80), 4, false) {
            assert_eq!(f[6..12], [2, 0, 0, 0, 0, 1]);
            assert_eq!(f[36..38], 1024u16.to_be_bytes());
        }
    }

    #[test]
    fn unmarked_frames_are_not_ours() {
        for vlans in [vec![], vec![Some(3)]] {
            let mut sp = spec(64);
            sp.vlans = vlans;
            let mut f = frames(sp, 1, false).remove(0);
            unmark(&mut f);
            assert_eq!(check(&f), Check::Foreign);
        }
    }
}
