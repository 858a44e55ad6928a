//! The stages a burst goes through after receive: extract each frame's flow
//! key, look it up (per-PMD exact-match cache, then the classifier compiled
//! into the snapshot), and run the matching rule's actions, which edit the
//! packet and hand it to output batches ([`super::tx`]) or to `normal`
//! ([`super::normal`]). A table whose best rule matches everything (a fresh
//! bridge) skips key and cache: its one rule runs directly.

use super::controller::{FromController, Reason, ToController};
use super::pmd::{Burst, Work};
use super::snapshot::{Role, Snapshot};
use super::stats::DpDrop;
use crate::fdb::Fdb;
use crate::flow::cache::NO_MATCH;
use crate::flow::edit;
use crate::flow::key::FlowKey;
use crate::flow::rule::Action;
use crate::tunnel::ALL_REMOTES;
use pmd::port::bump;
use pmd::Mbuf;

/// The input port number of a packet a controller sent from no port
/// (OpenFlow 1.0's OFPP_CONTROLLER): no rule's `in_port` matches it.
pub const FROM_CONTROLLER: u16 = 0xfffd;

/// Nested `resubmit`/`goto_table` a packet may take (OVS: 64).
pub const MAX_RESUBMITS: u32 = 64;
/// All resubmits of one packet together (OVS: 4096): `resubmit(,0),resubmit(,0)`
/// would otherwise branch 2^64 times.
pub const MAX_RESUBMITS_TOTAL: u32 = 4096;

impl Work {
    /// Switches every packet of `self.rx`, received on port slot `in_slot`
    /// (an underlay's burst is decapsulated first: [`super::decap`]).
    pub(super) fn switch_batch(&mut self, snap: &Snapshot, in_slot: usize, now: u32, fdb: &Fdb) {
        if let Role::Underlay(plan) = &snap.roles[in_slot] {
            if snap.admin[in_slot].receives() {
                return self.underlay_burst(snap, in_slot, plan, now, fdb);
            }
        }
        self.switch_batch_from(snap, in_slot, ALL_REMOTES, now, fdb)
    }

    /// Starts the burst state for frames received on `in_slot`.
    pub(super) fn begin_burst(&mut self, snap: &Snapshot, in_slot: usize, now: u32) {
        self.burst = Burst {
            in_slot,
            in_no: snap.ports[in_slot].no,
            now,
            no_packet_in: snap.admin[in_slot].no_packet_in,
            ..Burst::default()
        };
    }

    /// As `switch_batch`, the frames received from tunnel endpoint
    /// `in_remote` (1-based; 0: not from a tunnel).
    pub(super) fn switch_batch_from(
        &mut self,
        snap: &Snapshot,
        in_slot: usize,
        in_remote: u16,
        now: u32,
        fdb: &Fdb,
    ) {
        self.begin_burst(snap, in_slot, now);
        self.burst.in_remote = in_remote;
        let in_no = self.burst.in_no;
        if !snap.admin[in_slot].receives() {
            let mut rx = std::mem::take(&mut self.rx);
            for m in rx.drain() {
                self.drop_pkt(m, DpDrop::NoRecv);
            }
            self.rx = rx;
            self.finish_burst(snap);
            return;
        }
        let flows = &*snap.flows;
        let mut rx = std::mem::take(&mut self.rx);
        if let Some(r) = flows.catch_all(0) {
            let rule = flows.rule(r);
            let only_normal = rule.only_normal;
            (self.burst.table, self.burst.cookie) = (0, rule.cookie);
            self.burst.table_miss = rule.table_miss;
            let (mut packets, mut bytes) = (0, 0);
            for m in rx.drain() {
                if m.len() < 14 {
                    self.drop_pkt(m, DpDrop::Runt);
                    continue;
                }
                packets += 1;
                bytes += m.len() as u64;
                if only_normal {
                    // A fresh bridge: straight to the learning switch.
                    self.normal(snap, fdb, m);
                    continue;
                }
                let mut cur = self.begin_packet(m);
                self.run_actions(snap, fdb, &rule.actions, &mut cur, None, 0, true);
                self.end_packet(cur);
            }
            rule.stats.count_n(self.index, packets, bytes);
        } else {
            for m in rx.drain() {
                match FlowKey::extract(m.data(), in_no) {
                    Some(k) => {
                        // The same flow as the packet before, whose rule says
                        // only `normal`: no lookup, no per-packet bookkeeping.
                        if let Some((mk, r)) = self.burst.memo {
                            if mk == k && r != NO_MATCH && flows.rule(r).only_normal {
                                self.burst.cache_hits += 1;
                                self.count_rule(flows, r, m.len() as u64);
                                self.normal(snap, fdb, m);
                                continue;
                            }
                        }
                        let mut cur = self.begin_packet(m);
                        self.table(snap, fdb, 0, &mut cur, k, 0, true);
                        self.end_packet(cur);
                    }
                    None => self.drop_pkt(m, DpDrop::Runt),
                }
            }
        }
        self.rx = rx;
        self.finish_burst(snap);
    }

