//! rxonly: receive, check each payload (checksum, latency stamp), free.
//! With a pause (`--rx-pause`), it stops receiving for a while in turn, so the
//! sender meets a full ring half the time (what a busy guest does).

use super::Engine;
use crate::stream::Stream;
use pmd::PoolCache;
use std::time::{Duration, Instant};

pub struct RxOnly {
    /// (on, off) and when the current on-period began.
    pause: Option<((Duration, Duration), Instant)>,
}

impl RxOnly {
    pub fn new(pause: Option<(Duration, Duration)>) -> RxOnly {
        RxOnly {
            pause: pause.map(|p| (p, Instant::now())),
        }
    }

    /// Whether this is an off-period (the clock is read only with a pause).
    fn paused(&mut self) -> bool {
        let Some(((on, off), since)) = &mut self.pause else {
            return false;
        };
        let t = since.elapsed();
        if t >= *on + *off {
            *since = Instant::now();
            return false;
        }
        t >= *on
    }
}

impl Engine for RxOnly {
    fn burst(&mut self, s: &mut Stream, cache: &mut PoolCache) -> usize {
        if self.paused() {
            return 0;
        }
        let n = s.receive(cache);
        s.inspect_and_free(cache);
        n
    }
}
