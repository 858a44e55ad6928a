//! OpenFlow 1.3 words ↔ the flow table's: OXM matches to [`Match`] and
//! back, instructions and actions to [`Action`] lists and back. What the
//! table cannot express is refused with the OFPT_ERROR OpenFlow names for it.
//!
//! Port numbers are ferrovs port numbers (16 bits, never reused); OpenFlow's
//! reserved ports map to the table's actions (IN_PORT, NORMAL, FLOOD, ALL,
//! CONTROLLER; TABLE only in packet-outs).

use crate::datapath::port_admin::PortAdmin;
use crate::flow::key::{
    Field, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_VLAN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP,
};
use crate::flow::rule::{Action, Match};
use openflow::action::{Action as OfAction, Instruction};
use openflow::error::*;
use openflow::oxm::{self, OfMatch, Oxm};
use openflow::port as ofp;

fn bad_match(code: u16) -> OfError {
    OfError::new(BAD_MATCH, code)
}

/// The OXM value and mask as the table's field bits (None mask: exact).
fn vm(o: &Oxm, bits: u32) -> (u64, u64) {
    let ones = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let m = o.mask.map_or(ones, |m| m as u64 & ones);
    ((o.value as u64) & m, m)
}

/// An OpenFlow match as the table's, with OpenFlow's prerequisites checked.
pub fn match_from_of(m: &OfMatch) -> Result<Match, OfError> {
    let mut out = Match::ANY;
    let exact = |f: u8| {
        m.get(f)
            .filter(|o| o.mask.is_none())
            .map(|o| o.value as u64)
    };
    let eth_type = exact(oxm::ETH_TYPE);
    let proto = exact(oxm::IP_PROTO);
    let need = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(bad_match(BMC_BAD_PREREQ))
        }
    };
    for o in &m.0 {
        match o.field {
            oxm::IN_PORT => {
                if o.mask.is_some() {
                    return Err(bad_match(BMC_BAD_MASK));
                }
                let p = port_no(o.value).ok_or(bad_match(BMC_BAD_VALUE))?;
                out.set(Field::IN_PORT, p as u64, 0xffff);
            }
            oxm::ETH_DST | oxm::ETH_SRC => {
                let (v, mk) = vm(o, 48);
                let f = if o.field == oxm::ETH_DST {
                    Field::DL_DST
                } else {
                    Field::DL_SRC
                };
                out.set(f, v, mk);
            }
            oxm::ETH_TYPE => out.set(Field::DL_TYPE, o.value as u64 & 0xffff, 0xffff),
            oxm::VLAN_VID => {
                // OFPVID_PRESENT is the TCI's CFI bit in the table's key; a
                // VLAN_PCP already set keeps its bits.
                let (v, mk) = vm(o, 13);
                let (cur_v, cur_m) = out.get(Field::VLAN_TCI);
                out.set(Field::VLAN_TCI, (cur_v & 0xe000) | v, (cur_m & 0xe000) | mk);
            }
            oxm::VLAN_PCP => {
                let vid = m.get(oxm::VLAN_VID);
                need(vid.is_some_and(|v| v.value as u16 & oxm::VID_PRESENT != 0))?;
                let (cur_v, cur_m) = out.get(Field::VLAN_TCI);
                let pcp = (o.value as u64 & 7) << 13;
                out.set(Field::VLAN_TCI, cur_v | pcp, cur_m | 0xe000);
            }
            oxm::IP_PROTO => {
                need(eth_type == Some(ETH_TYPE_IP as u64))?;
                out.set(Field::NW_PROTO, o.value as u64 & 0xff, 0xff);
            }
            oxm::IPV4_SRC | oxm::IPV4_DST => {
                need(eth_type == Some(ETH_TYPE_IP as u64))?;
                let (v, mk) = vm(o, 32);
                let f = if o.field == oxm::IPV4_SRC {
                    Field::NW_SRC
                } else {
                    Field::NW_DST
                };
                out.set(f, v, mk);
            }
            oxm::TCP_SRC | oxm::TCP_DST | oxm::UDP_SRC | oxm::UDP_DST => {
                let want = if o.field <= oxm::TCP_DST {
                    IPPROTO_TCP
                } else {
                    IPPROTO_UDP
                };
                need(eth_type == Some(ETH_TYPE_IP as u64) && proto == Some(want as u64))?;
                let (v, mk) = vm(o, 16);
                let f = if matches!(o.field, oxm::TCP_SRC | oxm::UDP_SRC) {
                    Field::TP_SRC
                } else {
                    Field::TP_DST
                };
                out.set(f, v, mk);
            }
            oxm::ICMPV4_TYPE | oxm::ICMPV4_CODE => {
                need(eth_type == Some(ETH_TYPE_IP as u64) && proto == Some(IPPROTO_ICMP as u64))?;
                let f = if o.field == oxm::ICMPV4_TYPE {
                    Field::TP_SRC
                } else {
                    Field::TP_DST
                };
                out.set(f, o.value as u64 & 0xff, 0xffff);
            }
            oxm::ARP_OP => {
                need(eth_type == Some(ETH_TYPE_ARP as u64))?;
                let op = u8::try_from(o.value).map_err(|_| bad_match(BMC_BAD_VALUE))?;
                out.set(Field::NW_PROTO, op as u64, 0xff);
            }
            oxm::ARP_SPA | oxm::ARP_TPA => {
                need(eth_type == Some(ETH_TYPE_ARP as u64))?;
                let (v, mk) = vm(o, 32);
                let f = if o.field == oxm::ARP_SPA {
                    Field::NW_SRC
                } else {
                    Field::NW_DST
                };
                out.set(f, v, mk);
            }
            _ => return Err(bad_match(BMC_BAD_FIELD)),
        }
    }
    Ok(out)
}

