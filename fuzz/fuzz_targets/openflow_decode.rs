//! OpenFlow messages from a controller: any bytes decode to a message or to
//! the OFPT_ERROR to answer with; whatever decodes encodes again, and its
//! matches and instructions map onto the flow table or are refused, all
//! without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::message::Message;
use switch::ofagent::mapping;

fuzz_target!(|data: &[u8]| {
    let Ok((h, m)) = openflow::decode(data) else {
        return;
    };
    let _ = openflow::encode(&m, h.xid);
    match &m {
        Message::FlowMod(fm) => {
            let _ = mapping::match_from_of(&fm.m).map(|m| mapping::match_to_of(&m));
            let _ = mapping::instructions_from_of(&fm.instructions, fm.table_id)
                .map(|a| mapping::instructions_to_of(&a));
        }
        Message::PacketOut(po) => {
            let _ = mapping::actions_from_of(&po.actions, mapping::Context::PacketOut);
        }
        _ => {}
    }
});
