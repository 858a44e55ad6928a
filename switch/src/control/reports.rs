//! The read-only replies, built from the bridge as it is now: `show`,
//! `port-stats`, `pmd-stats`, `pmd-rxq-show` and `fdb-show`.

use crate::bridge::Bridge;
use crate::config::{format_mac, PortConfig};
use crate::datapath::port_admin::PortAdmin;
use crate::datapath::rx_modes::RxqMode;
use crate::datapath::snapshot::SwitchPort;
use crate::tunnel::Tunnel;
use ferrovs_proto::{
    DriverInfo, FdbEntry, FdbShow, FdbStats, FdbSummary, Link, MbufPool, PmdQueues, PmdRxqShow,
    PmdRxqs, PmdStats, PolledQueue, PortStats, QueueStats, RxqUsage, Show, ShowPort, TunnelRemote,
    TunnelStatus,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

pub fn show(bridge: &Bridge) -> Show {
    let snap = bridge.datapath.current();
    let pool = bridge.pool.stats();
    let pmds = bridge
        .datapath
        .pmds
        .iter()
        .enumerate()
        .map(|(i, p)| PmdQueues {
            core: p.core,
            queues: snap
                .poll_list(i)
                .iter()
                .map(|q| PolledQueue {
                    port: snap.ports[q.slot as usize].name.clone(),
                    queue: q.qid,
                })
                .collect(),
        })
        .collect();
    let admins = bridge.port_admins();
    let now = bridge.fdb.now();
    let tunnels = bridge.tunnels();
    Show {
        bridge: bridge.name.clone(),
        run_dir: bridge.run_dir.display().to_string(),
        ports: bridge
            .ports()
            .iter()
            .map(|(cfg, sp)| {
                let admin = admins.get(&sp.no).copied().unwrap_or_default();
                let tunnel = tunnels.get(&sp.name);
                show_port(cfg, sp, admin, tunnel.map(|t| &**t), now)
            })
            .collect(),
        pmds,
        control_cores: bridge.datapath.control_cores.clone(),
        pmd_sleep_max_us: bridge.datapath.sleep_max(),
        metrics_addr: bridge.metrics_addr(),
        mbuf_pool: MbufPool {
            pages: bridge.pool.page_kind().as_str().into(),
            total: pool.total,
            in_use: pool.in_use,
            free_shared: pool.free_shared,
            in_thread_caches: pool.in_thread_caches,
        },
        fdb: FdbSummary {
            entries: bridge.fdb.len(),
            max: bridge.fdb.max(),
            aging_secs: bridge.fdb.aging_secs(),
        },
        flows: bridge.n_flows(),
        openflow: bridge.openflow_status(),
    }
}

fn tunnel_status(t: &Tunnel, now: u32) -> TunnelStatus {
    TunnelStatus {
        local_ip: t.opts.local_ip.to_string(),
        key: t.opts.vni,
        dst_port: t.opts.dst_port,
        underlay: t.opts.underlay.clone(),
        overlay_mtu: t.overlay_mtu(),
        remotes: t
            .remotes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (state, age) = r.state(now);
                let c = t.remote_counters(i);
                TunnelRemote {
                    ip: r.ip.to_string(),
                    mac: r.mac().map(|m| format_mac(&m)),
                    arp: state.name().into(),
                    arp_age_secs: age,
                    arp_requests: r.neigh.requests.load(Ordering::Relaxed),
                    tx_packets: c.tx_packets,
                    rx_packets: c.rx_packets,
                }
            })
            .collect(),
        drops: by_reason(&t.drops()),
    }
}

