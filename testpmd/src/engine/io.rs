//! io: receive a burst, send it unchanged.

use super::Engine;
use crate::stream::Stream;
use pmd::PoolCache;

pub struct Io;

impl Engine for Io {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let n = s.receive(cache);
        if n > 0 {
            s.send(cache);
        }
        n
    }
}
