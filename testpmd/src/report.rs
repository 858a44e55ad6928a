//! Port statistics: a sample per period (live view on a terminal, plain
//! lines when piped), then a summary and the `--json` document.

use crate::latency::Histogram;
use crate::ports::OpenPort;
use crate::stream::VlanCounts;
use pmd::port::QueueCounters;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::io::Write;

/// Totals of one port at one instant (all queues summed).
#[derive(Clone, Debug, Default)]
pub struct PortSample {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: BTreeMap<&'static str, u64>,
}

impl PortSample {
    pub fn take(p: &OpenPort) -> PortSample {
        let mut s = PortSample::default();
        let mut add = |c: QueueCounters, rx: bool| {
            if rx {
                s.rx_packets += c.packets;
                s.rx_bytes += c.bytes;
            } else {
                s.tx_packets += c.packets;
                s.tx_bytes += c.bytes;
            }
            for (r, n) in c.drops {
                *s.drops.entry(r).or_default() += n;
            }
        };
        for q in 0..p.port.n_rxq() {
            add(p.port.rxq_stats(q).snapshot(), true);
        }
        for q in 0..p.port.n_txq() {
            add(p.port.txq_stats(q).snapshot(), false);
        }
        s
    }

    pub fn drops_total(&self) -> u64 {
        self.drops.values().sum()
    }
}

/// Per-period rates of every port; the medians go in the summary.
pub struct Monitor {
    last: Vec<PortSample>,
    last_t: std::time::Instant,
    pub rx_pps: Vec<Vec<f64>>,
    pub tx_pps: Vec<Vec<f64>>,
    live: bool,
    drawn_lines: usize,
    quiet: bool,
}

fn rate(now: u64, then: u64, secs: f64) -> f64 {
    now.saturating_sub(then) as f64 / secs
}

impl Monitor {
    pub fn new(ports: &[OpenPort], live: bool, quiet: bool) -> Monitor {
        Monitor {
            last: ports.iter().map(PortSample::take).collect(),
            last_t: std::time::Instant::now(),
            rx_pps: vec![Vec::new(); ports.len()],
            tx_pps: vec![Vec::new(); ports.len()],
            live,
            drawn_lines: 0,
            quiet,
        }
    }

    pub fn sample(&mut self, ports: &[OpenPort], elapsed_s: f64, extra: &str) {
        let now = std::time::Instant::now();
        let secs = now.duration_since(self.last_t).as_secs_f64().max(1e-6);
        let mut lines = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let s = PortSample::take(p);
            let l = &self.last[i];
            let rx = rate(s.rx_packets, l.rx_packets, secs);
            let tx = rate(s.tx_packets, l.tx_packets, secs);
            let rxb = rate(s.rx_bytes, l.rx_bytes, secs) * 8.0 / 1e6;
            let txb = rate(s.tx_bytes, l.tx_bytes, secs) * 8.0 / 1e6;
            let drops = rate(s.drops_total(), l.drops_total(), secs);
            self.rx_pps[i].push(rx);
            self.tx_pps[i].push(tx);
            lines.push(format!(
                "[{elapsed_s:6.1}s] port {i} {:<11} {:<4} rx {:>8.3} Mpps {:>8.1} Mbit/s  tx {:>8.3} Mpps {:>8.1} Mbit/s  drops {:>9.0}/s  total rx {} tx {}",
                p.port.kind(),
                if p.port.link_up() { "up" } else { "down" },
                rx / 1e6,
                rxb,
                tx / 1e6,
                txb,
                drops,
                s.rx_packets,
                s.tx_packets,
            ));
            self.last[i] = s;
        }
        if !extra.is_empty() {
            lines.push(format!("[{elapsed_s:6.1}s] {extra}"));
        }
        self.last_t = now;
        if self.quiet {
            return;
        }
        let mut out = std::io::stderr().lock();
        if self.live {
            // Redraw the block in place.
            if self.drawn_lines > 0 {
                let _ = write!(out, "\x1b[{}A", self.drawn_lines);
            }
            for l in &lines {
                let _ = writeln!(out, "\x1b[2K{l}");
            }
            self.drawn_lines = lines.len();
        } else {
            for l in &lines {
                let _ = writeln!(out, "{l}");
            }
        }
    }
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

#[derive(Serialize)]
pub struct PortReport {
    pub port: usize,
    /// Forward mode of the streams receiving on this port.
    pub mode: crate::engine::Mode,
    pub spec: String,
    pub kind: &'static str,
    pub link_up: bool,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_pps: f64,
    pub tx_pps: f64,
    pub rx_pps_median: f64,
    pub tx_pps_median: f64,
    pub drops: BTreeMap<&'static str, u64>,
    /// Receive rate of every stats period, in order (scripts drop warm-up).
    pub rx_pps_series: Vec<f64>,
    /// Payload checks of the frames this port received.
    pub checked: Checked,
    /// Frames this port's streams received, by VLAN.
    pub rx_vlans: VlanMap,
    /// What a vtep port did with what it received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vtep: Option<VtepCounts>,
}

/// What a vtep port's streams did with the frames they received.
#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct VtepCounts {
    pub arp_replies: u64,
    pub reflected: u64,
    pub other: u64,
}

