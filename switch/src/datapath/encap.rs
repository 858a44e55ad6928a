//! Encapsulation: a frame output to a tunnel port leaves through the
//! tunnel's underlay inside VXLAN/UDP/IPv4, to the remote endpoint the
//! learning table named, or one copy to each remote (head-end replication)
//! for a flood, a broadcast or an `output` action. Offloads were finished
//! before ([`super::tx`]): the underlay gets plain frames.

use super::pmd::Work;
use super::snapshot::Snapshot;
use super::stats::DpDrop;
use crate::tunnel::vxlan::{self, OUTER_LEN};
use crate::tunnel::{Tunnel, ALL_REMOTES};
use pmd::Mbuf;

impl Work {
    /// Sends `m` through `t` (whose underlay is slot `underlay`) to remote
    /// `remote` (1-based) or, for [`ALL_REMOTES`], to every remote.
    pub(super) fn encap(
        &mut self,
        snap: &Snapshot,
        t: &Tunnel,
        underlay: usize,
        m: Mbuf,
        remote: u16,
    ) {
        if m.len() > t.max_inner_len {
            t.count_mtu(self.index);
            return self.drop_pkt(m, DpDrop::TunnelMtu);
        }
        let n = t.remotes.len();
        let now = self.burst.now;
        if remote != ALL_REMOTES && (remote as usize) <= n {
            let i = remote as usize - 1;
            return match t.remotes[i].mac_at(now) {
                Some(mac) => self.encap_one(snap, t, underlay, m, i, mac),
                None => self.no_arp(t, m),
            };
        }
        // A copy for each resolved remote but the last; the frame itself for that one.
        let mut last: Option<(usize, [u8; 6])> = None;
        for (i, r) in t.remotes.iter().enumerate() {
            let Some(mac) = r.mac_at(now) else {
                t.count_no_arp(self.index);
                self.count_drop(DpDrop::NoArp);
                continue;
            };
            if let Some((j, mac_j)) = last.replace((i, mac)) {
                if let Some(c) = self.copy_of(&m) {
                    self.encap_one(snap, t, underlay, c, j, mac_j);
                }
            }
        }
        match last {
            Some((i, mac)) => self.encap_one(snap, t, underlay, m, i, mac),
            None => self.cache.free(m),
        }
    }

    #[cold]
    fn no_arp(&mut self, t: &Tunnel, m: Mbuf) {
        t.count_no_arp(self.index);
        self.drop_pkt(m, DpDrop::NoArp)
    }

    #[inline]
    fn encap_one(
        &mut self,
        snap: &Snapshot,
        t: &Tunnel,
        underlay: usize,
        mut m: Mbuf,
        i: usize,
        mac: [u8; 6],
    ) {
        let r = &t.remotes[i];
        let inner_len = m.len();
        let src_port = vxlan::src_port(m.data());
        if !m.prepend(OUTER_LEN) {
            return self.drop_pkt(m, DpDrop::NoBuffer);
        }
        r.outer().write(m.data_mut(), mac, inner_len, src_port);
        t.count_tx(self.index, i, inner_len);
        self.push_tx(snap, underlay, m, ALL_REMOTES);
    }
}
