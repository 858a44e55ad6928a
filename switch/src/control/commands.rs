//! The management commands: a JSON request in, a JSON result or an error
//! message out. Every command reads or changes the [`Bridge`]; none can
//! touch the packet path other than through a new snapshot.

use crate::bridge::Bridge;
use crate::config::{format_mac, Mode, PortConfig, PortKind};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

/// The command names, for `help` and for error messages.
pub const COMMANDS: &[(&str, &str)] = &[
    ("show", "bridge, ports (type, socket, mode, state, negotiated features), PMD cores and their queues"),
    ("add-port", "{name, type: \"vhost-user\"|\"virtio-user\", path, mode?: server|client, mac?} add a port at runtime"),
    ("del-port", "{name} remove a port"),
    ("set-port", "{name, tag?, trunks?, vlan-mode?, mac-limit?} change a port's VLAN options or MAC limit (\"\" or none unsets)"),
    ("add-flow", "{flow} add a rule (ovs-ofctl flow syntax)"),
    ("add-flows", "{flows: [{line, flow}]} add rules, all or none"),
    ("mod-flows", "{flow, strict?} new actions for the rules the flow selects"),
    ("del-flows", "{flow?, strict?} remove the rules the flow selects (all without one)"),
    ("dump-flows", "{flow?} rules with their counters"),
    ("fdb-show", "learned MAC addresses"),
    ("fdb-flush", "forget every learned MAC"),
    ("port-stats", "{name?} rx/tx packets, bytes and drops by reason, per queue"),
    ("pmd-stats", "per PMD core: packets, batches, average batch, busy and idle iterations and cycles"),
    ("pmd-stats-clear", "reset the pmd-stats counters"),
    ("pmd-rxq-show", "which PMD core polls which rx queue, and the queue's share of that core"),
    ("pmd-rxq-rebalance", "recompute the rx queue placement (pmd.rxq-assign)"),
    ("help", "this list"),
];