fn put(v: &mut Vec<Oxm>, field: u8, value: u64, mask: u64, full: u64) {
    if mask == 0 {
        return;
    }
    v.push(Oxm {
        field,
        value: value as u128,
        mask: (mask != full).then_some(mask as u128),
    });
}

/// The table's match in OpenFlow words (ARP and ICMP fields by their own names).
pub fn match_to_of(m: &Match) -> OfMatch {
    let g = |f: Field| m.get(f);
    let mut v = Vec::new();
    let (p, pm) = g(Field::IN_PORT);
    put(&mut v, oxm::IN_PORT, p, pm, 0xffff);
    let (d, dm) = g(Field::DL_DST);
    put(&mut v, oxm::ETH_DST, d, dm, 0xffff_ffff_ffff);
    let (s, sm) = g(Field::DL_SRC);
    put(&mut v, oxm::ETH_SRC, s, sm, 0xffff_ffff_ffff);
    let (t, tm) = g(Field::DL_TYPE);
    put(&mut v, oxm::ETH_TYPE, t, tm, 0xffff);
    let (tci, tcim) = g(Field::VLAN_TCI);
    put(&mut v, oxm::VLAN_VID, tci & 0x1fff, tcim & 0x1fff, 0x1fff);
    if tcim & 0xe000 == 0xe000 {
        put(&mut v, oxm::VLAN_PCP, tci >> 13, 0xff, 0xff);
    }
    let is = |ty: u16| tm == 0xffff && t == ty as u64;
    let (np, npm) = g(Field::NW_PROTO);
    let (src, srcm) = g(Field::NW_SRC);
    let (dst, dstm) = g(Field::NW_DST);
    let (ts, tsm) = g(Field::TP_SRC);
    let (td, tdm) = g(Field::TP_DST);
    if is(ETH_TYPE_ARP) {
        put(&mut v, oxm::ARP_OP, np, npm, 0xff);
        put(&mut v, oxm::ARP_SPA, src, srcm, 0xffff_ffff);
        put(&mut v, oxm::ARP_TPA, dst, dstm, 0xffff_ffff);
    } else {
        put(&mut v, oxm::IP_PROTO, np, npm, 0xff);
        put(&mut v, oxm::IPV4_SRC, src, srcm, 0xffff_ffff);
        put(&mut v, oxm::IPV4_DST, dst, dstm, 0xffff_ffff);
        let (fs, fd, full) = match np as u8 {
            IPPROTO_TCP => (oxm::TCP_SRC, oxm::TCP_DST, 0xffff),
            IPPROTO_UDP => (oxm::UDP_SRC, oxm::UDP_DST, 0xffff),
            IPPROTO_ICMP => (oxm::ICMPV4_TYPE, oxm::ICMPV4_CODE, 0xffff),
            _ => (oxm::TCP_SRC, oxm::TCP_DST, 0xffff),
        };
        put(&mut v, fs, ts, tsm, full);
        put(&mut v, fd, td, tdm, full);
    }
    OfMatch(v)
}

