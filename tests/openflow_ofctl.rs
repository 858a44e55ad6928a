//! `ovs-ofctl -O OpenFlow13` (Debian's openvswitch-common) programs and reads
//! ferrovsd through its OpenFlow agent, and the rules it installs forward
//! ferrovs-testpmd's traffic as installed. A hostile OpenFlow client gets
//! errors while forwarding goes on.

use ferrovs_tests::*;
use openflow::message::{self as m, FlowMod, Message};
use openflow::oxm::{OfMatch, Oxm};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn mgmt(sw: &Ferrovsd) -> PathBuf {
    sw.run_dir.join("br0.mgmt")
}

/// Runs ovs-ofctl against the switch: (success, stdout, stderr).
fn ofctl(sw: &Ferrovsd, args: &[&str]) -> (bool, String, String) {
    let target = format!("unix:{}", mgmt(sw).display());
    // Options (and -O's value) first, then the command, the target, the rest.
    let mut a: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        a.push(args[i].to_string());
        if args[i] == "-O" {
            i += 1;
            a.push(args[i].to_string());
        }
        i += 1;
    }
    a.push(args[i].to_string());
    let rest: Vec<String> = args[i + 1..].iter().map(|s| s.to_string()).collect();
    let out = Command::new("timeout")
        .arg("20")
        .arg("ovs-ofctl")
        .args(&a)
        .arg(&target)
        .args(&rest)
        .output()
        .expect("ovs-ofctl (Debian package openvswitch-common) is installed by scripts/test");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn of13(sw: &Ferrovsd, args: &[&str]) -> String {
    let mut a = vec!["-O", "OpenFlow13"];
    a.extend_from_slice(args);
    let (ok, out, err) = ofctl(sw, &a);
    assert!(ok, "ovs-ofctl {args:?} failed: {err}{out}");
    out
}

/// `n` checked 64 B frames from vhost0 to vhost1; what vhost1's peer got.
fn traffic(sw: &Ferrovsd, n: u64) -> u64 {
    let s = checked_frames(sw, "vhost0", "vhost1", n);
    assert_eq!(s["ports"][1]["checked"]["bad"], 0, "{s:#}");
    s["ports"][1]["rx_packets"].as_u64().unwrap()
}

/// The n_packets of the dump-flows line that contains `needle`.
fn n_packets(dump: &str, needle: &str) -> u64 {
    let line = dump
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no rule with {needle:?} in:\n{dump}"));
    let v = line.split("n_packets=").nth(1).unwrap();
    v.split(',').next().unwrap().parse().unwrap()
}

