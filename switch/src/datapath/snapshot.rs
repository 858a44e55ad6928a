//! What a PMD thread works from: an immutable picture of the ports and of
//! which rx queues each PMD polls. The control side builds a new one for
//! every change; a PMD swaps to it between iterations, and an old port lives
//! until the last PMD drops the snapshot that held it (RCU by `Arc`).

use super::placement;
use super::port_admin::PortAdmin;
use super::stats::SwitchDrops;
use crate::flow::classifier::Classifier;
use crate::flow::vlan::PortVlan;
use crate::tunnel::{Neighbour, Tunnel};
use pmd::Port;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

/// A port as the switch knows it.
pub struct SwitchPort {
    /// OpenFlow-style port number; never reused while the daemon runs, so a
    /// stale FDB entry can never point at a newer port (a restart numbers
    /// ports anew, in the persisted order). 0 is "none".
    pub no: u16,
    pub name: String,
    /// The driver, seen only through `pmd`'s port API.
    pub port: Arc<dyn Port>,
    /// Per rx queue: cycles PMDs spent on it (for `cycles` assignment and
    /// pmd-rxq-show). Written by the one PMD polling the queue.
    pub rxq_cycles: Vec<std::sync::atomic::AtomicU64>,
    /// Per rx queue: cycles it cost in the last measured interval (set by
    /// `bridge::auto_lb`'s sampler; what `cycles` placement balances).
    pub rxq_load: Vec<std::sync::atomic::AtomicU64>,
    /// Per rx queue: a PMD core it is pinned to (OVS pmd-rxq-affinity).
    pub rxq_affinity: Vec<Option<usize>>,
    /// Per rx queue: polled, notified or parked (`rx_modes::RxqMode`), and
    /// how often a notification (or a late look) brought it back. Written
    /// by the one PMD polling the queue.
    pub rxq_mode: Vec<std::sync::atomic::AtomicU8>,
    pub rxq_wakeups: Vec<std::sync::atomic::AtomicU64>,
    pub rxq_late_wakeups: Vec<std::sync::atomic::AtomicU64>,
    /// Frames received on this port that the switch dropped, by reason.
    pub drops: SwitchDrops,
}

impl SwitchPort {
    pub fn new(no: u16, name: String, port: Arc<dyn Port>) -> SwitchPort {
        let n = port.n_rxq();
        SwitchPort {
            no,
            name,
            port,
            rxq_cycles: (0..n).map(|_| Default::default()).collect(),
            rxq_load: (0..n).map(|_| Default::default()).collect(),
            rxq_affinity: vec![None; n],
            rxq_mode: (0..n).map(|_| Default::default()).collect(),
            rxq_wakeups: (0..n).map(|_| Default::default()).collect(),
            rxq_late_wakeups: (0..n).map(|_| Default::default()).collect(),
            drops: SwitchDrops::default(),
        }
    }
}

/// How rx queues without affinity are spread over PMDs (OVS pmd-rxq-assign).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxqAssign {
    /// In port/queue order, one PMD after another.
    RoundRobin,
    /// Busiest queue first, each to the PMD with the least assigned cycles.
    Cycles,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxqRef {
    /// Index into `Snapshot::ports`.
    pub slot: u16,
    pub qid: u16,
}

/// What a slot is beyond a port: most are plain; a tunnel port's frames
/// are encapsulated and sent through its underlay; an underlay's received
/// frames are decapsulated (or answered, for ARP) instead of switched.
#[derive(Clone, Default)]
pub enum Role {
    #[default]
    Plain,
    Tunnel {
        tunnel: Arc<Tunnel>,
        /// The underlay's slot.
        underlay: usize,
    },
    Underlay(Arc<UnderlayPlan>),
}

