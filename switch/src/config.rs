//! ferrovsd's TOML configuration. Key names follow OVS where an OVS operator
//! would look for them (`pmd-cores` ~ pmd-cpu-mask, `pmd-sleep-max`,
//! `mac-aging-time`, `mac-table-size`, `vhost-server-path`). Unknown keys and
//! bad values are errors that name the key.

use crate::flow::vlan::{PortVlan, VlanMode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The embedded default (also `configs/default.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../../configs/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub bridge: BridgeConfig,
    #[serde(default)]
    pub pmd: PmdConfig,
    #[serde(default)]
    pub memory: MemoryConfig,
    #[serde(default)]
    pub control: ControlConfig,
    #[serde(default)]
    pub dpdk: DpdkConfig,
    #[serde(default)]
    pub openflow: OpenflowConfig,
    #[serde(default, rename = "port")]
    pub ports: Vec<PortConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct BridgeConfig {
    pub name: String,
    /// Seconds a learned MAC stays without being seen (OVS: mac-aging-time).
    pub mac_aging_time: u32,
    /// Maximum learned MACs (OVS: mac-table-size).
    pub mac_table_size: u32,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            name: "br0".into(),
            mac_aging_time: 300,
            mac_table_size: 8192,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct PmdConfig {
    /// CPU list ("1", "2-3,6") or "auto": one PMD on the highest allowed CPU.
    pub cores: String,
    /// Longest idle sleep in microseconds (OVS: pmd-sleep-max); 0 = always poll.
    pub sleep_max: u32,
    /// An rx queue silent this many microseconds leaves the poll list and
    /// waits for its peer's notification (hybrid polling); 0 = poll every
    /// queue always.
    pub rxq_notify_after: u32,
    /// How rx queues are spread over PMDs (OVS: pmd-rxq-assign).
    pub rxq_assign: RxqAssignConfig,
    /// Move rx queues between PMDs at runtime when that balances them
    /// better (OVS: pmd-auto-lb); needs rxq-assign = "cycles".
    pub auto_lb: bool,
    /// A PMD busier than this (% of its core) over an interval asks for a
    /// dry run (OVS: pmd-auto-lb-load-threshold).
    pub auto_lb_load_threshold: u8,
    /// The dry run must cut the variance of the PMDs' loads by this much, in
    /// % (OVS: pmd-auto-lb-improvement-threshold).
    pub auto_lb_improvement_threshold: u8,
    /// Seconds per measuring interval, also the least time between two
    /// rebalances (OVS: pmd-auto-lb-rebal-interval, in minutes).
    pub auto_lb_rebal_interval: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RxqAssignConfig {
    Roundrobin,
    Cycles,
}

impl Default for PmdConfig {
    fn default() -> Self {
        PmdConfig {
            cores: "auto".into(),
            sleep_max: 250,
            rxq_notify_after: 1000,
            rxq_assign: RxqAssignConfig::Cycles,
            auto_lb: false,
            auto_lb_load_threshold: 95,
            auto_lb_improvement_threshold: 25,
            auto_lb_rebal_interval: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Hugepages {
    /// Use 2 MiB hugepages when reserved, normal pages otherwise (warned).
    Auto,
    /// Never use hugepages.
    Off,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MemoryConfig {
    pub hugepages: Hugepages,
    /// Packet buffers in the pool.
    pub n_mbufs: u32,
    /// Frame bytes per buffer; 0 = enough for the largest configured MTU
    /// (2048 for 1500). Raise it (up to 9216) to add jumbo ports at runtime.
    pub mbuf_data_room: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            hugepages: Hugepages::Auto,
            n_mbufs: 16384,
            mbuf_data_room: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DpdkConfig {
    /// DPDK EAL arguments, used when the first `dpdk` port is added (the
    /// EAL starts once per daemon). Hugepage-free by default, which is
    /// enough for vdevs; physical NICs want hugepages and no `--no-pci`.
    pub eal_args: String,
}

impl Default for DpdkConfig {
    fn default() -> Self {
        DpdkConfig {
            eal_args: "--no-huge -m 512 --no-pci".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ControlConfig {
    /// CPUs of every thread but the PMDs (OVS's dpdk-lcore-mask): a CPU
    /// list, or "auto" = the CPUs ferrovsd was allowed minus the PMD cores.
    pub cores: String,
    /// Octal permission bits of the management socket.
    pub socket_mode: String,
    /// Where Prometheus scrapes `/metrics` (HOST:PORT), or "off".
    pub metrics_addr: String,
}

pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9475";

/// `[openflow]`: besides `punix:<run-dir>/<bridge>.mgmt` (always), more
/// targets to listen on, controllers to dial, and OVS's fail-mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct OpenflowConfig {
    /// `ptcp:PORT[:IP]` or `punix:PATH`.
    pub listen: Vec<String>,
    /// `tcp:IP[:PORT]` or `unix:PATH`.
    pub controller: Vec<String>,
    /// `standalone` (the default, as in OVS) or `secure`.
    pub fail_mode: Option<String>,
    /// 16 hex digits at most (default: from the bridge name).
    pub datapath_id: Option<String>,
}

impl OpenflowConfig {
    /// The agent's configuration, or what is wrong (key, message).
    pub fn agent(
        &self,
        run_dir: &std::path::Path,
        bridge: &str,
    ) -> Result<crate::ofagent::AgentConfig, (String, String)> {
        use crate::ofagent::{target, AgentConfig, FailMode};
        let bad = |k: &str, m: String| (format!("openflow.{k}"), m);
        let mut listen = vec![target::Listen::Unix(run_dir.join(format!("{bridge}.mgmt")))];
        for l in &self.listen {
            listen.push(target::parse_listen(l).map_err(|m| bad("listen", m))?);
        }
        let controllers = self
            .controller
            .iter()
            .map(|c| target::parse_dial(c).map_err(|m| bad("controller", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let fail_mode = match self.fail_mode.as_deref() {
            None | Some("standalone") => FailMode::Standalone,
            Some("secure") => FailMode::Secure,
            Some(m) => {
                return Err(bad(
                    "fail-mode",
                    format!("{m:?}: expected standalone or secure"),
                ))
            }
        };
        let datapath_id = match &self.datapath_id {
            Some(d) => {
                let hex = d.strip_prefix("0x").unwrap_or(d);
                if hex.is_empty() || hex.len() > 16 {
                    return Err(bad(
                        "datapath-id",
                        format!("{d:?}: expected 1 to 16 hex digits"),
                    ));
                }
                u64::from_str_radix(hex, 16)
                    .map_err(|_| bad("datapath-id", format!("{d:?}: expected hex digits")))?
            }
            // FNV-1a of the bridge name, 48 bits (as a MAC-derived id would be).
            None => {
                bridge.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
                }) & 0xffff_ffff_ffff
            }
        };
        Ok(AgentConfig {
            listen,
            controllers,
            fail_mode,
            datapath_id,
        })
    }
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            cores: "auto".into(),
            socket_mode: "0600".into(),
            metrics_addr: DEFAULT_METRICS_ADDR.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PortKind,
    /// Socket path; relative paths are in the run directory.
    /// (OVS: vhost-server-path for client ports.) Not used by `dpdk` ports.
    #[serde(default, skip_serializing_if = "is_empty_path")]
    pub path: PathBuf,
    /// `dpdk` ports: the device (OVS options:dpdk-devargs), a PCI address or
    /// a vdev such as `net_af_packet0,iface=eth1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devargs: Option<String>,
    /// `dpdk` ports: receive/transmit descriptors per queue (OVS n_rxq_desc/n_txq_desc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_rxq_desc: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_txq_desc: Option<u16>,
    #[serde(default)]
    pub mode: Mode,
    /// MAC the guest sees in config space (random locally administered if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Retries into a full guest receive ring before dropping (OVS tx-retries-max).
    #[serde(
        default = "default_tx_retries",
        skip_serializing_if = "is_default_tx_retries"
    )]
    pub tx_retries_max: u32,
    /// MTU of the port (OVS mtu_request), 68..=9000; 1500 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu_request: Option<u32>,
    /// Queue pairs offered to the guest, 1..=8 (its rx queues: OVS n_rxq).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_rxq: Option<u16>,
    /// Rx queue to PMD core pins, "QUEUE:CORE,..." (OVS pmd-rxq-affinity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmd_rxq_affinity: Option<String>,
    /// Access VLAN, or the native VLAN of a native-* port (OVS Port:tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u16>,
    /// VLANs a trunk carries, "10,20-30" (OVS Port:trunks); unset: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunks: Option<String>,
    /// access | trunk | native-tagged | native-untagged (OVS Port:vlan_mode);
    /// unset: access when `tag` is set, else trunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_mode: Option<VlanMode>,
    /// MACs this port may have in the learning table at once (0 or unset: no
    /// limit beyond mac-table-size); the rest are refused and counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_limit: Option<u32>,
    /// vhost-user ports: offer the guest checksum and TCP segmentation
    /// offloads (CSUM, GUEST_CSUM, HOST/GUEST_TSO4/6); unset: on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloads: Option<bool>,
    /// `vxlan` ports (OVS options:remote_ip ...): the remote endpoints
    /// "IP[,IP...]", this end's address on the underlay, the VNI (OVS
    /// `key`, default 0), the UDP port (default 4789) and the `dpdk` port
    /// the tunnel sends through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlay: Option<String>,
}