fn bad_action(code: u16) -> OfError {
    OfError::new(BAD_ACTION, code)
}

/// Where an action list runs: a rule of a table, or a packet-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    Table(u8),
    PacketOut,
}

/// One OpenFlow action as the table's.
pub fn action_from_of(a: &OfAction, ctx: Context) -> Result<Action, OfError> {
    Ok(match a {
        OfAction::Output { port, max_len } => match *port {
            ofp::IN_PORT => Action::InPort,
            ofp::NORMAL => Action::Normal,
            ofp::FLOOD => Action::Flood,
            ofp::ALL => Action::All,
            ofp::CONTROLLER => Action::Controller { max_len: *max_len },
            ofp::TABLE if ctx == Context::PacketOut => Action::Resubmit(0),
            p if p <= ofp::MAX => {
                Action::Output(port_no(p as u128).ok_or(bad_action(BAC_BAD_OUT_PORT))?)
            }
            _ => return Err(bad_action(BAC_BAD_OUT_PORT)),
        },
        OfAction::PushVlan(t) if *t == ETH_TYPE_VLAN => Action::PushVlan(*t),
        OfAction::PushVlan(_) => return Err(bad_action(BAC_BAD_ARGUMENT)),
        OfAction::PopVlan => Action::StripVlan,
        OfAction::SetField(o) => match o.field {
            oxm::VLAN_VID => Action::ModVlanVid(o.value as u16 & 0x0fff),
            oxm::VLAN_PCP => Action::ModVlanPcp(o.value as u8 & 7),
            oxm::ETH_SRC | oxm::ETH_DST => {
                let b = (o.value as u64).to_be_bytes();
                let mac = [b[2], b[3], b[4], b[5], b[6], b[7]];
                if o.field == oxm::ETH_SRC {
                    Action::ModDlSrc(mac)
                } else {
                    Action::ModDlDst(mac)
                }
            }
            _ => return Err(bad_action(BAC_BAD_SET_TYPE)),
        },
        OfAction::Group(_) => return Err(bad_action(BAC_BAD_OUT_GROUP)),
        _ => return Err(bad_action(BAC_BAD_TYPE)),
    })
}

/// Ferrovs port numbers go up to 0xfeff (the flow syntax's range; above it
/// are OpenFlow 1.0's reserved numbers, which rules must not alias).
fn port_no(v: u128) -> Option<u16> {
    u16::try_from(v).ok().filter(|p| *p <= 0xfeff)
}

/// Actions one rule may hold: bounded so a rule's FLOW stats entry fits in
/// one message (a flood to every port of a big bridge is well within).
pub const MAX_ACTIONS: usize = 1024;

pub fn actions_from_of(v: &[OfAction], ctx: Context) -> Result<Vec<Action>, OfError> {
    if v.len() > MAX_ACTIONS {
        return Err(bad_action(BAC_TOO_MANY));
    }
    v.iter().map(|a| action_from_of(a, ctx)).collect()
}

/// A FLOW_MOD's instructions as one action list: apply-actions in order,
/// then goto_table (which must go forward). Write-actions, metadata and
/// meters have no counterpart in the table and are refused.
pub fn instructions_from_of(ins: &[Instruction], table: u8) -> Result<Vec<Action>, OfError> {
    let bad = |c| OfError::new(BAD_INSTRUCTION, c);
    let mut actions = Vec::new();
    let mut goto = None;
    for i in ins {
        match i {
            Instruction::ApplyActions(a) => {
                actions.extend(actions_from_of(a, Context::Table(table))?)
            }
            Instruction::GotoTable(t) => {
                if *t <= table || *t > crate::flow::rule::MAX_TABLE {
                    return Err(bad(BIC_BAD_TABLE_ID));
                }
                goto = Some(*t);
            }
            // No action set: clearing it is a no-op.
            Instruction::ClearActions => {}
            Instruction::WriteActions(a) if a.is_empty() => {}
            Instruction::WriteMetadata { .. } => return Err(bad(BIC_UNSUP_METADATA)),
            _ => return Err(bad(BIC_UNSUP_INST)),
        }
    }
    if actions.len() > MAX_ACTIONS {
        return Err(bad_action(BAC_TOO_MANY));
    }
    actions.extend(goto.map(Action::GotoTable));
    Ok(actions)
}

fn out(port: u32) -> OfAction {
    OfAction::Output { port, max_len: 0 }
}

