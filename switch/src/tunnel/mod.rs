//! Overlay ports: a `vxlan` port is a switch port whose frames travel to
//! remote tunnel endpoints (VTEPs) inside VXLAN/UDP/IPv4 over an
//! `underlay` dpdk port. This module holds what a tunnel is (its options,
//! its remotes with their ARP state, its counters) and the header bytes
//! ([`vxlan`], [`arp`]); the datapath's [`encap`](crate::datapath::encap)
//! and [`decap`](crate::datapath::decap) stages use them per packet, and
//! [`maintain`] (housekeeping) keeps the remotes' MACs resolved.
//!
//! A tunnel is itself a `pmd::Port` so that everything that lists ports
//! (show, port-stats, /metrics, OpenFlow port stats) lists it; nothing
//! polls it: its frames arrive through its underlay.

pub mod arp;
pub mod vxlan;

use pmd::port::{bump, PortInfo, QueueStats};
use pmd::{Batch, PoolCache, Port};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
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

/// One remote endpoint and what ARP knows of it. Written by the PMD that
/// reads an ARP packet from it and by housekeeping; read per packet.
pub struct Remote {
    pub ip: Ipv4Addr,
    /// Bit 63: resolved; the low 48 bits: its MAC.
    mac: AtomicU64,
    /// FDB-clock second + 1 of the last ARP packet from it (0: never).
    heard: AtomicU32,
    /// FDB-clock second + 1 of our last request (0: never).
    asked: AtomicU32,
    /// Requests in a row it did not answer (housekeeping's alone).
    misses: AtomicU32,
    pub requests: AtomicU64,
    outer: Outer,
}

const RESOLVED: u64 = 1 << 63;

/// A MAC an ARP sender may have: unicast, not zero. A broadcast one would
/// send a remote's frames to every host on the underlay.
pub fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

fn mac_word(mac: [u8; 6]) -> u64 {
    RESOLVED | u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]])
}

/// What `show` says about a remote's ARP entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpState {
    /// Heard from within the refresh time.
    Reachable,
    /// Resolved, being asked again (still used).
    Refreshing,
    /// No MAC: frames to it are dropped (`no_arp`) while we ask.
    Unresolved,
}

impl ArpState {
    pub fn name(self) -> &'static str {
        match self {
            ArpState::Reachable => "reachable",
            ArpState::Refreshing => "refreshing",
            ArpState::Unresolved => "unresolved",
        }
    }
}

