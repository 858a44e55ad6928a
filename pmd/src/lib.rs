//! Packet memory and poll-mode drivers for ferrovs. No switching logic here:
//! buffers ([`mbuf`]), the [`port::Port`] interface every driver implements,
//! and the drivers themselves ([`ring`], [`vhost`]).

#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod limits;
pub mod mbuf;
pub mod mem;
pub mod offload;
pub mod port;
pub mod ring;
pub mod sock;
pub mod sync;
pub mod vhost;
pub mod virtio;

pub use mbuf::{Batch, Mbuf, Pool, PoolCache, BURST};
pub use port::{DropReason, Port, QueueStats};
