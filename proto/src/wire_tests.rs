//! The wire format: every request and reply round-trips through JSON, and
//! a few are pinned against literal JSON taken from ferrovsd and
//! ferrovs-ctl before the protocol was typed, so a renamed field fails here.

use crate::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn drops(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn requests() -> Vec<Request> {
    vec![
        Request::Show,
        Request::AddPort(AddPort {
            name: "v2".into(),
            kind: "virtio-user".into(),
            path: Some("/tmp/b.sock".into()),
            n_rxq: Some("2".into()),
            vlan_mode: Some("trunk".into()),
            ..AddPort::default()
        }),
        Request::DelPort(DelPort { name: "v2".into() }),
        Request::SetPort(SetPort {
            name: "vhost2".into(),
            tag: Some("".into()),
            trunks: Some("10,20".into()),
            mac_limit: Some("5".into()),
            ..SetPort::default()
        }),
        Request::AddFlow(AddFlow {
            flow: "priority=5,ip,actions=drop".into(),
        }),
        Request::AddFlows(AddFlows {
            flows: vec![NumberedFlow {
                line: 3,
                flow: "arp,actions=normal".into(),
            }],
        }),
        Request::ModFlows(FlowSelection {
            flow: "ip,actions=normal".into(),
            strict: true,
        }),
        Request::DelFlows(FlowSelection::default()),
        Request::DumpFlows(DumpFlows { flow: "tcp".into() }),
        Request::FdbShow,
        Request::FdbFlush,
        Request::PortStats(PortStatsArgs {
            name: Some("vhost0".into()),
        }),
        Request::PortStats(PortStatsArgs::default()),
        Request::PmdStats,
        Request::PmdStatsClear,
        Request::PmdRxqShow,
        Request::PmdRxqRebalance,
        Request::Help,
    ]
}

fn show() -> Show {
    Show {
        bridge: "br0".into(),
        run_dir: "/tmp/wire/run".into(),
        ports: vec![
            ShowPort {
                name: "vhost0".into(),
                port_no: 1,
                kind: "vhost-user".into(),
                link: Link::Down,
                vlan_mode: "access".into(),
                tag: Some(10),
                trunks: None,
                mac: Some("02:fe:00:00:00:01".into()),
                admin: Vec::new(),
                tunnel: None,
                driver: DriverInfo {
                    path: Some("/tmp/wire/run/vhost0.sock".into()),
                    mode: Some("server".into()),
                    state: Some("waiting".into()),
                    features: Some(vec![]),
                    features_hex: Some("0x0".into()),
                    queue_pairs: Some("1".into()),
                    running_vrings: Some("".into()),
                    connections: Some("0".into()),
                    mtu: Some("1500".into()),
                    ..DriverInfo::default()
                },
            },
            ShowPort {
                name: "v2".into(),
                port_no: 4,
                kind: "virtio-user".into(),
                link: Link::Down,
                vlan_mode: "trunk".into(),
                tag: None,
                trunks: None,
                mac: Some("02:fe:00:00:00:04".into()),
                admin: vec!["down".into(), "no_fwd".into()],
                tunnel: None,
                driver: DriverInfo {
                    path: Some("/tmp/wire/nonexist.sock".into()),
                    mode: Some("client".into()),
                    state: Some("connecting".into()),
                    queue_pairs: Some("0/1".into()),
                    queue_size: Some("1024".into()),
                    connections: Some("0".into()),
                    last_error: Some("connect: No such file or directory (os error 2)".into()),
                    ..DriverInfo::default()
                },
            },
            ShowPort {
                name: "vx0".into(),
                port_no: 5,
                kind: "vxlan".into(),
                link: Link::Up,
                vlan_mode: "access".into(),
                tag: Some(10),
                trunks: None,
                mac: None,
                admin: Vec::new(),
                tunnel: Some(TunnelStatus {
                    local_ip: "10.0.0.1".into(),
                    key: 42,
                    dst_port: 4789,
                    underlay: "phy0".into(),
                    overlay_mtu: 1450,
                    remotes: vec![TunnelRemote {
                        ip: "10.0.0.2".into(),
                        mac: Some("02:00:00:00:00:02".into()),
                        arp: "reachable".into(),
                        arp_age_secs: Some(3),
                        arp_requests: 1,
                        tx_packets: 5,
                        rx_packets: 6,
                    }],
                    drops: [("no_arp".to_string(), 0), ("tunnel_mtu".to_string(), 0)].into(),
                }),
                driver: DriverInfo::default(),
            },
        ],
        pmds: vec![PmdQueues {
            core: 1,
            queues: vec![PolledQueue {
                port: "vhost0".into(),
                queue: 0,
            }],
        }],
        control_cores: vec![0],
        pmd_sleep_max_us: 1000,
        metrics_addr: Some("127.0.0.1:39411".into()),
        mbuf_pool: MbufPool {
            pages: "hugepages-2048kB".into(),
            total: 4096,
            in_use: 0,
            free_shared: 4096,
            in_thread_caches: 0,
        },
        fdb: FdbSummary {
            entries: 0,
            max: 8192,
            aging_secs: 300,
        },
        flows: 1,
        openflow: Some(OpenflowStatus {
            datapath_id: "00000000a1b2c3d4".into(),
            fail_mode: "standalone".into(),
            fail_open: false,
            listening: vec!["punix:/tmp/wire/run/br0.mgmt".into()],
            controllers: vec![ControllerStatus {
                target: "tcp:127.0.0.1:6653".into(),
                dialed: true,
                state: "connecting".into(),
                role: "-".into(),
                seconds: 2,
            }],
            connections: 0,
            flow_mods: 7,
            packet_ins: 0,
            packet_ins_dropped: 0,
            packet_outs: 0,
            errors_sent: 0,
        }),
    }
}

fn port_stats() -> PortStats {
    let q = QueueStats {
        queue: 0,
        packets: 0,
        bytes: 0,
        dropped: 0,
        drops: BTreeMap::new(),
    };
    PortStats {
        name: "vhost0".into(),
        rx_packets: 0,
        rx_bytes: 0,
        rx_dropped: 0,
        tx_packets: 0,
        tx_bytes: 0,
        tx_dropped: 0,
        guest_notifications: 0,
        guest_notify_failures: 0,
        one_copy_frames: 7,
        gso_rx_frames: 3,
        gso_tx_frames: 4,
        macs_learned: 0,
        mac_limit_refused: 0,
        switch_drops: BTreeMap::new(),
        rx: vec![q.clone()],
        tx: vec![q],
    }
}

fn pmd_stats() -> PmdStats {
    PmdStats {
        core: 1,
        packets: 0,
        batches: 0,
        avg_batch: 0.0,
        busy_iterations: 0,
        idle_iterations: 4479,
        busy_cycles: 0,
        idle_cycles: 25129598,
        busy_pct: 0.0,
        cycles_per_packet: 0.0,
        flooded: 0,
        cache_hits: 0,
        cache_misses: 0,
        classifier_probes: 0,
        soft_csum: 1,
        soft_gso: 2,
        soft_segments: 90,
        sleep_ms: 4455,
        drops: drops(&[
            ("acl", 0),
            ("no_buffer", 0),
            ("no_match", 0),
            ("no_port", 0),
            ("reserved_mac", 0),
            ("resubmit_depth", 0),
            ("runt", 0),
            ("same_port", 0),
            ("vlan", 0),
        ]),
    }
}

fn rxq_show() -> PmdRxqShow {
    PmdRxqShow {
        assign: "cycles".into(),
        pmds: vec![PmdRxqs {
            core: 1,
            queues: vec![RxqUsage {
                port: "vhost0".into(),
                queue: 0,
                enabled: false,
                pinned: false,
                usage_pct: 0.0,
                mode: "notified".into(),
                wakeups: 3,
                late_wakeups: 0,
            }],
        }],
        auto_lb: AutoLbStatus {
            enabled: true,
            load_threshold_pct: 95,
            improvement_threshold_pct: 25,
            interval_s: 60,
            checks: 2,
            rebalances: 1,
            last: "core 1 97% busy; load variance 2401.0 -> 0.3 (100% better, threshold 25%): queues moved".into(),
        },
    }
}

fn flow() -> FlowEntry {
    FlowEntry {
        table: 0,
        priority: 5,
        cookie: 0,
        duration_secs: 0.15066876,
        idle_timeout: 0,
        hard_timeout: 0,
        idle_age_secs: 0,
        n_packets: 0,
        n_bytes: 0,
        matches: "ip".into(),
        actions: "drop".into(),
    }
}

fn replies() -> Vec<Reply> {
    vec![
        Reply::Show(show()),
        Reply::AddPort(PortAdded {
            added: "v2".into(),
            port_no: 3,
        }),
        Reply::DelPort(PortRemoved {
            removed: "v2".into(),
        }),
        Reply::SetPort(PortSet {
            port: "vhost0".into(),
            vlan_mode: "access".into(),
            tag: Some(10),
            trunks: None,
            mac_limit: Some(5),
        }),
        Reply::AddFlow(FlowsAdded { added: 1 }),
        Reply::AddFlows(FlowsAdded { added: 2 }),
        Reply::ModFlows(FlowsModified { modified: 1 }),
        Reply::DelFlows(FlowsDeleted { deleted: 1 }),
        Reply::DumpFlows(vec![flow()]),
        Reply::FdbShow(FdbShow {
            entries: vec![
                FdbEntry {
                    port: "vhost0".into(),
                    vlan: 10,
                    mac: "02:00:00:00:00:01".into(),
                    age: 3,
                    remote: None,
                },
                FdbEntry {
                    port: "vx0".into(),
                    vlan: 10,
                    mac: "02:00:00:00:00:0b".into(),
                    age: 1,
                    remote: Some("10.0.0.2".into()),
                },
            ],
            stats: FdbStats {
                current: 1,
                max: 8192,
                learned: 1,
                moved: 0,
                aged: 0,
                refused: 0,
                flushed: 0,
            },
        }),
        Reply::FdbFlush(FdbFlushed { flushed: 0 }),
        Reply::PortStats(vec![port_stats()]),
        Reply::PmdStats(vec![pmd_stats()]),
        Reply::PmdStatsClear(PmdStatsCleared { cleared: 1 }),
        Reply::PmdRxqShow(rxq_show()),
        Reply::PmdRxqRebalance(rxq_show()),
        Reply::Help(Help::table()),
    ]
}

#[test]
fn every_command_has_a_sample() {
    for c in Command::ALL {
        assert!(requests().iter().any(|r| r.command() == *c), "{c:?}");
        assert!(replies().iter().any(|r| r.command() == *c), "{c:?}");
    }
}

#[test]
fn every_request_round_trips() {
    for r in requests() {
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r, "{line}");
        assert_eq!(Request::parse(line.as_bytes()).unwrap(), r, "{line}");
    }
}

