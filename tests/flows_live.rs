//! Rules changed while traffic runs, through the real CLI (`ferrovs-ctl
//! add-flow/add-flows/mod-flows/del-flows/dump-flows`), with ferrovs-testpmd
//! as both peers: every run is one process whose port 0 (A, on vhost0)
//! generates a paced stream and whose port 1 (B, on vhost1) only receives,
//! so each run reports exactly what it sent and what arrived, by VLAN.
//!
//! The stream is flowgen with 4 flows cycling packet by packet: flow k goes
//! to UDP port 1000 + k and (where tagged) VLAN 10 * (k + 1), so a rule on
//! `tp_dst` picks an exact share of the packets and B's per-VLAN counts say
//! which flows arrived. Changes are triggered by counts (so many packets
//! through the switch), and assertions are on counts, never on timing;
//! only the timeout test measures time, with a generous margin.

use ferrovs_tests::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Slow enough that a 4096-entry ring holds 0.8 s of the stream: a PMD
/// that a busy 2-core machine descheduled for a while catches up without
/// a frame lost on either side.
const PPS: u64 = 5_000;
/// Rules the tests use, by role. The flows go to UDP 1000..=1003.
const PASS: &str = "priority=50,udp,tp_dst=1000/0xfffe,actions=normal";
const DROP: &str = "priority=100,udp,tp_dst=1002/0xfffe,actions=drop";
const DROP_SEL: &str = "priority=100,udp,tp_dst=1002/0xfffe";

/// dump-flows over the management socket (the same JSON as `ferrovs-ctl
/// --json dump-flows`; cheaper than a process while polling under traffic).
fn dump(sw: &Ferrovsd) -> Vec<Value> {
    sw.ok("dump-flows", json!({}))
        .as_array()
        .expect("array")
        .clone()
}

/// The rule of table 0 with `priority` (the tests keep priorities unique).
fn rule_at(d: &[Value], priority: u64) -> Option<&Value> {
    d.iter()
        .find(|f| f["priority"] == priority && f["table"] == 0)
}

/// n_packets of the rule with `priority` (0 when there is none).
fn hits(sw: &Ferrovsd, priority: u64) -> u64 {
    rule_at(&dump(sw), priority).map_or(0, |f| f["n_packets"].as_u64().unwrap())
}

/// (table, priority, cookie, match, actions, idle_timeout, hard_timeout) of every rule, sorted.
fn rule_set(d: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = d
        .iter()
        .map(|f| {
            format!(
                "table={} priority={} cookie={} match={} actions={} idle={} hard={}",
                f["table"],
                f["priority"],
                f["cookie"],
                f["match"].as_str().unwrap(),
                f["actions"].as_str().unwrap(),
                f["idle_timeout"],
                f["hard_timeout"]
            )
        })
        .collect();
    v.sort();
    v
}

fn two_ports(dir: &Path) -> Ferrovsd {
    Ferrovsd::start(dir, Some(&config_with_ports(2)))
}

/// One run: `n` packets at `pps` from A (vhost0) to B (vhost1), 4 flows
/// over UDP ports 1000..=1003 (tagged 10,20,30,40 when `tagged`); B's MAC
/// is never learned (it only receives), so every frame is flooded to B.
fn spawn_run(sw: &Ferrovsd, n: u64, tagged: bool) -> FerrovsTestpmd {
    let mut a: Vec<String> = vec![
        format!(
            "--port=virtio-user:path={},mac={},queue-size=4096",
            sw.port_socket("vhost0").display(),
            mac(1)
        ),
        format!(
            "--port=virtio-user:path={},mac={},queue-size=4096",
            sw.port_socket("vhost1").display(),
            mac(2)
        ),
        "--forward-mode=flowgen".into(),
        "--tx-ports=0".into(),
        "--flows=4".into(),
        "--tx-dst-ports=4".into(),
        "--tx-udp=9,1000".into(),
        "--txpkts=64".into(),
        format!("--tx-pps={PPS}"),
        format!("--nb-pkts={n}"),
        "--lcores=0".into(),
        "--link-wait=20".into(),
        "--duration=120".into(),
    ];
    if tagged {
        a.push("--tx-vlan=10,20,30,40".into());
    }
    FerrovsTestpmd::spawn(&a)
}