fn show_port(
    cfg: &PortConfig,
    sp: &SwitchPort,
    admin: PortAdmin,
    tunnel: Option<&Tunnel>,
    now: u32,
) -> ShowPort {
    let mut p = ShowPort {
        name: sp.name.clone(),
        port_no: sp.no,
        kind: sp.port.kind().into(),
        link: if sp.port.link_up() {
            Link::Up
        } else {
            Link::Down
        },
        // Every stored config passed check_runtime_options().
        vlan_mode: cfg.vlan().map_or("invalid", |v| v.mode.name()).into(),
        tag: cfg.tag,
        trunks: cfg.trunks.clone(),
        mac: sp.port.mac().map(|m| format_mac(&m)),
        admin: admin.names(),
        tunnel: tunnel.map(|t| tunnel_status(t, now)),
        driver: DriverInfo::default(),
    };
    for (key, v) in sp.port.info() {
        let d = &mut p.driver;
        let field = match key {
            "path" => &mut d.path,
            "mode" => &mut d.mode,
            "state" => &mut d.state,
            "features_hex" => &mut d.features_hex,
            "queue_pairs" => &mut d.queue_pairs,
            "queue_size" => &mut d.queue_size,
            "running_vrings" => &mut d.running_vrings,
            "connections" => &mut d.connections,
            "last_error" => &mut d.last_error,
            "previous_error" => &mut d.previous_error,
            "mtu" => &mut d.mtu,
            "devargs" => &mut d.devargs,
            "driver" => &mut d.driver,
            "dpdk_port" => &mut d.dpdk_port,
            "link_speed_mbps" => &mut d.link_speed_mbps,
            "queues" => &mut d.queues,
            "features" => {
                d.features = Some(
                    v.split(',')
                        .filter(|f| !f.is_empty())
                        .map(String::from)
                        .collect(),
                );
                continue;
            }
            // A driver without `Port::mac` reports it among its facts.
            "mac" => &mut p.mac,
            other => {
                d.extra.insert(other.into(), v);
                continue;
            }
        };
        field.get_or_insert(v);
    }
    p
}

fn queue_stats(queue: usize, c: pmd::port::QueueCounters) -> QueueStats {
    QueueStats {
        queue,
        packets: c.packets,
        bytes: c.bytes,
        dropped: c.total_drops(),
        drops: by_reason(&c.drops),
    }
}

fn by_reason(drops: &[(&str, u64)]) -> BTreeMap<String, u64> {
    drops.iter().map(|(r, n)| (r.to_string(), *n)).collect()
}

/// Every port's counters, or `only` that port's.
pub fn port_stats(bridge: &Bridge, only: Option<&str>) -> Result<Vec<PortStats>, String> {
    let ports = bridge.ports();
    if let Some(n) = only {
        if !ports.iter().any(|(_, sp)| sp.name == n) {
            return Err(format!("no port named {n:?}"));
        }
    }
    Ok(ports
        .iter()
        .filter(|(_, sp)| only.is_none_or(|n| n == sp.name))
        .map(|(_, sp)| {
            let p = &sp.port;
            p.refresh_stats();
            let rx: Vec<QueueStats> = (0..p.n_rxq())
                .map(|q| queue_stats(q, p.rxq_stats(q).snapshot()))
                .collect();
            let tx: Vec<QueueStats> = (0..p.n_txq())
                .map(|q| queue_stats(q, p.txq_stats(q).snapshot()))
                .collect();
            let sum = |v: &[QueueStats], f: fn(&QueueStats) -> u64| v.iter().map(f).sum::<u64>();
            let peer = p.peer_counters();
            let (macs_learned, mac_limit_refused) = bridge.fdb.port_macs(sp.no);
            PortStats {
                name: sp.name.clone(),
                rx_packets: sum(&rx, |q| q.packets),
                rx_bytes: sum(&rx, |q| q.bytes),
                rx_dropped: sum(&rx, |q| q.dropped),
                tx_packets: sum(&tx, |q| q.packets),
                tx_bytes: sum(&tx, |q| q.bytes),
                tx_dropped: sum(&tx, |q| q.dropped),
                guest_notifications: peer.notifications,
                guest_notify_failures: peer.notify_failures,
                one_copy_frames: peer.one_copy,
                gso_rx_frames: peer.gso_rx,
                gso_tx_frames: peer.gso_tx,
                macs_learned,
                mac_limit_refused,
                switch_drops: by_reason(&sp.drops.read()),
                rx,
                tx,
            }
        })
        .collect())
}

