//! Prometheus metrics: every counter the datapath keeps, read at scrape
//! time. PMDs and drivers write their own relaxed atomics; a scrape sums
//! them and takes no lock a PMD waits on (the bridge's port list lock is
//! the control plane's).
//!
//! [`CATALOG`] is the one list of what is exported (name, type, labels,
//! help); families can only be written from it ([`exposition`]), and the
//! README's table is checked against it by a test.

pub mod exposition;
pub mod http;

use crate::bridge::Bridge;
use crate::datapath::rx_modes::RxqMode;
use crate::datapath::snapshot::SwitchPort;
use exposition::{escape_label, PortLabels, Text};
use pmd::port::DropReason;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

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
    c("ferrovs_port_tx_one_copy_total", &["port"], "Frames written into the guest straight from the sending guest's buffer (one copy)."),
    c("ferrovs_port_rx_gso_total", &["port"], "Large TCP segments (GSO) received from the guest."),
    c("ferrovs_port_tx_gso_total", &["port"], "Large TCP segments (GSO) handed to the guest whole."),
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
    c("ferrovs_pmd_dropped_total", &["core", "reason"], "Packets the switch dropped itself: runt, same_port, no_buffer, vlan, no_match, acl, resubmit_depth, no_port, reserved_mac, controller_queue, no_recv, no_fwd, offload, vxlan_bad_vni, vxlan_malformed, vxlan_unknown_remote, no_arp, tunnel_mtu, underlay_other."),
    c("ferrovs_port_switch_dropped_total", &["port", "reason"], "Frames received on the port that the switch dropped, by reason (vlan, no_match, acl ...)."),
    c("ferrovs_port_mac_limit_refused_total", &["port"], "MACs not learned on the port because of its mac-limit."),
    g("ferrovs_port_macs", &["port"], "MACs learned on the port now."),
    c("ferrovs_pmd_cache_hits_total", &["core"], "Flow lookups answered by the PMD's exact-match cache."),
    c("ferrovs_pmd_cache_misses_total", &["core"], "Flow lookups the exact-match cache could not answer."),
    c("ferrovs_pmd_classifier_probes_total", &["core"], "Hash tables (one per mask) probed by classifier searches; per cache miss, the masks a search took."),
    c("ferrovs_pmd_soft_csum_total", &["core"], "Checksums a guest left to the switch, completed in software for a port that does not take them."),
    c("ferrovs_pmd_soft_gso_total", &["core"], "Large TCP segments (GSO) split in software for a port that does not take them."),
    c("ferrovs_pmd_soft_segments_total", &["core"], "Frames those splits made."),
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
    c("ferrovs_tunnel_remote_tx_packets_total", &["port", "remote"], "Frames a tunnel port encapsulated to the remote endpoint."),
    c("ferrovs_tunnel_remote_rx_packets_total", &["port", "remote"], "Frames decapsulated from the remote endpoint."),
    g("ferrovs_tunnel_remote_resolved", &["port", "remote"], "1 while ARP knows the remote endpoint's MAC on the underlay."),
    c("ferrovs_tunnel_arp_requests_total", &["port", "remote"], "ARP requests sent for the remote endpoint (resolving and refreshing)."),
    c("ferrovs_tunnel_dropped_total", &["port", "reason"], "Frames a tunnel port could not send: no_arp (remote unresolved), tunnel_mtu (too large for the underlay)."),
    g("ferrovs_mbufs", &[], "Packet buffers in the pool."),
    g("ferrovs_mbufs_in_use", &[], "Packet buffers in flight (in rings, batches or queues)."),
    g("ferrovs_mbufs_in_thread_caches", &[], "Free packet buffers held in per-thread caches."),
];

fn gauge_i(v: u64) -> u64 {
    v.min(i64::MAX as u64)
}

/// Renders /metrics, keeping each port's label text between scrapes
/// (rebuilt when the set of ports changes).
#[derive(Default)]
pub struct Exporter {
    layout: Mutex<Vec<PortLabels>>,
}

