//! Offload test traffic (`--tx-offload`): Ethernet/IPv4/TCP frames cut from
//! one byte stream per generator, handed to the port with a virtio-net
//! header asking for the TCP checksum (`csum`) or for segmentation into
//! `mss`-byte segments (`tso:MSS`), as a Linux guest sends them.
//!
//! Receivers check any such frame or segment whole: IPv4 header checksum,
//! lengths, TCP checksum, and every payload byte against the stream (byte k
//! of the stream is a function of k), so a segment that was split, ordered,
//! or checksummed wrongly is caught. Frames are ours when the TCP window
//! field is `FE 55` (as the UDP frames' magic).

use pmd::offload::{Csum, Gso, Offload};
use pmd::Mbuf;

const WINDOW_MARK: [u8; 2] = [0xfe, 0x55];
const L3: usize = 14;
const L4: usize = L3 + 20;
/// Ethernet, IPv4 and TCP headers (no options).
pub const HDRS: usize = L4 + 20;

/// What the generator asks of the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxOffload {
    Csum,
    Tso { mss: u16 },
}

impl std::str::FromStr for TxOffload {
    type Err = String;
    fn from_str(s: &str) -> Result<TxOffload, String> {
        match s.split_once(':') {
            None if s == "csum" => Ok(TxOffload::Csum),
            Some(("tso", mss)) => match mss.parse::<u16>() {
                Ok(mss) if mss >= 64 => Ok(TxOffload::Tso { mss }),
                _ => Err(format!(
                    "tso:MSS wants an MSS of 64 bytes or more, not {mss:?}"
                )),
            },
            _ => Err(format!("{s:?}: csum or tso:MSS")),
        }
    }
}

/// Stream byte `k`.
#[inline]
fn stream_byte(k: u32) -> u8 {
    (k.wrapping_mul(7) ^ (k >> 9)) as u8
}

/// Cuts frames of `size` bytes from one TCP byte stream.
pub struct TcpGen {
    size: usize,
    macs: [u8; 12],
    ips: [u8; 8],
    ports: [u8; 4],
    offload: TxOffload,
    seq: u32,
    id: u16,
}

impl TcpGen {
    pub fn new(spec: &crate::frame::FrameSpec, offload: TxOffload) -> TcpGen {
        let mut macs = [0u8; 12];
        macs[..6].copy_from_slice(&spec.dst_mac);
        macs[6..].copy_from_slice(&spec.src_mac);
        let mut ips = [0u8; 8];
        ips[..4].copy_from_slice(&spec.src_ip);
        ips[4..].copy_from_slice(&spec.dst_ip);
        let mut ports = [0u8; 4];
        ports[..2].copy_from_slice(&spec.src_port.to_be_bytes());
        ports[2..].copy_from_slice(&spec.dst_port.to_be_bytes());
        TcpGen {
            size: spec.size.max(HDRS + 1),
            macs,
            ips,
            ports,
            offload,
            seq: 0,
            id: 0,
        }
    }

