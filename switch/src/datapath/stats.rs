//! Per-PMD counters: written only by their PMD thread (plain load+store),
//! read by the management thread at any time.

use pmd::port::bump;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Drops decided by the switch itself (drivers count their own). The
/// names are the `reason` label; keep them stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum DpDrop {
    /// Shorter than an Ethernet header.
    Runt,
    /// Unicast to the port it came from (already delivered on that segment).
    SamePort,
    /// No buffer for a flooded or copied packet, or no headroom for a tag.
    NoBuffer,
    /// `normal`: the input port does not admit the frame's VLAN.
    Vlan,
    /// No rule of a table matched (OpenFlow 1.3's table-miss drop).
    NoMatch,
    /// A rule whose actions drop (no output).
    Acl,
    /// More than [`MAX_RESUBMITS`](crate::datapath::pipeline::MAX_RESUBMITS) nested resubmits.
    ResubmitDepth,
    /// `output:PORT` to a port the bridge does not have.
    NoPort,
    /// `normal`: a link-local group address (01:80:c2:00:00:0X: STP, LACP, LLDP).
    ReservedMac,
    /// `controller`: the queue to the OpenFlow agent was full (the copy is lost).
    ControllerQueue,
    /// Received on a port that is down or set not to receive (PORT_MOD).
    NoRecv,
    /// Sent to a port that is down or set not to forward (PORT_MOD).
    NoFwd,
    /// An offload the output port does not take and the switch cannot do
    /// (a large segment whose headers are not plain Ethernet/IP/TCP).
    Offload,
    /// VXLAN for our address and a tunnel's UDP port with a VNI no tunnel
    /// on that underlay has.
    VxlanBadVni,
    /// Addressed to a tunnel but not well-formed VXLAN over IPv4 (lengths,
    /// checksums, fragments, flags).
    VxlanMalformed,
    /// VXLAN from an address that is not one of the tunnel's remotes.
    VxlanUnknownRemote,
    /// To a tunnel remote whose MAC ARP has not resolved (yet).
    NoArp,
    /// Too large for the tunnel's underlay once encapsulated.
    TunnelMtu,
    /// Received on an underlay port and neither a tunnel's nor ARP for it.
    UnderlayOther,
}

impl DpDrop {
    pub const ALL: [DpDrop; 19] = [
        DpDrop::Runt,
        DpDrop::SamePort,
        DpDrop::NoBuffer,
        DpDrop::Vlan,
        DpDrop::NoMatch,
        DpDrop::Acl,
        DpDrop::ResubmitDepth,
        DpDrop::NoPort,
        DpDrop::ReservedMac,
        DpDrop::ControllerQueue,
        DpDrop::NoRecv,
        DpDrop::NoFwd,
        DpDrop::Offload,
        DpDrop::VxlanBadVni,
        DpDrop::VxlanMalformed,
        DpDrop::VxlanUnknownRemote,
        DpDrop::NoArp,
        DpDrop::TunnelMtu,
        DpDrop::UnderlayOther,
    ];
    pub fn name(self) -> &'static str {
        match self {
            DpDrop::Runt => "runt",
            DpDrop::SamePort => "same_port",
            DpDrop::NoBuffer => "no_buffer",
            DpDrop::Vlan => "vlan",
            DpDrop::NoMatch => "no_match",
            DpDrop::Acl => "acl",
            DpDrop::ResubmitDepth => "resubmit_depth",
            DpDrop::NoPort => "no_port",
            DpDrop::ReservedMac => "reserved_mac",
            DpDrop::ControllerQueue => "controller_queue",
            DpDrop::NoRecv => "no_recv",
            DpDrop::NoFwd => "no_fwd",
            DpDrop::Offload => "offload",
            DpDrop::VxlanBadVni => "vxlan_bad_vni",
            DpDrop::VxlanMalformed => "vxlan_malformed",
            DpDrop::VxlanUnknownRemote => "vxlan_unknown_remote",
            DpDrop::NoArp => "no_arp",
            DpDrop::TunnelMtu => "tunnel_mtu",
            DpDrop::UnderlayOther => "underlay_other",
        }
    }
}

/// Per input port: what the switch dropped of the frames it received there.
/// PMDs add a burst's drops at once (several PMDs may poll one port's queues).
#[derive(Default)]
pub struct SwitchDrops([AtomicU64; DpDrop::ALL.len()]);

impl SwitchDrops {
    pub fn add(&self, counts: &[u32; DpDrop::ALL.len()]) {
        for (c, n) in self.0.iter().zip(counts) {
            if *n != 0 {
                c.fetch_add(*n as u64, Relaxed);
            }
        }
    }

    pub fn get(&self, d: DpDrop) -> u64 {
        self.0[d as usize].load(Relaxed)
    }