impl Exporter {
    /// The text exposition of every metric, now.
    pub fn render(&self, bridge: &Bridge) -> String {
        let ports = bridge.ports();
        let mut layout = self.layout.lock().expect("metrics layout poisoned");
        let fits = layout.len() == ports.len()
            && layout
                .iter()
                .zip(&ports)
                .all(|(l, (_, sp))| l.fits(sp.no, &sp.name, sp.port.n_rxq(), sp.port.n_txq()));
        if !fits {
            *layout = ports
                .iter()
                .map(|(_, sp)| {
                    PortLabels::new(
                        sp.no,
                        &sp.name,
                        sp.port.kind(),
                        sp.port.n_rxq(),
                        sp.port.n_txq(),
                    )
                })
                .collect();
        }
        let mut t = Text::with_capacity(1024 + ports.len() * 1024);
        t.family("ferrovs_build_info");
        t.sample(concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""), 1);
        let pairs: Vec<(&PortLabels, &SwitchPort)> = layout
            .iter()
            .zip(&ports)
            .map(|(l, (_, sp))| (l, sp.as_ref()))
            .collect();
        for (_, sp) in &pairs {
            sp.port.refresh_stats();
        }
        port_queue_families(&mut t, &pairs);
        port_families(&mut t, &pairs, bridge);
        pmd_families(&mut t, bridge);
        tunnel_families(&mut t, &pairs, bridge);
        bridge_families(&mut t, bridge);
        t.finish()
    }
}

/// Per port and queue: packets, bytes, drops by reason, rx modes.
fn port_queue_families(t: &mut Text, ports: &[(&PortLabels, &SwitchPort)]) {
    // A port's rx or tx queues: their label text and counters.
    fn queues<'a>(
        l: &'a PortLabels,
        sp: &'a SwitchPort,
        rx: bool,
    ) -> impl Iterator<Item = (&'a String, &'a pmd::QueueStats)> {
        let labels = if rx { &l.rxq } else { &l.txq };
        labels.iter().enumerate().map(move |(q, labels)| {
            let st = if rx {
                sp.port.rxq_stats(q)
            } else {
                sp.port.txq_stats(q)
            };
            (labels, st)
        })
    }
    type Read = fn(&pmd::QueueStats) -> u64;
    let counters: [(&str, bool, Read); 4] = [
        ("ferrovs_port_rx_packets_total", true, |s| {
            s.packets.load(Relaxed)
        }),
        ("ferrovs_port_rx_bytes_total", true, |s| {
            s.bytes.load(Relaxed)
        }),
        ("ferrovs_port_tx_packets_total", false, |s| {
            s.packets.load(Relaxed)
        }),
        ("ferrovs_port_tx_bytes_total", false, |s| {
            s.bytes.load(Relaxed)
        }),
    ];
    for (name, rx, read) in counters {
        t.family(name);
        for (l, sp) in ports {
            for (labels, st) in queues(l, sp, rx) {
                t.sample(labels, read(st));
            }
        }
    }
    for (name, rx) in [
        ("ferrovs_port_rx_dropped_total", true),
        ("ferrovs_port_tx_dropped_total", false),
    ] {
        t.family(name);
        for (l, sp) in ports {
            for (labels, st) in queues(l, sp, rx) {
                for r in DropReason::ALL {
                    let n = st.drops(r);
                    if n > 0 {
                        t.sample_with(labels, &format!("reason=\"{}\"", r.name()), n);
                    }
                }
            }
        }
    }
    t.family("ferrovs_rxq_notified");
    for (l, sp) in ports {
        for (q, labels) in l.rxq.iter().enumerate() {
            let mode = sp.rxq_mode[q].load(Relaxed);
            t.sample(labels, (mode == RxqMode::Notified as u8) as u64);
        }
    }
    t.family("ferrovs_rxq_wakeups_total");
    for (l, sp) in ports {
        for (q, labels) in l.rxq.iter().enumerate() {
            t.sample(labels, sp.rxq_wakeups[q].load(Relaxed));
        }
    }
}