pub fn pmd_stats(bridge: &Bridge) -> Vec<PmdStats> {
    let tsc = bridge.datapath.tsc_per_us();
    let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    bridge
        .datapath
        .pmds
        .iter()
        .map(|p| {
            let c = p.read();
            let sleep_cycles = c.sleep_ns * tsc / 1000;
            let all_cycles = c.busy_cycles + c.idle_cycles + sleep_cycles;
            PmdStats {
                core: p.core,
                packets: c.packets,
                batches: c.batches,
                avg_batch: ratio(c.packets, c.batches),
                busy_iterations: c.busy_iterations,
                idle_iterations: c.idle_iterations,
                busy_cycles: c.busy_cycles,
                idle_cycles: c.idle_cycles,
                busy_pct: 100.0 * ratio(c.busy_cycles, all_cycles),
                cycles_per_packet: ratio(c.busy_cycles, c.packets),
                flooded: c.flooded,
                cache_hits: c.cache_hits,
                cache_misses: c.cache_misses,
                classifier_probes: c.classifier_probes,
                soft_csum: c.soft_csum,
                soft_gso: c.soft_gso,
                soft_segments: c.soft_segments,
                sleep_ms: c.sleep_ns / 1_000_000,
                drops: by_reason(&c.drops),
            }
        })
        .collect()
}

pub fn pmd_rxq_show(bridge: &Bridge) -> PmdRxqShow {
    let snap = bridge.datapath.current();
    let (auto_lb, window) = bridge.auto_lb_status();
    let pmds = bridge
        .datapath
        .pmds
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let total =
                p.busy_cycles.load(Ordering::Relaxed) + p.idle_cycles.load(Ordering::Relaxed);
            let queues = snap
                .poll_list(i)
                .iter()
                .map(|q| {
                    let sp = &snap.ports[q.slot as usize];
                    let qi = q.qid as usize;
                    // The last measured interval; before the first, since start.
                    let (cycles, total) = if window > 0 {
                        (sp.rxq_load[qi].load(Ordering::Relaxed), window)
                    } else {
                        (sp.rxq_cycles[qi].load(Ordering::Relaxed), total)
                    };
                    RxqUsage {
                        port: sp.name.clone(),
                        queue: q.qid,
                        enabled: sp.port.rxq_enabled(qi),
                        pinned: sp.rxq_affinity[qi].is_some(),
                        usage_pct: if total > 0 {
                            100.0 * cycles as f64 / total as f64
                        } else {
                            0.0
                        },
                        mode: RxqMode::from_u8(sp.rxq_mode[qi].load(Ordering::Relaxed))
                            .name()
                            .into(),
                        wakeups: sp.rxq_wakeups[qi].load(Ordering::Relaxed),
                        late_wakeups: sp.rxq_late_wakeups[qi].load(Ordering::Relaxed),
                    }
                })
                .collect();
            PmdRxqs {
                core: p.core,
                queues,
            }
        })
        .collect();
    PmdRxqShow {
        assign: format!("{:?}", bridge.rxq_assign).to_lowercase(),
        pmds,
        auto_lb,
    }
}

pub fn fdb_show(bridge: &Bridge) -> FdbShow {
    let names: std::collections::HashMap<u16, String> = bridge
        .ports()
        .into_iter()
        .map(|(_, sp)| (sp.no, sp.name.clone()))
        .collect();
    let tunnels = bridge.tunnels();
    let entries = bridge
        .fdb
        .entries()
        .into_iter()
        .map(|e| {
            let port = names.get(&e.port);
            let remote = (e.remote != 0)
                .then(|| tunnels.get(port?))
                .flatten()
                .and_then(|t| Some(t.remotes.get(e.remote as usize - 1)?.ip.to_string()));
            FdbEntry {
                port: port.cloned().unwrap_or_else(|| format!("#{}", e.port)),
                vlan: e.vlan,
                mac: format_mac(&e.mac),
                age: e.age_secs,
                remote,
            }
        })
        .collect();
    let c = &bridge.fdb.counters;
    FdbShow {
        entries,
        stats: FdbStats {
            current: bridge.fdb.len(),
            max: bridge.fdb.max(),
            learned: c.learned.load(Ordering::Relaxed),
            moved: c.moved.load(Ordering::Relaxed),
            aged: c.aged.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            flushed: c.flushed.load(Ordering::Relaxed),
        },
    }
}
