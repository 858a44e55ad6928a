//! The `normal` action: OVS's VLAN-aware learning switch. The input port's
//! VLAN options admit the frame and give its VLAN; the source is learned
//! in that VLAN, the destination looked up in it; a known destination gets
//! the frame, an unknown or group one floods the VLAN's other ports; each
//! output port's options decide the tag the frame leaves with.

use super::pmd::Work;
use super::snapshot::{Role, Snapshot};
use super::stats::DpDrop;
use crate::fdb::Fdb;
use crate::flow::edit;
use crate::tunnel::ALL_REMOTES;
use pmd::port::bump;
use pmd::Mbuf;

impl Work {
    pub(super) fn normal(&mut self, snap: &Snapshot, fdb: &Fdb, m: Mbuf) {
        let in_slot = self.burst.in_slot;
        let f = m.data();
        let vid = edit::vlan_tci(f).map_or(0, |t| t & 0x0fff);
        // A packet from a controller (no input port) is in its own tag's VLAN.
        let from_port = in_slot < snap.ports.len() && !self.burst.no_learn;
        let vlan = match snap.vlans.get(in_slot) {
            Some(v) => match v.ingress(vid) {
                Some(vlan) => vlan,
                None => return self.drop_pkt(m, DpDrop::Vlan),
            },
            None => vid,
        };
        let dst: [u8; 6] = f[0..6].try_into().expect("6 bytes");
        // STP, LACP, LLDP ... are for the link, not to be switched (OVS's
        // is_admissible without forward-bpdu).
        if dst[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && dst[5] < 0x10 {
            return self.drop_pkt(m, DpDrop::ReservedMac);
        }
        let src: [u8; 6] = f[6..12].try_into().expect("6 bytes");
        if from_port && src[0] & 1 == 0 && self.burst.learned != Some((vlan, src)) {
            fdb.learn_at(
                vlan,
                &src,
                self.burst.in_no,
                self.burst.in_remote,
                self.burst.now,
            );
            self.burst.learned = Some((vlan, src));
        }
        let out = if dst[0] & 1 != 0 {
            None
        } else {
            match self.burst.looked_up {
                Some((key, out)) if key == (vlan, dst) => out,
                _ => {
                    let out = fdb
                        .lookup_at(vlan, &dst)
                        .and_then(|(no, remote)| Some((snap.slot(no)?, remote)));
                    self.burst.looked_up = Some(((vlan, dst), out));
                    out
                }
            }
        };
        match out {
            // Also a tunnel's frame for another of its remotes: endpoints
            // reach each other directly (split horizon), never through us.
            Some((s, _)) if s == in_slot => self.drop_pkt(m, DpDrop::SamePort),
            Some((s, remote)) if snap.vlans[s].includes(vlan) => {
                let vid = snap.vlans[s].egress_vid(vlan);
                self.output_tagged(snap, s, m, vid, remote)
            }
            // Learned before the port's VLAN options changed.
            Some(_) => self.drop_pkt(m, DpDrop::Vlan),
            None => self.flood_vlan(snap, m, vlan),
        }
    }

    /// Every other port that carries `vlan`, each with its own tag.
    fn flood_vlan(&mut self, snap: &Snapshot, m: Mbuf, vlan: u16) {
        bump(&self.stats.flooded, 1);
        let in_slot = self.burst.in_slot;
        // An underlay carries tunnels, not the bridge's floods.
        let carries = |s: usize| {
            s != in_slot
                && snap.vlans[s].includes(vlan)
                && snap.admin[s].forwards()
                && !matches!(snap.roles[s], Role::Underlay(_))
        };
        let Some(last) = (0..snap.ports.len()).rev().find(|&s| carries(s)) else {
            self.cache.free(m);
            return;
        };
        for s in (0..last).filter(|&s| carries(s)) {
            if let Some(c) = self.copy_of(&m) {
                self.output_tagged(snap, s, c, snap.vlans[s].egress_vid(vlan), ALL_REMOTES);
            }
        }
        self.output_tagged(
            snap,
            last,
            m,
            snap.vlans[last].egress_vid(vlan),
            ALL_REMOTES,
        );
    }
}
