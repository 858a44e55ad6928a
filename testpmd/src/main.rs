//! ferrovs-testpmd: DPDK testpmd's forwarding engines over ferrovs' own
//! drivers, to measure a switch (ours or anyone's) from outside.
//!
//! Streams are built as testpmd builds them: each port's receive queue k is
//! forwarded to its topology peer's transmit queue k; streams are spread
//! over pinned forwarding cores (`--lcores`), and the main thread only
//! samples counters.

mod engine;
mod frame;
mod interrupt;
mod latency;
mod ports;
mod report;
mod stream;
mod tcp;

use anyhow::{bail, Context, Result};
use clap::Parser;
use engine::{EngineSpec, Mode};
use frame::FrameSpec;
use latency::Histogram;
use ports::Ports;
use report::{
    median, Checked, LatencyReport, Monitor, PortReport, PortSample, Summary, VlanMap, VtepCounts,
};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream::{Pacer, Stream, StreamCounters, VlanCounts};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Topology {
    /// Ports 0<->1, 2<->3 ...; an odd last port forwards to itself.
    Paired,
    /// Port i forwards to port i+1, the last to the first.
    Chained,
    /// Every port forwards to itself.
    Loop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RxMode {
    /// Busy-poll receive queues.
    Poll,
    /// Sleep on the driver's call eventfd when idle (virtio-user ports).
    Interrupt,
}

#[derive(Parser, Debug)]
#[command(
    name = "ferrovs-testpmd",
    version,
    about = "testpmd-style generator, sink and forwarder over ferrovs' drivers"
)]
struct Args {
    /// A port: virtio-user:path=SOCK[,server][,queues=N,...] | vhost:path=SOCK[,client] | ring |
    /// dpdk:[queues=N,]devargs=DEVARGS (repeatable)
    #[arg(long = "port", value_name = "SPEC", required = true)]
    ports: Vec<String>,
    #[arg(long = "forward-mode", value_enum, default_value = "io")]
    forward_mode: Mode,
    /// The forward mode of the streams receiving on port N, in place of
    /// --forward-mode: "N,MODE" (repeatable); e.g. `--forward-mode=txonly
    /// --port-mode=1,vtep --port-topology=loop` generates on port 0 while
    /// port 1 plays the far end of the switch's tunnel.
    #[arg(long = "port-mode", value_name = "N,MODE")]
    port_mode: Vec<String>,
    /// vtep: the tunnel endpoint's IPv4 address; it answers ARP for it and
    /// reflects the VXLAN frames sent to it.
    #[arg(long = "vtep-ip", value_name = "IP")]
    vtep_ip: Option<std::net::Ipv4Addr>,
    /// Frame size in bytes (without CRC), for generating modes.
    #[arg(long, default_value_t = 64)]
    txpkts: usize,
    /// Packets per burst (1..=32).
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// CPUs for forwarding threads, e.g. "1" or "0-1" (default: the last CPU).
    #[arg(long)]
    lcores: Option<String>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop after generating (txonly/flowgen) or receiving (other modes) this many packets.
    #[arg(long = "nb-pkts")]
    nb_pkts: Option<u64>,
    /// Print the summary as one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Seconds between statistics samples.
    #[arg(long = "stats-period", default_value_t = 1.0)]
    stats_period: f64,
    /// No per-period lines (the summary is still printed).
    #[arg(long)]
    quiet: bool,
    #[arg(long = "port-topology", value_enum, default_value = "paired")]
    topology: Topology,
    /// Destination MAC for frames sent on port N: "N,XX:XX:XX:XX:XX:XX" (repeatable).
    #[arg(long = "eth-peer")]
    eth_peer: Vec<String>,
    /// Source and destination IPv4 of generated frames: SRC,DST.
    #[arg(long = "tx-ip", default_value = "198.18.0.1,198.18.0.2")]
    tx_ip: String,
    /// Source and destination UDP ports of generated frames: SRC[,DST].
    #[arg(long = "tx-udp", default_value = "9,9")]
    tx_udp: String,
    /// Distinct flows (default 1 for txonly, 1024 for flowgen).
    #[arg(long)]
    flows: Option<u32>,
    /// 802.1Q tags of generated frames: VID[,VID...], each 0..=4095 or
    /// `untagged`; flow k uses entry k % count (so give --flows at least as
    /// many). A tag keeps the --txpkts frame size (the payload is 4 bytes
    /// shorter; at least 64 bytes then). --tx-first sends in every listed
    /// VLAN and untagged.
    #[arg(long = "tx-vlan", value_name = "VIDS")]
    tx_vlan: Option<String>,
    /// Priority code point (0..=7) of tagged generated frames.
    #[arg(long = "tx-vlan-pcp", value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=7))]
    tx_vlan_pcp: u8,
    /// Distinct source MACs: flow k's is the port's MAC with its last two
    /// bytes plus k % N.
    #[arg(long = "tx-macs", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    tx_macs: u32,
    /// Distinct UDP destination ports: flow k's is the --tx-udp destination
    /// plus k % N.
    #[arg(long = "tx-dst-ports", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    tx_dst_ports: u32,
    /// Total generated packets per second (default: as fast as possible).
    #[arg(long = "tx-pps")]
    tx_pps: Option<f64>,
    /// Stamp generated frames and report p50/p99/p99.9 latency of received ones.
    #[arg(long)]
    latency: bool,
    #[arg(long = "total-num-mbufs", default_value_t = 32768)]
    total_num_mbufs: u32,
    /// Frame bytes per buffer.
    #[arg(long = "mbuf-size", default_value_t = pmd::mbuf::DATA_ROOM)]
    mbuf_size: usize,
    /// Use normal pages even when hugepages are reserved.
    #[arg(long = "no-huge")]
    no_huge: bool,
    #[arg(long = "rx-mode", value_enum, default_value = "poll")]
    rx_mode: RxMode,
    /// Seconds to wait for every port's link before starting.
    #[arg(long = "link-wait", default_value_t = 10.0)]
    link_wait: f64,
    /// Ports generating modes transmit on, e.g. "0" (default: all); streams
    /// sending elsewhere only receive and check (with --port-topology=loop:
    /// generate on port 0, sink on port 1).
    #[arg(long = "tx-ports")]
    tx_ports: Option<String>,
    /// Before forwarding, every port but a vtep sends one burst (testpmd's `start
    /// tx_first`; untagged and in each --tx-vlan VLAN) so a learning switch
    /// knows every port's MAC; forwarding starts once every backend has
    /// consumed it (it really polls).
    #[arg(long = "tx-first")]
    tx_first: bool,
    /// DPDK EAL arguments, used when a `dpdk:` port is opened (a file prefix
    /// of our own is added).
    #[arg(
        long = "eal-args",
        default_value = "--no-huge -m 512 --no-pci",
        allow_hyphen_values = true
    )]
    eal_args: String,
    /// After a packet budget is spent, keep receiving this long (ms).
    #[arg(long = "drain-ms", default_value_t = 300)]
    drain_ms: u64,
    /// Once every link is up, wait this long (seconds) before forwarding:
    /// time for an SDN controller to program the new ports (a switch whose
    /// controller reacts to ports coming up drops what arrives before).
    #[arg(long = "start-delay", default_value_t = 0.0)]
    start_delay: f64,
    /// txonly: send one TCP stream per generator and leave its checksums
    /// (`csum`) or its segmentation into MSS-byte segments (`tso:MSS`, frames
    /// of --txpkts bytes, up to 64 KiB) to the port, as a guest with offloads
    /// does; virtio-user ports need `tx-offloads=on`. Receivers check every
    /// TCP segment of such a stream (checksums and payload bytes).
    #[arg(long = "tx-offload")]
    tx_offload: Option<tcp::TxOffload>,
    /// Receiving streams: receive for ON ms, then leave their queues alone
    /// for OFF ms (the sender finds the ring full), in turn: "ON,OFF".
    #[arg(long = "rx-pause")]
    rx_pause: Option<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn parse_cpus(s: &str) -> Result<Vec<usize>> {
    let mut v = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse()?, b.parse()?);
                if b < a {
                    bail!("bad CPU range {part}");
                }
                v.extend(a..=b);
            }
            None => v.push(part.parse()?),
        }
    }
    if v.is_empty() {
        bail!("--lcores is empty");
    }
    Ok(v)
}

