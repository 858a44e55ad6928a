//! The per-PMD exact-match cache (OVS's EMC): (table, full flow key) -> the
//! classifier's answer, direct-mapped by the key's hash. It lives as long as
//! one snapshot: a PMD clears it when it adopts a new one, so a rule change
//! or a port removal is decided anew from the next burst on. MAC moves never
//! make it stale: it caches rules, and `normal` reads the FDB each time.

use super::key::FlowKey;

pub const ENTRIES: usize = 8192;

/// The classifier found no rule (cached too: misses are often floods of
/// the same unmatched flow).
pub const NO_MATCH: u32 = u32::MAX - 1;
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Entry {
    key: FlowKey,
    rule: u32,
}

pub struct ExactCache {
    entries: Box<[Entry]>,
}

impl Default for ExactCache {
    fn default() -> Self {
        ExactCache {
            entries: vec![
                Entry {
                    key: FlowKey::default(),
                    rule: EMPTY
                };
                ENTRIES
            ]
            .into_boxed_slice(),
        }
    }
}

impl ExactCache {
    #[inline]
    fn slot(k: &FlowKey) -> usize {
        k.hash() as usize & (ENTRIES - 1)
    }

    /// The cached rule index (or [`NO_MATCH`]) for `k`, which includes its table.
    #[inline]
    pub fn get(&self, k: &FlowKey) -> Option<u32> {
        let e = &self.entries[Self::slot(k)];
        (e.rule != EMPTY && e.key == *k).then_some(e.rule)
    }

    #[inline]
    pub fn insert(&mut self, k: FlowKey, rule: u32) {
        self.entries[Self::slot(&k)] = Entry { key: k, rule };
    }

    pub fn clear(&mut self) {
        for e in self.entries.iter_mut() {
            e.rule = EMPTY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_clear() {
        let mut c = ExactCache::default();
        let mut k = FlowKey::default();
        k.w[3] = 42;
        assert_eq!(c.get(&k), None);
        c.insert(k, 7);
        assert_eq!(c.get(&k), Some(7));
        assert_eq!(c.get(&k.with_table(1)), None, "tables are separate keys");
        c.insert(k.with_table(1), NO_MATCH);
        assert_eq!(c.get(&k.with_table(1)), Some(NO_MATCH));
        c.clear();
        assert_eq!(c.get(&k), None);
    }
}
