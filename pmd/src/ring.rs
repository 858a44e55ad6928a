//! An in-process port pair: what one side transmits, the other receives.
//! Used by unit tests of the datapath and as a loopback.

use crate::mbuf::{Batch, Mbuf, PoolCache};
use crate::port::{DropReason, Port, PortInfo, QueueStats};
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

pub struct RingPort {
    rx: Arc<ArrayQueue<Mbuf>>,
    tx: Arc<ArrayQueue<Mbuf>>,
    rx_stats: QueueStats,
    tx_stats: QueueStats,
}

impl RingPort {
    /// Two ports joined back to back, each direction holding `depth` packets.
    pub fn pair(depth: usize) -> (Arc<RingPort>, Arc<RingPort>) {
        let a_to_b = Arc::new(ArrayQueue::new(depth));
        let b_to_a = Arc::new(ArrayQueue::new(depth));
        let a = RingPort {
            rx: b_to_a.clone(),
            tx: a_to_b.clone(),
            rx_stats: QueueStats::default(),
            tx_stats: QueueStats::default(),
        };
        let b = RingPort {
            rx: a_to_b,
            tx: b_to_a,
            rx_stats: QueueStats::default(),
            tx_stats: QueueStats::default(),
        };
        (Arc::new(a), Arc::new(b))
    }

    /// A port whose transmissions come back on its own receive queue.
    pub fn loopback(depth: usize) -> Arc<RingPort> {
        let q = Arc::new(ArrayQueue::new(depth));
        Arc::new(RingPort {
            rx: q.clone(),
            tx: q,
            rx_stats: QueueStats::default(),
            tx_stats: QueueStats::default(),
        })
    }

    /// Frees whatever is still queued towards this port (test teardown).
    pub fn drain(&self, cache: &mut PoolCache) {
        while let Some(m) = self.rx.pop() {
            cache.free(m);
        }
    }
}

impl Port for RingPort {
    fn kind(&self) -> &'static str {
        "ring"
    }
    fn n_rxq(&self) -> usize {
        1
    }
    fn n_txq(&self) -> usize {
        1
    }

    fn rx_burst(&self, _qid: usize, _cache: &mut PoolCache, out: &mut Batch) -> usize {
        let mut n = 0;
        let mut bytes = 0;
        while out.room() > 0 {
            let Some(m) = self.rx.pop() else { break };
            bytes += m.len() as u64;
            let _ = out.push(m);
            n += 1;
        }
        self.rx_stats.count(n as u64, bytes);
        n
    }

    fn tx_burst(&self, _qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize {
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        // Receivers expect order: hand over from the front.
        pkts.drain_front(pkts.len(), |m| {
            let len = m.len() as u64;
            match self.tx.push(m) {
                Ok(()) => {
                    sent += 1;
                    bytes += len;
                }
                Err(m) => {
                    dropped += 1;
                    cache.free(m);
                }
            }
        });
        self.tx_stats.count(sent, bytes);
        self.tx_stats.drop_n(DropReason::RingFull, dropped);
        sent as usize
    }

    fn rxq_stats(&self, _qid: usize) -> &QueueStats {
        &self.rx_stats
    }
    fn txq_stats(&self, _qid: usize) -> &QueueStats {
        &self.tx_stats
    }
    fn link_up(&self) -> bool {
        true
    }
    fn info(&self) -> PortInfo {
        vec![("depth", self.tx.capacity().to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::Pool;

    #[test]
    fn pair_carries_packets_in_order_and_counts_overflow() {
        let pool = Pool::new(256, false).unwrap();
        let mut c = PoolCache::new(pool.clone());
        let (a, b) = RingPort::pair(4);
        let mut batch = Batch::new();
        for i in 0..6u8 {
            let mut m = c.alloc().unwrap();
            m.fill(&[i; 60]);
            batch.push(m).unwrap();
        }
        assert_eq!(a.tx_burst(0, &mut c, &mut batch), 4);
        assert!(batch.is_empty());
        assert_eq!(a.txq_stats(0).drops(DropReason::RingFull), 2);
        let mut got = Batch::new();
        assert_eq!(b.rx_burst(0, &mut c, &mut got), 4);
        assert_eq!(got.get(0).data()[0], 0);
        assert_eq!(got.get(3).data()[0], 3);
        assert_eq!(b.rxq_stats(0).snapshot().bytes, 240);
        c.free_batch(&mut got);
        assert_eq!(pool.stats().in_use, 0);
    }
}