impl VtepCounts {
    pub fn sum<'a>(
        c: impl Iterator<Item = &'a std::sync::Arc<crate::stream::StreamCounters>>,
    ) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let mut t = VtepCounts::default();
        for s in c {
            t.arp_replies += s.vtep_arp_replies.load(Relaxed);
            t.reflected += s.vtep_reflected.load(Relaxed);
            t.other += s.vtep_other.load(Relaxed);
        }
        t
    }
}

/// Received frames by VLAN, for the summary: `{"untagged": n, "10": n}`,
/// untagged first, then VIDs in order; VLANs never seen are left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VlanMap(pub Vec<(Option<u16>, u64)>);

fn vlan_name(v: Option<u16>) -> String {
    v.map_or_else(|| "untagged".to_string(), |vid| vid.to_string())
}

impl From<&VlanCounts> for VlanMap {
    fn from(c: &VlanCounts) -> VlanMap {
        VlanMap(c.seen().collect())
    }
}

impl Serialize for VlanMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (v, n) in &self.0 {
            m.serialize_entry(&vlan_name(*v), n)?;
        }
        m.end()
    }
}

impl std::fmt::Display for VlanMap {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        for (i, (v, n)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            match v {
                Some(vid) => write!(f, "{sep}vlan {vid} {n}")?,
                None => write!(f, "{sep}untagged {n}")?,
            }
        }
        Ok(())
    }
}

#[derive(Serialize, Default, Debug, PartialEq, Eq)]
pub struct Checked {
    pub good: u64,
    pub bad: u64,
    pub foreign: u64,
}

#[derive(Serialize)]
pub struct LatencyReport {
    pub samples: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencyReport {
    pub fn from(h: &Histogram) -> Option<LatencyReport> {
        (h.count() > 0).then(|| LatencyReport {
            samples: h.count(),
            p50_us: h.quantile(0.5) as f64 / 1e3,
            p99_us: h.quantile(0.99) as f64 / 1e3,
            p999_us: h.quantile(0.999) as f64 / 1e3,
            max_us: h.max() as f64 / 1e3,
        })
    }
}

#[derive(Serialize)]
pub struct Summary {
    pub forward_mode: crate::engine::Mode,
    pub duration_s: f64,
    pub burst: usize,
    pub frame_size: usize,
    pub ports: Vec<PortReport>,
    pub rx_pps: f64,
    pub tx_pps: f64,
    pub rx_pps_median: f64,
    pub tx_pps_median: f64,
    pub generated: u64,
    pub checked: Checked,
    /// Frames received on all ports, by VLAN.
    pub rx_vlans: VlanMap,
    pub latency: Option<LatencyReport>,
}

impl Summary {
    pub fn print_text(&self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "---------------------- summary ({:.1} s, {:?}) ----------------------",
            self.duration_s, self.forward_mode
        );
        for p in &self.ports {
            let _ = writeln!(
                out,
                "port {} {} ({}): rx {} pkts {} bytes, tx {} pkts {} bytes; median rx {:.3} Mpps tx {:.3} Mpps",
                p.port, p.kind, p.spec, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes,
                p.rx_pps_median / 1e6, p.tx_pps_median / 1e6
            );
            for (r, n) in &p.drops {
                let _ = writeln!(out, "    drops {r}: {n}");
            }
            let c = &p.checked;
            if c.good + c.bad + c.foreign > 0 {
                let _ = writeln!(
                    out,
                    "    payload checks: {} good, {} bad, {} not ours",
                    c.good, c.bad, c.foreign
                );
            }
            if !p.rx_vlans.0.is_empty() {
                let _ = writeln!(out, "    rx by vlan: {}", p.rx_vlans);
            }
            if let Some(v) = &p.vtep {
                let _ = writeln!(
                    out,
                    "    vtep: {} ARP replies, {} VXLAN frames reflected, {} other frames freed",
                    v.arp_replies, v.reflected, v.other
                );
            }
        }
        let _ = writeln!(
            out,
            "total: rx {:.3} Mpps tx {:.3} Mpps (medians over stats periods)",
            self.rx_pps_median / 1e6,
            self.tx_pps_median / 1e6,
        );
        if self.generated > 0 || self.checked.good + self.checked.bad > 0 {
            let _ = writeln!(
                out,
                "generated {}; payload checks: {} good, {} bad, {} not ours",
                self.generated, self.checked.good, self.checked.bad, self.checked.foreign
            );
        }
        if !self.rx_vlans.0.is_empty() {
            let _ = writeln!(out, "rx by vlan: {}", self.rx_vlans);
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                out,
                "latency ({} samples): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
                l.samples, l.p50_us, l.p99_us, l.p999_us, l.max_us
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_map_is_untagged_first_then_vids_in_order() {
        let m = VlanMap(vec![(None, 120), (Some(10), 64), (Some(200), 64)]);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"untagged":120,"10":64,"200":64}"#
        );
        assert_eq!(m.to_string(), "untagged 120, vlan 10 64, vlan 200 64");
        assert_eq!(serde_json::to_string(&VlanMap::default()).unwrap(), "{}");
    }
}
