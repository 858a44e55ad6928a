//! The stages a burst goes through after receive: extract each frame's flow
//! key, look it up (per-PMD exact-match cache, then the classifier compiled
//! into the snapshot), and run the matching rule's actions, which edit the
//! packet and hand it to output batches ([`super::tx`]) or to `normal`
//! ([`super::normal`]). A table whose best rule matches everything (a fresh
//! bridge) skips key and cache: its one rule runs directly.

use super::pmd::{Burst, Work};
use super::snapshot::Snapshot;
use super::stats::DpDrop;
use crate::fdb::Fdb;
use crate::flow::cache::NO_MATCH;
use crate::flow::edit;
use crate::flow::key::FlowKey;
use crate::flow::rule::Action;
use pmd::port::bump;
use pmd::Mbuf;

/// Nested `resubmit`/`goto_table` a packet may take (OVS: 64).
pub const MAX_RESUBMITS: u32 = 64;

impl Work {
    /// Switches every packet of `self.rx`, received on port slot `in_slot`.
    pub(super) fn switch_batch(&mut self, snap: &Snapshot, in_slot: usize, now: u32, fdb: &Fdb) {
        let in_no = snap.ports[in_slot].no;
        self.burst = Burst {
            in_slot,
            in_no,
            now,
            ..Burst::default()
        };
        let flows = &*snap.flows;
        let mut rx = std::mem::take(&mut self.rx);
        if let Some(r) = flows.catch_all(0) {
            let rule = flows.rule(r);
            let (mut packets, mut bytes) = (0, 0);
            for m in rx.drain() {
                if m.len() < 14 {
                    self.drop_pkt(m, DpDrop::Runt);
                    continue;
                }
                packets += 1;
                bytes += m.len() as u64;
                self.run_actions(snap, fdb, &rule.actions, m, None, 0);
            }
            rule.stats.count_n(self.index, packets, bytes);
        } else {
            for m in rx.drain() {
                match FlowKey::extract(m.data(), in_no) {
                    Some(k) => self.table(snap, fdb, 0, m, k, 0),
                    None => self.drop_pkt(m, DpDrop::Runt),
                }
            }
        }
        self.rx = rx;
        if self.burst.drops.iter().any(|&n| n != 0) {
            snap.ports[in_slot].drops.add(&self.burst.drops);
        }
    }

    /// Looks `k` up in `table` and runs the rule that matches, or drops.
    fn table(&mut self, snap: &Snapshot, fdb: &Fdb, table: u8, m: Mbuf, k: FlowKey, depth: u32) {
        let flows = &*snap.flows;
        let found = match flows.catch_all(table) {
            Some(r) => Some(r),
            None => {
                let ck = k.with_table(table);
                match self.emc.get(&ck) {
                    Some(r) => {
                        bump(&self.stats.cache_hits, 1);
                        (r != NO_MATCH).then_some(r)
                    }
                    None => {
                        bump(&self.stats.cache_misses, 1);
                        bump(&self.stats.classifier_lookups, 1);
                        let r = flows.lookup(table, &k);
                        self.emc.insert(ck, r.unwrap_or(NO_MATCH));
                        r
                    }
                }
            }
        };
        let Some(r) = found else {
            return self.drop_pkt(m, DpDrop::NoMatch);
        };
        let rule = flows.rule(r);
        rule.stats.count(self.index, m.len() as u64);
        self.run_actions(snap, fdb, &rule.actions, m, Some(k), depth);
    }

    /// Runs `actions` in order on `m`. Edits change the packet in place; every
    /// output but the last gets a copy, the last one the packet itself.
    fn run_actions(
        &mut self,
        snap: &Snapshot,
        fdb: &Fdb,
        actions: &[Action],
        m: Mbuf,
        mut key: Option<FlowKey>,
        depth: u32,
    ) {
        // The lists most bridges run, without the general loop.
        match actions {
            [Action::Normal] => return self.normal(snap, fdb, m),
            [Action::Output(p)] => return self.output(snap, *p, m),
            [] => return self.drop_pkt(m, DpDrop::Acl),
            _ => {}
        }
        let Some(last) = actions.iter().rposition(Action::consumes) else {
            return self.drop_pkt(m, DpDrop::Acl);
        };
        let mut cur = Some(m);
        for (i, a) in actions[..=last].iter().enumerate() {
            let pm = cur.as_mut().expect("the packet is held until its last output");
            if !a.consumes() {
                if !apply_edit(pm, a) {
                    let m = cur.take().expect("held");
                    return self.drop_pkt(m, DpDrop::NoBuffer);
                }
                key = None;
                continue;
            }
            let p = if i == last {
                cur.take().expect("held")
            } else {
                match self.copy_of(pm) {
                    Some(c) => c,
                    None => continue,
                }
            };
            match a {
                Action::Output(no) => self.output(snap, *no, p),
                Action::InPort => self.enqueue(snap, self.burst.in_slot, p),
                Action::Normal => self.normal(snap, fdb, p),
                Action::Flood | Action::All => self.output_all(snap, p),
                Action::Resubmit(t) | Action::GotoTable(t) => {
                    if depth >= MAX_RESUBMITS {
                        self.drop_pkt(p, DpDrop::ResubmitDepth);
                        continue;
                    }
                    // Edits so far change what the next table sees.
                    let k = match key.or_else(|| FlowKey::extract(p.data(), self.burst.in_no)) {
                        Some(k) => k,
                        None => {
                            self.drop_pkt(p, DpDrop::Runt);
                            continue;
                        }
                    };
                    key = Some(k);
                    self.table(snap, fdb, *t, p, k, depth + 1);
                }
                _ => unreachable!("only consuming actions reach here"),
            }
        }
    }
}

/// One header edit; false when the frame cannot take it.
fn apply_edit(m: &mut Mbuf, a: &Action) -> bool {
    match a {
        Action::ModVlanVid(v) => {
            let tci = edit::vlan_tci(m.data()).map_or(0, |t| t & 0xf000);
            edit::set_tci(m, tci | v)
        }
        Action::ModVlanPcp(p) => {
            let tci = edit::vlan_tci(m.data()).map_or(0, |t| t & 0x0fff);
            edit::set_tci(m, tci | (*p as u16) << 13)
        }
        Action::StripVlan => {
            edit::pop_vlan(m);
            true
        }
        Action::PushVlan(_) => {
            let tci = edit::vlan_tci(m.data()).unwrap_or(0);
            edit::push_vlan(m, tci)
        }
        Action::ModDlSrc(mac) => edit::set_mac(m, false, mac),
        Action::ModDlDst(mac) => edit::set_mac(m, true, mac),
        _ => true,
    }
}
