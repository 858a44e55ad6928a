//! Rx queue load and automatic rebalancing (OVS pmd-auto-lb).
//!
//! Every interval the sampler stores what each rx queue cost in it
//! (`SwitchPort::rxq_load`: what `cycles` placement balances, and what
//! `pmd-rxq-show` reports) and how busy each PMD was. With auto-lb on, when
//! a PMD that takes unpinned queues was busier than the load threshold, a
//! dry run places the queues anew from those loads; if that cuts the
//! variance of the PMDs' loads by at least the improvement threshold, the
//! bridge republishes and the queues move (without loss: see
//! `Datapath::publish`). At most one rebalance per interval.

use super::Bridge;
use crate::datapath::snapshot::{RxqAssign, Snapshot};
use crate::datapath::{placement, tsc};
use ferrovs_proto::AutoLbStatus;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoLbConfig {
    pub enabled: bool,
    /// % of a core.
    pub load_threshold: u8,
    /// % less variance.
    pub improvement_threshold: u8,
    pub interval: Duration,
}

impl Default for AutoLbConfig {
    /// OVS's defaults (its interval is one minute too).
    fn default() -> Self {
        AutoLbConfig {
            enabled: false,
            load_threshold: 95,
            improvement_threshold: 25,
            interval: Duration::from_secs(60),
        }
    }
}

pub(super) struct Sampler {
    cfg: AutoLbConfig,
    next: Option<Instant>,
    /// TSC at the last sample, and the interval it ended (cycles).
    last_tsc: u64,
    pub(super) window_cycles: u64,
    /// Per PMD: busy cycles at the last sample.
    busy: Vec<u64>,
    /// Per (port number, queue): cycles at the last sample.
    queues: HashMap<(u16, u16), u64>,
    pub(super) status: AutoLbStatus,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new(AutoLbConfig::default())
    }
}

/// What a dry run found.
#[derive(Debug, PartialEq)]
pub(super) struct DryRun {
    pub variance_now: f64,
    pub variance_new: f64,
}

impl DryRun {
    pub fn improvement_pct(&self) -> f64 {
        if self.variance_now <= 0.0 {
            return 0.0;
        }
        100.0 * (self.variance_now - self.variance_new) / self.variance_now
    }
}

impl Sampler {
    pub fn new(cfg: AutoLbConfig) -> Sampler {
        Sampler {
            cfg,
            next: None,
            last_tsc: 0,
            window_cycles: 0,
            busy: Vec::new(),
            queues: HashMap::new(),
            status: AutoLbStatus {
                enabled: cfg.enabled,
                load_threshold_pct: cfg.load_threshold,
                improvement_threshold_pct: cfg.improvement_threshold,
                interval_s: cfg.interval.as_secs(),
                last: "no interval measured yet".into(),
                ..Default::default()
            },
        }
    }