/// What one run sent and what B got.
#[derive(Debug)]
struct RunResult {
    sent: u64,
    received: u64,
    /// B's frames by VLAN ("10".."40", or "untagged").
    vlans: serde_json::Map<String, Value>,
}

impl RunResult {
    fn vlan(&self, v: &str) -> u64 {
        self.vlans.get(v).and_then(Value::as_u64).unwrap_or(0)
    }
}

/// Waits for the run, then for the switch to go quiet; checks that A sent
/// its whole budget, that ferrovsd took all of it, and that B's frames are intact.
fn finish_run(sw: &Ferrovsd, run: FerrovsTestpmd, n: u64, a_rx_before: u64) -> RunResult {
    let s = run.finish(Duration::from_secs(120));
    sw.wait_quiet(&["vhost0", "vhost1"]);
    let sent = s["ports"][0]["tx_packets"].as_u64().unwrap();
    assert_eq!(s["generated"], n, "{s:#}");
    assert_eq!(sent, n, "A put every generated frame on its ring: {s:#}");
    let a = sw.port("vhost0");
    assert_eq!(
        a.rx - a_rx_before,
        n,
        "ferrovsd received every frame A sent: {a:?}; pmd-stats {:#}; A's summary {s:#}",
        sw.ok("pmd-stats", json!({}))
    );
    assert_eq!(
        s["ports"][1]["checked"]["bad"], 0,
        "corrupted frames: {s:#}"
    );
    RunResult {
        sent,
        received: s["ports"][1]["rx_packets"].as_u64().unwrap(),
        vlans: s["ports"][1]["rx_vlans"].as_object().unwrap().clone(),
    }
}

