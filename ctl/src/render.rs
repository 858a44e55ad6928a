//! Replies as text for people (`--json` prints the reply itself). Each
//! reads the typed reply, so a field renamed in the protocol is a compile
//! error here, not a "-" on the screen.

use ferrovs_proto::{
    Command, FdbShow, FlowEntry, Help, Link, OpenflowStatus, PmdRxqShow, PmdStats, PortSet,
    PortStats, Reply, Show, ShowPort,
};
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn text(reply: &Reply) -> String {
    let mut o = String::new();
    match reply {
        Reply::Show(s) => show(&mut o, s),
        Reply::PortStats(ports) => ports.iter().for_each(|p| port_stats(&mut o, p)),
        Reply::PmdStats(pmds) => pmds.iter().for_each(|p| pmd_stats(&mut o, p)),
        Reply::PmdRxqShow(r) | Reply::PmdRxqRebalance(r) => pmd_rxq_show(&mut o, r),
        Reply::DumpFlows(flows) => {
            for f in flows {
                let _ = writeln!(o, "{}", flow_line(f));
            }
        }
        // Silent on success, as ovs-ofctl is.
        Reply::AddFlow(_) | Reply::AddFlows(_) | Reply::ModFlows(_) | Reply::DelFlows(_) => {}
        Reply::FdbShow(f) => fdb_show(&mut o, f),
        Reply::FdbFlush(f) => {
            let _ = writeln!(o, "flushed {} learned MAC(s)", f.flushed);
        }
        Reply::AddPort(a) => {
            let _ = writeln!(o, "added port {} (port number {})", a.added, a.port_no);
        }
        Reply::DelPort(d) => {
            let _ = writeln!(o, "removed port {}", d.removed);
        }
        Reply::SetPort(p) => set_port(&mut o, p),
        Reply::PmdStatsClear(c) => {
            let _ = writeln!(o, "cleared the counters of {} PMD core(s)", c.cleared);
        }
        Reply::Help(h) => help(&mut o, h),
    }
    o
}

