//! Guest offloads through the switch (issue 15), with ferrovs-testpmd as a
//! guest that leaves checksums and segmentation to its port (`--tx-offload`)
//! and a receiver that negotiated none of them: the switch finishes every
//! frame in software, and the receiver checks each TCP segment (checksums,
//! and every payload byte against the stream).

use ferrovs_tests::*;
use serde_json::Value;
use std::time::Duration;

fn switch(dir: &std::path::Path, port0_extra: &str) -> Ferrovsd {
    let mut c = String::from("[pmd]\nsleep-max = 100\n[memory]\nn-mbufs = 16384\n");
    for i in 0..2 {
        let extra = if i == 0 { port0_extra } else { "" };
        c.push_str(&format!(
            "[[port]]\nname = \"vhost{i}\"\ntype = \"vhost-user\"\npath = \"vhost{i}.sock\"\n{extra}"
        ));
    }
    Ferrovsd::start(dir, Some(&c))
}

/// Port 0 (tx-offloads on) sends `n` frames of `size` bytes asking for
/// `offload`; port 1 receives and checks.
fn run(sw: &Ferrovsd, offload: &str, size: usize, n: u64) -> Value {
    let a: Vec<String> = vec![
        format!(
            "--port=virtio-user:path={},mac={},tx-offloads=on,queue-size=256",
            sw.port_socket("vhost0").display(),
            mac(1)
        ),
        format!(
            "--port=virtio-user:path={},mac={},queue-size=1024",
            sw.port_socket("vhost1").display(),
            mac(2)
        ),
        "--forward-mode=txonly".into(),
        "--port-topology=loop".into(),
        "--tx-ports=0".into(),
        "--tx-first".into(),
        format!("--eth-peer=0,{}", mac(2)),
        format!("--tx-offload={offload}"),
        format!("--txpkts={size}"),
        format!("--nb-pkts={n}"),
        // One large frame at a time: its segments fit the receiver's ring.
        "--burst=1".into(),
        "--tx-pps=1000".into(),
        "--drain-ms=3000".into(),
        "--mbuf-size=65344".into(),
        "--total-num-mbufs=4096".into(),
        "--no-huge".into(),
        "--lcores=0".into(),
        "--duration=60".into(),
    ];
    let s = ferrovs_testpmd(&a, Duration::from_secs(90));
    assert_eq!(s["generated"], n, "{s:#}");
    s
}

fn checked(s: &Value, port: usize, what: &str) -> u64 {
    s["ports"][port]["checked"][what].as_u64().unwrap()
}

fn pmd_sum(sw: &Ferrovsd, f: fn(&ferrovs_proto::PmdStats) -> u64) -> u64 {
    sw.pmd_stats().iter().map(f).sum()
}

#[test]
fn large_tcp_segments_are_split_in_software_for_a_port_without_tso() {
    let _g = serial();
    let dir = TempDir::new("offload-tso");
    let sw = switch(dir.path(), "");
    let (n, size, mss) = (1000u64, 30_000usize, 1448usize);
    let s = run(&sw, &format!("tso:{mss}"), size, n);
    let per_frame = (size - 54).div_ceil(mss) as u64;
    assert_eq!(checked(&s, 1, "bad"), 0, "{s:#}");
    // Every segment arrives intact, or is a drop the switch counted (the
    // receiver's ring full for a moment).
    let (good, lost) = (checked(&s, 1, "good"), sw.port_stats("vhost1").tx_dropped);
    assert_eq!(good + lost, n * per_frame, "{lost} dropped: {s:#}");
    assert!(good >= n * per_frame / 2, "{s:#}");
    assert_eq!(sw.port_stats("vhost0").gso_rx_frames, n);
    assert_eq!(pmd_sum(&sw, |p| p.soft_gso), n);
    assert_eq!(pmd_sum(&sw, |p| p.soft_segments), n * per_frame);
    let info = sw.ctl(&["show"]);
    assert!(info.contains("HOST_TSO4"), "{info}");
}

#[test]
fn checksums_left_to_the_switch_are_completed_for_a_port_without_csum() {
    let _g = serial();
    let dir = TempDir::new("offload-csum");
    let sw = switch(dir.path(), "");
    let n = 3000u64;
    let s = run(&sw, "csum", 1500, n);
    assert_eq!(checked(&s, 1, "bad"), 0, "{s:#}");
    assert_eq!(checked(&s, 1, "good"), n, "{s:#}");
    assert_eq!(pmd_sum(&sw, |p| p.soft_csum), n);
}

/// `offloads = false`: the port offers none, so the guest finishes its own
/// frames (here: the generator cannot ask, and its frames go out as plain
/// frames with the checksum it left, which the receiver sees as bad).
#[test]
fn a_port_with_offloads_off_offers_none() {
    let _g = serial();
    let dir = TempDir::new("offload-off");
    let sw = switch(dir.path(), "offloads = false\n");
    let s = run(&sw, "csum", 1500, 100);
    assert_eq!(checked(&s, 1, "good"), 0, "{s:#}");
    assert_eq!(pmd_sum(&sw, |p| p.soft_csum), 0);
    let show = sw.ctl_json(&["show"]);
    let features = |port: &str| {
        show["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == port)
            .map(|p| p["info"]["features"].as_str().unwrap_or("").to_string())
            .unwrap()
    };
    assert!(!features("vhost0").contains("CSUM"), "{show:#}");
}
