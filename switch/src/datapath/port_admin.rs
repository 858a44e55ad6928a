//! A port's administrative settings, as OpenFlow's PORT_MOD sets them
//! (`ovs-ofctl mod-port BR PORT down|no-receive|no-forward|no-packet-in`).
//! Like OVS, they live as long as the daemon (they are not persisted): a
//! controller sets them again when it reconnects.

/// What an operator or controller turned off on a port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortAdmin {
    /// Administratively down: nothing received or sent.
    pub down: bool,
    /// Frames received on the port are dropped (`no_recv`).
    pub no_recv: bool,
    /// Frames forwarded to the port are dropped (`no_fwd`); floods skip it.
    pub no_fwd: bool,
    /// A `controller` action sends no copy of the port's frames.
    pub no_packet_in: bool,
}

impl PortAdmin {
    #[inline]
    pub fn receives(&self) -> bool {
        !self.down && !self.no_recv
    }

    #[inline]
    pub fn forwards(&self) -> bool {
        !self.down && !self.no_fwd
    }

    pub fn is_default(&self) -> bool {
        *self == PortAdmin::default()
    }

    /// What is turned off, by name (`show`).
    pub fn names(&self) -> Vec<String> {
        [
            (self.down, "down"),
            (self.no_recv, "no_recv"),
            (self.no_fwd, "no_fwd"),
            (self.no_packet_in, "no_packet_in"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect()
    }
}
