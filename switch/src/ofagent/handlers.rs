//! Each OpenFlow message a controller sends → what it does to the bridge,
//! and the reply. A message that cannot be honoured gets the OFPT_ERROR
//! OpenFlow names for it, with the request's xid and first bytes; the
//! connection goes on (only a failed negotiation closes it).

use super::conn::Kind;
use super::mapping::{self, Context};
use super::{role_name, Agent};
use crate::bridge::flow_mods::{FlowChange, FlowChangeError};
use crate::bridge::Bridge;
use crate::datapath::controller::FromController;
use crate::flow::rule::{Filter, Rule, ALL_TABLES, MAX_TABLE};
use openflow::error::*;
use openflow::message::*;
use openflow::multipart::{
    self as mp, Desc, FlowStats, MultipartReply, MultipartRequest, PortStats, TableFeatures,
    TableStats,
};
use openflow::oxm::{self, Oxm};
use openflow::port::{self as ofp, PortDesc};
use openflow::{OfError, NO_BUFFER};

/// Tables the switch announces (OVS: 254; 255 means "all").
pub const N_TABLES: u8 = MAX_TABLE + 1;

impl Agent {
    pub(super) fn handle(&mut self, i: usize, raw: &[u8]) {
        let (h, msg) = match openflow::decode(raw) {
            Ok(x) => x,
            Err((h, e)) => {
                let xid = h.map_or(0, |h| h.xid);
                // Errors go back in order: the FLOW_MODs before this one first.
                self.apply_pending();
                if !self.conns[i].negotiated {
                    // Before a HELLO: a version we do not speak (ovs-ofctl without -O).
                    let e = OfError::new(HELLO_FAILED, HFC_INCOMPATIBLE);
                    self.send_error(i, e, raw, xid);
                    self.conns[i].close();
                    return;
                }
                return self.send_error(i, e, raw, xid);
            }
        };
        if !self.conns[i].negotiated {
            let Message::Hello { versions } = msg else {
                self.send_error(i, OfError::new(BAD_REQUEST, BRC_BAD_TYPE), raw, h.xid);
                self.conns[i].close();
                return;
            };
            if versions & (1 << openflow::VERSION) == 0 {
                tracing::info!(peer = %self.conns[i].peer, "OpenFlow peer does not speak 1.3 (versions {versions:#x})");
                let mut e = openflow::message::error_reply(
                    OfError::new(HELLO_FAILED, HFC_INCOMPATIBLE),
                    &[],
                );
                if let Message::Error { data, .. } = &mut e {
                    *data = b"ferrovsd speaks OpenFlow 1.3 only (use -O OpenFlow13)".to_vec();
                }
                self.counters.errors_sent += 1;
                self.conns[i].send(&e, h.xid);
                self.conns[i].close();
                return;
            }
            self.conns[i].negotiated = true;
            return;
        }
        let slave = self.conns[i].role == ROLE_SLAVE;
        if !matches!(msg, Message::FlowMod(_)) {
            // Whatever comes next (a barrier, a dump) sees the rules in.
            self.apply_pending();
        }
        let reply = match msg {
            Message::Hello { .. } => return,
            Message::EchoRequest(d) => Message::EchoReply(d),
            Message::EchoReply(_) => {
                self.conns[i].echo_sent = None;
                return;
            }
            Message::Error { etype, code, .. } => {
                tracing::info!(peer = %self.conns[i].peer, "OpenFlow peer reports error type {etype} code {code}");
                return;
            }
            Message::FeaturesRequest => Message::FeaturesReply {
                datapath_id: self.cfg.datapath_id,
                n_buffers: 0,
                n_tables: N_TABLES,
                capabilities: CAP_FLOW_STATS | CAP_TABLE_STATS | CAP_PORT_STATS,
            },
            Message::GetConfigRequest => Message::GetConfigReply(self.switch_config),
            Message::SetConfig(c) => {
                let conn = &mut self.conns[i];
                if conn.kind == Kind::Service && !conn.async_set {
                    conn.async_cfg = if c.miss_send_len != 0 {
                        AsyncConfig::default()
                    } else {
                        AsyncConfig::NONE
                    };
                }
                self.switch_config = c;
                return;
            }
            Message::BarrierRequest => Message::BarrierReply,
            Message::GetAsyncRequest => Message::GetAsyncReply(self.conns[i].async_cfg),
            Message::SetAsync(c) => {
                self.conns[i].async_cfg = c;
                self.conns[i].async_set = true;
                return;
            }
            Message::RoleRequest(r) => match self.role(i, r) {
                Ok(r) => Message::RoleReply(r),
                Err(e) => return self.send_error(i, e, raw, h.xid),
            },
            Message::FlowMod(_)
            | Message::PacketOut(_)
            | Message::PortMod(_)
            | Message::TableMod { .. }
            | Message::GroupMod
            | Message::MeterMod
                if slave =>
            {
                return self.send_error(i, OfError::new(BAD_REQUEST, 10), raw, h.xid);
            }
            Message::FlowMod(fm) => {
                match self.flow_mod(fm) {
                    // Applied with the FLOW_MODs that follow it (one snapshot).
                    Ok(Some(c)) => self.pending.push((i, h.xid, raw.to_vec(), c)),
                    Ok(None) => {}
                    Err(e) => {
                        self.apply_pending();
                        self.send_error(i, e, raw, h.xid);
                    }
                }
                return;
            }
            Message::PacketOut(po) => {
                if let Err(e) = self.packet_out(po) {
                    self.send_error(i, e, raw, h.xid);
                }
                return;
            }
            Message::PortMod(pm) => {
                if let Err(e) = port_mod(&self.bridge, pm) {
                    self.send_error(i, e, raw, h.xid);
                }
                return;
            }
            // Table configuration bits were deprecated by 1.3: accepted.
            Message::TableMod { .. } => return,
            Message::GroupMod => {
                return self.send_error(
                    i,
                    OfError::new(GROUP_MOD_FAILED, GMFC_INVALID_GROUP),
                    raw,
                    h.xid,
                )
            }
            Message::MeterMod => {
                return self.send_error(
                    i,
                    OfError::new(METER_MOD_FAILED, MMFC_INVALID_METER),
                    raw,
                    h.xid,
                )
            }
            Message::MultipartRequest { body, .. } => match self.multipart(body) {
                Ok(body) => Message::MultipartReply { flags: 0, body },
                Err(e) => return self.send_error(i, e, raw, h.xid),
            },
            Message::Experimenter { .. } => {
                return self.send_error(
                    i,
                    OfError::new(BAD_REQUEST, BRC_BAD_EXPERIMENTER),
                    raw,
                    h.xid,
                )
            }
            // No queues: QUEUE_GET_CONFIG is answered as an unknown request.
            Message::QueueGetConfigRequest { .. }
            | Message::FeaturesReply { .. }
            | Message::GetConfigReply(_)
            | Message::PacketIn(_)
            | Message::FlowRemoved(_)
            | Message::PortStatus { .. }
            | Message::MultipartReply { .. }
            | Message::BarrierReply
            | Message::RoleReply(_)
            | Message::GetAsyncReply(_) => {
                return self.send_error(i, OfError::new(BAD_REQUEST, BRC_BAD_TYPE), raw, h.xid)
            }
        };
        self.conns[i].send(&reply, h.xid);
    }

