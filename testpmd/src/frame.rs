//! Test frames: Ethernet/IPv4/UDP with a payload the far end can check.
//!
//! Payload (at offset 42): magic `FE 55`, a 16-bit checksum, a 32-bit
//! sequence number, a 64-bit send timestamp (CLOCK_MONOTONIC ns, shared by
//! every process on the host, 0 when latency is off), then random bytes. The
//! checksum covers the sequence number and the random bytes, so a corrupted
//! or truncated frame is caught wherever it is received.

use pmd::Mbuf;

pub const ETH_HDR: usize = 14;
pub const PAYLOAD_OFF: usize = ETH_HDR + 20 + 8;
const MAGIC: [u8; 2] = [0xfe, 0x55];
const SEQ_OFF: usize = PAYLOAD_OFF + 4;
const TS_OFF: usize = PAYLOAD_OFF + 8;
const RANDOM_OFF: usize = PAYLOAD_OFF + 16;
/// Smallest frame that carries the checked payload (60 = Ethernet minimum).
pub const MIN_FRAME: usize = 60;
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

/// Builds frames from a few random templates; per packet it only writes
/// the flow fields, sequence number, timestamp and checksums.
pub struct Generator {
    spec: FrameSpec,
    templates: Vec<Vec<u8>>,
    random_sums: Vec<u32>,
    seq: u32,
    next_tpl: usize,
    pub stamp: bool,
}

impl Generator {
    pub fn new(spec: FrameSpec, seed: u64, stamp: bool) -> Generator {
        let mut rng = seed | 1;
        let mut templates = Vec::with_capacity(TEMPLATES);
        let mut random_sums = Vec::with_capacity(TEMPLATES);
        let size = spec.size.max(MIN_FRAME);
        for _ in 0..TEMPLATES {
            let mut f = vec![0u8; size];
            f[0..6].copy_from_slice(&spec.dst_mac);
            f[6..12].copy_from_slice(&spec.src_mac);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut f[ETH_HDR..ETH_HDR + 20];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((size - ETH_HDR) as u16).to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[12..16].copy_from_slice(&spec.src_ip);
            ip[16..20].copy_from_slice(&spec.dst_ip);
            let c = !fold(sum16(ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            let udp = &mut f[ETH_HDR + 20..PAYLOAD_OFF];
            udp[0..2].copy_from_slice(&spec.src_port.to_be_bytes());
            udp[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
            udp[4..6].copy_from_slice(&((size - ETH_HDR - 20) as u16).to_be_bytes());
            f[PAYLOAD_OFF..PAYLOAD_OFF + 2].copy_from_slice(&MAGIC);
            for b in &mut f[RANDOM_OFF..] {
                // xorshift64: reproducible random payloads, no dependency.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *b = rng as u8;
            }
            random_sums.push(sum16(&f[RANDOM_OFF..]));
            templates.push(f);
        }
        Generator {
            spec,
            templates,
            random_sums,
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
        let t = self.next_tpl;
        self.next_tpl = if t + 1 == TEMPLATES { 0 } else { t + 1 };
        m.fill(&self.templates[t]);
        let f = m.data_mut();
        if self.spec.flows > 1 {
            let flow = flow % self.spec.flows;
            let ip_csum = u16::from_be_bytes([f[ETH_HDR + 10], f[ETH_HDR + 11]]);
            let (off, base) = if vary_dst {
                (16, u32::from_be_bytes(self.spec.dst_ip))
            } else {
                (12, u32::from_be_bytes(self.spec.src_ip))
            };
            let new = base.wrapping_add(flow);
            f[ETH_HDR + off..ETH_HDR + off + 4].copy_from_slice(&new.to_be_bytes());
            let c = csum_replace32(ip_csum, base, new);
            f[ETH_HDR + 10..ETH_HDR + 12].copy_from_slice(&c.to_be_bytes());
            if !vary_dst {
                let sport = self.spec.src_port.wrapping_add(flow as u16);
                f[ETH_HDR + 20..ETH_HDR + 22].copy_from_slice(&sport.to_be_bytes());
            }
        }
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        f[SEQ_OFF..SEQ_OFF + 4].copy_from_slice(&seq.to_be_bytes());
        let csum = !fold(self.random_sums[t] + (seq >> 16) + (seq & 0xffff));
        f[PAYLOAD_OFF + 2..PAYLOAD_OFF + 4].copy_from_slice(&csum.to_be_bytes());
        if self.stamp {
            f[TS_OFF..TS_OFF + 8].copy_from_slice(&now.to_ne_bytes());
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

#[inline]
pub fn check(frame: &[u8]) -> Check {
    if frame.len() < MIN_FRAME
        || frame[12..14] != [0x08, 0x00]
        || frame[ETH_HDR + 9] != 17
        || frame[PAYLOAD_OFF..PAYLOAD_OFF + 2] != MAGIC
    {
        return Check::Foreign;
    }
    let ip_len = u16::from_be_bytes([frame[ETH_HDR + 2], frame[ETH_HDR + 3]]) as usize;
    if ip_len + ETH_HDR != frame.len() {
        return Check::Bad;
    }
    let stored = u16::from_be_bytes([frame[PAYLOAD_OFF + 2], frame[PAYLOAD_OFF + 3]]);
    let sum = sum16(&frame[SEQ_OFF..SEQ_OFF + 4]) + sum16(&frame[RANDOM_OFF..]);
    if !fold(sum) != stored {
        return Check::Bad;
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&frame[TS_OFF..TS_OFF + 8]);
    Check::Good {
        sent_ns: u64::from_ne_bytes(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmd::{Pool, PoolCache};

    fn spec(size: usize) -> FrameSpec {
        FrameSpec {
            size,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: [10, 0, 0, 1],
            dst_ip: [10, 0, 0, 2],
            src_port: 1024,
            dst_port: 1024,
            flows: 4,
        }
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
}