/// The table's actions as OpenFlow instructions (FLOW stats replies).
pub fn instructions_to_of(actions: &[Action]) -> Vec<Instruction> {
    let mut apply = Vec::new();
    let mut goto = None;
    for a in actions {
        match a {
            Action::Output(p) => apply.push(out(*p as u32)),
            Action::InPort => apply.push(out(ofp::IN_PORT)),
            Action::Normal => apply.push(out(ofp::NORMAL)),
            Action::Flood => apply.push(out(ofp::FLOOD)),
            Action::All => apply.push(out(ofp::ALL)),
            Action::Controller { max_len } => apply.push(OfAction::Output {
                port: ofp::CONTROLLER,
                max_len: *max_len,
            }),
            Action::ModVlanVid(v) => apply.push(OfAction::SetField(Oxm::exact(
                oxm::VLAN_VID,
                (oxm::VID_PRESENT | v) as u128,
            ))),
            Action::ModVlanPcp(p) => {
                apply.push(OfAction::SetField(Oxm::exact(oxm::VLAN_PCP, *p as u128)))
            }
            Action::StripVlan => apply.push(OfAction::PopVlan),
            Action::PushVlan(t) => apply.push(OfAction::PushVlan(*t)),
            Action::ModDlSrc(m) | Action::ModDlDst(m) => {
                let f = if matches!(a, Action::ModDlSrc(_)) {
                    oxm::ETH_SRC
                } else {
                    oxm::ETH_DST
                };
                let v = m.iter().fold(0u128, |v, b| v << 8 | *b as u128);
                apply.push(OfAction::SetField(Oxm::exact(f, v)));
            }
            // OpenFlow 1.3 has no resubmit: the nearest is a goto (last).
            Action::Resubmit(t) | Action::GotoTable(t) => goto = Some(*t),
        }
    }
    let mut v = Vec::new();
    if !apply.is_empty() {
        v.push(Instruction::ApplyActions(apply));
    }
    v.extend(goto.map(Instruction::GotoTable));
    v
}

/// The OFPP number ferrovs' port `no` has (its own number).
pub fn port_to_of(no: u16) -> u32 {
    no as u32
}

/// The OFPPC_* bits PORT_MOD can set here (OpenFlow 1.3 has no NO_FLOOD).
pub const PORT_CONFIG_BITS: u32 =
    ofp::PC_PORT_DOWN | ofp::PC_NO_RECV | ofp::PC_NO_FWD | ofp::PC_NO_PACKET_IN;

/// Each PORT_MOD setting with its OFPPC_* bit.
fn port_config_fields(a: &mut PortAdmin) -> [(&mut bool, u32); 4] {
    [
        (&mut a.down, ofp::PC_PORT_DOWN),
        (&mut a.no_recv, ofp::PC_NO_RECV),
        (&mut a.no_fwd, ofp::PC_NO_FWD),
        (&mut a.no_packet_in, ofp::PC_NO_PACKET_IN),
    ]
}

pub fn port_admin_to_of(a: &PortAdmin) -> u32 {
    let mut a = *a;
    port_config_fields(&mut a)
        .iter()
        .filter(|(on, _)| **on)
        .fold(0, |bits, (_, b)| bits | b)
}

/// Sets the bits of `mask` to those of `config` (PORT_MOD).
pub fn apply_port_config(a: &mut PortAdmin, config: u32, mask: u32) {
    for (field, bit) in port_config_fields(a) {
        if mask & bit != 0 {
            *field = config & bit != 0;
        }
    }
}