fn parse_pair<T: std::str::FromStr>(s: &str, what: &str) -> Result<(T, Option<T>)> {
    let mut it = s.split(',');
    let a = it
        .next()
        .unwrap_or("")
        .parse()
        .ok()
        .with_context(|| format!("bad {what} {s:?}"))?;
    let b = match it.next() {
        Some(x) => Some(
            x.parse()
                .ok()
                .with_context(|| format!("bad {what} {s:?}"))?,
        ),
        None => None,
    };
    Ok((a, b))
}

/// `--tx-vlan`: VIDs or `untagged` (None), in flow order.
fn parse_vlans(s: &str) -> Result<Vec<Option<u16>>> {
    s.split(',')
        .map(|v| match v.trim() {
            "untagged" => Ok(None),
            vid => match vid.parse::<u16>() {
                Ok(n) if n <= 4095 => Ok(Some(n)),
                _ => bail!("--tx-vlan: {vid:?} is neither a VID (0..=4095) nor `untagged`"),
            },
        })
        .collect()
}

/// Values a per-flow list can never reach with `flows` flows are worth a
/// word: the run would not send what was asked for.
fn warn_unused(what: &str, n: usize, flows: u32) {
    if n > flows.max(1) as usize {
        eprintln!(
            "ferrovs-testpmd: warning: {what}: {n} values but {} flow(s), so only {} are sent (raise --flows)",
            flows.max(1),
            flows.max(1)
        );
    }
}

