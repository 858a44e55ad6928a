//! ferrovsd: the ferrovs switch daemon.

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switch::bridge::Bridge;
use switch::config::{data_room_for_mtu, parse_mode, Config, Hugepages, RxqAssignConfig};
use switch::control::ControlServer;
use switch::datapath::snapshot::RxqAssign;
use switch::datapath::Datapath;
use switch::fdb::Fdb;
use switch::state::{Loaded, StateFile};

#[derive(Parser, Debug)]
#[command(
    name = "ferrovsd",
    version,
    about = "ferrovs: a polling L2 virtual switch for vhost-user VMs"
)]
struct Args {
    /// TOML configuration; without it the embedded default (configs/default.toml) is used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory for the control socket (ferrovsd.sock) and relative port sockets.
    #[arg(long, default_value = "/run/ferrovs")]
    run_dir: PathBuf,
    /// PMD CPU list, e.g. "1" or "2-3"; overrides [pmd] cores.
    #[arg(long)]
    pmd_cores: Option<String>,
    /// CPUs of every other thread, e.g. "0"; overrides [control] cores
    /// (default: the CPUs ferrovsd may use minus the PMD cores).
    #[arg(long)]
    control_cores: Option<String>,
    /// Desired-state file (runtime port changes); default <run-dir>/ferrovsd.state.json.
    /// When it exists, its port list replaces the config file's.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Prometheus endpoint HOST:PORT (port 0: any free one) or "off";
    /// overrides [control] metrics-addr.
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
}