#[test]
fn every_reply_round_trips() {
    for r in replies() {
        let line = serde_json::to_string(&ReplyLine::from(Ok::<_, String>(r.clone()))).unwrap();
        let back: ReplyLine = serde_json::from_str(&line).unwrap();
        let result = back.into_result().unwrap();
        assert_eq!(Reply::parse(r.command(), result).unwrap(), r, "{line}");
    }
}

/// `value` serialises to exactly `literal` (as JSON, key order aside) and
/// `literal` deserialises to `value`.
fn pinned<T>(value: &T, literal: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let want: Value = serde_json::from_str(literal).unwrap();
    assert_eq!(serde_json::to_value(value).unwrap(), want);
    assert_eq!(&serde_json::from_str::<T>(literal).unwrap(), value);
}

#[test]
fn requests_are_as_ferrovs_ctl_sent_them() {
    pinned(&Request::Show, r#"{"command": "show", "args": {}}"#);
    pinned(
        &Request::PortStats(PortStatsArgs {
            name: Some("vhost0".into()),
        }),
        r#"{"command": "port-stats", "args": {"name": "vhost0"}}"#,
    );
    pinned(
        &Request::AddPort(AddPort {
            name: "v2".into(),
            kind: "virtio-user".into(),
            path: Some("/tmp/wire/nonexist.sock".into()),
            tx_retries_max: Some("4".into()),
            ..AddPort::default()
        }),
        r#"{"command": "add-port", "args": {"name": "v2", "type": "virtio-user",
            "path": "/tmp/wire/nonexist.sock", "tx-retries-max": "4"}}"#,
    );
    pinned(
        &Request::SetPort(SetPort {
            name: "vhost2".into(),
            tag: Some("".into()),
            trunks: Some("10,20".into()),
            vlan_mode: Some("trunk".into()),
            mac_limit: None,
        }),
        r#"{"command": "set-port", "args": {"name": "vhost2", "tag": "", "trunks": "10,20", "vlan-mode": "trunk"}}"#,
    );
    pinned(
        &Request::ModFlows(FlowSelection {
            flow: "ip actions=normal".into(),
            strict: true,
        }),
        r#"{"command": "mod-flows", "args": {"flow": "ip actions=normal", "strict": true}}"#,
    );
    pinned(
        &Request::DumpFlows(DumpFlows::default()),
        r#"{"command": "dump-flows", "args": {"flow": ""}}"#,
    );
    pinned(
        &Request::AddFlows(AddFlows {
            flows: vec![NumberedFlow {
                line: 2,
                flow: "priority=1,actions=drop".into(),
            }],
        }),
        r#"{"command": "add-flows", "args": {"flows": [{"line": 2, "flow": "priority=1,actions=drop"}]}}"#,
    );
}