/// The tunnels that receive through one underlay port.
pub struct UnderlayPlan {
    pub local_ip: [u8; 4],
    pub mac: [u8; 6],
    /// (UDP port, VNI) -> (tunnel slot, tunnel), sorted for binary search.
    pub tunnels: Vec<((u16, u32), usize, Arc<Tunnel>)>,
    /// The ARP entries of its tunnels' remotes by address, sorted, each once.
    pub neighbours: Vec<([u8; 4], Arc<Neighbour>)>,
}

impl UnderlayPlan {
    #[inline]
    pub fn tunnel(&self, dst_port: u16, vni: u32) -> Option<(usize, &Arc<Tunnel>)> {
        let i = self
            .tunnels
            .binary_search_by_key(&(dst_port, vni), |t| t.0)
            .ok()?;
        Some((self.tunnels[i].1, &self.tunnels[i].2))
    }

    /// The ARP entry for `ip`, if a tunnel here has a remote there.
    pub fn neighbour(&self, ip: [u8; 4]) -> Option<&Neighbour> {
        let i = self.neighbours.binary_search_by_key(&ip, |n| n.0).ok()?;
        Some(&self.neighbours[i].1)
    }

    #[inline]
    pub fn listens_on(&self, dst_port: u16) -> bool {
        self.tunnels.iter().any(|t| t.0 .0 == dst_port)
    }
}

/// A tunnel port as the bridge hands it to a snapshot: its port number,
/// itself, and its underlay's port number.
pub struct TunnelRef {
    pub no: u16,
    pub tunnel: Arc<Tunnel>,
    pub underlay_no: u16,
}

#[derive(Clone)]
pub struct Snapshot {
    pub generation: u64,
    pub ports: Vec<Arc<SwitchPort>>,
    /// Port number -> slot (u16::MAX: no such port).
    slot_of: Vec<u16>,
    /// Per PMD (same order as the configured cores): rx queues to poll.
    pub poll: Vec<Vec<RxqRef>>,
    /// Per slot: the port's VLAN options (the `normal` action applies them).
    pub vlans: Vec<PortVlan>,
    /// Per slot: what PORT_MOD turned off.
    pub admin: Vec<PortAdmin>,
    /// The rules, compiled.
    pub flows: Arc<Classifier>,
    /// Per slot: tunnel, underlay or plain.
    pub roles: Vec<Role>,
}

/// What a fresh bridge runs: `table=0,priority=0,actions=normal`.
pub fn default_flows() -> Arc<Classifier> {
    static DEFAULT: OnceLock<Arc<Classifier>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(crate::flow::table::FlowTable::new(1).compile()))
        .clone()
}

impl Snapshot {
    pub fn empty(n_pmds: usize) -> Snapshot {
        Snapshot {
            generation: 0,
            ports: Vec::new(),
            slot_of: Vec::new(),
            poll: vec![Vec::new(); n_pmds],
            vlans: Vec::new(),
            admin: Vec::new(),
            flows: default_flows(),
            roles: Vec::new(),
        }
    }

    /// Sets the rules.
    pub fn with_flows(mut self, flows: Arc<Classifier>) -> Snapshot {
        self.flows = flows;
        self
    }

    /// Sets VLAN options by port number (ports not named keep the default trunk).
    pub fn with_vlans(mut self, by_no: &HashMap<u16, PortVlan>) -> Snapshot {
        for (slot, p) in self.ports.iter().enumerate() {
            if let Some(v) = by_no.get(&p.no) {
                self.vlans[slot] = v.clone();
            }
        }
        self
    }

    /// Sets PORT_MOD settings by port number (ports not named: all on).
    pub fn with_admin(mut self, by_no: &HashMap<u16, PortAdmin>) -> Snapshot {
        for (slot, p) in self.ports.iter().enumerate() {
            if let Some(a) = by_no.get(&p.no) {
                self.admin[slot] = *a;
            }
        }
        self
    }

