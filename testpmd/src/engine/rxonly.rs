//! rxonly: receive, check each payload (checksum, latency stamp), free.

use super::Engine;
use crate::stream::Stream;
use pmd::PoolCache;

pub struct RxOnly;

impl Engine for RxOnly {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let n = s.receive(cache);
        s.inspect_and_free(cache);
        n
    }
}
