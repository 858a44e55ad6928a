//! Reads the L2 key of a frame: destination, source, VLAN.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Key {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    /// 802.1Q VLAN ID, 0 when untagged.
    pub vlan: u16,
}

impl L2Key {
    #[inline]
    pub fn parse(frame: &[u8]) -> Option<L2Key> {
        if frame.len() < 14 {
            return None;
        }
        let dst: [u8; 6] = frame[0..6].try_into().ok()?;
        let src: [u8; 6] = frame[6..12].try_into().ok()?;
        let vlan = if frame[12] == 0x81 && frame[13] == 0x00 && frame.len() >= 18 {
            u16::from_be_bytes([frame[14], frame[15]]) & 0x0fff
        } else {
            0
        };
        Some(L2Key { dst, src, vlan })
    }

    /// Broadcast and multicast share the group bit.
    #[inline]
    pub fn dst_is_group(&self) -> bool {
        self.dst[0] & 1 != 0
    }

    #[inline]
    pub fn src_is_group(&self) -> bool {
        self.src[0] & 1 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_untagged_and_tagged() {
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x08, 0x00]);
        let k = L2Key::parse(&f).unwrap();
        assert!(k.dst_is_group());
        assert_eq!(k.vlan, 0);
        let mut t = f[..12].to_vec();
        t.extend_from_slice(&[0x81, 0x00, 0x20, 0x05, 0x08, 0x00]);
        assert_eq!(L2Key::parse(&t).unwrap().vlan, 5);
        assert!(L2Key::parse(&f[..13]).is_none());
    }
}