    /// ROLE_REQUEST as a single switch answers it: one master at a time
    /// (a new master demotes the old to slave), stale generations refused.
    fn role(&mut self, i: usize, r: Role) -> Result<Role, OfError> {
        if r.role == ROLE_NOCHANGE {
            return Ok(Role {
                role: self.conns[i].role,
                generation_id: self.generation_id.unwrap_or(0),
            });
        }
        if !matches!(r.role, ROLE_EQUAL | ROLE_MASTER | ROLE_SLAVE) {
            return Err(OfError::new(ROLE_REQUEST_FAILED, RRFC_BAD_ROLE));
        }
        if r.role != ROLE_EQUAL {
            if let Some(g) = self.generation_id {
                if (r.generation_id.wrapping_sub(g) as i64) < 0 {
                    return Err(OfError::new(ROLE_REQUEST_FAILED, 0)); // OFPRRFC_STALE
                }
            }
            self.generation_id = Some(r.generation_id);
        }
        if r.role == ROLE_MASTER {
            for (j, c) in self.conns.iter_mut().enumerate() {
                if j != i && c.role == ROLE_MASTER {
                    c.role = ROLE_SLAVE;
                }
            }
        }
        self.conns[i].role = r.role;
        tracing::info!(peer = %self.conns[i].peer, "OpenFlow role {}", role_name(r.role));
        Ok(Role {
            role: r.role,
            generation_id: r.generation_id,
        })
    }

