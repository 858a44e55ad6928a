//! Requests: `{"command": "port-stats", "args": {"name": "vhost0"}}`, one a
//! line. `args` is optional; each command's arguments are a struct that
//! refuses arguments it does not know.
//!
//! Port option values travel as text, as ferrovs-ctl's `key=value` gives
//! them ("" or "none" unsets a runtime option): ferrovsd parses and checks
//! them with the config's own rules, so those rules live in one place.

use crate::command::Command;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A request as it is on the wire, before its command and arguments are known good.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLine {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Map<String, Value>>,
}

/// A request, typed: the command and its arguments.
// One request lives at a time: its size does not matter, boxing add-port would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RequestLine", into = "RequestLine")]
pub enum Request {
    Show,
    AddPort(AddPort),
    DelPort(DelPort),
    SetPort(SetPort),
    AddFlow(AddFlow),
    AddFlows(AddFlows),
    ModFlows(FlowSelection),
    DelFlows(FlowSelection),
    DumpFlows(DumpFlows),
    FdbShow,
    FdbFlush,
    PortStats(PortStatsArgs),
    PmdStats,
    PmdStatsClear,
    PmdRxqShow,
    PmdRxqRebalance,
    Help,
}

/// `add-port`: the options of a config `[[port]]`, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AddPort {
    pub name: String,
    /// vhost-user | virtio-user | dpdk | vxlan
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devargs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_rxq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_rxq_desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_txq_desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_retries_max: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu_request: Option<String>,
    /// vhost-user: "true" or "false" (offer checksum/TSO offloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloads: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmd_rxq_affinity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunks: Option<String>,
    #[serde(default, alias = "vlan_mode", skip_serializing_if = "Option::is_none")]
    pub vlan_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_limit: Option<String>,
    /// vxlan: "IP[,IP...]", "IP", VNI, UDP port, the dpdk port it goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub underlay: Option<String>,
}

/// `del-port`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelPort {
    pub name: String,
}

/// `set-port`: the options that can change at runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SetPort {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunks: Option<String>,
    #[serde(default, alias = "vlan_mode", skip_serializing_if = "Option::is_none")]
    pub vlan_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_limit: Option<String>,
}

/// The port options add-port and set-port share: those that can change at
/// runtime, as text ("" or "none" unsets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeOptions<'a> {
    pub tag: Option<&'a str>,
    pub trunks: Option<&'a str>,
    pub vlan_mode: Option<&'a str>,
    pub mac_limit: Option<&'a str>,
}

impl RuntimeOptions<'_> {
    /// The keys set-port can change, for messages.
    pub const KEYS: &'static str = "tag, trunks, vlan-mode, mac-limit";

    pub fn is_empty(&self) -> bool {
        *self == RuntimeOptions::default()
    }
}

impl AddPort {
    pub fn runtime_options(&self) -> RuntimeOptions<'_> {
        RuntimeOptions {
            tag: self.tag.as_deref(),
            trunks: self.trunks.as_deref(),
            vlan_mode: self.vlan_mode.as_deref(),
            mac_limit: self.mac_limit.as_deref(),
        }
    }
}

impl SetPort {
    pub fn runtime_options(&self) -> RuntimeOptions<'_> {
        RuntimeOptions {
            tag: self.tag.as_deref(),
            trunks: self.trunks.as_deref(),
            vlan_mode: self.vlan_mode.as_deref(),
            mac_limit: self.mac_limit.as_deref(),
        }
    }
}

/// `add-flow`: one rule in ovs-ofctl syntax.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddFlow {
    #[serde(default)]
    pub flow: String,
}

/// `add-flows`: rules with the line numbers errors name; all or none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddFlows {
    #[serde(default)]
    pub flows: Vec<NumberedFlow>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberedFlow {
    pub line: usize,
    pub flow: String,
}

/// `mod-flows` (the flow carries the new actions) and `del-flows` ("" selects every rule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSelection {
    #[serde(default)]
    pub flow: String,
    /// The same match and priority only, not every rule the flow covers.
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict: bool,
}

/// `dump-flows` ("" selects every rule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpFlows {
    #[serde(default)]
    pub flow: String,
}

