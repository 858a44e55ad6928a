//! The flow key: the fields rules match on, extracted from a frame once and
//! packed into four words so that masking, comparing and hashing are a few
//! word operations (OVS's miniflow idea, fixed-size).
//!
//! Field meanings follow ovs-ofctl(8): `vlan_tci` is 0 for an untagged frame
//! and `tci | 0x1000` (the CFI bit marks "present") for a tagged one; for ARP
//! `nw_src`/`nw_dst` are the sender/target IPs and `nw_proto` the opcode; for
//! ICMP `tp_src`/`tp_dst` are type and code.

/// Words: 0 = dl_dst<<16 | in_port, 1 = dl_src<<16 | dl_type,
/// 2 = vlan_tci<<48 | nw_proto<<40 | table<<32 | tp_src<<16 | tp_dst,
/// 3 = nw_src<<32 | nw_dst. `table` is only set in cache keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub w: [u64; 4],
}

pub const ETH_TYPE_IP: u16 = 0x0800;
pub const ETH_TYPE_ARP: u16 = 0x0806;
pub const ETH_TYPE_VLAN: u16 = 0x8100;
/// The CFI bit of a TCI: OVS marks "a tag is present" with it.
pub const VLAN_CFI: u16 = 0x1000;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

#[inline]
fn mac48(m: &[u8]) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

#[inline]
fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn mac_bytes(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

impl FlowKey {
    /// Reads a frame received on `in_port`; None for a frame shorter than an
    /// Ethernet header. Truncated L3/L4 headers leave those fields zero.
    #[inline]
    pub fn extract(frame: &[u8], in_port: u16) -> Option<FlowKey> {
        if frame.len() < 14 {
            return None;
        }
        let mut k = FlowKey::default();
        let mut off = 12;
        let mut tci = 0u16;
        let mut ty = be16(frame, off);
        if ty == ETH_TYPE_VLAN && frame.len() >= 18 {
            tci = be16(frame, 14) | VLAN_CFI;
            off += 4;
            ty = be16(frame, off);
        }
        off += 2;
        k.w[0] = mac48(&frame[0..6]) << 16 | in_port as u64;
        k.w[1] = mac48(&frame[6..12]) << 16 | ty as u64;
        let l3 = &frame[off..];
        let (mut proto, mut tp_src, mut tp_dst, mut src, mut dst) = (0u8, 0u16, 0u16, 0u32, 0u32);
        // An IPv4 header that is not one (IHL < 5) gives no L3 fields, as in OVS.
        if ty == ETH_TYPE_IP && l3.len() >= 20 && l3[0] & 0x0f >= 5 {
            let ihl = (l3[0] & 0x0f) as usize * 4;
            proto = l3[9];
            src = be32(l3, 12);
            dst = be32(l3, 16);
            let later_fragment = be16(l3, 6) & 0x1fff != 0;
            if !later_fragment && l3.len() >= ihl + 4 {
                let l4 = &l3[ihl..];
                match proto {
                    IPPROTO_TCP | IPPROTO_UDP => (tp_src, tp_dst) = (be16(l4, 0), be16(l4, 2)),
                    IPPROTO_ICMP => (tp_src, tp_dst) = (l4[0] as u16, l4[1] as u16),
                    _ => {}
                }
            }
        } else if ty == ETH_TYPE_ARP
            && l3.len() >= 28
            && be16(l3, 0) == 1
            && be16(l3, 2) == ETH_TYPE_IP
        {
            // Opcodes that do not fit nw_proto's 8 bits are left out (OVS too).
            proto = u8::try_from(be16(l3, 6)).unwrap_or(0);
            src = be32(l3, 14);
            dst = be32(l3, 24);
        }
        k.w[2] = (tci as u64) << 48 | (proto as u64) << 40 | (tp_src as u64) << 16 | tp_dst as u64;
        k.w[3] = (src as u64) << 32 | dst as u64;
        Some(k)
    }

    #[inline]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        FlowKey {
            w: [
                self.w[0] & mask.w[0],
                self.w[1] & mask.w[1],
                self.w[2] & mask.w[2],
                self.w[3] & mask.w[3],
            ],
        }
    }

    #[inline]
    pub fn is_zero(&self) -> bool {
        self.w == [0; 4]
    }

    /// A hash of all four words: multiply-rotate (as FxHash) per word, then
    /// murmur3's 64-bit finalizer so that every input bit reaches the low bits
    /// the cache and the hash tables index with.
    #[inline]
    pub fn hash(&self) -> u64 {
        let mut h = 0u64;
        for w in self.w {
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    /// The key with `table` folded in (exact-match cache keys).
    #[inline]
    pub fn with_table(mut self, table: u8) -> FlowKey {
        self.w[2] = (self.w[2] & !(0xff << 32)) | (table as u64) << 32;
        self
    }

    pub fn in_port(&self) -> u16 {
        self.w[0] as u16
    }
    pub fn dl_dst(&self) -> [u8; 6] {
        mac_bytes(self.w[0] >> 16)
    }
    pub fn dl_src(&self) -> [u8; 6] {
        mac_bytes(self.w[1] >> 16)
    }
    pub fn dl_type(&self) -> u16 {
        self.w[1] as u16
    }
    pub fn vlan_tci(&self) -> u16 {
        (self.w[2] >> 48) as u16
    }
    pub fn nw_proto(&self) -> u8 {
        (self.w[2] >> 40) as u8
    }
    pub fn tp_src(&self) -> u16 {
        (self.w[2] >> 16) as u16
    }
    pub fn tp_dst(&self) -> u16 {
        self.w[2] as u16
    }
    pub fn nw_src(&self) -> u32 {
        (self.w[3] >> 32) as u32
    }
    pub fn nw_dst(&self) -> u32 {
        self.w[3] as u32
    }
}

/// One matchable field: where it sits in the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub word: usize,
    pub shift: u32,
    pub bits: u32,
}

