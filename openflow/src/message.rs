//! The messages of OpenFlow 1.3 and their codec. `decode` takes exactly one
//! message's bytes (the connection frames them by the header's length).

use crate::action::{
    decode_actions, decode_instructions, encode_actions, encode_instructions, Action, Instruction,
};
use crate::error::*;
use crate::multipart::{MultipartReply, MultipartRequest, REPLY_MORE};
use crate::oxm::OfMatch;
use crate::port::PortDesc;
use crate::wire::{Put, Reader};
use crate::{HEADER_LEN, VERSION};

pub const HELLO: u8 = 0;
pub const ERROR: u8 = 1;
pub const ECHO_REQUEST: u8 = 2;
pub const ECHO_REPLY: u8 = 3;
pub const EXPERIMENTER: u8 = 4;
pub const FEATURES_REQUEST: u8 = 5;
pub const FEATURES_REPLY: u8 = 6;
pub const GET_CONFIG_REQUEST: u8 = 7;
pub const GET_CONFIG_REPLY: u8 = 8;
pub const SET_CONFIG: u8 = 9;
pub const PACKET_IN: u8 = 10;
pub const FLOW_REMOVED: u8 = 11;
pub const PORT_STATUS: u8 = 12;
pub const PACKET_OUT: u8 = 13;
pub const FLOW_MOD: u8 = 14;
pub const GROUP_MOD: u8 = 15;
pub const PORT_MOD: u8 = 16;
pub const TABLE_MOD: u8 = 17;
pub const MULTIPART_REQUEST: u8 = 18;
pub const MULTIPART_REPLY: u8 = 19;
pub const BARRIER_REQUEST: u8 = 20;
pub const BARRIER_REPLY: u8 = 21;
pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
pub const ROLE_REQUEST: u8 = 24;
pub const ROLE_REPLY: u8 = 25;
pub const GET_ASYNC_REQUEST: u8 = 26;
pub const GET_ASYNC_REPLY: u8 = 27;
pub const SET_ASYNC: u8 = 28;
pub const METER_MOD: u8 = 29;

/// Largest message: the header's length is 16 bits.
pub const MAX_LEN: usize = 0xffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads the fixed header (the connection uses it to frame messages).
    pub fn parse(b: &[u8]) -> Option<Header> {
        (b.len() >= HEADER_LEN).then(|| Header {
            version: b[0],
            kind: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

pub const FLOW_ADD: u8 = 0;
pub const FLOW_MODIFY: u8 = 1;
pub const FLOW_MODIFY_STRICT: u8 = 2;
pub const FLOW_DELETE: u8 = 3;
pub const FLOW_DELETE_STRICT: u8 = 4;

pub const FF_SEND_FLOW_REM: u16 = 1 << 0;
pub const FF_CHECK_OVERLAP: u16 = 1 << 1;
pub const FF_RESET_COUNTS: u16 = 1 << 2;
pub const FF_NO_PKT_COUNTS: u16 = 1 << 3;
pub const FF_NO_BYT_COUNTS: u16 = 1 << 4;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: u8,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub m: OfMatch,
    pub instructions: Vec<Instruction>,
}

/// OFPR_*: why a packet went to the controller.
pub const PR_NO_MATCH: u8 = 0;
pub const PR_ACTION: u8 = 1;
pub const PR_INVALID_TTL: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub m: OfMatch,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

/// OFPRR_*: why a rule went away.
pub const RR_IDLE_TIMEOUT: u8 = 0;
pub const RR_HARD_TIMEOUT: u8 = 1;
pub const RR_DELETE: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    pub reason: u8,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub m: OfMatch,
}

/// OFPPR_*: what happened to a port.
pub const PPR_ADD: u8 = 0;
pub const PPR_DELETE: u8 = 1;
pub const PPR_MODIFY: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchConfig {
    pub flags: u16,
    pub miss_send_len: u16,
}

pub const ROLE_NOCHANGE: u32 = 0;
pub const ROLE_EQUAL: u32 = 1;
pub const ROLE_MASTER: u32 = 2;
pub const ROLE_SLAVE: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    pub role: u32,
    pub generation_id: u64,
}

