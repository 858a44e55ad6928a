//! The ARP cache of one underlay: per remote address, its MAC, when it was
//! last heard from and asked for, and whether to use it now.

use super::{ARP_EXPIRE_SECS, ARP_REFRESH_SECS, ARP_RETRY_SECS};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// What ARP knows of one address on an underlay. Shared by every tunnel
/// with a remote there (one request per refresh, one update per answer).
/// Written by the PMD that reads an ARP packet from it and by housekeeping;
/// read per packet.
pub struct Neighbour {
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

impl Neighbour {
    pub fn new(ip: Ipv4Addr) -> Neighbour {
        Neighbour {
            ip,
            mac: AtomicU64::new(0),
            heard: AtomicU32::new(0),
            asked: AtomicU32::new(0),
            misses: AtomicU32::new(0),
            requests: AtomicU64::new(0),
        }
    }

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
    pub fn due(&self, now: u32) -> bool {
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
    pub fn asked(&self, now: u32) {
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