    /// Applies the FLOW_MODs read so far in one go; errors go back to each
    /// one's connection with its xid, in order.
    pub(super) fn apply_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.counters.flow_mods += pending.len() as u64;
        let changes = pending.iter().map(|p| p.3.clone()).collect();
        let results = self.bridge.change_flows_batch(changes, true);
        self.rules_dirty_since
            .get_or_insert_with(std::time::Instant::now);
        let fail = |c| OfError::new(FLOW_MOD_FAILED, c);
        for ((i, xid, raw, _), r) in pending.into_iter().zip(results) {
            match r {
                Ok(removed) => {
                    for r in removed.iter().filter(|r| r.notify) {
                        self.flow_removed(r, RR_DELETE);
                    }
                }
                Err(e) => {
                    let e = match e {
                        FlowChangeError::Overlap => fail(FMFC_OVERLAP),
                        FlowChangeError::TableFull => fail(FMFC_TABLE_FULL),
                        FlowChangeError::Invalid(why) => {
                            tracing::debug!("flow mod refused: {why}");
                            OfError::new(BAD_INSTRUCTION, BIC_BAD_TABLE_ID)
                        }
                    };
                    if i < self.conns.len() {
                        self.send_error(i, e, &raw, xid);
                    }
                }
            }
        }
    }

    /// A FLOW_MOD as a change to the rules (None: one that selects nothing).
    fn flow_mod(&mut self, fm: FlowMod) -> Result<Option<FlowChange>, OfError> {
        let fail = |c| OfError::new(FLOW_MOD_FAILED, c);
        if fm.buffer_id != NO_BUFFER
            && matches!(fm.command, FLOW_ADD | FLOW_MODIFY | FLOW_MODIFY_STRICT)
        {
            return Err(OfError::new(BAD_REQUEST, BRC_BUFFER_UNKNOWN));
        }
        let m = mapping::match_from_of(&fm.m)?;
        let table = match fm.table_id {
            ALL_TABLES if matches!(fm.command, FLOW_DELETE | FLOW_DELETE_STRICT) => None,
            t if t <= MAX_TABLE => Some(t),
            _ => return Err(fail(FMFC_BAD_TABLE_ID)),
        };
        let change = match fm.command {
            FLOW_ADD => {
                let table = table.expect("checked above");
                let actions = mapping::instructions_from_of(&fm.instructions, table)?;
                FlowChange::Add {
                    rule: Rule {
                        table,
                        priority: fm.priority,
                        cookie: fm.cookie,
                        idle_timeout: fm.idle_timeout,
                        hard_timeout: fm.hard_timeout,
                        m,
                        actions,
                    },
                    check_overlap: fm.flags & FF_CHECK_OVERLAP != 0,
                    notify: fm.flags & FF_SEND_FLOW_REM != 0,
                }
            }
            FLOW_MODIFY | FLOW_MODIFY_STRICT => {
                let Some(t) = table else {
                    return Err(fail(FMFC_BAD_TABLE_ID));
                };
                FlowChange::Modify {
                    filter: Filter {
                        table: Some(t),
                        priority: Some(fm.priority),
                        cookie: (fm.cookie, fm.cookie_mask),
                        m,
                        out_port: None,
                    },
                    actions: mapping::instructions_from_of(&fm.instructions, t)?,
                    strict: fm.command == FLOW_MODIFY_STRICT,
                    reset_counts: fm.flags & FF_RESET_COUNTS != 0,
                }
            }
            FLOW_DELETE | FLOW_DELETE_STRICT => {
                if fm.out_group != 0xffff_ffff {
                    // No groups: no rule outputs to one.
                    return Ok(None);
                }
                FlowChange::Delete {
                    filter: Filter {
                        table,
                        priority: Some(fm.priority),
                        cookie: (fm.cookie, fm.cookie_mask),
                        m,
                        out_port: mapping::out_port_from_of(fm.out_port)?,
                    },
                    strict: fm.command == FLOW_DELETE_STRICT,
                }
            }
            _ => return Err(fail(FMFC_BAD_COMMAND)),
        };
        Ok(Some(change))
    }

    fn packet_out(&mut self, po: PacketOut) -> Result<(), OfError> {
        // Output to TABLE must meet the rules sent before it.
        self.sync_rules();
        if po.buffer_id != NO_BUFFER {
            return Err(OfError::new(BAD_REQUEST, BRC_BUFFER_UNKNOWN));
        }
        let in_port = match po.in_port {
            ofp::CONTROLLER | ofp::ANY => None,
            p if p <= ofp::MAX => {
                Some(u16::try_from(p).map_err(|_| OfError::new(BAD_REQUEST, BRC_BAD_PORT))?)
            }
            _ => return Err(OfError::new(BAD_REQUEST, BRC_BAD_PORT)),
        };
        let actions = mapping::actions_from_of(&po.actions, Context::PacketOut)?;
        if po.data.len() < 14 {
            return Err(OfError::new(BAD_REQUEST, BRC_BAD_PACKET));
        }
        let Some(mut m) = self.cache.alloc() else {
            return Err(OfError::new(BAD_REQUEST, BRC_EPERM));
        };
        if po.data.len() > m.capacity() {
            self.cache.free(m);
            return Err(OfError::new(BAD_REQUEST, BRC_BAD_PACKET));
        }
        m.fill(&po.data);
        match self.bridge.datapath.packet_out(FromController {
            m,
            in_port,
            actions,
        }) {
            Ok(()) => self.counters.packet_outs += 1,
            // The PMD is behind: dropped, as a busy switch drops.
            Err(p) => self.cache.free(p.m),
        }
        Ok(())
    }

    fn multipart(&mut self, body: MultipartRequest) -> Result<MultipartReply, OfError> {
        Ok(match body {
            MultipartRequest::Desc => MultipartReply::Desc(Desc {
                mfr: "ferrovs".into(),
                hw: "ferrovsd".into(),
                sw: env!("CARGO_PKG_VERSION").into(),
                serial: "None".into(),
                dp: self.bridge.name.clone(),
            }),
            MultipartRequest::Flow(req) => MultipartReply::Flow(
                self.select(&req)?
                    .into_iter()
                    .map(|v| FlowStats {
                        table_id: v.rule.table,
                        duration_sec: v.age.as_secs() as u32,
                        duration_nsec: v.age.subsec_nanos(),
                        priority: v.rule.priority,
                        idle_timeout: v.rule.idle_timeout,
                        hard_timeout: v.rule.hard_timeout,
                        flags: 0,
                        cookie: v.rule.cookie,
                        packet_count: v.packets,
                        byte_count: v.bytes,
                        m: mapping::match_to_of(&v.rule.m),
                        instructions: mapping::instructions_to_of(&v.rule.actions),
                    })
                    .collect(),
            ),
            MultipartRequest::Aggregate(req) => {
                let v = self.select(&req)?;
                MultipartReply::Aggregate {
                    packet_count: v.iter().map(|r| r.packets).sum(),
                    byte_count: v.iter().map(|r| r.bytes).sum(),
                    flow_count: v.len() as u32,
                }
            }
            MultipartRequest::Table => {
                let per = self.bridge.rules_per_table();
                let matched = self.bridge.rules(&Filter::ALL);
                MultipartReply::Table(
                    (0..N_TABLES)
                        .map(|t| {
                            let hits: u64 = matched
                                .iter()
                                .filter(|r| r.rule.table == t)
                                .map(|r| r.packets)
                                .sum();
                            TableStats {
                                table_id: t,
                                active_count: per
                                    .iter()
                                    .find(|p| p.0 == t)
                                    .map_or(0, |p| p.1 as u32),
                                lookup_count: hits,
                                matched_count: hits,
                            }
                        })
                        .collect(),
                )
            }
            MultipartRequest::PortStats { port_no } => {
                MultipartReply::PortStats(port_stats(&self.bridge, port_no)?)
            }
            MultipartRequest::PortDesc => MultipartReply::PortDesc(port_descs(&self.bridge)),
            MultipartRequest::TableFeatures(set) if set.is_empty() => {
                MultipartReply::TableFeatures(table_features())
            }
            MultipartRequest::TableFeatures(_) => {
                return Err(OfError::new(TABLE_FEATURES_FAILED, TFFC_EPERM))
            }
            MultipartRequest::Queue { .. } => MultipartReply::Empty(mp::QUEUE),
            MultipartRequest::Group { .. } => MultipartReply::Empty(mp::GROUP),
            MultipartRequest::GroupDesc => MultipartReply::Empty(mp::GROUP_DESC),
            MultipartRequest::Meter { .. } => MultipartReply::Empty(mp::METER),
            MultipartRequest::MeterConfig { .. } => MultipartReply::Empty(mp::METER_CONFIG),
            MultipartRequest::GroupFeatures => MultipartReply::NoFeatures(mp::GROUP_FEATURES),
            MultipartRequest::MeterFeatures => MultipartReply::NoFeatures(mp::METER_FEATURES),
            MultipartRequest::Experimenter => {
                return Err(OfError::new(BAD_REQUEST, BRC_BAD_EXPERIMENTER))
            }
        })
    }

    /// The rules a FLOW or AGGREGATE request selects, table then priority order.
    fn select(
        &self,
        req: &mp::FlowStatsRequest,
    ) -> Result<Vec<crate::bridge::flow_mods::RuleView>, OfError> {
        if req.out_group != 0xffff_ffff {
            return Ok(Vec::new());
        }
        let filter = Filter {
            table: match req.table_id {
                ALL_TABLES => None,
                t if t <= MAX_TABLE => Some(t),
                _ => return Err(OfError::new(BAD_REQUEST, BRC_BAD_TABLE_ID)),
            },
            priority: None,
            cookie: (req.cookie, req.cookie_mask),
            m: mapping::match_from_of(&req.m)?,
            out_port: mapping::out_port_from_of(req.out_port)?,
        };
        let mut v = self.bridge.rules(&filter);
        v.sort_by(|a, b| {
            a.rule
                .table
                .cmp(&b.rule.table)
                .then(b.rule.priority.cmp(&a.rule.priority))
        });
        Ok(v)
    }
}