pub fn dispatch(
    bridge: &Bridge,
    command: &str,
    args: &Map<String, Value>,
) -> Result<Value, String> {
    match command {
        "show" => Ok(show(bridge)),
        "add-port" => add_port(bridge, args),
        "del-port" => {
            let name = str_arg(args, "name")?;
            bridge
                .del_port_persistent(name)
                .map_err(|e| e.to_string())?;
            Ok(json!({ "removed": name }))
        }
        "set-port" => set_port(bridge, args),
        "add-flow" | "add-flows" | "mod-flows" | "del-flows" | "dump-flows" => {
            flows(bridge, command, args)
        }
        "fdb-show" => Ok(fdb_show(bridge)),
        "fdb-flush" => Ok(json!({ "flushed": bridge.fdb.flush() })),
        "port-stats" => port_stats(bridge, args.get("name").and_then(Value::as_str)),
        "pmd-stats" | "pmd-stats-show" => Ok(pmd_stats(bridge)),
        "pmd-stats-clear" => {
            for p in &bridge.datapath.pmds {
                p.clear();
            }
            Ok(json!({ "cleared": bridge.datapath.pmds.len() }))
        }
        "pmd-rxq-show" => Ok(pmd_rxq_show(bridge)),
        "pmd-rxq-rebalance" => {
            bridge.rebalance();
            Ok(pmd_rxq_show(bridge))
        }
        "help" => Ok(Value::Object(
            COMMANDS
                .iter()
                .map(|(c, h)| (c.to_string(), json!(h)))
                .collect(),
        )),
        other => Err(format!(
            "unknown command {other:?}; known: {}",
            COMMANDS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn str_arg<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("argument {key:?} must be a string")),
        None => Err(format!("missing argument {key:?}")),
    }
}

/// An optional numeric argument (given as a string, like every ctl argument) within `lo..=hi`.
fn num_arg(args: &Map<String, Value>, key: &str, lo: u32, hi: u32) -> Result<Option<u32>, String> {
    if args.get(key).is_none() {
        return Ok(None);
    }
    let n = str_arg(args, key)?
        .parse::<u32>()
        .ok()
        .filter(|n| (lo..=hi).contains(n));
    n.map(Some)
        .ok_or_else(|| format!("{key} must be a number from {lo} to {hi}"))
}

fn add_port(bridge: &Bridge, args: &Map<String, Value>) -> Result<Value, String> {
    for k in args.keys() {
        const KNOWN: &[&str] = &[
            "name",
            "type",
            "path",
            "mode",
            "mac",
            "tx-retries-max",
            "mtu-request",
            "n-rxq",
            "pmd-rxq-affinity",
            "devargs",
            "n-rxq-desc",
            "n-txq-desc",
            "tag",
            "trunks",
            "vlan-mode",
            "vlan_mode",
            "mac-limit",
        ];
        if !KNOWN.contains(&k.as_str()) {
            return Err(format!(
                "unknown add-port argument {k:?} (known: {})",
                KNOWN.join(", ")
            ));
        }
    }
    let name = str_arg(args, "name")?.to_string();
    let kind = match str_arg(args, "type")? {
        "vhost-user" => PortKind::VhostUser,
        "virtio-user" => PortKind::VirtioUser,
        "dpdk" => PortKind::Dpdk,
        t => {
            return Err(format!(
                "unknown port type {t:?} (known: vhost-user, virtio-user, dpdk)"
            ))
        }
    };
    let path = if kind == PortKind::Dpdk {
        Default::default()
    } else {
        str_arg(args, "path")?.into()
    };
    let devargs = args
        .get("devargs")
        .map(|_| str_arg(args, "devargs"))
        .transpose()?
        .map(String::from);
    let n_rxq_desc = num_arg(args, "n-rxq-desc", 64, 4096)?.map(|n| n as u16);
    let n_txq_desc = num_arg(args, "n-txq-desc", 64, 4096)?.map(|n| n as u16);
    let mode = match args
        .get("mode")
        .map(|_| str_arg(args, "mode"))
        .transpose()?
    {
        None | Some("server") => Mode::Server,
        Some("client") => Mode::Client,
        Some(m) => return Err(format!("unknown mode {m:?} (known: server, client)")),
    };
    let mac = args
        .get("mac")
        .map(|_| str_arg(args, "mac"))
        .transpose()?
        .map(String::from);
    let tx_retries_max =
        num_arg(args, "tx-retries-max", 0, 32)?.unwrap_or(crate::config::DEFAULT_TX_RETRIES);
    let mtu_request = num_arg(args, "mtu-request", 68, crate::config::MAX_MTU)?;
    let n_rxq = num_arg(args, "n-rxq", 1, crate::config::MAX_QUEUE_PAIRS as u32)?.map(|n| n as u16);
    let pmd_rxq_affinity = args
        .get("pmd-rxq-affinity")
        .map(|_| str_arg(args, "pmd-rxq-affinity"))
        .transpose()?
        .map(String::from);
    if let Some(a) = &pmd_rxq_affinity {
        crate::config::parse_affinity(a).map_err(|e| format!("pmd-rxq-affinity: {e}"))?;
    }
    let mut cfg = PortConfig {
        tag: None,
        trunks: None,
        vlan_mode: None,
        mac_limit: None,
        devargs,
        n_rxq_desc,
        n_txq_desc,
        name: name.clone(),
        kind,
        path,
        mode,
        mac,
        tx_retries_max,
        mtu_request,
        n_rxq,
        pmd_rxq_affinity,
    };
    for (k, v) in args
        .iter()
        .filter(|(k, _)| RUNTIME_KEYS.contains(&k.as_str()) || *k == "vlan_mode")
    {
        let Value::String(v) = v else {
            return Err(format!("argument {k:?} must be a string"));
        };
        set_runtime_option(&mut cfg, k, v)?;
    }
    let no = bridge.add_port_persistent(cfg).map_err(|e| e.to_string())?;
    Ok(json!({ "added": name, "port_no": no }))
}

/// The port options `set-port` may change at runtime (OVS Port columns, and
/// mac-limit).
const RUNTIME_KEYS: &[&str] = &["tag", "trunks", "vlan-mode", "mac-limit"];

/// One runtime option from its text; "" or "none" unsets it. Checked as a
/// whole by `PortConfig::check_runtime_options` when the port is stored.
fn set_runtime_option(cfg: &mut PortConfig, key: &str, v: &str) -> Result<(), String> {
    let unset = v.is_empty() || v == "none" || v == "[]";
    match key {
        "tag" => {
            cfg.tag = if unset {
                None
            } else {
                Some(
                    v.parse::<u16>()
                        .ok()
                        .filter(|t| *t <= 4095)
                        .ok_or_else(|| format!("tag: {v:?} is not a VLAN ID (0..4095)"))?,
                )
            }
        }
        "trunks" => cfg.trunks = (!unset).then(|| v.to_string()),
        "mac-limit" => {
            cfg.mac_limit = if unset {
                None
            } else {
                Some(
                    v.parse::<u32>()
                        .map_err(|_| format!("mac-limit: {v:?} is not a number"))?,
                )
            }
        }
        "vlan-mode" | "vlan_mode" => {
            cfg.vlan_mode = if unset {
                None
            } else {
                Some(crate::flow::vlan::VlanMode::parse(v)?)
            }
        }
        _ => unreachable!("only RUNTIME_KEYS"),
    }
    Ok(())
}

fn set_port(bridge: &Bridge, args: &Map<String, Value>) -> Result<Value, String> {
    let name = str_arg(args, "name")?.to_string();
    let mut changes = Vec::new();
    for k in args.keys().filter(|k| *k != "name") {
        let key = if k == "vlan_mode" {
            "vlan-mode"
        } else {
            k.as_str()
        };
        if !RUNTIME_KEYS.contains(&key) {
            return Err(format!(
                "set-port cannot change {k:?} at runtime (it can: {}); del-port and add-port to change the rest",
                RUNTIME_KEYS.join(", ")
            ));
        }
        changes.push((key, str_arg(args, k)?.to_string()));
    }
    if changes.is_empty() {
        return Err(format!(
            "set-port {name}: nothing to change (give key=value: {})",
            RUNTIME_KEYS.join(", ")
        ));
    }
    let cfg = bridge
        .set_port(&name, |c| {
            for (k, v) in &changes {
                set_runtime_option(c, k, v)?;
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let vlan = cfg.vlan()?;
    Ok(
        json!({ "port": name, "vlan_mode": vlan.mode.name(), "tag": cfg.tag, "trunks": cfg.trunks, "mac_limit": cfg.mac_limit }),
    )
}

/// Arguments of the flow commands, typed.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowArgs {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    flows: Vec<NumberedFlow>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberedFlow {
    line: usize,
    flow: String,
}

fn flows(bridge: &Bridge, command: &str, args: &Map<String, Value>) -> Result<Value, String> {
    let a: FlowArgs = serde_json::from_value(Value::Object(args.clone()))
        .map_err(|e| format!("{command}: bad arguments: {e}"))?;
    match command {
        "add-flow" => {
            if a.flow.trim().is_empty() {
                return Err("add-flow needs a flow, e.g. \"priority=10,ip,actions=drop\"".into());
            }
            let n = bridge.add_flows(&[(0, a.flow)])?;
            Ok(json!({ "added": n }))
        }
        "add-flows" => {
            let lines: Vec<(usize, String)> =
                a.flows.into_iter().map(|f| (f.line, f.flow)).collect();
            let n = bridge.add_flows(&lines)?;
            Ok(json!({ "added": n }))
        }
        "mod-flows" => Ok(json!({ "modified": bridge.mod_flows(&a.flow, a.strict)? })),
        "del-flows" => Ok(json!({ "deleted": bridge.del_flows(&a.flow, a.strict)? })),
        "dump-flows" => Ok(json!(bridge.dump_flows(&a.flow)?)),
        _ => unreachable!("dispatched flow commands only"),
    }
}

fn show(bridge: &Bridge) -> Value {
    let snap = bridge.datapath.current();
    let pool = bridge.pool.stats();
    let ports: Vec<Value> = bridge
        .ports()
        .iter()
        .map(|(cfg, sp)| {
            let mut o = Map::new();
            o.insert("name".into(), json!(sp.name));
            if let Ok(v) = cfg.vlan() {
                o.insert("vlan_mode".into(), json!(v.mode.name()));
                o.insert("tag".into(), json!(cfg.tag));
                o.insert("trunks".into(), json!(cfg.trunks));
            }
            o.insert("port_no".into(), json!(sp.no));
            o.insert("type".into(), json!(sp.port.kind()));
            o.insert(
                "link".into(),
                json!(if sp.port.link_up() { "up" } else { "down" }),
            );
            for (k, v) in sp.port.info() {
                let v = if k == "features" {
                    json!(v.split(',').filter(|f| !f.is_empty()).collect::<Vec<_>>())
                } else {
                    json!(v)
                };
                o.insert(k.into(), v);
            }
            if let Some(mac) = sp.port.mac() {
                o.insert("mac".into(), json!(format_mac(&mac)));
            }
            Value::Object(o)
        })
        .collect();
    let pmds: Vec<Value> = bridge
        .datapath
        .pmds
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let queues: Vec<Value> = snap
                .poll_list(i)
                .iter()
                .map(|q| json!({ "port": snap.ports[q.slot as usize].name, "queue": q.qid }))
                .collect();
            json!({ "core": p.core, "queues": queues })
        })
        .collect();
    json!({
        "bridge": bridge.name,
        "run_dir": bridge.run_dir.display().to_string(),
        "ports": ports,
        "pmds": pmds,
        "pmd_sleep_max_us": bridge.datapath.sleep_max(),
        "metrics_addr": bridge.metrics_addr(),
        "mbuf_pool": {
            "pages": bridge.pool.page_kind().as_str(),
            "total": pool.total, "in_use": pool.in_use,
            "free_shared": pool.free_shared, "in_thread_caches": pool.in_thread_caches,
        },
        "fdb": { "entries": bridge.fdb.len(), "max": bridge.fdb.max(), "aging_secs": bridge.fdb.aging_secs() },
        "flows": bridge.n_flows(),
        "openflow": bridge.openflow_status(),
    })
}

fn fdb_show(bridge: &Bridge) -> Value {
    let names: std::collections::HashMap<u16, String> = bridge
        .ports()
        .into_iter()
        .map(|(_, sp)| (sp.no, sp.name.clone()))
        .collect();
    let entries: Vec<Value> = bridge
        .fdb
        .entries()
        .into_iter()
        .map(|e| {
            json!({
                "port": names.get(&e.port).cloned().unwrap_or_else(|| format!("#{}", e.port)),
                "vlan": e.vlan, "mac": format_mac(&e.mac), "age": e.age_secs,
            })
        })
        .collect();
    let c = &bridge.fdb.counters;
    json!({
        "entries": entries,
        "stats": {
            "current": bridge.fdb.len(), "max": bridge.fdb.max(),
            "learned": c.learned.load(Ordering::Relaxed), "moved": c.moved.load(Ordering::Relaxed),
            "aged": c.aged.load(Ordering::Relaxed), "refused": c.refused.load(Ordering::Relaxed),
            "flushed": c.flushed.load(Ordering::Relaxed),
        }
    })
}

fn queue_json(qid: usize, c: pmd::port::QueueCounters) -> Value {
    let drops: Map<String, Value> = c
        .drops
        .iter()
        .map(|(r, n)| (r.to_string(), json!(n)))
        .collect();
    json!({ "queue": qid, "packets": c.packets, "bytes": c.bytes, "dropped": c.total_drops(), "drops": drops })
}

fn port_stats(bridge: &Bridge, only: Option<&str>) -> Result<Value, String> {
    let ports = bridge.ports();
    if let Some(n) = only {
        if !ports.iter().any(|(_, sp)| sp.name == n) {
            return Err(format!("no port named {n:?}"));
        }
    }
    let out: Vec<Value> = ports
        .iter()
        .filter(|(_, sp)| only.is_none_or(|n| n == sp.name))
        .map(|(_, sp)| {
            let p = &sp.port;
            p.refresh_stats();
            let rx: Vec<Value> = (0..p.n_rxq()).map(|q| queue_json(q, p.rxq_stats(q).snapshot())).collect();
            let tx: Vec<Value> = (0..p.n_txq()).map(|q| queue_json(q, p.txq_stats(q).snapshot())).collect();
            let sum = |v: &[Value], k: &str| v.iter().map(|q| q[k].as_u64().unwrap_or(0)).sum::<u64>();
            let pc = p.peer_counters();
            json!({
                "name": sp.name,
                "rx_packets": sum(&rx, "packets"), "rx_bytes": sum(&rx, "bytes"), "rx_dropped": sum(&rx, "dropped"),
                "tx_packets": sum(&tx, "packets"), "tx_bytes": sum(&tx, "bytes"), "tx_dropped": sum(&tx, "dropped"),
                "guest_notifications": pc.notifications,
                "guest_notify_failures": pc.notify_failures,
                "macs_learned": bridge.fdb.port_macs(sp.no).0,
                "mac_limit_refused": bridge.fdb.port_macs(sp.no).1,
                "switch_drops": sp.drops.read().into_iter().map(|(r, n)| (r.to_string(), json!(n))).collect::<Map<String, Value>>(),
                "rx": rx, "tx": tx,
            })
        })
        .collect();
    Ok(Value::Array(out))
}

fn pmd_rxq_show(bridge: &Bridge) -> Value {
    let snap = bridge.datapath.current();
    let pmds: Vec<Value> = bridge
        .datapath
        .pmds
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let list = snap.poll_list(i);
            let cycles: Vec<u64> = list
                .iter()
                .map(|q| {
                    snap.ports[q.slot as usize].rxq_cycles[q.qid as usize].load(Ordering::Relaxed)
                })
                .collect();
            let total =
                p.busy_cycles.load(Ordering::Relaxed) + p.idle_cycles.load(Ordering::Relaxed);
            let queues: Vec<Value> = list
                .iter()
                .zip(&cycles)
                .map(|(q, c)| {
                    let sp = &snap.ports[q.slot as usize];
                    let enabled = sp.port.rxq_enabled(q.qid as usize);
                    json!({
                        "port": sp.name, "queue": q.qid, "enabled": enabled,
                        "pinned": sp.rxq_affinity[q.qid as usize].is_some(),
                        "usage_pct": if total > 0 { 100.0 * *c as f64 / total as f64 } else { 0.0 },
                    })
                })
                .collect();
            json!({ "core": p.core, "queues": queues })
        })
        .collect();
    json!({ "assign": format!("{:?}", bridge.rxq_assign).to_lowercase(), "pmds": pmds })
}

