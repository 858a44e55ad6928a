//! OFPT_ERROR types and codes (OpenFlow 1.3.5, section 7.4.4). A decode
//! failure is one of these, ready to send back with the request's xid.

/// An error the switch answers with: (type, code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("OpenFlow error type {etype} code {code}")]
pub struct OfError {
    pub etype: u16,
    pub code: u16,
}

impl OfError {
    pub const fn new(etype: u16, code: u16) -> OfError {
        OfError { etype, code }
    }
}

pub const HELLO_FAILED: u16 = 0;
pub const HFC_INCOMPATIBLE: u16 = 0;

pub const BAD_REQUEST: u16 = 1;
pub const BRC_BAD_VERSION: u16 = 0;
pub const BRC_BAD_TYPE: u16 = 1;
pub const BRC_BAD_MULTIPART: u16 = 2;
pub const BRC_BAD_EXPERIMENTER: u16 = 3;
pub const BRC_EPERM: u16 = 5;
pub const BRC_BAD_LEN: u16 = 6;
pub const BRC_BUFFER_UNKNOWN: u16 = 8;
pub const BRC_BAD_TABLE_ID: u16 = 9;
pub const BRC_BAD_PORT: u16 = 11;
pub const BRC_BAD_PACKET: u16 = 12;

pub const BAD_ACTION: u16 = 2;
pub const BAC_BAD_TYPE: u16 = 0;
pub const BAC_BAD_LEN: u16 = 1;
pub const BAC_BAD_EXPERIMENTER: u16 = 2;
pub const BAC_BAD_OUT_PORT: u16 = 4;
pub const BAC_BAD_ARGUMENT: u16 = 5;
pub const BAC_TOO_MANY: u16 = 7;
pub const BAC_BAD_OUT_GROUP: u16 = 9;
pub const BAC_MATCH_INCONSISTENT: u16 = 10;
pub const BAC_BAD_SET_TYPE: u16 = 13;
pub const BAC_BAD_SET_LEN: u16 = 14;
pub const BAC_BAD_SET_ARGUMENT: u16 = 15;

pub const BAD_INSTRUCTION: u16 = 3;
pub const BIC_UNKNOWN_INST: u16 = 0;
pub const BIC_UNSUP_INST: u16 = 1;
pub const BIC_BAD_TABLE_ID: u16 = 2;
pub const BIC_UNSUP_METADATA: u16 = 3;
pub const BIC_BAD_LEN: u16 = 7;

pub const BAD_MATCH: u16 = 4;
pub const BMC_BAD_TYPE: u16 = 0;
pub const BMC_BAD_LEN: u16 = 1;
pub const BMC_BAD_FIELD: u16 = 6;
pub const BMC_BAD_VALUE: u16 = 7;
pub const BMC_BAD_MASK: u16 = 8;
pub const BMC_BAD_PREREQ: u16 = 9;
pub const BMC_DUP_FIELD: u16 = 10;

pub const FLOW_MOD_FAILED: u16 = 5;
pub const FMFC_UNKNOWN: u16 = 0;
pub const FMFC_TABLE_FULL: u16 = 1;
pub const FMFC_BAD_TABLE_ID: u16 = 2;
pub const FMFC_OVERLAP: u16 = 3;
pub const FMFC_BAD_TIMEOUT: u16 = 5;
pub const FMFC_BAD_COMMAND: u16 = 6;
pub const FMFC_BAD_FLAGS: u16 = 7;

pub const GROUP_MOD_FAILED: u16 = 6;
pub const GMFC_INVALID_GROUP: u16 = 8;

pub const PORT_MOD_FAILED: u16 = 7;
pub const PMFC_BAD_PORT: u16 = 0;
pub const PMFC_BAD_HW_ADDR: u16 = 1;
pub const PMFC_BAD_CONFIG: u16 = 2;

pub const TABLE_MOD_FAILED: u16 = 8;
pub const TMFC_BAD_TABLE: u16 = 0;

pub const ROLE_REQUEST_FAILED: u16 = 11;
pub const RRFC_BAD_ROLE: u16 = 2;

pub const METER_MOD_FAILED: u16 = 12;
pub const MMFC_INVALID_METER: u16 = 2;

pub const TABLE_FEATURES_FAILED: u16 = 13;
pub const TFFC_EPERM: u16 = 5;
