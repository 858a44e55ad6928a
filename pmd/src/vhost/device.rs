//! The control side of one vhost-user connection: answers the frontend's
//! messages (features, memory table, vring setup) and turns them into queue
//! state the PMDs can run. Messages we do not support get an error, which
//! the frontend sees as a failed request; nothing here panics on input.

use super::features;
use super::guest_mem::GuestMem;
use super::port::VhostPort;
use super::split_ring::{RingAddrs, RingFeatures};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vhost::vhost_user::message::*;
use vhost::vhost_user::{Backend, Error, GpuBackend, Result, VhostUserBackendReqHandlerMut};
use vhost::VhostUserMemoryRegionBase;

pub struct VhostDevice {
    port: Arc<VhostPort>,
    acked: u64,
    acked_protocol: u64,
}

impl VhostDevice {
    pub fn new(port: Arc<VhostPort>) -> VhostDevice {
        VhostDevice {
            port,
            acked: 0,
            acked_protocol: 0,
        }
    }

    fn queue(&self, index: u32) -> Result<&super::queue::VirtQueue> {
        self.port
            .queues
            .get(index as usize)
            .ok_or(Error::InvalidParam)
    }

    fn has(&self, bit: u32) -> bool {
        self.acked & features::bit(bit) != 0
    }

    fn ring_features(&self) -> RingFeatures {
        let modern =
            self.has(features::VIRTIO_F_VERSION_1) || self.has(features::VIRTIO_NET_F_MRG_RXBUF);
        let (host_offloads, guest_offloads) = features::offload_caps(self.acked);
        RingFeatures {
            event_idx: self.has(features::VIRTIO_RING_F_EVENT_IDX),
            mrg_rxbuf: self.has(features::VIRTIO_NET_F_MRG_RXBUF),
            hdr_len: if modern { 12 } else { 10 },
            host_offloads,
            guest_offloads,
        }
    }

    /// virtio-net config space: mac[6], status u16 (LINK_UP), max_virtqueue_pairs u16.
    fn config_space(&self) -> [u8; 10] {
        let mut c = [0u8; 10];
        c[..6].copy_from_slice(&self.port.config.mac);
        c[6..8].copy_from_slice(&1u16.to_le_bytes());
        c[8..10].copy_from_slice(&(self.port.queues.len() as u16 / 2).to_le_bytes());
        c
    }
}

impl VhostUserBackendReqHandlerMut for VhostDevice {
    fn set_owner(&mut self) -> Result<()> {
        Ok(())
    }

    fn reset_owner(&mut self) -> Result<()> {
        self.port.reset_queues();
        Ok(())
    }

    fn reset_device(&mut self) -> Result<()> {
        self.port.reset_queues();
        Ok(())
    }

    fn get_features(&mut self) -> Result<u64> {
        Ok(self.port.offered_features())
    }

    fn set_features(&mut self, f: u64) -> Result<()> {
        tracing::debug!(f = format_args!("{f:#x}"), "set_features");
        if f & !self.port.offered_features() != 0 {
            return Err(Error::InvalidParam);
        }
        self.acked = f;
        self.port.acked_features.store(f, Ordering::Relaxed);
        let rf = self.ring_features();
        // Without PROTOCOL_FEATURES, rings are enabled as soon as they start.
        let auto_enable = f & VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits() == 0;
        for q in &self.port.queues {
            let mut s = q.state.lock();
            s.features = rf;
            if auto_enable {
                s.enabled = true;
            }
            s.try_start();
        }
        Ok(())
    }