/// `port-stats`: one port, or every port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortStatsArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The arguments of a command that takes none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Request {
    pub fn command(&self) -> Command {
        match self {
            Request::Show => Command::Show,
            Request::AddPort(_) => Command::AddPort,
            Request::DelPort(_) => Command::DelPort,
            Request::SetPort(_) => Command::SetPort,
            Request::AddFlow(_) => Command::AddFlow,
            Request::AddFlows(_) => Command::AddFlows,
            Request::ModFlows(_) => Command::ModFlows,
            Request::DelFlows(_) => Command::DelFlows,
            Request::DumpFlows(_) => Command::DumpFlows,
            Request::FdbShow => Command::FdbShow,
            Request::FdbFlush => Command::FdbFlush,
            Request::PortStats(_) => Command::PortStats,
            Request::PmdStats => Command::PmdStats,
            Request::PmdStatsClear => Command::PmdStatsClear,
            Request::PmdRxqShow => Command::PmdRxqShow,
            Request::PmdRxqRebalance => Command::PmdRxqRebalance,
            Request::Help => Command::Help,
        }
    }

    /// `command` with its arguments as a JSON object; arguments the command
    /// does not take are refused, named.
    pub fn from_args(command: Command, args: Map<String, Value>) -> Result<Request, String> {
        let a = Value::Object(args);
        Ok(match command {
            Command::Show => no_args(command, a, Request::Show)?,
            Command::AddPort => Request::AddPort(typed(command, a)?),
            Command::DelPort => Request::DelPort(typed(command, a)?),
            Command::SetPort => Request::SetPort(typed(command, a)?),
            Command::AddFlow => Request::AddFlow(typed(command, a)?),
            Command::AddFlows => Request::AddFlows(typed(command, a)?),
            Command::ModFlows => Request::ModFlows(typed(command, a)?),
            Command::DelFlows => Request::DelFlows(typed(command, a)?),
            Command::DumpFlows => Request::DumpFlows(typed(command, a)?),
            Command::FdbShow => no_args(command, a, Request::FdbShow)?,
            Command::FdbFlush => no_args(command, a, Request::FdbFlush)?,
            Command::PortStats => Request::PortStats(typed(command, a)?),
            Command::PmdStats => no_args(command, a, Request::PmdStats)?,
            Command::PmdStatsClear => no_args(command, a, Request::PmdStatsClear)?,
            Command::PmdRxqShow => no_args(command, a, Request::PmdRxqShow)?,
            Command::PmdRxqRebalance => no_args(command, a, Request::PmdRxqRebalance)?,
            Command::Help => no_args(command, a, Request::Help)?,
        })
    }

    /// One request line as a client sent it, with errors a person can act on.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let v: Value =
            serde_json::from_slice(line).map_err(|e| format!("request is not valid JSON: {e}"))?;
        let Value::Object(o) = &v else {
            return Err("request must be a JSON object like {\"command\": \"show\"}".into());
        };
        if !o.contains_key("command") {
            return Err("request has no \"command\"".into());
        }
        let line: RequestLine =
            serde_json::from_value(v).map_err(|e| format!("bad request: {e}"))?;
        Request::try_from(line)
    }

    /// The arguments as they go on the wire (an object, empty for commands without).
    fn args(&self) -> Map<String, Value> {
        let v = match self {
            Request::AddPort(a) => serde_json::to_value(a),
            Request::DelPort(a) => serde_json::to_value(a),
            Request::SetPort(a) => serde_json::to_value(a),
            Request::AddFlow(a) => serde_json::to_value(a),
            Request::AddFlows(a) => serde_json::to_value(a),
            Request::ModFlows(a) | Request::DelFlows(a) => serde_json::to_value(a),
            Request::DumpFlows(a) => serde_json::to_value(a),
            Request::PortStats(a) => serde_json::to_value(a),
            Request::Show
            | Request::FdbShow
            | Request::FdbFlush
            | Request::PmdStats
            | Request::PmdStatsClear
            | Request::PmdRxqShow
            | Request::PmdRxqRebalance
            | Request::Help => return Map::new(),
        };
        match v {
            Ok(Value::Object(args)) => args,
            _ => unreachable!("argument structs serialise to JSON objects"),
        }
    }
}

fn typed<T: DeserializeOwned>(command: Command, args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| {
        let hint = match command {
            Command::SetPort => format!(
                " (set-port changes {} at runtime; del-port and add-port to change the rest)",
                RuntimeOptions::KEYS
            ),
            _ => String::new(),
        };
        format!("{}: bad arguments: {e}{hint}", command.name())
    })
}

fn no_args(command: Command, args: Value, r: Request) -> Result<Request, String> {
    typed::<NoArgs>(command, args).map(|_| r)
}

impl TryFrom<RequestLine> for Request {
    type Error = String;

    fn try_from(l: RequestLine) -> Result<Request, String> {
        Request::from_args(Command::from_name(&l.command)?, l.args.unwrap_or_default())
    }
}

impl From<Request> for RequestLine {
    fn from(r: Request) -> RequestLine {
        RequestLine {
            command: r.command().name().to_string(),
            args: Some(r.args()),
        }
    }
}
