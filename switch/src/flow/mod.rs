//! The flow table: what rules match on ([`key`]), what a rule is
//! ([`rule`]), how operators write one ([`syntax`], ovs-ofctl's words), how
//! the control plane keeps them ([`table`]), how the packet path looks them
//! up ([`classifier`], then the per-PMD [`cache`] in front of it), and the
//! header edits actions make ([`edit`]) and a port's VLAN rules ([`vlan`]).

pub mod cache;
pub mod classifier;
pub mod edit;
pub mod key;
pub mod rule;
pub mod syntax;
pub mod table;
pub mod vlan;
