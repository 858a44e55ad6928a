//! The bridge's rules as the control plane keeps them: add, modify, delete
//! and dump with ovs-ofctl's semantics, timeouts, and compilation into a
//! [`Classifier`] for the next snapshot.

use super::classifier::{Classifier, RuleStats};
use super::rule::{Action, Filter, Match, Rule};
use super::syntax::check_actions_for_table;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Most rules a bridge holds (memory bound; an add beyond it is refused).
pub const MAX_RULES: usize = 200_000;

/// A rule that went away, with what it had counted (OpenFlow's FLOW_REMOVED).
#[derive(Clone, Debug)]
pub struct Removed {
    pub rule: Rule,
    pub packets: u64,
    pub bytes: u64,
    pub age: std::time::Duration,
    pub notify: bool,
}

impl Removed {
    fn of(e: &Entry, now: Instant) -> Removed {
        let (packets, bytes) = e.stats.total();
        Removed {
            rule: e.rule.clone(),
            packets,
            bytes,
            age: now.saturating_duration_since(e.created),
            notify: e.notify,
        }
    }
}

pub struct Entry {
    pub rule: Rule,
    pub stats: Arc<RuleStats>,
    /// `rule.actions`, shared with every compiled classifier (a compile of
    /// 100 000 rules then allocates no action lists).
    actions: Arc<[Action]>,
    pub created: Instant,
    /// An OpenFlow controller asked to hear of its removal (SEND_FLOW_REM).
    pub notify: bool,
    /// Last time the rule's packet count was seen to move (idle_timeout).
    last_used: Instant,
    last_packets: u64,
}

impl Entry {
    fn new(rule: Rule, n_pmds: usize, now: Instant) -> Entry {
        Entry {
            actions: rule.actions.as_slice().into(),
            rule,
            stats: RuleStats::new(n_pmds),
            created: now,
            notify: false,
            last_used: now,
            last_packets: 0,
        }
    }

    pub fn idle_secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.last_used).as_secs()
    }
}

pub struct FlowTable {
    entries: Vec<Entry>,
    /// (table, priority, match) -> index in `entries`: an add finds the rule it
    /// replaces without a scan (a 30 000-line add-flows stays linear).
    index: HashMap<(u8, u16, Match), usize>,
    n_pmds: usize,
}

impl FlowTable {
    /// A fresh bridge: `table=0,priority=0,actions=normal`.
    pub fn new(n_pmds: usize) -> FlowTable {
        let mut t = FlowTable::empty(n_pmds);
        t.add(Rule::default_normal()).expect("one rule fits");
        t
    }

    pub fn empty(n_pmds: usize) -> FlowTable {
        FlowTable {
            entries: Vec::new(),
            index: HashMap::new(),
            n_pmds,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.entries.iter().map(|e| &e.rule)
    }

    /// Adds a rule; one with the same table, priority and match is replaced
    /// (counters restart), as OpenFlow's add does.
    pub fn add(&mut self, rule: Rule) -> Result<(), String> {
        self.add_notifying(rule, false)
    }

    /// As `add`; `notify`: report the rule's removal (SEND_FLOW_REM).
    pub fn add_notifying(&mut self, rule: Rule, notify: bool) -> Result<(), String> {
        let now = Instant::now();
        let id = (rule.table, rule.priority, rule.m);
        if let Some(&i) = self.index.get(&id) {
            self.entries[i] = Entry::new(rule, self.n_pmds, now);
            self.entries[i].notify = notify;
            return Ok(());
        }
        if self.entries.len() >= MAX_RULES {
            return Err(format!(
                "the bridge holds {MAX_RULES} rules, the most it takes"
            ));
        }
        self.index.insert(id, self.entries.len());
        let mut e = Entry::new(rule, self.n_pmds, now);
        e.notify = notify;
        self.entries.push(e);
        Ok(())
    }

    /// True when a rule of the same table and priority as `rule` could
    /// match a packet `rule` matches (OpenFlow's CHECK_OVERLAP).
    pub fn overlaps(&self, rule: &Rule) -> bool {
        self.entries.iter().any(|e| {
            e.rule.table == rule.table
                && e.rule.priority == rule.priority
                && e.rule.m != rule.m
                && e.rule.m.overlaps(&rule.m)
        })
    }

    /// Resets the counters of the rules `f` selects (OpenFlow's RESET_COUNTS).
    pub fn reset_counts(&mut self, f: &Filter, strict: bool) {
        let now = Instant::now();
        for e in self
            .entries
            .iter_mut()
            .filter(|e| f.selects(&e.rule, strict))
        {
            let notify = e.notify;
            *e = Entry::new(e.rule.clone(), self.n_pmds, now);
            e.notify = notify;
        }
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| ((e.rule.table, e.rule.priority, e.rule.m), i))
            .collect();
    }

    /// Several adds that all happen or none do.
    pub fn add_all(&mut self, rules: Vec<Rule>) -> Result<(), String> {
        if self.entries.len() + rules.len() > MAX_RULES {
            return Err(format!("the bridge would hold more than {MAX_RULES} rules"));
        }
        for r in rules {
            self.add(r)?;
        }
        Ok(())
    }