    /// Adds what a burst left pending: rule counts, cache hits, the input
    /// port's drops (none for packets from the controller).
    pub(super) fn finish_burst(&mut self, snap: &Snapshot) {
        if let Some((ri, p, b)) = self.burst.rule_count.take() {
            snap.flows.rule(ri).stats.count_n(self.index, p, b);
        }
        if self.burst.cache_hits != 0 {
            bump(&self.stats.cache_hits, self.burst.cache_hits);
        }
        if self.burst.drops.iter().any(|&n| n != 0) {
            if let Some(p) = snap.ports.get(self.burst.in_slot) {
                p.drops.add(&self.burst.drops);
            }
        }
    }

    /// Runs the packets controllers sent (PACKET_OUT) with their actions, as
    /// if received on their `in_port` (or from no port). Returns how many.
    pub(super) fn packet_outs(&mut self, snap: &Snapshot, now: u32, fdb: &Fdb) -> usize {
        let mut n = 0;
        while n < pmd::BURST {
            let Some(FromController {
                m,
                in_port,
                actions,
            }) = self.channel.from_agent.pop()
            else {
                break;
            };
            n += 1;
            let in_no = in_port.unwrap_or(FROM_CONTROLLER);
            let in_slot = in_port.and_then(|p| snap.slot(p)).unwrap_or(usize::MAX);
            self.burst = Burst {
                in_slot,
                in_no,
                now,
                // "From a tunnel" without a remote endpoint: nothing to learn.
                no_learn: matches!(snap.roles.get(in_slot), Some(Role::Tunnel { .. })),
                ..Burst::default()
            };
            if m.len() < 14 {
                self.drop_pkt(m, DpDrop::Runt);
            } else {
                let mut cur = self.begin_packet(m);
                self.run_actions(snap, fdb, &actions, &mut cur, None, 0, true);
                self.end_packet(cur);
            }
            self.finish_burst(snap);
        }
        n
    }

    /// A copy for the controllers (the packet as the actions left it so
    /// far); counted when the agent's queue is full.
    fn copy_to_controller(&mut self, mut m: pmd::Mbuf, max_len: u16, reason: Reason) {
        if self.burst.no_packet_in {
            self.cache.free(m);
            return;
        }
        // The agent reads it later, on another thread: no guest tail may go,
        // and it gets a finished frame (a large segment is not sent up).
        let finished = m.offload().gso == pmd::offload::Gso::None
            && m.take_tail_in()
            && pmd::offload::complete_csum(&mut m);
        if !finished {
            return self.drop_pkt(m, DpDrop::Offload);
        }
        debug_assert!(m.tail().is_none());
        let p = ToController {
            m,
            in_port: self.burst.in_no,
            table: self.burst.table,
            cookie: self.burst.cookie,
            reason,
            max_len,
        };
        if let Err(p) = self.channel.to_agent.push(p) {
            self.drop_pkt(p.m, DpDrop::ControllerQueue);
        }
    }