/// Per port: peer counters, link, negotiated features, switch drops, MACs.
fn port_families(t: &mut Text, ports: &[(&PortLabels, &SwitchPort)], bridge: &Bridge) {
    let peer: Vec<_> = ports
        .iter()
        .map(|(_, sp)| sp.port.peer_counters())
        .collect();
    type Read = fn(&pmd::port::PeerCounters) -> u64;
    let peer_families: [(&str, Read); 6] = [
        ("ferrovs_port_tx_retries_total", |c| c.tx_retries),
        ("ferrovs_port_guest_notifications_total", |c| {
            c.notifications
        }),
        ("ferrovs_port_guest_notify_failures_total", |c| {
            c.notify_failures
        }),
        ("ferrovs_port_tx_one_copy_total", |c| c.one_copy),
        ("ferrovs_port_rx_gso_total", |c| c.gso_rx),
        ("ferrovs_port_tx_gso_total", |c| c.gso_tx),
    ];
    for (name, read) in peer_families {
        t.family(name);
        for ((l, _), c) in ports.iter().zip(&peer) {
            t.sample(&l.port, read(c));
        }
    }
    t.family("ferrovs_port_link_up");
    for (l, sp) in ports {
        t.sample(&l.port_type, sp.port.link_up() as u64);
    }
    t.family("ferrovs_port_info");
    for (l, sp) in ports {
        let features = sp
            .port
            .info()
            .into_iter()
            .find(|(k, _)| *k == "features")
            .map(|(_, v)| v)
            .unwrap_or_default();
        t.sample_with(
            &l.port_type,
            &format!("features=\"{}\"", escape_label(&features)),
            1,
        );
    }
    t.family("ferrovs_port_switch_dropped_total");
    for (l, sp) in ports {
        for (reason, n) in sp.drops.read() {
            t.sample_with(&l.port, &format!("reason=\"{reason}\""), n);
        }
    }
    let macs: Vec<_> = ports
        .iter()
        .map(|(_, sp)| bridge.fdb.port_macs(sp.no))
        .collect();
    t.family("ferrovs_port_mac_limit_refused_total");
    for ((l, _), (_, refused)) in ports.iter().zip(&macs) {
        t.sample(&l.port, *refused);
    }
    t.family("ferrovs_port_macs");
    for ((l, _), (learned, _)) in ports.iter().zip(&macs) {
        t.sample(&l.port, *learned as u64);
    }
}

/// Per PMD core: cycles, iterations, packets, sleep, batch sizes, drops, cache.
fn pmd_families(t: &mut Text, bridge: &Bridge) {
    let pmds = &bridge.datapath.pmds;
    let cores: Vec<String> = pmds
        .iter()
        .map(|p| format!("core=\"{}\"", p.core))
        .collect();
    type Read = fn(&crate::datapath::stats::PmdStats) -> u64;
    let counters: [(&str, Read); 13] = [
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
        ("ferrovs_pmd_soft_csum_total", |p| p.soft_csum.load(Relaxed)),
        ("ferrovs_pmd_soft_gso_total", |p| p.soft_gso.load(Relaxed)),
        ("ferrovs_pmd_soft_segments_total", |p| {
            p.soft_segments.load(Relaxed)
        }),
    ];
    for (name, read) in counters {
        t.family(name);
        for (p, core) in pmds.iter().zip(&cores) {
            t.sample(core, read(p));
        }
    }
    t.family("ferrovs_pmd_sleep_seconds_total");
    for (p, core) in pmds.iter().zip(&cores) {
        t.sample_f64(core, p.sleep_ns.load(Relaxed) as f64 / 1e9);
    }
    // Batch sizes as a histogram (buckets 1, 2, 4 ... BURST) from each
    // PMD's per-size counters.
    t.family("ferrovs_pmd_batch_size");
    for (p, core) in pmds.iter().zip(&cores) {
        let counts: Vec<u64> = p.batch_sizes.0.iter().map(|c| c.load(Relaxed)).collect();
        let mut buckets = Vec::new();
        let mut le = 1;
        while le <= pmd::BURST {
            buckets.push((le as f64, counts[..=le].iter().sum()));
            le *= 2;
        }
        let sum = counts
            .iter()
            .enumerate()
            .map(|(n, c)| (n as u64 * c) as f64)
            .sum();
        t.histogram(core, &buckets, counts.iter().sum(), sum);
    }
    t.family("ferrovs_pmd_dropped_total");
    for (p, core) in pmds.iter().zip(&cores) {
        for d in crate::datapath::stats::DpDrop::ALL {
            t.sample_with(
                core,
                &format!("reason=\"{}\"", d.name()),
                p.drops[d as usize].load(Relaxed),
            );
        }
    }
}

