//! The MAC learning table (forwarding database): (VLAN, MAC) -> port number.
//!
//! Shared by every PMD without locks: 8-way buckets of atomic keys and
//! values. A key word is `1<<63 | vlan<<48 | mac`; a value word is
//! `last_seen_secs<<32 | remote<<16 | port_no`, where `remote` says which
//! endpoint of a tunnel port the MAC sits behind (1-based; 0 for others). Port number 0 means "no entry", so a
//! reader that races an insert sees a miss, never a wrong port. Learning
//! writes only when something changed (new MAC, moved MAC, a new second).

use std::sync::atomic::{
    AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use std::time::Instant;

const WAYS: usize = 8;

#[repr(C, align(64))]
struct Bucket {
    keys: [AtomicU64; WAYS],
    vals: [AtomicU64; WAYS],
}

#[derive(Default)]
pub struct FdbCounters {
    pub learned: AtomicU64,
    pub moved: AtomicU64,
    pub aged: AtomicU64,
    pub refused: AtomicU64,
    pub flushed: AtomicU64,
}

pub struct Fdb {
    buckets: Box<[Bucket]>,
    shift: u32,
    len: AtomicUsize,
    max: usize,
    aging_secs: AtomicU32,
    epoch: Instant,
    pub counters: FdbCounters,
    /// Per port number: MACs learned on it, its `mac-limit` (0: none) and the
    /// MACs refused because of that limit. One VM cannot fill the table.
    per_port: Box<[PortMacs]>,
}

#[derive(Default)]
struct PortMacs {
    learned: AtomicU32,
    limit: AtomicU32,
    refused: AtomicU64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub vlan: u16,
    pub mac: [u8; 6],
    pub port: u16,
    /// Behind a tunnel port: its remote endpoint (1-based), else 0.
    pub remote: u16,
    pub age_secs: u32,
}

#[inline]
fn key(vlan: u16, mac: &[u8; 6]) -> u64 {
    let m = u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]);
    1 << 63 | ((vlan as u64 & 0xfff) << 48) | m
}

