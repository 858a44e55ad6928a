//! What a rule is: a masked match, a priority in a table, an ordered list of
//! actions, and the bookkeeping an ovs-ofctl user sees (cookie, timeouts).

use super::key::{Field, FlowKey};

/// A match: `value` is already masked, so a key matches when
/// `key & mask == value`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Match {
    pub value: FlowKey,
    pub mask: FlowKey,
}

impl Match {
    /// Matches every packet.
    pub const ANY: Match = Match {
        value: FlowKey { w: [0; 4] },
        mask: FlowKey { w: [0; 4] },
    };

    #[inline]
    pub fn matches(&self, k: &FlowKey) -> bool {
        k.masked(&self.mask) == self.value
    }

    /// Sets `field` to `value` under `mask` (bits outside the field ignored).
    pub fn set(&mut self, field: Field, value: u64, mask: u64) {
        field.set(&mut self.mask, mask);
        field.set(&mut self.value, value & mask);
    }

    pub fn get(&self, field: Field) -> (u64, u64) {
        (field.get(&self.value), field.get(&self.mask))
    }

    /// True when some packet matches both (their fixed bits agree wherever
    /// both care).
    pub fn overlaps(&self, other: &Match) -> bool {
        (0..4).all(|i| (self.value.w[i] ^ other.value.w[i]) & self.mask.w[i] & other.mask.w[i] == 0)
    }

    /// True when every packet `other` matches also matches `self`: the
    /// loose comparison of ovs-ofctl's del-flows/dump-flows/mod-flows.
    pub fn covers(&self, other: &Match) -> bool {
        (0..4).all(|i| {
            self.mask.w[i] & !other.mask.w[i] == 0
                && other.value.w[i] & self.mask.w[i] == self.value.w[i]
        })
    }
}

/// One action of a rule, executed in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `output:PORT` (a port number; output to the input port is dropped, as in OVS).
    Output(u16),
    /// `in_port`: back out of the port the packet came from.
    InPort,
    /// `normal`: the VLAN-aware learning switch.
    Normal,
    /// `flood`: every port but the input port.
    Flood,
    /// `all`: every port but the input port.
    All,
    /// `mod_vlan_vid:N`: sets the VID, pushing a tag if there is none.
    ModVlanVid(u16),
    /// `mod_vlan_pcp:N`: sets the PCP, pushing a tag if there is none.
    ModVlanPcp(u8),
    /// `strip_vlan` / `pop_vlan`: removes the outer tag.
    StripVlan,
    /// `push_vlan:TPID`: a new outer tag with VID 0 and PCP 0 (as OVS does).
    PushVlan(u16),
    ModDlSrc([u8; 6]),
    ModDlDst([u8; 6]),
    /// `resubmit(,N)`: look the packet up in table N, run what matches, continue.
    Resubmit(u8),
    /// `goto_table:N` (last): as resubmit, in OpenFlow 1.3 words.
    GotoTable(u8),
    /// `controller:MAX_LEN`: a copy of the packet as it is now goes to the
    /// OpenFlow controllers (PACKET_IN, reason "action"), at most `max_len`
    /// bytes of it (65535: all).
    Controller {
        max_len: u16,
    },
}

impl Action {
    /// Whether the action hands the packet to a port (or to another table).
    pub fn consumes(&self) -> bool {
        matches!(
            self,
            Action::Output(_)
                | Action::InPort
                | Action::Normal
                | Action::Flood
                | Action::All
                | Action::Resubmit(_)
                | Action::GotoTable(_)
                | Action::Controller { .. }
        )
    }
}

pub const DEFAULT_PRIORITY: u16 = 32768;
/// OVS's table numbers: 0..=254; 255 means "all tables" in requests.
pub const MAX_TABLE: u8 = 254;
pub const ALL_TABLES: u8 = 255;

/// A complete rule as added by `add-flow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub table: u8,
    pub priority: u16,
    pub cookie: u64,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub m: Match,
    pub actions: Vec<Action>,
}

impl Rule {
    /// The bridge's rule before anyone adds one: `priority=0,actions=normal`.
    pub fn default_normal() -> Rule {
        Rule {
            table: 0,
            priority: 0,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            m: Match::ANY,
            actions: vec![Action::Normal],
        }
    }
}

/// What selects rules in `mod-flows`, `del-flows` and `dump-flows`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// None: every table.
    pub table: Option<u8>,
    pub priority: Option<u16>,
    /// (value, mask): a rule is selected when `rule.cookie & mask == value & mask`.
    pub cookie: (u64, u64),
    pub m: Match,
    /// Only rules that output to this port (`out_port=`).
    pub out_port: Option<u16>,
}

impl Filter {
    pub const ALL: Filter = Filter {
        table: None,
        priority: None,
        cookie: (0, 0),
        m: Match::ANY,
        out_port: None,
    };

    /// Loose: `rule.m` is at least as specific as the filter's match.
    /// Strict: the same match and priority.
    pub fn selects(&self, r: &Rule, strict: bool) -> bool {
        if self.table.is_some_and(|t| t != r.table) {
            return false;
        }
        if r.cookie & self.cookie.1 != self.cookie.0 & self.cookie.1 {
            return false;
        }
        if let Some(p) = self.out_port {
            if !r.actions.contains(&Action::Output(p)) {
                return false;
            }
        }
        if strict {
            r.m == self.m && r.priority == self.priority.unwrap_or(DEFAULT_PRIORITY)
        } else {
            self.m.covers(&r.m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_is_loose_matching() {
        let mut ip = Match::ANY;
        ip.set(Field::DL_TYPE, 0x0800, 0xffff);
        let mut net = ip;
        net.set(Field::NW_SRC, 0x0a00_0000, 0xffff_ff00);
        let mut host = ip;
        host.set(Field::NW_SRC, 0x0a00_0005, 0xffff_ffff);
        let mut other = ip;
        other.set(Field::NW_SRC, 0x0b00_0005, 0xffff_ffff);
        assert!(Match::ANY.covers(&net));
        assert!(ip.covers(&net));
        assert!(net.covers(&host));
        assert!(!host.covers(&net));
        assert!(!net.covers(&other));
        assert!(!net.covers(&ip));
    }

    #[test]
    fn filters_select_by_table_cookie_and_strictness() {
        let mut r = Rule::default_normal();
        r.cookie = 0x12;
        r.priority = 5;
        let mut f = Filter::ALL;
        assert!(f.selects(&r, false));
        f.cookie = (0x10, 0xf0);
        assert!(f.selects(&r, false));
        f.cookie = (0x20, 0xf0);
        assert!(!f.selects(&r, false));
        f.cookie = (0, 0);
        f.table = Some(1);
        assert!(!f.selects(&r, false));
        f.table = None;
        assert!(!f.selects(&r, true), "strict needs the priority too");
        f.priority = Some(5);
        assert!(f.selects(&r, true));
        f.out_port = Some(3);
        assert!(!f.selects(&r, false));
    }
}