#[test]
fn ovs_ofctl_programs_and_reads_ferrovsd() {
    let _g = serial();
    let dir = TempDir::new("ofctl");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));

    let show = of13(&sw, &["show"]);
    assert!(
        show.contains("dpid:") && show.contains("1(vhost0)") && show.contains("2(vhost1)"),
        "{show}"
    );
    let desc = of13(&sw, &["dump-ports-desc"]);
    assert!(desc.contains("2(vhost1)"), "{desc}");

    // Without -O, ovs-ofctl speaks 1.0: a clear error, quickly, not a hang.
    let t0 = Instant::now();
    let (ok, out, err) = ofctl(&sw, &["show"]);
    assert!(
        !ok && err.contains("version negotiation failed"),
        "{out}{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));

    // Rules by hand and from a file; the default rule goes.
    of13(&sw, &["del-flows"]);
    assert!(
        !of13(&sw, &["dump-flows"]).contains("priority"),
        "everything deleted"
    );
    of13(
        &sw,
        &[
            "add-flow",
            "priority=100,in_port=vhost0,actions=output:vhost1",
        ],
    );
    let file = dir.path().join("flows.txt");
    std::fs::write(
        &file,
        "table=0,priority=200,udp,tp_dst=7,actions=drop\n\
         table=0,priority=0,actions=drop\n\
         table=1,cookie=0x99,idle_timeout=60,priority=5,ip,nw_dst=10.0.0.0/8,actions=output:vhost0\n",
    )
    .unwrap();
    of13(&sw, &["add-flows", file.to_str().unwrap()]);
    let dump = of13(&sw, &["dump-flows"]);
    assert_eq!(
        dump.lines().filter(|l| l.contains("priority=")).count(),
        4,
        "{dump}"
    );
    assert!(
        dump.contains("cookie=0x99") && dump.contains("idle_timeout=60"),
        "{dump}"
    );

    // The installed rule forwards, and its counters move.
    assert_eq!(traffic(&sw, 2000), 2000);
    let dump = of13(&sw, &["dump-flows"]);
    assert_eq!(n_packets(&dump, "priority=100"), 2000, "{dump}");
    let agg = of13(&sw, &["dump-aggregate"]);
    assert!(
        agg.contains("packet_count=2000") && agg.contains("flow_count=4"),
        "{agg}"
    );
    let ports = of13(&sw, &["dump-ports"]);
    assert!(ports.contains("port  1: rx pkts=2000"), "{ports}");
    let tables = of13(&sw, &["dump-tables"]);
    assert!(
        tables.contains("table 0:") && tables.contains("active=3"),
        "{tables}"
    );

    // mod-flows turns the rule into a drop: nothing arrives, the rule still counts.
    of13(&sw, &["mod-flows", "in_port=vhost0,actions=drop"]);
    assert_eq!(traffic(&sw, 500), 0);
    assert_eq!(n_packets(&of13(&sw, &["dump-flows"]), "priority=100"), 2500);

    // --strict needs the same priority and match.
    of13(
        &sw,
        &["--strict", "del-flows", "priority=99,in_port=vhost0"],
    );
    assert!(
        of13(&sw, &["dump-flows"]).contains("priority=100"),
        "strict with another priority deletes nothing"
    );
    of13(
        &sw,
        &["--strict", "del-flows", "priority=100,in_port=vhost0"],
    );
    assert!(!of13(&sw, &["dump-flows"]).contains("priority=100"));

    // replace-flows leaves exactly the file's rules.
    std::fs::write(&file, "priority=10,in_port=vhost0,actions=output:vhost1\n").unwrap();
    of13(&sw, &["replace-flows", file.to_str().unwrap()]);
    let dump = of13(&sw, &["--no-stats", "dump-flows"]);
    assert_eq!(
        dump.lines().filter(|l| l.contains("priority=")).count(),
        1,
        "{dump}"
    );
    assert_eq!(traffic(&sw, 300), 300);

    // packet-out from the controller goes out of the port it names.
    let before = sw.port("vhost1");
    let frame = "ffffffffffff020000000009080045000014000000004001f97cc0a80001c0a80002";
    of13(
        &sw,
        &[
            "packet-out",
            &format!("in_port=controller packet={frame} actions=output:2"),
        ],
    );
    let t0 = Instant::now();
    loop {
        let now = sw.port("vhost1");
        if now.tx + now.tx_dropped > before.tx + before.tx_dropped {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the packet-out never reached vhost1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // What the table cannot do is refused by OpenFlow's name for it.
    let (ok, _, err) = ofctl(&sw, &["-O", "OpenFlow13", "add-flow", "actions=group:1"]);
    assert!(!ok && err.contains("OFPBAC_BAD_OUT_GROUP"), "{err}");
    let show = sw.ok("show", serde_json::json!({}));
    assert!(show["openflow"]["datapath_id"].is_string(), "{show:#}");
}

fn raw(sw: &Ferrovsd) -> UnixStream {
    let s = UnixStream::connect(mgmt(sw)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn send(s: &mut UnixStream, msg: &Message, xid: u32) {
    for p in openflow::encode(msg, xid) {
        s.write_all(&p).unwrap();
    }
}

/// Reads messages until one of `kind` (or end of stream, None).
fn until(s: &mut UnixStream, kind: u8) -> Option<(m::Header, Message)> {
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).ok()?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut b = h.to_vec();
        b.resize(len.max(8), 0);
        s.read_exact(&mut b[8..]).ok()?;
        if b[1] == kind {
            return openflow::decode(&b).ok();
        }
    }
}

fn hello(s: &mut UnixStream) {
    send(s, &Message::Hello { versions: 1 << 4 }, 1);
}

#[test]
fn a_hostile_openflow_client_gets_errors_and_forwarding_goes_on() {
    let _g = serial();
    let dir = TempDir::new("ofhostile");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));

    // Garbage before any HELLO: refused and closed.
    let mut s = raw(&sw);
    s.write_all(&[0x42; 64]).unwrap();
    assert!(until(&mut s, m::ERROR).is_some());
    assert!(
        until(&mut s, 255).is_none(),
        "closed after a failed negotiation"
    );

    // A length shorter than a header: an error, then the connection ends.
    let mut s = raw(&sw);
    hello(&mut s);
    s.write_all(&[4, 2, 0, 4, 0, 0, 0, 9]).unwrap();
    assert!(until(&mut s, m::ERROR).is_some());

    // Lengths that lie inside a message, unknown types, a multipart body
    // that runs out: an error each, and the connection answers after them.
    let mut s = raw(&sw);
    hello(&mut s);
    let lies: Vec<Vec<u8>> = vec![
        vec![4, 99, 0, 8, 0, 0, 0, 2],
        // PACKET_OUT whose actions_len runs past the message
        [
            &[4u8, 13, 0, 24, 0, 0, 0, 3][..],
            &[
                0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0x40, 0, 0, 0, 0, 0, 0, 0,
            ],
        ]
        .concat(),
        // FLOW stats request with a match longer than the message
        [
            &[4u8, 18, 0, 56, 0, 0, 0, 4][..],
            &[0, 1, 0, 0, 0, 0, 0, 0],
            &[0xff; 32],
            &[0, 1, 0x7f, 0xff, 0, 0, 0, 0],
        ]
        .concat(),
        // TABLE_FEATURES "set" with a bogus table entry
        [
            &[4u8, 18, 0, 24, 0, 0, 0, 5][..],
            &[0, 12, 0, 0, 0, 0, 0, 0],
            &[0, 8, 0, 0, 0, 0, 0, 0],
        ]
        .concat(),
    ];
    for l in &lies {
        s.write_all(l).unwrap();
    }
    for _ in &lies {
        assert!(until(&mut s, m::ERROR).is_some());
    }
    send(&mut s, &Message::EchoRequest(b"still there?".to_vec()), 77);
    let (h, r) = until(&mut s, m::ECHO_REPLY).expect("the connection lives");
    assert_eq!(
        (h.xid, r),
        (77, Message::EchoReply(b"still there?".to_vec()))
    );

    // 10 000 flow mods, then a barrier: all in when the barrier answers.
    for p in 0..10_000u32 {
        let fm = FlowMod {
            cookie: 0xbad,
            cookie_mask: 0,
            table_id: 3,
            command: m::FLOW_ADD,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: p as u16,
            buffer_id: openflow::NO_BUFFER,
            out_port: openflow::port::ANY,
            out_group: 0xffff_ffff,
            flags: 0,
            m: OfMatch(vec![
                Oxm::exact(openflow::oxm::ETH_TYPE, 0x0800),
                Oxm::exact(openflow::oxm::IPV4_DST, p as u128),
            ]),
            instructions: vec![],
        };
        send(&mut s, &Message::FlowMod(fm), 1000 + p);
    }
    send(&mut s, &Message::BarrierRequest, 99);
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let (h, _) = until(&mut s, m::BARRIER_REPLY).expect("barrier reply");
    assert_eq!(h.xid, 99);
    let agg = of13(&sw, &["dump-aggregate", "table=3"]);
    assert!(agg.contains("flow_count=10000"), "{agg}");
    of13(&sw, &["del-flows", "table=3"]);

    // A peer that sends half a message and stops holds nobody up.
    let mut half = raw(&sw);
    hello(&mut half);
    half.write_all(&[4, 14, 0xff, 0xff, 0, 0, 0, 1, 0, 0])
        .unwrap();
    assert!(of13(&sw, &["show"]).contains("dpid"));
    assert_eq!(traffic(&sw, 1000), 1000, "forwarding goes on");
    drop(half);
}