    /// The next frame of the stream into `m` (which must hold `size` bytes).
    pub fn fill(&mut self, m: &mut Mbuf) {
        let payload = self.size - HDRS;
        m.set_len(self.size);
        let f = m.data_mut();
        f[..12].copy_from_slice(&self.macs);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[L3..L4];
        ip[..2].copy_from_slice(&[0x45, 0]);
        ip[2..4].copy_from_slice(&((20 + 20 + payload) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&self.id.to_be_bytes());
        ip[6..12].copy_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        ip[12..20].copy_from_slice(&self.ips);
        let mut c = Csum::default();
        c.add(ip);
        ip[10..12].copy_from_slice(&(!c.fold()).to_be_bytes());
        let tcp = &mut f[L4..HDRS];
        tcp[..4].copy_from_slice(&self.ports);
        tcp[4..8].copy_from_slice(&self.seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&[0, 0, 0, 1]);
        tcp[12..14].copy_from_slice(&[0x50, 0x18]); // 20 bytes, PSH|ACK
        tcp[14..16].copy_from_slice(&WINDOW_MARK);
        tcp[16..20].fill(0);
        for (i, b) in f[HDRS..].iter_mut().enumerate() {
            *b = stream_byte(self.seq.wrapping_add(i as u32));
        }
        // What a guest leaves in the field with CHECKSUM_PARTIAL: the
        // pseudo-header sum, not complemented.
        let mut p = Csum::default();
        p.add(&self.ips);
        p.add(&[0, 6]);
        p.add_u16((20 + payload) as u16);
        f[L4 + 16..L4 + 18].copy_from_slice(&p.fold().to_be_bytes());
        let (gso, gso_size) = match self.offload {
            TxOffload::Csum => (Gso::None, 0),
            TxOffload::Tso { mss } => (Gso::Tcp4, mss),
        };
        m.set_offload(Offload {
            needs_csum: true,
            gso,
            csum_start: L4 as u16,
            csum_offset: 16,
            gso_size,
        });
        self.seq = self.seq.wrapping_add(payload as u32);
        self.id = self.id.wrapping_add(1);
    }
}

/// None: not one of these frames; Some(ok) otherwise.
pub fn check(f: &[u8]) -> Option<bool> {
    if f.len() < HDRS
        || f[12..14] != [0x08, 0x00]
        || f[L3 + 9] != 6
        || f[L4 + 14..L4 + 16] != WINDOW_MARK
    {
        return None;
    }
    let ip_len = u16::from_be_bytes([f[L3 + 2], f[L3 + 3]]) as usize;
    if f[L3] != 0x45 || L3 + ip_len != f.len() {
        return Some(false);
    }
    let mut c = Csum::default();
    c.add(&f[L3..L4]);
    if c.fold() != 0xffff {
        return Some(false);
    }
    let tcp_len = f.len() - L4;
    let mut c = Csum::default();
    c.add(&f[L3 + 12..L4]);
    c.add(&[0, 6]);
    c.add_u16(tcp_len as u16);
    c.add(&f[L4..]);
    if c.fold() != 0xffff {
        return Some(false);
    }
    let seq = u32::from_be_bytes(f[L4 + 4..L4 + 8].try_into().expect("4 bytes"));
    Some(
        f[HDRS..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == stream_byte(seq.wrapping_add(i as u32))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::tests::spec;
    use pmd::{Pool, PoolCache};

    /// A generated frame, finished the way a switch does it (checksum, or
    /// segmentation), checks good; a changed byte does not.
    #[test]
    fn finished_frames_and_segments_check_good_and_corruption_is_caught() {
        let mut c = PoolCache::new(Pool::with_data_room(256, 16 * 1024, false).unwrap());
        let mut g = TcpGen::new(&spec(1500), TxOffload::Csum);
        let mut m = c.alloc().unwrap();
        g.fill(&mut m);
        assert_eq!(check(m.data()), Some(false), "checksum left partial");
        assert!(pmd::offload::complete_csum(&mut m));
        assert_eq!(check(m.data()), Some(true));
        m.data_mut()[100] ^= 1;
        assert_eq!(check(m.data()), Some(false));
        c.free(m);

        let mut g = TcpGen::new(&spec(12_000), TxOffload::Tso { mss: 1448 });
        for _ in 0..2 {
            let mut m = c.alloc().unwrap();
            g.fill(&mut m);
            let mut b = pmd::Batch::new();
            let (done, total) = pmd::offload::segment(&m, 0, &mut c, &mut b).unwrap();
            assert_eq!((done, total), (9, 9));
            for s in b.drain() {
                assert_eq!(check(s.data()), Some(true));
                c.free(s);
            }
            c.free(m);
        }
        assert_eq!(check(&[0u8; 100]), None);
    }

    #[test]
    fn offload_option_parses() {
        assert_eq!("csum".parse(), Ok(TxOffload::Csum));
        assert_eq!("tso:1448".parse(), Ok(TxOffload::Tso { mss: 1448 }));
        assert!("tso:10".parse::<TxOffload>().is_err());
        assert!("gso".parse::<TxOffload>().is_err());
    }
}