/// Every port as OpenFlow describes it (10G copper, as OVS shows virtual ports).
pub fn port_descs(bridge: &Bridge) -> Vec<PortDesc> {
    let admins = bridge.port_admins();
    bridge
        .ports()
        .iter()
        .map(|(_, sp)| {
            let admin = admins.get(&sp.no).copied().unwrap_or_default();
            let up = sp.port.link_up() && !admin.down;
            PortDesc {
                port_no: mapping::port_to_of(sp.no),
                hw_addr: sp.port.mac().unwrap_or([0; 6]),
                name: sp.name.clone(),
                config: mapping::port_admin_to_of(&admin),
                state: if up { ofp::PS_LIVE } else { ofp::PS_LINK_DOWN },
                curr: ofp::PF_10GB_FD | ofp::PF_COPPER,
                advertised: 0,
                supported: 0,
                peer: 0,
                curr_speed: 10_000_000,
                max_speed: 0,
            }
        })
        .collect()
}

fn port_stats(bridge: &Bridge, port_no: u32) -> Result<Vec<PortStats>, OfError> {
    let all = bridge.ports();
    if port_no != ofp::ANY
        && !all
            .iter()
            .any(|(_, sp)| mapping::port_to_of(sp.no) == port_no)
    {
        return Err(OfError::new(BAD_REQUEST, BRC_BAD_PORT));
    }
    Ok(all
        .iter()
        .filter(|(_, sp)| port_no == ofp::ANY || mapping::port_to_of(sp.no) == port_no)
        .map(|(_, sp)| {
            let p = &sp.port;
            p.refresh_stats();
            let sum = |stats: &dyn Fn(usize) -> pmd::port::QueueCounters, n: usize| {
                (0..n).map(stats).fold((0, 0, 0), |a, q| {
                    (a.0 + q.packets, a.1 + q.bytes, a.2 + q.total_drops())
                })
            };
            let rx = sum(&|q| p.rxq_stats(q).snapshot(), p.n_rxq());
            let tx = sum(&|q| p.txq_stats(q).snapshot(), p.n_txq());
            let switch_drops: u64 = sp.drops.read().iter().map(|(_, n)| *n).sum();
            PortStats {
                port_no: mapping::port_to_of(sp.no),
                rx_packets: rx.0,
                tx_packets: tx.0,
                rx_bytes: rx.1,
                tx_bytes: tx.1,
                rx_dropped: rx.2 + switch_drops,
                tx_dropped: tx.2,
                rx_errors: 0,
                tx_errors: 0,
                duration_sec: 0,
                duration_nsec: 0,
            }
        })
        .collect())
}