/// Blocks until ferrovsd has received `count` more frames on vhost0 than `base`.
fn wait_rx(sw: &Ferrovsd, base: u64, count: u64) {
    let t0 = Instant::now();
    while sw.port("vhost0").rx < base + count {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "traffic did not reach {count} frames: {:?}",
            sw.port("vhost0")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Counters of the switch that a run moves.
#[derive(Debug, Clone, Copy)]
struct Snap {
    a_rx: u64,
    b_tx: u64,
    b_tx_dropped: u64,
    acl: u64,
    pass: u64,
    default: u64,
}

fn snap(sw: &Ferrovsd) -> Snap {
    let d = dump(sw);
    let n = |p| rule_at(&d, p).map_or(0, |f: &Value| f["n_packets"].as_u64().unwrap());
    let (a, b) = (sw.port("vhost0"), sw.port("vhost1"));
    Snap {
        a_rx: a.rx,
        b_tx: b.tx,
        b_tx_dropped: b.tx_dropped,
        acl: sw.switch_drop("vhost0", "acl"),
        pass: n(50),
        default: n(0),
    }
}

/// A steady stream A -> B; a drop rule for half of its flows (UDP 1002-1003)
/// is added while it runs, kept for a whole run (during which malformed
/// rules are refused), and deleted while the stream runs again. Every
/// packet is accounted for: sent = received at B + counted acl drops.
#[test]
fn drop_rule_added_and_deleted_under_traffic_accounts_for_every_packet() {
    let _g = serial();
    let dir = TempDir::new("fl-live");
    let sw = two_ports(dir.path());
    // A fresh bridge: one rule, table=0,priority=0,actions=normal.
    let d = dump(&sw);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (
            &d[0]["table"],
            &d[0]["priority"],
            &d[0]["match"],
            &d[0]["actions"]
        ),
        (&json!(0), &json!(0), &json!(""), &json!("NORMAL")),
        "{d:?}"
    );
    // The part that always passes gets its own (normal) rule so that the
    // default rule counts exactly the part the drop rule will take.
    sw.ctl(&["add-flow", PASS]);

    // Run 0: no drop rule; all 4 flows arrive.
    let n0 = 8_000;
    let s0 = snap(&sw);
    let r0 = finish_run(&sw, spawn_run(&sw, n0, true), n0, s0.a_rx);
    let e0 = snap(&sw);
    eprintln!("run 0: {r0:?}");
    assert_eq!(r0.received, n0, "{r0:?}");
    for v in ["10", "20", "30", "40"] {
        assert_eq!(r0.vlan(v), n0 / 4, "{r0:?}");
    }
    assert_eq!(
        (e0.pass - s0.pass, e0.default - s0.default),
        (n0 / 2, n0 / 2)
    );

    // Run 1: the drop rule arrives a third of the way in.
    let n1 = 24_000;
    let s1 = snap(&sw);
    let run = spawn_run(&sw, n1, true);
    wait_rx(&sw, s1.a_rx, n1 / 3);
    let added_at = sw.port("vhost0").rx - s1.a_rx;
    let out = sw.ctl(&["add-flow", DROP]);
    // Once the rule has counted a packet, the PMD runs the new table; from
    // the next dump on, the default rule (the dropped part's old path) must
    // not move any more.
    let t0 = Instant::now();
    while hits(&sw, 100) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the drop rule never matched"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let frozen_default = snap(&sw).default;
    let r1 = finish_run(&sw, run, n1, s1.a_rx);
    let e1 = snap(&sw);
    let dropped1 = e1.acl - s1.acl;
    assert_eq!(out, "", "add-flow prints nothing, as ovs-ofctl");
    eprintln!("run 1 (drop rule added after {added_at} frames): {r1:?}, acl drops {dropped1}");
    assert_eq!(
        e1.default, frozen_default,
        "after the drop rule took effect, no packet of UDP 1002-1003 went the normal way"
    );
    assert_eq!(
        hits(&sw, 100),
        dropped1,
        "every acl drop is a packet of the drop rule (its n_packets)"
    );
    assert_eq!(
        r1.received + dropped1,
        n1,
        "sent = received at B + acl drops: {r1:?}, acl {dropped1}"
    );
    assert_eq!(
        r1.received,
        e1.b_tx - s1.b_tx,
        "B got what ferrovsd sent it"
    );
    assert_eq!(e1.b_tx_dropped, s1.b_tx_dropped, "nothing lost towards B");
    assert_eq!(
        (e1.pass - s1.pass) + (e1.default - s1.default) + dropped1,
        n1,
        "every packet matched exactly one rule"
    );
    assert_eq!(
        e1.pass - s1.pass,
        n1 / 2,
        "the passing half never changed path"
    );
    assert_eq!(r1.vlan("10") + r1.vlan("20"), n1 / 2, "{r1:?}");
    assert_eq!(
        r1.vlan("30") + r1.vlan("40"),
        e1.default - s1.default,
        "B got exactly the UDP 1002-1003 packets that were not dropped: {r1:?}"
    );
    assert!(
        dropped1 > 0 && e1.default > s1.default,
        "the rule changed the stream mid-run: {r1:?}, acl {dropped1}"
    );
    assert!(
        dropped1 <= (n1 - added_at) / 2 + 2,
        "nothing was dropped before the rule was added: acl {dropped1}, added after {added_at}"
    );

    // Run 2: the rule is there for the whole run; meanwhile malformed rules
    // are refused with the field named, and nothing changes.
    let n2 = 20_000;
    let s2 = snap(&sw);
    let rules_before = rule_set(&dump(&sw));
    let run = spawn_run(&sw, n2, true);
    wait_rx(&sw, s2.a_rx, 1_000);
    let bad: &[(&[&str], &[&str])] = &[
        (
            &["add-flow", "priority=10,udp,tp_dst=70000,actions=drop"],
            &["tp_dst", "70000"],
        ),
        (
            &["add-flow", "priority=10,nw_src=10.0.0.1,actions=drop"],
            &["nw_src"],
        ),
        (
            &["add-flow", "priority=10,udp,actions=frobnicate"],
            &["actions", "frobnicate"],
        ),
        (
            &["add-flow", "priority=10,dl_src=00:11:22,actions=drop"],
            &["dl_src", "00:11:22"],
        ),
        (
            &["add-flow", "priority=70000,actions=drop"],
            &["priority", "70000"],
        ),
        (&["add-flow", "priority=10,udp,tp_dst=1000"], &["actions"]),
        (&["add-flow", "priorty=10,actions=drop"], &["priorty"]),
        (
            &["add-flow", "in_port=nosuchport,actions=drop"],
            &["in_port", "nosuchport"],
        ),
        (
            &["add-flow", "priority=10,actions=output:nosuchport"],
            &["output", "nosuchport"],
        ),
        (
            &["add-flow", "priority=10,dl_vlan=5000,actions=drop"],
            &["dl_vlan", "5000"],
        ),
        (
            &["add-flow", "table=1,priority=10,actions=goto_table:1"],
            &["goto_table"],
        ),
        (&["mod-flows", "udp,tp_dst=1002/0xfffe"], &["actions"]),
        (&["del-flows", "udp,actions=drop"], &["actions"]),
    ];
    for (args, want) in bad {
        let e = sw
            .ctl_try(args)
            .expect_err(&format!("{args:?} was accepted"));
        for w in *want {
            assert!(
                e.contains(w),
                "ferrovs-ctl {args:?}: error does not name {w:?}: {e}"
            );
        }
        eprintln!("refused as it should: {args:?}: {}", e.trim());
    }
    // A file with one bad line adds nothing, and the error names the line and field.
    let file = dir.path().join("bad.flows");
    std::fs::write(
        &file,
        "# two good rules, then a bad one\npriority=7,udp,tp_dst=7,actions=drop\n\npriority=8,arp,actions=normal\npriority=9,tcp,tp_src=x,actions=drop\n",
    )
    .unwrap();
    let e = sw
        .ctl_try(&["add-flows", file.to_str().unwrap()])
        .expect_err("bad file accepted");
    assert!(e.contains("line 5") && e.contains("tp_src"), "{e}");
    let r2 = finish_run(&sw, run, n2, s2.a_rx);
    let e2 = snap(&sw);
    eprintln!("run 2 (drop rule throughout): {r2:?}");
    assert_eq!(
        rule_set(&dump(&sw)),
        rules_before,
        "refused changes changed nothing"
    );
    assert_eq!(
        r2.received,
        n2 / 2,
        "exactly the passing half arrived: {r2:?}"
    );
    assert_eq!(
        (r2.vlan("30"), r2.vlan("40")),
        (0, 0),
        "no UDP 1002-1003 packet reached B: {r2:?}"
    );
    assert_eq!((r2.vlan("10"), r2.vlan("20")), (n2 / 4, n2 / 4));
    assert_eq!(e2.acl - s2.acl, n2 / 2);
    assert_eq!(e2.default, s2.default);
    assert_eq!(e2.b_tx_dropped, s2.b_tx_dropped);

    // Run 3: the drop rule is deleted (strictly) a third of the way in.
    let n3 = 24_000;
    let s3 = snap(&sw);
    let run = spawn_run(&sw, n3, true);
    wait_rx(&sw, s3.a_rx, n3 / 3);
    let hits_before_delete = hits(&sw, 100);
    let out = sw.ctl_json(&["--strict", "del-flows", DROP_SEL]);
    let deleted_at = sw.port("vhost0").rx - s3.a_rx;
    assert_eq!(out["deleted"], 1, "{out}");
    let r3 = finish_run(&sw, run, n3, s3.a_rx);
    let e3 = snap(&sw);
    let dropped3 = e3.acl - s3.acl;
    eprintln!("run 3 (drop rule deleted after {deleted_at} frames): {r3:?}, acl drops {dropped3}");
    assert!(rule_at(&dump(&sw), 100).is_none());
    assert_eq!(
        r3.received + dropped3,
        n3,
        "sent = received + acl drops: {r3:?}"
    );
    assert!(
        dropped3 >= hits_before_delete - (s3.acl - s1.acl),
        "the rule's hits in this run before the delete ({}) are acl drops ({dropped3})",
        hits_before_delete - (s3.acl - s1.acl)
    );
    assert!(
        dropped3 > 0 && dropped3 <= deleted_at / 2 + 2,
        "dropped until the delete only: {dropped3}, deleted after {deleted_at}"
    );
    assert_eq!(e3.pass - s3.pass, n3 / 2);
    assert_eq!(
        (e3.pass - s3.pass) + (e3.default - s3.default) + dropped3,
        n3,
        "every packet matched exactly one rule"
    );
    assert_eq!(
        r3.vlan("30") + r3.vlan("40"),
        e3.default - s3.default,
        "after the delete UDP 1002-1003 flowed again, the normal way: {r3:?}"
    );
    assert!(r3.vlan("30") > 0 && r3.vlan("40") > 0, "{r3:?}");
    assert_eq!(e3.b_tx_dropped, s3.b_tx_dropped);

    // Run 4: no drop rule, everything arrives again.
    let n4 = 8_000;
    let s4 = snap(&sw);
    let r4 = finish_run(&sw, spawn_run(&sw, n4, true), n4, s4.a_rx);
    let e4 = snap(&sw);
    eprintln!("run 4: {r4:?}");
    assert_eq!(r4.received, n4);
    for v in ["10", "20", "30", "40"] {
        assert_eq!(r4.vlan(v), n4 / 4, "{r4:?}");
    }
    assert_eq!(e4.acl, s4.acl);

    // The switch dropped nothing but what the rule said, anywhere.
    let total_sent = r0.sent + r1.sent + r2.sent + r3.sent + r4.sent;
    assert_eq!(total_sent, n0 + n1 + n2 + n3 + n4);
    let total_received = r0.received + r1.received + r2.received + r3.received + r4.received;
    assert_eq!(total_sent, total_received + e4.acl, "over all runs");
    let pmd = sw.ok("pmd-stats", json!({}));
    for p in pmd.as_array().unwrap() {
        for (reason, n) in p["drops"].as_object().unwrap() {
            if reason != "acl" {
                assert_eq!(n, 0, "unexpected {reason} drops: {pmd:#}");
            }
        }
    }
    assert!(
        sw.port("vhost1").tx_drops.is_empty(),
        "{:?}",
        sw.port("vhost1")
    );
}

/// mod-flows gives new actions (here while traffic runs) and keeps the
/// rule's counters; del-flows --strict removes only the rule with exactly
/// that match and priority, non-strict every rule the match covers.
#[test]
fn mod_flows_keeps_counters_and_strict_delete_removes_only_the_exact_rule() {
    let _g = serial();
    let dir = TempDir::new("fl-mod");
    let sw = two_ports(dir.path());
    sw.ctl(&["add-flow", DROP]);
    // 8000 packets: 4000 go to UDP 1002-1003 and are dropped.
    let s = sw.port("vhost0").rx;
    let r = finish_run(&sw, spawn_run(&sw, 8_000, false), 8_000, s);
    assert_eq!(r.received, 4_000, "{r:?}");
    assert_eq!(hits(&sw, 100), 4_000);
    assert_eq!(sw.switch_drop("vhost0", "acl"), 4_000);

    // mod-flows (strict) under traffic: from drop to normal.
    let n = 16_000;
    let s = sw.port("vhost0").rx;
    let run = spawn_run(&sw, n, false);
    wait_rx(&sw, s, n / 4);
    let out = sw.ctl_json(&[
        "--strict",
        "mod-flows",
        &format!("{DROP_SEL},actions=normal"),
    ]);
    assert_eq!(out["modified"], 1, "{out}");
    let r = finish_run(&sw, run, n, s);
    let acl = sw.switch_drop("vhost0", "acl") - 4_000;
    eprintln!("mod-flows under traffic: {r:?}, acl drops in the run {acl}");
    let d = dump(&sw);
    let rule = rule_at(&d, 100).expect("the rule is still there");
    assert_eq!(rule["actions"], "NORMAL", "{rule}");
    assert_eq!(
        rule["n_packets"],
        4_000 + n / 2,
        "the counters were kept across mod-flows: {rule}"
    );
    assert!(
        acl > 0 && acl < n / 2,
        "dropped until the change only: {acl}"
    );
    assert_eq!(r.received + acl, n, "sent = received + acl drops");

    // A loose mod-flows changes every rule its match covers: here only ours.
    let out = sw.ctl_json(&["mod-flows", "udp,tp_dst=1002/0xfffe,actions=drop"]);
    assert_eq!(out["modified"], 1, "{out}");
    assert_eq!(rule_at(&dump(&sw), 100).unwrap()["actions"], "drop");
    // A modify that selects nothing adds nothing (OpenFlow 1.1+).
    let before = rule_set(&dump(&sw));
    let out = sw.ctl_json(&["mod-flows", "tcp,tp_dst=22,actions=drop"]);
    assert_eq!(out["modified"], 0, "{out}");
    assert_eq!(rule_set(&dump(&sw)), before);
    sw.ctl(&[
        "--strict",
        "mod-flows",
        &format!("{DROP_SEL},actions=normal"),
    ]);

    // Rules around ours: same match at another priority, and a narrower match.
    let file = dir.path().join("more.flows");
    std::fs::write(
        &file,
        "priority=150,udp,tp_dst=1002/0xfffe,actions=drop\n\
         priority=300,udp,tp_dst=1003,actions=drop  # UDP 1003 only\n",
    )
    .unwrap();
    let out = sw.ctl_json(&["add-flows", file.to_str().unwrap()]);
    assert_eq!(out["added"], 2, "{out}");
    assert_eq!(dump(&sw).len(), 4, "{:#?}", dump(&sw));
    // dump-flows with a flow shows what it covers (loosely), highest priority first.
    let sel = sw.ctl_json(&["dump-flows", "udp,tp_dst=1002/0xfffe"]);
    let prios: Vec<u64> = sel
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["priority"].as_u64().unwrap())
        .collect();
    assert_eq!(prios, [300, 150, 100], "{sel:#}");
    // --strict: exact match and priority; no priority means the default (32768).
    for (sel, n) in [
        ("udp,tp_dst=1002/0xfffe", 0),
        ("priority=150,udp", 0),
        ("priority=150,udp,tp_dst=1002", 0),
        ("priority=150,udp,tp_dst=1002/0xfffe", 1),
    ] {
        let out = sw.ctl_json(&["--strict", "del-flows", sel]);
        assert_eq!(out["deleted"], n, "del-flows --strict {sel}: {out}");
    }
    let d = dump(&sw);
    let prios: Vec<u64> = d.iter().map(|f| f["priority"].as_u64().unwrap()).collect();
    assert_eq!(
        prios,
        [300, 100, 0],
        "only the priority-150 rule went: {d:#?}"
    );
    // Traffic follows what is left: 1003 dropped (priority 300), 1002 normal.
    let acl0 = sw.switch_drop("vhost0", "acl");
    let (h300, h100) = (hits(&sw, 300), hits(&sw, 100));
    let s = sw.port("vhost0").rx;
    let r = finish_run(&sw, spawn_run(&sw, 8_000, false), 8_000, s);
    assert_eq!(r.received, 6_000, "{r:?}");
    assert_eq!(sw.switch_drop("vhost0", "acl") - acl0, 2_000);
    assert_eq!(
        (hits(&sw, 300) - h300, hits(&sw, 100) - h100),
        (2_000, 2_000)
    );
    // Loose: every rule at least as specific as the selection, whatever its priority.
    let out = sw.ctl_json(&["del-flows", "udp,tp_dst=1002/0xfffe"]);
    assert_eq!(out["deleted"], 2, "{out}");
    let d = dump(&sw);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["priority"], 0);
}