    /// New actions (and a new cookie, if given) for the selected rules,
    /// counters kept; how many changed. Like OpenFlow 1.1+, a modify that
    /// selects nothing adds nothing. Actions a selected rule's table cannot
    /// take (goto_table backwards) change nothing.
    pub fn modify(
        &mut self,
        f: &Filter,
        actions: &[Action],
        new_cookie: Option<u64>,
        strict: bool,
    ) -> Result<usize, String> {
        for e in self.entries.iter().filter(|e| f.selects(&e.rule, strict)) {
            check_actions_for_table(actions, e.rule.table)?;
        }
        let mut n = 0;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| f.selects(&e.rule, strict))
        {
            e.rule.actions = actions.to_vec();
            e.actions = actions.into();
            if let Some(c) = new_cookie {
                e.rule.cookie = c;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Removes the selected rules and returns them.
    pub fn delete(&mut self, f: &Filter, strict: bool) -> Vec<Removed> {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.entries.retain(|e| {
            let sel = f.selects(&e.rule, strict);
            if sel {
                gone.push(Removed::of(e, now));
            }
            !sel
        });
        if !gone.is_empty() {
            self.reindex();
        }
        gone
    }

    pub fn select<'a>(&'a self, f: &'a Filter) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| f.selects(&e.rule, false))
    }

    /// Removes rules past their idle or hard timeout (housekeeping, about
    /// once a second); returns them.
    pub fn expire(&mut self, now: Instant) -> Vec<(Removed, bool)> {
        let mut gone = Vec::new();
        self.entries.retain_mut(|e| {
            let (packets, _) = e.stats.total();
            if packets != e.last_packets {
                e.last_packets = packets;
                e.last_used = now;
            }
            let r = &e.rule;
            let hard = r.hard_timeout != 0
                && now.saturating_duration_since(e.created).as_secs() >= r.hard_timeout as u64;
            let idle = r.idle_timeout != 0 && e.idle_secs(now) >= r.idle_timeout as u64;
            if hard || idle {
                // (rule, whether the hard timeout ended it)
                gone.push((Removed::of(e, now), hard));
            }
            !(hard || idle)
        });
        if !gone.is_empty() {
            self.reindex();
        }
        gone
    }

    pub fn compile(&self) -> Classifier {
        Classifier::build(self.entries.iter().map(|e| (&e.rule, &e.actions, &e.stats)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::rule::DEFAULT_PRIORITY;
    use std::time::Duration;

    fn r(priority: u16, table: u8, actions: Vec<Action>) -> Rule {
        Rule {
            table,
            priority,
            actions,
            ..Rule::default_normal()
        }
    }

    #[test]
    fn add_replaces_identical_and_modify_keeps_counters() {
        let mut t = FlowTable::new(1);
        assert_eq!(t.len(), 1);
        t.add(r(0, 0, vec![Action::Flood])).unwrap();
        assert_eq!(t.len(), 1, "same table, priority and match: replaced");
        t.add(r(5, 0, vec![])).unwrap();
        t.add(r(5, 1, vec![])).unwrap();
        assert_eq!(t.len(), 3);
        t.entries[1].stats.count(0, 100);
        let mut f = Filter::ALL;
        f.table = Some(0);
        assert_eq!(t.modify(&f, &[Action::Output(3)], None, false), Ok(2));
        assert_eq!(t.entries[1].stats.total(), (1, 100));
        f.priority = Some(5);
        assert_eq!(t.modify(&f, &[Action::Normal], Some(9), true), Ok(1));
        assert_eq!(t.entries[1].rule.actions, vec![Action::Normal]);
        assert_eq!(t.entries[1].rule.cookie, 9);
        assert!(
            t.modify(&Filter::ALL, &[Action::GotoTable(1)], None, false)
                .is_err(),
            "table 1 cannot goto 1"
        );
        assert_eq!(
            t.entries[2].rule.actions,
            vec![],
            "a refused modify changes nothing"
        );
        f.priority = Some(DEFAULT_PRIORITY);
        assert_eq!(t.delete(&f, true).len(), 0);
        t.add(r(5, 1, vec![Action::Flood])).unwrap();
        assert_eq!(t.len(), 3, "the index still finds rules after a modify");
        assert_eq!(t.delete(&Filter::ALL, false).len(), 3);
        t.add(r(5, 1, vec![])).unwrap();
        assert_eq!(t.len(), 1, "and after a delete");
        t.delete(&Filter::ALL, false);
        assert!(t.is_empty());
        assert_eq!(t.compile().n_rules(), 0);
    }

    #[test]
    fn timeouts_expire() {
        let mut t = FlowTable::empty(1);
        let mut idle = r(1, 0, vec![]);
        idle.idle_timeout = 2;
        let mut hard = r(2, 0, vec![]);
        hard.hard_timeout = 3;
        t.add(idle).unwrap();
        t.add(hard).unwrap();
        let t0 = Instant::now();
        assert!(t.expire(t0 + Duration::from_secs(1)).is_empty());
        t.entries[0].stats.count(0, 60); // used: idle clock restarts
        assert!(t.expire(t0 + Duration::from_millis(2500)).is_empty());
        let gone = t.expire(t0 + Duration::from_secs(3));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0.rule.priority, 2, "hard timeout first");
        assert!(gone[0].1, "ended by its hard timeout");
        assert_eq!(t.expire(t0 + Duration::from_millis(4600)).len(), 1);
    }
}