    /// Called often (housekeeping); does its work once per interval.
    /// True when the queues should be placed anew now.
    pub fn tick(&mut self, bridge: &Bridge, now: Instant) -> bool {
        let next = *self.next.get_or_insert(now + self.cfg.interval);
        if now < next {
            return false;
        }
        self.next = Some(now + self.cfg.interval);
        let t = tsc();
        let first = self.last_tsc == 0;
        let elapsed = t.wrapping_sub(self.last_tsc).max(1);
        self.last_tsc = t;
        let mut seen = HashMap::with_capacity(self.queues.len());
        for (_, sp) in bridge.ports() {
            for (q, cycles) in sp.rxq_cycles.iter().enumerate() {
                let c = cycles.load(Relaxed);
                let before = self.queues.get(&(sp.no, q as u16)).copied().unwrap_or(c);
                sp.rxq_load[q].store(c.saturating_sub(before), Relaxed);
                seen.insert((sp.no, q as u16), c);
            }
        }
        // Removed ports drop out.
        self.queues = seen;
        let pmds = &bridge.datapath.pmds;
        let busy_now: Vec<u64> = pmds.iter().map(|p| p.busy_cycles.load(Relaxed)).collect();
        let busy_pct: Vec<f64> = busy_now
            .iter()
            .zip(self.busy.iter().chain(std::iter::repeat(&0)))
            .map(|(n, b)| 100.0 * n.saturating_sub(*b) as f64 / elapsed as f64)
            .collect();
        self.busy = busy_now;
        if first {
            // Counters since start, not an interval: only the baseline.
            return false;
        }
        self.window_cycles = elapsed;
        self.status.checks += 1;
        if !self.cfg.enabled {
            self.status.last = "off (pmd.auto-lb)".into();
            return false;
        }
        let snap = bridge.datapath.current();
        let cores = bridge.datapath.cores();
        let isolated = isolated_pmds(&snap, &cores);
        let candidates: Vec<usize> = (0..busy_pct.len()).filter(|&i| !isolated[i]).collect();
        if candidates.len() < 2 {
            self.status.last = "fewer than two PMDs take unpinned queues".into();
            return false;
        }
        let Some(&busiest) = candidates
            .iter()
            .max_by(|&&a, &&b| busy_pct[a].total_cmp(&busy_pct[b]))
        else {
            return false;
        };
        if busy_pct[busiest] < self.cfg.load_threshold as f64 {
            self.status.last = format!(
                "busiest PMD (core {}) {:.0}% busy, under {}%",
                cores[busiest], busy_pct[busiest], self.cfg.load_threshold
            );
            return false;
        }
        let run = dry_run(&snap, &cores, &candidates, elapsed);
        let better = run.improvement_pct();
        let move_queues = better >= self.cfg.improvement_threshold as f64;
        if move_queues {
            self.status.rebalances += 1;
        }
        self.status.last = format!(
            "core {} {:.0}% busy; load variance {:.1} -> {:.1} ({:.0}% better, threshold {}%): {}",
            cores[busiest],
            busy_pct[busiest],
            run.variance_now,
            run.variance_new,
            better,
            self.cfg.improvement_threshold,
            if move_queues { "queues moved" } else { "kept" }
        );
        tracing::info!("pmd auto-lb: {}", self.status.last);
        move_queues
    }
}

/// PMDs polling a queue pinned to them (they take no others). A pin to a
/// core without a PMD is ignored by placement, and here too.
fn isolated_pmds(snap: &Snapshot, cores: &[usize]) -> Vec<bool> {
    snap.poll
        .iter()
        .zip(cores)
        .map(|(l, core)| {
            l.iter()
                .any(|r| snap.ports[r.slot as usize].rxq_affinity[r.qid as usize] == Some(*core))
        })
        .collect()
}

/// The variance of the `candidates`' loads (% of `window` cycles) now and
/// under a fresh `cycles` placement of the same queues.
pub(super) fn dry_run(
    snap: &Snapshot,
    cores: &[usize],
    candidates: &[usize],
    window: u64,
) -> DryRun {
    let load_of = |r: crate::datapath::snapshot::RxqRef| {
        snap.ports[r.slot as usize].rxq_load[r.qid as usize].load(Relaxed)
    };
    let pct = |poll: &[Vec<crate::datapath::snapshot::RxqRef>]| -> Vec<f64> {
        let l = placement::pmd_loads(poll, load_of);
        candidates
            .iter()
            .map(|&i| 100.0 * l.get(i).copied().unwrap_or(0) as f64 / window.max(1) as f64)
            .collect()
    };
    let proposed = Snapshot::build(snap.ports.clone(), cores, RxqAssign::Cycles);
    DryRun {
        variance_now: placement::variance(&pct(&snap.poll)),
        variance_new: placement::variance(&pct(&proposed.poll)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::snapshot::SwitchPort;
    use pmd::ring::RingPort;
    use std::sync::Arc;

    #[test]
    fn the_dry_run_sees_two_busy_queues_on_one_pmd() {
        let ports: Vec<Arc<SwitchPort>> = (1..=4)
            .map(|no| {
                let (a, _b) = RingPort::pair(4);
                Arc::new(SwitchPort::new(no, format!("p{no}"), a))
            })
            .collect();
        // Unmeasured: spread by count, ports 1 and 3 on the first PMD.
        let snap = Snapshot::build(ports.clone(), &[0, 1], RxqAssign::Cycles);
        for (p, load) in ports.iter().zip([450u64, 1, 400, 2]) {
            p.rxq_load[0].store(load, Relaxed);
        }
        let run = dry_run(&snap, &[0, 1], &[0, 1], 1000);
        assert!(run.variance_now > 400.0, "{run:?}");
        assert!(run.improvement_pct() > 90.0, "{run:?}");
        // Balanced already: nothing to gain.
        let balanced = Snapshot::build(ports.clone(), &[0, 1], RxqAssign::Cycles);
        assert!(dry_run(&balanced, &[0, 1], &[0, 1], 1000).improvement_pct() < 1.0);
    }
}