impl Fdb {
    pub fn new(max_entries: usize, aging_secs: u32) -> Fdb {
        // Twice the maximum in slots keeps bucket overflow rare at full size.
        let n_buckets = (max_entries * 2 / WAYS).next_power_of_two().max(2);
        let buckets = (0..n_buckets)
            .map(|_| Bucket {
                keys: Default::default(),
                vals: Default::default(),
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Fdb {
            shift: 64 - n_buckets.trailing_zeros(),
            buckets,
            len: AtomicUsize::new(0),
            max: max_entries,
            aging_secs: AtomicU32::new(aging_secs),
            epoch: Instant::now(),
            counters: FdbCounters::default(),
            per_port: (0..=u16::MAX as usize)
                .map(|_| PortMacs::default())
                .collect(),
        }
    }

    /// Seconds since the table was made: the PMD reads it once per iteration.
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn aging_secs(&self) -> u32 {
        self.aging_secs.load(Relaxed)
    }

    #[inline]
    fn bucket(&self, k: u64) -> &Bucket {
        let h = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift;
        &self.buckets[h as usize]
    }

    /// Port number for (vlan, mac), if learned.
    #[inline]
    pub fn lookup(&self, vlan: u16, mac: &[u8; 6]) -> Option<u16> {
        self.lookup_at(vlan, mac).map(|(port, _)| port)
    }

    /// (port number, tunnel remote or 0) for (vlan, mac), if learned.
    #[inline]
    pub fn lookup_at(&self, vlan: u16, mac: &[u8; 6]) -> Option<(u16, u16)> {
        let k = key(vlan, mac);
        let b = self.bucket(k);
        for i in 0..WAYS {
            if b.keys[i].load(Relaxed) == k {
                let v = b.vals[i].load(Relaxed);
                let port = v as u16;
                return (port != 0).then_some((port, (v >> 16) as u16));
            }
        }
        None
    }

    /// Sets how many MACs port `port` may have learned (0: no limit).
    pub fn set_port_limit(&self, port: u16, limit: u32) {
        self.per_port[port as usize].limit.store(limit, Relaxed);
    }

    /// (MACs learned on the port now, MACs refused by its limit so far).
    pub fn port_macs(&self, port: u16) -> (u32, u64) {
        let p = &self.per_port[port as usize];
        (p.learned.load(Relaxed), p.refused.load(Relaxed))
    }

    /// Takes one more MAC for `port`, unless its limit is reached (then counted).
    fn admit(&self, port: u16) -> bool {
        let p = &self.per_port[port as usize];
        let limit = p.limit.load(Relaxed);
        if limit != 0 && p.learned.load(Relaxed) >= limit {
            p.refused.fetch_add(1, Relaxed);
            self.counters.refused.fetch_add(1, Relaxed);
            return false;
        }
        p.learned.fetch_add(1, Relaxed);
        true
    }

    fn release(&self, port: u16) {
        if port != 0 {
            let _ = self.per_port[port as usize]
                .learned
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Records that (vlan, mac) was seen on `port` at `now`.
    #[inline]
    pub fn learn(&self, vlan: u16, mac: &[u8; 6], port: u16, now: u32) {
        self.learn_at(vlan, mac, port, 0, now)
    }

    /// Records that (vlan, mac) was seen on `port`, behind its tunnel
    /// endpoint `remote` (0: not a tunnel), at `now`.
    #[inline]
    pub fn learn_at(&self, vlan: u16, mac: &[u8; 6], port: u16, remote: u16, now: u32) {
        let k = key(vlan, mac);
        let b = self.bucket(k);
        let v = (now as u64) << 32 | (remote as u64) << 16 | port as u64;
        for i in 0..WAYS {
            if b.keys[i].load(Relaxed) == k {
                let old = b.vals[i].load(Relaxed);
                if old != v {
                    let old_port = old as u16;
                    if old_port != port && old_port != 0 {
                        // A move: the new port must have room under its limit.
                        if !self.admit(port) {
                            return;
                        }
                        self.release(old_port);
                        self.counters.moved.fetch_add(1, Relaxed);
                    } else if old_port == port && (old >> 16) as u16 != remote {
                        // From one remote endpoint of a tunnel to another.
                        self.counters.moved.fetch_add(1, Relaxed);
                    }
                    b.vals[i].store(v, Relaxed);
                }
                return;
            }
        }
        if self.len.load(Relaxed) >= self.max {
            self.counters.refused.fetch_add(1, Relaxed);
            return;
        }
        if !self.admit(port) {
            return;
        }
        for i in 0..WAYS {
            if b.keys[i].load(Relaxed) == 0
                && b.keys[i].compare_exchange(0, k, SeqCst, Relaxed).is_ok()
            {
                // Another PMD may have inserted the same MAC into another way
                // at the same time. In the total order of these SeqCst
                // operations the later inserter sees the earlier one and
                // withdraws (both may: the next frame learns it again).
                if (0..WAYS).any(|j| j != i && b.keys[j].load(SeqCst) == k) {
                    b.keys[i].store(0, SeqCst);
                    self.release(port);
                    return;
                }
                b.vals[i].store(v, Relaxed);
                self.len.fetch_add(1, Relaxed);
                self.counters.learned.fetch_add(1, Relaxed);
                return;
            }
        }
        // Every way of this bucket is taken.
        self.release(port);
        self.counters.refused.fetch_add(1, Relaxed);
    }

    /// Removes entries matching `pred(port, last_seen)`; returns how many.
    fn remove_where(&self, pred: impl Fn(u16, u32) -> bool) -> u64 {
        let mut n = 0;
        for b in self.buckets.iter() {
            for i in 0..WAYS {
                if b.keys[i].load(Relaxed) == 0 {
                    continue;
                }
                let v = b.vals[i].load(Relaxed);
                if pred(v as u16, (v >> 32) as u32) {
                    b.vals[i].store(0, Relaxed);
                    b.keys[i].store(0, Relaxed);
                    self.len.fetch_sub(1, Relaxed);
                    self.release(v as u16);
                    n += 1;
                }
            }
        }
        n
    }

    /// Drops entries not seen for the aging time (housekeeping, once a second).
    pub fn age(&self, now: u32) -> u64 {
        let limit = self.aging_secs();
        let n = self.remove_where(|port, seen| port != 0 && now.saturating_sub(seen) >= limit);
        self.counters.aged.fetch_add(n, Relaxed);
        n
    }

    pub fn flush_port(&self, port: u16) -> u64 {
        let n = self.remove_where(|p, _| p == port);
        self.counters.flushed.fetch_add(n, Relaxed);
        n
    }

    pub fn flush(&self) -> u64 {
        let n = self.remove_where(|_, _| true);
        self.counters.flushed.fetch_add(n, Relaxed);
        n
    }

    pub fn entries(&self) -> Vec<FdbEntry> {
        let now = self.now();
        let mut out = Vec::new();
        for b in self.buckets.iter() {
            for i in 0..WAYS {
                let k = b.keys[i].load(Relaxed);
                let v = b.vals[i].load(Relaxed);
                if k == 0 || v as u16 == 0 {
                    continue;
                }
                let m = k.to_be_bytes();
                out.push(FdbEntry {
                    vlan: ((k >> 48) & 0xfff) as u16,
                    mac: [m[2], m[3], m[4], m[5], m[6], m[7]],
                    port: v as u16,
                    remote: (v >> 16) as u16,
                    age_secs: now.saturating_sub((v >> 32) as u32),
                });
            }
        }
        out.sort_by_key(|a| (a.port, a.vlan, a.mac));
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn mac(i: u32) -> [u8; 6] {
        let b = i.to_be_bytes();
        [0x02, 0, b[0], b[1], b[2], b[3]]
    }

    #[test]
    fn a_mac_behind_a_tunnel_remembers_its_remote_and_moves_between_remotes() {
        let f = Fdb::new(64, 300);
        f.learn_at(10, &mac(1), 3, 2, 7);
        assert_eq!(f.lookup_at(10, &mac(1)), Some((3, 2)));
        assert_eq!(f.lookup(10, &mac(1)), Some(3));
        f.learn_at(10, &mac(1), 3, 2, 8);
        assert_eq!(f.counters.moved.load(Relaxed), 0, "seen again, same remote");
        f.learn_at(10, &mac(1), 3, 1, 9);
        assert_eq!(f.lookup_at(10, &mac(1)), Some((3, 1)));
        assert_eq!(
            f.counters.moved.load(Relaxed),
            1,
            "another remote of the same port"
        );
        assert_eq!(f.port_macs(3).0, 1, "still one MAC on the port");
        f.learn(10, &mac(1), 4, 10);
        assert_eq!(f.lookup_at(10, &mac(1)), Some((4, 0)), "to a local port");
        let e = &f.entries()[0];
        assert_eq!((e.port, e.remote), (4, 0));
        // Aging reads the time from its new place.
        f.learn_at(10, &mac(2), 3, 1, 100);
        assert_eq!(
            f.age(10 + 300),
            1,
            "mac(1), last seen at 10, ages; mac(2) stays"
        );
        assert_eq!(f.lookup_at(10, &mac(2)), Some((3, 1)));
        assert_eq!(f.age(100 + 300), 1);
        assert!(f.is_empty());
    }

    #[test]
    fn learn_lookup_move() {
        let f = Fdb::new(64, 300);
        assert_eq!(f.lookup(0, &mac(1)), None);
        f.learn(0, &mac(1), 3, 0);
        assert_eq!(f.lookup(0, &mac(1)), Some(3));
        assert_eq!(f.lookup(5, &mac(1)), None, "VLANs are separate");
        f.learn(0, &mac(1), 4, 1);
        assert_eq!(f.lookup(0, &mac(1)), Some(4), "a moved MAC follows");
        assert_eq!(f.counters.moved.load(Relaxed), 1);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn size_limit_refuses_and_counts() {
        let f = Fdb::new(16, 300);
        for i in 0..40 {
            f.learn(0, &mac(i), 1, 0);
        }
        assert!(f.len() <= 16);
        assert_eq!(f.len() as u64 + f.counters.refused.load(Relaxed), 40);
    }

    #[test]
    fn aging_and_flush() {
        let f = Fdb::new(64, 10);
        f.learn(0, &mac(1), 1, 0);
        f.learn(0, &mac(2), 2, 5);
        f.learn(7, &mac(3), 2, 5);
        assert_eq!(f.age(9), 0);
        assert_eq!(f.age(10), 1);
        assert_eq!(f.lookup(0, &mac(1)), None);
        assert_eq!(f.flush_port(2), 2);
        assert!(f.is_empty());
        f.learn(0, &mac(9), 1, 0);
        assert_eq!(f.entries()[0].mac, mac(9));
        assert_eq!(f.flush(), 1);
    }

    #[test]
    fn full_table_of_default_size_mostly_fits() {
        let f = Fdb::new(8192, 300);
        for i in 0..8192 {
            f.learn(1, &mac(i), 1, 0);
        }
        // A few bucket collisions may refuse; nearly all must fit.
        assert!(f.len() > 8100, "only {} of 8192 fit", f.len());
    }
}

#[cfg(test)]
mod limit_tests {
    use super::tests::mac;
    use super::*;

    /// Issue 12: one port (one VM) cannot fill the table for everyone.
    #[test]
    fn a_port_learns_no_more_than_its_mac_limit() {
        let f = Fdb::new(1024, 10);
        f.set_port_limit(1, 2);
        for i in 0..5 {
            f.learn(0, &mac(i), 1, 0);
        }
        assert_eq!(f.port_macs(1), (2, 3), "2 learned, 3 refused and counted");
        assert_eq!(f.lookup(0, &mac(2)), None);
        for i in 10..20 {
            f.learn(0, &mac(i), 2, 0);
        }
        assert_eq!(f.port_macs(2), (10, 0), "other ports are not limited");
        // A MAC moving onto a full port stays where it was.
        f.learn(0, &mac(10), 1, 1);
        assert_eq!(f.lookup(0, &mac(10)), Some(2));
        assert_eq!(f.port_macs(1).1, 4);
        // Aging makes room again; a move out frees one too.
        f.learn(0, &mac(0), 2, 5);
        assert_eq!(f.port_macs(1).0, 1);
        f.learn(0, &mac(10), 1, 5);
        assert_eq!(f.lookup(0, &mac(10)), Some(1));
        assert_eq!(f.port_macs(1).0, 2);
        f.age(16);
        assert_eq!(f.port_macs(1).0, 0, "aged entries count no more");
        f.set_port_limit(1, 0);
        for i in 30..40 {
            f.learn(0, &mac(i), 1, 16);
        }
        assert_eq!(f.port_macs(1).0, 10, "no limit");
    }
}

#[cfg(test)]
mod race_tests {
    use super::tests::mac;
    use super::*;

    /// Two PMDs learning the same new MACs at once must not insert any twice
    /// (a duplicate outlives a move or an aging of the other copy).
    #[test]
    fn concurrent_learning_never_duplicates_a_mac() {
        let f = Fdb::new(1 << 16, 300);
        let n = 40_000u32;
        std::thread::scope(|s| {
            for t in 0..2u16 {
                let f = &f;
                s.spawn(move || {
                    for i in 0..n {
                        f.learn(0, &mac(i), 1 + t, 0);
                    }
                });
            }
        });
        let entries = f.entries();
        let mut seen = std::collections::HashSet::new();
        let dups = entries
            .iter()
            .filter(|e| !seen.insert((e.vlan, e.mac)))
            .count();
        assert_eq!(dups, 0, "{dups} MACs inserted twice");
        assert_eq!(f.len(), entries.len(), "len counts every entry once");
    }
}
