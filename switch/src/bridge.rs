//! The bridge as the control plane sees it: its ports by name, the port
//! numbers, and every change turned into a new datapath snapshot.

use crate::config::{parse_mac, validate_port_name, Mode, PortConfig, PortKind};
use crate::datapath::snapshot::{RxqAssign, Snapshot, SwitchPort};
use crate::datapath::Datapath;
use crate::fdb::Fdb;
use crate::state::StateFile;
use pmd::vhost::{SocketMode, VhostControl, VhostPort, VhostPortConfig};
use pmd::virtio::{VirtioPort, VirtioUserConfig};
use pmd::Pool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub struct Bridge {
    pub name: String,
    pub run_dir: PathBuf,
    pub fdb: Arc<Fdb>,
    pub pool: Arc<Pool>,
    pub datapath: Datapath,
    vhost: VhostControl,
    state: Mutex<State>,
    /// Where runtime changes are persisted (None: not persisted).
    state_file: Option<StateFile>,
    pub rxq_assign: RxqAssign,
    /// Where /metrics is served (for `show`), once the server runs.
    metrics_addr: Mutex<Option<String>>,
    /// DPDK EAL arguments, used when the first `dpdk` port is added.
    dpdk_eal_args: Mutex<String>,
}

struct State {
    ports: BTreeMap<String, (PortConfig, Arc<SwitchPort>)>,
    next_no: u16,
    generation: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("port {0:?} already exists")]
    Exists(String),
    #[error("no port named {0:?}")]
    NoSuchPort(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot open socket for port {name:?}: {source}")]
    Socket {
        name: String,
        source: std::io::Error,
    },
}

impl Bridge {
    pub fn new(
        name: String,
        run_dir: PathBuf,
        fdb: Arc<Fdb>,
        pool: Arc<Pool>,
        datapath: Datapath,
        state_file: Option<StateFile>,
        rxq_assign: RxqAssign,
    ) -> std::io::Result<Bridge> {
        Ok(Bridge {
            name,
            run_dir,
            fdb,
            pool,
            datapath,
            vhost: VhostControl::start()?,
            state: Mutex::new(State {
                ports: BTreeMap::new(),
                next_no: 1,
                generation: 0,
            }),
            state_file,
            rxq_assign,
            metrics_addr: Mutex::new(None),
            dpdk_eal_args: Mutex::new(String::new()),
        })
    }

    pub fn set_dpdk_eal_args(&self, a: String) {
        *self.dpdk_eal_args.lock().expect("poisoned") = a;
    }

    pub fn set_metrics_addr(&self, a: String) {
        *self.metrics_addr.lock().expect("poisoned") = Some(a);
    }

    pub fn metrics_addr(&self) -> Option<String> {
        self.metrics_addr.lock().expect("poisoned").clone()
    }

    /// Recomputes the rx queue placement (OVS dpif-netdev/pmd-rxq-rebalance).
    pub fn rebalance(&self) {
        let mut st = self.state.lock().expect("bridge state poisoned");
        self.republish(&mut st);
    }

    /// Records the current port list as the desired state (after a runtime change).
    fn persist(&self, st: &State) {
        let Some(f) = &self.state_file else { return };
        let mut ports: Vec<_> = st.ports.values().collect();
        ports.sort_by_key(|(_, sp)| sp.no);
        let configs: Vec<PortConfig> = ports.into_iter().map(|(c, _)| c.clone()).collect();
        if let Err(e) = f.save(&configs) {
            tracing::error!(
                "cannot write state file {}: {e}; runtime port changes will not survive a restart",
                f.path().display()
            );
        }
    }

    /// `add_port` for an operator's request: also persisted.
    pub fn add_port_persistent(&self, cfg: PortConfig) -> Result<u16, BridgeError> {
        let no = self.add_port(cfg)?;
        self.persist(&self.state.lock().expect("bridge state poisoned"));
        Ok(no)
    }