/// PORT_MOD: down, no-receive, no-forward, no-packet-in (the change reaches
/// the controllers as a PORT_STATUS with the next port scan).
fn port_mod(bridge: &Bridge, pm: PortMod) -> Result<(), OfError> {
    let ports = bridge.ports();
    let Some((_, sp)) = ports
        .iter()
        .find(|(_, sp)| mapping::port_to_of(sp.no) == pm.port_no)
    else {
        return Err(OfError::new(PORT_MOD_FAILED, PMFC_BAD_PORT));
    };
    if let Some(mac) = sp.port.mac() {
        if mac != pm.hw_addr {
            return Err(OfError::new(PORT_MOD_FAILED, PMFC_BAD_HW_ADDR));
        }
    }
    if pm.mask & !mapping::PORT_CONFIG_BITS != 0 {
        return Err(OfError::new(PORT_MOD_FAILED, PMFC_BAD_CONFIG));
    }
    bridge
        .set_port_admin(sp.no, |a| mapping::apply_port_config(a, pm.config, pm.mask))
        .map_err(|_| OfError::new(PORT_MOD_FAILED, PMFC_BAD_PORT))?;
    Ok(())
}

/// What every table can do; `ovs-ofctl` insists on the eight properties
/// (instructions, next tables, write/apply actions, match, wildcards,
/// write/apply set-field), empty ones included.
fn table_features() -> Vec<TableFeatures> {
    use openflow::action as a;
    let fields = [
        oxm::IN_PORT,
        oxm::ETH_DST,
        oxm::ETH_SRC,
        oxm::ETH_TYPE,
        oxm::VLAN_VID,
        oxm::VLAN_PCP,
        oxm::IP_PROTO,
        oxm::IPV4_SRC,
        oxm::IPV4_DST,
        oxm::TCP_SRC,
        oxm::TCP_DST,
        oxm::UDP_SRC,
        oxm::UDP_DST,
        oxm::ICMPV4_TYPE,
        oxm::ICMPV4_CODE,
        oxm::ARP_OP,
        oxm::ARP_SPA,
        oxm::ARP_TPA,
    ];
    let headers: Vec<u32> = fields.iter().map(|f| Oxm::header(*f, false)).collect();
    let settable: Vec<u32> = [oxm::VLAN_VID, oxm::VLAN_PCP, oxm::ETH_SRC, oxm::ETH_DST]
        .iter()
        .map(|f| Oxm::header(*f, false))
        .collect();
    let actions = mp::type_ids(&[a::OUTPUT, a::PUSH_VLAN, a::POP_VLAN, a::SET_FIELD]);
    (0..N_TABLES)
        .map(|t| {
            let next: Vec<u8> = (t + 1..N_TABLES).collect();
            let ins = if t + 1 < N_TABLES {
                mp::type_ids(&[a::APPLY_ACTIONS, a::CLEAR_ACTIONS, a::GOTO_TABLE])
            } else {
                mp::type_ids(&[a::APPLY_ACTIONS, a::CLEAR_ACTIONS])
            };
            TableFeatures {
                table_id: t,
                name: format!("table{t}"),
                metadata_match: 0,
                metadata_write: 0,
                config: 0,
                max_entries: crate::flow::table::MAX_RULES as u32,
                properties: vec![
                    (mp::TFPT_INSTRUCTIONS, ins),
                    (mp::TFPT_NEXT_TABLES, next),
                    (mp::TFPT_WRITE_ACTIONS, Vec::new()),
                    (mp::TFPT_APPLY_ACTIONS, actions.clone()),
                    (mp::TFPT_MATCH, mp::oxm_ids(&headers)),
                    (mp::TFPT_WILDCARDS, mp::oxm_ids(&headers)),
                    (mp::TFPT_WRITE_SETFIELD, Vec::new()),
                    (mp::TFPT_APPLY_SETFIELD, mp::oxm_ids(&settable)),
                ],
            }
        })
        .collect()
}
