//! Prometheus metrics: every counter the datapath keeps, read at scrape
//! time. PMDs and drivers write their own relaxed atomics; a scrape sums
//! them and takes no lock a PMD waits on (the bridge's port list lock is
//! the control plane's).
//!
//! [`CATALOG`] is the one list of what is exported (name, type, labels,
//! help); families can only be made from it, and the README's table is
//! checked against it by a test.

pub mod http;

use crate::bridge::Bridge;
use pmd::port::DropReason;
use prometheus::{
    proto, CounterVec, Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::atomic::Ordering::Relaxed;

pub use http::MetricsServer;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn c(name: &'static str, labels: &'static [&'static str], help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Counter,
        labels,
        help,
    }
}
const fn g(name: &'static str, labels: &'static [&'static str], help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Gauge,
        labels,
        help,
    }
}

const fn h(name: &'static str, labels: &'static [&'static str], help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind: Kind::Histogram,
        labels,
        help,
    }
}

const NO_LABELS: &[&str] = &[];
const PQ: &[&str] = &["port", "queue"];
const PQR: &[&str] = &["port", "queue", "reason"];

pub const CATALOG: &[MetricDef] = &[
    g("ferrovs_build_info", &["version"], "Always 1; the ferrovsd version as a label."),
    c("ferrovs_port_rx_packets_total", PQ, "Packets received from the port's peer, per queue."),
    c("ferrovs_port_rx_bytes_total", PQ, "Bytes received from the port's peer, per queue."),
    c("ferrovs_port_tx_packets_total", PQ, "Packets sent to the port's peer, per queue."),
    c("ferrovs_port_tx_bytes_total", PQ, "Bytes sent to the port's peer, per queue."),
    c("ferrovs_port_rx_dropped_total", PQR, "Packets dropped on receive, by reason (invalid_desc_*, no_buffer, oversized, rx_missed ...)."),
    c("ferrovs_port_tx_dropped_total", PQR, "Packets dropped on transmit, by reason (ring_full after retries, mtu_exceeded, not_ready ...)."),
    c("ferrovs_port_tx_retries_total", &["port"], "Extra attempts into a full guest receive ring (tx-retries-max)."),
    c("ferrovs_port_guest_notifications_total", &["port"], "Interrupts (call eventfd writes) sent to the guest."),
    c("ferrovs_port_guest_notify_failures_total", &["port"], "Interrupts the guest's call fd did not take (a full pipe or eventfd): never waited for."),
    g("ferrovs_rxq_notified", PQ, "1 while the rx queue waits for its peer's notification instead of being polled (pmd.rxq-notify-after)."),
    c("ferrovs_rxq_wakeups_total", PQ, "Notifications that brought the rx queue back to the poll list."),
    g("ferrovs_port_link_up", &["port", "type"], "1 when a peer is attached and the port carries traffic."),
    g("ferrovs_port_info", &["port", "type", "features"], "Always 1; negotiated virtio features as a label."),
    c("ferrovs_pmd_busy_cycles_total", &["core"], "TSC cycles in poll iterations that moved packets."),
    c("ferrovs_pmd_idle_cycles_total", &["core"], "TSC cycles in poll iterations that found nothing."),
    c("ferrovs_pmd_busy_iterations_total", &["core"], "Poll iterations that moved packets."),
    c("ferrovs_pmd_idle_iterations_total", &["core"], "Poll iterations that found nothing."),
    c("ferrovs_pmd_packets_total", &["core"], "Packets the PMD received and switched."),
    c("ferrovs_pmd_batches_total", &["core"], "Non-empty receive bursts (packets / batches = average batch)."),
    c("ferrovs_pmd_flooded_total", &["core"], "Packets flooded (unknown or broadcast destination)."),
    c("ferrovs_pmd_sleep_seconds_total", &["core"], "Time the PMD slept in idle back-off (pmd.sleep-max)."),
    h("ferrovs_pmd_batch_size", &["core"], "Packets per non-empty receive burst."),
    c("ferrovs_pmd_dropped_total", &["core", "reason"], "Packets the switch dropped itself: runt, same_port, no_buffer, vlan, no_match, acl, resubmit_depth, no_port, reserved_mac, controller_queue, no_recv, no_fwd."),
    c("ferrovs_port_switch_dropped_total", &["port", "reason"], "Frames received on the port that the switch dropped, by reason (vlan, no_match, acl ...)."),
    c("ferrovs_port_mac_limit_refused_total", &["port"], "MACs not learned on the port because of its mac-limit."),
    g("ferrovs_port_macs", &["port"], "MACs learned on the port now."),
    c("ferrovs_pmd_cache_hits_total", &["core"], "Flow lookups answered by the PMD's exact-match cache."),
    c("ferrovs_pmd_cache_misses_total", &["core"], "Flow lookups the exact-match cache could not answer."),
    c("ferrovs_pmd_classifier_probes_total", &["core"], "Hash tables (one per mask) probed by classifier searches; per cache miss, the masks a search took."),
    g("ferrovs_flows", &[], "Rules in the bridge's flow table."),
    g("ferrovs_fdb_entries", &[], "Learned MAC entries now."),
    g("ferrovs_fdb_max_entries", &[], "Most entries the table takes (mac-table-size)."),
    c("ferrovs_fdb_learned_total", &[], "MACs learned."),
    c("ferrovs_fdb_moved_total", &[], "MACs that moved to another port."),
    c("ferrovs_fdb_aged_total", &[], "Entries removed by aging."),
    c("ferrovs_fdb_refused_total", &[], "MACs not learned because the table was full."),
    c("ferrovs_fdb_flushed_total", &[], "Entries removed by a flush or a port removal."),
    g("ferrovs_openflow_connections", &[], "OpenFlow connections now: dialed controllers and accepted clients (ovs-ofctl)."),
    g("ferrovs_openflow_controller_connected", &["target"], "1 while the configured controller is connected and speaks OpenFlow 1.3."),
    c("ferrovs_openflow_flow_mods_total", &[], "FLOW_MODs received (applied or refused)."),
    c("ferrovs_openflow_packet_ins_total", &[], "PACKET_INs sent (one per packet and connection that wants it)."),
    c("ferrovs_openflow_packet_ins_dropped_total", &[], "PACKET_INs not sent: the connection's output was full."),
    c("ferrovs_openflow_packet_outs_total", &[], "PACKET_OUTs accepted."),
    c("ferrovs_openflow_errors_sent_total", &[], "OpenFlow ERROR replies sent (malformed or refused requests)."),
    g("ferrovs_mbufs", &[], "Packet buffers in the pool."),
    g("ferrovs_mbufs_in_use", &[], "Packet buffers in flight (in rings, batches or queues)."),
    g("ferrovs_mbufs_in_thread_caches", &[], "Free packet buffers held in per-thread caches."),
];

fn def(name: &str) -> &'static MetricDef {
    CATALOG
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("metric {name} is not in the catalog"))
}