/// Which asynchronous messages a controller wants: [master/equal, slave]
/// bitmaps of reasons, as in OFPT_SET_ASYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncConfig {
    pub packet_in: [u32; 2],
    pub port_status: [u32; 2],
    pub flow_removed: [u32; 2],
}

impl AsyncConfig {
    /// No asynchronous message at all.
    pub const NONE: AsyncConfig = AsyncConfig {
        packet_in: [0, 0],
        port_status: [0, 0],
        flow_removed: [0, 0],
    };
}

impl Default for AsyncConfig {
    /// The spec's defaults: a master gets every packet-in reason except
    /// invalid TTL, every port status and every flow removal; a slave only
    /// port status.
    fn default() -> AsyncConfig {
        AsyncConfig {
            packet_in: [0b011, 0],
            port_status: [0b111, 0b111],
            flow_removed: [0b1111, 0],
        }
    }
}

/// Datapath capability bits of FEATURES_REPLY.
pub const CAP_FLOW_STATS: u32 = 1 << 0;
pub const CAP_TABLE_STATS: u32 = 1 << 1;
pub const CAP_PORT_STATS: u32 = 1 << 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Versions the peer supports (bit n = wire version n); from the
    /// version bitmap element, or only the header's version without one.
    Hello {
        versions: u32,
    },
    Error {
        etype: u16,
        code: u16,
        data: Vec<u8>,
    },
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    Experimenter {
        experimenter: u32,
    },
    FeaturesRequest,
    FeaturesReply {
        datapath_id: u64,
        n_buffers: u32,
        n_tables: u8,
        capabilities: u32,
    },
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus {
        reason: u8,
        desc: PortDesc,
    },
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod,
    PortMod(PortMod),
    TableMod {
        table_id: u8,
        config: u32,
    },
    MultipartRequest {
        flags: u16,
        body: MultipartRequest,
    },
    MultipartReply {
        flags: u16,
        body: MultipartReply,
    },
    BarrierRequest,
    BarrierReply,
    QueueGetConfigRequest {
        port: u32,
    },
    RoleRequest(Role),
    RoleReply(Role),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod,
}

impl Message {
    pub fn kind(&self) -> u8 {
        use Message::*;
        match self {
            Hello { .. } => HELLO,
            Error { .. } => ERROR,
            EchoRequest(_) => ECHO_REQUEST,
            EchoReply(_) => ECHO_REPLY,
            Experimenter { .. } => EXPERIMENTER,
            FeaturesRequest => FEATURES_REQUEST,
            FeaturesReply { .. } => FEATURES_REPLY,
            GetConfigRequest => GET_CONFIG_REQUEST,
            GetConfigReply(_) => GET_CONFIG_REPLY,
            SetConfig(_) => SET_CONFIG,
            PacketIn(_) => PACKET_IN,
            FlowRemoved(_) => FLOW_REMOVED,
            PortStatus { .. } => PORT_STATUS,
            PacketOut(_) => PACKET_OUT,
            FlowMod(_) => FLOW_MOD,
            GroupMod => GROUP_MOD,
            PortMod(_) => PORT_MOD,
            TableMod { .. } => TABLE_MOD,
            MultipartRequest { .. } => MULTIPART_REQUEST,
            MultipartReply { .. } => MULTIPART_REPLY,
            BarrierRequest => BARRIER_REQUEST,
            BarrierReply => BARRIER_REPLY,
            QueueGetConfigRequest { .. } => QUEUE_GET_CONFIG_REQUEST,
            RoleRequest(_) => ROLE_REQUEST,
            RoleReply(_) => ROLE_REPLY,
            GetAsyncRequest => GET_ASYNC_REQUEST,
            GetAsyncReply(_) => GET_ASYNC_REPLY,
            SetAsync(_) => SET_ASYNC,
            MeterMod => METER_MOD,
        }
    }
}

