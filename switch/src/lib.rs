//! ferrovsd's parts: [`config`], the [`bridge`] (ports and their changes),
//! the [`datapath`] (PMD threads; the packet path), the [`fdb`] (MAC
//! learning), the management socket ([`control`]), Prometheus [`metrics`]
//! the OpenFlow agent ([`ofagent`]) and
//! overlay ports ([`tunnel`]).

pub mod bridge;
pub mod config;
pub mod control;
pub mod cores;
pub mod datapath;
pub mod fdb;
pub mod flow;
pub mod metrics;
pub mod ofagent;
pub mod state;
pub mod tunnel;
