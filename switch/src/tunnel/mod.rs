//! Overlay ports: a `vxlan` port is a switch port whose frames travel to
//! remote tunnel endpoints (VTEPs) inside VXLAN/UDP/IPv4 over an
//! `underlay` dpdk port. This module holds what a tunnel is (its options,
//! its remotes, its counters), the underlay's ARP entries ([`neighbour`],
//! shared by the tunnels there) and the header bytes ([`vxlan`], [`arp`]);
//! the datapath's [`encap`](crate::datapath::encap) and
//! [`decap`](crate::datapath::decap) stages use them per packet, and
//! housekeeping (`Bridge::tunnel_tick`) keeps the remotes' MACs resolved.
//!
//! A tunnel is itself a `pmd::Port` so that everything that lists ports
//! (show, port-stats, /metrics, OpenFlow port stats) lists it; nothing
//! polls it: its frames arrive through its underlay.

pub mod arp;
pub mod neighbour;
pub mod vxlan;

pub use neighbour::{is_unicast, ArpState, Neighbour};

use pmd::port::{bump, PortInfo, QueueStats};
use pmd::{Batch, PoolCache, Port};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use vxlan::Outer;

/// A resolved remote is asked again after this long without hearing from it ...
pub const ARP_REFRESH_SECS: u32 = 30;
/// ... and forgotten (frames to it dropped as `no_arp`) after this long.
pub const ARP_EXPIRE_SECS: u32 = 90;
/// An unanswered request is repeated after this long, then after twice as
/// long each time, up to [`ARP_REFRESH_SECS`] (an endpoint that is down is
/// not asked every second forever; one that comes back usually asks for
/// us itself, which resolves it at once).
pub const ARP_RETRY_SECS: u32 = 1;
/// Remotes of one tunnel (head-end replication sends a copy to each).
pub const MAX_REMOTES: usize = 64;
/// "Every remote" where a remote index is expected (a flood, an `output`).
pub const ALL_REMOTES: u16 = 0;

/// A `vxlan` port's options, checked (the config's and add-port's one parse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanOptions {
    pub remotes: Vec<Ipv4Addr>,
    pub local_ip: Ipv4Addr,
    pub vni: u32,
    pub dst_port: u16,
    pub underlay: String,
}

pub const DEFAULT_DST_PORT: u16 = 4789;

impl VxlanOptions {
    /// From the config's text fields; errors start with the key.
    pub fn parse(
        remote_ip: Option<&str>,
        local_ip: Option<&str>,
        key: Option<u32>,
        dst_port: Option<u16>,
        underlay: Option<&str>,
    ) -> Result<VxlanOptions, String> {
        let ip = |key: &str, s: &str| -> Result<Ipv4Addr, String> {
            let a: Ipv4Addr = s
                .trim()
                .parse()
                .map_err(|_| format!("{key}: {s:?} is not an IPv4 address"))?;
            if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                return Err(format!("{key}: {a} is not a unicast address"));
            }
            Ok(a)
        };
        let remote_ip = remote_ip
            .filter(|s| !s.trim().is_empty())
            .ok_or("remote-ip: a vxlan port needs remote-ip=IP[,IP...]")?;
        let mut remotes = Vec::new();
        for r in remote_ip.split(',') {
            let a = ip("remote-ip", r)?;
            if remotes.contains(&a) {
                return Err(format!("remote-ip: {a} is listed twice"));
            }
            remotes.push(a);
        }
        if remotes.len() > MAX_REMOTES {
            return Err(format!("remote-ip: at most {MAX_REMOTES} remotes"));
        }
        let local_ip = ip(
            "local-ip",
            local_ip
                .ok_or("local-ip: a vxlan port needs local-ip=IP (its address on the underlay)")?,
        )?;
        if remotes.contains(&local_ip) {
            return Err(format!("remote-ip: {local_ip} is the local-ip"));
        }
        let vni = key.unwrap_or(0);
        if vni > vxlan::MAX_VNI {
            return Err(format!("key: {vni} is not a VNI (0..={})", vxlan::MAX_VNI));
        }
        let dst_port = dst_port.unwrap_or(DEFAULT_DST_PORT);
        if dst_port == 0 {
            return Err("dst-port: must be 1..=65535".into());
        }
        let underlay = underlay
            .filter(|s| !s.is_empty())
            .ok_or("underlay: a vxlan port needs underlay=PORT (the dpdk port it sends through)")?
            .to_string();
        Ok(VxlanOptions {
            remotes,
            local_ip,
            vni,
            dst_port,
            underlay,
        })
    }
}

/// One remote endpoint of a tunnel: its ARP entry (shared with the other
/// tunnels of the underlay) and the outer header towards it.
pub struct Remote {
    pub ip: Ipv4Addr,
    pub neigh: Arc<Neighbour>,
    outer: Outer,
}