pub const MAX_MAC_LIMIT: u32 = 1 << 20;

pub const MAX_QUEUE_PAIRS: u16 = 8;

/// `dpdk` ports: descriptors per queue (n-rxq-desc, n-txq-desc).
pub const MIN_QUEUE_DESC: u16 = 64;
pub const MAX_QUEUE_DESC: u16 = 4096;

/// "0:3,1:7" -> [(0, 3), (1, 7)].
pub fn parse_affinity(s: &str) -> Result<Vec<(u16, usize)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (q, c) = p
                .split_once(':')
                .ok_or_else(|| format!("{p:?} is not QUEUE:CORE"))?;
            let q = q
                .trim()
                .parse()
                .map_err(|_| format!("{q:?} is not a queue number"))?;
            let c = c
                .trim()
                .parse()
                .map_err(|_| format!("{c:?} is not a core number"))?;
            Ok((q, c))
        })
        .collect()
}

pub const DEFAULT_MTU: u32 = 1500;
pub const MAX_MTU: u32 = 9000;

impl PortConfig {
    pub fn mtu(&self) -> u32 {
        self.mtu_request.unwrap_or(DEFAULT_MTU)
    }

    /// The port's VLAN behaviour from tag/trunks/vlan-mode.
    pub fn vlan(&self) -> Result<PortVlan, String> {
        PortVlan::new(self.tag, self.trunks.as_deref(), self.vlan_mode)
    }

