//! The bridge as the control plane sees it: its ports by name, the port
//! numbers, its rules, and every change turned into a new datapath snapshot.
//! Opening a port is its driver's business ([`drivers`]).

pub mod auto_lb;
mod drivers;
pub mod flow_mods;
mod port_mods;
mod tunnels;

use crate::config::{parse_mac, validate_port_name, PortConfig};
use crate::datapath::port_admin::PortAdmin;
use crate::datapath::snapshot::{RxqAssign, Snapshot, SwitchPort};
use crate::datapath::Datapath;
use crate::fdb::Fdb;
use crate::flow::classifier::Classifier;
use crate::flow::syntax::{self, PortNames};
use crate::flow::table::FlowTable;
use crate::state::{Desired, StateFile};
use ferrovs_proto::FlowEntry;
use pmd::vhost::VhostControl;
use pmd::Pool;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
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
    dpdk_eal_args: String,
    /// Timed-out rules whose removal a controller asked to hear of.
    expired: Mutex<Vec<(crate::flow::table::Removed, bool)>>,
    /// The OpenFlow agent's state, for `show` (once it runs).
    openflow: Mutex<Option<Arc<Mutex<crate::ofagent::AgentStatus>>>>,
    /// Rx queue loads and pmd-auto-lb.
    auto_lb: Mutex<auto_lb::Sampler>,
}

struct State {
    ports: BTreeMap<String, (PortConfig, Arc<SwitchPort>)>,
    /// What each driver opened, to close it on removal (the datapath
    /// sees only `dyn Port`).
    opened: BTreeMap<String, drivers::Opened>,
    next_no: u16,
    flows: FlowTable,
    /// `flows` compiled (recompiled on every rule change, not per port change).
    compiled: Arc<Classifier>,
    /// Someone changed the rules: persist them (else the default stays implicit).
    flows_changed: bool,
    /// A controller changed rules the state file does not hold yet.
    persist_pending: bool,
    /// fail-mode standalone without a controller: forward as a learning
    /// switch whatever the rules say (they stay, for when it returns).
    fail_open: bool,
    /// The table changed (a controller's FLOW_MODs) and is not compiled into
    /// the running snapshot yet: `sync_rules` does it.
    rules_dirty: bool,
    /// PORT_MOD settings by port number (absent: all on); not persisted.
    admin: HashMap<u16, PortAdmin>,
}

