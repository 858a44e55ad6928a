//! One opener per driver: what each port type takes from its config to
//! become a `dyn Port`, and what it claims (a socket, a device) so that no
//! second port can take the same. The rest of the bridge never names a
//! driver type.

use super::BridgeError;
use crate::config::{Mode, PortConfig, PortKind};
use crate::tunnel::{Neighbour, Tunnel, VxlanOptions};
use pmd::vhost::{SocketMode, VhostControl, VhostPort, VhostPortConfig};
use pmd::virtio::{VirtioPort, VirtioUserConfig};
use pmd::{Pool, Port};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the openers need from the bridge.
pub(super) struct Env<'a> {
    pub run_dir: &'a Path,
    pub pool: &'a Arc<Pool>,
    pub vhost: &'a VhostControl,
    /// `dpdk` ports read these (one tx queue per PMD; the EAL's
    /// arguments); a tunnel counts per PMD.
    pub n_pmds: usize,
    #[cfg_attr(not(feature = "dpdk"), allow(dead_code))]
    pub dpdk_eal_args: &'a str,
    /// A `vxlan` port's underlay, as the bridge has it (config, driver),
    /// and the ARP entries its other tunnels already have.
    pub underlay: Option<(&'a PortConfig, &'a Arc<dyn Port>)>,
    pub neighbours: Vec<Arc<Neighbour>>,
}

pub(super) struct Opened {
    pub port: Arc<dyn Port>,
    /// A vhost-user port stays registered with the vhost control thread
    /// until it is removed ([`close`]).
    pub vhost: Option<Arc<VhostPort>>,
    /// A `vxlan` port: the tunnel the datapath encapsulates for.
    pub tunnel: Option<Arc<Tunnel>>,
}

/// A socket path relative to the run directory, or absolute.
pub(super) fn resolve(run_dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        run_dir.join(p)
    }
}

/// The resource the port would own, as a person reads it
/// (`socket /run/ferrovs/vm1.sock`, `devargs "net_tap0"`).
pub(super) fn claim(cfg: &PortConfig, run_dir: &Path) -> Result<String, BridgeError> {
    match cfg.kind {
        PortKind::Vxlan => {
            let o = vxlan_options(cfg)?;
            Ok(format!(
                "VNI {} on UDP port {} of underlay {}",
                o.vni, o.dst_port, o.underlay
            ))
        }
        PortKind::Dpdk => cfg
            .devargs
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| format!("devargs {d:?}"))
            .ok_or_else(|| BridgeError::Invalid("a dpdk port needs devargs".into())),
        PortKind::VhostUser | PortKind::VirtioUser => {
            if cfg.path.as_os_str().is_empty() {
                return Err(BridgeError::Invalid(
                    "a vhost-user or virtio-user port needs a path".into(),
                ));
            }
            let path = resolve(run_dir, &cfg.path);
            if path.as_os_str().len() >= 108 {
                return Err(BridgeError::Invalid(format!(
                    "socket path {} is longer than 107 bytes",
                    path.display()
                )));
            }
            Ok(format!("socket {}", path.display()))
        }
    }
}

pub(super) fn open(cfg: &PortConfig, mac: [u8; 6], env: &Env) -> Result<Opened, BridgeError> {
    match cfg.kind {
        PortKind::VhostUser => open_vhost_user(cfg, mac, env),
        PortKind::VirtioUser => open_virtio_user(cfg, mac, env),
        PortKind::Dpdk => open_dpdk(cfg, env),
        PortKind::Vxlan => open_vxlan(cfg, env),
    }
}

fn vxlan_options(cfg: &PortConfig) -> Result<VxlanOptions, BridgeError> {
    match cfg.vxlan() {
        Some(r) => r.map_err(BridgeError::Invalid),
        None => Err(BridgeError::Invalid(format!(
            "port {} is not a vxlan port",
            cfg.name
        ))),
    }
}

/// A tunnel through an existing `dpdk` port, sending from that port's MAC.
fn open_vxlan(cfg: &PortConfig, env: &Env) -> Result<Opened, BridgeError> {
    let opts = vxlan_options(cfg)?;
    let Some((ucfg, uport)) = env.underlay else {
        return Err(BridgeError::Invalid(format!(
            "underlay: no port {:?} (add the dpdk port first)",
            opts.underlay
        )));
    };
    if ucfg.kind != PortKind::Dpdk {
        return Err(BridgeError::Invalid(format!(
            "underlay: {:?} is a {} port; tunnels go through a dpdk port",
            opts.underlay,
            uport.kind()
        )));
    }
    let mac = uport.mac().ok_or_else(|| {
        BridgeError::Invalid(format!("underlay: {:?} has no MAC address", opts.underlay))
    })?;
    let known = &env.neighbours;
    let tunnel = Arc::new(Tunnel::new(opts, mac, ucfg.mtu(), env.n_pmds, |ip| {
        known
            .iter()
            .find(|n| n.ip == ip)
            .cloned()
            .unwrap_or_else(|| Arc::new(Neighbour::new(ip)))
    }));
    Ok(Opened {
        port: tunnel.clone(),
        vhost: None,
        tunnel: Some(tunnel),
    })
}