/// Rules live in the state file: after a SIGTERM restart and after a
/// SIGKILL crash, dump-flows shows them and the traffic obeys them; an
/// emptied table stays empty (table-miss drops, counted as no_match).
#[test]
fn rules_persist_across_restarts() {
    let _g = serial();
    let dir = TempDir::new("fl-persist");
    let mut sw = two_ports(dir.path());
    let file = dir.path().join("rules.flows");
    std::fs::write(
        &file,
        "# ports by name, several tables, every field kind\n\
         table=0,priority=100,in_port=vhost0,udp,tp_dst=1002/0xfffe,actions=drop\n\
         table=0,priority=90,cookie=0x42,idle_timeout=600,hard_timeout=900,arp,actions=normal\n\
         table=0,priority=80,dl_vlan=10,actions=strip_vlan,resubmit(,1)\n\
         table=0,priority=50,in_port=vhost0,ip,nw_dst=198.18.0.0/16,actions=goto_table:1\n\
         table=0,priority=40,dl_src=02:00:00:00:01:00/ff:ff:ff:ff:ff:00,actions=mod_dl_dst:02:00:00:00:00:02,output:vhost1\n\
         table=1,priority=5,actions=normal\n",
    )
    .unwrap();
    let out = sw.ctl_json(&["add-flows", file.to_str().unwrap()]);
    assert_eq!(out["added"], 6);
    let rules = rule_set(&dump(&sw));
    assert_eq!(rules.len(), 7, "six and the default rule: {rules:#?}");
    let text = sw.ctl(&["dump-flows"]);
    eprintln!("dump-flows:\n{text}");
    assert!(
        text.contains("in_port=vhost0") && text.contains("output:vhost1"),
        "{text}"
    );

    let check_traffic = |sw: &Ferrovsd, what: &str| {
        let acl0 = sw.switch_drop("vhost0", "acl");
        let s = sw.port("vhost0").rx;
        let r = finish_run(sw, spawn_run(sw, 8_000, false), 8_000, s);
        assert_eq!(r.received, 4_000, "{what}: {r:?}");
        assert_eq!(sw.switch_drop("vhost0", "acl") - acl0, 4_000, "{what}");
    };
    check_traffic(&sw, "before the restart");

    // SIGTERM, same run dir and config.
    assert_eq!(sw.terminate(Duration::from_secs(20)), Some(0));
    drop(sw);
    let mut sw = two_ports(dir.path());
    assert_eq!(
        rule_set(&dump(&sw)),
        rules,
        "the rules came back after a restart; log:\n{}",
        sw.log_text()
    );
    check_traffic(&sw, "after a restart");

    // A change, then SIGKILL: the change was already on disk.
    let out = sw.ctl_json(&["--strict", "del-flows", "table=1,priority=5"]);
    assert_eq!(out["deleted"], 1);
    let rules = rule_set(&dump(&sw));
    let pid = sw.pid();
    let mut c = sw.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/ferrovsd{pid}"));
    drop(sw);
    let mut sw = two_ports(dir.path());
    assert_eq!(rule_set(&dump(&sw)), rules, "after a crash");
    assert_eq!(rules.len(), 6);
    // Table 1 is empty now: what went there is a table miss.
    let s = sw.port("vhost0").rx;
    let r = finish_run(&sw, spawn_run(&sw, 8_000, false), 8_000, s);
    assert_eq!(r.received, 0, "{r:?}");
    assert_eq!(sw.switch_drop("vhost0", "acl"), 4_000);
    assert_eq!(sw.switch_drop("vhost0", "no_match"), 4_000);

    // Every rule deleted: the empty table persists (not the default rule).
    let out = sw.ctl_json(&["del-flows"]);
    assert_eq!(out["deleted"], 6);
    assert_eq!(sw.terminate(Duration::from_secs(20)), Some(0));
    drop(sw);
    let sw = two_ports(dir.path());
    assert!(
        dump(&sw).is_empty(),
        "an empty table stays empty: {:?}",
        dump(&sw)
    );
    let s = sw.port("vhost0").rx;
    let r = finish_run(&sw, spawn_run(&sw, 4_000, false), 4_000, s);
    assert_eq!(r.received, 0, "{r:?}");
    assert_eq!(sw.switch_drop("vhost0", "no_match"), 4_000);
}

