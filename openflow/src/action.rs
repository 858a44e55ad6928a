//! Actions (`ofp_action_*`) and instructions (`ofp_instruction_*`).

use crate::error::*;
use crate::oxm::Oxm;
use crate::wire::{Put, Reader};

pub const OUTPUT: u16 = 0;
pub const COPY_TTL_OUT: u16 = 11;
pub const COPY_TTL_IN: u16 = 12;
pub const SET_MPLS_TTL: u16 = 15;
pub const DEC_MPLS_TTL: u16 = 16;
pub const PUSH_VLAN: u16 = 17;
pub const POP_VLAN: u16 = 18;
pub const PUSH_MPLS: u16 = 19;
pub const POP_MPLS: u16 = 20;
pub const SET_QUEUE: u16 = 21;
pub const GROUP: u16 = 22;
pub const SET_NW_TTL: u16 = 23;
pub const DEC_NW_TTL: u16 = 24;
pub const SET_FIELD: u16 = 25;
pub const PUSH_PBB: u16 = 26;
pub const POP_PBB: u16 = 27;
pub const EXPERIMENTER: u16 = 0xffff;

/// `max_len` of an output to the controller that asks for the whole frame.
pub const CONTROLLER_MAX_LEN_NO_BUFFER: u16 = 0xffff;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    PushVlan(u16),
    PopVlan,
    SetField(Oxm),
    Group(u32),
    SetQueue(u32),
    DecNwTtl,
    SetNwTtl(u8),
    /// Decoded so it can be refused by name (MPLS, PBB, TTL copies...).
    Other {
        kind: u16,
        body: Vec<u8>,
    },
}

impl Action {
    pub fn kind(&self) -> u16 {
        match self {
            Action::Output { .. } => OUTPUT,
            Action::PushVlan(_) => PUSH_VLAN,
            Action::PopVlan => POP_VLAN,
            Action::SetField(_) => SET_FIELD,
            Action::Group(_) => GROUP,
            Action::SetQueue(_) => SET_QUEUE,
            Action::DecNwTtl => DEC_NW_TTL,
            Action::SetNwTtl(_) => SET_NW_TTL,
            Action::Other { kind, .. } => *kind,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Action, OfError> {
        r.scoped(OfError::new(BAD_ACTION, BAC_BAD_LEN), Action::decode_inner)
    }

    fn decode_inner(r: &mut Reader<'_>) -> Result<Action, OfError> {
        let bad = |c| OfError::new(BAD_ACTION, c);
        let kind = r.u16()?;
        let len = r.u16()? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(bad(BAC_BAD_LEN));
        }
        let mut b = r.sub(len - 4)?;
        let a = match kind {
            OUTPUT => {
                if len != 16 {
                    return Err(bad(BAC_BAD_LEN));
                }
                let port = b.u32()?;
                let max_len = b.u16()?;
                Action::Output { port, max_len }
            }
            PUSH_VLAN => Action::PushVlan(b.u16()?),
            POP_VLAN => Action::PopVlan,
            GROUP => Action::Group(b.u32()?),
            SET_QUEUE => Action::SetQueue(b.u32()?),
            DEC_NW_TTL => Action::DecNwTtl,
            SET_NW_TTL => Action::SetNwTtl(b.u8()?),
            SET_FIELD => {
                let o = Oxm::decode(&mut b).map_err(|e| {
                    bad(if e.code == BMC_BAD_FIELD {
                        BAC_BAD_SET_TYPE
                    } else {
                        BAC_BAD_SET_LEN
                    })
                })?;
                if o.mask.is_some() {
                    return Err(bad(BAC_BAD_SET_ARGUMENT));
                }
                // The OXM plus padding must fill the action exactly.
                if (4 + o.wire_len()).next_multiple_of(8) != len {
                    return Err(bad(BAC_BAD_SET_LEN));
                }
                Action::SetField(o)
            }
            COPY_TTL_OUT | COPY_TTL_IN | SET_MPLS_TTL | DEC_MPLS_TTL | PUSH_MPLS | POP_MPLS
            | PUSH_PBB | POP_PBB | EXPERIMENTER => Action::Other {
                kind,
                body: b.rest().to_vec(),
            },
            _ => return Err(bad(BAC_BAD_TYPE)),
        };
        Ok(a)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.u16(self.kind());
        out.u16(0);
        match self {
            Action::Output { port, max_len } => {
                out.u32(*port);
                out.u16(*max_len);
                out.pad(6);
            }
            Action::PushVlan(t) => {
                out.u16(*t);
                out.pad(2);
            }
            Action::PopVlan | Action::DecNwTtl => out.pad(4),
            Action::Group(v) | Action::SetQueue(v) => out.u32(*v),
            Action::SetNwTtl(t) => {
                out.u8(*t);
                out.pad(3);
            }
            Action::SetField(o) => o.encode(out),
            Action::Other { body, .. } => out.extend_from_slice(body),
        }
        out.pad8_from(start);
        let len = out.len() - start;
        out.set_u16(start + 2, len as u16);
    }
}

/// Reads actions until the reader is empty.
pub fn decode_actions(mut r: Reader<'_>) -> Result<Vec<Action>, OfError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(Action::decode(&mut r)?);
    }
    Ok(v)
}

pub fn encode_actions(actions: &[Action], out: &mut Vec<u8>) {
    for a in actions {
        a.encode(out);
    }
}