const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// Decodes one whole message. On failure, the header (when there was one)
/// comes back with the error, so the reply can carry the request's xid.
pub fn decode(b: &[u8]) -> Result<(Header, Message), (Option<Header>, OfError)> {
    let h = Header::parse(b).ok_or((None, OfError::new(BAD_REQUEST, BRC_BAD_LEN)))?;
    if h.length as usize != b.len() {
        return Err((Some(h), OfError::new(BAD_REQUEST, BRC_BAD_LEN)));
    }
    if h.version != VERSION && h.kind != HELLO {
        return Err((Some(h), OfError::new(BAD_REQUEST, BRC_BAD_VERSION)));
    }
    decode_body(&h, Reader::new(&b[HEADER_LEN..]))
        .map(|m| (h, m))
        .map_err(|e| (Some(h), e))
}

fn decode_body(h: &Header, mut r: Reader<'_>) -> Result<Message, OfError> {
    use Message as M;
    Ok(match h.kind {
        HELLO => {
            // Without a bitmap the header says "up to this version".
            let mut versions = ((2u64 << h.version.min(31)) - 1) as u32;
            // Elements: a version bitmap replaces the header's version.
            while r.remaining() >= 4 {
                let kind = r.u16()?;
                let len = r.u16()? as usize;
                if len < 4 {
                    break;
                }
                let mut e = r.sub((len - 4).min(r.remaining()))?;
                r.skip((len.next_multiple_of(8) - len).min(r.remaining()))?;
                if kind == HELLO_ELEM_VERSIONBITMAP && e.remaining() >= 4 {
                    versions = e.u32()?;
                }
            }
            M::Hello { versions }
        }
        ERROR => M::Error {
            etype: r.u16()?,
            code: r.u16()?,
            data: r.rest().to_vec(),
        },
        ECHO_REQUEST => M::EchoRequest(r.rest().to_vec()),
        ECHO_REPLY => M::EchoReply(r.rest().to_vec()),
        EXPERIMENTER => M::Experimenter {
            experimenter: r.u32()?,
        },
        FEATURES_REQUEST => M::FeaturesRequest,
        FEATURES_REPLY => {
            let datapath_id = r.u64()?;
            let n_buffers = r.u32()?;
            let n_tables = r.u8()?;
            r.skip(3)?;
            M::FeaturesReply {
                datapath_id,
                n_buffers,
                n_tables,
                capabilities: r.u32()?,
            }
        }
        GET_CONFIG_REQUEST => M::GetConfigRequest,
        GET_CONFIG_REPLY | SET_CONFIG => {
            let c = SwitchConfig {
                flags: r.u16()?,
                miss_send_len: r.u16()?,
            };
            if h.kind == SET_CONFIG {
                M::SetConfig(c)
            } else {
                M::GetConfigReply(c)
            }
        }
        PACKET_IN => {
            let buffer_id = r.u32()?;
            let total_len = r.u16()?;
            let reason = r.u8()?;
            let table_id = r.u8()?;
            let cookie = r.u64()?;
            let m = OfMatch::decode(&mut r)?;
            r.skip(2)?;
            M::PacketIn(PacketIn {
                buffer_id,
                total_len,
                reason,
                table_id,
                cookie,
                m,
                data: r.rest().to_vec(),
            })
        }
        FLOW_REMOVED => {
            let cookie = r.u64()?;
            let priority = r.u16()?;
            let reason = r.u8()?;
            let table_id = r.u8()?;
            let (duration_sec, duration_nsec) = (r.u32()?, r.u32()?);
            let (idle_timeout, hard_timeout) = (r.u16()?, r.u16()?);
            let (packet_count, byte_count) = (r.u64()?, r.u64()?);
            M::FlowRemoved(FlowRemoved {
                cookie,
                priority,
                reason,
                table_id,
                duration_sec,
                duration_nsec,
                idle_timeout,
                hard_timeout,
                packet_count,
                byte_count,
                m: OfMatch::decode(&mut r)?,
            })
        }
        PORT_STATUS => {
            let reason = r.u8()?;
            r.skip(7)?;
            M::PortStatus {
                reason,
                desc: PortDesc::decode(&mut r)?,
            }
        }
        PACKET_OUT => {
            let buffer_id = r.u32()?;
            let in_port = r.u32()?;
            let actions_len = r.u16()? as usize;
            r.skip(6)?;
            let actions = decode_actions(r.sub(actions_len)?)?;
            M::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data: r.rest().to_vec(),
            })
        }
        FLOW_MOD => {
            let cookie = r.u64()?;
            let cookie_mask = r.u64()?;
            let table_id = r.u8()?;
            let command = r.u8()?;
            let (idle_timeout, hard_timeout, priority) = (r.u16()?, r.u16()?, r.u16()?);
            let (buffer_id, out_port, out_group) = (r.u32()?, r.u32()?, r.u32()?);
            let flags = r.u16()?;
            r.skip(2)?;
            let m = OfMatch::decode(&mut r)?;
            M::FlowMod(FlowMod {
                cookie,
                cookie_mask,
                table_id,
                command,
                idle_timeout,
                hard_timeout,
                priority,
                buffer_id,
                out_port,
                out_group,
                flags,
                m,
                instructions: decode_instructions(r)?,
            })
        }
        GROUP_MOD => M::GroupMod,
        PORT_MOD => {
            let port_no = r.u32()?;
            r.skip(4)?;
            let hw_addr = r.array::<6>()?;
            r.skip(2)?;
            M::PortMod(PortMod {
                port_no,
                hw_addr,
                config: r.u32()?,
                mask: r.u32()?,
                advertise: r.u32()?,
            })
        }
        TABLE_MOD => {
            let table_id = r.u8()?;
            r.skip(3)?;
            M::TableMod {
                table_id,
                config: r.u32()?,
            }
        }
        MULTIPART_REQUEST | MULTIPART_REPLY => {
            let kind = r.u16()?;
            let flags = r.u16()?;
            r.skip(4)?;
            if h.kind == MULTIPART_REQUEST {
                M::MultipartRequest {
                    flags,
                    body: MultipartRequest::decode(kind, r)?,
                }
            } else {
                M::MultipartReply {
                    flags,
                    body: MultipartReply::decode(kind, r)?,
                }
            }
        }
        BARRIER_REQUEST => M::BarrierRequest,
        BARRIER_REPLY => M::BarrierReply,
        QUEUE_GET_CONFIG_REQUEST => M::QueueGetConfigRequest { port: r.u32()? },
        ROLE_REQUEST | ROLE_REPLY => {
            let role = r.u32()?;
            r.skip(4)?;
            let role = Role {
                role,
                generation_id: r.u64()?,
            };
            if h.kind == ROLE_REQUEST {
                M::RoleRequest(role)
            } else {
                M::RoleReply(role)
            }
        }
        GET_ASYNC_REQUEST => M::GetAsyncRequest,
        GET_ASYNC_REPLY | SET_ASYNC => {
            let mut v = [0u32; 6];
            for x in v.iter_mut() {
                *x = r.u32()?;
            }
            let c = AsyncConfig {
                packet_in: [v[0], v[1]],
                port_status: [v[2], v[3]],
                flow_removed: [v[4], v[5]],
            };
            if h.kind == SET_ASYNC {
                M::SetAsync(c)
            } else {
                M::GetAsyncReply(c)
            }
        }
        METER_MOD => M::MeterMod,
        _ => return Err(OfError::new(BAD_REQUEST, BRC_BAD_TYPE)),
    })
}

