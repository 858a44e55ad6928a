//! Match fields as OXM TLVs (class OFPXMC_OPENFLOW_BASIC) and the
//! `ofp_match` that carries them. Values are kept as plain numbers of the
//! field's width; what the switch can match on is decided by its mapping,
//! not here.

use crate::error::*;
use crate::wire::{Put, Reader};

pub const CLASS_BASIC: u16 = 0x8000;
const MATCH_TYPE_OXM: u16 = 1;

pub const IN_PORT: u8 = 0;
pub const IN_PHY_PORT: u8 = 1;
pub const METADATA: u8 = 2;
pub const ETH_DST: u8 = 3;
pub const ETH_SRC: u8 = 4;
pub const ETH_TYPE: u8 = 5;
pub const VLAN_VID: u8 = 6;
pub const VLAN_PCP: u8 = 7;
pub const IP_DSCP: u8 = 8;
pub const IP_ECN: u8 = 9;
pub const IP_PROTO: u8 = 10;
pub const IPV4_SRC: u8 = 11;
pub const IPV4_DST: u8 = 12;
pub const TCP_SRC: u8 = 13;
pub const TCP_DST: u8 = 14;
pub const UDP_SRC: u8 = 15;
pub const UDP_DST: u8 = 16;
pub const ICMPV4_TYPE: u8 = 19;
pub const ICMPV4_CODE: u8 = 20;
pub const ARP_OP: u8 = 21;
pub const ARP_SPA: u8 = 22;
pub const ARP_TPA: u8 = 23;
pub const ARP_SHA: u8 = 24;
pub const ARP_THA: u8 = 25;
/// Highest basic field this codec knows (IPV6_EXTHDR).
const LAST_FIELD: u8 = 39;

/// OFPVID_PRESENT: the VLAN_VID bit that says "a tag is present".
pub const VID_PRESENT: u16 = 0x1000;

/// Width in bytes of each basic field, by field number.
pub fn field_len(field: u8) -> Option<usize> {
    Some(match field {
        IN_PORT | IN_PHY_PORT => 4,
        METADATA => 8,
        ETH_DST | ETH_SRC => 6,
        ETH_TYPE => 2,
        VLAN_VID => 2,
        VLAN_PCP | IP_DSCP | IP_ECN | IP_PROTO => 1,
        IPV4_SRC | IPV4_DST => 4,
        13..=18 => 2, // TCP/UDP/SCTP ports
        ICMPV4_TYPE | ICMPV4_CODE => 1,
        ARP_OP => 2,
        ARP_SPA | ARP_TPA => 4,
        ARP_SHA | ARP_THA => 6,
        26 | 27 => 16, // IPv6 addresses
        28 => 4,       // IPv6 flow label
        29 | 30 => 1,  // ICMPv6 type, code
        31 => 16,      // ND target
        32 | 33 => 6,  // ND SLL/TLL
        34 => 4,       // MPLS label
        35 | 36 => 1,  // MPLS TC, BOS
        37 => 3,       // PBB I-SID
        38 => 8,       // tunnel id
        39 => 2,       // IPv6 extension header pseudo-field
        _ => return None,
    })
}

/// One match field: `value` (and `mask`, when present) in the field's width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oxm {
    pub field: u8,
    pub value: u128,
    pub mask: Option<u128>,
}

impl Oxm {
    pub fn exact(field: u8, value: u128) -> Oxm {
        Oxm {
            field,
            value,
            mask: None,
        }
    }

    /// The 32-bit OXM header (class, field, hasmask, length).
    pub fn header(field: u8, masked: bool) -> u32 {
        let len = field_len(field).unwrap_or(0) * if masked { 2 } else { 1 };
        (CLASS_BASIC as u32) << 16 | (field as u32) << 9 | (masked as u32) << 8 | len as u32
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Oxm, OfError> {
        r.scoped(OfError::new(BAD_MATCH, BMC_BAD_LEN), Oxm::decode_inner)
    }

    fn decode_inner(r: &mut Reader<'_>) -> Result<Oxm, OfError> {
        let bad = |c| OfError::new(BAD_MATCH, c);
        let h = r.u32()?;
        let class = (h >> 16) as u16;
        let field = (h >> 9 & 0x7f) as u8;
        let has_mask = h & 0x100 != 0;
        let len = (h & 0xff) as usize;
        if class != CLASS_BASIC || field > LAST_FIELD {
            return Err(bad(BMC_BAD_FIELD));
        }
        let width = field_len(field).ok_or(bad(BMC_BAD_FIELD))?;
        if len != width * if has_mask { 2 } else { 1 } {
            return Err(bad(BMC_BAD_LEN));
        }
        let value = be_uint(r.bytes(width)?);
        let mask = if has_mask {
            Some(be_uint(r.bytes(width)?))
        } else {
            None
        };
        Ok(Oxm { field, value, mask })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let width = field_len(self.field).unwrap_or(0);
        out.u32(Oxm::header(self.field, self.mask.is_some()));
        put_uint(out, self.value, width);
        if let Some(m) = self.mask {
            put_uint(out, m, width);
        }
    }

    /// Bytes this field takes on the wire.
    pub fn wire_len(&self) -> usize {
        4 + field_len(self.field).unwrap_or(0) * if self.mask.is_some() { 2 } else { 1 }
    }
}

fn be_uint(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |v, &x| v << 8 | x as u128)
}