/// An optional fact, "-" when the port has none.
fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn drops(d: &BTreeMap<String, u64>) -> String {
    if d.is_empty() {
        return "none".into();
    }
    d.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn vlan(mode: &str, tag: Option<u16>, trunks: &Option<String>) -> String {
    let mut s = format!("vlan {mode}");
    if let Some(t) = tag {
        let _ = write!(s, " tag {t}");
    }
    if let Some(t) = trunks {
        let _ = write!(s, " trunks {t}");
    }
    s
}

fn show(o: &mut String, r: &Show) {
    let _ = writeln!(o, "bridge {} (run dir {})", r.bridge, r.run_dir);
    let p = &r.mbuf_pool;
    let _ = writeln!(
        o,
        "  mbuf pool: {} buffers on {}, {} in use",
        p.total, p.pages, p.in_use
    );
    let f = &r.fdb;
    let _ = writeln!(
        o,
        "  fdb: {} of {} entries, aging {} s",
        f.entries, f.max, f.aging_secs
    );
    for port in &r.ports {
        show_port(o, port);
    }
    let _ = writeln!(o, "  flows: {} rule(s) (dump-flows)", r.flows);
    let _ = writeln!(o, "  pmd sleep max {} us", r.pmd_sleep_max_us);
    if !r.control_cores.is_empty() {
        let cpus: Vec<String> = r.control_cores.iter().map(|c| c.to_string()).collect();
        let _ = writeln!(o, "  control threads on CPU(s) {}", cpus.join(","));
    }
    if let Some(a) = &r.metrics_addr {
        let _ = writeln!(o, "  metrics http://{a}/metrics");
    }
    if let Some(of) = &r.openflow {
        openflow(o, of);
    }
    for pmd in &r.pmds {
        let qs: Vec<String> = pmd
            .queues
            .iter()
            .map(|q| format!("{}/{}", q.port, q.queue))
            .collect();
        let _ = writeln!(
            o,
            "  pmd core {}: {}",
            pmd.core,
            if qs.is_empty() {
                "idle".into()
            } else {
                qs.join(" ")
            }
        );
    }
}

fn openflow(o: &mut String, of: &OpenflowStatus) {
    let _ = writeln!(
        o,
        "  openflow: datapath {} fail-mode {}{}, {} connection(s)",
        of.datapath_id,
        of.fail_mode,
        if of.fail_open {
            " (no controller: forwarding as a learning switch)"
        } else {
            ""
        },
        of.connections
    );
    let _ = writeln!(o, "    listening {}", of.listening.join(" "));
    for c in &of.controllers {
        let _ = writeln!(
            o,
            "    controller {} {} role {} for {} s",
            c.target, c.state, c.role, c.seconds
        );
    }
    let _ = writeln!(
        o,
        "    packet-ins {} (dropped {}) packet-outs {} errors sent {}",
        of.packet_ins, of.packet_ins_dropped, of.packet_outs, of.errors_sent
    );
}

fn show_port(o: &mut String, port: &ShowPort) {
    let _ = writeln!(
        o,
        "  port {} ({}): {} link {} {}",
        port.name,
        port.port_no,
        port.kind,
        match port.link {
            Link::Up => "up",
            Link::Down => "down",
        },
        vlan(&port.vlan_mode, port.tag, &port.trunks)
    );
    if !port.admin.is_empty() {
        let _ = writeln!(o, "    set by OpenFlow PORT_MOD: {}", port.admin.join(", "));
    }
    let d = &port.driver;
    if let Some(path) = &d.path {
        let _ = writeln!(
            o,
            "    socket {path} mode {} state {} mac {}",
            opt(&d.mode),
            opt(&d.state),
            opt(&port.mac)
        );
        let features = match d.features.as_deref() {
            None | Some([]) => "-".into(),
            Some(f) => f.join(" "),
        };
        let _ = writeln!(o, "    features {features} ({})", opt(&d.features_hex));
        if let Some(e) = &d.last_error {
            let _ = writeln!(o, "    last error: {e}");
        }
        if let Some(e) = &d.previous_error {
            let _ = writeln!(o, "    previous error (link up since): {e}");
        }
    }
    if let Some(driver) = &d.driver {
        let _ = writeln!(
            o,
            "    devargs {} driver {driver} speed {} Mbit/s queues {} mtu {}",
            opt(&d.devargs),
            opt(&d.link_speed_mbps),
            opt(&d.queues),
            opt(&d.mtu)
        );
    }
    if let Some(t) = &port.tunnel {
        let _ = writeln!(
            o,
            "    vxlan key {} dst-port {} local-ip {} underlay {} overlay mtu {}",
            t.key, t.dst_port, t.local_ip, t.underlay, t.overlay_mtu
        );
        for r in &t.remotes {
            let age = r.arp_age_secs.map_or("-".into(), |a| format!("{a}s"));
            let _ = writeln!(
                o,
                "    remote {} mac {} arp {} (heard {age} ago, {} requests) tx {} rx {}",
                r.ip,
                opt(&r.mac),
                r.arp,
                r.arp_requests,
                r.tx_packets,
                r.rx_packets
            );
        }
        let drops: Vec<String> = t
            .drops
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        if !drops.is_empty() {
            let _ = writeln!(o, "    dropped: {}", drops.join(", "));
        }
    }
    for (k, v) in &d.extra {
        let _ = writeln!(o, "    {k} {v}");
    }
}

fn port_stats(o: &mut String, p: &PortStats) {
    let _ = writeln!(o, "port {}:", p.name);
    for (dir, queues) in [("rx", &p.rx), ("tx", &p.tx)] {
        for q in queues {
            let _ = writeln!(
                o,
                "  {dir} q{}: packets {} bytes {} dropped {} ({})",
                q.queue,
                q.packets,
                q.bytes,
                q.dropped,
                drops(&q.drops)
            );
        }
    }
    let _ = writeln!(o, "  switch drops ({})", drops(&p.switch_drops));
    let _ = writeln!(
        o,
        "  macs learned {} (refused by mac-limit {})",
        p.macs_learned, p.mac_limit_refused
    );
    let _ = writeln!(
        o,
        "  guest notifications {} (not taken {})",
        p.guest_notifications, p.guest_notify_failures
    );
    if p.one_copy_frames + p.gso_rx_frames + p.gso_tx_frames > 0 {
        let _ = writeln!(
            o,
            "  frames copied in straight from another guest {}  large segments (GSO) in {} out {}",
            p.one_copy_frames, p.gso_rx_frames, p.gso_tx_frames
        );
    }
}

fn pmd_stats(o: &mut String, p: &PmdStats) {
    let _ = writeln!(o, "pmd core {}:", p.core);
    let _ = writeln!(
        o,
        "  packets {}  batches {}  avg batch {:.1}",
        p.packets, p.batches, p.avg_batch
    );
    let _ = writeln!(
        o,
        "  busy iterations {}  idle iterations {}  busy {:.1}%",
        p.busy_iterations, p.idle_iterations, p.busy_pct
    );
    let _ = writeln!(
        o,
        "  busy cycles {}  idle cycles {}  cycles/packet {:.1}",
        p.busy_cycles, p.idle_cycles, p.cycles_per_packet
    );
    let _ = writeln!(
        o,
        "  cache hits {}  misses {}  classifier probes {} (masks searched)",
        p.cache_hits, p.cache_misses, p.classifier_probes
    );
    if p.soft_csum + p.soft_gso > 0 {
        let _ = writeln!(
            o,
            "  offloads in software: checksums {}  large segments {} (into {} frames)",
            p.soft_csum, p.soft_gso, p.soft_segments
        );
    }
    let _ = writeln!(
        o,
        "  flooded {}  slept {} ms  drops {}",
        p.flooded,
        p.sleep_ms,
        drops(&p.drops)
    );
}

fn pmd_rxq_show(o: &mut String, r: &PmdRxqShow) {
    let _ = writeln!(o, "rxq assignment: {}", r.assign);
    let a = &r.auto_lb;
    if a.enabled {
        let _ = writeln!(
            o,
            "auto-lb: on (load > {}%, improvement >= {}%, every {} s): {} check(s), {} rebalance(s); last: {}",
            a.load_threshold_pct, a.improvement_threshold_pct, a.interval_s, a.checks, a.rebalances, a.last
        );
    } else {
        let _ = writeln!(o, "auto-lb: off");
    }
    for p in &r.pmds {
        let _ = writeln!(o, "pmd core {}:", p.core);
        for q in &p.queues {
            let _ = writeln!(
                o,
                "  port: {:<12} queue-id: {:>2} ({}{})  pmd usage: {:>5.1} %  {} (wake-ups {}{})",
                q.port,
                q.queue,
                if q.enabled { "enabled" } else { "disabled" },
                if q.pinned { ", pinned" } else { "" },
                q.usage_pct,
                q.mode,
                q.wakeups,
                if q.late_wakeups > 0 {
                    format!(", {} late", q.late_wakeups)
                } else {
                    String::new()
                }
            );
        }
    }
}

/// One rule as `ovs-ofctl dump-flows` prints it.
fn flow_line(f: &FlowEntry) -> String {
    let mut l = format!(
        " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={},",
        f.cookie, f.duration_secs, f.table, f.n_packets, f.n_bytes
    );
    if f.idle_timeout != 0 {
        let _ = write!(l, " idle_timeout={},", f.idle_timeout);
    }
    if f.hard_timeout != 0 {
        let _ = write!(l, " hard_timeout={},", f.hard_timeout);
    }
    if f.idle_timeout != 0 {
        let _ = write!(l, " idle_age={},", f.idle_age_secs);
    }
    let _ = write!(l, " priority={}", f.priority);
    if !f.matches.is_empty() {
        l.push(',');
        l.push_str(&f.matches);
    }
    let _ = write!(l, " actions={}", f.actions);
    l
}

fn fdb_show(o: &mut String, r: &FdbShow) {
    let _ = writeln!(
        o,
        "{:<10} {:>4}  {:<17}  {:>5}  remote (tunnel endpoint)",
        "port", "vlan", "mac", "age"
    );
    for e in &r.entries {
        let line = format!(
            "{:<10} {:>4}  {:<17}  {:>5}  {}",
            e.port,
            e.vlan,
            e.mac,
            e.age,
            e.remote.as_deref().unwrap_or("")
        );
        let _ = writeln!(o, "{}", line.trim_end());
    }
    let s = &r.stats;
    let _ = writeln!(
        o,
        "entries {} of {}; learned {} moved {} aged {} refused {} flushed {}",
        s.current, s.max, s.learned, s.moved, s.aged, s.refused, s.flushed
    );
}

fn set_port(o: &mut String, p: &PortSet) {
    let _ = write!(
        o,
        "port {}: {}",
        p.port,
        vlan(&p.vlan_mode, p.tag, &p.trunks)
    );
    if let Some(n) = p.mac_limit {
        let _ = write!(o, " mac-limit {n}");
    }
    o.push('\n');
}

/// Commands this ferrovs-ctl knows as its usage shows them; any other (a
/// newer ferrovsd's) with the daemon's summary.
fn help(o: &mut String, h: &Help) {
    for (name, summary) in &h.0 {
        let line = match Command::from_name(name) {
            Ok(c) if c.name() == name => ferrovs_proto::usage_line(&c.synopsis(), c.help()),
            _ => ferrovs_proto::usage_line(name, summary),
        };
        o.push_str(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrovs_proto::{DriverInfo, FdbEntry, FdbStats};

    fn port(driver: DriverInfo) -> ShowPort {
        ShowPort {
            name: "v2".into(),
            port_no: 4,
            kind: "virtio-user".into(),
            link: Link::Down,
            vlan_mode: "access".into(),
            tag: Some(10),
            trunks: None,
            mac: Some("02:fe:00:00:00:04".into()),
            admin: Vec::new(),
            tunnel: None,
            driver,
        }
    }

    #[test]
    fn a_tunnel_port_lists_its_remotes_and_their_arp_state() {
        let mut p = port(DriverInfo::default());
        p.kind = "vxlan".into();
        p.tunnel = Some(ferrovs_proto::TunnelStatus {
            local_ip: "10.0.0.1".into(),
            key: 42,
            dst_port: 4789,
            underlay: "phy0".into(),
            overlay_mtu: 1450,
            remotes: vec![
                ferrovs_proto::TunnelRemote {
                    ip: "10.0.0.2".into(),
                    mac: Some("02:00:00:00:00:02".into()),
                    arp: "reachable".into(),
                    arp_age_secs: Some(3),
                    arp_requests: 1,
                    tx_packets: 5,
                    rx_packets: 6,
                },
                ferrovs_proto::TunnelRemote {
                    ip: "10.0.0.3".into(),
                    mac: None,
                    arp: "unresolved".into(),
                    arp_age_secs: None,
                    arp_requests: 9,
                    tx_packets: 0,
                    rx_packets: 0,
                },
            ],
            drops: [("no_arp".to_string(), 4), ("tunnel_mtu".to_string(), 0)].into(),
        });
        let mut o = String::new();
        show_port(&mut o, &p);
        assert!(
            o.contains(
                "    vxlan key 42 dst-port 4789 local-ip 10.0.0.1 underlay phy0 overlay mtu 1450\n"
            ),
            "{o}"
        );
        assert!(o.contains("    remote 10.0.0.2 mac 02:00:00:00:00:02 arp reachable (heard 3s ago, 1 requests) tx 5 rx 6\n"), "{o}");
        assert!(
            o.contains(
                "    remote 10.0.0.3 mac - arp unresolved (heard - ago, 9 requests) tx 0 rx 0\n"
            ),
            "{o}"
        );
        assert!(o.contains("    dropped: no_arp 4\n"), "{o}");
        let mut f = String::new();
        fdb_show(
            &mut f,
            &FdbShow {
                entries: vec![
                    FdbEntry {
                        port: "vx0".into(),
                        vlan: 10,
                        mac: "02:00:00:00:00:0b".into(),
                        age: 1,
                        remote: Some("10.0.0.2".into()),
                    },
                    FdbEntry {
                        port: "vm1".into(),
                        vlan: 10,
                        mac: "02:00:00:00:00:0a".into(),
                        age: 2,
                        remote: None,
                    },
                ],
                stats: FdbStats {
                    current: 2,
                    max: 8192,
                    learned: 2,
                    moved: 0,
                    aged: 0,
                    refused: 0,
                    flushed: 0,
                },
            },
        );
        assert!(
            f.contains("vx0          10  02:00:00:00:00:0b      1  10.0.0.2\n"),
            "{f}"
        );
        assert!(
            f.contains("vm1          10  02:00:00:00:00:0a      2\n"),
            "{f}"
        );
    }

    #[test]
    fn a_socket_port_with_nothing_negotiated() {
        let mut o = String::new();
        show_port(
            &mut o,
            &port(DriverInfo {
                path: Some("/run/b.sock".into()),
                mode: Some("client".into()),
                state: Some("connecting".into()),
                features: Some(vec![]),
                features_hex: Some("0x0".into()),
                last_error: Some("connect: refused".into()),
                ..DriverInfo::default()
            }),
        );
        assert_eq!(
            o,
            "  port v2 (4): virtio-user link down vlan access tag 10\n    socket /run/b.sock mode client state connecting mac 02:fe:00:00:00:04\n    features - (0x0)\n    last error: connect: refused\n"
        );
    }

    #[test]
    fn a_dpdk_port_and_facts_without_a_field() {
        let mut o = String::new();
        let mut d = DriverInfo {
            devargs: Some("net_tap0".into()),
            driver: Some("net_tap".into()),
            link_speed_mbps: Some("10000".into()),
            queues: Some("1 rx, 1 tx".into()),
            mtu: Some("1500".into()),
            ..DriverInfo::default()
        };
        d.extra.insert("depth".into(), "1024".into());
        show_port(&mut o, &port(d));
        assert!(o.contains("\n    devargs net_tap0 driver net_tap speed 10000 Mbit/s queues 1 rx, 1 tx mtu 1500\n"), "{o}");
        assert!(o.ends_with("\n    depth 1024\n"), "{o}");
    }

    #[test]
    fn flows_print_as_ovs_ofctl() {
        let f = FlowEntry {
            table: 1,
            priority: 100,
            cookie: 0x50a4,
            duration_secs: 4.2114,
            idle_timeout: 10,
            hard_timeout: 0,
            idle_age_secs: 2,
            n_packets: 1042,
            n_bytes: 1540036,
            matches: "tcp,tp_dst=443".into(),
            actions: "NORMAL".into(),
        };
        assert_eq!(
            flow_line(&f),
            " cookie=0x50a4, duration=4.211s, table=1, n_packets=1042, n_bytes=1540036, idle_timeout=10, idle_age=2, priority=100,tcp,tp_dst=443 actions=NORMAL"
        );
    }

    #[test]
    fn help_lists_every_command() {
        let mut h = Help::table();
        h.0.insert("reboot".into(), "a newer daemon's".into());
        let o = text(&Reply::Help(h));
        for c in Command::ALL {
            assert!(o.contains(&format!("  {} ", c.name())), "{o}");
        }
        assert!(
            o.contains("\n  del-port NAME                          remove a port\n"),
            "{o}"
        );
        assert!(
            o.contains("\n  reboot                                 a newer daemon's\n"),
            "{o}"
        );
    }
}
