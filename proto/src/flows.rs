//! Replies of the flow commands.

use serde::{Deserialize, Serialize};

/// One rule as `dump-flows` gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowEntry {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    pub duration_secs: f64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub idle_age_secs: u64,
    pub n_packets: u64,
    pub n_bytes: u64,
    /// The match in ovs-ofctl syntax ("" matches everything).
    #[serde(rename = "match")]
    pub matches: String,
    /// The actions in ovs-ofctl syntax.
    pub actions: String,
}

/// `add-flow`, `add-flows`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsAdded {
    pub added: usize,
}

/// `mod-flows`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsModified {
    pub modified: usize,
}

/// `del-flows`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsDeleted {
    pub deleted: usize,
}
