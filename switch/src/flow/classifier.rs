//! The rules compiled for the packet path: per table, rules grouped by mask
//! (tuple space search, as OVS's classifier), each group a hash map from the
//! masked key to its best rule, groups visited from the highest priority they
//! hold down and the search stopped once no group can beat what was found.
//! Immutable: a rule change compiles a new one into the next snapshot.

use super::key::FlowKey;
use super::rule::{Action, Rule};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(FlowKey::hash(self));
    }
}

/// Passes FlowKey's own hash through (std's SipHash would cost more than the lookup).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap = HashMap<FlowKey, u32, BuildHasherDefault<KeyHasher>>;

/// A rule's packet and byte counters: one cache line per PMD, each written
/// only by its PMD; shared by every snapshot the rule is part of, so a
/// recompile keeps them.
pub struct RuleStats {
    slots: Box<[PmdSlot]>,
}

#[repr(align(64))]
#[derive(Default)]
struct PmdSlot {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl RuleStats {
    pub fn new(n_pmds: usize) -> Arc<RuleStats> {
        Arc::new(RuleStats {
            // One more slot for anything that is not a PMD (tests, packet-out).
            slots: (0..n_pmds + 1).map(|_| PmdSlot::default()).collect(),
        })
    }

    #[inline]
    pub fn count(&self, pmd: usize, bytes: u64) {
        self.count_n(pmd, 1, bytes);
    }

    /// Several packets at once (a burst that all took this rule).
    #[inline]
    pub fn count_n(&self, pmd: usize, packets: u64, bytes: u64) {
        let s = &self.slots[pmd.min(self.slots.len() - 1)];
        pmd::port::bump(&s.packets, packets);
        pmd::port::bump(&s.bytes, bytes);
    }

    /// (packets, bytes) over every PMD.
    pub fn total(&self) -> (u64, u64) {
        self.slots.iter().fold((0, 0), |(p, b), s| {
            (p + s.packets.load(Relaxed), b + s.bytes.load(Relaxed))
        })
    }
}

/// A rule as the packet path runs it.
pub struct CompiledRule {
    pub priority: u16,
    /// Goes with the rule's packet-ins (controllers recognise their rules by it).
    pub cookie: u64,
    /// Shared with the table's entry: a compile clones no action list.
    pub actions: Arc<[Action]>,
    pub stats: Arc<RuleStats>,
    /// The actions are just `normal` (the packet path's shortest way).
    pub only_normal: bool,
    /// Priority 0, matches everything: OpenFlow's table-miss entry (its
    /// packet-ins say NO_MATCH).
    pub table_miss: bool,
}

struct Subtable {
    mask: FlowKey,
    max_priority: u16,
    map: KeyMap,
}

#[derive(Default)]
struct Table {
    /// Groups by descending `max_priority`.
    subtables: Vec<Subtable>,
    /// The table's best rule matches every packet: no search needed
    /// (a fresh bridge's `priority=0,actions=normal`).
    catch_all: Option<u32>,
}

#[derive(Default)]
pub struct Classifier {
    rules: Vec<CompiledRule>,
    tables: Vec<Table>,
}

impl Classifier {
    /// Compiles `(rule, its counters)`.
    pub fn build<'a>(
        rules: impl IntoIterator<Item = (&'a Rule, &'a Arc<[Action]>, &'a Arc<RuleStats>)>,
    ) -> Classifier {
        let mut c = Classifier::default();
        // Per table: mask -> [(rule, its masked value)].
        let mut groups: Vec<HashMap<FlowKey, Vec<(u32, FlowKey)>>> = Vec::new();
        for (r, actions, stats) in rules {
            let idx = c.rules.len() as u32;
            c.rules.push(CompiledRule {
                only_normal: r.actions == [Action::Normal],
                table_miss: r.priority == 0 && r.m.mask.is_zero(),
                priority: r.priority,
                cookie: r.cookie,
                actions: actions.clone(),
                stats: stats.clone(),
            });
            let t = r.table as usize;
            if groups.len() <= t {
                groups.resize_with(t + 1, HashMap::new);
            }
            groups[t]
                .entry(r.m.mask)
                .or_default()
                .push((idx, r.m.value));
        }
        for g in groups {
            let mut table = Table::default();
            for (mask, idxs) in g {
                let mut map = KeyMap::with_capacity_and_hasher(idxs.len(), Default::default());
                let mut max_priority = 0;
                for (i, value) in idxs {
                    let p = c.rules[i as usize].priority;
                    max_priority = max_priority.max(p);
                    map.entry(value)
                        .and_modify(|best| {
                            if c.rules[*best as usize].priority < p {
                                *best = i;
                            }
                        })
                        .or_insert(i);
                }
                table.subtables.push(Subtable {
                    mask,
                    max_priority,
                    map,
                });
            }
            table.subtables.sort_by(|a, b| {
                b.max_priority
                    .cmp(&a.max_priority)
                    .then(a.mask.cmp(&b.mask))
            });
            if let Some(first) = table.subtables.first() {
                if first.mask.is_zero() {
                    table.catch_all = first.map.values().next().copied();
                }
            }
            c.tables.push(table);
        }
        c
    }

    /// Compiles rules with fresh counters (tests and benchmarks).
    pub fn from_rules(rules: &[Rule]) -> Classifier {
        let actions: Vec<Arc<[Action]>> =
            rules.iter().map(|r| r.actions.as_slice().into()).collect();
        let stats: Vec<_> = rules.iter().map(|_| RuleStats::new(1)).collect();
        Classifier::build(
            rules
                .iter()
                .zip(&actions)
                .zip(&stats)
                .map(|((r, a), s)| (r, a, s)),
        )
    }