/// One scrape's registry; families are created from the catalog only.
struct Scrape {
    reg: Registry,
}

impl Scrape {
    fn counter(&self, name: &str) -> IntCounterVec {
        let d = def(name);
        assert!(d.kind == Kind::Counter);
        let v = IntCounterVec::new(Opts::new(d.name, d.help), d.labels).expect("valid metric");
        self.reg
            .register(Box::new(v.clone()))
            .expect("unique metric");
        v
    }

    /// A counter in seconds (base unit), kept as f64.
    fn counter_seconds(&self, name: &str) -> CounterVec {
        let d = def(name);
        assert!(d.kind == Kind::Counter && d.name.ends_with("_seconds_total"));
        let v = CounterVec::new(Opts::new(d.name, d.help), d.labels).expect("valid metric");
        self.reg
            .register(Box::new(v.clone()))
            .expect("unique metric");
        v
    }

    fn gauge(&self, name: &str) -> IntGaugeVec {
        let d = def(name);
        assert!(d.kind == Kind::Gauge);
        let v = IntGaugeVec::new(Opts::new(d.name, d.help), d.labels).expect("valid metric");
        self.reg
            .register(Box::new(v.clone()))
            .expect("unique metric");
        v
    }
}

fn gauge_i(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// The text exposition of every metric, now.
pub fn render(bridge: &Bridge) -> String {
    let s = Scrape {
        reg: Registry::new(),
    };
    s.gauge("ferrovs_build_info")
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);

    let rx_p = s.counter("ferrovs_port_rx_packets_total");
    let rx_b = s.counter("ferrovs_port_rx_bytes_total");
    let tx_p = s.counter("ferrovs_port_tx_packets_total");
    let tx_b = s.counter("ferrovs_port_tx_bytes_total");
    let rx_d = s.counter("ferrovs_port_rx_dropped_total");
    let tx_d = s.counter("ferrovs_port_tx_dropped_total");
    let retries = s.counter("ferrovs_port_tx_retries_total");
    let notif = s.counter("ferrovs_port_guest_notifications_total");
    let notif_fail = s.counter("ferrovs_port_guest_notify_failures_total");
    let link = s.gauge("ferrovs_port_link_up");
    let notified = s.gauge("ferrovs_rxq_notified");
    let wakeups = s.counter("ferrovs_rxq_wakeups_total");
    let info = s.gauge("ferrovs_port_info");
    for (_, sp) in bridge.ports() {
        let p = &sp.port;
        let name = sp.name.as_str();
        p.refresh_stats();
        for (q, rx) in (0..p.n_rxq())
            .map(|q| (q, true))
            .chain((0..p.n_txq()).map(|q| (q, false)))
        {
            let qs = q.to_string();
            let st = if rx { p.rxq_stats(q) } else { p.txq_stats(q) };
            let (pk, by, dr) = if rx {
                (&rx_p, &rx_b, &rx_d)
            } else {
                (&tx_p, &tx_b, &tx_d)
            };
            pk.with_label_values(&[name, &qs])
                .inc_by(st.packets.load(Relaxed));
            by.with_label_values(&[name, &qs])
                .inc_by(st.bytes.load(Relaxed));
            for r in DropReason::ALL {
                let n = st.drops(r);
                if n > 0 {
                    dr.with_label_values(&[name, &qs, r.name()]).inc_by(n);
                }
            }
        }
        let features = p
            .info()
            .into_iter()
            .find(|(k, _)| *k == "features")
            .map(|(_, v)| v)
            .unwrap_or_default();
        for q in 0..p.n_rxq() {
            let qs = q.to_string();
            let mode = sp.rxq_mode[q].load(Relaxed);
            notified
                .with_label_values(&[name, &qs])
                .set((mode == crate::datapath::rx_modes::RxqMode::Notified as u8) as i64);
            wakeups
                .with_label_values(&[name, &qs])
                .inc_by(sp.rxq_wakeups[q].load(Relaxed));
        }
        let pc = p.peer_counters();
        retries.with_label_values(&[name]).inc_by(pc.tx_retries);
        notif.with_label_values(&[name]).inc_by(pc.notifications);
        notif_fail
            .with_label_values(&[name])
            .inc_by(pc.notify_failures);
        link.with_label_values(&[name, p.kind()])
            .set(p.link_up() as i64);
        info.with_label_values(&[name, p.kind(), &features]).set(1);
    }

    let sw_drops = s.counter("ferrovs_port_switch_dropped_total");
    let mac_refused = s.counter("ferrovs_port_mac_limit_refused_total");
    let macs = s.gauge("ferrovs_port_macs");
    for (_, sp) in bridge.ports() {
        for (reason, n) in sp.drops.read() {
            sw_drops.with_label_values(&[&sp.name, reason]).inc_by(n);
        }
        let (learned, refused) = bridge.fdb.port_macs(sp.no);
        mac_refused.with_label_values(&[&sp.name]).inc_by(refused);
        macs.with_label_values(&[&sp.name]).set(learned as i64);
    }
    s.gauge("ferrovs_flows")
        .with_label_values(NO_LABELS)
        .set(gauge_i(bridge.n_flows() as u64));

    type Read = fn(&crate::datapath::stats::PmdStats) -> u64;
    let pmd_counters: [(&str, Read); 10] = [
        ("ferrovs_pmd_busy_cycles_total", |p| {
            p.busy_cycles.load(Relaxed)
        }),
        ("ferrovs_pmd_idle_cycles_total", |p| {
            p.idle_cycles.load(Relaxed)
        }),
        ("ferrovs_pmd_busy_iterations_total", |p| {
            p.busy_iterations.load(Relaxed)
        }),
        ("ferrovs_pmd_idle_iterations_total", |p| {
            p.idle_iterations.load(Relaxed)
        }),
        ("ferrovs_pmd_packets_total", |p| p.packets.load(Relaxed)),
        ("ferrovs_pmd_batches_total", |p| p.batches.load(Relaxed)),
        ("ferrovs_pmd_flooded_total", |p| p.flooded.load(Relaxed)),
        ("ferrovs_pmd_cache_hits_total", |p| {
            p.cache_hits.load(Relaxed)
        }),
        ("ferrovs_pmd_cache_misses_total", |p| {
            p.cache_misses.load(Relaxed)
        }),
        ("ferrovs_pmd_classifier_probes_total", |p| {
            p.classifier_probes.load(Relaxed)
        }),
    ];
    for (metric, read) in pmd_counters {
        let v = s.counter(metric);
        for p in &bridge.datapath.pmds {
            v.with_label_values(&[&p.core.to_string()]).inc_by(read(p));
        }
    }
    let sleep = s.counter_seconds("ferrovs_pmd_sleep_seconds_total");
    for p in &bridge.datapath.pmds {
        sleep
            .with_label_values(&[&p.core.to_string()])
            .inc_by(p.sleep_ns.load(Relaxed) as f64 / 1e9);
    }
    let drops = s.counter("ferrovs_pmd_dropped_total");
    for p in &bridge.datapath.pmds {
        for d in crate::datapath::stats::DpDrop::ALL {
            drops
                .with_label_values(&[&p.core.to_string(), d.name()])
                .inc_by(p.drops[d as usize].load(Relaxed));
        }
    }

    let fdb = &bridge.fdb;
    s.gauge("ferrovs_fdb_entries")
        .with_label_values(NO_LABELS)
        .set(gauge_i(fdb.len() as u64));
    s.gauge("ferrovs_fdb_max_entries")
        .with_label_values(NO_LABELS)
        .set(gauge_i(fdb.max() as u64));
    let fc = &fdb.counters;
    for (metric, v) in [
        ("ferrovs_fdb_learned_total", &fc.learned),
        ("ferrovs_fdb_moved_total", &fc.moved),
        ("ferrovs_fdb_aged_total", &fc.aged),
        ("ferrovs_fdb_refused_total", &fc.refused),
        ("ferrovs_fdb_flushed_total", &fc.flushed),
    ] {
        s.counter(metric)
            .with_label_values(NO_LABELS)
            .inc_by(v.load(Relaxed));
    }

    if let Some(of) = bridge.openflow_status() {
        s.gauge("ferrovs_openflow_connections")
            .with_label_values(NO_LABELS)
            .set(gauge_i(of.connections as u64));
        let connected = s.gauge("ferrovs_openflow_controller_connected");
        for c in of.controllers.iter().filter(|c| c.dialed) {
            connected
                .with_label_values(&[&c.target])
                .set((c.state == "connected") as i64);
        }
        for (metric, v) in [
            ("ferrovs_openflow_flow_mods_total", of.flow_mods),
            ("ferrovs_openflow_packet_ins_total", of.packet_ins),
            (
                "ferrovs_openflow_packet_ins_dropped_total",
                of.packet_ins_dropped,
            ),
            ("ferrovs_openflow_packet_outs_total", of.packet_outs),
            ("ferrovs_openflow_errors_sent_total", of.errors_sent),
        ] {
            s.counter(metric).with_label_values(NO_LABELS).inc_by(v);
        }
    }

    let pool = bridge.pool.stats();
    s.gauge("ferrovs_mbufs")
        .with_label_values(NO_LABELS)
        .set(gauge_i(pool.total as u64));
    s.gauge("ferrovs_mbufs_in_use")
        .with_label_values(NO_LABELS)
        .set(gauge_i(pool.in_use as u64));
    s.gauge("ferrovs_mbufs_in_thread_caches")
        .with_label_values(NO_LABELS)
        .set(gauge_i(pool.in_thread_caches as u64));

    let mut families = s.reg.gather();
    families.push(batch_histogram(bridge));
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("text encoding cannot fail");
    String::from_utf8(out).expect("text exposition is UTF-8")
}

