//! What arrives on a tunnel's underlay (any bytes): VXLAN classification
//! and ARP parsing never panic, a decapsulated inner frame always lies
//! inside the received one, and any frame encapsulated by us comes back
//! out of classification whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switch::tunnel::arp;
use switch::tunnel::vxlan::{self, Outer, Underlay, OUTER_LEN};

const LOCAL: [u8; 4] = [10, 0, 0, 1];

fuzz_target!(|data: &[u8]| {
    if let Underlay::Vxlan { inner_at, inner_len, .. } = vxlan::classify(data, LOCAL, |p| p == 4789) {
        assert!(inner_len >= 14 && inner_at + inner_len <= data.len());
    }
    let _ = arp::parse(data);
    if data.len() >= 14 && data.len() <= 9000 {
        let o = Outer::new([2; 6], [10, 0, 0, 2], LOCAL, 4789, 0xabcdef);
        let mut f = vec![0u8; OUTER_LEN];
        o.write(&mut f, [4; 6], data.len(), vxlan::src_port(data));
        f.extend_from_slice(data);
        match vxlan::classify(&f, LOCAL, |p| p == 4789) {
            Underlay::Vxlan { vni, inner_at, inner_len, .. } => {
                assert_eq!(vni, 0xabcdef);
                assert_eq!(&f[inner_at..inner_at + inner_len], data);
            }
            other => panic!("our own encapsulation classified as {other:?}"),
        }
    }
});