    pub fn rule(&self, i: u32) -> &CompiledRule {
        &self.rules[i as usize]
    }

    pub fn n_rules(&self) -> usize {
        self.rules.len()
    }

    /// The rule that matches every packet of `table`, when its best rule does.
    #[inline]
    pub fn catch_all(&self, table: u8) -> Option<u32> {
        self.tables.get(table as usize).and_then(|t| t.catch_all)
    }

    /// The highest-priority rule of `table` matching `k`.
    #[inline]
    pub fn lookup(&self, table: u8, k: &FlowKey) -> Option<u32> {
        self.lookup_probed(table, k).0
    }

    /// `lookup`, and how many hash tables (masks) it probed: the search's
    /// cost, which `pmd-stats` shows.
    #[inline]
    pub fn lookup_probed(&self, table: u8, k: &FlowKey) -> (Option<u32>, u64) {
        let Some(t) = self.tables.get(table as usize) else {
            return (None, 0);
        };
        if t.catch_all.is_some() {
            return (t.catch_all, 0);
        }
        let mut best: Option<(u16, u32)> = None;
        let mut probes = 0;
        for st in &t.subtables {
            if best.is_some_and(|(p, _)| p >= st.max_priority) {
                break;
            }
            probes += 1;
            if let Some(&i) = st.map.get(&k.masked(&st.mask)) {
                let p = self.rules[i as usize].priority;
                if best.is_none_or(|(bp, _)| p > bp) {
                    best = Some((p, i));
                }
            }
        }
        (best.map(|(_, i)| i), probes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::syntax::{parse_rule, PortNames};

    struct NoNames;
    impl PortNames for NoNames {
        fn number(&self, _: &str) -> Option<u16> {
            None
        }
        fn name(&self, _: u16) -> Option<String> {
            None
        }
    }

    pub fn compile(lines: &[&str]) -> (Vec<Rule>, Classifier) {
        let rules: Vec<Rule> = lines
            .iter()
            .map(|l| parse_rule(l, &NoNames).unwrap())
            .collect();
        let c = Classifier::from_rules(&rules);
        (rules, c)
    }

    fn key(in_port: u16, src: [u8; 4], dport: u16) -> FlowKey {
        let mut f = vec![
            2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0,
        ];
        f.extend_from_slice(&src);
        f.extend_from_slice(&[10, 9, 9, 9, 0, 7]);
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[0, 8, 0, 0]);
        FlowKey::extract(&f, in_port).unwrap()
    }

    #[test]
    fn highest_priority_wins_across_masks() {
        let (_, c) = compile(&[
            "priority=0,actions=normal",
            "priority=10,ip,nw_src=10.0.0.0/8,actions=drop",
            "priority=20,udp,tp_dst=53,actions=output:3",
            "priority=30,in_port=2,ip,nw_src=10.1.0.0/16,actions=output:4",
            "table=1,priority=5,actions=flood",
        ]);
        assert_eq!(c.lookup(0, &key(1, [10, 0, 0, 1], 80)), Some(1));
        assert_eq!(c.lookup(0, &key(1, [10, 0, 0, 1], 53)), Some(2));
        assert_eq!(c.lookup(0, &key(2, [10, 1, 0, 1], 53)), Some(3));
        assert_eq!(c.lookup(0, &key(1, [11, 0, 0, 1], 80)), Some(0));
        assert_eq!(c.lookup(1, &key(1, [11, 0, 0, 1], 80)), Some(4));
        assert_eq!(c.catch_all(1), Some(4));
        assert_eq!(c.catch_all(0), None);
        assert_eq!(
            c.lookup(2, &key(1, [11, 0, 0, 1], 80)),
            None,
            "no such table: no match"
        );
    }

    #[test]
    fn no_match_and_catch_all() {
        let (_, c) = compile(&["priority=10,udp,tp_dst=53,actions=drop"]);
        assert_eq!(c.lookup(0, &key(1, [1, 1, 1, 1], 80)), None);
        let (_, d) = compile(&["priority=0,actions=normal"]);
        assert_eq!(d.catch_all(0), Some(0));
        // A catch-all below a more specific rule is not a shortcut.
        let (_, e) = compile(&["priority=0,actions=normal", "priority=1,udp,actions=drop"]);
        assert_eq!(e.catch_all(0), None);
        assert_eq!(e.lookup(0, &key(1, [1, 1, 1, 1], 80)), Some(1));
    }

    /// The classifier agrees with a linear scan of the rules on random keys.
    #[test]
    fn agrees_with_linear_search() {
        let mut lines = Vec::new();
        for i in 0..200u32 {
            let prio = (i * 7919) % 1000;
            lines.push(match i % 4 {
                0 => format!("priority={prio},ip,nw_src=10.{}.0.0/16,actions=drop", i % 8),
                1 => format!(
                    "priority={prio},udp,tp_dst={},actions=output:{}",
                    1000 + i % 16,
                    i % 5 + 1
                ),
                2 => format!("priority={prio},in_port={},actions=output:2", i % 4 + 1),
                _ => format!(
                    "priority={prio},udp,nw_dst=10.9.9.9,tp_dst={},actions=flood",
                    1000 + i % 16
                ),
            });
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (rules, c) = compile(&refs);
        let mut x = 12345u64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key(
                (x % 5) as u16 + 1,
                [10, (x >> 8) as u8 % 9, 0, 1],
                1000 + (x >> 16) as u16 % 20,
            );
            let want = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.m.matches(&k))
                .map(|(i, r)| (r.priority, i))
                .max_by_key(|(p, _)| *p);
            let got = c.lookup(0, &k);
            assert_eq!(
                got.map(|i| c.rule(i).priority),
                want.map(|(p, _)| p),
                "{k:?}"
            );
        }
    }
}
