//! `ferrovs-ctl top`: a live view of ports and PMD cores, refreshed every
//! interval from two ordinary requests (port-stats, pmd-stats); rates are
//! differences between refreshes. Redrawn in place on a terminal, blocks
//! of plain lines when piped.

use anyhow::Result;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

type Call<'a> = &'a dyn Fn(&str, Value) -> Result<Value>;

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

struct Sample {
    at: Instant,
    ports: HashMap<String, Value>,
    pmds: HashMap<u64, Value>,
}

fn take(call: Call) -> Result<Sample> {
    let ports = call("port-stats", json!({}))?;
    let pmds = call("pmd-stats", json!({}))?;
    Ok(Sample {
        at: Instant::now(),
        ports: ports
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["name"].as_str().unwrap_or("?").to_string(), p.clone()))
            .collect(),
        pmds: pmds
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| (p["core"].as_u64().unwrap_or(0), p.clone()))
            .collect(),
    })
}

fn frame(prev: &Sample, cur: &Sample) -> String {
    let secs = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
    let rate = |a: &Value, b: &Value, k: &str| (num(b, k) - num(a, k)).max(0.0) / secs;
    let mut out = format!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "PORT", "RX Mpps", "RX Mbit/s", "TX Mpps", "TX Mbit/s", "RX drop/s", "TX drop/s"
    );
    let mut names: Vec<&String> = cur.ports.keys().collect();
    names.sort();
    for n in names {
        let (b, a) = (&cur.ports[n], prev.ports.get(n).unwrap_or(&cur.ports[n]));
        out += &format!(
            "{:<16} {:>10.3} {:>10.1} {:>10.3} {:>10.1} {:>10.0} {:>10.0}\n",
            n,
            rate(a, b, "rx_packets") / 1e6,
            rate(a, b, "rx_bytes") * 8.0 / 1e6,
            rate(a, b, "tx_packets") / 1e6,
            rate(a, b, "tx_bytes") * 8.0 / 1e6,
            rate(a, b, "rx_dropped"),
            rate(a, b, "tx_dropped"),
        );
    }
    out += &format!(
        "\n{:<16} {:>10} {:>10} {:>10} {:>10}\n",
        "PMD CORE", "Mpps", "busy %", "cyc/pkt", "avg batch"
    );
    let mut cores: Vec<&u64> = cur.pmds.keys().collect();
    cores.sort();
    for c in cores {
        let (b, a) = (&cur.pmds[c], prev.pmds.get(c).unwrap_or(&cur.pmds[c]));
        let pk = num(b, "packets") - num(a, "packets");
        let busy = num(b, "busy_cycles") - num(a, "busy_cycles");
        let idle = num(b, "idle_cycles") - num(a, "idle_cycles");
        let batches = num(b, "batches") - num(a, "batches");
        let div = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
        out += &format!(
            "{:<16} {:>10.3} {:>10.1} {:>10.0} {:>10.1}\n",
            c,
            pk.max(0.0) / secs / 1e6,
            100.0 * div(busy, busy + idle),
            div(busy, pk),
            div(pk, batches),
        );
    }
    out
}

/// Runs until interrupted, or for `count` refreshes when given.
pub fn run(call: Call, interval: Duration, count: Option<u64>) -> Result<()> {
    let live = std::io::stdout().is_terminal();
    let mut prev = take(call)?;
    let mut n = 0;
    while count.is_none_or(|c| n < c) {
        std::thread::sleep(interval);
        let cur = take(call)?;
        let f = frame(&prev, &cur);
        let mut o = std::io::stdout().lock();
        if live {
            write!(o, "\x1b[H\x1b[2J{f}")?;
        } else {
            writeln!(o, "{f}")?;
        }
        o.flush()?;
        prev = cur;
        n += 1;
    }
    Ok(())
}
