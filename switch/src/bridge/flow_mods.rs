//! Rule changes as typed values (the OpenFlow agent's FLOW_MODs), beside
//! the text ones of the management socket; both end in the same table,
//! snapshot and state file. Changes from a controller come in bursts (a
//! controller's cold start is a delete-all and dozens of adds): they are
//! persisted by the housekeeping tick, at most once a second, not per change.

use super::{Bridge, State};
use crate::flow::rule::{Action, Filter, Rule};
use crate::flow::syntax::check_actions_for_table;
use crate::flow::table::{Removed, MAX_RULES};
use std::sync::Arc;
use std::time::Duration;

/// One change to the rules.
#[derive(Clone, Debug)]
pub enum FlowChange {
    Add {
        rule: Rule,
        /// Refuse the add if a rule of the same priority could match the same packets.
        check_overlap: bool,
        /// Report the rule's removal (SEND_FLOW_REM).
        notify: bool,
    },
    /// New actions for the selected rules (none selected: nothing happens).
    Modify {
        filter: Filter,
        actions: Vec<Action>,
        strict: bool,
        reset_counts: bool,
    },
    Delete {
        filter: Filter,
        strict: bool,
    },
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowChangeError {
    #[error("a rule of the same priority overlaps")]
    Overlap,
    #[error("the bridge holds {MAX_RULES} rules, the most it takes")]
    TableFull,
    #[error("{0}")]
    Invalid(String),
}

/// A rule with its counters, as FLOW stats report it.
#[derive(Clone, Debug)]
pub struct RuleView {
    pub rule: Rule,
    pub packets: u64,
    pub bytes: u64,
    pub age: Duration,
}

impl Bridge {
    /// Applies changes in order, each on its own (one failing leaves the
    /// others), and compiles and publishes once for all of them: a
    /// controller's burst of thousands of FLOW_MODs costs one snapshot.
    /// `defer`: leave compiling and publishing to a later [`Bridge::sync_rules`]
    /// (the OpenFlow agent coalesces `ovs-ofctl`'s one-rule-per-barrier
    /// streams this way; the datapath follows within milliseconds, as OVS's
    /// datapath follows its revalidators).
    pub fn change_flows_batch(
        &self,
        changes: Vec<FlowChange>,
        defer: bool,
    ) -> Vec<Result<Vec<Removed>, FlowChangeError>> {
        let mut st = self.state.lock().expect("bridge state poisoned");
        let mut changed = false;
        let results = changes
            .into_iter()
            .map(|c| {
                let r = Self::apply(&mut st, c);
                changed |= matches!(&r, Ok((true, _)));
                r.map(|(_, removed)| removed)
            })
            .collect();
        if changed {
            if defer {
                st.rules_dirty = true;
                st.flows_changed = true;
                st.persist_pending = true;
            } else {
                self.rules_changed(&mut st);
            }
        }
        results
    }

    /// Compiles and publishes rule changes left by a deferred batch.
    /// Returns whether there were any.
    pub fn sync_rules(&self) -> bool {
        let mut st = self.state.lock().expect("bridge state poisoned");
        if !st.rules_dirty {
            return false;
        }
        self.rules_changed(&mut st);
        true
    }

    /// One change; Ok((whether anything changed, removed rules)).
    fn apply(st: &mut State, c: FlowChange) -> Result<(bool, Vec<Removed>), FlowChangeError> {
        let removed = match c {
            FlowChange::Add {
                rule,
                check_overlap,
                notify,
            } => {
                check_actions_for_table(&rule.actions, rule.table)
                    .map_err(FlowChangeError::Invalid)?;
                if check_overlap && st.flows.overlaps(&rule) {
                    return Err(FlowChangeError::Overlap);
                }
                if st.flows.len() >= MAX_RULES {
                    return Err(FlowChangeError::TableFull);
                }
                st.flows
                    .add_notifying(rule, notify)
                    .map_err(FlowChangeError::Invalid)?;
                Vec::new()
            }
            FlowChange::Modify {
                filter,
                actions,
                strict,
                reset_counts,
            } => {
                let n = st
                    .flows
                    .modify(&filter, &actions, None, strict)
                    .map_err(FlowChangeError::Invalid)?;
                if n == 0 {
                    return Ok((false, Vec::new()));
                }
                if reset_counts {
                    st.flows.reset_counts(&filter, strict);
                }
                Vec::new()
            }
            FlowChange::Delete { filter, strict } => {
                let gone = st.flows.delete(&filter, strict);
                if gone.is_empty() {
                    return Ok((false, gone));
                }
                gone
            }
        };
        Ok((true, removed))
    }

    /// Recompiles and publishes; the state file follows on the next tick.
    fn rules_changed(&self, st: &mut State) {
        st.compiled = Arc::new(st.flows.compile());
        st.rules_dirty = false;
        st.flows_changed = true;
        st.persist_pending = true;
        self.republish(st);
    }

    /// The rules `filter` selects (loosely), with their counters.
    pub fn rules(&self, filter: &Filter) -> Vec<RuleView> {
        let st = self.state.lock().expect("bridge state poisoned");
        let now = std::time::Instant::now();
        st.flows
            .select(filter)
            .map(|e| {
                let (packets, bytes) = e.stats.total();
                RuleView {
                    rule: e.rule.clone(),
                    packets,
                    bytes,
                    age: now.saturating_duration_since(e.created),
                }
            })
            .collect()
    }

    /// Rules per table: (table, rules in it), for tables that hold any.
    pub fn rules_per_table(&self) -> Vec<(u8, usize)> {
        let st = self.state.lock().expect("bridge state poisoned");
        let mut n = [0usize; 256];
        for r in st.flows.rules() {
            n[r.table as usize] += 1;
        }
        (0..=255u8)
            .filter(|&t| n[t as usize] > 0)
            .map(|t| (t, n[t as usize]))
            .collect()
    }

    pub fn set_openflow_status(&self, s: Arc<std::sync::Mutex<crate::ofagent::AgentStatus>>) {
        *self.openflow.lock().expect("poisoned") = Some(s);
    }

    /// The OpenFlow agent's controllers and connections, if it runs.
    pub fn openflow_status(&self) -> Option<crate::ofagent::AgentStatus> {
        let s = self.openflow.lock().expect("poisoned").clone()?;
        let s = s.lock().expect("agent status poisoned").clone();
        Some(s)
    }

    /// fail-mode standalone: while on, the bridge forwards as a learning
    /// switch (OVS's fail-open); the rules come back when it goes off.
    pub fn set_fail_open(&self, on: bool) {
        let mut st = self.state.lock().expect("bridge state poisoned");
        if st.fail_open != on {
            st.fail_open = on;
            self.republish(&mut st);
        }
    }

    /// Writes the state file if a controller's changes are not in it yet
    /// (housekeeping, once a second).
    pub fn persist_if_pending(&self) {
        let mut st = self.state.lock().expect("bridge state poisoned");
        if st.persist_pending {
            st.persist_pending = false;
            self.persist(&st);
        }
    }

    /// Rules removed by timeouts that a controller asked to hear of, since
    /// the last call: (rule, ended by its hard timeout).
    pub fn take_expired(&self) -> Vec<(Removed, bool)> {
        std::mem::take(&mut *self.expired.lock().expect("expired list poisoned"))
    }
}
