//! `ferrovs-ctl top`: a live view of ports and PMD cores, refreshed every
//! interval from two ordinary requests (port-stats, pmd-stats); rates are
//! differences between refreshes. Redrawn in place on a terminal, blocks
//! of plain lines when piped.

use anyhow::{bail, Result};
use ferrovs_proto::{PmdStats, PortStats, PortStatsArgs, Reply, Request};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub const NAME: &str = "top";
pub const SYNOPSIS: &str = "top [interval=SECS] [count=N]";
pub const HELP: &str =
    "live view: per port rx/tx Mpps, Mbit/s, drops/s; per PMD core Mpps, busy %, cycles/pkt, batch";

type Call<'a> = &'a dyn Fn(&Request) -> Result<Reply>;

struct Sample {
    at: Instant,
    ports: HashMap<String, PortStats>,
    pmds: HashMap<usize, PmdStats>,
}

fn take(call: Call) -> Result<Sample> {
    let Reply::PortStats(ports) = call(&Request::PortStats(PortStatsArgs::default()))? else {
        bail!("port-stats answered with another reply");
    };
    let Reply::PmdStats(pmds) = call(&Request::PmdStats)? else {
        bail!("pmd-stats answered with another reply");
    };
    Ok(Sample {
        at: Instant::now(),
        ports: ports.into_iter().map(|p| (p.name.clone(), p)).collect(),
        pmds: pmds.into_iter().map(|p| (p.core, p)).collect(),
    })
}

fn frame(prev: &Sample, cur: &Sample) -> String {
    let secs = cur.at.duration_since(prev.at).as_secs_f64().max(1e-3);
    let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    let mut out = format!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "PORT", "RX Mpps", "RX Mbit/s", "TX Mpps", "TX Mbit/s", "RX drop/s", "TX drop/s"
    );
    let mut names: Vec<&String> = cur.ports.keys().collect();
    names.sort();
    for n in names {
        let b = &cur.ports[n];
        let a = prev.ports.get(n).unwrap_or(b);
        out += &format!(
            "{:<16} {:>10.3} {:>10.1} {:>10.3} {:>10.1} {:>10.0} {:>10.0}\n",
            n,
            per_sec(a.rx_packets, b.rx_packets) / 1e6,
            per_sec(a.rx_bytes, b.rx_bytes) * 8.0 / 1e6,
            per_sec(a.tx_packets, b.tx_packets) / 1e6,
            per_sec(a.tx_bytes, b.tx_bytes) * 8.0 / 1e6,
            per_sec(a.rx_dropped, b.rx_dropped),
            per_sec(a.tx_dropped, b.tx_dropped),
        );
    }
    out += &format!(
        "\n{:<16} {:>10} {:>10} {:>10} {:>10}\n",
        "PMD CORE", "Mpps", "busy %", "cyc/pkt", "avg batch"
    );
    let mut cores: Vec<&usize> = cur.pmds.keys().collect();
    cores.sort();
    for c in cores {
        let b = &cur.pmds[c];
        let a = prev.pmds.get(c).unwrap_or(b);
        // Differences; a pmd-stats-clear in between reads as zero, not as a huge number.
        let pk = b.packets.saturating_sub(a.packets) as f64;
        let busy = b.busy_cycles.saturating_sub(a.busy_cycles) as f64;
        let idle = b.idle_cycles.saturating_sub(a.idle_cycles) as f64;
        let batches = b.batches.saturating_sub(a.batches) as f64;
        let div = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
        out += &format!(
            "{:<16} {:>10.3} {:>10.1} {:>10.0} {:>10.1}\n",
            c,
            pk / secs / 1e6,
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