impl Remote {
    #[inline]
    pub fn mac_at(&self, now: u32) -> Option<[u8; 6]> {
        self.neigh.mac_at(now)
    }

    pub fn mac(&self) -> Option<[u8; 6]> {
        self.neigh.mac()
    }

    pub fn state(&self, now: u32) -> (ArpState, Option<u32>) {
        self.neigh.state(now)
    }

    #[inline]
    pub fn outer(&self) -> &Outer {
        &self.outer
    }
}

/// Packets to and from one remote, summed over the PMDs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteCounters {
    pub tx_packets: u64,
    pub rx_packets: u64,
}

const NO_ARP: usize = 0;
const MTU: usize = 1;
const FIRST_REMOTE: usize = 2;

/// A `vxlan` port.
pub struct Tunnel {
    pub opts: VxlanOptions,
    pub remotes: Box<[Remote]>,
    /// The underlay port's MAC and the largest frame it sends.
    pub underlay_mac: [u8; 6],
    pub max_inner_len: usize,
    /// Per PMD lane: decapsulated (rx) and encapsulated (tx) frames, as
    /// any port counts them (each on its own cache lines: PMDs write them
    /// per packet).
    rx: Box<[Line<QueueStats>]>,
    tx: Box<[Line<QueueStats>]>,
    /// Per PMD, `lines` cache lines of words: [no_arp, mtu, (tx, rx) per remote ...].
    counters: Box<[Line<[AtomicU64; 8]>]>,
    lines: usize,
}

/// One cache line (or more) to itself.
#[repr(align(64))]
#[derive(Default)]
struct Line<T>(T);

impl Tunnel {
    /// `underlay_mtu`: the IP MTU of the underlay; frames whose outer
    /// packet would not fit are dropped (`tunnel_mtu`). `neighbour` gives
    /// the underlay's ARP entry for a remote address (an existing one when
    /// another tunnel there has that remote).
    pub fn new(
        opts: VxlanOptions,
        underlay_mac: [u8; 6],
        underlay_mtu: u32,
        n_pmds: usize,
        mut neighbour: impl FnMut(Ipv4Addr) -> Arc<Neighbour>,
    ) -> Tunnel {
        let n_pmds = n_pmds.max(1);
        let remotes = opts
            .remotes
            .iter()
            .map(|ip| Remote {
                ip: *ip,
                neigh: neighbour(*ip),
                outer: Outer::new(
                    underlay_mac,
                    opts.local_ip.octets(),
                    ip.octets(),
                    opts.dst_port,
                    opts.vni,
                ),
            })
            .collect();
        let lines = (FIRST_REMOTE + 2 * opts.remotes.len()).div_ceil(8);
        Tunnel {
            max_inner_len: (underlay_mtu as usize + 14).saturating_sub(vxlan::OUTER_LEN),
            remotes,
            underlay_mac,
            rx: (0..n_pmds).map(|_| Line::default()).collect(),
            tx: (0..n_pmds).map(|_| Line::default()).collect(),
            counters: (0..n_pmds * lines).map(|_| Line::default()).collect(),
            lines,
            opts,
        }
    }

    /// The largest overlay MTU (inner IP packet) the underlay carries.
    pub fn overlay_mtu(&self) -> usize {
        self.max_inner_len.saturating_sub(14)
    }

    /// 1-based index of the remote at `ip` (0: not one of ours).
    #[inline]
    pub fn remote_index(&self, ip: [u8; 4]) -> u16 {
        let ip = Ipv4Addr::from(ip);
        self.remotes
            .iter()
            .position(|r| r.ip == ip)
            .map_or(0, |i| i as u16 + 1)
    }

    /// Word `w` of PMD `pmd`'s counters.
    #[inline]
    fn word(&self, pmd: usize, w: usize) -> &AtomicU64 {
        &self.counters[(pmd % self.rx.len()) * self.lines + w / 8].0[w % 8]
    }

    /// PMD `pmd` sent a frame to remote `i` (0-based).
    #[inline]
    pub fn count_tx(&self, pmd: usize, i: usize, bytes: usize) {
        bump(self.word(pmd, FIRST_REMOTE + 2 * i), 1);
        self.tx[pmd % self.tx.len()].0.count(1, bytes as u64);
    }

    #[inline]
    pub fn count_rx(&self, pmd: usize, i: usize, bytes: usize) {
        bump(self.word(pmd, FIRST_REMOTE + 2 * i + 1), 1);
        self.rx[pmd % self.rx.len()].0.count(1, bytes as u64);
    }

    #[inline]
    pub fn count_no_arp(&self, pmd: usize) {
        bump(self.word(pmd, NO_ARP), 1);
    }

