//! PORT_MOD: a port's administrative settings (down, no-receive, no-forward,
//! no-packet-in), published with the next snapshot.

use super::{Bridge, BridgeError};
use crate::datapath::port_admin::PortAdmin;
use std::collections::HashMap;

impl Bridge {
    /// Changes port `no`'s settings; returns them as they now are.
    pub fn set_port_admin(
        &self,
        no: u16,
        change: impl FnOnce(&mut PortAdmin),
    ) -> Result<PortAdmin, BridgeError> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        if !st.ports.values().any(|(_, sp)| sp.no == no) {
            return Err(BridgeError::NoSuchPort(no.to_string()));
        }
        let mut a = st.admin.get(&no).copied().unwrap_or_default();
        let before = a;
        change(&mut a);
        if a != before {
            if a.is_default() {
                st.admin.remove(&no);
            } else {
                st.admin.insert(no, a);
            }
            tracing::info!(port = no, admin = ?a, "port settings changed (PORT_MOD)");
            self.republish(&mut st);
        }
        Ok(a)
    }

    /// Every port's settings that differ from the default, by port number.
    pub fn port_admins(&self) -> HashMap<u16, PortAdmin> {
        self.state
            .lock()
            .expect("bridge state poisoned")
            .admin
            .clone()
    }
}