    /// A `vxlan` port's options, checked (None for other kinds).
    pub fn vxlan(&self) -> Option<Result<crate::tunnel::VxlanOptions, String>> {
        (self.kind == PortKind::Vxlan).then(|| {
            crate::tunnel::VxlanOptions::parse(
                self.remote_ip.as_deref(),
                self.local_ip.as_deref(),
                self.key,
                self.dst_port,
                self.underlay.as_deref(),
            )
        })
    }

    /// The one check of the options that can change at runtime (VLAN
    /// options, mac-limit): the config file, add-port and set-port all come
    /// here. Errors start with the key.
    pub fn check_runtime_options(&self) -> Result<(), String> {
        self.vlan()?;
        if self.mac_limit.is_some_and(|n| n > MAX_MAC_LIMIT) {
            return Err(format!("mac-limit: must be 0..={MAX_MAC_LIMIT}"));
        }
        Ok(())
    }

    /// A port of `kind` named `name` with every option at its default.
    pub fn new(name: &str, kind: PortKind) -> PortConfig {
        PortConfig {
            name: name.into(),
            kind,
            path: PathBuf::new(),
            devargs: None,
            n_rxq_desc: None,
            n_txq_desc: None,
            mode: Mode::Server,
            mac: None,
            tx_retries_max: DEFAULT_TX_RETRIES,
            mtu_request: None,
            n_rxq: None,
            pmd_rxq_affinity: None,
            tag: None,
            trunks: None,
            vlan_mode: None,
            mac_limit: None,
            offloads: None,
            remote_ip: None,
            local_ip: None,
            key: None,
            dst_port: None,
            underlay: None,
        }
    }
}

