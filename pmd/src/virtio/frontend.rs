//! The vhost-user handshake from the driver's side, in QEMU's order:
//! owner, features, protocol features, queue count, memory table, then each
//! vring (size, addresses, base, call, kick) and finally enable.
//! Messages are framed by the `vhost` crate's `Frontend`.

use crate::vhost::features::{self as f, bit};
use std::os::fd::RawFd;
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::EventFd;

/// Which optional features the driver asks for (all on by default).
#[derive(Clone, Copy, Debug)]
pub struct FeatureWish {
    pub mrg_rxbuf: bool,
    pub event_idx: bool,
    pub indirect_desc: bool,
    /// Hand the backend checksums and large TCP segments to finish (CSUM,
    /// HOST_TSO4/6): a generator of offload traffic. Off by default.
    pub tx_offloads: bool,
}

impl Default for FeatureWish {
    fn default() -> Self {
        FeatureWish {
            mrg_rxbuf: true,
            event_idx: true,
            indirect_desc: true,
            tx_offloads: false,
        }
    }
}

/// One shared memory area: a memfd mapped at `addr` in this process. The
/// driver uses its own virtual addresses as "guest physical" ones, as DPDK's
/// virtio-user does.
#[derive(Clone, Copy, Debug)]
pub struct SharedArea {
    pub addr: u64,
    pub len: u64,
    pub fd: RawFd,
}

/// Addresses of one vring, in our address space.
#[derive(Clone, Copy, Debug)]
pub struct VringAddrs {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Negotiated {
    pub features: u64,
    pub protocol: u64,
    pub queue_pairs: u16,
}

impl Negotiated {
    pub fn has(&self, b: u32) -> bool {
        self.features & bit(b) != 0
    }
}

fn err(step: &str) -> impl Fn(vhost::Error) -> String + '_ {
    move |e| format!("{step}: {e}")
}

/// Negotiates features and queue count; no rings are touched yet.
pub fn negotiate(
    fe: &mut Frontend,
    want_pairs: u16,
    wish: FeatureWish,
) -> Result<Negotiated, String> {
    fe.set_owner().map_err(err("SET_OWNER"))?;
    let offered = fe.get_features().map_err(err("GET_FEATURES"))?;
    if offered & bit(f::VIRTIO_F_VERSION_1) == 0 {
        return Err("backend does not offer VIRTIO_F_VERSION_1".into());
    }
    let mut want = bit(f::VIRTIO_F_VERSION_1) | bit(f::VHOST_USER_F_PROTOCOL_FEATURES);
    if wish.mrg_rxbuf {
        want |= bit(f::VIRTIO_NET_F_MRG_RXBUF);
    }
    if wish.event_idx {
        want |= bit(f::VIRTIO_RING_F_EVENT_IDX);
    }
    if wish.indirect_desc {
        want |= bit(f::VIRTIO_RING_F_INDIRECT_DESC);
    }
    if wish.tx_offloads {
        for b in [
            f::VIRTIO_NET_F_CSUM,
            f::VIRTIO_NET_F_HOST_TSO4,
            f::VIRTIO_NET_F_HOST_TSO6,
        ] {
            want |= bit(b);
        }
    }
    if want_pairs > 1 {
        // MQ without CTRL_VQ, as DPDK's virtio-user: pairs are switched on
        // with SET_VRING_ENABLE, not through a control queue.
        want |= bit(f::VIRTIO_NET_F_MQ);
    }
    let features = offered & want;
    let mut neg = Negotiated {
        features,
        protocol: 0,
        queue_pairs: 1,
    };
    if features & bit(f::VHOST_USER_F_PROTOCOL_FEATURES) != 0 {
        let pf = fe
            .get_protocol_features()
            .map_err(err("GET_PROTOCOL_FEATURES"))?;
        let use_pf = pf & VhostUserProtocolFeatures::MQ;
        fe.set_protocol_features(use_pf)
            .map_err(err("SET_PROTOCOL_FEATURES"))?;
        neg.protocol = use_pf.bits();
        if use_pf.contains(VhostUserProtocolFeatures::MQ) && neg.has(f::VIRTIO_NET_F_MQ) {
            let n = fe.get_queue_num().map_err(err("GET_QUEUE_NUM"))?;
            // The backend counts virtqueues or pairs depending on who wrote
            // it (QEMU's spec says queues); DPDK and ferrovsd answer pairs.
            neg.queue_pairs = (n.min(u16::MAX as u64) as u16).clamp(1, want_pairs);
        }
    }
    fe.set_features(features).map_err(err("SET_FEATURES"))?;
    Ok(neg)
}

/// Sends the memory table and starts `vrings` (index = vring number).
pub fn start_vrings(
    fe: &mut Frontend,
    neg: &Negotiated,
    areas: &[SharedArea],
    vrings: &[(VringAddrs, &EventFd, &EventFd)],
) -> Result<(), String> {
    let regions: Vec<VhostUserMemoryRegionInfo> = areas
        .iter()
        .map(|a| VhostUserMemoryRegionInfo {
            guest_phys_addr: a.addr,
            memory_size: a.len,
            userspace_addr: a.addr,
            mmap_offset: 0,
            mmap_handle: a.fd,
        })
        .collect();
    fe.set_mem_table(&regions).map_err(err("SET_MEM_TABLE"))?;
    for (i, (a, call, kick)) in vrings.iter().enumerate() {
        fe.set_vring_num(i, a.size).map_err(err("SET_VRING_NUM"))?;
        let cfg = VringConfigData {
            queue_max_size: a.size,
            queue_size: a.size,
            flags: 0,
            desc_table_addr: a.desc,
            used_ring_addr: a.used,
            avail_ring_addr: a.avail,
            log_addr: None,
        };
        fe.set_vring_addr(i, &cfg).map_err(err("SET_VRING_ADDR"))?;
        fe.set_vring_base(i, 0).map_err(err("SET_VRING_BASE"))?;
        fe.set_vring_call(i, call).map_err(err("SET_VRING_CALL"))?;
        fe.set_vring_kick(i, kick).map_err(err("SET_VRING_KICK"))?;
    }
    if neg.has(f::VHOST_USER_F_PROTOCOL_FEATURES) {
        for i in 0..vrings.len() {
            fe.set_vring_enable(i, true)
                .map_err(err("SET_VRING_ENABLE"))?;
        }
    }
    // Without REPLY_ACK the messages above are only written to the socket.
    // A request with a reply is a barrier: once it is answered, the backend
    // has applied everything before it, so the rings may be used.
    fe.get_features().map_err(err("GET_FEATURES (barrier)"))?;
    Ok(())
}
