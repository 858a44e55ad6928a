//! The packet path's door to the OpenFlow agent: copies of packets that a
//! rule sends to the controller (`controller` action) leave a PMD here, and
//! packets a controller sends (PACKET_OUT) come in here. One pair of
//! bounded lock-free queues per PMD; the PMD never waits on them: a full
//! queue costs the copy (counted as `controller_queue`), never the PMD.

use crate::flow::rule::Action;
use crossbeam_queue::ArrayQueue;
use pmd::Mbuf;

/// Packets a PMD may have waiting for the agent (OVS's controller queue is
/// 100 by default per connection; a burst of floods is larger).
const TO_AGENT: usize = 1024;
/// Packet-outs waiting for a PMD.
const FROM_AGENT: usize = 256;

/// OFPR_NO_MATCH / OFPR_ACTION, as the agent reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    NoMatch,
    Action,
}

/// A copy of a packet for the controllers, as it was when the action ran.
pub struct ToController {
    pub m: Mbuf,
    pub in_port: u16,
    pub table: u8,
    pub cookie: u64,
    pub reason: Reason,
    /// Bytes of the packet the controller asked for (65535: all).
    pub max_len: u16,
}

/// A packet from a controller and what to do with it.
pub struct FromController {
    pub m: Mbuf,
    /// The port it counts as received on (None: the controller).
    pub in_port: Option<u16>,
    /// `Resubmit(0)` stands for output to TABLE (run the flow table).
    pub actions: Vec<Action>,
}

pub struct Channel {
    pub(super) to_agent: ArrayQueue<ToController>,
    pub(super) from_agent: ArrayQueue<FromController>,
}

impl Default for Channel {
    fn default() -> Channel {
        Channel {
            to_agent: ArrayQueue::new(TO_AGENT),
            from_agent: ArrayQueue::new(FROM_AGENT),
        }
    }
}