/// Packet buffer data room that carries a frame of this MTU (+ Ethernet + VLAN).
pub fn data_room_for_mtu(mtu: u32) -> usize {
    (mtu as usize + 18).max(pmd::mbuf::DATA_ROOM)
}

pub const DEFAULT_TX_RETRIES: u32 = 8;
pub const MAX_TX_RETRIES: u32 = 32;

fn default_tx_retries() -> u32 {
    DEFAULT_TX_RETRIES
}

fn is_default_tx_retries(n: &u32) -> bool {
    *n == DEFAULT_TX_RETRIES
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PortKind {
    /// ferrovsd is the vhost-user backend: a VM or DPDK virtio-user attaches.
    VhostUser,
    /// ferrovsd is the virtio-user frontend of another vhost-user backend
    /// (another switch, an appliance); it always connects to `path`.
    VirtioUser,
    /// A NIC (or DPDK vdev) through DPDK's ethdev drivers: `devargs`.
    Dpdk,
    /// A VXLAN tunnel to remote endpoints through an `underlay` dpdk port.
    Vxlan,
}

fn is_empty_path(p: &std::path::Path) -> bool {
    p.as_os_str().is_empty()
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Server,
    Client,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: {msg}")]
    Parse { origin: String, msg: String },
    #[error("config {origin}: key `{key}`: {msg}")]
    Value {
        origin: String,
        key: String,
        msg: String,
    },
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Config::parse(DEFAULT_CONFIG, "(embedded default)"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.into(),
                    source,
                })?;
                Config::parse(&text, &p.display().to_string())
            }
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            msg: e.to_string(),
        })?;
        c.validate(origin)?;
        Ok(c)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| ConfigError::Value {
            origin: origin.into(),
            key: key.into(),
            msg,
        };
        if self.bridge.name.is_empty() {
            return Err(bad("bridge.name", "must not be empty".into()));
        }
        if self.bridge.mac_aging_time == 0 {
            return Err(bad(
                "bridge.mac-aging-time",
                "must be at least 1 second".into(),
            ));
        }
        if !(16..=1 << 20).contains(&self.bridge.mac_table_size) {
            return Err(bad(
                "bridge.mac-table-size",
                "must be between 16 and 1048576".into(),
            ));
        }
        parse_cpu_list(&self.pmd.cores).map_err(|m| bad("pmd.cores", m))?;
        parse_cpu_list(&self.control.cores).map_err(|m| bad("control.cores", m))?;
        if self.pmd.sleep_max > 10_000 {
            return Err(bad(
                "pmd.sleep-max",
                "must be at most 10000 microseconds".into(),
            ));
        }
        if self.pmd.rxq_notify_after > 10_000_000 {
            return Err(bad(
                "pmd.rxq-notify-after",
                "must be at most 10000000 microseconds (0: always poll)".into(),
            ));
        }
        for (key, v) in [
            (
                "pmd.auto-lb-load-threshold",
                self.pmd.auto_lb_load_threshold,
            ),
            (
                "pmd.auto-lb-improvement-threshold",
                self.pmd.auto_lb_improvement_threshold,
            ),
        ] {
            if v > 100 {
                return Err(bad(key, "must be a percentage, 0 to 100".into()));
            }
        }
        if !(1..=86_400).contains(&self.pmd.auto_lb_rebal_interval) {
            return Err(bad(
                "pmd.auto-lb-rebal-interval",
                "must be between 1 and 86400 seconds".into(),
            ));
        }
        if self.pmd.auto_lb && self.pmd.rxq_assign != RxqAssignConfig::Cycles {
            return Err(bad(
                "pmd.auto-lb",
                "balances by measured load: needs pmd.rxq-assign = \"cycles\"".into(),
            ));
        }
        if !(1024..=1 << 22).contains(&self.memory.n_mbufs) {
            return Err(bad(
                "memory.n-mbufs",
                "must be between 1024 and 4194304".into(),
            ));
        }
        parse_mode(&self.control.socket_mode).map_err(|m| bad("control.socket-mode", m))?;
        if self.memory.mbuf_data_room != 0 && !(1024..=16384).contains(&self.memory.mbuf_data_room)
        {
            return Err(bad(
                "memory.mbuf-data-room",
                "must be 0 (auto) or 1024..=16384".into(),
            ));
        }
        self.openflow
            .agent(std::path::Path::new("/"), &self.bridge.name)
            .map_err(|(key, msg)| bad(&key, msg))?;
        validate_ports(&self.ports).map_err(|(key, msg)| bad(&key, msg))
    }
}

