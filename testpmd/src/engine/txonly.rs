//! txonly: generate checked frames (size, flows and addresses from the
//! command line). With --latency it stamps them and also receives, so one
//! process measures the round trip through a switch.

use super::{Engine, EngineSpec};
use crate::frame::{now_ns, Generator};
use crate::stream::Stream;
use pmd::PoolCache;

pub struct TxOnly {
    gen: Generator,
    flow: u32,
    receive: bool,
}

impl TxOnly {
    pub fn new(spec: &EngineSpec) -> TxOnly {
        TxOnly {
            gen: Generator::new(spec.frame.clone(), spec.seed, spec.latency),
            flow: 0,
            receive: spec.latency,
        }
    }
}

/// Fills the stream's batch with up to `quota` frames; shared with flowgen.
pub(super) fn generate(
    gen: &mut Generator,
    s: &mut Stream,
    cache: &mut PoolCache,
    now: u64,
    mut next_flow: impl FnMut() -> u32,
    vary_dst: bool,
) -> usize {
    // Frames built while the link is down would only count as drops.
    if !s.tx.link_up() {
        return 0;
    }
    let quota = s.tx_quota(now);
    let mut n = 0;
    while n < quota {
        let Some(mut m) = cache.alloc() else { break };
        gen.fill(&mut m, next_flow(), vary_dst, now);
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
        got + generate(&mut self.gen, s, cache, now, || flow, false)
    }
}