    /// Nonzero reasons.
    pub fn read(&self) -> Vec<(&'static str, u64)> {
        DpDrop::ALL
            .iter()
            .map(|d| (d.name(), self.get(*d)))
            .filter(|(_, n)| *n != 0)
            .collect()
    }
}

/// Receive bursts counted by size.
pub struct BatchSizes(pub [AtomicU64; pmd::BURST + 1]);

impl Default for BatchSizes {
    fn default() -> Self {
        BatchSizes(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

#[derive(Default)]
pub struct PmdStats {
    pub core: usize,
    pub busy_iterations: AtomicU64,
    pub idle_iterations: AtomicU64,
    pub busy_cycles: AtomicU64,
    pub idle_cycles: AtomicU64,
    pub packets: AtomicU64,
    pub batches: AtomicU64,
    pub flooded: AtomicU64,
    pub sleep_ns: AtomicU64,
    /// Exact-match cache hits and misses, and the hash tables (one per
    /// mask) classifier searches probed on those misses.
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub classifier_probes: AtomicU64,
    /// Offloads done in software for ports that do not take them: checksums
    /// completed, large TCP segments split, and the segments they made.
    pub soft_csum: AtomicU64,
    pub soft_gso: AtomicU64,
    pub soft_segments: AtomicU64,
    pub drops: [AtomicU64; DpDrop::ALL.len()],
    /// Receive bursts by size (index = packets in the burst, 1..=BURST).
    pub batch_sizes: BatchSizes,
    /// Generation of the snapshot this PMD runs (for RCU waits).
    pub generation: AtomicU64,
    /// Set when the thread has left its loop.
    pub exited: std::sync::atomic::AtomicBool,
    /// Baselines subtracted by `pmd-stats-clear` (management side only).
    pub cleared: std::sync::Mutex<Option<PmdCounters>>,
}

/// Plain copy of the counters.
#[derive(Clone, Debug, Default)]
pub struct PmdCounters {
    pub busy_iterations: u64,
    pub idle_iterations: u64,
    pub busy_cycles: u64,
    pub idle_cycles: u64,
    pub packets: u64,
    pub batches: u64,
    pub flooded: u64,
    pub sleep_ns: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub classifier_probes: u64,
    pub soft_csum: u64,
    pub soft_gso: u64,
    pub soft_segments: u64,
    pub drops: Vec<(&'static str, u64)>,
}

impl PmdStats {
    #[inline]
    pub fn count_drop(&self, d: DpDrop, n: u64) {
        bump(&self.drops[d as usize], n);
    }

    pub fn read(&self) -> PmdCounters {
        let mut c = PmdCounters {
            busy_iterations: self.busy_iterations.load(Relaxed),
            idle_iterations: self.idle_iterations.load(Relaxed),
            busy_cycles: self.busy_cycles.load(Relaxed),
            idle_cycles: self.idle_cycles.load(Relaxed),
            packets: self.packets.load(Relaxed),
            batches: self.batches.load(Relaxed),
            flooded: self.flooded.load(Relaxed),
            sleep_ns: self.sleep_ns.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            classifier_probes: self.classifier_probes.load(Relaxed),
            soft_csum: self.soft_csum.load(Relaxed),
            soft_gso: self.soft_gso.load(Relaxed),
            soft_segments: self.soft_segments.load(Relaxed),
            drops: DpDrop::ALL
                .iter()
                .map(|d| (d.name(), self.drops[*d as usize].load(Relaxed)))
                .collect(),
        };
        if let Some(base) = self.cleared.lock().expect("poisoned").as_ref() {
            c.busy_iterations -= base.busy_iterations.min(c.busy_iterations);
            c.idle_iterations -= base.idle_iterations.min(c.idle_iterations);
            c.busy_cycles -= base.busy_cycles.min(c.busy_cycles);
            c.idle_cycles -= base.idle_cycles.min(c.idle_cycles);
            c.packets -= base.packets.min(c.packets);
            c.batches -= base.batches.min(c.batches);
            c.flooded -= base.flooded.min(c.flooded);
            c.sleep_ns -= base.sleep_ns.min(c.sleep_ns);
            c.cache_hits -= base.cache_hits.min(c.cache_hits);
            c.cache_misses -= base.cache_misses.min(c.cache_misses);
            c.classifier_probes -= base.classifier_probes.min(c.classifier_probes);
            c.soft_csum -= base.soft_csum.min(c.soft_csum);
            c.soft_gso -= base.soft_gso.min(c.soft_gso);
            c.soft_segments -= base.soft_segments.min(c.soft_segments);
            for (d, b) in c.drops.iter_mut().zip(&base.drops) {
                d.1 -= b.1.min(d.1);
            }
        }
        c
    }

    pub fn clear(&self) {
        *self.cleared.lock().expect("poisoned") = None;
        let now = self.read();
        *self.cleared.lock().expect("poisoned") = Some(now);
    }
}