/// Checks a port list (the config's, or a state file's): names unique and
/// usable in flows, every option in range. Errors name the key, `port[i].…`.
pub fn validate_ports(ports: &[PortConfig]) -> Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        validate_port(p).map_err(|(key, msg)| (format!("port[{i}].{key}"), msg))?;
        if !names.insert(&p.name) {
            return Err((
                format!("port[{i}].name"),
                format!("duplicate port name {:?}", p.name),
            ));
        }
    }
    Ok(())
}

/// Checks one port's options: the one check of a `[[port]]`, a state
/// file's port and `add-port`. Errors are (key, message).
pub fn validate_port(p: &PortConfig) -> Result<(), (String, String)> {
    let bad = |key: &str, msg: String| (key.to_string(), msg);
    validate_port_name(&p.name).map_err(|m| bad("name", m))?;
    if let Some(m) = &p.mac {
        parse_mac(m).map_err(|e| bad("mac", e))?;
    }
    if let Some(n) = p.n_rxq {
        if !(1..=MAX_QUEUE_PAIRS).contains(&n) {
            return Err(bad("n-rxq", format!("must be 1..={MAX_QUEUE_PAIRS}")));
        }
    }
    for (key, n) in [("n-rxq-desc", p.n_rxq_desc), ("n-txq-desc", p.n_txq_desc)] {
        if n.is_some_and(|n| !(MIN_QUEUE_DESC..=MAX_QUEUE_DESC).contains(&n)) {
            return Err(bad(
                key,
                format!("must be {MIN_QUEUE_DESC}..={MAX_QUEUE_DESC}"),
            ));
        }
    }
    if let Some(a) = &p.pmd_rxq_affinity {
        let pins = parse_affinity(a).map_err(|e| bad("pmd-rxq-affinity", e))?;
        if let Some((q, _)) = pins.iter().find(|(q, _)| *q >= p.n_rxq.unwrap_or(1)) {
            return Err(bad(
                "pmd-rxq-affinity",
                format!("queue {q} is beyond n-rxq"),
            ));
        }
    }
    if let Some(m) = p.mtu_request {
        if !(68..=MAX_MTU).contains(&m) {
            return Err(bad("mtu-request", format!("must be 68..={MAX_MTU}")));
        }
    }
    match p.vxlan() {
        Some(Err(e)) => {
            let (key, msg) = e.split_once(": ").unwrap_or(("remote-ip", &e));
            return Err(bad(key, msg.to_string()));
        }
        Some(Ok(_)) => {
            for (key, set) in [
                ("path", !p.path.as_os_str().is_empty()),
                ("devargs", p.devargs.is_some()),
                ("n-rxq", p.n_rxq.is_some()),
                ("pmd-rxq-affinity", p.pmd_rxq_affinity.is_some()),
                ("mode", p.mode != Mode::Server),
                ("mtu-request", p.mtu_request.is_some()),
                ("mac", p.mac.is_some()),
                ("n-rxq-desc", p.n_rxq_desc.is_some()),
                ("n-txq-desc", p.n_txq_desc.is_some()),
                ("tx-retries-max", p.tx_retries_max != DEFAULT_TX_RETRIES),
            ] {
                if set {
                    return Err(bad(
                        key,
                        "a vxlan port has none: its underlay carries the traffic".into(),
                    ));
                }
            }
        }
        None => {
            for (key, set) in [
                ("remote-ip", p.remote_ip.is_some()),
                ("local-ip", p.local_ip.is_some()),
                ("key", p.key.is_some()),
                ("dst-port", p.dst_port.is_some()),
                ("underlay", p.underlay.is_some()),
            ] {
                if set {
                    return Err(bad(key, "only vxlan ports have it".into()));
                }
            }
        }
    }
    if p.offloads.is_some() && p.kind != PortKind::VhostUser {
        return Err(bad(
            "offloads",
            "only vhost-user ports negotiate offloads with a guest".into(),
        ));
    }
    p.check_runtime_options().map_err(|e| {
        let (key, msg) = e.split_once(": ").unwrap_or(("vlan", &e));
        bad(key, msg.to_string())
    })?;
    if p.tx_retries_max > MAX_TX_RETRIES {
        return Err(bad(
            "tx-retries-max",
            format!("must be 0..={MAX_TX_RETRIES}"),
        ));
    }
    Ok(())
}

