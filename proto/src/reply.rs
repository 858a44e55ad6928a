//! Replies: `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`,
//! one a line. [`Reply`] is the result of each command, typed; a client
//! reads it knowing the command it sent ([`Reply::parse`]).

use crate::command::Command;
use crate::fdb::{FdbFlushed, FdbShow};
use crate::flows::{FlowEntry, FlowsAdded, FlowsDeleted, FlowsModified};
use crate::pmd::{PmdRxqShow, PmdStats, PmdStatsCleared};
use crate::port_stats::PortStats;
use crate::ports::{PortAdded, PortRemoved, PortSet};
use crate::show::Show;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A reply line. `T` is the result: a [`Reply`] from ferrovsd, or the raw
/// JSON for a client that passes it on (`ferrovs-ctl --json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyLine<T = Value> {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<T> From<Result<T, String>> for ReplyLine<T> {
    fn from(r: Result<T, String>) -> ReplyLine<T> {
        match r {
            Ok(result) => ReplyLine {
                ok: true,
                result: Some(result),
                error: None,
            },
            Err(error) => ReplyLine {
                ok: false,
                result: None,
                error: Some(error),
            },
        }
    }
}

impl<T> ReplyLine<T> {
    pub fn into_result(self) -> Result<T, String> {
        match (self.ok, self.result) {
            (true, Some(r)) => Ok(r),
            (true, None) => Err("reply has \"ok\" but no \"result\"".into()),
            (false, _) => Err(self.error.unwrap_or_else(|| "unknown error".into())),
        }
    }
}

/// The result of each command. On the wire it is the inner value alone.
// One reply lives at a time: its size does not matter, boxing `show` would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Show(Show),
    AddPort(PortAdded),
    DelPort(PortRemoved),
    SetPort(PortSet),
    AddFlow(FlowsAdded),
    AddFlows(FlowsAdded),
    ModFlows(FlowsModified),
    DelFlows(FlowsDeleted),
    DumpFlows(Vec<FlowEntry>),
    FdbShow(FdbShow),
    FdbFlush(FdbFlushed),
    PortStats(Vec<PortStats>),
    PmdStats(Vec<PmdStats>),
    PmdStatsClear(PmdStatsCleared),
    PmdRxqShow(PmdRxqShow),
    PmdRxqRebalance(PmdRxqShow),
    Help(Help),
}

/// The `help` reply: each command's name and [`Command::summary`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Help(pub BTreeMap<String, String>);

impl Help {
    pub fn table() -> Help {
        Help(
            Command::ALL
                .iter()
                .map(|c| (c.name().to_string(), c.summary()))
                .collect(),
        )
    }
}

impl Reply {
    pub fn command(&self) -> Command {
        match self {
            Reply::Show(_) => Command::Show,
            Reply::AddPort(_) => Command::AddPort,
            Reply::DelPort(_) => Command::DelPort,
            Reply::SetPort(_) => Command::SetPort,
            Reply::AddFlow(_) => Command::AddFlow,
            Reply::AddFlows(_) => Command::AddFlows,
            Reply::ModFlows(_) => Command::ModFlows,
            Reply::DelFlows(_) => Command::DelFlows,
            Reply::DumpFlows(_) => Command::DumpFlows,
            Reply::FdbShow(_) => Command::FdbShow,
            Reply::FdbFlush(_) => Command::FdbFlush,
            Reply::PortStats(_) => Command::PortStats,
            Reply::PmdStats(_) => Command::PmdStats,
            Reply::PmdStatsClear(_) => Command::PmdStatsClear,
            Reply::PmdRxqShow(_) => Command::PmdRxqShow,
            Reply::PmdRxqRebalance(_) => Command::PmdRxqRebalance,
            Reply::Help(_) => Command::Help,
        }
    }

    /// The result of `command`, typed.
    pub fn parse(command: Command, result: Value) -> Result<Reply, serde_json::Error> {
        use serde_json::from_value as typed;
        Ok(match command {
            Command::Show => Reply::Show(typed(result)?),
            Command::AddPort => Reply::AddPort(typed(result)?),
            Command::DelPort => Reply::DelPort(typed(result)?),
            Command::SetPort => Reply::SetPort(typed(result)?),
            Command::AddFlow => Reply::AddFlow(typed(result)?),
            Command::AddFlows => Reply::AddFlows(typed(result)?),
            Command::ModFlows => Reply::ModFlows(typed(result)?),
            Command::DelFlows => Reply::DelFlows(typed(result)?),
            Command::DumpFlows => Reply::DumpFlows(typed(result)?),
            Command::FdbShow => Reply::FdbShow(typed(result)?),
            Command::FdbFlush => Reply::FdbFlush(typed(result)?),
            Command::PortStats => Reply::PortStats(typed(result)?),
            Command::PmdStats => Reply::PmdStats(typed(result)?),
            Command::PmdStatsClear => Reply::PmdStatsClear(typed(result)?),
            Command::PmdRxqShow => Reply::PmdRxqShow(typed(result)?),
            Command::PmdRxqRebalance => Reply::PmdRxqRebalance(typed(result)?),
            Command::Help => Reply::Help(typed(result)?),
        })
    }
}
