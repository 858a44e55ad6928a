//! What a PMD thread works from: an immutable picture of the ports and of
//! which rx queues each PMD polls. The control side builds a new one for
//! every change; a PMD swaps to it between iterations, and an old port lives
//! until the last PMD drops the snapshot that held it (RCU by `Arc`).

use pmd::vhost::VhostPort;
use pmd::Port;
use std::sync::Arc;

/// A port as the switch knows it.
pub struct SwitchPort {
    /// OpenFlow-style port number; never reused while the daemon runs, so a
    /// stale FDB entry can never point at a newer port. 0 is "none".
    pub no: u16,
    pub name: String,
    pub port: Arc<dyn Port>,
    /// Set for vhost-user ports (control-plane view).
    pub vhost: Option<Arc<VhostPort>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxqRef {
    /// Index into `Snapshot::ports`.
    pub slot: u16,
    pub qid: u16,
}

pub struct Snapshot {
    pub generation: u64,
    pub ports: Vec<Arc<SwitchPort>>,
    /// Port number -> slot (u16::MAX: no such port).
    slot_of: Vec<u16>,
    /// Per PMD (same order as the configured cores): rx queues to poll.
    pub poll: Vec<Vec<RxqRef>>,
}

impl Snapshot {
    pub fn empty(n_pmds: usize) -> Snapshot {
        Snapshot { generation: 0, ports: Vec::new(), slot_of: Vec::new(), poll: vec![Vec::new(); n_pmds] }
    }

    /// Builds a snapshot, spreading rx queues over PMDs round-robin in port order.
    pub fn build(generation: u64, mut ports: Vec<Arc<SwitchPort>>, n_pmds: usize) -> Snapshot {
        ports.sort_by_key(|p| p.no);
        let max_no = ports.iter().map(|p| p.no as usize).max().unwrap_or(0);
        let mut slot_of = vec![u16::MAX; max_no + 1];
        let n_pmds = n_pmds.max(1);
        let mut poll = vec![Vec::new(); n_pmds];
        let mut next = 0;
        for (slot, p) in ports.iter().enumerate() {
            slot_of[p.no as usize] = slot as u16;
            for qid in 0..p.port.n_rxq() {
                poll[next % n_pmds].push(RxqRef { slot: slot as u16, qid: qid as u16 });
                next += 1;
            }
        }
        Snapshot { generation, ports, slot_of, poll }
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
        Arc::new(SwitchPort { no, name: format!("p{no}"), port: a, vhost: None })
    }

    #[test]
    fn queues_spread_round_robin() {
        let s = Snapshot::build(1, vec![sp(5), sp(2), sp(9)], 2);
        assert_eq!(s.slot(2), Some(0));
        assert_eq!(s.slot(9), Some(2));
        assert_eq!(s.slot(3), None);
        assert_eq!(s.slot(1000), None);
        assert_eq!(s.poll[0], vec![RxqRef { slot: 0, qid: 0 }, RxqRef { slot: 2, qid: 0 }]);
        assert_eq!(s.poll[1], vec![RxqRef { slot: 1, qid: 0 }]);
    }
}