fn header(out: &mut Vec<u8>, kind: u8, xid: u32) {
    out.u8(VERSION);
    out.u8(kind);
    out.u16(0);
    out.u32(xid);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = out.len().min(MAX_LEN) as u16;
    out.set_u16(2, len);
    out
}

/// Encodes a message. A multipart reply too long for one message is split
/// into several (REPLY_MORE on all but the last), hence the list.
pub fn encode(m: &Message, xid: u32) -> Vec<Vec<u8>> {
    if let Message::MultipartReply { flags, body } = m {
        // Room for the body after the header and the multipart header.
        let parts = body.encode_parts(MAX_LEN - HEADER_LEN - 8);
        let n = parts.len();
        return parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let mut out = Vec::with_capacity(16 + p.len());
                header(&mut out, MULTIPART_REPLY, xid);
                out.u16(body.kind());
                out.u16(if i + 1 < n {
                    flags | REPLY_MORE
                } else {
                    *flags
                });
                out.pad(4);
                out.extend_from_slice(&p);
                finish(out)
            })
            .collect();
    }
    let mut out = Vec::with_capacity(64);
    header(&mut out, m.kind(), xid);
    encode_body(m, &mut out);
    vec![finish(out)]
}

fn encode_body(m: &Message, out: &mut Vec<u8>) {
    use Message as M;
    match m {
        M::Hello { versions } => {
            out.u16(HELLO_ELEM_VERSIONBITMAP);
            out.u16(8);
            out.u32(*versions);
        }
        M::Error { etype, code, data } => {
            out.u16(*etype);
            out.u16(*code);
            out.extend_from_slice(&data[..data.len().min(MAX_LEN - HEADER_LEN - 4)]);
        }
        M::EchoRequest(d) | M::EchoReply(d) => {
            out.extend_from_slice(&d[..d.len().min(MAX_LEN - HEADER_LEN)])
        }
        M::Experimenter { experimenter } => {
            out.u32(*experimenter);
            out.u32(0);
        }
        M::FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            capabilities,
        } => {
            out.u64(*datapath_id);
            out.u32(*n_buffers);
            out.u8(*n_tables);
            out.u8(0); // auxiliary_id: the main connection
            out.pad(2);
            out.u32(*capabilities);
            out.u32(0);
        }
        M::GetConfigReply(c) | M::SetConfig(c) => {
            out.u16(c.flags);
            out.u16(c.miss_send_len);
        }
        M::PacketIn(p) => {
            out.u32(p.buffer_id);
            out.u16(p.total_len);
            out.u8(p.reason);
            out.u8(p.table_id);
            out.u64(p.cookie);
            p.m.encode(out);
            out.pad(2);
            let room = MAX_LEN.saturating_sub(out.len());
            out.extend_from_slice(&p.data[..p.data.len().min(room)]);
        }
        M::FlowRemoved(f) => {
            out.u64(f.cookie);
            out.u16(f.priority);
            out.u8(f.reason);
            out.u8(f.table_id);
            out.u32(f.duration_sec);
            out.u32(f.duration_nsec);
            out.u16(f.idle_timeout);
            out.u16(f.hard_timeout);
            out.u64(f.packet_count);
            out.u64(f.byte_count);
            f.m.encode(out);
        }
        M::PortStatus { reason, desc } => {
            out.u8(*reason);
            out.pad(7);
            desc.encode(out);
        }
        M::PacketOut(p) => {
            out.u32(p.buffer_id);
            out.u32(p.in_port);
            let at = out.len();
            out.u16(0);
            out.pad(6);
            let start = out.len();
            encode_actions(&p.actions, out);
            let n = out.len() - start;
            out.set_u16(at, n as u16);
            out.extend_from_slice(&p.data);
        }
        M::FlowMod(f) => {
            out.u64(f.cookie);
            out.u64(f.cookie_mask);
            out.u8(f.table_id);
            out.u8(f.command);
            out.u16(f.idle_timeout);
            out.u16(f.hard_timeout);
            out.u16(f.priority);
            out.u32(f.buffer_id);
            out.u32(f.out_port);
            out.u32(f.out_group);
            out.u16(f.flags);
            out.pad(2);
            f.m.encode(out);
            encode_instructions(&f.instructions, out);
        }
        M::PortMod(p) => {
            out.u32(p.port_no);
            out.pad(4);
            out.extend_from_slice(&p.hw_addr);
            out.pad(2);
            out.u32(p.config);
            out.u32(p.mask);
            out.u32(p.advertise);
            out.pad(4);
        }
        M::TableMod { table_id, config } => {
            out.u8(*table_id);
            out.pad(3);
            out.u32(*config);
        }
        M::MultipartRequest { flags, body } => {
            out.u16(body.kind());
            out.u16(*flags);
            out.pad(4);
            body.encode(out);
        }
        M::QueueGetConfigRequest { port } => {
            out.u32(*port);
            out.pad(4);
        }
        M::RoleRequest(r) | M::RoleReply(r) => {
            out.u32(r.role);
            out.pad(4);
            out.u64(r.generation_id);
        }
        M::GetAsyncReply(c) | M::SetAsync(c) => {
            for v in [c.packet_in, c.port_status, c.flow_removed] {
                out.u32(v[0]);
                out.u32(v[1]);
            }
        }
        M::FeaturesRequest
        | M::GetConfigRequest
        | M::GroupMod
        | M::BarrierRequest
        | M::BarrierReply
        | M::GetAsyncRequest
        | M::MeterMod
        | M::MultipartReply { .. } => {}
    }
}

