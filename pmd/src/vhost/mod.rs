//! vhost-user backend ports: VMs (QEMU) and DPDK's virtio-user attach here.
//!
//! - [`control`]: the one thread that talks vhost-user on every port's socket
//! - [`device`]: answers one connection's messages
//! - [`queue`]: per-virtqueue state shared by control and PMD threads
//! - [`split_ring`]: the burst walker of a split ring (the packet path)
//! - [`guest_mem`]: the guest's memory and address translation
//! - [`fault_guard`]: survives a frontend truncating memory we could not seal
//! - [`port`]: the [`Port`](crate::port::Port) the datapath polls

pub mod control;
pub mod device;
pub mod fault_guard;
pub mod features;
pub mod guest_mem;
pub mod port;
pub mod queue;
pub mod split_ring;

pub use control::VhostControl;
pub use port::{SocketMode, VhostPort, VhostPortConfig};
