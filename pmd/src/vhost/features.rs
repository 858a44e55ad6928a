//! Feature bits we offer, and their names for `show`.

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};

pub const VIRTIO_NET_F_CSUM: u32 = 0;
pub const VIRTIO_NET_F_GUEST_CSUM: u32 = 1;
pub const VIRTIO_NET_F_MAC: u32 = 5;
pub const VIRTIO_NET_F_GUEST_TSO4: u32 = 7;
pub const VIRTIO_NET_F_GUEST_TSO6: u32 = 8;
pub const VIRTIO_NET_F_HOST_TSO4: u32 = 11;
pub const VIRTIO_NET_F_HOST_TSO6: u32 = 12;
pub const VIRTIO_NET_F_MRG_RXBUF: u32 = 15;
pub const VIRTIO_NET_F_STATUS: u32 = 16;
pub const VIRTIO_NET_F_MQ: u32 = 22;
pub const VIRTIO_RING_F_INDIRECT_DESC: u32 = 28;
pub const VIRTIO_RING_F_EVENT_IDX: u32 = 29;
pub const VHOST_USER_F_PROTOCOL_FEATURES: u32 = 30;
pub const VIRTIO_F_VERSION_1: u32 = 32;

const NAMES: &[(u32, &str)] = &[
    (VIRTIO_NET_F_CSUM, "CSUM"),
    (VIRTIO_NET_F_GUEST_CSUM, "GUEST_CSUM"),
    (VIRTIO_NET_F_MAC, "MAC"),
    (VIRTIO_NET_F_GUEST_TSO4, "GUEST_TSO4"),
    (VIRTIO_NET_F_GUEST_TSO6, "GUEST_TSO6"),
    (VIRTIO_NET_F_HOST_TSO4, "HOST_TSO4"),
    (VIRTIO_NET_F_HOST_TSO6, "HOST_TSO6"),
    (VIRTIO_NET_F_MRG_RXBUF, "MRG_RXBUF"),
    (VIRTIO_NET_F_STATUS, "STATUS"),
    (VIRTIO_NET_F_MQ, "MQ"),
    (VIRTIO_RING_F_INDIRECT_DESC, "INDIRECT_DESC"),
    (VIRTIO_RING_F_EVENT_IDX, "EVENT_IDX"),
    (VHOST_USER_F_PROTOCOL_FEATURES, "PROTOCOL_FEATURES"),
    (VIRTIO_F_VERSION_1, "VERSION_1"),
];

pub fn bit(b: u32) -> u64 {
    1u64 << b
}

/// Checksum and segmentation offloads, both ways (no ECN, no UFO: the
/// switch would have to carry them through segmentation too).
pub const OFFLOADS: &[u32] = &[
    VIRTIO_NET_F_CSUM,
    VIRTIO_NET_F_GUEST_CSUM,
    VIRTIO_NET_F_HOST_TSO4,
    VIRTIO_NET_F_HOST_TSO6,
    VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6,
];

/// The virtio features a vhost-user port offers (`offloads`: the port's
/// config lets the guest hand checksums and large segments to the switch).
pub fn offered(queue_pairs: u16, offloads: bool) -> u64 {
    let mut f = bit(VIRTIO_F_VERSION_1)
        | bit(VIRTIO_NET_F_MRG_RXBUF)
        | bit(VIRTIO_RING_F_EVENT_IDX)
        | bit(VIRTIO_RING_F_INDIRECT_DESC)
        | bit(VIRTIO_NET_F_MAC)
        | bit(VIRTIO_NET_F_STATUS)
        | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
    if queue_pairs > 1 {
        f |= bit(VIRTIO_NET_F_MQ);
    }
    if offloads {
        f |= OFFLOADS.iter().map(|&b| bit(b)).fold(0, |a, b| a | b);
    }
    f
}

/// What a guest that acked `f` may ask of us (CSUM, HOST_TSO4/6) and what we
/// may ask of it (GUEST_CSUM, GUEST_TSO4/6). TSO without the checksum
/// feature means nothing (virtio requires both).
pub fn offload_caps(f: u64) -> (crate::offload::OffloadCaps, crate::offload::OffloadCaps) {
    let has = |b: u32| f & bit(b) != 0;
    let caps = |csum: u32, tso4: u32, tso6: u32| crate::offload::OffloadCaps {
        csum: has(csum),
        tso4: has(csum) && has(tso4),
        tso6: has(csum) && has(tso6),
    };
    (
        caps(
            VIRTIO_NET_F_CSUM,
            VIRTIO_NET_F_HOST_TSO4,
            VIRTIO_NET_F_HOST_TSO6,
        ),
        caps(
            VIRTIO_NET_F_GUEST_CSUM,
            VIRTIO_NET_F_GUEST_TSO4,
            VIRTIO_NET_F_GUEST_TSO6,
        ),
    )
}

/// vhost-user protocol features. Not STATUS: the vhost crate has no handler
/// for SET_STATUS and DPDK would then see the connection drop.
pub fn offered_protocol() -> VhostUserProtocolFeatures {
    VhostUserProtocolFeatures::MQ
        | VhostUserProtocolFeatures::REPLY_ACK
        | VhostUserProtocolFeatures::CONFIG
}

/// Names of the known bits set in `f`, low bit first.
pub fn names(f: u64) -> Vec<&'static str> {
    NAMES
        .iter()
        .filter(|(b, _)| f & bit(*b) != 0)
        .map(|(_, n)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_features_have_names() {
        let n = names(offered(1, true));
        for want in [
            "VERSION_1",
            "MRG_RXBUF",
            "EVENT_IDX",
            "INDIRECT_DESC",
            "MAC",
            "STATUS",
        ] {
            assert!(n.contains(&want), "{want} missing from {n:?}");
        }
        assert!(!n.contains(&"MQ"));
        assert!(names(offered(4, true)).contains(&"MQ"));
        for o in [
            "CSUM",
            "GUEST_CSUM",
            "HOST_TSO4",
            "HOST_TSO6",
            "GUEST_TSO4",
            "GUEST_TSO6",
        ] {
            assert!(n.contains(&o), "{o} offered");
            assert!(!names(offered(1, false)).contains(&o), "{o} off by config");
        }
    }
}
