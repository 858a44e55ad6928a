//! Multipart (statistics) requests and replies.

use crate::action::{decode_instructions, encode_instructions, Instruction};
use crate::error::*;
use crate::oxm::OfMatch;
use crate::port::PortDesc;
use crate::wire::{Put, Reader};

pub const DESC: u16 = 0;
pub const FLOW: u16 = 1;
pub const AGGREGATE: u16 = 2;
pub const TABLE: u16 = 3;
pub const PORT_STATS: u16 = 4;
pub const QUEUE: u16 = 5;
pub const GROUP: u16 = 6;
pub const GROUP_DESC: u16 = 7;
pub const GROUP_FEATURES: u16 = 8;
pub const METER: u16 = 9;
pub const METER_CONFIG: u16 = 10;
pub const METER_FEATURES: u16 = 11;
pub const TABLE_FEATURES: u16 = 12;
pub const PORT_DESC: u16 = 13;
pub const EXPERIMENTER: u16 = 0xffff;

/// The "more replies follow" flag of a multipart reply.
pub const REPLY_MORE: u16 = 1;

/// What FLOW and AGGREGATE requests select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub m: OfMatch,
}

impl FlowStatsRequest {
    fn decode(r: &mut Reader<'_>) -> Result<FlowStatsRequest, OfError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        r.skip(4)?;
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let m = OfMatch::decode(r)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie,
            cookie_mask,
            m,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.u8(self.table_id);
        out.pad(3);
        out.u32(self.out_port);
        out.u32(self.out_group);
        out.pad(4);
        out.u64(self.cookie);
        out.u64(self.cookie_mask);
        self.m.encode(out);
    }
}

/// One table's features; `properties` are (type, payload) pairs, built with
/// the helpers below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeatures {
    pub table_id: u8,
    pub name: String,
    pub metadata_match: u64,
    pub metadata_write: u64,
    pub config: u32,
    pub max_entries: u32,
    pub properties: Vec<(u16, Vec<u8>)>,
}

pub const TFPT_INSTRUCTIONS: u16 = 0;
pub const TFPT_INSTRUCTIONS_MISS: u16 = 1;
pub const TFPT_NEXT_TABLES: u16 = 2;
pub const TFPT_NEXT_TABLES_MISS: u16 = 3;
pub const TFPT_WRITE_ACTIONS: u16 = 4;
pub const TFPT_WRITE_ACTIONS_MISS: u16 = 5;
pub const TFPT_APPLY_ACTIONS: u16 = 6;
pub const TFPT_APPLY_ACTIONS_MISS: u16 = 7;
pub const TFPT_MATCH: u16 = 8;
pub const TFPT_WILDCARDS: u16 = 10;
pub const TFPT_WRITE_SETFIELD: u16 = 12;
pub const TFPT_WRITE_SETFIELD_MISS: u16 = 13;
pub const TFPT_APPLY_SETFIELD: u16 = 14;
pub const TFPT_APPLY_SETFIELD_MISS: u16 = 15;

/// Payload of an instruction or action id list: (type, len = 4) each.
pub fn type_ids(types: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    for t in types {
        v.u16(*t);
        v.u16(4);
    }
    v
}

/// Payload of a match, wildcard or set-field property: OXM headers.
pub fn oxm_ids(headers: &[u32]) -> Vec<u8> {
    let mut v = Vec::new();
    for h in headers {
        v.u32(*h);
    }
    v
}

