//! The bridge's side of tunnel ports: which dpdk port each goes through
//! (checked when added; an underlay stays while a tunnel uses it), what
//! the snapshot needs to encapsulate and decapsulate, and the ARP requests
//! that keep each remote endpoint's MAC known (housekeeping sends them).

use super::{Bridge, BridgeError, State};
use crate::config::{PortConfig, PortKind};
use crate::datapath::controller::FromController;
use crate::datapath::snapshot::TunnelRef;
use crate::fdb::Fdb;
use crate::flow::rule::Action;
use crate::tunnel::{arp, vxlan, Neighbour, Tunnel};
use std::collections::HashMap;
use std::sync::Arc;

/// A new tunnel's underlay must exist, and every tunnel on one underlay
/// has the same local address (the one the switch answers ARP for there).
pub(super) fn check_underlay(st: &State, cfg: &PortConfig) -> Result<(), BridgeError> {
    let Some(Ok(opts)) = cfg.vxlan() else {
        return Ok(()); // the driver reports it
    };
    for t in tunnels(st) {
        if t.1.opts.underlay == opts.underlay && t.1.opts.local_ip != opts.local_ip {
            return Err(BridgeError::Invalid(format!(
                "local-ip: tunnel {} has local-ip {} on underlay {}; one underlay has one local-ip",
                t.0, t.1.opts.local_ip, opts.underlay
            )));
        }
    }
    Ok(())
}

/// A dpdk port that just became an underlay was a bridge port until now:
/// what was learned on it would keep unicast frames going out of it raw.
/// Called after the snapshot that makes it an underlay is published (from
/// then on nothing is learned there).
pub(super) fn forget_underlay_macs(st: &State, fdb: &Fdb) {
    for (_, t) in tunnels(st) {
        if let Some((_, sp)) = st.ports.get(&t.opts.underlay) {
            fdb.flush_port(sp.no);
        }
    }
}

/// The ARP entries of the tunnels on underlay `underlay`, each once.
pub(super) fn neighbours(st: &State, underlay: &str) -> Vec<Arc<Neighbour>> {
    let mut v: Vec<Arc<Neighbour>> = Vec::new();
    for (_, t) in tunnels(st).filter(|(_, t)| t.opts.underlay == underlay) {
        for r in t.remotes.iter() {
            if !v.iter().any(|n| Arc::ptr_eq(n, &r.neigh)) {
                v.push(r.neigh.clone());
            }
        }
    }
    v
}

/// An underlay cannot go while tunnels send through it.
pub(super) fn check_not_underlay(st: &State, name: &str) -> Result<(), BridgeError> {
    let users: Vec<&str> = tunnels(st)
        .filter(|t| t.1.opts.underlay == name)
        .map(|t| t.0)
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(BridgeError::Invalid(format!(
        "port {name:?} is the underlay of {}; delete them first",
        users.join(", ")
    )))
}

/// (port name, tunnel) of every tunnel port.
fn tunnels(st: &State) -> impl Iterator<Item = (&str, &Arc<Tunnel>)> {
    st.opened
        .iter()
        .filter_map(|(n, o)| Some((n.as_str(), o.tunnel.as_ref()?)))
}

/// What the snapshot needs of each tunnel.
pub(super) fn refs(st: &State) -> Vec<TunnelRef> {
    tunnels(st)
        .filter_map(|(name, t)| {
            Some(TunnelRef {
                no: st.ports.get(name)?.1.no,
                tunnel: t.clone(),
                underlay_no: st.ports.get(&t.opts.underlay)?.1.no,
            })
        })
        .collect()
}

/// Says when frames of a port may not fit a tunnel's underlay (OVS leaves
/// this to the operator; such a frame is dropped as `tunnel_mtu`): for the
/// port just added against every tunnel, or for a tunnel just added against
/// every port (once, naming the largest).
pub(super) fn warn_overlay_mtu(st: &State, added: &str) {
    let plain = |c: &PortConfig| {
        c.kind != PortKind::Vxlan && !tunnels(st).any(|(_, t)| t.opts.underlay == c.name)
    };
    for (name, t) in tunnels(st) {
        let overlay = t.overlay_mtu();
        let too_big = st
            .ports
            .values()
            .map(|(c, _)| c)
            .filter(|c| {
                (name == added || c.name == added) && plain(c) && c.mtu() as usize > overlay
            })
            .max_by_key(|c| c.mtu());
        if let Some(c) = too_big {
            let extra = vxlan::OUTER_LEN;
            tracing::warn!(
                "port {} has MTU {} but tunnel {name} carries at most {overlay} over underlay {} (MTU {}): \
                 larger frames are dropped (tunnel_mtu); raise the underlay's mtu-request to {} or lower the port's",
                c.name,
                c.mtu(),
                t.opts.underlay,
                overlay + extra,
                c.mtu() as usize + extra,
            );
        }
    }
}

impl Bridge {
    /// Housekeeping: asks (by ARP, out of each underlay, from its tunnels'
    /// local address) for every remote address that is unresolved or due a
    /// refresh, once however many tunnels go there (they share the entry).
    pub fn tunnel_tick(&self) {
        let now = self.fdb.now();
        let mut due: Vec<(u16, &Tunnel, Arc<Neighbour>)> = Vec::new();
        let st = self.state.lock().expect("bridge state poisoned");
        for (_, t) in tunnels(&st) {
            let Some((_, u)) = st.ports.get(&t.opts.underlay) else {
                continue;
            };
            for r in t.remotes.iter() {
                if r.neigh.due(now) && !due.iter().any(|d| Arc::ptr_eq(&d.2, &r.neigh)) {
                    due.push((u.no, t, r.neigh.clone()));
                }
            }
        }
        if due.is_empty() {
            return;
        }
        // A cache for this tick only: dropped, it gives back what it took.
        let mut cache = pmd::PoolCache::new(self.pool.clone());
        for (underlay_no, t, n) in due {
            let Some(mut m) = cache.alloc() else {
                tracing::warn!("no packet buffer for an ARP request");
                return;
            };
            m.fill(&arp::request(
                t.underlay_mac,
                t.opts.local_ip.octets(),
                n.ip.octets(),
            ));
            let out = FromController {
                m,
                in_port: None,
                actions: vec![Action::Output(underlay_no)],
            };
            match self.datapath.packet_out(out) {
                Ok(()) => n.asked(now),
                Err(p) => cache.free(p.m),
            }
        }
    }

    /// Every tunnel port by name (one look at the bridge, for a report).
    pub fn tunnels(&self) -> HashMap<String, Arc<Tunnel>> {
        let st = self.state.lock().expect("bridge state poisoned");
        tunnels(&st)
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect()
    }
}