    fn set_mem_table(
        &mut self,
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy: Option<bool>,
    ) -> Result<Option<Vec<VhostUserMemoryRegionBase>>> {
        tracing::debug!(regions = regions.len(), "set_mem_table");
        let mem = GuestMem::from_vhost(regions, files).map_err(|e| {
            self.port.set_error(e.to_string());
            Error::InvalidParam
        })?;
        let mem = Arc::new(mem);
        for q in &self.port.queues {
            let mut s = q.state.lock();
            s.mem = Some(mem.clone());
            s.try_start();
        }
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> Result<()> {
        tracing::debug!(index, num, "set_vring_num");
        let q = self.queue(index)?;
        if num == 0 || num > super::split_ring::MAX_QUEUE_SIZE as u32 || !num.is_power_of_two() {
            return Err(Error::InvalidParam);
        }
        let mut s = q.state.lock();
        s.size = num as u16;
        s.try_start();
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> Result<()> {
        tracing::debug!(index, descriptor, used, available, "set_vring_addr");
        let q = self.queue(index)?;
        let mut s = q.state.lock();
        s.addrs = Some(RingAddrs {
            desc: descriptor,
            avail: available,
            used,
        });
        s.try_start();
        if let Some(e) = s.last_error.clone() {
            self.port.set_error(format!("vring {index}: {e}"));
            return Err(Error::InvalidParam);
        }
        Ok(())
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> Result<()> {
        tracing::debug!(index, base, "set_vring_base");
        let q = self.queue(index)?;
        // A split ring's index is 16 bits: a larger base is a bad message, not
        // something to truncate into a valid-looking one.
        let Ok(base) = u16::try_from(base) else {
            return Err(Error::InvalidParam);
        };
        let mut s = q.state.lock();
        s.base = base;
        if let Some(r) = s.ring.as_mut() {
            r.last_avail = base;
        }
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> Result<VhostUserVringState> {
        tracing::debug!(index, "get_vring_base");
        let q = self.queue(index)?;
        // Taking the lock waits for a PMD in the middle of a burst on this ring.
        let base = q.state.lock().stop();
        Ok(VhostUserVringState::new(index, base as u32))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        tracing::debug!(index, has_fd = fd.is_some(), "set_vring_kick");
        let q = self.queue(index as u32)?;
        let mut s = q.state.lock();
        // Keeping the kick fd marks the ring started; a PMD waits on it only
        // while the queue is idle (hybrid polling). Without one (the
        // frontend polls too) the queue is always polled.
        s.kick_is_fd = fd.is_some();
        s.kick = Some(match fd {
            Some(f) => f,
            None => File::open("/dev/null").map_err(Error::SocketError)?,
        });
        s.try_start();
        Ok(())
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> Result<()> {
        let q = self.queue(index as u32)?;
        let fd = fd
            .map(super::queue::nonblocking_call_fd)
            .transpose()
            .map_err(Error::SocketError)?;
        q.state.lock().call = fd;
        Ok(())
    }

    fn set_vring_err(&mut self, index: u8, _fd: Option<File>) -> Result<()> {
        self.queue(index as u32)?;
        Ok(())
    }

    fn get_protocol_features(&mut self) -> Result<VhostUserProtocolFeatures> {
        Ok(features::offered_protocol())
    }

    fn set_protocol_features(&mut self, f: u64) -> Result<()> {
        tracing::debug!(f = format_args!("{f:#x}"), "set_protocol_features");
        self.acked_protocol = f;
        self.port
            .acked_protocol_features
            .store(f, Ordering::Relaxed);
        Ok(())
    }

    fn get_queue_num(&mut self) -> Result<u64> {
        Ok(self.port.queues.len() as u64 / 2)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> Result<()> {
        tracing::debug!(index, enable, "set_vring_enable");
        let q = self.queue(index)?;
        let mut s = q.state.lock();
        s.enabled = enable;
        s.enable_seen = true;
        // A PMD that parked the disabled queue polls it again.
        s.epoch += 1;
        Ok(())
    }

    fn get_config(
        &mut self,
        offset: u32,
        size: u32,
        _flags: VhostUserConfigFlags,
    ) -> Result<Vec<u8>> {
        let c = self.config_space();
        let start = offset as usize;
        let end = start
            .checked_add(size as usize)
            .ok_or(Error::InvalidParam)?;
        if end > c.len() {
            return Err(Error::InvalidParam);
        }
        Ok(c[start..end].to_vec())
    }

    fn set_config(
        &mut self,
        _offset: u32,
        _buf: &[u8],
        _flags: VhostUserConfigFlags,
    ) -> Result<()> {
        Err(Error::InvalidOperation(
            "virtio-net config space is read-only",
        ))
    }

    fn set_backend_req_fd(&mut self, _backend: Backend) {}

    fn set_gpu_socket(&mut self, _gpu: GpuBackend) -> Result<()> {
        Err(Error::InvalidOperation("not a GPU device"))
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> Result<File> {
        Err(Error::InvalidOperation("shared objects are not supported"))
    }

    fn get_inflight_fd(&mut self, _i: &VhostUserInflight) -> Result<(VhostUserInflight, File)> {
        Err(Error::InvalidOperation(
            "inflight tracking is not supported",
        ))
    }

    fn set_inflight_fd(&mut self, _i: &VhostUserInflight, _file: File) -> Result<()> {
        Err(Error::InvalidOperation(
            "inflight tracking is not supported",
        ))
    }

    fn get_max_mem_slots(&mut self) -> Result<u64> {
        Ok(32)
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy: Option<bool>,
    ) -> Result<Option<VhostUserMemoryRegionBase>> {
        Err(Error::InvalidOperation("memory slots are not supported"))
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> Result<()> {
        Err(Error::InvalidOperation("memory slots are not supported"))
    }

    fn set_device_state_fd(
        &mut self,
        _d: VhostTransferStateDirection,
        _p: VhostTransferStatePhase,
        _fd: File,
    ) -> Result<Option<File>> {
        Err(Error::InvalidOperation(
            "device state transfer is not supported",
        ))
    }

    fn check_device_state(&mut self) -> Result<()> {
        Err(Error::InvalidOperation(
            "device state transfer is not supported",
        ))
    }

    fn get_shmem_config(&mut self) -> Result<VhostUserShMemConfig> {
        Err(Error::InvalidOperation("no shared memory regions"))
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> Result<()> {
        Err(Error::InvalidOperation(
            "dirty logging (live migration) is not supported yet",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhost::{SocketMode, VhostPortConfig};

    fn device() -> VhostDevice {
        VhostDevice::new(Arc::new(VhostPort::new(VhostPortConfig {
            path: "/nonexistent/fv-test.sock".into(),
            mode: SocketMode::Server,
            queue_pairs: 1,
            mac: [2, 0, 0, 0, 0, 1],
            tx_retries_max: 0,
            mtu: 1500,
            offloads: true,
        })))
    }

    /// CVE-2020-10723's shape: a 32-bit ring index or base that a u16 cast
    /// would truncate into a valid-looking one is refused.
    #[test]
    fn vring_base_and_index_beyond_16_bits_are_refused() {
        let mut d = device();
        assert!(d.set_vring_base(0, 0x1_0005).is_err());
        assert_eq!(d.port.queues[0].state.lock().base, 0, "nothing changed");
        assert!(
            d.set_vring_base(0x1_0000, 5).is_err(),
            "no queue 0x10000 (not queue 0)"
        );
        assert!(d.set_vring_base(0, 5).is_ok());
        assert_eq!(d.port.queues[0].state.lock().base, 5);
        assert!(d.set_vring_num(0x1_0001, 256).is_err());
    }
}
