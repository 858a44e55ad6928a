//! Human-readable rendering of replies (the `--json` output is the reply itself).

use serde_json::Value;
use std::fmt::Write;

pub const COMMANDS_HELP: &str = "Commands:
  show                                   bridge, ports, negotiated features, PMD cores and queues
  add-port NAME type=vhost-user path=SOCKET [mode=server|client] [mac=MAC]
           [tx-retries-max=N] [mtu-request=N] [n-rxq=N] [pmd-rxq-affinity=Q:CORE,...]
  del-port NAME
  set-port NAME [tag=VID] [trunks=LIST] [vlan-mode=access|trunk|native-tagged|native-untagged]
           [mac-limit=N]                 change VLAN options or the MAC limit at runtime (\"\" or none unsets)
  add-flow FLOW | add-flows FILE         add rules (ovs-ofctl flow syntax; FILE: one a line, # comments)
  mod-flows [--strict] FLOW              new actions for the rules FLOW selects
  del-flows [--strict] [FLOW]            remove the rules FLOW selects (all without FLOW)
  dump-flows [FLOW]                      rules with counters, as ovs-ofctl prints them
  fdb-show | fdb-flush                   learned MAC table
  port-stats [NAME]                      rx/tx packets, bytes, drops by reason, per queue
  pmd-stats | pmd-stats-clear            per PMD core: packets, batches, busy/idle iterations and cycles
  pmd-rxq-show | pmd-rxq-rebalance       which core polls which rx queue, and its share of the core";

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn drops(v: &Value) -> String {
    match v.as_object() {
        Some(o) if !o.is_empty() => o
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "none".into(),
    }
}

/// One rule as `ovs-ofctl dump-flows` prints it.
fn flow_line(f: &Value) -> String {
    let mut l = format!(
        " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={},",
        f["cookie"].as_u64().unwrap_or(0),
        f["duration_secs"].as_f64().unwrap_or(0.0),
        s(&f["table"]),
        s(&f["n_packets"]),
        s(&f["n_bytes"])
    );
    for k in ["idle_timeout", "hard_timeout"] {
        if f[k].as_u64().unwrap_or(0) != 0 {
            l.push_str(&format!(" {k}={},", s(&f[k])));
        }
    }
    if f["idle_timeout"].as_u64().unwrap_or(0) != 0 {
        l.push_str(&format!(" idle_age={},", s(&f["idle_age_secs"])));
    }
    let m = f["match"].as_str().unwrap_or("");
    l.push_str(&format!(" priority={}", s(&f["priority"])));
    if !m.is_empty() {
        l.push(',');
        l.push_str(m);
    }
    l.push_str(&format!(" actions={}", s(&f["actions"])));
    l
}

pub fn text(command: &str, r: &Value) -> String {
    let mut o = String::new();
    match command {
        "show" => {
            let _ = writeln!(
                o,
                "bridge {} (run dir {})",
                s(&r["bridge"]),
                s(&r["run_dir"])
            );
            let p = &r["mbuf_pool"];
            let _ = writeln!(
                o,
                "  mbuf pool: {} buffers on {}, {} in use",
                s(&p["total"]),
                s(&p["pages"]),
                s(&p["in_use"])
            );
            let f = &r["fdb"];
            let _ = writeln!(
                o,
                "  fdb: {} of {} entries, aging {} s",
                s(&f["entries"]),
                s(&f["max"]),
                s(&f["aging_secs"])
            );
            for port in r["ports"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "  port {} ({}): {} link {} vlan {}{}{}",
                    s(&port["name"]),
                    s(&port["port_no"]),
                    s(&port["type"]),
                    s(&port["link"]),
                    s(&port["vlan_mode"]),
                    port["tag"]
                        .as_u64()
                        .map(|t| format!(" tag {t}"))
                        .unwrap_or_default(),
                    port["trunks"]
                        .as_str()
                        .map(|t| format!(" trunks {t}"))
                        .unwrap_or_default()
                );
                if port.get("path").is_some() {
                    let _ = writeln!(
                        o,
                        "    socket {} mode {} state {} mac {}",
                        s(&port["path"]),
                        s(&port["mode"]),
                        s(&port["state"]),
                        s(&port["mac"])
                    );
                    let feats: Vec<String> = port["features"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(s)
                        .collect();
                    let _ = writeln!(
                        o,
                        "    features {} ({})",
                        if feats.is_empty() {
                            "-".into()
                        } else {
                            feats.join(" ")
                        },
                        s(&port["features_hex"])
                    );
                    if let Some(e) = port.get("last_error") {
                        let _ = writeln!(o, "    last error: {}", s(e));
                    }
                    if let Some(e) = port.get("previous_error") {
                        let _ = writeln!(o, "    previous error (link up since): {}", s(e));
                    }
                }
                if port.get("driver").is_some() {
                    let _ = writeln!(
                        o,
                        "    devargs {} driver {} speed {} Mbit/s queues {} mtu {}",
                        s(&port["devargs"]),
                        s(&port["driver"]),
                        s(&port["link_speed_mbps"]),
                        s(&port["queues"]),
                        s(&port["mtu"])
                    );
                }
            }
            let _ = writeln!(o, "  flows: {} rule(s) (dump-flows)", s(&r["flows"]));
            let _ = writeln!(o, "  pmd sleep max {} us", s(&r["pmd_sleep_max_us"]));
            for pmd in r["pmds"].as_array().into_iter().flatten() {
                let qs: Vec<String> = pmd["queues"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|q| format!("{}/{}", s(&q["port"]), s(&q["queue"])))
                    .collect();
                let _ = writeln!(
                    o,
                    "  pmd core {}: {}",
                    s(&pmd["core"]),
                    if qs.is_empty() {
                        "idle".into()
                    } else {
                        qs.join(" ")
                    }
                );
            }
        }
        "port-stats" => {
            for p in r.as_array().into_iter().flatten() {
                let _ = writeln!(o, "port {}:", s(&p["name"]));
                for (dir, key) in [("rx", "rx"), ("tx", "tx")] {
                    for q in p[key].as_array().into_iter().flatten() {
                        let _ = writeln!(
                            o,
                            "  {dir} q{}: packets {} bytes {} dropped {} ({})",
                            s(&q["queue"]),
                            s(&q["packets"]),
                            s(&q["bytes"]),
                            s(&q["dropped"]),
                            drops(&q["drops"])
                        );
                    }
                }
                let _ = writeln!(o, "  switch drops ({})", drops(&p["switch_drops"]));
                let _ = writeln!(
                    o,
                    "  macs learned {} (refused by mac-limit {})",
                    s(&p["macs_learned"]),
                    s(&p["mac_limit_refused"])
                );
                let _ = writeln!(
                    o,
                    "  guest notifications {} (not taken {})",
                    s(&p["guest_notifications"]),
                    s(&p["guest_notify_failures"])
                );
            }
        }
        "pmd-stats" | "pmd-stats-show" => {
            for p in r.as_array().into_iter().flatten() {
                let _ = writeln!(o, "pmd core {}:", s(&p["core"]));
                let _ = writeln!(
                    o,
                    "  packets {}  batches {}  avg batch {:.1}",
                    s(&p["packets"]),
                    s(&p["batches"]),
                    p["avg_batch"].as_f64().unwrap_or(0.0)
                );
                let _ = writeln!(
                    o,
                    "  busy iterations {}  idle iterations {}  busy {:.1}%",
                    s(&p["busy_iterations"]),
                    s(&p["idle_iterations"]),
                    p["busy_pct"].as_f64().unwrap_or(0.0)
                );
                let _ = writeln!(
                    o,
                    "  busy cycles {}  idle cycles {}  cycles/packet {:.1}",
                    s(&p["busy_cycles"]),
                    s(&p["idle_cycles"]),
                    p["cycles_per_packet"].as_f64().unwrap_or(0.0)
                );
                let _ = writeln!(
                    o,
                    "  cache hits {}  misses {}  classifier probes {} (masks searched)",
                    s(&p["cache_hits"]),
                    s(&p["cache_misses"]),
                    s(&p["classifier_probes"])
                );
                let _ = writeln!(
                    o,
                    "  flooded {}  slept {} ms  drops {}",
                    s(&p["flooded"]),
                    s(&p["sleep_ms"]),
                    drops(&p["drops"])
                );
            }
        }
        "pmd-rxq-show" | "pmd-rxq-rebalance" => {
            let _ = writeln!(o, "rxq assignment: {}", s(&r["assign"]));
            for p in r["pmds"].as_array().into_iter().flatten() {
                let _ = writeln!(o, "pmd core {}:", s(&p["core"]));
                for q in p["queues"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        o,
                        "  port: {:<12} queue-id: {:>2} ({}{})  pmd usage: {:>5.1} %",
                        s(&q["port"]),
                        s(&q["queue"]),
                        if q["enabled"] == true {
                            "enabled"
                        } else {
                            "disabled"
                        },
                        if q["pinned"] == true { ", pinned" } else { "" },
                        q["usage_pct"].as_f64().unwrap_or(0.0)
                    );
                }
            }
        }
        "dump-flows" => {
            for f in r.as_array().into_iter().flatten() {
                o.push_str(&flow_line(f));
                o.push('\n');
            }
        }
        "add-flow" | "add-flows" | "mod-flows" | "del-flows" => {}
        "fdb-show" => {
            let _ = writeln!(
                o,
                "{:<10} {:>4}  {:<17}  {:>5}",
                "port", "vlan", "mac", "age"
            );
            for e in r["entries"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "{:<10} {:>4}  {:<17}  {:>5}",
                    s(&e["port"]),
                    s(&e["vlan"]),
                    s(&e["mac"]),
                    s(&e["age"])
                );
            }
            let st = &r["stats"];
            let _ = writeln!(
                o,
                "entries {} of {}; learned {} moved {} aged {} refused {} flushed {}",
                s(&st["current"]),
                s(&st["max"]),
                s(&st["learned"]),
                s(&st["moved"]),
                s(&st["aged"]),
                s(&st["refused"]),
                s(&st["flushed"])
            );
        }
        _ => {
            let _ = writeln!(o, "{}", serde_json::to_string_pretty(r).unwrap_or_default());
        }
    }
    o
}