pub const GOTO_TABLE: u16 = 1;
pub const WRITE_METADATA: u16 = 2;
pub const WRITE_ACTIONS: u16 = 3;
pub const APPLY_ACTIONS: u16 = 4;
pub const CLEAR_ACTIONS: u16 = 5;
pub const METER: u16 = 6;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    GotoTable(u8),
    WriteMetadata { value: u64, mask: u64 },
    WriteActions(Vec<Action>),
    ApplyActions(Vec<Action>),
    ClearActions,
    Meter(u32),
    Experimenter { body: Vec<u8> },
}

impl Instruction {
    pub fn kind(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => GOTO_TABLE,
            Instruction::WriteMetadata { .. } => WRITE_METADATA,
            Instruction::WriteActions(_) => WRITE_ACTIONS,
            Instruction::ApplyActions(_) => APPLY_ACTIONS,
            Instruction::ClearActions => CLEAR_ACTIONS,
            Instruction::Meter(_) => METER,
            Instruction::Experimenter { .. } => EXPERIMENTER,
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Instruction, OfError> {
        r.scoped(
            OfError::new(BAD_INSTRUCTION, BIC_BAD_LEN),
            Instruction::decode_inner,
        )
    }

    fn decode_inner(r: &mut Reader<'_>) -> Result<Instruction, OfError> {
        let bad = |c| OfError::new(BAD_INSTRUCTION, c);
        let kind = r.u16()?;
        let len = r.u16()? as usize;
        if len < 8 || !len.is_multiple_of(8) {
            return Err(bad(BIC_BAD_LEN));
        }
        let mut b = r.sub(len - 4)?;
        Ok(match kind {
            GOTO_TABLE => Instruction::GotoTable(b.u8()?),
            WRITE_METADATA => {
                b.skip(4)?;
                Instruction::WriteMetadata {
                    value: b.u64()?,
                    mask: b.u64()?,
                }
            }
            WRITE_ACTIONS | APPLY_ACTIONS => {
                b.skip(4)?;
                let actions = decode_actions(b)?;
                if kind == WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            CLEAR_ACTIONS => Instruction::ClearActions,
            METER => Instruction::Meter(b.u32()?),
            EXPERIMENTER => Instruction::Experimenter {
                body: b.rest().to_vec(),
            },
            _ => return Err(bad(BIC_UNKNOWN_INST)),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.u16(self.kind());
        out.u16(0);
        match self {
            Instruction::GotoTable(t) => {
                out.u8(*t);
                out.pad(3);
            }
            Instruction::WriteMetadata { value, mask } => {
                out.pad(4);
                out.u64(*value);
                out.u64(*mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                out.pad(4);
                encode_actions(a, out);
            }
            Instruction::ClearActions => out.pad(4),
            Instruction::Meter(m) => out.u32(*m),
            Instruction::Experimenter { body } => out.extend_from_slice(body),
        }
        out.pad8_from(start);
        let len = out.len() - start;
        out.set_u16(start + 2, len as u16);
    }
}

pub fn decode_instructions(mut r: Reader<'_>) -> Result<Vec<Instruction>, OfError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        v.push(Instruction::decode(&mut r)?);
    }
    Ok(v)
}

pub fn encode_instructions(ins: &[Instruction], out: &mut Vec<u8>) {
    for i in ins {
        i.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oxm::{ETH_DST, VID_PRESENT, VLAN_VID};

    #[test]
    fn instructions_round_trip() {
        let ins = vec![
            Instruction::ApplyActions(vec![
                Action::PushVlan(0x8100),
                Action::SetField(Oxm::exact(VLAN_VID, (VID_PRESENT | 100) as u128)),
                Action::SetField(Oxm::exact(ETH_DST, 0x0200_0000_0001)),
                Action::Output {
                    port: 0xffff_fffd,
                    max_len: CONTROLLER_MAX_LEN_NO_BUFFER,
                },
                Action::PopVlan,
                Action::Group(7),
            ]),
            Instruction::WriteMetadata { value: 1, mask: 3 },
            Instruction::GotoTable(2),
        ];
        let mut b = Vec::new();
        encode_instructions(&ins, &mut b);
        assert_eq!(b.len() % 8, 0);
        assert_eq!(decode_instructions(Reader::new(&b)).unwrap(), ins);
    }

    #[test]
    fn bad_actions_are_refused_by_reason() {
        let err = |b: &[u8]| decode_actions(Reader::new(b)).unwrap_err();
        assert_eq!(
            err(&[0, 0, 0, 4, 0, 0, 0, 0]).code,
            BAC_BAD_LEN,
            "shorter than 8"
        );
        assert_eq!(
            err(&[0, 0, 0, 16, 0, 0, 0, 1]).code,
            BAC_BAD_LEN,
            "beyond the input"
        );
        assert_eq!(err(&[0, 99, 0, 8, 0, 0, 0, 0]).code, BAC_BAD_TYPE);
        // SET_FIELD with a masked VLAN_VID.
        let mut b = vec![0, 25, 0, 16];
        b.extend_from_slice(&[0x80, 0x00, 0x0d, 0x04, 0x10, 0x0a, 0x1f, 0xff, 0, 0, 0, 0]);
        assert_eq!(err(&b).code, BAC_BAD_SET_ARGUMENT);
        let e = decode_instructions(Reader::new(&[0, 9, 0, 8, 0, 0, 0, 0])).unwrap_err();
        assert_eq!(e, OfError::new(BAD_INSTRUCTION, BIC_UNKNOWN_INST));
    }
}