impl TableFeatures {
    fn decode(r: &mut Reader<'_>) -> Result<TableFeatures, OfError> {
        let bad = OfError::new(TABLE_FEATURES_FAILED, 3);
        let len = r.u16()? as usize;
        if len < 64 {
            return Err(bad);
        }
        let mut b = r.sub(len - 2)?.reporting(bad);
        let table_id = b.u8()?;
        b.skip(5)?;
        let name = b.string(32)?;
        let metadata_match = b.u64()?;
        let metadata_write = b.u64()?;
        let config = b.u32()?;
        let max_entries = b.u32()?;
        let mut properties = Vec::new();
        while !b.is_empty() {
            let kind = b.u16()?;
            let plen = b.u16()? as usize;
            if plen < 4 {
                return Err(bad);
            }
            let body = b.bytes(plen - 4)?.to_vec();
            b.skip((plen.next_multiple_of(8) - plen).min(b.remaining()))?;
            properties.push((kind, body));
        }
        Ok(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.u16(0);
        out.u8(self.table_id);
        out.pad(5);
        out.string(&self.name, 32);
        out.u64(self.metadata_match);
        out.u64(self.metadata_write);
        out.u32(self.config);
        out.u32(self.max_entries);
        for (kind, body) in &self.properties {
            let p = out.len();
            out.u16(*kind);
            out.u16((4 + body.len()) as u16);
            out.extend_from_slice(body);
            out.pad8_from(p);
        }
        let len = out.len() - start;
        out.set_u16(start, len as u16);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartRequest {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    PortStats {
        port_no: u32,
    },
    Queue {
        port_no: u32,
        queue_id: u32,
    },
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    Meter {
        meter_id: u32,
    },
    MeterConfig {
        meter_id: u32,
    },
    MeterFeatures,
    /// Empty: a query. Otherwise the controller asks to set the pipeline.
    TableFeatures(Vec<TableFeatures>),
    PortDesc,
    Experimenter,
}

impl MultipartRequest {
    pub fn kind(&self) -> u16 {
        use MultipartRequest::*;
        match self {
            Desc => DESC,
            Flow(_) => FLOW,
            Aggregate(_) => AGGREGATE,
            Table => TABLE,
            PortStats { .. } => PORT_STATS,
            Queue { .. } => QUEUE,
            Group { .. } => GROUP,
            GroupDesc => GROUP_DESC,
            GroupFeatures => GROUP_FEATURES,
            Meter { .. } => METER,
            MeterConfig { .. } => METER_CONFIG,
            MeterFeatures => METER_FEATURES,
            TableFeatures(_) => TABLE_FEATURES,
            PortDesc => PORT_DESC,
            Experimenter => EXPERIMENTER,
        }
    }

    pub fn decode(kind: u16, mut r: Reader<'_>) -> Result<MultipartRequest, OfError> {
        use MultipartRequest::*;
        Ok(match kind {
            DESC => Desc,
            FLOW => Flow(FlowStatsRequest::decode(&mut r)?),
            AGGREGATE => Aggregate(FlowStatsRequest::decode(&mut r)?),
            TABLE => Table,
            PORT_STATS => PortStats { port_no: r.u32()? },
            QUEUE => Queue {
                port_no: r.u32()?,
                queue_id: r.u32()?,
            },
            GROUP => Group { group_id: r.u32()? },
            GROUP_DESC => GroupDesc,
            GROUP_FEATURES => GroupFeatures,
            METER => Meter { meter_id: r.u32()? },
            METER_CONFIG => MeterConfig { meter_id: r.u32()? },
            METER_FEATURES => MeterFeatures,
            TABLE_FEATURES => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(self::TableFeatures::decode(&mut r)?);
                }
                TableFeatures(v)
            }
            PORT_DESC => PortDesc,
            EXPERIMENTER => Experimenter,
            _ => return Err(OfError::new(BAD_REQUEST, BRC_BAD_MULTIPART)),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        use MultipartRequest::*;
        match self {
            Flow(f) | Aggregate(f) => f.encode(out),
            PortStats { port_no } => {
                out.u32(*port_no);
                out.pad(4);
            }
            Queue { port_no, queue_id } => {
                out.u32(*port_no);
                out.u32(*queue_id);
            }
            Group { group_id: id } | Meter { meter_id: id } | MeterConfig { meter_id: id } => {
                out.u32(*id);
                out.pad(4);
            }
            TableFeatures(v) => v.iter().for_each(|t| t.encode(out)),
            Desc | Table | GroupDesc | GroupFeatures | MeterFeatures | PortDesc | Experimenter => {}
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub mfr: String,
    pub hw: String,
    pub sw: String,
    pub serial: String,
    pub dp: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub m: OfMatch,
    pub instructions: Vec<Instruction>,
}

impl FlowStats {
    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.u16(0);
        out.u8(self.table_id);
        out.pad(1);
        out.u32(self.duration_sec);
        out.u32(self.duration_nsec);
        out.u16(self.priority);
        out.u16(self.idle_timeout);
        out.u16(self.hard_timeout);
        out.u16(self.flags);
        out.pad(4);
        out.u64(self.cookie);
        out.u64(self.packet_count);
        out.u64(self.byte_count);
        self.m.encode(out);
        encode_instructions(&self.instructions, out);
        let len = out.len() - start;
        out.set_u16(start, len as u16);
    }

    fn decode(r: &mut Reader<'_>) -> Result<FlowStats, OfError> {
        let len = r.u16()? as usize;
        let mut b = r.sub(len.saturating_sub(2))?;
        let table_id = b.u8()?;
        b.skip(1)?;
        let (duration_sec, duration_nsec) = (b.u32()?, b.u32()?);
        let (priority, idle_timeout, hard_timeout, flags) =
            (b.u16()?, b.u16()?, b.u16()?, b.u16()?);
        b.skip(4)?;
        let (cookie, packet_count, byte_count) = (b.u64()?, b.u64()?, b.u64()?);
        let m = OfMatch::decode(&mut b)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            m,
            instructions: decode_instructions(b)?,
        })
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartReply {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate {
        packet_count: u64,
        byte_count: u64,
        flow_count: u32,
    },
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    PortDesc(Vec<PortDesc>),
    TableFeatures(Vec<TableFeatures>),
    /// GROUP_FEATURES and METER_FEATURES with nothing supported.
    NoFeatures(u16),
    /// An empty list of the given kind (QUEUE, GROUP, GROUP_DESC, METER, METER_CONFIG).
    Empty(u16),
}

impl MultipartReply {
    pub fn kind(&self) -> u16 {
        use MultipartReply::*;
        match self {
            Desc(_) => DESC,
            Flow(_) => FLOW,
            Aggregate { .. } => AGGREGATE,
            Table(_) => TABLE,
            PortStats(_) => PORT_STATS,
            PortDesc(_) => PORT_DESC,
            TableFeatures(_) => TABLE_FEATURES,
            NoFeatures(k) | Empty(k) => *k,
        }
    }

    /// The body, split into pieces that each fit one message (`max` bytes):
    /// a list goes out as several replies, REPLY_MORE on all but the last.
    pub fn encode_parts(&self, max: usize) -> Vec<Vec<u8>> {
        use MultipartReply::*;
        let list = |items: &mut dyn Iterator<Item = Vec<u8>>| -> Vec<Vec<u8>> {
            let mut parts = vec![Vec::new()];
            for item in items {
                let last = parts.last_mut().expect("one part");
                if !last.is_empty() && last.len() + item.len() > max {
                    parts.push(item);
                } else {
                    last.extend_from_slice(&item);
                }
            }
            parts
        };
        let one = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            f(&mut v);
            v
        };
        match self {
            Desc(d) => vec![one(&|o| {
                o.string(&d.mfr, 256);
                o.string(&d.hw, 256);
                o.string(&d.sw, 256);
                o.string(&d.serial, 32);
                o.string(&d.dp, 256);
            })],
            Flow(v) => list(&mut v.iter().map(|f| one(&|o| f.encode(o)))),
            Aggregate {
                packet_count,
                byte_count,
                flow_count,
            } => vec![one(&|o| {
                o.u64(*packet_count);
                o.u64(*byte_count);
                o.u32(*flow_count);
                o.pad(4);
            })],
            Table(v) => list(&mut v.iter().map(|t| {
                one(&|o| {
                    o.u8(t.table_id);
                    o.pad(3);
                    o.u32(t.active_count);
                    o.u64(t.lookup_count);
                    o.u64(t.matched_count);
                })
            })),
            PortStats(v) => list(&mut v.iter().map(|p| {
                one(&|o| {
                    o.u32(p.port_no);
                    o.pad(4);
                    for x in [
                        p.rx_packets,
                        p.tx_packets,
                        p.rx_bytes,
                        p.tx_bytes,
                        p.rx_dropped,
                        p.tx_dropped,
                        p.rx_errors,
                        p.tx_errors,
                        0,
                        0,
                        0,
                        0,
                    ] {
                        o.u64(x);
                    }
                    o.u32(p.duration_sec);
                    o.u32(p.duration_nsec);
                })
            })),
            PortDesc(v) => list(&mut v.iter().map(|p| one(&|o| p.encode(o)))),
            TableFeatures(v) => list(&mut v.iter().map(|t| one(&|o| t.encode(o)))),
            NoFeatures(GROUP_FEATURES) => vec![vec![0; 40]],
            NoFeatures(_) => vec![vec![0; 16]],
            Empty(_) => vec![Vec::new()],
        }
    }

    /// Reads one reply body (used by tests and by anyone reading replies).
    pub fn decode(kind: u16, mut r: Reader<'_>) -> Result<MultipartReply, OfError> {
        use MultipartReply::*;
        Ok(match kind {
            DESC => Desc(self::Desc {
                mfr: r.string(256)?,
                hw: r.string(256)?,
                sw: r.string(256)?,
                serial: r.string(32)?,
                dp: r.string(256)?,
            }),
            FLOW => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(FlowStats::decode(&mut r)?);
                }
                Flow(v)
            }
            AGGREGATE => Aggregate {
                packet_count: r.u64()?,
                byte_count: r.u64()?,
                flow_count: r.u32()?,
            },
            TABLE => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let table_id = r.u8()?;
                    r.skip(3)?;
                    v.push(TableStats {
                        table_id,
                        active_count: r.u32()?,
                        lookup_count: r.u64()?,
                        matched_count: r.u64()?,
                    });
                }
                Table(v)
            }
            PORT_DESC => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(crate::port::PortDesc::decode(&mut r)?);
                }
                PortDesc(v)
            }
            TABLE_FEATURES => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    v.push(self::TableFeatures::decode(&mut r)?);
                }
                TableFeatures(v)
            }
            PORT_STATS => {
                let mut v = Vec::new();
                while !r.is_empty() {
                    let port_no = r.u32()?;
                    r.skip(4)?;
                    let mut x = [0u64; 12];
                    for s in x.iter_mut() {
                        *s = r.u64()?;
                    }
                    v.push(self::PortStats {
                        port_no,
                        rx_packets: x[0],
                        tx_packets: x[1],
                        rx_bytes: x[2],
                        tx_bytes: x[3],
                        rx_dropped: x[4],
                        tx_dropped: x[5],
                        rx_errors: x[6],
                        tx_errors: x[7],
                        duration_sec: r.u32()?,
                        duration_nsec: r.u32()?,
                    });
                }
                PortStats(v)
            }
            GROUP_FEATURES | METER_FEATURES => NoFeatures(kind),
            k => Empty(k),
        })
    }
}