impl PortNames for State {
    fn number(&self, name: &str) -> Option<u16> {
        self.ports.get(name).map(|(_, sp)| sp.no)
    }
    fn name(&self, no: u16) -> Option<String> {
        self.ports
            .values()
            .find(|(_, sp)| sp.no == no)
            .map(|(_, sp)| sp.name.clone())
    }
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
        let n_pmds = datapath.n_pmds();
        Ok(Bridge {
            name,
            run_dir,
            fdb,
            datapath,
            vhost: VhostControl::start()?,
            state: Mutex::new({
                let flows = FlowTable::new(n_pmds);
                State {
                    ports: BTreeMap::new(),
                    opened: BTreeMap::new(),
                    next_no: 1,
                    compiled: Arc::new(flows.compile()),
                    flows,
                    flows_changed: false,
                    persist_pending: false,
                    fail_open: false,
                    rules_dirty: false,
                    admin: HashMap::new(),
                }
            }),
            state_file,
            rxq_assign,
            metrics_addr: Mutex::new(None),
            dpdk_eal_args: String::new(),
            expired: Mutex::new(Vec::new()),
            openflow: Mutex::new(None),
            auto_lb: Mutex::new(auto_lb::Sampler::default()),
            pool,
        })
    }

    pub fn set_dpdk_eal_args(&mut self, a: String) {
        self.dpdk_eal_args = a;
    }

    pub fn set_metrics_addr(&self, a: String) {
        *self.metrics_addr.lock().expect("poisoned") = Some(a);
    }

    pub fn metrics_addr(&self) -> Option<String> {
        self.metrics_addr.lock().expect("poisoned").clone()
    }

    pub fn set_auto_lb(&self, cfg: auto_lb::AutoLbConfig) {
        *self.auto_lb.lock().expect("poisoned") = auto_lb::Sampler::new(cfg);
    }

    /// Measures rx queue loads once per interval and, with pmd-auto-lb on,
    /// moves queues when that pays (housekeeping calls it often).
    pub fn auto_lb_tick(&self) {
        let move_queues = self
            .auto_lb
            .lock()
            .expect("poisoned")
            .tick(self, std::time::Instant::now());
        if move_queues {
            self.rebalance();
        }
    }

    /// pmd-auto-lb's settings and last finding, and the cycles of the last
    /// measured interval (0: none yet).
    pub fn auto_lb_status(&self) -> (ferrovs_proto::AutoLbStatus, u64) {
        let s = self.auto_lb.lock().expect("poisoned");
        (s.status.clone(), s.window_cycles)
    }

    /// Recomputes the rx queue placement (OVS dpif-netdev/pmd-rxq-rebalance).
    pub fn rebalance(&self) {
        let mut st = self.state.lock().expect("bridge state poisoned");
        self.republish(&mut st);
    }

    /// Records the current ports and rules as the desired state (after a runtime change).
    fn persist(&self, st: &State) {
        let Some(f) = &self.state_file else { return };
        let mut ports: Vec<_> = st.ports.values().collect();
        ports.sort_by_key(|(_, sp)| sp.no);
        let desired = Desired {
            ports: ports.into_iter().map(|(c, _)| c.clone()).collect(),
            flows: st.flows_changed.then(|| {
                st.flows
                    .rules()
                    .map(|r| syntax::format_rule(r, st))
                    .collect()
            }),
        };
        if let Err(e) = f.save(&desired) {
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

    fn driver_env(&self) -> drivers::Env<'_> {
        drivers::Env {
            run_dir: &self.run_dir,
            pool: &self.pool,
            vhost: &self.vhost,
            n_pmds: self.datapath.n_pmds(),
            dpdk_eal_args: &self.dpdk_eal_args,
            underlay: None,
            neighbours: Vec::new(),
        }
    }

    pub fn add_port(&self, cfg: PortConfig) -> Result<u16, BridgeError> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let no = self.insert_port(&mut st, cfg)?;
        self.republish(&mut st);
        tunnels::forget_underlay_macs(&st, &self.fdb);
        Ok(no)
    }

    /// Adds the ports of a config or state file with one snapshot for all
    /// (a thousand ports at start-up: one publish, not a thousand). On an
    /// error, the ports before it stay.
    pub fn add_ports(&self, cfgs: &[PortConfig]) -> Result<(), (String, BridgeError)> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let mut result = Ok(());
        for c in cfgs {
            if let Err(e) = self.insert_port(&mut st, c.clone()) {
                result = Err((c.name.clone(), e));
                break;
            }
        }
        self.republish(&mut st);
        tunnels::forget_underlay_macs(&st, &self.fdb);
        result
    }

    /// Opens a port and records it; the caller publishes.
    fn insert_port(&self, st: &mut State, cfg: PortConfig) -> Result<u16, BridgeError> {
        validate_port_name(&cfg.name).map_err(BridgeError::Invalid)?;
        cfg.check_runtime_options().map_err(BridgeError::Invalid)?;
        let pins = match &cfg.pmd_rxq_affinity {
            Some(a) => crate::config::parse_affinity(a)
                .map_err(|e| BridgeError::Invalid(format!("pmd-rxq-affinity: {e}")))?,
            None => Vec::new(),
        };
        if st.ports.contains_key(&cfg.name) {
            return Err(BridgeError::Exists(cfg.name));
        }
        let claim = drivers::claim(&cfg, &self.run_dir)?;
        if let Some((other, _)) = st
            .ports
            .iter()
            .find(|(_, (c, _))| drivers::claim(c, &self.run_dir).ok().as_ref() == Some(&claim))
        {
            return Err(BridgeError::Invalid(format!(
                "{claim} is already used by port {other:?}"
            )));
        }
        // Above 0xfeff OpenFlow's reserved numbers begin (IN_PORT, CONTROLLER ...).
        if st.next_no > 0xfeff {
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
        let mut env = self.driver_env();
        if let Some(u) = &cfg.underlay {
            tunnels::check_underlay(st, &cfg)?;
            env.underlay = st.ports.get(u).map(|(c, sp)| (c, &sp.port));
            env.neighbours = tunnels::neighbours(st, u);
        }
        let opened = drivers::open(&cfg, mac, &env)?;
        let mut sp = SwitchPort::new(no, cfg.name.clone(), opened.port.clone());
        for (q, core) in pins {
            if let Some(slot) = sp.rxq_affinity.get_mut(q as usize) {
                *slot = Some(core);
            }
        }
        st.next_no += 1;
        tracing::info!(port = %cfg.name, no, kind = opened.port.kind(), "port added");
        st.opened.insert(cfg.name.clone(), opened);
        self.fdb.set_port_limit(no, cfg.mac_limit.unwrap_or(0));
        let name = cfg.name.clone();
        st.ports.insert(cfg.name.clone(), (cfg, Arc::new(sp)));
        tunnels::warn_overlay_mtu(st, &name);
        Ok(no)
    }

    pub fn del_port(&self, name: &str) -> Result<(), BridgeError> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        tunnels::check_not_underlay(&st, name)?;
        let (_, sp) = st
            .ports
            .remove(name)
            .ok_or_else(|| BridgeError::NoSuchPort(name.into()))?;
        st.admin.remove(&sp.no);
        // After this returns no PMD polls or sends to the port any more.
        self.republish(&mut st);
        if let Some(o) = st.opened.remove(name) {
            drivers::close(&o, &self.driver_env());
        }
        self.fdb.flush_port(sp.no);
        self.fdb.set_port_limit(sp.no, 0);
        tracing::info!(port = %name, "port removed");
        Ok(())
    }

    fn republish(&self, st: &mut State) {
        let ports = st.ports.values().map(|(_, sp)| sp.clone()).collect();
        // Every stored config passed `check_runtime_options()` when it was stored.
        let vlans = st
            .ports
            .values()
            .filter_map(|(c, sp)| Some((sp.no, c.vlan().ok()?)))
            .collect();
        let cores = self.datapath.cores();
        let flows = if st.fail_open {
            Arc::new(FlowTable::new(self.datapath.n_pmds()).compile())
        } else {
            st.compiled.clone()
        };
        self.datapath.publish(
            Snapshot::build(ports, &cores, self.rxq_assign)
                .with_flows(flows)
                .with_vlans(&vlans)
                .with_admin(&st.admin)
                .with_tunnels(&tunnels::refs(st)),
        );
    }

    /// Changes a port's options at runtime (`set-port`); only options that
    /// need no reopening of the port (its VLAN options). Persisted.
    pub fn set_port(
        &self,
        name: &str,
        change: impl FnOnce(&mut PortConfig) -> Result<(), String>,
    ) -> Result<PortConfig, BridgeError> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let (cfg, sp) = st
            .ports
            .get(name)
            .cloned()
            .ok_or_else(|| BridgeError::NoSuchPort(name.into()))?;
        let mut new = cfg.clone();
        change(&mut new).map_err(BridgeError::Invalid)?;
        new.check_runtime_options().map_err(BridgeError::Invalid)?;
        let no = sp.no;
        self.fdb.set_port_limit(no, new.mac_limit.unwrap_or(0));
        st.ports.insert(name.into(), (new.clone(), sp));
        self.republish(&mut st);
        // What was learned under the old VLAN options must not steer frames (OVS flushes too).
        self.fdb.flush_port(no);
        self.persist(&st);
        Ok(new)
    }

    /// Applies a rule change (`f` says how many rules it changed) and, when
    /// it changed any, publishes the recompiled table and persists it.
    fn change_flows(
        &self,
        f: impl FnOnce(&mut State) -> Result<usize, String>,
    ) -> Result<usize, String> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let n = f(&mut st)?;
        if n > 0 {
            st.compiled = Arc::new(st.flows.compile());
            st.rules_dirty = false;
            st.flows_changed = true;
            self.republish(&mut st);
            self.persist(&st);
        }
        Ok(n)
    }

    /// `add-flow`/`add-flows`: every line is parsed before any is added, so a
    /// file with one bad line changes nothing. `(line number, text)`; an error
    /// names the line when its number is not 0.
    pub fn add_flows(&self, lines: &[(usize, String)]) -> Result<usize, String> {
        self.change_flows(|st| {
            let mut rules = Vec::with_capacity(lines.len());
            for (n, l) in lines {
                let r = syntax::parse_rule(l, &*st).map_err(|e| match n {
                    0 => e,
                    n => format!("line {n}: {e}"),
                })?;
                rules.push(r);
            }
            let n = rules.len();
            st.flows.add_all(rules)?;
            Ok(n)
        })
    }

    /// `mod-flows`: new actions for the rules the line selects.
    pub fn mod_flows(&self, line: &str, strict: bool) -> Result<usize, String> {
        self.change_flows(|st| {
            let (filter, change) = syntax::parse_filter(line, &*st, true)?;
            let actions = change
                .actions
                .ok_or("actions: mod-flows needs the new actions=...")?;
            st.flows
                .modify(&filter, &actions, change.new_cookie, strict)
        })
    }

    /// `del-flows`: removes what the line selects (everything for "").
    pub fn del_flows(&self, line: &str, strict: bool) -> Result<usize, String> {
        self.change_flows(|st| {
            let (filter, change) = syntax::parse_filter(line, &*st, false)?;
            if change.actions.is_some() {
                return Err("actions: not allowed in del-flows".into());
            }
            Ok(st.flows.delete(&filter, strict).len())
        })
    }

    /// Until `restore_flows`, forward nothing: at start the persisted rules
    /// (ACLs) need the ports to exist, and ports must not forward by the
    /// default rule meanwhile. Not persisted.
    pub fn hold_traffic(&self) {
        let mut st = self.state.lock().expect("bridge state poisoned");
        st.compiled = Arc::new(FlowTable::empty(1).compile());
        self.republish(&mut st);
    }

    /// Replaces every rule (state restore at start). A line that no longer
    /// parses (a port that is gone) is logged and left out, never fatal:
    /// the rest of the rules still protect the ports.
    pub fn restore_flows(&self, lines: &[String]) -> usize {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let mut table = FlowTable::empty(self.datapath.n_pmds());
        for (i, l) in lines.iter().enumerate() {
            match syntax::parse_rule(l, &*st).and_then(|r| table.add(r)) {
                Ok(()) => {}
                Err(e) => tracing::error!("state file rule {} ({l:?}) left out: {e}", i + 1),
            }
        }
        st.flows = table;
        st.compiled = Arc::new(st.flows.compile());
        st.rules_dirty = false;
        st.flows_changed = true;
        self.republish(&mut st);
        st.flows.len()
    }

    /// `dump-flows`: the rules the line selects, in table and priority order.
    pub fn dump_flows(&self, line: &str) -> Result<Vec<FlowEntry>, String> {
        let st = self.state.lock().expect("bridge state poisoned");
        let (filter, change) = syntax::parse_filter(line, &*st, false)?;
        if change.actions.is_some() {
            return Err("actions: not allowed in dump-flows".into());
        }
        let now = std::time::Instant::now();
        let mut v: Vec<FlowEntry> = st
            .flows
            .select(&filter)
            .map(|e| {
                let (n_packets, n_bytes) = e.stats.total();
                FlowEntry {
                    table: e.rule.table,
                    priority: e.rule.priority,
                    cookie: e.rule.cookie,
                    duration_secs: now.saturating_duration_since(e.created).as_secs_f64(),
                    idle_timeout: e.rule.idle_timeout,
                    hard_timeout: e.rule.hard_timeout,
                    idle_age_secs: e.idle_secs(now),
                    n_packets,
                    n_bytes,
                    matches: syntax::format_match(&e.rule.m, &*st),
                    actions: syntax::format_actions(&e.rule.actions, &*st),
                }
            })
            .collect();
        v.sort_by(|a, b| a.table.cmp(&b.table).then(b.priority.cmp(&a.priority)));
        Ok(v)
    }

    /// Rules in the bridge now.
    pub fn n_flows(&self) -> usize {
        self.state
            .lock()
            .expect("bridge state poisoned")
            .flows
            .len()
    }

    /// Removes rules past their timeouts (housekeeping, once a second).
    pub fn expire_flows(&self) {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let gone = st.flows.expire(std::time::Instant::now());
        if gone.is_empty() {
            return;
        }
        {
            let mut ex = self.expired.lock().expect("expired list poisoned");
            // Bounded: nobody may be reading them.
            if ex.len() < 65536 {
                ex.extend(gone.iter().filter(|(r, _)| r.notify).cloned());
            }
        }
        tracing::debug!("{} rule(s) timed out", gone.len());
        st.compiled = Arc::new(st.flows.compile());
        st.rules_dirty = false;
        st.flows_changed = true;
        self.republish(&mut st);
        self.persist(&st);
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
        // Newest first: a tunnel goes before the underlay it was added after.
        let names: Vec<String> = self
            .ports()
            .into_iter()
            .rev()
            .map(|(_, sp)| sp.name.clone())
            .collect();
        for n in names {
            let _ = self.del_port(&n);
        }
        self.datapath.stop();
        self.vhost.stop();
        #[cfg(feature = "dpdk")]
        pmd::dpdk::eal_cleanup(&drivers::dpdk_file_prefix());
    }
}
