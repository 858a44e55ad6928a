//! ARP for IPv4 over Ethernet (RFC 826) as bytes: what the switch needs to
//! own its tunnel address on an underlay (answer requests for it) and to
//! find each remote endpoint's MAC (ask, and read replies).

use super::vxlan::ETH_P_ARP;

pub const REQUEST: u16 = 1;
pub const REPLY: u16 = 2;
/// Ethernet's minimum frame (without FCS): what we send.
const FRAME_LEN: usize = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_ip: [u8; 4],
}

/// An untagged Ethernet/IPv4 ARP packet; None for anything else.
pub fn parse(f: &[u8]) -> Option<Arp> {
    if f.len() < 42 || f[12..14] != ETH_P_ARP.to_be_bytes() {
        return None;
    }
    let a = &f[14..42];
    // Hardware Ethernet (1), protocol IPv4, lengths 6 and 4.
    if a[0..6] != [0, 1, 8, 0, 6, 4] {
        return None;
    }
    Some(Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sender_mac: a[8..14].try_into().ok()?,
        sender_ip: a[14..18].try_into().ok()?,
        target_ip: a[24..28].try_into().ok()?,
    })
}

fn frame(
    op: u16,
    dst: [u8; 6],
    src: [u8; 6],
    src_ip: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[22..28].copy_from_slice(&src);
    f[28..32].copy_from_slice(&src_ip);
    f[32..38].copy_from_slice(&tha);
    f[38..42].copy_from_slice(&tpa);
    f
}

/// "Who has `target`? Tell `ip`" (broadcast).
pub fn request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> [u8; FRAME_LEN] {
    frame(REQUEST, [0xff; 6], mac, ip, [0; 6], target)
}

/// The answer to `req`: `ip` is at `mac`, sent to the asker.
pub fn reply(req: &Arp, mac: [u8; 6], ip: [u8; 4]) -> [u8; FRAME_LEN] {
    frame(
        REPLY,
        req.sender_mac,
        mac,
        ip,
        req.sender_mac,
        req.sender_ip,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_parses_and_its_reply_answers_the_asker() {
        let me = [2, 0, 0, 0, 0, 1];
        let q = request(me, [10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(&q[0..6], &[0xff; 6]);
        let a = parse(&q).unwrap();
        assert_eq!(
            a,
            Arp {
                op: REQUEST,
                sender_mac: me,
                sender_ip: [10, 0, 0, 1],
                target_ip: [10, 0, 0, 2]
            }
        );
        let them = [2, 0, 0, 0, 0, 2];
        let r = reply(&a, them, [10, 0, 0, 2]);
        assert_eq!(&r[0..6], &me, "unicast to the asker");
        assert_eq!(&r[6..12], &them);
        let b = parse(&r).unwrap();
        assert_eq!(
            (b.op, b.sender_mac, b.sender_ip, b.target_ip),
            (REPLY, them, [10, 0, 0, 2], [10, 0, 0, 1])
        );
        assert_eq!(&r[32..38], &me, "target hardware address");
    }

    #[test]
    fn other_frames_are_not_arp() {
        let q = request([2; 6], [1; 4], [2; 4]);
        assert!(parse(&q[..41]).is_none());
        let mut v = q;
        v[18] = 16; // hardware length
        assert!(parse(&v).is_none());
        let mut ip = q;
        ip[12..14].copy_from_slice(&[8, 0]);
        assert!(parse(&ip).is_none());
    }
}