    /// Adds a packet to rule `r`'s counters, summed while the burst stays on one rule.
    #[inline]
    fn count_rule(&mut self, flows: &crate::flow::classifier::Classifier, r: u32, bytes: u64) {
        match &mut self.burst.rule_count {
            Some((ri, p, b)) if *ri == r => {
                *p += 1;
                *b += bytes;
            }
            pending => {
                if let Some((ri, p, b)) = pending.replace((r, 1, bytes)) {
                    flows.rule(ri).stats.count_n(self.index, p, b);
                }
            }
        }
    }

    #[inline]
    fn begin_packet(&mut self, m: Mbuf) -> Option<Mbuf> {
        self.burst.pkt_len = m.len() as u64;
        self.burst.outputs = 0;
        self.burst.resubmits = 0;
        self.burst.ended_by = None;
        Some(m)
    }

    /// A packet still held after its actions went nowhere: dropped, counted
    /// by why (a table miss, or a rule that outputs nothing); one that was
    /// output (as copies) is just freed.
    #[inline]
    fn end_packet(&mut self, cur: Option<Mbuf>) {
        if let Some(m) = cur {
            if self.burst.outputs == 0 {
                let why = self.burst.ended_by.unwrap_or(DpDrop::Acl);
                self.drop_pkt(m, why);
            } else {
                self.cache.free(m);
            }
        }
    }

    /// Looks `k` up in `table` and runs the rule that matches on the packet
    /// in `cur` (`last`: nothing runs after it, so it may give the packet away).
    #[allow(clippy::too_many_arguments)]
    fn table(
        &mut self,
        snap: &Snapshot,
        fdb: &Fdb,
        table: u8,
        cur: &mut Option<Mbuf>,
        k: FlowKey,
        depth: u32,
        last: bool,
    ) {
        let flows = &*snap.flows;
        let found = match flows.catch_all(table) {
            Some(r) => Some(r),
            None => {
                let ck = k.with_table(table);
                // Consecutive packets of one flow (most of a burst) skip even the cache.
                let memo = self.burst.memo.filter(|(mk, _)| *mk == ck).map(|(_, r)| r);
                match memo.or_else(|| self.emc.get(&ck)) {
                    Some(r) => {
                        self.burst.cache_hits += 1;
                        self.burst.memo = Some((ck, r));
                        (r != NO_MATCH).then_some(r)
                    }
                    None => {
                        bump(&self.stats.cache_misses, 1);
                        let (r, probes) = flows.lookup_probed(table, &k);
                        bump(&self.stats.classifier_probes, probes);
                        let r = r.unwrap_or(NO_MATCH);
                        self.emc.insert(ck, r);
                        self.burst.memo = Some((ck, r));
                        (r != NO_MATCH).then_some(r)
                    }
                }
            }
        };
        let Some(r) = found else {
            self.burst.ended_by.get_or_insert(DpDrop::NoMatch);
            return;
        };
        // Every rule is credited with the packet as received (as OVS does).
        self.count_rule(flows, r, self.burst.pkt_len);
        let rule = flows.rule(r);
        (self.burst.table, self.burst.cookie) = (table, rule.cookie);
        self.burst.table_miss = rule.table_miss;
        self.run_actions(snap, fdb, &rule.actions, cur, Some(k), depth, last);
    }

