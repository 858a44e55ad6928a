//! Tunnel stages on a real PMD thread: ring ports stand for the VM port and
//! the underlay (the bridge's own checks that an underlay is a dpdk port are
//! not in play here; `tests/vxlan.rs` runs against Linux's VXLAN).

use super::{access, frame, mac, tagged, wait_for, Rig};
use crate::datapath::snapshot::{RxqAssign, Snapshot, SwitchPort, TunnelRef};
use crate::datapath::stats::DpDrop;
use crate::flow::vlan::PortVlan;
use crate::tunnel::vxlan::{self, Outer, OUTER_LEN};
use crate::tunnel::{arp, Neighbour, Tunnel, VxlanOptions};
use pmd::Port;
use std::sync::Arc;

const LOCAL: [u8; 4] = [10, 0, 0, 1];
const R1: [u8; 4] = [10, 0, 0, 2];
const R2: [u8; 4] = [10, 0, 0, 3];
const UNDERLAY_MAC: [u8; 6] = [2, 0xee, 0, 0, 0, 1];
const VNI: u32 = 42;

fn remote_mac(ip: [u8; 4]) -> [u8; 6] {
    [2, 0xaa, 0, 0, 0, ip[3]]
}

/// r0: a VM port, r1: the underlay, r2: a tunnel to R1 and R2.
fn rig() -> (Rig, Arc<Tunnel>) {
    rig_with(1, &[])
}

/// As `rig`, with `vms` VM ports (r0, r3, r4 ...) and VLAN options by port number.
fn rig_with(vms: usize, vlans: &[(u16, PortVlan)]) -> (Rig, Arc<Tunnel>) {
    let mut r = Rig::new(1 + vms);
    let opts = VxlanOptions::parse(
        Some("10.0.0.2,10.0.0.3"),
        Some("10.0.0.1"),
        Some(VNI),
        None,
        Some("r1"),
    )
    .unwrap();
    let t = Arc::new(Tunnel::new(opts, UNDERLAY_MAC, 1500, 1, |ip| {
        Arc::new(Neighbour::new(ip))
    }));
    // Port numbers: r0 = 1, r1 (underlay) = 2, the tunnel = 3, r3 = 4 ...
    let no = |i: usize| if i < 2 { i as u16 + 1 } else { i as u16 + 2 };
    let mut ports: Vec<Arc<SwitchPort>> = (0..1 + vms)
        .map(|i| {
            let p: Arc<dyn Port> = r.ends[i].0.clone();
            Arc::new(SwitchPort::new(no(i), format!("r{i}"), p))
        })
        .collect();
    ports.push(Arc::new(SwitchPort::new(3, "r2".into(), t.clone())));
    let cores = r.dp.cores();
    let snap = Snapshot::build(ports, &cores, RxqAssign::RoundRobin)
        .with_flows(Arc::new(r.table.compile()))
        .with_vlans(&vlans.iter().cloned().collect())
        .with_tunnels(&[TunnelRef {
            no: 3,
            tunnel: t.clone(),
            underlay_no: 2,
        }]);
    assert!(
        snap.poll.iter().flatten().all(|q| q.slot != 2),
        "a tunnel is not polled"
    );
    r.snap = Some(r.dp.publish(snap));
    (r, t)
}

/// What a remote endpoint at `from` sends us for `inner`.
fn from_remote(from: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let o = Outer::new(remote_mac(from), from, LOCAL, 4789, vni);
    let mut f = vec![0u8; OUTER_LEN];
    o.write(&mut f, UNDERLAY_MAC, inner.len(), vxlan::src_port(inner));
    f.extend_from_slice(inner);
    f
}

fn arp_reply_from(ip: [u8; 4]) -> Vec<u8> {
    let asked = arp::parse(&arp::request(UNDERLAY_MAC, LOCAL, ip)).unwrap();
    arp::reply(&asked, remote_mac(ip), ip).to_vec()
}