fn pmd_stats(bridge: &Bridge) -> Value {
    let tsc = bridge.datapath.tsc_per_us();
    let v: Vec<Value> = bridge
        .datapath
        .pmds
        .iter()
        .map(|p| {
            let c = p.read();
            let drops: Map<String, Value> = c.drops.iter().map(|(r, n)| (r.to_string(), json!(n))).collect();
            let cycles = c.busy_cycles + c.idle_cycles;
            let sleep_cycles = c.sleep_ns * tsc / 1000;
            json!({
                "core": p.core,
                "packets": c.packets,
                "batches": c.batches,
                "avg_batch": if c.batches > 0 { c.packets as f64 / c.batches as f64 } else { 0.0 },
                "busy_iterations": c.busy_iterations,
                "idle_iterations": c.idle_iterations,
                "busy_cycles": c.busy_cycles,
                "idle_cycles": c.idle_cycles,
                "busy_pct": if cycles + sleep_cycles > 0 { 100.0 * c.busy_cycles as f64 / (cycles + sleep_cycles) as f64 } else { 0.0 },
                "cycles_per_packet": if c.packets > 0 { c.busy_cycles as f64 / c.packets as f64 } else { 0.0 },
                "flooded": c.flooded,
                "cache_hits": c.cache_hits,
                "cache_misses": c.cache_misses,
                "classifier_probes": c.classifier_probes,
                "sleep_ms": c.sleep_ns / 1_000_000,
                "drops": drops,
            })
        })
        .collect();
    Value::Array(v)
}
