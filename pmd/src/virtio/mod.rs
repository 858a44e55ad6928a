//! virtio-net driver on the virtio-user transport: ferrovs as the "guest"
//! side of a vhost-user connection, like DPDK's net_virtio_user. Used by
//! ferrovs-testpmd (benchmarks, interop tests) and by ferrovsd's
//! `virtio-user` port type (chaining to another vhost-user backend).
//!
//! - [`frontend`]: the vhost-user handshake (features, memory table, vrings)
//! - [`split`]: the driver's side of a split virtqueue ([`split::DriverRing`])
//! - [`port`]: the [`Port`](crate::port::Port) and its reconnecting control thread

pub mod frontend;
pub mod port;
pub mod split;

pub use frontend::FeatureWish;
pub use port::{VirtioPort, VirtioUserConfig};
