//! Forwarding engines, one file each, as DPDK testpmd's `fwd_engine`s: an
//! engine does one burst of work on one stream per call.

mod flowgen;
mod io;
mod mac;
mod macswap;
mod rxonly;
mod txonly;
mod vtep;

use crate::frame::FrameSpec;
use crate::stream::Stream;
use pmd::PoolCache;

pub trait Engine: Send {
    /// One burst on `s`; returns how many packets it handled (0: idle).
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Forward received packets unchanged.
    Io,
    /// Forward, rewriting source MAC (tx port) and destination MAC (peer).
    Mac,
    /// Forward back out, swapping source and destination MAC.
    Macswap,
    /// Generate frames (size, flows, addresses configurable); no receive
    /// unless --latency, which also receives and measures.
    Txonly,
    /// Receive, check payloads and latency stamps, free.
    Rxonly,
    /// Generate frames cycling destination IPs per packet, and receive.
    Flowgen,
    /// Play a remote VXLAN tunnel endpoint (--vtep-ip, the port's MAC) that
    /// reflects: answer ARP for it, send VXLAN frames back out the same port
    /// (outer MACs and IPs swapped, inner MACs swapped), free the rest.
    Vtep,
}

impl Mode {
    pub fn generates(self) -> bool {
        matches!(self, Mode::Txonly | Mode::Flowgen)
    }
}

/// What engines are built from (one engine per stream).
pub struct EngineSpec {
    pub mode: Mode,
    pub frame: FrameSpec,
    pub latency: bool,
    pub seed: u64,
    /// Generating: a TCP stream whose checksums or segmentation the port does.
    pub tx_offload: Option<crate::tcp::TxOffload>,
    /// Receiving: (on, off) — receive for `on`, then leave the queue alone for `off`.
    pub rx_pause: Option<(std::time::Duration, std::time::Duration)>,
    /// vtep: the endpoint's IPv4 address.
    pub vtep_ip: [u8; 4],
}

pub fn make(spec: &EngineSpec) -> Box<dyn Engine> {
    match spec.mode {
        Mode::Io => Box::new(io::Io),
        Mode::Mac => Box::new(mac::Mac),
        Mode::Macswap => Box::new(macswap::MacSwap),
        Mode::Rxonly => Box::new(rxonly::RxOnly::new(spec.rx_pause)),
        Mode::Txonly => Box::new(txonly::TxOnly::new(spec)),
        Mode::Flowgen => Box::new(flowgen::FlowGen::new(spec)),
        Mode::Vtep => Box::new(vtep::Vtep::new(spec.vtep_ip)),
    }
}
