//! macswap: send each frame back with source and destination MAC swapped.

use super::Engine;
use crate::stream::Stream;
use pmd::PoolCache;

pub struct MacSwap;

impl Engine for MacSwap {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let n = s.receive(cache);
        if n == 0 {
            return 0;
        }
        for i in 0..s.batch.len() {
            let m = s.batch.get_mut(i);
            if m.len() >= 12 {
                let d = m.data_mut();
                let mut dst = [0u8; 6];
                dst.copy_from_slice(&d[0..6]);
                d.copy_within(6..12, 0);
                d[6..12].copy_from_slice(&dst);
            }
        }
        s.send(cache);
        n
    }
}