/// Lines of the monitor's output that contain `needle`, once at least `n` do
/// (or after 5 s).
fn monitor_lines(out: &std::path::Path, needle: &str, n: usize) -> usize {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        let k = text.lines().filter(|l| l.contains(needle)).count();
        if k >= n || t0.elapsed() > Duration::from_secs(5) {
            return k;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ovs-ofctl mod-port` turns a port down, off for forwarding or receiving,
/// or off for packet-ins, and the traffic and counters follow; `ovs-ofctl
/// monitor` sees the PORT_STATUS and the packet-ins (NO_MATCH from the
/// table-miss entry, ACTION from any other rule, cut to the action's max_len).
#[test]
fn ovs_ofctl_mod_port_and_monitor() {
    let _g = serial();
    let dir = TempDir::new("ofctl-port");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let out = dir.path().join("monitor.txt");
    let mut monitor = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "monitor"])
        .arg(format!("unix:{}", mgmt(&sw).display()))
        .arg("65534")
        // Its control socket goes to OVS_RUNDIR (default /var/run/openvswitch).
        .env("OVS_RUNDIR", dir.path())
        // It prints what it hears on stderr when stdout is not a terminal.
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::options().append(true).open(&out).unwrap())
        .spawn()
        .expect("ovs-ofctl");
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let t0 = Instant::now();
    while sw.ok("show", serde_json::json!({}))["openflow"]["connections"] != 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the monitor never connected"
        );
        assert!(
            monitor.try_wait().unwrap().is_none(),
            "ovs-ofctl monitor exited"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let monitor = Reap(monitor);

    of13(&sw, &["del-flows"]);
    of13(
        &sw,
        &[
            "add-flow",
            "priority=100,in_port=vhost0,actions=output:vhost1",
        ],
    );
    assert_eq!(traffic(&sw, 300), 300);

    // no-forward: output to vhost1 is dropped and counted on the input port.
    of13(&sw, &["mod-port", "vhost1", "no-forward"]);
    let desc = of13(&sw, &["dump-ports-desc"]);
    assert!(desc.contains("NO_FWD"), "{desc}");
    assert_eq!(traffic(&sw, 500), 0);
    assert_eq!(sw.switch_drop("vhost0", "no_fwd"), 500);
    of13(&sw, &["mod-port", "vhost1", "forward"]);
    assert_eq!(traffic(&sw, 300), 300);

    // down: vhost0 receives nothing; the monitor hears of it.
    of13(&sw, &["mod-port", "vhost0", "down"]);
    let desc = of13(&sw, &["dump-ports-desc"]);
    assert!(
        desc.contains("PORT_DOWN") && desc.contains("LINK_DOWN"),
        "{desc}"
    );
    assert_eq!(traffic(&sw, 400), 0);
    assert_eq!(sw.switch_drop("vhost0", "no_recv"), 400);
    let show = sw.ctl(&["show"]);
    assert!(show.contains("set by OpenFlow PORT_MOD: down"), "{show}");
    of13(&sw, &["mod-port", "vhost0", "up"]);
    assert_eq!(traffic(&sw, 300), 300);
    assert!(
        monitor_lines(&out, "PORT_DOWN", 1) >= 1,
        "no PORT_STATUS with PORT_DOWN:\n{}",
        std::fs::read_to_string(&out).unwrap_or_default()
    );

    // Packet-ins: the table-miss entry's say no_match, another rule's action.
    of13(&sw, &["del-flows"]);
    of13(&sw, &["add-flow", "priority=0,actions=controller"]);
    traffic(&sw, 5);
    assert_eq!(
        monitor_lines(&out, "(via no_match)", 5),
        5,
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );
    of13(
        &sw,
        &[
            "add-flow",
            "priority=10,in_port=vhost0,actions=controller:60",
        ],
    );
    traffic(&sw, 5);
    assert_eq!(
        monitor_lines(&out, "(via action) data_len=60", 5),
        5,
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );

    // no-packet-in: the rule still matches (and counts), no copy is sent.
    of13(&sw, &["mod-port", "vhost0", "no-packet-in"]);
    traffic(&sw, 5);
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("OFPT_PACKET_IN"))
            .count(),
        10,
        "{text}"
    );
    assert_eq!(n_packets(&of13(&sw, &["dump-flows"]), "priority=10"), 10);

    // /metrics: the agent's counters and the PORT_MOD drops.
    std::thread::sleep(Duration::from_millis(200));
    let text = sw.scrape();
    let value = |line: &str| -> u64 {
        let l = text
            .lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line} in:\n{text}"));
        l.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("ferrovs_openflow_packet_ins_total "), 10);
    assert_eq!(
        value("ferrovs_openflow_flow_mods_total "),
        5,
        "del, add, del, add, add"
    );
    assert_eq!(value("ferrovs_openflow_connections "), 1, "the monitor");
    assert_eq!(
        value("ferrovs_port_switch_dropped_total{port=\"vhost0\",reason=\"no_fwd\"} "),
        500
    );
    drop(monitor);
}