/// Each port's forward mode: --forward-mode, or its --port-mode.
fn port_modes(list: &[String], default: Mode, n: usize) -> Result<Vec<Mode>> {
    let mut modes = vec![default; n];
    for e in list {
        let (p, m) = e.split_once(',').context("--port-mode wants N,MODE")?;
        let p: usize = p.trim().parse().context("--port-mode port")?;
        if p >= n {
            bail!("--port-mode: no port {p}");
        }
        modes[p] = <Mode as clap::ValueEnum>::from_str(m.trim(), true)
            .map_err(|_| anyhow::anyhow!("--port-mode: unknown forward mode {m:?}"))?;
    }
    Ok(modes)
}

fn peer_of(t: Topology, i: usize, n: usize) -> usize {
    match t {
        Topology::Paired => {
            let p = i ^ 1;
            if p < n {
                p
            } else {
                i
            }
        }
        Topology::Chained => (i + 1) % n,
        Topology::Loop => i,
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Err(e) = run(Args::parse()) {
        eprintln!("ferrovs-testpmd: {e:#}");
        std::process::exit(2);
    }
}

fn run(a: Args) -> Result<()> {
    // Hundreds of ports: a socket and two eventfds per queue each.
    let _ = pmd::limits::raise_fd_limit();
    if !(1..=pmd::BURST).contains(&a.burst) {
        bail!("--burst must be 1..={}", pmd::BURST);
    }
    if a.txpkts < frame::MIN_FRAME || a.txpkts > a.mbuf_size {
        bail!(
            "--txpkts must be {}..={} (the buffer size)",
            frame::MIN_FRAME,
            a.mbuf_size
        );
    }
    let cpus = match &a.lcores {
        Some(s) => parse_cpus(s)?,
        None => vec![
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                - 1,
        ],
    };
    let (src_ip, dst_ip) = parse_pair::<std::net::Ipv4Addr>(&a.tx_ip, "--tx-ip")?;
    let dst_ip = dst_ip.context("--tx-ip needs SRC,DST")?;
    let (sport, dport) = parse_pair::<u16>(&a.tx_udp, "--tx-udp")?;
    let vlans = match &a.tx_vlan {
        Some(s) => parse_vlans(s)?,
        None => Vec::new(),
    };
    if vlans.iter().any(Option::is_some) && a.txpkts < frame::MIN_TAGGED_FRAME {
        bail!(
            "--txpkts must be at least {} with --tx-vlan tags",
            frame::MIN_TAGGED_FRAME
        );
    }
    // SAFETY: installs an async-signal-safe handler that only stores an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    let pool = pmd::Pool::with_data_room(a.total_num_mbufs, a.mbuf_size, !a.no_huge)?;
    let ports = Ports::open(&a.ports, &pool, &a.eal_args)?;
    let n = ports.list.len();
    let mut eth_peer: Vec<[u8; 6]> = (0..n)
        .map(|i| ports.list[peer_of(a.topology, i, n)].mac)
        .collect();
    for e in &a.eth_peer {
        let (p, mac) = e.split_once(',').context("--eth-peer wants N,MAC")?;
        let p: usize = p.parse().context("--eth-peer port")?;
        if p >= n {
            bail!("--eth-peer: no port {p}");
        }
        eth_peer[p] = ports::parse_mac(mac)?;
    }

    // Wait for links (virtio-user dials, vhost waits for its peer).
    let t0 = Instant::now();
    let up_at_start = || -> Vec<bool> { ports.list.iter().map(|p| p.port.link_up()).collect() };
    while !ports.list.iter().all(|p| p.port.link_up()) && !STOP.load(Ordering::Relaxed) {
        if t0.elapsed().as_secs_f64() > a.link_wait {
            eprintln!(
                "ferrovs-testpmd: warning: not every link is up after {} s; starting anyway",
                a.link_wait
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let was_up = up_at_start();
    if a.start_delay > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(a.start_delay));
    }

    // Streams: rx (port i, queue q) -> tx (peer(i), q).
    let mut streams = Vec::new();
    for i in 0..n {
        let p = peer_of(a.topology, i, n);
        let (rx, tx) = (&ports.list[i], &ports.list[p]);
        for q in 0..rx.port.n_rxq() {
            streams.push((i, q, p, q % tx.port.n_txq()));
        }
    }
    let modes = port_modes(&a.port_mode, a.forward_mode, n)?;
    for &(ri, _, ti, _) in &streams {
        if modes[ri] == Mode::Vtep && ri != ti {
            bail!("vtep answers out the port it receives on, but port {ri} forwards to port {ti} (use --port-topology=loop)");
        }
    }
    let vtep_ip = match a.vtep_ip {
        Some(ip) => ip.octets(),
        None if modes.contains(&Mode::Vtep) => bail!("vtep needs --vtep-ip=IP"),
        None => [0; 4],
    };
    let tx_ports = match &a.tx_ports {
        Some(l) => parse_cpus(l).context("--tx-ports")?,
        None => (0..n).collect(),
    };
    // Which streams generate: those of a generating mode sending on a tx port.
    let generating: Vec<bool> = streams
        .iter()
        .map(|&(ri, _, ti, _)| modes[ri].generates() && tx_ports.contains(&ti))
        .collect();
    let gen_streams = generating.iter().filter(|g| **g).count();
    let mut gen_rank = 0u64;
    let flows = a.flows.unwrap_or(if modes.contains(&Mode::Flowgen) {
        1024
    } else {
        1
    });
    if gen_streams > 0 {
        warn_unused("--tx-vlan", vlans.len(), flows);
        warn_unused("--tx-macs", a.tx_macs as usize, flows);
        warn_unused("--tx-dst-ports", a.tx_dst_ports as usize, flows);
    }
    let counters: Vec<Arc<StreamCounters>> = streams.iter().map(|_| Arc::default()).collect();
    let mut per_core: Vec<Vec<(Stream, Box<dyn engine::Engine>)>> =
        (0..cpus.len()).map(|_| Vec::new()).collect();
    let rx_pause = match &a.rx_pause {
        Some(p) => match parse_pair::<u64>(p, "--rx-pause")? {
            (on, Some(off)) if on > 0 && off > 0 => {
                Some((Duration::from_millis(on), Duration::from_millis(off)))
            }
            _ => bail!("--rx-pause wants ON,OFF milliseconds, both above 0"),
        },
        None => None,
    };
    for (k, &(ri, rq, ti, tq)) in streams.iter().enumerate() {
        let spec = EngineSpec {
            mode: if modes[ri].generates() && !generating[k] {
                Mode::Rxonly
            } else {
                modes[ri]
            },
            frame: FrameSpec {
                size: a.txpkts,
                src_mac: ports.list[ti].mac,
                dst_mac: eth_peer[ti],
                src_ip: src_ip.octets(),
                dst_ip: dst_ip.octets(),
                src_port: sport,
                dst_port: dport.unwrap_or(sport),
                flows,
                vlans: vlans.clone(),
                pcp: a.tx_vlan_pcp,
                macs: a.tx_macs,
                dst_ports: a.tx_dst_ports,
            },
            latency: a.latency,
            seed: 0x5eed + k as u64,
            tx_offload: a.tx_offload,
            rx_pause,
            vtep_ip,
        };
        let budget = match (a.nb_pkts, gen_streams) {
            (Some(total), g) if g > 0 && generating[k] => {
                let r = gen_rank;
                gen_rank += 1;
                Some(total / g as u64 + u64::from(r < total % g as u64))
            }
            _ => None,
        };
        let s = Stream {
            rx_port: ri,
            rx: Arc::clone(&ports.list[ri].port),
            rxq: rq,
            tx: Arc::clone(&ports.list[ti].port),
            txq: tq,
            tx_mac: ports.list[ti].mac,
            peer_mac: eth_peer[ti],
            batch: pmd::Batch::with_limit(a.burst),
            burst: a.burst,
            counters: Arc::clone(&counters[k]),
            latency: Histogram::default(),
            budget,
            pacer: a
                .tx_pps
                .filter(|_| generating[k])
                .map(|pps| Pacer::new(pps / gen_streams as f64, a.burst)),
            vlans: VlanCounts::default(),
        };
        per_core[k % cpus.len()].push((s, engine::make(&spec)));
    }

    // Totals count from here: the tx_first burst is part of them (its frames
    // carry no checked payload, so receivers count them as not ours).
    let base: Vec<PortSample> = ports.list.iter().map(PortSample::take).collect();
    if a.tx_first {
        tx_first(
            &ports,
            &modes,
            &eth_peer,
            &vlans,
            a.burst,
            &pool,
            Duration::from_secs_f64(a.link_wait),
        );
    }

    let quit = Arc::new(AtomicBool::new(false));
    let interrupt = a.rx_mode == RxMode::Interrupt;
    let mut threads = Vec::new();
    for (c, work) in per_core.into_iter().enumerate() {
        if work.is_empty() {
            continue;
        }
        let cpu = cpus[c];
        let pool = Arc::clone(&pool);
        let quit = Arc::clone(&quit);
        threads.push(
            std::thread::Builder::new()
                .name(format!("lcore{cpu}"))
                .spawn(move || lcore(cpu, work, pool, quit, interrupt))?,
        );
    }

    let live = std::io::stderr().is_terminal() && !a.quiet;
    let mut mon = Monitor::new(&ports.list, live, a.quiet);
    let start = Instant::now();
    let period = Duration::from_secs_f64(a.stats_period.max(0.05));
    let mut next = start + period;
    let mut drained_at: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let now = Instant::now();
        let el = now.duration_since(start);
        if now >= next {
            next += period;
            let c = sum_checked(counters.iter());
            let extra = if c.good + c.bad > 0 {
                format!("payload checks: {} good, {} bad", c.good, c.bad)
            } else {
                String::new()
            };
            mon.sample(&ports.list, el.as_secs_f64(), &extra);
        }
        if STOP.load(Ordering::Relaxed) || a.duration.is_some_and(|d| el.as_secs_f64() >= d) {
            break;
        }
        if let Some(total) = a.nb_pkts {
            let finished = if gen_streams > 0 {
                counters
                    .iter()
                    .zip(&generating)
                    .all(|(c, g)| !g || c.done.load(Ordering::Relaxed))
            } else {
                let rx: u64 = ports
                    .list
                    .iter()
                    .map(|p| PortSample::take(p).rx_packets)
                    .sum::<u64>()
                    - base.iter().map(|b| b.rx_packets).sum::<u64>();
                rx >= total
            };
            if finished {
                let t = *drained_at.get_or_insert(now);
                if gen_streams == 0 || now.duration_since(t) >= Duration::from_millis(a.drain_ms) {
                    break;
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    quit.store(true, Ordering::Relaxed);
    let mut lat = Histogram::default();
    let mut port_vlans: Vec<VlanCounts> = (0..n).map(|_| VlanCounts::default()).collect();
    for t in threads {
        if let Ok(tally) = t.join() {
            lat.merge(&tally.latency);
            for (p, v) in &tally.rx_vlans {
                port_vlans[*p].add(v);
            }
        }
    }
    let mut all_vlans = VlanCounts::default();
    for v in &port_vlans {
        all_vlans.add(v);
    }
    let end: Vec<PortSample> = ports.list.iter().map(PortSample::take).collect();
    let mut reps = Vec::new();
    for (i, p) in ports.list.iter().enumerate() {
        let (e, b) = (&end[i], &base[i]);
        let mut drops = e.drops.clone();
        for (r, v) in drops.iter_mut() {
            *v -= b.drops.get(r).copied().unwrap_or(0);
        }
        drops.retain(|_, v| *v > 0);
        let on_port = || {
            streams
                .iter()
                .zip(&counters)
                .filter(move |((ri, ..), _)| *ri == i)
                .map(|(_, c)| c)
        };
        reps.push(PortReport {
            port: i,
            mode: modes[i],
            spec: p.spec.clone(),
            kind: p.port.kind(),
            link_up: p.port.link_up(),
            rx_packets: e.rx_packets - b.rx_packets,
            rx_bytes: e.rx_bytes - b.rx_bytes,
            tx_packets: e.tx_packets - b.tx_packets,
            tx_bytes: e.tx_bytes - b.tx_bytes,
            rx_pps: (e.rx_packets - b.rx_packets) as f64 / secs,
            tx_pps: (e.tx_packets - b.tx_packets) as f64 / secs,
            rx_pps_median: median(&mon.rx_pps[i]),
            tx_pps_median: median(&mon.tx_pps[i]),
            drops,
            rx_pps_series: mon.rx_pps[i].clone(),
            checked: sum_checked(on_port()),
            vtep: (modes[i] == Mode::Vtep).then(|| VtepCounts::sum(on_port())),
            rx_vlans: VlanMap::from(&port_vlans[i]),
        });
    }
    let total_by_period = |v: &[Vec<f64>]| {
        let periods = v.iter().map(|x| x.len()).min().unwrap_or(0);
        let sums: Vec<f64> = (0..periods).map(|k| v.iter().map(|x| x[k]).sum()).collect();
        median(&sums)
    };
    let summary = Summary {
        forward_mode: a.forward_mode,
        duration_s: secs,
        burst: a.burst,
        frame_size: a.txpkts,
        rx_pps: reps.iter().map(|r| r.rx_pps).sum(),
        tx_pps: reps.iter().map(|r| r.tx_pps).sum(),
        rx_pps_median: total_by_period(&mon.rx_pps),
        tx_pps_median: total_by_period(&mon.tx_pps),
        ports: reps,
        generated: counters
            .iter()
            .map(|c| c.generated.load(Ordering::Relaxed))
            .sum(),
        checked: sum_checked(counters.iter()),
        rx_vlans: VlanMap::from(&all_vlans),
        latency: LatencyReport::from(&lat),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print_text();
    }
    // A run whose port never had a peer measured nothing: say so, fail.
    let dead: Vec<String> = summary
        .ports
        .iter()
        .zip(&was_up)
        .filter(|(r, up)| !**up && !r.link_up && r.rx_packets == 0 && r.tx_packets == 0)
        .map(|(r, _)| format!("port {} ({})", r.port, r.spec))
        .collect();
    ports.close(&pool);
    if !dead.is_empty() {
        bail!(
            "{} never connected (is the peer listening on that socket?): nothing was measured",
            dead.join(", ")
        );
    }
    Ok(())
}

/// One burst of frames from every port but a vtep (sent before forwarding starts), so
/// a learning switch knows every port's MAC: untagged, and in each VLAN of
/// `--tx-vlan` (a VLAN-aware switch learns per VLAN; an access port takes
/// the untagged frames), cycling, with more bursts if one cannot hold them.
fn tx_first(
    ports: &Ports,
    modes: &[Mode],
    eth_peer: &[[u8; 6]],
    vlans: &[Option<u16>],
    burst: usize,
    pool: &Arc<pmd::Pool>,
    wait: Duration,
) {
    let mut tags = vec![None];
    for v in vlans {
        if !tags.contains(v) {
            tags.push(*v);
        }
    }
    let frames = burst.max(tags.len());
    let mut cache = pmd::PoolCache::new(Arc::clone(pool));
    for (i, p) in ports.list.iter().enumerate() {
        // A tunnel endpoint sends nothing of its own.
        if modes[i] == Mode::Vtep {
            continue;
        }
        let mut spec = FrameSpec::plain(frame::MIN_FRAME, p.mac, eth_peer[i]);
        spec.flows = tags.len() as u32;
        spec.vlans = tags.clone();
        if spec.tagged() {
            spec.size = frame::MIN_TAGGED_FRAME;
        }
        let mut g = frame::Generator::new(spec, 1, false);
        let mut sent = 0;
        while sent < frames {
            let mut b = pmd::Batch::with_limit(burst);
            while sent < frames && !b.is_full() {
                let Some(mut m) = cache.alloc() else { break };
                g.fill(&mut m, sent as u32, false, 0);
                // No magic: not counted as a generated frame by receivers.
                frame::unmark(m.data_mut());
                let _ = b.push(m);
                sent += 1;
            }
            if b.is_empty() {
                break;
            }
            p.port.tx_burst(0, &mut cache, &mut b);
        }
    }
    // A backend may start polling a while after the handshake (OVS: tens of
    // ms): wait until each has taken its burst, so a generator starting now
    // does not overrun a ring nobody reads yet.
    let t0 = Instant::now();
    while ports.list.iter().any(|p| p.port.tx_in_flight(0) > 0) && t0.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the frames cross before counters are taken as the baseline.
    std::thread::sleep(Duration::from_millis(100));
}

fn sum_checked<'a>(c: impl Iterator<Item = &'a Arc<StreamCounters>>) -> Checked {
    let mut t = Checked::default();
    for s in c {
        t.good += s.checked_good.load(Ordering::Relaxed);
        t.bad += s.checked_bad.load(Ordering::Relaxed);
        t.foreign += s.foreign.load(Ordering::Relaxed);
    }
    t
}

/// What a forwarding core hands back when it stops.
struct CoreTally {
    latency: Histogram,
    /// (receiving port, its frames by VLAN) of every stream of the core.
    rx_vlans: Vec<(usize, VlanCounts)>,
}

/// One forwarding core: run every stream's engine in turn until told to quit.
fn lcore(
    cpu: usize,
    mut work: Vec<(Stream, Box<dyn engine::Engine>)>,
    pool: Arc<pmd::Pool>,
    quit: Arc<AtomicBool>,
    interrupt: bool,
) -> CoreTally {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        eprintln!("ferrovs-testpmd: warning: cannot pin to CPU {cpu}");
    }
    let mut cache = pmd::PoolCache::new(pool);
    let mut waiter = interrupt
        .then(|| interrupt::RxWaiter::new(work.len()))
        .transpose()
        .unwrap_or_else(|e| {
            eprintln!("ferrovs-testpmd: warning: no epoll set ({e}); polling");
            None
        });
    // Idle sweeps before sleeping: ~64 queue polls' worth, at least one sweep.
    let sweeps_before_wait = (64 / work.len().max(1)).max(1) as u32;
    let mut idle = 0u32;
    let mut it = 0u32;
    loop {
        let mut busy = 0;
        for (i, (s, e)) in work.iter_mut().enumerate() {
            let n = e.burst(s, &mut cache);
            if n > 0 {
                if let Some(w) = &mut waiter {
                    w.received(i);
                }
            }
            busy += n;
        }
        it = it.wrapping_add(1);
        if it.is_multiple_of(1024) && quit.load(Ordering::Relaxed) {
            break;
        }
        if busy == 0 {
            idle += 1;
            if let Some(w) = waiter.as_mut().filter(|_| idle >= sweeps_before_wait) {
                w.wait(
                    work.iter().map(|(s, _)| (&s.rx, s.rxq)),
                    Duration::from_millis(50),
                );
                idle = 0;
                if quit.load(Ordering::Relaxed) {
                    break;
                }
            }
        } else {
            idle = 0;
        }
    }
    // Return what the streams still hold.
    let mut tally = CoreTally {
        latency: Histogram::default(),
        rx_vlans: Vec::with_capacity(work.len()),
    };
    for (mut s, _) in work {
        cache.free_batch(&mut s.batch);
        tally.latency.merge(&s.latency);
        tally.rx_vlans.push((s.rx_port, s.vlans));
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_vlans("10,untagged,0,4095").unwrap(),
            [Some(10), None, Some(0), Some(4095)]
        );
        assert_eq!(parse_vlans("untagged").unwrap(), [None]);
        for bad in ["4096", "-1", "", "10,", "ten", "10;20"] {
            assert!(parse_vlans(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_modes_override_the_forward_mode_per_port() {
        let m = port_modes(&["1,vtep".into(), "2, RXONLY".into()], Mode::Txonly, 3).unwrap();
        assert_eq!(m, [Mode::Txonly, Mode::Vtep, Mode::Rxonly]);
        assert_eq!(port_modes(&[], Mode::Io, 2).unwrap(), [Mode::Io, Mode::Io]);
        for bad in ["3,io", "1", "x,io", "1,bogus"] {
            assert!(port_modes(&[bad.into()], Mode::Io, 3).is_err(), "{bad}");
        }
    }

    #[test]
    fn variation_flags_parse_with_their_ranges() {
        let a = Args::try_parse_from([
            "t",
            "--port",
            "ring",
            "--tx-vlan=10,untagged",
            "--tx-vlan-pcp=7",
            "--tx-macs=4",
            "--tx-dst-ports=65536",
        ])
        .unwrap();
        assert_eq!(a.tx_vlan.as_deref(), Some("10,untagged"));
        assert_eq!((a.tx_vlan_pcp, a.tx_macs, a.tx_dst_ports), (7, 4, 65536));
        let d = Args::try_parse_from(["t", "--port", "ring"]).unwrap();
        assert_eq!((d.tx_vlan_pcp, d.tx_macs, d.tx_dst_ports), (0, 1, 1));
        for bad in ["--tx-vlan-pcp=8", "--tx-macs=0", "--tx-dst-ports=65537"] {
            assert!(
                Args::try_parse_from(["t", "--port", "ring", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
