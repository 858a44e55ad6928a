//! The `show` reply: the bridge, its ports and PMD cores.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Show {
    pub bridge: String,
    pub run_dir: String,
    pub ports: Vec<ShowPort>,
    pub pmds: Vec<PmdQueues>,
    /// CPUs of every thread but the PMDs.
    #[serde(default)]
    pub control_cores: Vec<usize>,
    pub pmd_sleep_max_us: u32,
    /// Where /metrics is served (null until the server runs).
    pub metrics_addr: Option<String>,
    pub mbuf_pool: MbufPool,
    pub fdb: FdbSummary,
    /// Rules in the flow table.
    pub flows: usize,
    /// The OpenFlow agent (null until it runs).
    pub openflow: Option<OpenflowStatus>,
}

/// One port: what the bridge knows, then what its driver reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShowPort {
    pub name: String,
    pub port_no: u16,
    #[serde(rename = "type")]
    pub kind: String,
    pub link: Link,
    /// access | trunk | native-tagged | native-untagged
    pub vlan_mode: String,
    pub tag: Option<u16>,
    pub trunks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// What OpenFlow's PORT_MOD turned off: down, no_recv, no_fwd, no_packet_in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin: Vec<String>,
    /// A `vxlan` port: where it goes and what ARP knows of each remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelStatus>,
    #[serde(flatten)]
    pub driver: DriverInfo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub local_ip: String,
    /// The VNI.
    pub key: u32,
    pub dst_port: u16,
    pub underlay: String,
    /// The largest inner IP packet the underlay carries.
    pub overlay_mtu: usize,
    pub remotes: Vec<TunnelRemote>,
    /// Frames that could not be sent, by reason (no_arp, tunnel_mtu).
    pub drops: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelRemote {
    pub ip: String,
    /// Its MAC on the underlay, once ARP resolved it.
    pub mac: Option<String>,
    /// reachable | refreshing | unresolved
    pub arp: String,
    /// Seconds since an ARP packet from it (None: never).
    pub arp_age_secs: Option<u32>,
    pub arp_requests: u64,
    pub tx_packets: u64,
    pub rx_packets: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    Up,
    Down,
}

/// What a port's driver reports, each as text; which of these a port has
/// depends on its type. Kept flat in the port's object on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    /// vhost-user and virtio-user: the socket, server or client, and the peer's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Negotiated virtio features, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_pairs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_vrings: Option<String>,
    /// How many times a peer has connected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<String>,
    /// Why the link is down now ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// ... or why it was down before it came up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<String>,
    /// dpdk: the device, its driver, link speed and queues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devargs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpdk_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_speed_mbps: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<String>,
    /// Facts a driver reports that have no field above yet (shown, not lost).
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// The rx queues a PMD core polls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmdQueues {
    pub core: usize,
    pub queues: Vec<PolledQueue>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolledQueue {
    pub port: String,
    pub queue: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MbufPool {
    /// The memory the buffers live in (`hugepages-2048kB`, `memfd` ...).
    pub pages: String,
    pub total: usize,
    pub in_use: usize,
    pub free_shared: usize,
    pub in_thread_caches: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbSummary {
    pub entries: usize,
    pub max: usize,
    pub aging_secs: u32,
}

/// The OpenFlow agent: its listeners, controllers and message counts (the
/// agent keeps its status in this very type).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenflowStatus {
    pub datapath_id: String,
    /// standalone | secure
    pub fail_mode: String,
    /// Forwarding as a learning switch for want of a controller (standalone).
    pub fail_open: bool,
    pub listening: Vec<String>,
    pub controllers: Vec<ControllerStatus>,
    /// Connections now, dialed and accepted.
    pub connections: usize,
    #[serde(default)]
    pub flow_mods: u64,
    pub packet_ins: u64,
    pub packet_ins_dropped: u64,
    pub packet_outs: u64,
    pub errors_sent: u64,
}

/// A controller connection: one the agent dials, or one a listener accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub target: String,
    /// A configured controller (else a client that connected to us).
    #[serde(default)]
    pub dialed: bool,
    pub state: String,
    pub role: String,
    /// In this state for this long.
    pub seconds: u64,
}