/// Batch sizes as a Prometheus histogram (buckets 1, 2, 4 ... BURST), built
/// from each PMD's per-size counters.
fn batch_histogram(bridge: &Bridge) -> proto::MetricFamily {
    let d = def("ferrovs_pmd_batch_size");
    let mut metrics = Vec::new();
    for p in &bridge.datapath.pmds {
        let counts: Vec<u64> = p.batch_sizes.0.iter().map(|c| c.load(Relaxed)).collect();
        let mut buckets = Vec::new();
        let mut le = 1;
        while le <= pmd::BURST {
            let mut b = proto::Bucket::default();
            b.set_upper_bound(le as f64);
            b.set_cumulative_count(counts[..=le].iter().sum());
            buckets.push(b);
            le *= 2;
        }
        let mut hist = proto::Histogram::default();
        hist.set_sample_count(counts.iter().sum());
        hist.set_sample_sum(
            counts
                .iter()
                .enumerate()
                .map(|(n, c)| (n as u64 * c) as f64)
                .sum(),
        );
        hist.set_bucket(buckets);
        let mut label = proto::LabelPair::default();
        label.set_name("core".into());
        label.set_value(p.core.to_string());
        let mut m = proto::Metric::default();
        m.set_label(vec![label]);
        m.set_histogram(hist);
        metrics.push(m);
    }
    let mut f = proto::MetricFamily::default();
    f.set_name(d.name.into());
    f.set_help(d.help.into());
    f.set_field_type(proto::MetricType::HISTOGRAM);
    f.set_metric(metrics);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for d in CATALOG {
            assert!(seen.insert(d.name), "{} twice", d.name);
            assert!(d.name.starts_with("ferrovs_"));
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "{}",
                d.name
            );
            assert!(!d.help.is_empty());
        }
    }

    /// The README's metrics table lists exactly the catalog, with the same
    /// types and labels (it cannot drift from the code).
    #[test]
    fn readme_table_matches_the_catalog() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let rows: Vec<Vec<String>> = readme
            .lines()
            .filter(|l| l.starts_with("| `ferrovs_"))
            .map(|l| {
                l.split('|')
                    .map(|c| c.trim().trim_matches('`').to_string())
                    .collect()
            })
            .collect();
        for d in CATALOG {
            let row = rows
                .iter()
                .find(|r| r[1] == d.name)
                .unwrap_or_else(|| panic!("README metrics table lacks {}", d.name));
            assert_eq!(row[2], d.kind.name(), "{}", d.name);
            assert_eq!(row[3], d.labels.join(", "), "labels of {}", d.name);
        }
        for r in &rows {
            assert!(
                CATALOG.iter().any(|d| d.name == r[1]),
                "README lists {} which is not exported",
                r[1]
            );
        }
    }
}

#[cfg(test)]
mod dashboard_tests {
    use super::CATALOG;

    /// Every metric a query of the Grafana board names is one ferrovsd exports.
    #[test]
    fn grafana_board_queries_only_exported_metrics() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/grafana-ferrovs.json"
        ))
        .unwrap();
        let board: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let mut exprs = Vec::new();
        for p in board["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                exprs.push(t["expr"].as_str().expect("expr").to_string());
            }
        }
        assert!(exprs.len() >= 8);
        let mut named = 0;
        for e in &exprs {
            for (i, _) in e.match_indices("ferrovs_") {
                let name: String = e[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|b| CATALOG.iter().any(|d| d.name == *b))
                    })
                    .unwrap_or(&name);
                assert!(
                    CATALOG.iter().any(|d| d.name == base),
                    "{name} in {e:?} is not exported"
                );
                named += 1;
            }
        }
        assert!(named >= exprs.len());
        let prom = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../configs/prometheus.yml"
        ))
        .unwrap();
        assert!(prom.contains(crate::config::DEFAULT_METRICS_ADDR));
    }
}
