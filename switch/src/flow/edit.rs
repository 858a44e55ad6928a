//! Header edits the actions make on a packet in place: 802.1Q push, pop and
//! rewrite, MAC rewrite. Each checks the frame first; a frame too short for
//! the edit is left alone and the edit reports false.

use super::key::ETH_TYPE_VLAN;
use pmd::Mbuf;

/// The outer 802.1Q TCI, if the frame has one.
#[inline]
pub fn vlan_tci(frame: &[u8]) -> Option<u16> {
    if frame.len() >= 18 && frame[12..14] == ETH_TYPE_VLAN.to_be_bytes() {
        Some(u16::from_be_bytes([frame[14], frame[15]]))
    } else {
        None
    }
}

/// Inserts a tag after the MACs (the buffer's headroom takes the 4 bytes).
pub fn push_vlan(m: &mut Mbuf, tci: u16) -> bool {
    if m.len() < 12 || !m.prepend(4) {
        return false;
    }
    let f = m.data_mut();
    f.copy_within(4..16, 0);
    f[12..14].copy_from_slice(&ETH_TYPE_VLAN.to_be_bytes());
    f[14..16].copy_from_slice(&tci.to_be_bytes());
    true
}

/// Removes the outer tag; false when there is none.
pub fn pop_vlan(m: &mut Mbuf) -> bool {
    if vlan_tci(m.data()).is_none() {
        return false;
    }
    m.data_mut().copy_within(0..12, 4);
    m.adj(4)
}

/// Sets the outer tag's TCI, pushing a tag when there is none.
pub fn set_tci(m: &mut Mbuf, tci: u16) -> bool {
    if vlan_tci(m.data()).is_some() {
        m.data_mut()[14..16].copy_from_slice(&tci.to_be_bytes());
        true
    } else {
        push_vlan(m, tci)
    }
}

/// Makes the frame leave untagged (None) or with VID `vid`, keeping its
/// PCP; a tag that would carry neither VID nor PCP is left off.
#[inline]
pub fn retag(m: &mut Mbuf, vid: Option<u16>) -> bool {
    match (vlan_tci(m.data()), vid) {
        (None, None) | (None, Some(0)) => true,
        (Some(_), None) => pop_vlan(m),
        (Some(t), Some(0)) if t & 0xe000 == 0 => pop_vlan(m),
        (Some(t), Some(v)) if t & 0x0fff == v => true,
        (Some(t), Some(v)) => set_tci(m, (t & 0xf000) | v),
        (None, Some(v)) => push_vlan(m, v),
    }
}

pub fn set_mac(m: &mut Mbuf, dst: bool, mac: &[u8; 6]) -> bool {
    if m.len() < 12 {
        return false;
    }
    let off = if dst { 0 } else { 6 };
    m.data_mut()[off..off + 6].copy_from_slice(mac);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmd::{Pool, PoolCache};

    fn frame(c: &mut PoolCache, tagged: Option<u16>) -> Mbuf {
        let mut f: Vec<u8> = (1..=12).collect();
        if let Some(t) = tagged {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00, 0xaa, 0xbb]);
        let mut m = c.alloc().unwrap();
        m.fill(&f);
        m
    }

    #[test]
    fn push_pop_rewrite() {
        let mut c = PoolCache::new(Pool::new(64, false).unwrap());
        let mut m = frame(&mut c, None);
        assert!(push_vlan(&mut m, 0x600a));
        assert_eq!(m.data(), frame(&mut c, Some(0x600a)).data());
        assert!(retag(&mut m, Some(20)));
        assert_eq!(vlan_tci(m.data()), Some(0x6014), "PCP kept");
        assert!(retag(&mut m, Some(0)));
        assert_eq!(vlan_tci(m.data()), Some(0x6000), "a priority tag stays");
        assert!(retag(&mut m, None));
        assert_eq!(m.data(), frame(&mut c, None).data());
        assert!(retag(&mut m, Some(0)));
        assert_eq!(vlan_tci(m.data()), None, "no VID, no PCP: no tag");
        assert!(push_vlan(&mut m, 0));
        assert!(retag(&mut m, Some(0)));
        assert_eq!(
            vlan_tci(m.data()),
            None,
            "a tag of VID 0 and PCP 0 is dropped"
        );
        assert!(!pop_vlan(&mut m), "nothing to pop");
        assert!(set_tci(&mut m, 7));
        assert_eq!(vlan_tci(m.data()), Some(7));
        assert!(set_mac(&mut m, true, &[9; 6]));
        assert_eq!(&m.data()[..6], &[9; 6]);
        let mut short = c.alloc().unwrap();
        short.fill(&[1, 2, 3]);
        assert!(!push_vlan(&mut short, 1) && !set_mac(&mut short, false, &[0; 6]));
        assert_eq!(short.data(), &[1, 2, 3]);
    }
}