/// Undoes `open` for a port the bridge no longer has (PMDs are past it).
pub(super) fn close(o: &Opened, env: &Env) {
    if let Some(vp) = &o.vhost {
        env.vhost.remove(vp);
    }
    o.port.shutdown();
}

fn open_vhost_user(cfg: &PortConfig, mac: [u8; 6], env: &Env) -> Result<Opened, BridgeError> {
    let mode = match cfg.mode {
        Mode::Server => SocketMode::Server,
        Mode::Client => SocketMode::Client,
    };
    let vp = Arc::new(VhostPort::new(VhostPortConfig {
        path: resolve(env.run_dir, &cfg.path),
        mode,
        queue_pairs: cfg.n_rxq.unwrap_or(1),
        mac,
        tx_retries_max: cfg.tx_retries_max,
        mtu: cfg.mtu(),
        offloads: cfg.offloads.unwrap_or(true),
    }));
    env.vhost
        .add(vp.clone())
        .map_err(|source| BridgeError::Socket {
            name: cfg.name.clone(),
            source,
        })?;
    Ok(Opened {
        port: vp.clone(),
        vhost: Some(vp),
        tunnel: None,
    })
}

fn open_virtio_user(cfg: &PortConfig, mac: [u8; 6], env: &Env) -> Result<Opened, BridgeError> {
    if cfg.mode == Mode::Client || cfg.pmd_rxq_affinity.is_some() {
        return Err(BridgeError::Invalid(
            "virtio-user ports always connect to their backend: no mode or pmd-rxq-affinity".into(),
        ));
    }
    let mut vc = VirtioUserConfig::new(resolve(env.run_dir, &cfg.path));
    vc.mac = mac;
    vc.queue_pairs = cfg.n_rxq.unwrap_or(1);
    vc.tx_retries_max = cfg.tx_retries_max;
    // Our buffers are the backend's view of memory: share the switch's one
    // pool so frames cross without a copy.
    let port = VirtioPort::start(vc, Arc::clone(env.pool)).map_err(BridgeError::Invalid)?;
    Ok(Opened {
        port,
        vhost: None,
        tunnel: None,
    })
}

/// A NIC or vdev through DPDK; the EAL starts with the first one.
#[cfg(feature = "dpdk")]
fn open_dpdk(cfg: &PortConfig, env: &Env) -> Result<Opened, BridgeError> {
    use pmd::dpdk::{eal_init, DpdkPort, DpdkPortConfig};
    let mut eal: Vec<String> = vec!["ferrovsd".into()];
    eal.extend(env.dpdk_eal_args.split_whitespace().map(String::from));
    eal.extend([
        "--file-prefix".into(),
        dpdk_file_prefix(),
        "--no-shconf".into(),
    ]);
    eal_init(&eal).map_err(BridgeError::Invalid)?;
    let mut dc = DpdkPortConfig::new(cfg.devargs.clone().unwrap_or_default());
    dc.n_rxq = cfg.n_rxq.unwrap_or(1);
    dc.n_txq = env.n_pmds.max(1) as u16;
    dc.mtu = cfg.mtu() as u16;
    if let Some(n) = cfg.n_rxq_desc {
        dc.rx_desc = n;
    }
    if let Some(n) = cfg.n_txq_desc {
        dc.tx_desc = n;
    }
    let port = DpdkPort::open(dc).map_err(BridgeError::Invalid)?;
    Ok(Opened {
        port: Arc::new(port),
        vhost: None,
        tunnel: None,
    })
}

#[cfg(not(feature = "dpdk"))]
fn open_dpdk(_cfg: &PortConfig, _env: &Env) -> Result<Opened, BridgeError> {
    Err(BridgeError::Invalid(
        "this ferrovsd was built without DPDK support (cargo feature `dpdk`)".into(),
    ))
}

/// The EAL's file prefix: one per daemon, so several can run side by side.
#[cfg(feature = "dpdk")]
pub(super) fn dpdk_file_prefix() -> String {
    format!("ferrovsd{}", std::process::id())
}