/// An OFPT_ERROR answering `request`, which it carries whole (the spec
/// asks for at least 64 bytes; whole, `ovs-ofctl` can decode and show it).
pub fn error_reply(e: OfError, request: &[u8]) -> Message {
    Message::Error {
        etype: e.etype,
        code: e.code,
        data: request[..request.len().min(MAX_LEN - HEADER_LEN - 4)].to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::multipart::{self, FlowStatsRequest, MultipartReply as R, TableStats};
    use crate::oxm::{Oxm, ETH_TYPE, IN_PORT};

    fn round_trip(m: Message) {
        let bytes = encode(&m, 77);
        assert_eq!(bytes.len(), 1);
        let (h, back) = decode(&bytes[0]).unwrap_or_else(|e| panic!("{m:?}: {e:?}"));
        assert_eq!((h.xid, h.kind, h.version), (77, m.kind(), VERSION));
        assert_eq!(back, m);
    }

    #[test]
    fn messages_round_trip() {
        let m = OfMatch(vec![Oxm::exact(IN_PORT, 1), Oxm::exact(ETH_TYPE, 0x0806)]);
        for msg in [
            Message::Hello { versions: 1 << 4 },
            Message::EchoRequest(b"ping".to_vec()),
            Message::FeaturesRequest,
            Message::FeaturesReply {
                datapath_id: 0x1,
                n_buffers: 0,
                n_tables: 254,
                capabilities: CAP_FLOW_STATS | CAP_TABLE_STATS | CAP_PORT_STATS,
            },
            Message::SetConfig(SwitchConfig {
                flags: 0,
                miss_send_len: 0xffff,
            }),
            Message::FlowMod(FlowMod {
                cookie: 5,
                cookie_mask: 0,
                table_id: 1,
                command: FLOW_ADD,
                idle_timeout: 10,
                hard_timeout: 0,
                priority: 100,
                buffer_id: crate::NO_BUFFER,
                out_port: crate::port::ANY,
                out_group: 0xffff_ffff,
                flags: FF_SEND_FLOW_REM,
                m: m.clone(),
                instructions: vec![
                    Instruction::ApplyActions(vec![Action::Output {
                        port: 2,
                        max_len: 0,
                    }]),
                    Instruction::GotoTable(2),
                ],
            }),
            Message::PacketIn(PacketIn {
                buffer_id: crate::NO_BUFFER,
                total_len: 60,
                reason: PR_ACTION,
                table_id: 3,
                cookie: 9,
                m: OfMatch(vec![Oxm::exact(IN_PORT, 4)]),
                data: vec![0xab; 60],
            }),
            Message::PacketOut(PacketOut {
                buffer_id: crate::NO_BUFFER,
                in_port: crate::port::CONTROLLER,
                actions: vec![Action::Output {
                    port: crate::port::TABLE,
                    max_len: 0,
                }],
                data: vec![1; 64],
            }),
            Message::PortStatus {
                reason: PPR_ADD,
                desc: PortDesc {
                    port_no: 3,
                    name: "vm3".into(),
                    ..PortDesc::default()
                },
            },
            Message::MultipartRequest {
                flags: 0,
                body: MultipartRequest::Flow(FlowStatsRequest {
                    table_id: 0xff,
                    out_port: crate::port::ANY,
                    out_group: 0xffff_ffff,
                    cookie: 0,
                    cookie_mask: 0,
                    m: m.clone(),
                }),
            },
            Message::MultipartReply {
                flags: 0,
                body: R::Table(vec![TableStats {
                    table_id: 0,
                    active_count: 3,
                    lookup_count: 10,
                    matched_count: 7,
                }]),
            },
            Message::RoleRequest(Role {
                role: ROLE_MASTER,
                generation_id: 3,
            }),
            Message::SetAsync(AsyncConfig::default()),
            Message::BarrierRequest,
        ] {
            round_trip(msg);
        }
    }

    #[test]
    fn a_long_flow_dump_is_split_with_reply_more() {
        let entry = multipart::FlowStats {
            table_id: 0,
            duration_sec: 1,
            duration_nsec: 0,
            priority: 1,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: 0,
            packet_count: 0,
            byte_count: 0,
            m: OfMatch(vec![Oxm::exact(IN_PORT, 1)]),
            instructions: vec![],
        };
        let body = R::Flow(vec![entry; 2000]);
        let parts = encode(&Message::MultipartReply { flags: 0, body }, 1);
        assert!(parts.len() > 1);
        let mut total = 0;
        for (i, p) in parts.iter().enumerate() {
            let (_, m) = decode(p).unwrap();
            let Message::MultipartReply {
                flags,
                body: R::Flow(v),
            } = m
            else {
                panic!()
            };
            assert_eq!(flags & REPLY_MORE != 0, i + 1 < parts.len());
            total += v.len();
        }
        assert_eq!(total, 2000);
    }

    #[test]
    fn malformed_messages_get_the_right_error() {
        let e = |b: &[u8]| decode(b).unwrap_err();
        assert_eq!(e(&[4, 0, 0]).1.code, BRC_BAD_LEN);
        // Length field disagrees with the bytes.
        assert_eq!(e(&[4, 5, 0, 9, 0, 0, 0, 1]).1.code, BRC_BAD_LEN);
        // OpenFlow 1.0 FEATURES_REQUEST.
        assert_eq!(e(&[1, 5, 0, 8, 0, 0, 0, 1]).1.code, BRC_BAD_VERSION);
        // Unknown type.
        let (h, err) = e(&[4, 99, 0, 8, 0, 0, 0, 42]);
        assert_eq!((h.unwrap().xid, err.code), (42, BRC_BAD_TYPE));
        // PACKET_OUT whose actions_len runs past the message.
        let mut b = vec![4, 13, 0, 24, 0, 0, 0, 1];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 64, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e(&b).1, OfError::new(BAD_REQUEST, BRC_BAD_LEN));
        // A HELLO of another version still decodes (negotiation needs it).
        let (_, m) = decode(&[1, 0, 0, 8, 0, 0, 0, 1]).unwrap();
        assert_eq!(m, Message::Hello { versions: 0b11 }, "up to 1.0");
        let (_, m) = decode(&[5, 0, 0, 8, 0, 0, 0, 1]).unwrap();
        assert!(
            matches!(m, Message::Hello { versions } if versions & 1 << 4 != 0),
            "1.4 speaks 1.3 too"
        );
    }
}