/// Per tunnel port and remote endpoint: packets each way, ARP state and
/// requests; per tunnel: what it could not send.
fn tunnel_families(t: &mut Text, ports: &[(&PortLabels, &SwitchPort)], bridge: &Bridge) {
    let by_name = bridge.tunnels();
    let tunnels: Vec<_> = ports
        .iter()
        .filter_map(|(l, sp)| Some((*l, by_name.get(&sp.name)?)))
        .collect();
    let remote = |r: &crate::tunnel::Remote| format!("remote=\"{}\"", r.ip);
    type Read = fn(&crate::tunnel::Tunnel, usize) -> u64;
    let families: [(&str, Read); 4] = [
        ("ferrovs_tunnel_remote_tx_packets_total", |t, i| {
            t.remote_counters(i).tx_packets
        }),
        ("ferrovs_tunnel_remote_rx_packets_total", |t, i| {
            t.remote_counters(i).rx_packets
        }),
        ("ferrovs_tunnel_remote_resolved", |t, i| {
            t.remotes[i].mac().is_some() as u64
        }),
        ("ferrovs_tunnel_arp_requests_total", |t, i| {
            t.remotes[i].neigh.requests.load(Relaxed)
        }),
    ];
    for (name, read) in families {
        t.family(name);
        for (l, tun) in &tunnels {
            for (i, r) in tun.remotes.iter().enumerate() {
                t.sample_with(&l.port, &remote(r), read(tun, i));
            }
        }
    }
    t.family("ferrovs_tunnel_dropped_total");
    for (l, tun) in &tunnels {
        for (reason, n) in tun.drops() {
            t.sample_with(&l.port, &format!("reason=\"{reason}\""), n);
        }
    }
}

/// Bridge-wide: flows, FDB, OpenFlow agent, packet buffers.
fn bridge_families(t: &mut Text, bridge: &Bridge) {
    t.family("ferrovs_flows");
    t.sample("", gauge_i(bridge.n_flows() as u64));
    let fdb = &bridge.fdb;
    t.family("ferrovs_fdb_entries");
    t.sample("", gauge_i(fdb.len() as u64));
    t.family("ferrovs_fdb_max_entries");
    t.sample("", gauge_i(fdb.max() as u64));
    let fc = &fdb.counters;
    for (name, v) in [
        ("ferrovs_fdb_learned_total", &fc.learned),
        ("ferrovs_fdb_moved_total", &fc.moved),
        ("ferrovs_fdb_aged_total", &fc.aged),
        ("ferrovs_fdb_refused_total", &fc.refused),
        ("ferrovs_fdb_flushed_total", &fc.flushed),
    ] {
        t.family(name);
        t.sample("", v.load(Relaxed));
    }
    if let Some(of) = bridge.openflow_status() {
        t.family("ferrovs_openflow_connections");
        t.sample("", gauge_i(of.connections as u64));
        t.family("ferrovs_openflow_controller_connected");
        for c in of.controllers.iter().filter(|c| c.dialed) {
            t.sample(
                &format!("target=\"{}\"", escape_label(&c.target)),
                (c.state == "connected") as u64,
            );
        }
        for (name, v) in [
            ("ferrovs_openflow_flow_mods_total", of.flow_mods),
            ("ferrovs_openflow_packet_ins_total", of.packet_ins),
            (
                "ferrovs_openflow_packet_ins_dropped_total",
                of.packet_ins_dropped,
            ),
            ("ferrovs_openflow_packet_outs_total", of.packet_outs),
            ("ferrovs_openflow_errors_sent_total", of.errors_sent),
        ] {
            t.family(name);
            t.sample("", v);
        }
    }
    let pool = bridge.pool.stats();
    for (name, v) in [
        ("ferrovs_mbufs", pool.total),
        ("ferrovs_mbufs_in_use", pool.in_use),
        ("ferrovs_mbufs_in_thread_caches", pool.in_thread_caches),
    ] {
        t.family(name);
        t.sample("", gauge_i(v as u64));
    }
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