    /// Sets the tunnel ports and their underlays. A tunnel whose underlay
    /// is not in the snapshot stays plain (the bridge never lets that be).
    pub fn with_tunnels(mut self, tunnels: &[TunnelRef]) -> Snapshot {
        let mut plans: HashMap<usize, UnderlayPlan> = HashMap::new();
        for t in tunnels {
            let (Some(slot), Some(u)) = (self.slot(t.no), self.slot(t.underlay_no)) else {
                continue;
            };
            self.roles[slot] = Role::Tunnel {
                tunnel: t.tunnel.clone(),
                underlay: u,
            };
            let plan = plans.entry(u).or_insert_with(|| UnderlayPlan {
                local_ip: t.tunnel.opts.local_ip.octets(),
                mac: t.tunnel.underlay_mac,
                tunnels: Vec::new(),
                neighbours: Vec::new(),
            });
            for r in t.tunnel.remotes.iter() {
                plan.neighbours.push((r.ip.octets(), r.neigh.clone()));
            }
            plan.tunnels.push((
                (t.tunnel.opts.dst_port, t.tunnel.opts.vni),
                slot,
                t.tunnel.clone(),
            ));
        }
        for (u, mut plan) in plans {
            plan.tunnels.sort_by_key(|t| t.0);
            plan.neighbours.sort_by_key(|n| n.0);
            plan.neighbours.dedup_by_key(|n| n.0);
            self.roles[u] = Role::Underlay(Arc::new(plan));
        }
        self
    }

    /// Builds a snapshot for PMDs on `cores` (in PMD order), its queues
    /// placed by [`placement::place`] from each queue's last measured load.
    /// The generation is set when the snapshot is published.
    pub fn build(mut ports: Vec<Arc<SwitchPort>>, cores: &[usize], policy: RxqAssign) -> Snapshot {
        ports.sort_by_key(|p| p.no);
        let max_no = ports.iter().map(|p| p.no as usize).max().unwrap_or(0);
        let mut slot_of = vec![u16::MAX; max_no + 1];
        let mut queues = Vec::new();
        for (slot, p) in ports.iter().enumerate() {
            slot_of[p.no as usize] = slot as u16;
            if !p.port.polled() {
                continue;
            }
            for qid in 0..p.port.n_rxq() {
                queues.push(placement::Queue {
                    rq: RxqRef {
                        slot: slot as u16,
                        qid: qid as u16,
                    },
                    pinned: p
                        .rxq_affinity
                        .get(qid)
                        .copied()
                        .flatten()
                        .and_then(|c| cores.iter().position(|&x| x == c)),
                    load: p.rxq_load[qid].load(Relaxed),
                });
            }
        }
        let poll = placement::place(&queues, cores.len(), policy);
        Snapshot {
            generation: 0,
            vlans: vec![PortVlan::default(); ports.len()],
            admin: vec![PortAdmin::default(); ports.len()],
            roles: vec![Role::Plain; ports.len()],
            ports,
            slot_of,
            poll,
            flows: default_flows(),
        }
    }

    /// The queues this snapshot polls on another PMD than `old` does
    /// (by driver and queue), to be taken off every poll list first: a
    /// queue moves only once the PMD that had it has let go, so two PMDs
    /// never poll one ring. None when nothing moves.
    pub fn without_moved_queues(&self, old: &Snapshot) -> Option<Snapshot> {
        let key = |s: &Snapshot, r: &RxqRef| {
            (
                Arc::as_ptr(&s.ports[r.slot as usize].port) as *const () as usize,
                r.qid,
            )
        };
        let mut was: HashMap<(usize, u16), usize> = HashMap::new();
        for (pmd, list) in old.poll.iter().enumerate() {
            for r in list {
                was.insert(key(old, r), pmd);
            }
        }
        let moved = |pmd: usize, r: &RxqRef| matches!(was.get(&key(self, r)), Some(&p) if p != pmd);
        if !self
            .poll
            .iter()
            .enumerate()
            .any(|(pmd, l)| l.iter().any(|r| moved(pmd, r)))
        {
            return None;
        }
        let mut between = self.clone();
        for (pmd, list) in between.poll.iter_mut().enumerate() {
            list.retain(|r| !moved(pmd, r));
        }
        Some(between)
    }