/// Blocks the termination signals in this thread and every thread it starts,
/// so that `wait_for_signal` can take them synchronously.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local, zeroed sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid signal set and `sig` a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROVS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", switch::config::DEFAULT_CONFIG);
        return Ok(());
    }
    match pmd::limits::raise_fd_limit() {
        Ok(n) => tracing::debug!("open file limit {n}"),
        Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
    }
    let sigs = block_signals();
    let cfg = Config::load(args.config.as_deref())?;
    let plan = switch::cores::plan(
        args.pmd_cores.as_deref().unwrap_or(&cfg.pmd.cores),
        args.control_cores.as_deref().unwrap_or(&cfg.control.cores),
        &switch::cores::allowed(),
        &switch::cores::online(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    // Every thread started from here on inherits this; PMDs pin themselves.
    if let Err(e) = switch::cores::pin_current_thread(&plan.control) {
        tracing::warn!(
            "cannot pin the control threads to CPU(s) {:?}: {e}",
            plan.control
        );
    }
    if plan.shared {
        tracing::warn!(
            "control threads share CPU(s) {} with PMDs (no other CPU allowed)",
            switch::cores::cpu_list(&plan.control)
        );
    }
    let cores = plan.pmd.clone();
    std::fs::create_dir_all(&args.run_dir)
        .with_context(|| format!("cannot create run directory {}", args.run_dir.display()))?;
    let run_dir = args.run_dir.canonicalize()?;

    let state = StateFile::new(
        args.state_file
            .clone()
            .unwrap_or_else(|| run_dir.join("ferrovsd.state.json")),
    );
    let (ports, flows) = match state.load() {
        Loaded::State(d) => {
            tracing::info!(
                "restoring {} port(s) and {} from {}",
                d.ports.len(),
                d.flows
                    .as_ref()
                    .map_or("the default rule".to_string(), |f| format!(
                        "{} rule(s)",
                        f.len()
                    )),
                state.path().display()
            );
            (d.ports, d.flows)
        }
        Loaded::Nothing => (cfg.ports.clone(), None),
    };
    let data_room = match cfg.memory.mbuf_data_room {
        0 => ports
            .iter()
            .map(|p| data_room_for_mtu(p.mtu()))
            .max()
            .unwrap_or(pmd::mbuf::DATA_ROOM),
        n => n as usize,
    };
    let pool = pmd::Pool::with_data_room(
        cfg.memory.n_mbufs,
        data_room,
        cfg.memory.hugepages == Hugepages::Auto,
    )
    .context("cannot allocate the packet buffer pool")?;
    let fdb = Arc::new(Fdb::new(
        cfg.bridge.mac_table_size as usize,
        cfg.bridge.mac_aging_time,
    ));
    let mut datapath = Datapath::start(
        &cores,
        fdb.clone(),
        pool.clone(),
        cfg.pmd.sleep_max,
        cfg.pmd.rxq_notify_after,
    )
    .context("cannot start PMD threads")?;
    datapath.control_cores = plan.control.clone();
    let policy = match cfg.pmd.rxq_assign {
        RxqAssignConfig::Roundrobin => RxqAssign::RoundRobin,
        RxqAssignConfig::Cycles => RxqAssign::Cycles,
    };
    let mut bridge = Bridge::new(
        cfg.bridge.name.clone(),
        run_dir.clone(),
        fdb.clone(),
        pool.clone(),
        datapath,
        Some(state),
        policy,
    )?;
    bridge.set_dpdk_eal_args(cfg.dpdk.eal_args.clone());
    bridge.set_auto_lb(switch::bridge::auto_lb::AutoLbConfig {
        enabled: cfg.pmd.auto_lb,
        load_threshold: cfg.pmd.auto_lb_load_threshold,
        improvement_threshold: cfg.pmd.auto_lb_improvement_threshold,
        interval: Duration::from_secs(cfg.pmd.auto_lb_rebal_interval as u64),
    });
    if flows.is_some() {
        bridge.hold_traffic();
    }
    bridge
        .add_ports(&ports)
        .map_err(|(name, e)| anyhow::anyhow!("port {name:?}: {e}"))?;
    if let Some(f) = &flows {
        let n = bridge.restore_flows(f);
        tracing::info!("{n} rule(s) restored");
    }
    let mode = parse_mode(&cfg.control.socket_mode).map_err(anyhow::Error::msg)?;
    let bridge = Arc::new(bridge);
    let mut control = ControlServer::start(&run_dir.join("ferrovsd.sock"), mode, bridge.clone())
        .context("cannot open the management socket")?;
    let of_cfg = cfg
        .openflow
        .agent(&run_dir, &cfg.bridge.name)
        .map_err(|(k, m)| anyhow::anyhow!("{k}: {m}"))?;
    let mut ofagent = switch::ofagent::OfAgent::start(of_cfg, bridge.clone())
        .context("cannot start the OpenFlow agent")?;
    bridge.set_openflow_status(ofagent.status.clone());

    let metrics_addr = args
        .metrics_addr
        .clone()
        .unwrap_or(cfg.control.metrics_addr.clone());
    // Observability must not stop forwarding: a busy port is logged, not fatal.
    let mut metrics = if metrics_addr == "off" {
        None
    } else {
        let b = bridge.clone();
        let exporter = switch::metrics::Exporter::default();
        match switch::metrics::MetricsServer::start(&metrics_addr, move || exporter.render(&b)) {
            Ok(m) => {
                tracing::info!("Prometheus metrics at http://{}/metrics", m.addr);
                bridge.set_metrics_addr(m.addr.to_string());
                Some(m)
            }
            Err(e) => {
                tracing::error!("cannot serve metrics on {metrics_addr}: {e}; continuing without");
                None
            }
        }
    };

    let stop = Arc::new(AtomicBool::new(false));
    let housekeeping = {
        let (bridge, stop) = (bridge.clone(), stop.clone());
        std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || {
                let mut next_expiry = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    bridge.fdb.age(bridge.fdb.now());
                    bridge.auto_lb_tick();
                    bridge.tunnel_tick();
                    if std::time::Instant::now() >= next_expiry {
                        bridge.expire_flows();
                        bridge.persist_if_pending();
                        next_expiry += Duration::from_secs(1);
                    }
                }
            })?
    };
    tracing::info!(
        run_dir = %run_dir.display(), pmd_cores = ?cores, pages = pool.page_kind().as_str(),
        "ferrovsd ready: bridge {} with {} port(s); control socket {}",
        cfg.bridge.name, ports.len(), run_dir.join("ferrovsd.sock").display()
    );

    let sig = wait_for_signal(&sigs);
    tracing::info!("signal {sig}: shutting down");
    control.stop();
    ofagent.stop();
    drop(ofagent);
    bridge.persist_if_pending();
    if let Some(m) = metrics.as_mut() {
        m.stop();
    }
    drop(metrics);
    stop.store(true, Ordering::Relaxed);
    let _ = housekeeping.join();
    match Arc::try_unwrap(bridge) {
        Ok(mut b) => b.shutdown(),
        Err(_) => tracing::warn!("bridge still referenced at shutdown"),
    }
    tracing::info!("stopped");
    Ok(())
}