#[test]
fn requests_other_clients_send_still_parse() {
    let parse = |s: &str| Request::parse(s.as_bytes());
    assert_eq!(parse(r#"{"command":"show"}"#), Ok(Request::Show));
    assert_eq!(
        parse(r#"{"command":"show","args":null}"#),
        Ok(Request::Show)
    );
    assert_eq!(
        parse(r#"{"command":"pmd-stats-show"}"#),
        Ok(Request::PmdStats)
    );
    assert_eq!(
        parse(r#"{"command":"set-port","args":{"name":"p","vlan_mode":"trunk"}}"#),
        Ok(Request::SetPort(SetPort {
            name: "p".into(),
            vlan_mode: Some("trunk".into()),
            ..SetPort::default()
        }))
    );
    assert_eq!(
        parse(r#"{"command":"del-flows"}"#),
        Ok(Request::DelFlows(FlowSelection::default()))
    );
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let err = |s: &[u8]| Request::parse(s).unwrap_err();
    assert!(err(b"\x00 garbage").contains("not valid JSON"));
    assert!(err(b"[1,2]").contains("JSON object"));
    assert!(err(br#"{"args":{}}"#).contains("no \"command\""));
    assert!(err(br#"{"command":5}"#).contains("expected a string"));
    assert!(err(br#"{"command":"show","args":[1]}"#).contains("bad request"));
    assert!(err(br#"{"command":"show","x":1}"#).contains("unknown field `x`"));
    assert!(err(br#"{"command":"reboot"}"#).starts_with("unknown command \"reboot\"; known: show,"));
    let e = err(br#"{"command":"del-port"}"#);
    assert_eq!(e, "del-port: bad arguments: missing field `name`");
    assert!(err(br#"{"command":"del-port","args":{"name":7}}"#).contains("expected a string"));
    let e = err(br#"{"command":"add-port","args":{"name":"x","type":"vhost-user","foo":"1"}}"#);
    assert!(
        e.starts_with("add-port: bad arguments: unknown field `foo`"),
        "{e}"
    );
    let e = err(br#"{"command":"set-port","args":{"name":"x","mtu-request":"1"}}"#);
    assert!(
        e.contains("unknown field `mtu-request`") && e.contains("del-port and add-port"),
        "{e}"
    );
    let e = err(br#"{"command":"show","args":{"name":"x"}}"#);
    assert!(
        e.starts_with("show: bad arguments: unknown field `name`"),
        "{e}"
    );
    let e = err(br#"{"command":"add-flow","args":{"flow":"x","strict":true}}"#);
    assert!(e.contains("unknown field `strict`"), "{e}");
}

#[test]
fn replies_are_as_ferrovsd_sent_them() {
    pinned(
        &show(),
        r#"{"bridge": "br0", "fdb": {"aging_secs": 300, "entries": 0, "max": 8192}, "flows": 1,
        "mbuf_pool": {"free_shared": 4096, "in_thread_caches": 0, "in_use": 0, "pages": "hugepages-2048kB", "total": 4096},
        "metrics_addr": "127.0.0.1:39411", "pmd_sleep_max_us": 1000, "control_cores": [0],
        "pmds": [{"core": 1, "queues": [{"port": "vhost0", "queue": 0}]}],
        "ports": [{"connections": "0", "features": [], "features_hex": "0x0", "link": "down", "mac": "02:fe:00:00:00:01",
                   "mode": "server", "mtu": "1500", "name": "vhost0", "path": "/tmp/wire/run/vhost0.sock", "port_no": 1,
                   "queue_pairs": "1", "running_vrings": "", "state": "waiting", "tag": 10, "trunks": null,
                   "type": "vhost-user", "vlan_mode": "access"},
                  {"admin": ["down", "no_fwd"], "connections": "0", "last_error": "connect: No such file or directory (os error 2)", "link": "down",
                   "mac": "02:fe:00:00:00:04", "mode": "client", "name": "v2", "path": "/tmp/wire/nonexist.sock",
                   "port_no": 4, "queue_pairs": "0/1", "queue_size": "1024", "state": "connecting", "tag": null,
                   "trunks": null, "type": "virtio-user", "vlan_mode": "trunk"},
                  {"link": "up", "name": "vx0", "port_no": 5, "tag": 10, "trunks": null, "type": "vxlan",
                   "vlan_mode": "access",
                   "tunnel": {"drops": {"no_arp": 0, "tunnel_mtu": 0}, "dst_port": 4789, "key": 42,
                              "local_ip": "10.0.0.1", "overlay_mtu": 1450, "underlay": "phy0",
                              "remotes": [{"arp": "reachable", "arp_age_secs": 3, "arp_requests": 1,
                                           "ip": "10.0.0.2", "mac": "02:00:00:00:00:02",
                                           "rx_packets": 6, "tx_packets": 5}]}}],
        "run_dir": "/tmp/wire/run",
        "openflow": {"connections": 0, "controllers": [{"dialed": true, "role": "-", "seconds": 2, "state": "connecting",
                     "target": "tcp:127.0.0.1:6653"}], "datapath_id": "00000000a1b2c3d4", "errors_sent": 0,
                     "fail_mode": "standalone", "fail_open": false, "flow_mods": 7, "listening": ["punix:/tmp/wire/run/br0.mgmt"],
                     "packet_ins": 0, "packet_ins_dropped": 0, "packet_outs": 0}}"#,
    );
    pinned(
        &vec![port_stats()],
        r#"[{"guest_notifications": 0, "guest_notify_failures": 0, "mac_limit_refused": 0, "macs_learned": 0,
            "gso_rx_frames": 3, "gso_tx_frames": 4, "name": "vhost0", "one_copy_frames": 7, "rx": [{"bytes": 0, "dropped": 0, "drops": {}, "packets": 0, "queue": 0}],
            "rx_bytes": 0, "rx_dropped": 0, "rx_packets": 0, "switch_drops": {},
            "tx": [{"bytes": 0, "dropped": 0, "drops": {}, "packets": 0, "queue": 0}],
            "tx_bytes": 0, "tx_dropped": 0, "tx_packets": 0}]"#,
    );
    pinned(
        &vec![pmd_stats()],
        r#"[{"avg_batch": 0.0, "batches": 0, "busy_cycles": 0, "busy_iterations": 0, "busy_pct": 0.0,
            "cache_hits": 0, "cache_misses": 0, "classifier_probes": 0, "core": 1, "cycles_per_packet": 0.0,
            "drops": {"acl": 0, "no_buffer": 0, "no_match": 0, "no_port": 0, "reserved_mac": 0,
                      "resubmit_depth": 0, "runt": 0, "same_port": 0, "vlan": 0},
            "flooded": 0, "idle_cycles": 25129598, "idle_iterations": 4479, "packets": 0, "sleep_ms": 4455,
            "soft_csum": 1, "soft_gso": 2, "soft_segments": 90}]"#,
    );
    pinned(
        &rxq_show(),
        r#"{"assign": "cycles", "pmds": [{"core": 1, "queues": [{"enabled": false, "pinned": false,
            "port": "vhost0", "queue": 0, "usage_pct": 0.0,
            "mode": "notified", "wakeups": 3, "late_wakeups": 0}]}],
            "auto_lb": {"enabled": true, "load_threshold_pct": 95, "improvement_threshold_pct": 25,
                        "interval_s": 60, "checks": 2, "rebalances": 1,
                        "last": "core 1 97% busy; load variance 2401.0 -> 0.3 (100% better, threshold 25%): queues moved"}}"#,
    );
    pinned(
        &vec![flow()],
        r#"[{"actions": "drop", "cookie": 0, "duration_secs": 0.15066876, "hard_timeout": 0, "idle_age_secs": 0,
            "idle_timeout": 0, "match": "ip", "n_bytes": 0, "n_packets": 0, "priority": 5, "table": 0}]"#,
    );
    pinned(
        &PortSet {
            port: "vhost0".into(),
            vlan_mode: "access".into(),
            tag: Some(10),
            trunks: None,
            mac_limit: Some(5),
        },
        r#"{"mac_limit": 5, "port": "vhost0", "tag": 10, "trunks": null, "vlan_mode": "access"}"#,
    );
    pinned(
        &FdbShow {
            entries: vec![FdbEntry {
                port: "vx0".into(),
                vlan: 10,
                mac: "02:00:00:00:00:0b".into(),
                age: 1,
                remote: Some("10.0.0.2".into()),
            }],
            stats: FdbStats {
                current: 0,
                max: 8192,
                learned: 0,
                moved: 0,
                aged: 0,
                refused: 0,
                flushed: 0,
            },
        },
        r#"{"entries": [{"age": 1, "mac": "02:00:00:00:00:0b", "port": "vx0", "remote": "10.0.0.2", "vlan": 10}],
            "stats": {"aged": 0, "current": 0, "flushed": 0, "learned": 0, "max": 8192, "moved": 0, "refused": 0}}"#,
    );
    pinned(
        &PortAdded {
            added: "v2".into(),
            port_no: 3,
        },
        r#"{"added": "v2", "port_no": 3}"#,
    );
    pinned(
        &PortRemoved {
            removed: "v2".into(),
        },
        r#"{"removed": "v2"}"#,
    );
    pinned(&FdbFlushed { flushed: 0 }, r#"{"flushed": 0}"#);
    pinned(&PmdStatsCleared { cleared: 1 }, r#"{"cleared": 1}"#);
    pinned(&FlowsAdded { added: 1 }, r#"{"added": 1}"#);
    pinned(&FlowsModified { modified: 1 }, r#"{"modified": 1}"#);
    pinned(&FlowsDeleted { deleted: 1 }, r#"{"deleted": 1}"#);
}

#[test]
fn show_before_the_openflow_agent_runs_says_null() {
    let s = Show {
        openflow: None,
        ..show()
    };
    assert_eq!(serde_json::to_value(&s).unwrap()["openflow"], Value::Null);
}

#[test]
fn the_envelope_is_ok_result_or_error() {
    let ok = ReplyLine::from(Ok::<_, String>(FdbFlushed { flushed: 2 }));
    assert_eq!(
        serde_json::to_value(&ok).unwrap(),
        json!({"ok": true, "result": {"flushed": 2}})
    );
    let err = ReplyLine::<FdbFlushed>::from(Err("no port named \"vhost9\"".to_string()));
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({"ok": false, "error": "no port named \"vhost9\""})
    );
    let back: ReplyLine = serde_json::from_str(r#"{"error":"missing","ok":false}"#).unwrap();
    assert_eq!(back.into_result(), Err("missing".to_string()));
}

#[test]
fn unknown_driver_facts_are_kept() {
    let literal = r#"{"name": "r0", "port_no": 1, "type": "ring", "link": "up", "vlan_mode": "trunk",
                      "tag": null, "trunks": null, "depth": "1024"}"#;
    let p: ShowPort = serde_json::from_str(literal).unwrap();
    assert_eq!(
        p.driver.extra.get("depth").map(String::as_str),
        Some("1024")
    );
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        serde_json::from_str::<Value>(literal).unwrap()
    );
}

#[test]
fn help_lists_every_command_with_its_summary() {
    let Help(h) = Help::table();
    assert_eq!(h.len(), Command::ALL.len());
    assert_eq!(h["del-port"], "NAME: remove a port");
    assert_eq!(h["fdb-flush"], "forget every learned MAC");
}
