//! The OpenFlow 1.3 agent: controllers and `ovs-ofctl` program the bridge
//! through it.
//!
//! - [`mapping`]: OpenFlow matches and actions ↔ the flow table's

pub mod mapping;
