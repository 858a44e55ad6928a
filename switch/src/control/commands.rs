//! The management commands: a typed request in, a typed reply or an error
//! message out. Every command reads or changes the [`Bridge`]; none can
//! touch the packet path other than through a new snapshot.

use super::port_options::{apply_runtime_options, port_config};
use super::reports;
use crate::bridge::Bridge;
use ferrovs_proto::{
    FdbFlushed, FlowsAdded, FlowsDeleted, FlowsModified, Help, PmdStatsCleared, PortAdded,
    PortRemoved, PortSet, Reply, Request, RuntimeOptions,
};

pub fn dispatch(bridge: &Bridge, request: Request) -> Result<Reply, String> {
    let command = request.command();
    let reply = match request {
        Request::Show => Reply::Show(reports::show(bridge)),
        Request::AddPort(a) => {
            let cfg = port_config(&a)?;
            let no = bridge.add_port_persistent(cfg).map_err(|e| e.to_string())?;
            Reply::AddPort(PortAdded {
                added: a.name,
                port_no: no,
            })
        }
        Request::DelPort(a) => {
            bridge
                .del_port_persistent(&a.name)
                .map_err(|e| e.to_string())?;
            Reply::DelPort(PortRemoved { removed: a.name })
        }
        Request::SetPort(a) => {
            let opts = a.runtime_options();
            if opts.is_empty() {
                return Err(format!(
                    "set-port {}: nothing to change (give key=value: {})",
                    a.name,
                    RuntimeOptions::KEYS
                ));
            }
            let cfg = bridge
                .set_port(&a.name, |c| apply_runtime_options(c, &opts))
                .map_err(|e| e.to_string())?;
            Reply::SetPort(PortSet {
                port: a.name,
                vlan_mode: cfg.vlan()?.mode.name().into(),
                tag: cfg.tag,
                trunks: cfg.trunks,
                mac_limit: cfg.mac_limit,
            })
        }
        Request::AddFlow(a) => {
            if a.flow.trim().is_empty() {
                return Err("add-flow needs a flow, e.g. \"priority=10,ip,actions=drop\"".into());
            }
            Reply::AddFlow(FlowsAdded {
                added: bridge.add_flows(&[(0, a.flow)])?,
            })
        }
        Request::AddFlows(a) => {
            let lines: Vec<(usize, String)> =
                a.flows.into_iter().map(|f| (f.line, f.flow)).collect();
            Reply::AddFlows(FlowsAdded {
                added: bridge.add_flows(&lines)?,
            })
        }
        Request::ModFlows(a) => Reply::ModFlows(FlowsModified {
            modified: bridge.mod_flows(&a.flow, a.strict)?,
        }),
        Request::DelFlows(a) => Reply::DelFlows(FlowsDeleted {
            deleted: bridge.del_flows(&a.flow, a.strict)?,
        }),
        Request::DumpFlows(a) => Reply::DumpFlows(bridge.dump_flows(&a.flow)?),
        Request::FdbShow => Reply::FdbShow(reports::fdb_show(bridge)),
        Request::FdbFlush => Reply::FdbFlush(FdbFlushed {
            flushed: bridge.fdb.flush(),
        }),
        Request::PortStats(a) => Reply::PortStats(reports::port_stats(bridge, a.name.as_deref())?),
        Request::PmdStats => Reply::PmdStats(reports::pmd_stats(bridge)),
        Request::PmdStatsClear => {
            for p in &bridge.datapath.pmds {
                p.clear();
            }
            Reply::PmdStatsClear(PmdStatsCleared {
                cleared: bridge.datapath.pmds.len(),
            })
        }
        Request::PmdRxqShow => Reply::PmdRxqShow(reports::pmd_rxq_show(bridge)),
        Request::PmdRxqRebalance => {
            bridge.rebalance();
            Reply::PmdRxqRebalance(reports::pmd_rxq_show(bridge))
        }
        Request::Help => Reply::Help(Help::table()),
    };
    // A client reads the result by the command it sent (`Reply::parse`).
    debug_assert_eq!(reply.command(), command);
    Ok(reply)
}
