//! mac: forward with the source MAC set to the sending port's and the
//! destination to its peer's (`--eth-peer`).

use super::Engine;
use crate::stream::Stream;
use pmd::PoolCache;

pub struct Mac;

impl Engine for Mac {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        let n = s.receive(cache);
        if n == 0 {
            return 0;
        }
        for i in 0..s.batch.len() {
            let m = s.batch.get_mut(i);
            if m.len() >= 12 {
                let d = m.data_mut();
                d[0..6].copy_from_slice(&s.peer_mac);
                d[6..12].copy_from_slice(&s.tx_mac);
            }
        }
        s.send(cache);
        n
    }
}