    /// The rx queues PMD `pmd` polls (empty for an unknown PMD).
    pub fn poll_list(&self, pmd: usize) -> &[RxqRef] {
        self.poll.get(pmd).map(Vec::as_slice).unwrap_or(&[])
    }

    #[inline]
    pub fn slot(&self, port_no: u16) -> Option<usize> {
        match self.slot_of.get(port_no as usize) {
            Some(&s) if s != u16::MAX => Some(s as usize),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmd::ring::RingPort;

    fn sp(no: u16) -> Arc<SwitchPort> {
        let (a, _b) = RingPort::pair(4);
        Arc::new(SwitchPort::new(no, format!("p{no}"), a))
    }

    #[test]
    fn queues_spread_round_robin() {
        let s = Snapshot::build(vec![sp(5), sp(2), sp(9)], &[1, 2], RxqAssign::RoundRobin);
        assert_eq!(s.slot(2), Some(0));
        assert_eq!(s.slot(9), Some(2));
        assert_eq!(s.slot(3), None);
        assert_eq!(s.slot(1000), None);
        assert_eq!(
            s.poll[0],
            vec![RxqRef { slot: 0, qid: 0 }, RxqRef { slot: 2, qid: 0 }]
        );
        assert_eq!(s.poll[1], vec![RxqRef { slot: 1, qid: 0 }]);
    }

    #[test]
    fn cycles_policy_balances_and_affinity_isolates() {
        use std::sync::atomic::Ordering;
        let ports = vec![sp(1), sp(2), sp(3), sp(4)];
        for (p, c) in ports.iter().zip([100u64, 90, 10, 5]) {
            p.rxq_load[0].store(c, Ordering::Relaxed);
        }
        let s = Snapshot::build(ports.clone(), &[1, 2], RxqAssign::Cycles);
        let load = |i: usize| {
            s.poll[i]
                .iter()
                .map(|r| [100u64, 90, 10, 5][r.slot as usize])
                .sum::<u64>()
        };
        assert!(load(0).abs_diff(load(1)) <= 15, "{:?}", s.poll);
        let mut pinned = vec![sp(1), sp(2), sp(3)];
        Arc::get_mut(&mut pinned[0]).unwrap().rxq_affinity[0] = Some(2);
        let s = Snapshot::build(pinned, &[1, 2], RxqAssign::RoundRobin);
        assert_eq!(
            s.poll[1],
            vec![RxqRef { slot: 0, qid: 0 }],
            "core 2 polls only its pinned queue"
        );
        assert_eq!(s.poll[0].len(), 2);
    }

    #[test]
    fn a_moved_queue_leaves_every_poll_list_first() {
        use std::sync::atomic::Ordering;
        let ports = vec![sp(1), sp(2), sp(3), sp(4)];
        let old = Snapshot::build(ports.clone(), &[1, 2], RxqAssign::Cycles);
        assert!(old.without_moved_queues(&old).is_none());
        // Ports 1 and 3 (PMD 0 by count) turn busy: one of them moves.
        ports[0].rxq_load[0].store(900, Ordering::Relaxed);
        ports[2].rxq_load[0].store(800, Ordering::Relaxed);
        let new = Snapshot::build(ports.clone(), &[1, 2], RxqAssign::Cycles);
        let between = new.without_moved_queues(&old).expect("queues move");
        let n = |s: &Snapshot| s.poll.iter().map(Vec::len).sum::<usize>();
        assert_eq!(n(&new), 4);
        let gone = n(&new) - n(&between);
        assert!(gone >= 1, "{:?} -> {:?}", old.poll, new.poll);
        // What stays, stays where it was in both.
        for (pmd, l) in between.poll.iter().enumerate() {
            for r in l {
                assert!(old.poll[pmd].contains(r) && new.poll[pmd].contains(r));
            }
        }
    }
}
