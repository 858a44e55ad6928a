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
        if remote != ALL_REMOTES && (remote as usize) <= n {
            return self.encap_one(snap, t, underlay, m, remote as usize - 1);
        }
        for i in 0..n - 1 {
            if let Some(c) = self.copy_of(&m) {
                self.encap_one(snap, t, underlay, c, i);
            }
        }
        self.encap_one(snap, t, underlay, m, n - 1);
    }

    #[inline]
    fn encap_one(&mut self, snap: &Snapshot, t: &Tunnel, underlay: usize, mut m: Mbuf, i: usize) {
        let r = &t.remotes[i];
        let Some(mac) = r.mac() else {
            t.count_no_arp(self.index);
            return self.drop_pkt(m, DpDrop::NoArp);
        };
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