    #[inline]
    pub fn count_mtu(&self, pmd: usize) {
        bump(self.word(pmd, MTU), 1);
    }

    fn sum(&self, word: usize) -> u64 {
        (0..self.rx.len())
            .map(|p| self.word(p, word).load(Relaxed))
            .sum()
    }

    /// Frames dropped on the way out, by reason (`no_arp`, `tunnel_mtu`).
    pub fn drops(&self) -> [(&'static str, u64); 2] {
        [("no_arp", self.sum(NO_ARP)), ("tunnel_mtu", self.sum(MTU))]
    }

    /// Packets to and from remote `i` (0-based).
    pub fn remote_counters(&self, i: usize) -> RemoteCounters {
        RemoteCounters {
            tx_packets: self.sum(FIRST_REMOTE + 2 * i),
            rx_packets: self.sum(FIRST_REMOTE + 2 * i + 1),
        }
    }
}

impl Port for Tunnel {
    fn kind(&self) -> &'static str {
        "vxlan"
    }
    /// One counting lane per PMD (nothing to poll: see [`Port::polled`]).
    fn n_rxq(&self) -> usize {
        self.rx.len()
    }
    fn n_txq(&self) -> usize {
        self.tx.len()
    }
    fn polled(&self) -> bool {
        false
    }
    fn rx_burst(&self, _qid: usize, _cache: &mut PoolCache, _out: &mut Batch) -> usize {
        0
    }
    /// The datapath encapsulates before it sends; a batch reaching the
    /// port itself is a bug, freed rather than leaked.
    fn tx_burst(&self, _qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize {
        debug_assert!(
            pkts.is_empty(),
            "frames reached a tunnel port unencapsulated"
        );
        cache.free_batch(pkts);
        0
    }
    fn rxq_stats(&self, qid: usize) -> &QueueStats {
        &self.rx[qid % self.rx.len()].0
    }
    fn txq_stats(&self, qid: usize) -> &QueueStats {
        &self.tx[qid % self.tx.len()].0
    }
    /// Up once ARP has resolved a remote (`show` has each one's state now).
    fn link_up(&self) -> bool {
        self.remotes.iter().any(|r| r.mac().is_some())
    }
    /// `show` reports a tunnel through its own typed status
    /// (`control::reports`), with each remote's ARP state.
    fn info(&self) -> PortInfo {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(remotes: &str) -> Tunnel {
        Tunnel::new(opts(remotes), [2; 6], 1500, 2, |ip| {
            Arc::new(Neighbour::new(ip))
        })
    }

    fn opts(remotes: &str) -> VxlanOptions {
        VxlanOptions::parse(
            Some(remotes),
            Some("10.0.0.1"),
            Some(42),
            None,
            Some("phy0"),
        )
        .unwrap()
    }

    #[test]
    fn options_are_checked_with_the_key_named() {
        let o = opts("10.0.0.2, 10.0.0.3");
        assert_eq!(o.remotes.len(), 2);
        assert_eq!((o.vni, o.dst_port), (42, 4789));
        let err =
            |r: Option<&str>, l: Option<&str>, k: Option<u32>, p: Option<u16>, u: Option<&str>| {
                VxlanOptions::parse(r, l, k, p, u).unwrap_err()
            };
        let some = Some("10.0.0.2");
        assert!(err(None, Some("10.0.0.1"), None, None, Some("p")).starts_with("remote-ip:"));
        assert!(
            err(Some("10.0.0.2,x"), Some("10.0.0.1"), None, None, Some("p"))
                .starts_with("remote-ip:")
        );
        assert!(err(
            Some("10.0.0.2,10.0.0.2"),
            Some("10.0.0.1"),
            None,
            None,
            Some("p")
        )
        .contains("twice"));
        assert!(
            err(Some("224.0.0.1"), Some("10.0.0.1"), None, None, Some("p")).contains("unicast")
        );
        assert!(err(some, None, None, None, Some("p")).starts_with("local-ip:"));
        assert!(err(some, Some("10.0.0.2"), None, None, Some("p")).contains("is the local-ip"));
        assert!(err(some, Some("10.0.0.1"), Some(1 << 24), None, Some("p")).starts_with("key:"));
        assert!(err(some, Some("10.0.0.1"), None, Some(0), Some("p")).starts_with("dst-port:"));
        assert!(err(some, Some("10.0.0.1"), None, None, None).starts_with("underlay:"));
        let many = (0..=MAX_REMOTES)
            .map(|i| format!("10.1.{}.{}", i / 200, i % 200 + 1))
            .collect::<Vec<_>>()
            .join(",");
        assert!(err(Some(&many), Some("10.0.0.1"), None, None, Some("p")).contains("at most"));
    }

    #[test]
    fn arp_resolves_refreshes_and_expires() {
        let t = tunnel("10.0.0.2,10.0.0.3");
        assert_eq!(t.max_inner_len, 1464);
        assert_eq!(t.overlay_mtu(), 1450);
        // What housekeeping does each tick (bridge::tunnels::tunnel_tick).
        let ask = |now: u32| {
            let due: Vec<&Neighbour> = t
                .remotes
                .iter()
                .map(|r| &*r.neigh)
                .filter(|n| n.due(now))
                .collect();
            for n in &due {
                n.asked(now);
            }
            due.into_iter().map(|n| n.ip).collect::<Vec<_>>()
        };
        let heard = |mac: [u8; 6], now: u32| t.remotes[0].neigh.heard(mac, now);
        // Both unresolved: both asked at once, not again within a second.
        assert_eq!(ask(0).len(), 2);
        assert!(ask(0).is_empty());
        assert_eq!(ask(1).len(), 2);
        assert_eq!(t.remotes[0].neigh.requests.load(Relaxed), 2);
        heard([2, 0, 0, 0, 0, 2], 5);
        assert_eq!(t.remotes[0].mac(), Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(t.remotes[0].state(6).0, ArpState::Reachable);
        assert_eq!(ask(6), vec![Ipv4Addr::new(10, 0, 0, 3)]);
        // 10.0.0.3 never answers: asked at 0, 1, 6, then after 4 s, 8 s ... 30 s.
        assert!(ask(9).is_empty());
        assert_eq!(ask(10), vec![Ipv4Addr::new(10, 0, 0, 3)]);
        assert!(ask(17).is_empty());
        assert_eq!(ask(18), vec![Ipv4Addr::new(10, 0, 0, 3)]);
        assert!(ask(18 + 15).is_empty());
        // Refreshed after ARP_REFRESH_SECS, still used meanwhile ...
        let later = 5 + ARP_REFRESH_SECS;
        assert_eq!(t.remotes[0].state(later).0, ArpState::Refreshing);
        assert!(ask(later).contains(&Ipv4Addr::new(10, 0, 0, 2)));
        assert!(t.remotes[0].mac_at(later).is_some());
        // ... and no longer used when it never answers.
        assert_eq!(t.remotes[0].mac_at(5 + ARP_EXPIRE_SECS), None);
        assert_eq!(
            t.remotes[0].state(5 + ARP_EXPIRE_SECS).0,
            ArpState::Unresolved
        );
        // An answer at the last moment counts at once.
        heard([2, 0, 0, 0, 0, 2], 5 + ARP_EXPIRE_SECS);
        assert!(t.remotes[0].mac_at(5 + ARP_EXPIRE_SECS).is_some());
        assert!(!is_unicast(&[0xff; 6]) && !is_unicast(&[0; 6]) && is_unicast(&[2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn tunnels_to_one_address_share_its_arp_entry() {
        let shared = Arc::new(Neighbour::new(Ipv4Addr::new(10, 0, 0, 2)));
        let mk = |vni| {
            let mut o = opts("10.0.0.2,10.0.0.3");
            o.vni = vni;
            let s = shared.clone();
            Tunnel::new(o, [2; 6], 1500, 1, move |ip| {
                if ip == s.ip {
                    s.clone()
                } else {
                    Arc::new(Neighbour::new(ip))
                }
            })
        };
        let (a, b) = (mk(1), mk(2));
        a.remotes[0].neigh.heard([2, 0, 0, 0, 0, 2], 3);
        assert_eq!(
            b.remotes[0].mac_at(3),
            Some([2, 0, 0, 0, 0, 2]),
            "one answer resolves both"
        );
        assert!(b.remotes[1].mac_at(3).is_none());
    }

    #[test]
    fn counters_are_per_remote_and_summed_over_pmds() {
        let t = tunnel("10.0.0.2,10.0.0.3");
        t.count_tx(0, 1, 100);
        t.count_tx(1, 1, 100);
        t.count_rx(1, 0, 60);
        t.count_no_arp(0);
        assert_eq!(
            t.remote_counters(1),
            RemoteCounters {
                tx_packets: 2,
                rx_packets: 0
            }
        );
        assert_eq!(
            t.remote_counters(0),
            RemoteCounters {
                tx_packets: 0,
                rx_packets: 1
            }
        );
        assert_eq!(t.drops()[0], ("no_arp", 1));
        assert_eq!(
            t.txq_stats(0).snapshot().packets + t.txq_stats(1).snapshot().packets,
            2
        );
        assert_eq!(t.remote_index([10, 0, 0, 3]), 2);
        assert_eq!(t.remote_index([10, 0, 0, 4]), 0);
    }
}
