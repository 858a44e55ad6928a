//! Guest offloads (virtio-net header): a checksum the sender left for us to
//! complete, and a TCP segment larger than the wire (GSO). Parsed and checked
//! once where the frame comes in, carried in the buffer ([`Offload`]), passed
//! on to a port that takes it, and done here in software for one that does not.
//!
//! Every field comes from a guest: `csum_start` beyond the frame was DPDK's
//! CVE-2024-11614. Offsets are checked against the frame's length on receive,
//! and segmentation reads the headers from the switch's private copy.

use crate::mbuf::{Batch, Mbuf, PoolCache};

pub const NET_HDR_F_NEEDS_CSUM: u8 = 1;
pub const NET_HDR_GSO_NONE: u8 = 0;
pub const NET_HDR_GSO_TCPV4: u8 = 1;
pub const NET_HDR_GSO_TCPV6: u8 = 4;
/// Largest frame a guest may hand over for segmentation: a 64 KiB IP packet
/// behind Ethernet and two VLAN tags.
pub const MAX_GSO_FRAME: usize = 65535 + 14 + 8;
/// Smallest segment size a sender may ask for (Linux's TCP_MIN_MSS): a
/// smaller one would have the switch cut a 64 KiB frame into thousands.
pub const MIN_GSO_SIZE: u16 = 88;

/// What the sender of a frame left to the switch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// Complete the checksum: sum bytes `[csum_start, len)` and store it at
    /// `csum_start + csum_offset` (the sender put the pseudo-header sum there).
    pub needs_csum: bool,
    pub gso: Gso,
    pub csum_start: u16,
    pub csum_offset: u16,
    /// TCP payload bytes per segment (GSO only).
    pub gso_size: u16,
}

#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gso {
    #[default]
    None,
    Tcp4,
    Tcp6,
}

/// Which offloads a peer takes (or may send): negotiated virtio features,
/// or nothing for drivers without them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadCaps {
    pub csum: bool,
    pub tso4: bool,
    pub tso6: bool,
}

impl OffloadCaps {
    /// Whether a frame with `o` may go to this peer as it is.
    #[inline]
    pub fn covers(&self, o: &Offload) -> bool {
        (!o.needs_csum || self.csum)
            && match o.gso {
                Gso::None => true,
                Gso::Tcp4 => self.tso4,
                Gso::Tcp6 => self.tso6,
            }
    }
}

/// Why a sender's header was refused (all counted as `invalid_offload`).
#[derive(Debug, PartialEq, Eq)]
pub struct BadOffload;

impl Offload {
    pub fn is_none(&self) -> bool {
        !self.needs_csum && self.gso == Gso::None
    }

    /// Reads the first 10 bytes of a virtio-net header a peer sent, allowing
    /// only what was negotiated (`caps`). Lengths are checked by [`Offload::fits`].
    pub fn from_virtio(h: &[u8], caps: OffloadCaps) -> Result<Offload, BadOffload> {
        let (flags, gso_type) = (h[0], h[1]);
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let mut o = Offload::default();
        if flags & NET_HDR_F_NEEDS_CSUM != 0 {
            if !caps.csum {
                return Err(BadOffload);
            }
            o.needs_csum = true;
            o.csum_start = u16_at(6);
            o.csum_offset = u16_at(8);
        }
        o.gso = match gso_type {
            NET_HDR_GSO_NONE => Gso::None,
            NET_HDR_GSO_TCPV4 if caps.tso4 => Gso::Tcp4,
            NET_HDR_GSO_TCPV6 if caps.tso6 => Gso::Tcp6,
            // UDP, ECN and anything else were not offered.
            _ => return Err(BadOffload),
        };
        if o.gso != Gso::None {
            o.gso_size = u16_at(4);
            // Segmentation also fills in every segment's checksum.
            if o.gso_size < MIN_GSO_SIZE || !o.needs_csum {
                return Err(BadOffload);
            }
        }
        Ok(o)
    }

    /// Whether the offsets lie inside a frame of `len` bytes (Ethernet
    /// header first, the checksum field whole): CVE-2024-11614.
    pub fn fits(&self, len: usize) -> bool {
        !self.needs_csum
            || (self.csum_start as usize >= 14
                && self.csum_start as usize + self.csum_offset as usize + 2 <= len)
    }

