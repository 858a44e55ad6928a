//! Decapsulation: what a burst from an underlay port becomes. ARP for the
//! tunnels' local address is answered, ARP from a remote endpoint
//! resolves it; VXLAN for one of the underlay's tunnels (its UDP port and
//! VNI, from one of its remotes) is stripped to the inner frame, which is
//! then switched as received on the tunnel port, behind that remote.
//! Everything else is dropped by reason, counted on the underlay port.

use super::pmd::Work;
use super::snapshot::{Snapshot, UnderlayPlan};
use super::stats::DpDrop;
use crate::fdb::Fdb;
use crate::tunnel::vxlan::{self, Underlay};
use crate::tunnel::{arp, is_unicast, ALL_REMOTES};
use pmd::Mbuf;

impl Work {
    pub(super) fn underlay_burst(
        &mut self,
        snap: &Snapshot,
        in_slot: usize,
        plan: &UnderlayPlan,
        now: u32,
        fdb: &Fdb,
    ) {
        self.begin_burst(snap, in_slot, now);
        let mut rx = std::mem::take(&mut self.rx);
        let mut inner = std::mem::take(&mut self.decapped);
        for mut m in rx.drain() {
            match vxlan::classify(m.data(), plan.local_ip, |p| plan.listens_on(p)) {
                Underlay::Vxlan {
                    src_ip,
                    dst_port,
                    vni,
                    inner_at,
                    inner_len,
                } => {
                    let Some((slot, t)) = plan.tunnel(dst_port, vni) else {
                        self.drop_pkt(m, DpDrop::VxlanBadVni);
                        continue;
                    };
                    let remote = t.remote_index(src_ip);
                    if remote == 0 {
                        self.drop_pkt(m, DpDrop::VxlanUnknownRemote);
                        continue;
                    }
                    // Ethernet padding after the datagram goes, then the outer headers.
                    m.set_len(inner_at + inner_len);
                    m.adj(inner_at);
                    t.count_rx(self.index, remote as usize - 1, inner_len);
                    // At most one inner frame per received one: a burst fits.
                    debug_assert!(inner.len() < pmd::BURST);
                    self.decap_from[inner.len()] = (slot as u16, remote);
                    if let Err(m) = inner.push(m) {
                        self.drop_pkt(m, DpDrop::NoBuffer);
                    }
                }
                Underlay::Arp => self.underlay_arp(snap, in_slot, plan, m, now),
                Underlay::Malformed => self.drop_pkt(m, DpDrop::VxlanMalformed),
                Underlay::Other => self.drop_pkt(m, DpDrop::UnderlayOther),
            }
        }
        self.rx = rx;
        self.finish_burst(snap);
        // Each run of frames from one tunnel and remote is one burst of it.
        let mut at = 0;
        while !inner.is_empty() {
            let from = self.decap_from[at];
            let run = 1 + self.decap_from[at + 1..at + inner.len()]
                .iter()
                .take_while(|&&f| f == from)
                .count();
            let rx = &mut self.rx;
            inner.drain_front(run, |m| {
                let _ = rx.push(m);
            });
            at += run;
            self.switch_batch_from(snap, from.0 as usize, from.1, now, fdb);
        }
        self.decapped = inner;
    }

    /// An ARP packet on an underlay: a request for our address is
    /// answered from the underlay's MAC; any ARP from a remote's address
    /// resolves that remote. Others are not ours.
    fn underlay_arp(
        &mut self,
        snap: &Snapshot,
        in_slot: usize,
        plan: &UnderlayPlan,
        mut m: Mbuf,
        now: u32,
    ) {
        let Some(a) = arp::parse(m.data()) else {
            return self.drop_pkt(m, DpDrop::UnderlayOther);
        };
        let neighbour = plan.neighbour(a.sender_ip);
        let from_remote = neighbour.is_some();
        if let Some(n) = neighbour {
            if is_unicast(&a.sender_mac) && a.sender_mac != plan.mac {
                n.heard(a.sender_mac, now);
            }
        }
        if a.op == arp::REQUEST && a.target_ip == plan.local_ip {
            m.fill(&arp::reply(&a, plan.mac, plan.local_ip));
            return self.push_tx(snap, in_slot, m, ALL_REMOTES);
        }
        if from_remote || a.target_ip == plan.local_ip {
            // A reply to us, or a remote asking for another address: used.
            self.cache.free(m);
        } else {
            self.drop_pkt(m, DpDrop::UnderlayOther);
        }
    }
}
