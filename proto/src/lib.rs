//! ferrovsd's management protocol, shared by ferrovsd, ferrovs-ctl and the
//! tests: a unix stream socket carrying one JSON object per line each way.
//!
//! ```text
//! → {"command": "port-stats", "args": {"name": "vhost0"}}
//! ← {"ok": true, "result": [{"name": "vhost0", "rx_packets": 12, ...}]}
//! ← {"ok": false, "error": "no port named \"vhost9\""}
//! ```
//!
//! [`Command`] is the command list, [`Request`] a command with its typed
//! arguments, [`Reply`] each command's typed result and [`ReplyLine`] the
//! `ok`/`result`/`error` envelope around it. Field names are the wire
//! format: the tests in `wire` pin them against literal JSON.

mod command;
mod fdb;
mod flows;
mod pmd;
mod port_stats;
mod ports;
mod reply;
mod request;
mod show;
#[cfg(test)]
mod wire_tests;

pub use command::{known, usage, usage_line, Command};
pub use fdb::{FdbEntry, FdbFlushed, FdbShow, FdbStats};
pub use flows::{FlowEntry, FlowsAdded, FlowsDeleted, FlowsModified};
pub use pmd::{AutoLbStatus, PmdRxqShow, PmdRxqs, PmdStats, PmdStatsCleared, RxqUsage};
pub use port_stats::{PortStats, QueueStats};
pub use ports::{PortAdded, PortRemoved, PortSet};
pub use reply::{Help, Reply, ReplyLine};
pub use request::{
    AddFlow, AddFlows, AddPort, DelPort, DumpFlows, FlowSelection, NumberedFlow, PortStatsArgs,
    Request, RequestLine, RuntimeOptions, SetPort,
};
pub use show::{
    ControllerStatus, DriverInfo, FdbSummary, Link, MbufPool, OpenflowStatus, PmdQueues,
    PolledQueue, Show, ShowPort, TunnelRemote, TunnelStatus,
};
