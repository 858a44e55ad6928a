//! Feature bits we offer, and their names for `show`.

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};

pub const VIRTIO_NET_F_MAC: u32 = 5;
pub const VIRTIO_NET_F_MRG_RXBUF: u32 = 15;
pub const VIRTIO_NET_F_STATUS: u32 = 16;
pub const VIRTIO_NET_F_MQ: u32 = 22;
pub const VIRTIO_RING_F_INDIRECT_DESC: u32 = 28;
pub const VIRTIO_RING_F_EVENT_IDX: u32 = 29;
pub const VHOST_USER_F_PROTOCOL_FEATURES: u32 = 30;
pub const VIRTIO_F_VERSION_1: u32 = 32;

const NAMES: &[(u32, &str)] = &[
    (VIRTIO_NET_F_MAC, "MAC"),
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

/// The virtio features a vhost-user port offers.
pub fn offered(queue_pairs: u16) -> u64 {
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
    f
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
        let n = names(offered(1));
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
        assert!(names(offered(4)).contains(&"MQ"));
    }
}