fn put_uint(out: &mut Vec<u8>, v: u128, width: usize) {
    out.extend_from_slice(&v.to_be_bytes()[16 - width..]);
}

/// An `ofp_match` of type OXM: the fields in the order they came.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfMatch(pub Vec<Oxm>);

impl OfMatch {
    pub fn get(&self, field: u8) -> Option<&Oxm> {
        self.0.iter().find(|o| o.field == field)
    }

    /// Reads an `ofp_match` and its padding to 8 bytes.
    pub fn decode(r: &mut Reader<'_>) -> Result<OfMatch, OfError> {
        let bad = |c| OfError::new(BAD_MATCH, c);
        let mut body = r.scoped(bad(BMC_BAD_LEN), |r| {
            let ty = r.u16()?;
            let len = r.u16()? as usize;
            if ty != MATCH_TYPE_OXM {
                return Err(bad(BMC_BAD_TYPE));
            }
            if len < 4 {
                return Err(bad(BMC_BAD_LEN));
            }
            let body = r.sub(len - 4)?;
            r.skip(len.next_multiple_of(8) - len)?;
            Ok(body)
        })?;
        let mut fields: Vec<Oxm> = Vec::new();
        while !body.is_empty() {
            let o = Oxm::decode(&mut body)?;
            if fields.iter().any(|f| f.field == o.field) {
                return Err(bad(BMC_DUP_FIELD));
            }
            fields.push(o);
        }
        Ok(OfMatch(fields))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.u16(MATCH_TYPE_OXM);
        out.u16(0);
        for o in &self.0 {
            o.encode(out);
        }
        let len = out.len() - start;
        out.set_u16(start + 2, len as u16);
        out.pad8_from(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_round_trips_with_padding() {
        let m = OfMatch(vec![
            Oxm::exact(IN_PORT, 3),
            Oxm::exact(ETH_TYPE, 0x0800),
            Oxm {
                field: ETH_DST,
                value: 0x0100_0000_0000,
                mask: Some(0x0100_0000_0000),
            },
            Oxm::exact(VLAN_VID, (VID_PRESENT | 10) as u128),
        ]);
        let mut b = Vec::new();
        m.encode(&mut b);
        assert_eq!(b.len() % 8, 0);
        assert_eq!(
            u16::from_be_bytes([b[2], b[3]]) as usize,
            4 + 8 + 6 + 16 + 6
        );
        let mut r = Reader::new(&b);
        assert_eq!(OfMatch::decode(&mut r).unwrap(), m);
        assert!(r.is_empty());
    }

    #[test]
    fn bad_matches_name_their_fault() {
        let err = |b: &[u8]| OfMatch::decode(&mut Reader::new(b)).unwrap_err();
        // Type 0 (the 1.0-style standard match).
        assert_eq!(
            err(&[0, 0, 0, 4, 0, 0, 0, 0]),
            OfError::new(BAD_MATCH, BMC_BAD_TYPE)
        );
        // Length beyond the bytes present.
        assert_eq!(
            err(&[0, 1, 0, 40, 0, 0, 0, 0]),
            OfError::new(BAD_MATCH, BMC_BAD_LEN)
        );
        // IN_PORT with a 2-byte payload.
        assert_eq!(
            err(&[0, 1, 0, 10, 0x80, 0, 0, 2, 0, 1, 0, 0]).code,
            BMC_BAD_LEN
        );
        // An experimenter class.
        assert_eq!(
            err(&[0, 1, 0, 12, 0xff, 0xff, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]).code,
            BMC_BAD_FIELD
        );
        // The same field twice.
        let mut b = Vec::new();
        OfMatch(vec![Oxm::exact(IN_PORT, 1), Oxm::exact(IN_PORT, 2)]).encode(&mut b);
        assert_eq!(err(&b).code, BMC_DUP_FIELD);
    }
}
