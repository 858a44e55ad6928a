//! Port numbers and `ofp_port` descriptions.

use crate::error::OfError;
use crate::wire::{Put, Reader};

/// Highest number of a physical (here: any ferrovs) port.
pub const MAX: u32 = 0xffff_ff00;
pub const IN_PORT: u32 = 0xffff_fff8;
pub const TABLE: u32 = 0xffff_fff9;
pub const NORMAL: u32 = 0xffff_fffa;
pub const FLOOD: u32 = 0xffff_fffb;
pub const ALL: u32 = 0xffff_fffc;
pub const CONTROLLER: u32 = 0xffff_fffd;
pub const LOCAL: u32 = 0xffff_fffe;
pub const ANY: u32 = 0xffff_ffff;

/// `config` bits.
pub const PC_PORT_DOWN: u32 = 1 << 0;
pub const PC_NO_RECV: u32 = 1 << 2;
pub const PC_NO_FWD: u32 = 1 << 5;
pub const PC_NO_PACKET_IN: u32 = 1 << 6;
/// `state` bits.
pub const PS_LINK_DOWN: u32 = 1 << 0;
pub const PS_LIVE: u32 = 1 << 2;
/// `curr`/`advertised`... bits.
pub const PF_10GB_FD: u32 = 1 << 6;
pub const PF_COPPER: u32 = 1 << 11;

/// Bytes of one `ofp_port`.
pub const DESC_LEN: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortDesc {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: String,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    /// kbit/s.
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl PortDesc {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.u32(self.port_no);
        out.pad(4);
        out.extend_from_slice(&self.hw_addr);
        out.pad(2);
        out.string(&self.name, 16);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            out.u32(v);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<PortDesc, OfError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array::<6>()?;
        r.skip(2)?;
        let name = r.string(16)?;
        Ok(PortDesc {
            port_no,
            hw_addr,
            name,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }
}