/// idle_timeout and hard_timeout: a hard timeout expires a rule that is in
/// use; an idle timeout only one that no packet hits; both within a few
/// seconds of when they are due.
#[test]
fn idle_and_hard_timeouts_expire_rules() {
    let _g = serial();
    let dir = TempDir::new("fl-timeout");
    let sw = two_ports(dir.path());
    // Flows: UDP 1000 (VLAN 10) hits the hard-timeout rule, UDP 1001 (VLAN 20)
    // keeps the idle-timeout rule alive (5 s: the generator starts well
    // within that); UDP 2000 never comes.
    let t_add = Instant::now();
    for f in [
        "priority=200,hard_timeout=2,udp,tp_dst=1000,actions=drop",
        "priority=201,idle_timeout=5,udp,tp_dst=1001,actions=drop",
        "priority=202,idle_timeout=1,udp,tp_dst=2000,actions=drop",
    ] {
        sw.ctl(&["add-flow", f]);
    }
    let n = 7 * PPS; // 7 s of traffic
    let s = snap(&sw);
    let run = spawn_run(&sw, n, true);
    let mut gone: [Option<Duration>; 3] = [None; 3];
    let mut run = Some(run);
    let mut traffic_end = None;
    let mut result = None;
    while gone.iter().any(Option::is_none) {
        let now = t_add.elapsed();
        assert!(
            now < Duration::from_secs(30),
            "rules did not expire: {gone:?}; {:#?}",
            dump(&sw)
        );
        let d = dump(&sw);
        for (i, p) in [200u64, 201, 202].iter().enumerate() {
            if rule_at(&d, *p).is_none() {
                gone[i].get_or_insert(now);
            }
        }
        if traffic_end.is_none() && sw.port("vhost0").rx - s.a_rx >= n {
            traffic_end = Some(t_add.elapsed());
        }
        if let Some(r) = run.as_mut() {
            if r.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                result = Some(finish_run(&sw, run.take().unwrap(), n, s.a_rx));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(r) = run.take() {
        result = Some(finish_run(&sw, r, n, s.a_rx));
    }
    let traffic_end = traffic_end.expect("the idle rule expired while its traffic ran");
    let r = result.unwrap();
    let e = snap(&sw);
    eprintln!("expired after {gone:?} (traffic ran until {traffic_end:?}): {r:?}");
    let [hard, idle_used, idle_unused] = gone.map(Option::unwrap);
    let within = |d: Duration, lo: u64, hi: u64| {
        d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi)
    };
    assert!(within(hard, 2, 5), "hard_timeout=2 expired after {hard:?}");
    assert!(
        within(idle_unused, 1, 4),
        "unused idle_timeout=1 expired after {idle_unused:?}"
    );
    assert!(
        idle_used > traffic_end,
        "idle_timeout=5 rule expired at {idle_used:?} while its traffic ran (until {traffic_end:?})"
    );
    assert!(
        idle_used <= traffic_end + Duration::from_secs(5 + 3),
        "idle_timeout=5 expired {idle_used:?}, traffic stopped {traffic_end:?}"
    );
    // By counts: nothing of UDP 1001 ever passed (its rule lived as long as
    // the traffic); UDP 1000 passed once its rule had expired, not before.
    assert_eq!(r.vlan("20"), 0, "{r:?}");
    assert!(r.vlan("10") > 0 && r.vlan("10") < n / 4, "{r:?}");
    assert_eq!((r.vlan("30"), r.vlan("40")), (n / 4, n / 4), "{r:?}");
    assert_eq!(
        r.received + (e.acl - s.acl),
        n,
        "sent = received + acl drops"
    );
    assert_eq!(dump(&sw).len(), 1, "only the default rule is left");
}