/// (outer destination IP, VNI, inner frame) of a frame the underlay sent.
fn opened(f: &[u8]) -> ([u8; 4], u32, Vec<u8>) {
    match vxlan::classify(f, f[30..34].try_into().unwrap(), |p| p == 4789) {
        vxlan::Underlay::Vxlan {
            vni,
            inner_at,
            inner_len,
            ..
        } => {
            assert_eq!(&f[6..12], &UNDERLAY_MAC, "sent from the underlay's MAC");
            assert_eq!(&f[26..30], &LOCAL, "from local-ip");
            let dst: [u8; 4] = f[30..34].try_into().unwrap();
            assert_eq!(&f[0..6], &remote_mac(dst), "to the MAC ARP found");
            (dst, vni, f[inner_at..inner_at + inner_len].to_vec())
        }
        other => panic!("not VXLAN from us: {other:?} {f:02x?}"),
    }
}

#[test]
fn frames_go_out_to_each_remote_and_come_back_decapsulated_behind_theirs() {
    let (mut r, t) = rig();
    // Nothing resolved yet: a broadcast is two no_arp drops.
    let bcast = frame([0xff; 6], mac(1));
    r.send(0, std::slice::from_ref(&bcast));
    wait_for("no_arp", || t.drops()[0].1 == 2);
    assert_eq!(r.port_drops(0, DpDrop::NoArp), 2);
    // The remotes answer ARP: now one copy each.
    r.send(1, &[arp_reply_from(R1), arp_reply_from(R2)]);
    wait_for("both resolved", || {
        t.remotes.iter().all(|x| x.mac().is_some())
    });
    r.send(0, std::slice::from_ref(&bcast));
    let out = r.recv(1, 2);
    assert_eq!(out.len(), 2, "head-end replication: one per remote");
    let mut dsts: Vec<[u8; 4]> = out
        .iter()
        .map(|f| {
            let (dst, vni, inner) = opened(f);
            assert_eq!((vni, inner.as_slice()), (VNI, bcast.as_slice()));
            dst
        })
        .collect();
    dsts.sort();
    assert_eq!(dsts, vec![R1, R2]);
    // A MAC behind R2 talks to the VM: decapsulated, learned behind R2.
    let reply = frame(mac(1), mac(9));
    r.send(1, &[from_remote(R2, VNI, &reply)]);
    assert_eq!(r.recv(0, 1), vec![reply]);
    assert_eq!(r.fdb.lookup_at(0, &mac(9)), Some((3, 2)));
    // Unicast to it goes to R2 only.
    r.send(0, &vec![frame(mac(9), mac(1)); 5]);
    let out = r.recv(1, 5);
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|f| opened(f).0 == R2));
    assert_eq!(t.remote_counters(1).tx_packets, 6);
    assert_eq!(t.remote_counters(1).rx_packets, 1);
    assert_eq!(t.remote_counters(0).tx_packets, 1);
    // The MAC moves behind R1: relearned there.
    r.send(1, &[from_remote(R1, VNI, &frame([0xff; 6], mac(9)))]);
    assert_eq!(r.recv(0, 1).len(), 1);
    wait_for("moved to R1", || {
        r.fdb.lookup_at(0, &mac(9)) == Some((3, 1))
    });
    // From R1 to a MAC behind R2: endpoints talk directly, never through us.
    r.send(1, &[from_remote(R2, VNI, &frame([0xff; 6], mac(8)))]);
    r.recv(0, 1);
    r.send(1, &[from_remote(R1, VNI, &frame(mac(8), mac(9)))]);
    wait_for("split horizon", || r.port_drops(2, DpDrop::SamePort) == 1);
    assert!(r.recv(1, 0).is_empty(), "nothing back into the underlay");
}

