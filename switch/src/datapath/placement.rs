//! Which PMD polls which rx queue: pinned queues first (OVS
//! pmd-rxq-affinity, which isolates their PMD), the rest by policy (OVS
//! pmd-rxq-assign). Pure functions of the queues and their measured load,
//! so `Snapshot::build` and auto-lb's dry run (`bridge::auto_lb`) place
//! queues the same way and can compare the result before moving anything.

use super::snapshot::{RxqAssign, RxqRef};

/// One rx queue to place.
#[derive(Clone, Copy, Debug)]
pub struct Queue {
    pub rq: RxqRef,
    /// The PMD (index, not core) it is pinned to.
    pub pinned: Option<usize>,
    /// Cycles it cost in the last measured interval (0: not measured yet).
    pub load: u64,
}

/// The poll list of each of `n_pmds` PMDs. Pinned queues go to their PMD,
/// which then takes no others (unless every PMD is pinned); the rest are
/// spread over the others by `policy`. Ties keep queue order, so the same
/// input gives the same placement.
pub fn place(queues: &[Queue], n_pmds: usize, policy: RxqAssign) -> Vec<Vec<RxqRef>> {
    let n_pmds = n_pmds.max(1);
    let mut poll = vec![Vec::new(); n_pmds];
    let mut isolated = vec![false; n_pmds];
    let mut free = Vec::new();
    for q in queues {
        match q.pinned.filter(|&p| p < n_pmds) {
            Some(p) => {
                poll[p].push(q.rq);
                isolated[p] = true;
            }
            None => free.push(*q),
        }
    }
    let targets = targets(&isolated);
    match policy {
        RxqAssign::RoundRobin => {
            for (i, q) in free.into_iter().enumerate() {
                poll[targets[i % targets.len()]].push(q.rq);
            }
        }
        RxqAssign::Cycles => {
            // Busiest first, each to the least loaded PMD (then the one with
            // fewest queues): OVS's `cycles`.
            free.sort_by_key(|q| std::cmp::Reverse(q.load));
            let mut load = vec![0u64; n_pmds];
            for q in free {
                let pmd = *targets
                    .iter()
                    .min_by_key(|&&t| (load[t], poll[t].len()))
                    .expect("a PMD");
                load[pmd] += q.load;
                poll[pmd].push(q.rq);
            }
        }
    }
    poll
}

/// PMDs that take unpinned queues: those without pinned ones, or all.
fn targets(isolated: &[bool]) -> Vec<usize> {
    let t: Vec<usize> = (0..isolated.len()).filter(|&i| !isolated[i]).collect();
    if t.is_empty() {
        (0..isolated.len()).collect()
    } else {
        t
    }
}

/// The load each PMD would carry under `poll` (sum of its queues' loads).
pub fn pmd_loads(poll: &[Vec<RxqRef>], load_of: impl Fn(RxqRef) -> u64) -> Vec<u64> {
    poll.iter()
        .map(|l| l.iter().map(|&r| load_of(r)).sum())
        .collect()
}

/// Population variance, as OVS's auto-lb compares assignments.
pub fn variance(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(slot: u16, load: u64, pinned: Option<usize>) -> Queue {
        Queue {
            rq: RxqRef { slot, qid: 0 },
            pinned,
            load,
        }
    }

    #[test]
    fn round_robin_follows_queue_order() {
        let p = place(
            &[q(0, 0, None), q(1, 0, None), q(2, 0, None)],
            2,
            RxqAssign::RoundRobin,
        );
        let slots = |i: usize| p[i].iter().map(|r| r.slot).collect::<Vec<_>>();
        assert_eq!((slots(0), slots(1)), (vec![0, 2], vec![1]));
    }

    #[test]
    fn cycles_splits_two_busy_queues_that_round_robin_put_together() {
        // Round robin puts slots 0 and 2 (the busy ones) on PMD 0.
        let qs = [
            q(0, 900, None),
            q(1, 1, None),
            q(2, 800, None),
            q(3, 2, None),
        ];
        let rr = place(&qs, 2, RxqAssign::RoundRobin);
        let cy = place(&qs, 2, RxqAssign::Cycles);
        let load = |r: RxqRef| qs[r.slot as usize].load;
        let (a, b) = (pmd_loads(&rr, load), pmd_loads(&cy, load));
        assert_eq!(a, vec![1700, 3]);
        assert!(b[0].abs_diff(b[1]) <= 101, "{b:?}");
        let v = |l: &[u64]| variance(&l.iter().map(|&x| x as f64).collect::<Vec<_>>());
        assert!(v(&b) < v(&a) / 10.0);
        // Unmeasured queues (load 0) spread by count, in order.
        let zero = [q(0, 0, None), q(1, 0, None), q(2, 0, None), q(3, 0, None)];
        assert_eq!(
            place(&zero, 2, RxqAssign::Cycles),
            place(&zero, 2, RxqAssign::RoundRobin)
        );
    }

    #[test]
    fn pinned_queues_isolate_their_pmd() {
        let p = place(
            &[
                q(0, 5, Some(1)),
                q(1, 9, None),
                q(2, 9, None),
                q(3, 1, Some(7)),
            ],
            2,
            RxqAssign::Cycles,
        );
        assert_eq!(p[1], vec![RxqRef { slot: 0, qid: 0 }]);
        // A pin to a PMD that does not exist is ignored.
        assert_eq!(p[0].len(), 3);
        assert_eq!(variance(&[]), 0.0);
        assert_eq!(variance(&[2.0, 4.0]), 1.0);
    }
}