impl Remote {
    /// Its MAC, if ARP ever resolved it.
    #[inline]
    pub fn mac(&self) -> Option<[u8; 6]> {
        let w = self.mac.load(Relaxed);
        if w & RESOLVED == 0 {
            return None;
        }
        let b = w.to_be_bytes();
        Some([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Its MAC unless it was last heard from [`ARP_EXPIRE_SECS`] or more
    /// before `now` (two loads per packet). Expiry is decided here, not by
    /// housekeeping clearing the MAC: a clear could overwrite an answer
    /// that arrived meanwhile.
    #[inline]
    pub fn mac_at(&self, now: u32) -> Option<[u8; 6]> {
        let heard = self.heard.load(Relaxed);
        if heard == 0 || now.saturating_sub(heard - 1) >= ARP_EXPIRE_SECS {
            return None;
        }
        self.mac()
    }

    #[inline]
    pub fn outer(&self) -> &Outer {
        &self.outer
    }

    /// An ARP packet from it: it is at `mac` (a unicast address: checked
    /// by the caller), now.
    pub fn heard(&self, mac: [u8; 6], now: u32) {
        let w = mac_word(mac);
        if self.mac.load(Relaxed) != w {
            self.mac.store(w, Relaxed);
        }
        if self.heard.load(Relaxed) != now + 1 {
            self.heard.store(now + 1, Relaxed);
        }
    }

    pub fn state(&self, now: u32) -> (ArpState, Option<u32>) {
        let heard = self.heard.load(Relaxed);
        let age = (heard != 0).then(|| now.saturating_sub(heard - 1));
        let state = match (self.mac_at(now), age) {
            (None, _) => ArpState::Unresolved,
            (Some(_), Some(a)) if a < ARP_REFRESH_SECS => ArpState::Reachable,
            _ => ArpState::Refreshing,
        };
        (state, age)
    }

    /// Housekeeping: true when a request should go out now (unresolved,
    /// or due a refresh, and not asked within the retry time).
    fn due(&self, now: u32) -> bool {
        let age = |t: u32| {
            if t == 0 {
                u32::MAX
            } else {
                now.saturating_sub(t - 1)
            }
        };
        let retry = (ARP_RETRY_SECS << self.misses.load(Relaxed).min(5)).min(ARP_REFRESH_SECS);
        age(self.heard.load(Relaxed)) >= ARP_REFRESH_SECS && age(self.asked.load(Relaxed)) >= retry
    }

    /// A request for it went out at `now`.
    fn asked(&self, now: u32) {
        let asked = self.asked.load(Relaxed);
        let answered = asked == 0 || self.heard.load(Relaxed) >= asked;
        let misses = if answered {
            0
        } else {
            self.misses.load(Relaxed) + 1
        };
        self.misses.store(misses, Relaxed);
        self.asked.store(now + 1, Relaxed);
        self.requests.fetch_add(1, Relaxed);
    }
}

/// Per-PMD counters of one tunnel (one writer each): why frames could not
/// be sent, and packets per remote.
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
    /// packet would not fit are dropped (`tunnel_mtu`).
    pub fn new(
        opts: VxlanOptions,
        underlay_mac: [u8; 6],
        underlay_mtu: u32,
        n_pmds: usize,
    ) -> Tunnel {
        let n_pmds = n_pmds.max(1);
        let remotes = opts
            .remotes
            .iter()
            .map(|ip| Remote {
                ip: *ip,
                mac: AtomicU64::new(0),
                heard: AtomicU32::new(0),
                asked: AtomicU32::new(0),
                misses: AtomicU32::new(0),
                requests: AtomicU64::new(0),
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

    /// An ARP packet from `ip` at `mac`: every remote at that address is resolved.
    pub fn heard(&self, ip: [u8; 4], mac: [u8; 6], now: u32) -> bool {
        let i = self.remote_index(ip);
        if i != 0 {
            self.remotes[i as usize - 1].heard(mac, now);
        }
        i != 0
    }

    /// Remotes (0-based) that housekeeping should ask for now; it calls
    /// [`Tunnel::asked`] for each request that went out.
    pub fn due_requests(&self, now: u32) -> Vec<usize> {
        (0..self.remotes.len())
            .filter(|&i| self.remotes[i].due(now))
            .collect()
    }

    pub fn asked(&self, i: usize, now: u32) {
        self.remotes[i].asked(now);
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
        let t = Tunnel::new(opts("10.0.0.2,10.0.0.3"), [2; 6], 1500, 2);
        assert_eq!(t.max_inner_len, 1464);
        assert_eq!(t.overlay_mtu(), 1450);
        let ask = |now: u32| {
            let due = t.due_requests(now);
            for &i in &due {
                t.asked(i, now);
            }
            due.into_iter().map(|i| t.remotes[i].ip).collect::<Vec<_>>()
        };
        // Both unresolved: both asked at once, not again within a second.
        assert_eq!(ask(0).len(), 2);
        assert!(ask(0).is_empty());
        assert_eq!(ask(1).len(), 2);
        assert_eq!(t.remotes[0].requests.load(Relaxed), 2);
        assert!(t.heard([10, 0, 0, 2], [2, 0, 0, 0, 0, 2], 5));
        assert!(!t.heard([10, 0, 0, 9], [2; 6], 5), "not a remote");
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
        t.heard([10, 0, 0, 2], [2, 0, 0, 0, 0, 2], 5 + ARP_EXPIRE_SECS);
        assert!(t.remotes[0].mac_at(5 + ARP_EXPIRE_SECS).is_some());
        assert!(!is_unicast(&[0xff; 6]) && !is_unicast(&[0; 6]) && is_unicast(&[2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn counters_are_per_remote_and_summed_over_pmds() {
        let t = Tunnel::new(opts("10.0.0.2,10.0.0.3"), [2; 6], 1500, 2);
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
