//! Replies of the commands that change ports: `add-port`, `del-port`, `set-port`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAdded {
    /// The port's name.
    pub added: String,
    pub port_no: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRemoved {
    /// The port's name.
    pub removed: String,
}

/// The port's runtime options after the change (null: unset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSet {
    pub port: String,
    pub vlan_mode: String,
    pub tag: Option<u16>,
    pub trunks: Option<String>,
    pub mac_limit: Option<u32>,
}