    /// Runs `actions` in order on the packet in `cur`: edits change it in
    /// place (a resubmitted table edits the same packet, as in OVS); outputs
    /// take copies, except the very last one when `last`, which takes the
    /// packet itself.
    #[allow(clippy::too_many_arguments)]
    fn run_actions(
        &mut self,
        snap: &Snapshot,
        fdb: &Fdb,
        actions: &[Action],
        cur: &mut Option<Mbuf>,
        mut key: Option<FlowKey>,
        depth: u32,
        last: bool,
    ) {
        // The list most rules run, without the general loop.
        if last && matches!(actions, [Action::Normal]) {
            if let Some(m) = cur.take() {
                self.burst.outputs += 1;
                self.normal(snap, fdb, m);
            }
            return;
        }
        let Some(final_output) = actions.iter().rposition(Action::consumes) else {
            // Edits only (they still count for a caller's later actions).
            self.burst.ended_by.get_or_insert(DpDrop::Acl);
            for a in actions {
                if !self.edit(cur, a) {
                    return;
                }
            }
            return;
        };
        for (i, a) in actions.iter().enumerate() {
            if !a.consumes() {
                if !self.edit(cur, a) {
                    return;
                }
                key = None;
                continue;
            }
            let take = last && i == final_output;
            // Output to the input port (OVS skips it) or to a missing port:
            // no copy; the packet counts as dropped for that reason only if
            // it goes nowhere else.
            if let Action::Output(no) = a {
                match snap.slot(*no) {
                    Some(s) if s != self.burst.in_slot => {}
                    found => {
                        let why = if found.is_some() {
                            DpDrop::SamePort
                        } else {
                            DpDrop::NoPort
                        };
                        self.burst.ended_by.get_or_insert(why);
                        if take {
                            return;
                        }
                        continue;
                    }
                }
            }
            if let Action::Resubmit(t) | Action::GotoTable(t) = a {
                self.burst.resubmits += 1;
                if depth >= MAX_RESUBMITS || self.burst.resubmits > MAX_RESUBMITS_TOTAL {
                    if let Some(m) = cur.take() {
                        self.drop_pkt(m, DpDrop::ResubmitDepth);
                    }
                    return;
                }
                let Some(k) =
                    key.or_else(|| FlowKey::extract(cur.as_ref()?.data(), self.burst.in_no))
                else {
                    return;
                };
                self.table(snap, fdb, *t, cur, k, depth + 1, take);
                if take {
                    return;
                }
                // The other table may have edited the packet.
                key = None;
                continue;
            }
            let p = match (take, cur.as_ref()) {
                (true, _) => cur.take(),
                (false, Some(m)) => self.copy_of(m),
                (false, None) => None,
            };
            let Some(p) = p else { continue };
            self.burst.outputs += 1;
            match a {
                Action::Output(no) => self.output(snap, *no, p),
                Action::InPort if self.burst.in_slot >= snap.ports.len() => {
                    self.drop_pkt(p, DpDrop::NoPort)
                }
                // Back to the tunnel endpoint it came from, if it did.
                Action::InPort => {
                    self.enqueue_to(snap, self.burst.in_slot, p, self.burst.in_remote)
                }
                Action::Controller { max_len } => {
                    let reason = if self.burst.table_miss {
                        Reason::NoMatch
                    } else {
                        Reason::Action
                    };
                    self.copy_to_controller(p, *max_len, reason)
                }
                Action::Normal => self.normal(snap, fdb, p),
                Action::Flood | Action::All => self.output_all(snap, p),
                _ => unreachable!("only outputs reach here"),
            }
            if take {
                return;
            }
        }
    }

    /// One header edit on the held packet; false (and the packet dropped)
    /// when it cannot take it, or when there is no packet any more.
    fn edit(&mut self, cur: &mut Option<Mbuf>, a: &Action) -> bool {
        let Some(m) = cur.as_mut() else { return false };
        if apply_edit(m, a) {
            return true;
        }
        let m = cur.take().expect("held");
        self.drop_pkt(m, DpDrop::NoBuffer);
        false
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
        // OVS pushes a tag with VID 0 and PCP 0; mod_vlan_vid/pcp set them.
        Action::PushVlan(_) => edit::push_vlan(m, 0),
        Action::ModDlSrc(mac) => edit::set_mac(m, false, mac),
        Action::ModDlDst(mac) => edit::set_mac(m, true, mac),
        _ => true,
    }
}