impl Field {
    const fn at(word: usize, shift: u32, bits: u32) -> Field {
        Field { word, shift, bits }
    }

    pub const IN_PORT: Field = Field::at(0, 0, 16);
    pub const DL_DST: Field = Field::at(0, 16, 48);
    pub const DL_SRC: Field = Field::at(1, 16, 48);
    pub const DL_TYPE: Field = Field::at(1, 0, 16);
    pub const VLAN_TCI: Field = Field::at(2, 48, 16);
    pub const NW_PROTO: Field = Field::at(2, 40, 8);
    pub const TP_SRC: Field = Field::at(2, 16, 16);
    pub const TP_DST: Field = Field::at(2, 0, 16);
    pub const NW_SRC: Field = Field::at(3, 32, 32);
    pub const NW_DST: Field = Field::at(3, 0, 32);

    fn ones(self) -> u64 {
        if self.bits == 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        }
    }

    pub fn get(self, k: &FlowKey) -> u64 {
        (k.w[self.word] >> self.shift) & self.ones()
    }

    pub fn set(self, k: &mut FlowKey, v: u64) {
        let m = self.ones() << self.shift;
        k.w[self.word] = (k.w[self.word] & !m) | ((v << self.shift) & m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn udp_frame(
        vlan: Option<u16>,
        src_ip: [u8; 4],
        dst_ip: [u8; 4],
        sport: u16,
        dport: u16,
    ) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        if let Some(t) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        ip.extend_from_slice(&src_ip);
        ip.extend_from_slice(&dst_ip);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        f
    }

    #[test]
    fn extracts_l2_l3_l4() {
        let f = udp_frame(Some(0x2005), [10, 0, 0, 1], [10, 0, 0, 2], 1234, 80);
        let k = FlowKey::extract(&f, 7).unwrap();
        assert_eq!(k.in_port(), 7);
        assert_eq!(k.dl_dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(k.dl_src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(k.dl_type(), ETH_TYPE_IP);
        assert_eq!(k.vlan_tci(), 0x2005 | VLAN_CFI);
        assert_eq!(k.nw_proto(), 17);
        assert_eq!(k.nw_src(), 0x0a00_0001);
        assert_eq!(k.nw_dst(), 0x0a00_0002);
        assert_eq!((k.tp_src(), k.tp_dst()), (1234, 80));
        let u = FlowKey::extract(&udp_frame(None, [1, 2, 3, 4], [5, 6, 7, 8], 1, 2), 1).unwrap();
        assert_eq!(u.vlan_tci(), 0);
        assert_eq!(Field::NW_SRC.get(&u), 0x0102_0304);
    }

    #[test]
    fn short_and_odd_frames_never_panic() {
        let f = udp_frame(Some(5), [10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        for n in 0..f.len() {
            let k = FlowKey::extract(&f[..n], 1);
            assert_eq!(k.is_some(), n >= 14);
        }
        // IHL below 5: no L3 fields; a later fragment: no L4 fields.
        let mut g = udp_frame(None, [1, 1, 1, 1], [2, 2, 2, 2], 9, 9);
        g[14] = 0x41;
        let gk = FlowKey::extract(&g, 1).unwrap();
        assert_eq!((gk.tp_src(), gk.nw_src(), gk.nw_proto()), (0, 0, 0));
        let mut h = udp_frame(None, [1, 1, 1, 1], [2, 2, 2, 2], 9, 9);
        h[14 + 7] = 8;
        assert_eq!(FlowKey::extract(&h, 1).unwrap().tp_dst(), 0);
    }

    #[test]
    fn table_and_fields_round_trip() {
        let mut k = FlowKey::default();
        Field::TP_DST.set(&mut k, 443);
        Field::DL_TYPE.set(&mut k, 0x0806);
        let t = k.with_table(9);
        assert_ne!(t, k);
        assert_eq!(t.tp_dst(), 443);
        assert_eq!(t.with_table(0), k);
        assert_ne!(k.hash(), t.hash());
    }

    /// Keys differing only in high bits of one field spread over cache slots.
    #[test]
    fn hash_low_bits_depend_on_every_field() {
        let mut slots = std::collections::HashSet::new();
        for i in 0..256u64 {
            let mut k = FlowKey::default();
            Field::NW_SRC.set(&mut k, i << 24 | 5);
            slots.insert(k.hash() & 8191);
        }
        assert!(slots.len() > 240, "{} distinct slots of 256", slots.len());
    }
}