pub fn validate_port_name(n: &str) -> Result<(), String> {
    // Flow syntax takes a port by name or number: a name that reads as a
    // number would mean another port.
    if n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with("0x") || n.starts_with("0X") {
        return Err(format!(
            "{n:?} is not a port name: it reads as a port number in flows"
        ));
    }
    if n.is_empty()
        || n.len() > 32
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{n:?} is not a port name (1-32 of A-Z a-z 0-9 - _ .)"
        ));
    }
    Ok(())
}

/// "auto" -> None; "1,3-4" -> Some([1,3,4]).
pub fn parse_cpu_list(s: &str) -> Result<Option<Vec<usize>>, String> {
    if s.trim() == "auto" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a
            .parse()
            .map_err(|_| format!("{part:?} is not a CPU number or range"))?;
        let b: usize = b
            .parse()
            .map_err(|_| format!("{part:?} is not a CPU number or range"))?;
        if a > b || b >= 1024 {
            return Err(format!("{part:?} is not a valid CPU range"));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err("no CPUs given".into());
    }
    Ok(Some(out))
}

pub fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as \"0600\""))
}

pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let err = || format!("{s:?} is not a MAC address like 52:54:00:12:34:56");
    if parts.len() != 6 {
        return Err(err());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(err());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| err())?;
    }
    Ok(m)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.bridge.mac_aging_time, 300);
        assert_eq!(c.bridge.mac_table_size, 8192);
    }

    #[test]
    fn virtio_user_ports_parse() {
        let c = Config::parse(
            "[[port]]\nname = \"up\"\ntype = \"virtio-user\"\npath = \"/run/other/trunk.sock\"\nn-rxq = 2\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.ports[0].kind, PortKind::VirtioUser);
        assert_eq!(c.ports[0].n_rxq, Some(2));
        assert!(Config::parse(
            "[[port]]\nname = \"x\"\ntype = \"virtio\"\npath = \"p\"\n",
            "t"
        )
        .is_err());
    }

    #[test]
    fn vxlan_ports_parse_and_their_mistakes_are_named() {
        let port = |extra: &str| {
            format!(
                "[[port]]\nname = \"phy0\"\ntype = \"dpdk\"\ndevargs = \"net_tap0\"\n\
                 [[port]]\nname = \"vx0\"\ntype = \"vxlan\"\nunderlay = \"phy0\"\n{extra}"
            )
        };
        let c = Config::parse(
            &port(
                "remote-ip = \"10.0.0.2,10.0.0.3\"\nlocal-ip = \"10.0.0.1\"\nkey = 42\ntag = 10\n",
            ),
            "t",
        )
        .unwrap();
        let o = c.ports[1].vxlan().unwrap().unwrap();
        assert_eq!((o.remotes.len(), o.vni, o.dst_port), (2, 42, 4789));
        for (extra, key) in [
            ("local-ip = \"10.0.0.1\"\n", "remote-ip"),
            ("remote-ip = \"10.0.0.2\"\n", "local-ip"),
            (
                "remote-ip = \"10.0.0.2\"\nlocal-ip = \"10.0.0.1\"\nkey = 16777216\n",
                "key",
            ),
            (
                "remote-ip = \"10.0.0.2\"\nlocal-ip = \"10.0.0.1\"\npath = \"x.sock\"\n",
                "path",
            ),
            (
                "remote-ip = \"10.0.0.2\"\nlocal-ip = \"10.0.0.1\"\nmtu-request = 1400\n",
                "mtu-request",
            ),
        ] {
            let e = Config::parse(&port(extra), "t").unwrap_err().to_string();
            assert!(e.contains(&format!("port[1].{key}")), "{extra:?}: {e}");
        }
        let e = Config::parse(
            "[[port]]\nname = \"v\"\ntype = \"vhost-user\"\npath = \"v.sock\"\nremote-ip = \"10.0.0.2\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("port[0].remote-ip") && e.contains("only vxlan ports"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[bridge]\nname = \"b\"\nmac-agin-time = 5\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mac-agin-time"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::parse("[pmd]\ncores = \"1-x\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pmd.cores"), "{e}");
        let e = Config::parse("[bridge]\nmac-table-size = 1\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bridge.mac-table-size"), "{e}");
        let e = Config::parse(
            "[[port]]\nname = \"a\"\ntype = \"vhost-user\"\npath = \"a\"\nmac = \"zz\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("port[0].mac"), "{e}");
        let e = Config::parse(
            "[[port]]\nname = \"a\"\ntype = \"tap\"\npath = \"a\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tap"), "{e}");
        for (toml, key) in [
            (
                "[pmd]\nauto-lb = true\nrxq-assign = \"roundrobin\"\n",
                "pmd.auto-lb",
            ),
            (
                "[pmd]\nauto-lb-load-threshold = 101\n",
                "pmd.auto-lb-load-threshold",
            ),
            (
                "[pmd]\nauto-lb-rebal-interval = 0\n",
                "pmd.auto-lb-rebal-interval",
            ),
        ] {
            let e = Config::parse(toml, "t").unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn vlan_options_parse_and_bad_ones_are_named() {
        let c = Config::parse(
            "[[port]]\nname = \"a\"\ntype = \"vhost-user\"\npath = \"a\"\ntag = 10\n[[port]]\nname = \"b\"\ntype = \"vhost-user\"\npath = \"b\"\ntrunks = \"10,20-30\"\nvlan-mode = \"trunk\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.ports[0].vlan().unwrap().tag, 10);
        assert!(c.ports[1].vlan().unwrap().includes(25));
        let e = Config::parse(
            "[[port]]\nname = \"a\"\ntype = \"vhost-user\"\npath = \"a\"\ntrunks = \"10-5\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("port[0].trunks"), "{e}");
        let e = Config::parse(
            "[[port]]\nname = \"a\"\ntype = \"vhost-user\"\npath = \"a\"\nvlan-mode = \"native-tagged\"\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("port[0].vlan-mode"), "{e}");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("auto").unwrap(), None);
        assert_eq!(parse_cpu_list("3,0-1").unwrap(), Some(vec![0, 1, 3]));
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("").is_err());
    }
}
