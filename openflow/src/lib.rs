//! OpenFlow 1.3 on the wire: typed messages and their codec, nothing else
//! (no sockets, no switch state), so it can be fuzzed on its own.
//!
//! - [`wire`]: a bounds-checked reader and the writer helpers
//! - [`error`]: OFPT_ERROR types and codes; every decode failure is one
//! - [`oxm`]: match fields (OXM TLVs) and `ofp_match`
//! - [`action`]: actions and instructions
//! - [`port`]: `ofp_port` descriptions
//! - [`multipart`]: multipart (stats) requests and replies
//! - [`message`]: the messages, `decode` and `encode`
//!
//! Decoding never panics and never reads past its input: every length
//! field is checked against the bytes actually present, and a bad message
//! comes back as the OFPT_ERROR type/code the switch should answer with.

pub mod action;
pub mod error;
pub mod message;
pub mod multipart;
pub mod oxm;
pub mod port;
pub mod wire;

pub use error::OfError;
pub use message::{decode, encode, Header, Message};

/// OpenFlow 1.3's wire version.
pub const VERSION: u8 = 0x04;
/// The fixed header: version, type, length, xid.
pub const HEADER_LEN: usize = 8;
/// No buffering: packet-ins carry the whole frame.
pub const NO_BUFFER: u32 = 0xffff_ffff;