    /// The first 10 bytes of a virtio-net header for a peer that takes this
    /// frame as it is (`hdr_len`: its headers, for GSO).
    pub fn to_virtio(&self, hdr_len: u16) -> [u8; 10] {
        let mut h = [0u8; 10];
        if self.needs_csum {
            h[0] = NET_HDR_F_NEEDS_CSUM;
            h[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
            h[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        }
        h[1] = match self.gso {
            Gso::None => NET_HDR_GSO_NONE,
            Gso::Tcp4 => NET_HDR_GSO_TCPV4,
            Gso::Tcp6 => NET_HDR_GSO_TCPV6,
        };
        if self.gso != Gso::None {
            h[2..4].copy_from_slice(&hdr_len.to_le_bytes());
            h[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        }
        h
    }
}

/// A 16-bit ones' complement sum, fed in pieces of any length (a piece may
/// end in the middle of a 16-bit word).
#[derive(Clone, Copy, Default)]
pub struct Csum {
    acc: u64,
    odd: bool,
}

impl Csum {
    pub fn add(&mut self, mut b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if self.odd {
            self.acc += b[0] as u64;
            b = &b[1..];
            self.odd = false;
        }
        let mut words = b.chunks_exact(4);
        for w in &mut words {
            self.acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
        }
        let rest = words.remainder();
        let mut i = 0;
        while i + 1 < rest.len() {
            self.acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
            i += 2;
        }
        if i < rest.len() {
            self.acc += (rest[i] as u64) << 8;
            self.odd = true;
        }
    }

    pub fn add_u16(&mut self, v: u16) {
        self.add(&v.to_be_bytes());
    }

    pub fn fold(&self) -> u16 {
        let mut s = self.acc;
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }
}

/// Sums frame bytes `[from, len)` of `m` (room and guest tail), through a
/// stack buffer (guest memory is never borrowed as a slice).
fn sum_frame(m: &Mbuf, from: usize, c: &mut Csum) {
    let head = m.data();
    if from < head.len() {
        c.add(&head[from..]);
    }
    let mut at = from.max(head.len());
    let mut buf = [0u8; 512];
    while at < m.len() {
        let n = (m.len() - at).min(buf.len());
        m.copy_out(at, &mut buf[..n]);
        c.add(&buf[..n]);
        at += n;
    }
}

/// Completes the checksum a sender left (`needs_csum`), in the buffer's room
/// (a field past the room, behind long extension headers, brings the tail in
/// first). False when the offsets do not fit or the frame cannot be brought in.
pub fn complete_csum(m: &mut Mbuf) -> bool {
    let o = m.offload();
    if !o.needs_csum {
        return true;
    }
    let (start, at) = (
        o.csum_start as usize,
        o.csum_start as usize + o.csum_offset as usize,
    );
    if !o.fits(m.len()) || (at + 2 > m.head_len() && !m.take_tail_in()) {
        return false;
    }
    let mut c = Csum::default();
    sum_frame(m, start, &mut c);
    let mut v = !c.fold();
    // UDP says "no checksum" with 0: a computed 0 is sent as 0xffff (Linux's
    // CSUM_MANGLED_0).
    if v == 0 && o.csum_offset == 6 {
        v = 0xffff;
    }
    m.data_mut()[at..at + 2].copy_from_slice(&v.to_be_bytes());
    m.set_offload(Offload {
        needs_csum: false,
        ..o
    });
    true
}

/// The headers of a TCP frame, found in the switch's private copy.
#[derive(Clone, Copy, Debug)]
pub struct TcpFrame {
    pub l3: usize,
    pub l4: usize,
    /// Ethernet through TCP options: what every segment repeats.
    pub hdrs: usize,
    pub v6: bool,
}

impl TcpFrame {
    /// Ethernet (up to two VLAN tags), IPv4 without fragments or IPv6
    /// without extension headers, then TCP, all inside `head`.
    pub fn parse(head: &[u8]) -> Option<TcpFrame> {
        let mut l3 = 12;
        let mut ethertype = u16::from_be_bytes([*head.get(12)?, *head.get(13)?]);
        for _ in 0..2 {
            if ethertype == 0x8100 || ethertype == 0x88a8 {
                l3 += 4;
                ethertype = u16::from_be_bytes([*head.get(l3)?, *head.get(l3 + 1)?]);
            }
        }
        l3 += 2;
        let (l4, v6) = match ethertype {
            0x0800 => {
                let vihl = *head.get(l3)?;
                let ihl = (vihl & 0x0f) as usize * 4;
                // Version 4, TCP, and not a fragment (MF or an offset).
                let frag = u16::from_be_bytes([*head.get(l3 + 6)?, *head.get(l3 + 7)?]);
                if vihl >> 4 != 4 || ihl < 20 || *head.get(l3 + 9)? != 6 || frag & 0x3fff != 0 {
                    return None;
                }
                (l3 + ihl, false)
            }
            0x86dd => {
                if *head.get(l3)? >> 4 != 6 || *head.get(l3 + 6)? != 6 {
                    return None;
                }
                (l3 + 40, true)
            }
            _ => return None,
        };
        let doff = (*head.get(l4 + 12)? >> 4) as usize * 4;
        if doff < 20 || l4 + doff > head.len() {
            return None;
        }
        Some(TcpFrame {
            l3,
            l4,
            hdrs: l4 + doff,
            v6,
        })
    }
}

/// Splits a GSO frame into frames of at most `gso_size` TCP payload bytes,
/// each with its own lengths, IPv4 id and checksum, sequence number, flags and
/// TCP checksum (no offload left), into `out` in order: segments `from..`
/// until `out` is full or the pool is dry. Returns (next segment, segments in
/// all); None when the headers are not a TCP frame the switch can split.
pub fn segment(
    m: &Mbuf,
    from: usize,
    cache: &mut PoolCache,
    out: &mut Batch,
) -> Option<(usize, usize)> {
    let o = m.offload();
    let t = TcpFrame::parse(m.data())?;
    let mss = o.gso_size as usize;
    let payload = m.len().checked_sub(t.hdrs)?;
    if mss == 0 || payload == 0 {
        return None;
    }
    let head = &m.data()[..t.hdrs];
    let n = payload.div_ceil(mss);
    let seq0 = u32::from_be_bytes(head[t.l4 + 4..t.l4 + 8].try_into().expect("4 bytes"));
    let id0 = u16::from_be_bytes([head[t.l3 + 4], head[t.l3 + 5]]);
    let flags0 = head[t.l4 + 13];
    for i in from..n {
        if out.is_full() {
            return Some((i, n));
        }
        let Some(mut s) = cache.alloc() else {
            return Some((i, n));
        };
        if s.capacity() < t.hdrs + mss {
            cache.free(s);
            return None;
        }
        let off = i * mss;
        let len = mss.min(payload - off);
        s.set_len(t.hdrs + len);
        let f = s.data_mut();
        f[..t.hdrs].copy_from_slice(head);
        m.copy_out(t.hdrs + off, &mut f[t.hdrs..]);
        let l4_len = (t.hdrs - t.l4 + len) as u16;
        if t.v6 {
            f[t.l3 + 4..t.l3 + 6].copy_from_slice(&l4_len.to_be_bytes());
        } else {
            let total = (t.l4 - t.l3) as u16 + l4_len;
            f[t.l3 + 2..t.l3 + 4].copy_from_slice(&total.to_be_bytes());
            f[t.l3 + 4..t.l3 + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            f[t.l3 + 10..t.l3 + 12].fill(0);
            let mut c = Csum::default();
            c.add(&f[t.l3..t.l4]);
            f[t.l3 + 10..t.l3 + 12].copy_from_slice(&(!c.fold()).to_be_bytes());
        }
        f[t.l4 + 4..t.l4 + 8].copy_from_slice(&seq0.wrapping_add(off as u32).to_be_bytes());
        let mut flags = flags0;
        if i + 1 < n {
            flags &= !(0x01 | 0x08); // FIN, PSH: the last segment's
        }
        if i > 0 {
            flags &= !0x80; // CWR: the first's
        }
        f[t.l4 + 13] = flags;
        f[t.l4 + 16..t.l4 + 18].fill(0);
        let mut c = Csum::default();
        if t.v6 {
            c.add(&f[t.l3 + 8..t.l3 + 40]);
            c.add(&(l4_len as u32).to_be_bytes());
            c.add(&[0, 0, 0, 6]);
        } else {
            c.add(&f[t.l3 + 12..t.l3 + 20]);
            c.add(&[0, 6]);
            c.add_u16(l4_len);
        }
        c.add(&f[t.l4..]);
        f[t.l4 + 16..t.l4 + 18].copy_from_slice(&(!c.fold()).to_be_bytes());
        let _ = out.push(s);
    }
    Some((n, n))
}

#[cfg(test)]
mod tests;
