//! Our virtio-user driver (through ferrovs-testpmd) against OVS-DPDK's
//! `dpdkvhostuser` ports, i.e. DPDK's vhost library as OVS runs it: OVS is
//! the vhost-user server, we are the frontend, and the bridge forwards
//! between the two ports with the NORMAL action (MAC learning).
//!
//! flowgen sends random payloads with a checksum from both ports at once,
//! paced so no ring ever fills; every frame must arrive intact on the other
//! port, and OVS's own counters must agree with ours.
//!
//! Three things about OVS shape the runs:
//! - OVS polls a vhost device only after its vhost-events thread (which
//!   sleeps up to 64 ms between looks) has enabled the queues: 2-65 ms after
//!   the handshake, 90-210 ms on a port's first connection (which also
//!   reassigns rx queues to PMDs). Meanwhile what we send waits in our tx
//!   ring, which at 100 kpps overflows after 10 ms. So each test first
//!   connects once without traffic, and the measured run starts with
//!   `--tx-first`: one burst per port; generators start once OVS has
//!   consumed it.
//! - It enables the four queues one by one, so a port's tx-first burst can
//!   reach OVS after its own rx queue is enabled but before the other
//!   port's tx queue is, and OVS drops it. Those 32 frames per port may be
//!   missing, nothing else.
//! - Its PMD stalls now and then on a 2-CPU machine: iterations of 3-8 ms
//!   (`dpif-netdev/pmd-perf-log-set` shows them), and in about one run of
//!   twenty one long enough (~17 ms) to overflow a 1024-entry ring at
//!   100 kpps. So each run is paced for a ring to hold 40 ms of its
//!   traffic: 64-byte frames at 100 kpps per port on 4096-entry rings,
//!   1518-byte frames at 25 kpps per port on the default 1024.

use ferrovs_tests::ovs::Ovs;
use ferrovs_tests::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Frames each port sends with `--tx-first` (one burst). They are in the
/// port totals; their payload is unchecked, so receivers count them as
/// "foreign", never as good or bad.
const TX_FIRST: u64 = 32;

fn ports(socks: &[PathBuf; 2], opts: &str) -> Vec<String> {
    socks
        .iter()
        .map(|s| format!("--port=virtio-user:path={}{opts}", s.display()))
        .collect()
}

/// flowgen of `pkts` frames of `size` bytes at `pps` (both directions
/// together) through OVS, with `opts` added to both port specs; checks the
/// frames and both sides' counters.
fn flowgen_through_ovs(opts: &str, size: usize, pkts: u64, pps: u64) {
    let _g = serial();
    let t0 = Instant::now();
    let ovs = Ovs::start();
    let socks = ovs.sockets();
    // Warm-up connection: OVS's first-connection setup happens here.
    let mut args = ports(&socks, opts);
    args.extend(
        [
            "--forward-mode=rxonly",
            "--duration=0.3",
            "--lcores=0",
            "--link-wait=20",
        ]
        .map(String::from),
    );
    ferrovs_testpmd(&args, Duration::from_secs(60));

    let mut args = ports(&socks, opts);
    args.extend([
        "--forward-mode=flowgen".into(),
        "--flows=16".into(),
        format!("--txpkts={size}"),
        format!("--nb-pkts={pkts}"),
        format!("--tx-pps={pps}"),
        "--tx-first".into(),
        "--lcores=0".into(),
        "--link-wait=20".into(),
        "--duration=60".into(),
    ]);
    let s = ferrovs_testpmd(&args, Duration::from_secs(90));
    // The warm-up sent nothing, so these count the measured run only.
    let ovs_rx = ovs.rx_packets();
    let ctx = || {
        format!(
            "ferrovs-testpmd: {s:#}\nOVS received (vhu0, vhu1): {ovs_rx:?}\nvhu0 {:?}\nvhu1 {:?}\n{}",
            ovs.interface_statistics("vhu0"),
            ovs.interface_statistics("vhu1"),
            ovs.log_tail()
        )
    };
    eprintln!(
        "{size} B: {} generated, {} good, {} bad, {} foreign in {:.2} s; OVS received {ovs_rx:?}; test took {:.1} s",
        s["generated"], s["checked"]["good"], s["checked"]["bad"], s["checked"]["foreign"],
        s["duration_s"].as_f64().unwrap(), t0.elapsed().as_secs_f64()
    );

    let n = |v: &Value| v.as_u64().unwrap();
    let port = |i: usize, f: &str| n(&s["ports"][i][f]);
    assert_eq!(n(&s["generated"]), pkts, "{}", ctx());
    assert_eq!(n(&s["checked"]["bad"]), 0, "corrupted frames: {}", ctx());
    // Every generated frame arrived intact; besides them only tx-first frames.
    assert_eq!(n(&s["checked"]["good"]), pkts, "{}", ctx());
    assert!(n(&s["checked"]["foreign"]) <= 2 * TX_FIRST, "{}", ctx());
    assert_eq!(
        n(&s["checked"]["good"]) + n(&s["checked"]["foreign"]),
        port(0, "rx_packets") + port(1, "rx_packets"),
        "{}",
        ctx()
    );
    for i in 0..2 {
        assert_eq!(s["ports"][i]["link_up"], true, "{}", ctx());
        // Our tx ring never overflowed: OVS kept up.
        assert!(
            s["ports"][i]["drops"].as_object().unwrap().is_empty(),
            "drops: {}",
            ctx()
        );
        // Stream i receives on port i and sends on the other; each has half the budget.
        assert_eq!(port(i, "tx_packets"), pkts / 2 + TX_FIRST, "{}", ctx());
        // OVS received on vhuN everything we sent on port N ...
        assert_eq!(ovs_rx[i], port(i, "tx_packets"), "vhu{i}: {}", ctx());
        // ... and we received all of it on the other port, except perhaps
        // the tx-first burst (see the top of the file). Flooding before
        // OVS has learned the MACs loses nothing: br0's only other port is
        // down, so a flooded frame still reaches exactly the one peer.
        let lost = ovs_rx[i] - port(1 - i, "rx_packets");
        assert!(
            lost == 0 || lost == TX_FIRST,
            "vhu{i} -> port {}: {lost} lost: {}",
            1 - i,
            ctx()
        );
    }
    // OVS did not complain about our side of the vhost-user protocol.
    let log = ovs.vswitchd_log();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains("|ERR|") || l.contains("|WARN|")) && l.contains("VHOST"))
        .collect();
    assert!(
        complaints.is_empty(),
        "OVS complained:\n{}",
        complaints.join("\n")
    );
}

#[test]
fn virtio_user_through_ovs_dpdk_dpdkvhostuser() {
    flowgen_through_ovs(",queue-size=4096", 64, 200_000, 200_000);
}

/// 1518-byte frames, each sent through an INDIRECT_DESC table, into DPDK's
/// vhost library.
#[test]
fn virtio_user_jumbo_indirect_through_ovs_dpdk() {
    flowgen_through_ovs(",tx-indirect=1", 1518, 50_000, 50_000);
}