    /// `del_port` for an operator's request: also persisted.
    pub fn del_port_persistent(&self, name: &str) -> Result<(), BridgeError> {
        self.del_port(name)?;
        self.persist(&self.state.lock().expect("bridge state poisoned"));
        Ok(())
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.run_dir.join(p)
        }
    }

    pub fn add_port(&self, cfg: PortConfig) -> Result<u16, BridgeError> {
        validate_port_name(&cfg.name).map_err(BridgeError::Invalid)?;
        let mut st = self.state.lock().expect("bridge state poisoned");
        if st.ports.contains_key(&cfg.name) {
            return Err(BridgeError::Exists(cfg.name));
        }
        if cfg.kind == PortKind::Dpdk {
            return self.add_dpdk_port(&mut st, cfg);
        }
        if cfg.path.as_os_str().is_empty() {
            return Err(BridgeError::Invalid(
                "a vhost-user or virtio-user port needs a path".into(),
            ));
        }
        let path = self.resolve(&cfg.path);
        if path.as_os_str().len() >= 108 {
            return Err(BridgeError::Invalid(format!(
                "socket path {} is longer than 107 bytes",
                path.display()
            )));
        }
        if let Some((other, _)) = st
            .ports
            .iter()
            .find(|(_, (c, _))| self.resolve(&c.path) == path)
        {
            return Err(BridgeError::Invalid(format!(
                "socket {} is already used by port {other:?}",
                path.display()
            )));
        }
        if st.next_no == u16::MAX {
            return Err(BridgeError::Invalid(
                "port numbers exhausted; restart ferrovsd".into(),
            ));
        }
        let mtu = cfg.mtu();
        if crate::config::data_room_for_mtu(mtu) > self.pool.data_room() {
            return Err(BridgeError::Invalid(format!(
                "mtu_request {mtu} needs {}-byte packet buffers but the pool has {}; set memory.mbuf-data-room = 9216 and restart",
                crate::config::data_room_for_mtu(mtu),
                self.pool.data_room()
            )));
        }
        let no = st.next_no;
        let mac = match &cfg.mac {
            Some(m) => parse_mac(m).map_err(BridgeError::Invalid)?,
            None => [0x02, 0xfe, 0x00, 0x00, (no >> 8) as u8, no as u8],
        };
        let sp = match cfg.kind {
            PortKind::VhostUser => {
                let mode = match cfg.mode {
                    Mode::Server => SocketMode::Server,
                    Mode::Client => SocketMode::Client,
                };
                let vp = Arc::new(VhostPort::new(VhostPortConfig {
                    path,
                    mode,
                    queue_pairs: cfg.n_rxq.unwrap_or(1),
                    mac,
                    tx_retries_max: cfg.tx_retries_max,
                    mtu,
                }));
                self.vhost
                    .add(vp.clone())
                    .map_err(|source| BridgeError::Socket {
                        name: cfg.name.clone(),
                        source,
                    })?;
                let mut sp = SwitchPort::new(no, cfg.name.clone(), vp.clone(), Some(vp.clone()));
                if let Some(a) = &cfg.pmd_rxq_affinity {
                    match crate::config::parse_affinity(a) {
                        Ok(pins) => {
                            for (q, core) in pins {
                                if let Some(slot) = sp.rxq_affinity.get_mut(q as usize) {
                                    *slot = Some(core);
                                }
                            }
                        }
                        Err(e) => {
                            self.vhost.remove(&vp);
                            return Err(BridgeError::Invalid(format!("pmd-rxq-affinity: {e}")));
                        }
                    }
                }
                Arc::new(sp)
            }
            PortKind::VirtioUser => {
                if cfg.mode == Mode::Client || cfg.pmd_rxq_affinity.is_some() {
                    return Err(BridgeError::Invalid(
                        "virtio-user ports always connect to their backend: no mode or pmd-rxq-affinity".into(),
                    ));
                }
                let mut vc = VirtioUserConfig::new(path);
                vc.mac = mac;
                vc.queue_pairs = cfg.n_rxq.unwrap_or(1);
                vc.tx_retries_max = cfg.tx_retries_max;
                // Our buffers are the backend's view of memory: share the
                // switch's one pool so frames cross without a copy.
                let vp =
                    VirtioPort::start(vc, Arc::clone(&self.pool)).map_err(BridgeError::Invalid)?;
                Arc::new(SwitchPort::new(no, cfg.name.clone(), vp, None))
            }
            PortKind::Dpdk => unreachable!("dpdk ports are added by add_dpdk_port"),
        };
        st.next_no += 1;
        tracing::info!(port = %cfg.name, no, "port added");
        st.ports.insert(cfg.name.clone(), (cfg, sp));
        self.republish(&mut st);
        Ok(no)
    }

    /// A NIC or vdev through DPDK; the EAL starts with the first one.
    #[cfg(feature = "dpdk")]
    fn add_dpdk_port(&self, st: &mut State, cfg: PortConfig) -> Result<u16, BridgeError> {
        use pmd::dpdk::{eal_init, DpdkPort, DpdkPortConfig};
        let devargs = cfg
            .devargs
            .clone()
            .filter(|d| !d.trim().is_empty())
            .ok_or_else(|| BridgeError::Invalid("a dpdk port needs devargs".into()))?;
        if let Some((other, _)) = st
            .ports
            .iter()
            .find(|(_, (c, _))| c.devargs.as_deref() == Some(devargs.as_str()))
        {
            return Err(BridgeError::Invalid(format!(
                "devargs {devargs:?} are already used by port {other:?}"
            )));
        }
        let mut eal: Vec<String> = vec!["ferrovsd".into()];
        eal.extend(
            self.dpdk_eal_args
                .lock()
                .expect("poisoned")
                .split_whitespace()
                .map(String::from),
        );
        eal.extend([
            "--file-prefix".into(),
            dpdk_file_prefix(),
            "--no-shconf".into(),
        ]);
        eal_init(&eal).map_err(BridgeError::Invalid)?;
        let mut dc = DpdkPortConfig::new(devargs);
        dc.n_rxq = cfg.n_rxq.unwrap_or(1);
        dc.n_txq = self.datapath.cores().len().max(1) as u16;
        dc.mtu = cfg.mtu() as u16;
        if let Some(n) = cfg.n_rxq_desc {
            dc.rx_desc = n;
        }
        if let Some(n) = cfg.n_txq_desc {
            dc.tx_desc = n;
        }
        let port = DpdkPort::open(dc).map_err(BridgeError::Invalid)?;
        let no = st.next_no;
        let sp = Arc::new(SwitchPort::new(no, cfg.name.clone(), Arc::new(port), None));
        st.next_no += 1;
        tracing::info!(port = %cfg.name, no, "dpdk port added");
        st.ports.insert(cfg.name.clone(), (cfg, sp));
        self.republish(st);
        Ok(no)
    }

    #[cfg(not(feature = "dpdk"))]
    #[allow(clippy::unused_self)]
    fn add_dpdk_port(&self, _st: &mut State, _cfg: PortConfig) -> Result<u16, BridgeError> {
        Err(BridgeError::Invalid(
            "this ferrovsd was built without DPDK support (cargo feature `dpdk`)".into(),
        ))
    }

    pub fn del_port(&self, name: &str) -> Result<(), BridgeError> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let (_, sp) = st
            .ports
            .remove(name)
            .ok_or_else(|| BridgeError::NoSuchPort(name.into()))?;
        // After this returns no PMD polls or sends to the port any more.
        self.republish(&mut st);
        if let Some(vp) = &sp.vhost {
            self.vhost.remove(vp);
        }
        sp.port.shutdown();
        self.fdb.flush_port(sp.no);
        tracing::info!(port = %name, "port removed");
        Ok(())
    }

    fn republish(&self, st: &mut State) {
        st.generation += 1;
        let ports = st.ports.values().map(|(_, sp)| sp.clone()).collect();
        let cores = self.datapath.cores();
        self.datapath.publish(Snapshot::build(
            st.generation,
            ports,
            &cores,
            self.rxq_assign,
        ));
    }

    pub fn ports(&self) -> Vec<(PortConfig, Arc<SwitchPort>)> {
        let st = self.state.lock().expect("bridge state poisoned");
        let mut v: Vec<_> = st.ports.values().cloned().collect();
        v.sort_by_key(|(_, sp)| sp.no);
        v
    }

    pub fn port_name(&self, no: u16) -> Option<String> {
        let st = self.state.lock().expect("bridge state poisoned");
        st.ports
            .values()
            .find(|(_, sp)| sp.no == no)
            .map(|(_, sp)| sp.name.clone())
    }

    /// Removes every port (shutdown): closes connections and unlinks sockets.
    pub fn shutdown(&mut self) {
        let names: Vec<String> = self
            .state
            .lock()
            .expect("bridge state poisoned")
            .ports
            .keys()
            .cloned()
            .collect();
        for n in names {
            let _ = self.del_port(&n);
        }
        self.datapath.stop();
        self.vhost.stop();
        #[cfg(feature = "dpdk")]
        pmd::dpdk::eal_cleanup(&dpdk_file_prefix());
    }
}

/// The EAL's file prefix: one per daemon, so several can run side by side.
#[cfg(feature = "dpdk")]
fn dpdk_file_prefix() -> String {
    format!("ferrovsd{}", std::process::id())
}
