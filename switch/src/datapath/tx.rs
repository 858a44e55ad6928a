//! Output: per-port transmit batches, filled by the actions and flushed
//! with one `tx_burst` per port at the end of an iteration (or when full).

use super::pmd::Work;
use super::snapshot::{Role, Snapshot};
use super::stats::DpDrop;
use crate::flow::edit;
use crate::tunnel::ALL_REMOTES;
use pmd::offload::{self, Gso};
use pmd::port::bump;
use pmd::{Batch, Mbuf};

impl Work {
    #[inline]
    pub(super) fn enqueue(&mut self, snap: &Snapshot, slot: usize, m: Mbuf) {
        self.enqueue_to(snap, slot, m, ALL_REMOTES)
    }

    /// To `slot`; a tunnel port sends it to endpoint `remote` (1-based) or,
    /// with [`ALL_REMOTES`], to each.
    #[inline]
    pub(super) fn enqueue_to(&mut self, snap: &Snapshot, slot: usize, m: Mbuf, remote: u16) {
        if !snap.admin[slot].forwards() {
            return self.drop_pkt(m, DpDrop::NoFwd);
        }
        let o = m.offload();
        if !o.is_none() && !snap.ports[slot].port.tx_offloads().covers(&o) {
            return self.offload_in_software(snap, slot, m, remote);
        }
        self.push_tx(snap, slot, m, remote);
    }

    /// A frame whose tail is still in the sending guest goes to another guest
    /// in one copy; any other driver gets it whole. False: it could not be
    /// brought whole (a bug: tails are only left on frames that fit).
    #[inline]
    fn whole_unless_taken(snap: &Snapshot, slot: usize, m: &mut Mbuf) -> bool {
        m.tail().is_none() || snap.ports[slot].port.takes_guest_tails() || m.take_tail_in()
    }

    /// Into `slot`'s transmit batch, as the port takes it (a tunnel's
    /// frames into its underlay's, encapsulated: [`super::encap`]).
    #[inline]
    pub(super) fn push_tx(&mut self, snap: &Snapshot, slot: usize, mut m: Mbuf, remote: u16) {
        if let Role::Tunnel { tunnel, underlay } = &snap.roles[slot] {
            return self.encap(snap, tunnel, *underlay, m, remote);
        }
        if !Self::whole_unless_taken(snap, slot, &mut m) {
            return self.drop_pkt(m, DpDrop::NoBuffer);
        }
        let b = &mut self.tx[slot];
        if b.is_empty() {
            self.dirty.push(slot as u16);
        }
        if let Err(m) = b.push(m) {
            // A full batch goes out now; the packet starts the next one.
            snap.ports[slot]
                .port
                .tx_burst(self.index, &mut self.cache, b);
            let _ = b.push(m);
        }
    }

    /// What the sender left to us and `slot` does not take: a large TCP
    /// segment is split into frames for the wire, a checksum completed.
    #[cold]
    fn offload_in_software(&mut self, snap: &Snapshot, slot: usize, mut m: Mbuf, remote: u16) {
        if m.offload().gso != Gso::None {
            let mut segs = Batch::new();
            let mut next = 0;
            loop {
                let Some((upto, total)) = offload::segment(&m, next, &mut self.cache, &mut segs)
                else {
                    return self.drop_pkt(m, DpDrop::Offload);
                };
                bump(&self.stats.soft_segments, segs.len() as u64);
                let made = !segs.is_empty();
                for s in segs.drain() {
                    self.push_tx(snap, slot, s, remote);
                }
                if upto == total {
                    break;
                }
                if !made {
                    // The pool ran dry: the rest of the segment is lost.
                    self.stats
                        .count_drop(DpDrop::NoBuffer, (total - upto) as u64);
                    break;
                }
                next = upto;
            }
            bump(&self.stats.soft_gso, 1);
            self.cache.free(m);
            return;
        }
        if !Self::whole_unless_taken(snap, slot, &mut m) {
            return self.drop_pkt(m, DpDrop::NoBuffer);
        }
        if !offload::complete_csum(&mut m) {
            return self.drop_pkt(m, DpDrop::Offload);
        }
        bump(&self.stats.soft_csum, 1);
        self.push_tx(snap, slot, m, remote);
    }

    pub(super) fn flush_all(&mut self, snap: &Snapshot) {
        for &slot in &self.dirty {
            let b = &mut self.tx[slot as usize];
            if !b.is_empty() {
                snap.ports[slot as usize]
                    .port
                    .tx_burst(self.index, &mut self.cache, b);
            }
        }
        self.dirty.clear();
    }

    /// A copy of `m` for one more output; None (counted) when the pool is dry.
    #[inline]
    pub(super) fn copy_of(&mut self, m: &Mbuf) -> Option<Mbuf> {
        match self.cache.alloc() {
            Some(mut c) => {
                // The head is copied; a guest tail is shared (read-only).
                c.fill(m.data());
                // SAFETY: the copy is output or freed within this burst, as
                // the original is: both before the sender's lease ends.
                unsafe { c.set_tail(m.tail()) };
                c.set_offload(m.offload());
                Some(c)
            }
            None => {
                self.count_drop(DpDrop::NoBuffer);
                None
            }
        }
    }

    /// `output:PORT`: to an existing port other than the input one (OVS
    /// drops output to the input port unless the action says `in_port`).
    #[inline]
    pub(super) fn output(&mut self, snap: &Snapshot, port_no: u16, m: Mbuf) {
        match snap.slot(port_no) {
            Some(s) if s != self.burst.in_slot => self.enqueue(snap, s, m),
            Some(_) => self.drop_pkt(m, DpDrop::SamePort),
            None => self.drop_pkt(m, DpDrop::NoPort),
        }
    }

    /// Out of `slot` untagged (None) or with VID `vid`, PCP kept (to
    /// tunnel endpoint `remote`, for a tunnel port).
    #[inline]
    pub(super) fn output_tagged(
        &mut self,
        snap: &Snapshot,
        slot: usize,
        mut m: Mbuf,
        vid: Option<u16>,
        remote: u16,
    ) {
        if edit::retag(&mut m, vid) {
            self.enqueue_to(snap, slot, m, remote);
        } else {
            self.drop_pkt(m, DpDrop::NoBuffer);
        }
    }

    /// `flood` and `all`: every port but the input one, as the packet is.
    pub(super) fn output_all(&mut self, snap: &Snapshot, m: Mbuf) {
        let in_slot = self.burst.in_slot;
        let to = |s: usize| {
            s != in_slot && snap.admin[s].forwards() && !matches!(snap.roles[s], Role::Underlay(_))
        };
        let Some(last) = (0..snap.ports.len()).rev().find(|&s| to(s)) else {
            self.cache.free(m);
            return;
        };
        for s in (0..last).filter(|&s| to(s)) {
            if let Some(c) = self.copy_of(&m) {
                self.enqueue(snap, s, c);
            }
        }
        self.enqueue(snap, last, m);
    }
}
