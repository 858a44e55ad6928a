//! txonly: generate checked frames (size, flows and addresses from the
//! command line). With --latency it stamps them and also receives, so one
//! process measures the round trip through a switch. With --tx-offload it
//! sends a TCP stream instead, leaving checksums or segmentation to the port
//! (`crate::tcp`).

use super::{Engine, EngineSpec};
use crate::frame::{now_ns, Generator};
use crate::stream::Stream;
use crate::tcp::TcpGen;
use pmd::{Mbuf, PoolCache};

pub struct TxOnly {
    gen: Generator,
    tcp: Option<TcpGen>,
    flow: u32,
    receive: bool,
}

impl TxOnly {
    pub fn new(spec: &EngineSpec) -> TxOnly {
        TxOnly {
            gen: Generator::new(spec.frame.clone(), spec.seed, spec.latency),
            tcp: spec.tx_offload.map(|o| TcpGen::new(&spec.frame, o)),
            flow: 0,
            receive: spec.latency,
        }
    }
}

/// Fills the stream's batch with up to `quota` frames, each built by `fill`;
/// shared with flowgen.
pub(super) fn generate(
    s: &mut Stream,
    cache: &mut PoolCache,
    now: u64,
    mut fill: impl FnMut(&mut Mbuf),
) -> usize {
    // Frames built while the link is down would only count as drops.
    if !s.tx.link_up() {
        return 0;
    }
    let quota = s.tx_quota(now);
    let mut n = 0;
    while n < quota {
        let Some(mut m) = cache.alloc() else { break };
        fill(&mut m);
        if let Err(m) = s.batch.push(m) {
            cache.free(m);
            break;
        }
        n += 1;
    }
    if n > 0 {
        s.spent(n);
        let sent = s.send(cache);
        if sent < n {
            // The ring is full: the receiver is the bottleneck. Give it the
            // core's shared resources for a moment instead of building
            // frames that would only be dropped.
            for _ in 0..256 {
                std::hint::spin_loop();
            }
        }
    }
    n
}

impl Engine for TxOnly {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let mut got = 0;
        if self.receive {
            got = s.receive(cache);
            s.inspect_and_free(cache);
        }
        let now = now_ns();
        // One flow per burst, as testpmd's --txonly-multi-flow varies it.
        let flow = self.flow;
        self.flow = self.flow.wrapping_add(1);
        if let Some(tcp) = &mut self.tcp {
            return got + generate(s, cache, now, |m| tcp.fill(m));
        }
        let gen = &mut self.gen;
        got + generate(s, cache, now, |m| gen.fill(m, flow, false, now))
    }
}
