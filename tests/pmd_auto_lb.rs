//! pmd-auto-lb (issue 14): two PMDs, the two busy rx queues placed on the
//! same one; within a few intervals ferrovsd moves one of them to the other
//! PMD while traffic flows, and every checked frame still arrives.

use ferrovs_tests::*;
use std::time::{Duration, Instant};

/// The core polling `port`'s queue 0.
fn core_of(sw: &Ferrovsd, port: &str) -> usize {
    match sw.typed(proto::Request::PmdRxqShow) {
        proto::Reply::PmdRxqShow(r) => r
            .pmds
            .iter()
            .find(|p| p.queues.iter().any(|q| q.port == port))
            .map(|p| p.core)
            .unwrap_or_else(|| panic!("{port} is on no PMD: {r:?}")),
        r => panic!("pmd-rxq-show answered {r:?}"),
    }
}

fn auto_lb(sw: &Ferrovsd) -> proto::AutoLbStatus {
    match sw.typed(proto::Request::PmdRxqShow) {
        proto::Reply::PmdRxqShow(r) => r.auto_lb,
        r => panic!("pmd-rxq-show answered {r:?}"),
    }
}

#[test]
fn auto_lb_splits_two_busy_queues_without_losing_a_frame() {
    let _g = serial();
    let dir = TempDir::new("auto-lb");
    // A 1 % threshold: any PMD moving traffic counts as loaded, so the
    // decision rests on the variance (two busy queues on one PMD, none on
    // the other: moving one cuts it by ~100 %).
    let mut cfg = String::from(
        "[pmd]\nsleep-max = 100\nauto-lb = true\nauto-lb-load-threshold = 1\n\
         auto-lb-rebal-interval = 2\n[memory]\nn-mbufs = 16384\n",
    );
    for i in 0..4 {
        cfg.push_str(&format!(
            "[[port]]\nname = \"vhost{i}\"\ntype = \"vhost-user\"\npath = \"vhost{i}.sock\"\n"
        ));
    }
    let sw = Ferrovsd::start_on(dir.path(), Some(&cfg), "0-1");
    sw.ctl(&["add-flow", "in_port=vhost0,actions=output:vhost1"]);
    sw.ctl(&["add-flow", "in_port=vhost2,actions=output:vhost3"]);
    // Nothing measured yet: spread by count, vhost0 and vhost2 together.
    assert_eq!(core_of(&sw, "vhost0"), core_of(&sw, "vhost2"));
    assert_ne!(core_of(&sw, "vhost0"), core_of(&sw, "vhost1"));

    // 1 200 000 checked frames, 100 kpps from each of vhost0 and vhost2 (~6 s).
    const N: u64 = 1_200_000;
    let mut args = virtio_user_ports(&sw, 4);
    args.extend(
        [
            "--forward-mode=flowgen",
            "--tx-ports=0,2",
            "--txpkts=64",
            "--tx-pps=200000",
            "--lcores=0",
            "--link-wait=20",
            "--duration=60",
        ]
        .map(String::from),
    );
    args.push(format!("--nb-pkts={N}"));
    let t0 = Instant::now();
    let gen = FerrovsTestpmd::spawn(&args);
    let mut moved = false;
    while t0.elapsed() < Duration::from_secs(30) {
        if core_of(&sw, "vhost0") != core_of(&sw, "vhost2") {
            moved = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = auto_lb(&sw);
    assert!(
        moved,
        "auto-lb left both busy queues on one PMD: {status:?}\n{}",
        sw.ctl(&["pmd-rxq-show"])
    );
    assert!(
        status.rebalances >= 1 && status.last.contains("queues moved"),
        "{status:?}"
    );
    let s = gen.finish(Duration::from_secs(90));
    let rx = |p: usize| s["ports"][p]["rx_packets"].as_u64().unwrap();
    let bad = |p: usize| s["ports"][p]["checked"]["bad"].as_u64().unwrap();
    assert_eq!(rx(1) + rx(3), N, "frames lost while queues moved: {s:#}");
    assert_eq!(bad(1) + bad(3), 0, "{s:#}");
    let shown = sw.ctl(&["pmd-rxq-show"]);
    assert!(
        shown.contains("auto-lb: on") && shown.contains("rebalance(s)"),
        "{shown}"
    );
}