#[test]
fn the_underlay_answers_arp_for_local_ip_and_drops_what_is_not_a_tunnels() {
    let (mut r, t) = rig();
    // Who has 10.0.0.1? The switch does.
    let q = arp::request([2, 0, 0, 0, 0, 0x77], [10, 0, 0, 9], LOCAL);
    r.send(1, &[q.to_vec()]);
    let got = r.recv(1, 1);
    assert_eq!(got.len(), 1);
    let a = arp::parse(&got[0]).unwrap();
    assert_eq!(
        (a.op, a.sender_mac, a.sender_ip, a.target_ip),
        (arp::REPLY, UNDERLAY_MAC, LOCAL, [10, 0, 0, 9])
    );
    assert_eq!(&got[0][0..6], &[2, 0, 0, 0, 0, 0x77]);
    // A request from a remote resolves it too.
    r.send(1, &[arp::request(remote_mac(R1), R1, LOCAL).to_vec()]);
    r.recv(1, 1);
    wait_for("R1 from its request", || {
        t.remotes[0].mac() == Some(remote_mac(R1))
    });
    let inner = frame(mac(1), mac(9));
    let mut malformed = from_remote(R1, VNI, &inner);
    malformed[42] = 0x0c; // a flag VXLAN does not have
    let mut v6 = from_remote(R1, VNI, &inner);
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    r.send(
        1,
        &[
            from_remote(R1, VNI + 1, &inner),
            from_remote([10, 0, 0, 99], VNI, &inner),
            malformed,
            v6,
            arp::request([2; 6], [10, 0, 0, 9], [10, 0, 0, 50]).to_vec(),
        ],
    );
    wait_for("underlay drops", || {
        [
            DpDrop::VxlanBadVni,
            DpDrop::VxlanUnknownRemote,
            DpDrop::VxlanMalformed,
        ]
        .iter()
        .all(|&d| r.port_drops(1, d) == 1)
            && r.port_drops(1, DpDrop::UnderlayOther) == 2
    });
    assert!(r.recv(0, 0).is_empty(), "none reached the VM");
    assert!(r.recv(1, 0).is_empty(), "and none was answered");
    // The tunnel still forwards.
    r.send(1, &[from_remote(R1, VNI, &inner)]);
    assert_eq!(r.recv(0, 1), vec![inner]);
}

#[test]
fn a_frame_too_large_for_the_underlay_is_dropped_and_counted() {
    let (mut r, t) = rig();
    r.send(1, &[arp_reply_from(R1), arp_reply_from(R2)]);
    wait_for("resolved", || t.remotes.iter().all(|x| x.mac().is_some()));
    let mut big = frame([0xff; 6], mac(1));
    big.resize(t.max_inner_len + 1, 0);
    let mut fits = big.clone();
    fits.truncate(t.max_inner_len);
    r.send(0, &[big, fits.clone()]);
    let out = r.recv(1, 2);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|f| f.len() == 1514 && opened(f).2 == fits));
    wait_for("tunnel_mtu", || t.drops()[1].1 == 1);
    assert_eq!(r.port_drops(0, DpDrop::TunnelMtu), 1);
}

#[test]
fn the_tunnels_tag_maps_its_vni_to_a_vlan() {
    // VMs r0 in VLAN 10 and r2 (port 4) in VLAN 20; the tunnel carries VLAN 10.
    let (mut r, t) = rig_with(2, &[(1, access(10)), (3, access(10)), (4, access(20))]);
    r.send(1, &[arp_reply_from(R1), arp_reply_from(R2)]);
    wait_for("resolved", || t.remotes.iter().all(|x| x.mac().is_some()));
    // VLAN 10 leaves inside VNI 42 untagged; VLAN 20 never enters the tunnel.
    let f = frame([0xff; 6], mac(1));
    r.send(0, std::slice::from_ref(&f));
    let out = r.recv(1, 2);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| opened(o).2 == f), "untagged inside");
    r.send(2, &[frame([0xff; 6], mac(2))]);
    assert!(r.recv(1, 0).is_empty(), "VLAN 20 stays off the tunnel");
    // From the tunnel: to VLAN 10's port only.
    let back = frame([0xff; 6], mac(9));
    r.send(1, &[from_remote(R1, VNI, &back)]);
    assert_eq!(r.recv(0, 1), vec![back]);
    assert!(r.recv(2, 0).is_empty());
    // A tagged frame inside an access tunnel's VNI is not admitted.
    r.send(1, &[from_remote(R1, VNI, &tagged([0xff; 6], mac(9), 20))]);
    wait_for("vlan drop", || r.port_drops(2, DpDrop::Vlan) == 1);
    assert!(r.recv(0, 0).is_empty() && r.recv(2, 0).is_empty());
}
