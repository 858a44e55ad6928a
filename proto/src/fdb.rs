//! Replies of the learning table commands: `fdb-show`, `fdb-flush`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbShow {
    pub entries: Vec<FdbEntry>,
    pub stats: FdbStats,
}

/// One learned MAC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbEntry {
    /// The port's name (`#N` for a port number no port has any more).
    pub port: String,
    pub vlan: u16,
    pub mac: String,
    /// Seconds since the MAC was last seen.
    pub age: u32,
    /// Behind a tunnel port: the remote endpoint (VTEP) it sits behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbStats {
    pub current: usize,
    pub max: usize,
    pub learned: u64,
    pub moved: u64,
    pub aged: u64,
    pub refused: u64,
    pub flushed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdbFlushed {
    /// Entries forgotten.
    pub flushed: u64,
}
