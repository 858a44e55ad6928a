//! flowgen: generate frames whose destination IP cycles over the flows
//! packet by packet (many flows for the switch's tables), and receive.

use super::txonly::generate;
use super::{Engine, EngineSpec};
use crate::frame::{now_ns, Generator};
use crate::stream::Stream;
use pmd::PoolCache;

pub struct FlowGen {
    gen: Generator,
    flow: u32,
}

impl FlowGen {
    pub fn new(spec: &EngineSpec) -> FlowGen {
        FlowGen {
            gen: Generator::new(spec.frame.clone(), spec.seed, spec.latency),
            flow: 0,
        }
    }
}

impl Engine for FlowGen {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let got = s.receive(cache);
        s.inspect_and_free(cache);
        let now = now_ns();
        let flow = &mut self.flow;
        let gen = &mut self.gen;
        got + generate(s, cache, now, |m| {
            *flow = flow.wrapping_add(1);
            gen.fill(m, *flow, true, now);
        })
    }
}