/// A filter's `out_port`: ANY for none; a reserved port selects nothing we
/// can name, so it is refused.
pub fn out_port_from_of(p: u32) -> Result<Option<u16>, OfError> {
    match p {
        ofp::ANY => Ok(None),
        p if p <= ofp::MAX => u16::try_from(p)
            .map(Some)
            .map_err(|_| OfError::new(BAD_REQUEST, BRC_BAD_PORT)),
        _ => Err(OfError::new(BAD_REQUEST, BRC_BAD_PORT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(fields: &[Oxm]) -> OfMatch {
        OfMatch(fields.to_vec())
    }

    #[test]
    fn faucet_style_matches_map_both_ways() {
        // table 0: in_port=1, untagged (OFPVID_NONE)
        let m = match_from_of(&of(&[
            Oxm::exact(oxm::IN_PORT, 1),
            Oxm::exact(oxm::VLAN_VID, 0),
        ]))
        .unwrap();
        assert_eq!(m.get(Field::VLAN_TCI), (0, 0x1fff));
        assert_eq!(
            match_to_of(&m),
            of(&[Oxm::exact(oxm::IN_PORT, 1), Oxm::exact(oxm::VLAN_VID, 0)])
        );
        // table 3: vlan 100 and a multicast prefix
        let mc = Oxm {
            field: oxm::ETH_DST,
            value: 0x0100_5e00_0000,
            mask: Some(0xffff_ff00_0000),
        };
        let vid = Oxm::exact(oxm::VLAN_VID, 0x1064);
        let m = match_from_of(&of(&[vid, mc])).unwrap();
        let back = match_to_of(&m);
        assert_eq!(back.get(oxm::ETH_DST), Some(&mc));
        assert_eq!(back.get(oxm::VLAN_VID), Some(&vid));
        // An exact eth_dst sent with an all-ones mask comes back without one.
        let exact = Oxm {
            field: oxm::ETH_DST,
            value: 0x0200_0000_0001,
            mask: Some(0xffff_ffff_ffff),
        };
        let m = match_from_of(&of(&[exact])).unwrap();
        assert_eq!(
            match_to_of(&m),
            of(&[Oxm::exact(oxm::ETH_DST, 0x0200_0000_0001)])
        );
    }

    #[test]
    fn prerequisites_and_unknown_fields_are_refused() {
        let e = match_from_of(&of(&[Oxm::exact(oxm::TCP_DST, 80)])).unwrap_err();
        assert_eq!(e, OfError::new(BAD_MATCH, BMC_BAD_PREREQ));
        let ok = of(&[
            Oxm::exact(oxm::ETH_TYPE, 0x0800),
            Oxm::exact(oxm::IP_PROTO, 6),
            Oxm::exact(oxm::TCP_DST, 80),
        ]);
        let m = match_from_of(&ok).unwrap();
        assert_eq!(match_to_of(&m), ok);
        let e = match_from_of(&of(&[Oxm::exact(26, 1)])).unwrap_err();
        assert_eq!(e.code, BMC_BAD_FIELD, "IPv6 is not in the table's key");
        let e = match_from_of(&of(&[Oxm::exact(oxm::IN_PORT, 0x1_0000)])).unwrap_err();
        assert_eq!(e.code, BMC_BAD_VALUE);
        // VLAN_PCP before VLAN_VID keeps both.
        let m = match_from_of(&of(&[
            Oxm::exact(oxm::VLAN_PCP, 5),
            Oxm::exact(oxm::VLAN_VID, 0x1064),
        ]));
        let m = m.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(m.get(Field::VLAN_TCI), (0xb064, 0xffff));
    }

    #[test]
    fn instructions_map_to_one_action_list() {
        let ins = vec![
            Instruction::ApplyActions(vec![
                OfAction::PushVlan(0x8100),
                OfAction::SetField(Oxm::exact(oxm::VLAN_VID, 0x1064)),
                OfAction::Output {
                    port: ofp::CONTROLLER,
                    max_len: 96,
                },
            ]),
            Instruction::GotoTable(1),
        ];
        let a = instructions_from_of(&ins, 0).unwrap();
        assert_eq!(
            a,
            vec![
                Action::PushVlan(0x8100),
                Action::ModVlanVid(100),
                Action::Controller { max_len: 96 },
                Action::GotoTable(1)
            ]
        );
        assert_eq!(instructions_to_of(&a), ins);
        assert_eq!(
            instructions_from_of(&[Instruction::GotoTable(0)], 0)
                .unwrap_err()
                .code,
            BIC_BAD_TABLE_ID
        );
        assert_eq!(
            instructions_from_of(&[Instruction::ApplyActions(vec![OfAction::Group(1)])], 0)
                .unwrap_err(),
            OfError::new(BAD_ACTION, BAC_BAD_OUT_GROUP)
        );
        assert_eq!(
            action_from_of(&out(ofp::TABLE), Context::Table(0))
                .unwrap_err()
                .code,
            BAC_BAD_OUT_PORT,
            "output:TABLE only in packet-outs"
        );
        assert_eq!(
            action_from_of(&out(ofp::TABLE), Context::PacketOut).unwrap(),
            Action::Resubmit(0)
        );
    }
}
