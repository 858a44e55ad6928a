//! Real Linux guests (the kernel's own virtio-net driver) on ferrovsd.
//! Under TCG here (kvm_pvm cannot run stock kernels), under KVM on hosts
//! with VT-x/AMD-V.

use ferrovs_tests::guest::{Guest, GuestConfig};
use ferrovs_tests::*;
use serde_json::json;
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(90);
const CMD: Duration = Duration::from_secs(60);

/// Pings until one answer comes back (ARP and learning), then `count` pings
/// must all be answered.
fn ping_clean(from: &Guest, to: &str, count: u32) {
    let (code, out) = from.sh(
        &format!(
            "ping -c 20 -w 20 -W 1 {to} | grep -q 'bytes from' ; ping -c {count} -i 0.2 -W 2 {to}"
        ),
        CMD,
    );
    assert_eq!(code, 0, "ping {to} failed:\n{out}");
    assert!(
        out.contains(&format!(
            "{count} packets transmitted, {count} packets received, 0% packet loss"
        )),
        "{out}"
    );
}

#[test]
fn two_guests_ping_transfer_and_negotiate_features() {
    let _g = serial();
    let dir = TempDir::new("vm2");
    let sw = Ferrovsd::start(dir.path(), None);
    let a = Guest::start(GuestConfig::new("a", &sw.port_socket("vhost0"), 1));
    let b = Guest::start(GuestConfig::new("b", &sw.port_socket("vhost1"), 2));
    a.wait_ready(1, BOOT);
    b.wait_ready(1, BOOT);
    ping_clean(&a, "10.0.0.2", 10);
    ping_clean(&b, "10.0.0.1", 10);

    // 4 MiB of random bytes from A to B over TCP, compared by checksum.
    let (_, sum_a) = a.sh(
        "dd if=/dev/urandom of=/tmp/blob bs=1024 count=4096 2>/dev/null; md5sum /tmp/blob",
        CMD,
    );
    // The listener's stdin is a pipe that stays open: on the console it would
    // read (and send back) what the test types next.
    let (code, _) = b.sh("(sleep 300 | nc -l -p 5001 > /tmp/got &) ; sleep 0.5", CMD);
    assert_eq!(code, 0);
    let (code, out) = a.sh(
        "nc -w 5 10.0.0.2 5001 < /tmp/blob",
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}");
    // nc may exit before the last bytes have crossed: wait for all of them.
    let (_, sum_b) = b.sh(
        "i=0; while [ $(wc -c < /tmp/got) -lt 4194304 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; md5sum /tmp/got; wc -c < /tmp/got",
        CMD,
    );
    let hash = |s: &str| {
        s.split_whitespace()
            .find(|w| w.len() == 32)
            .map(String::from)
    };
    assert!(hash(&sum_a).is_some(), "{sum_a}");
    assert_eq!(
        hash(&sum_a),
        hash(&sum_b),
        "the 4 MiB transfer arrived intact\nA: {sum_a}\nB: {sum_b}"
    );

    let show = sw.ok("show", json!({}));
    for p in show["ports"].as_array().unwrap() {
        let f: Vec<String> = p["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for want in ["MRG_RXBUF", "EVENT_IDX", "INDIRECT_DESC", "VERSION_1"] {
            assert!(
                f.iter().any(|x| x == want),
                "{}: guest driver did not negotiate {want}: {f:?}",
                p["name"]
            );
        }
        assert_eq!(p["link"], "up");
    }
    // The guests hand TCP over in large segments (TSO), passed whole.
    let stats = sw.port_stats("vhost1");
    assert!(stats.tx_bytes > 4 * 1024 * 1024, "{stats:?}");
    assert!(stats.gso_tx_frames > 0, "{stats:?}");

    // Hybrid polling with a real virtio-net driver (EVENT_IDX): A's idle
    // transmit queue stops being polled and waits for a kick; a ping wakes it.
    assert!(
        sw.wait_rxq_mode("vhost0", 0, "notified", Duration::from_secs(20)),
        "an idle guest's queue never went to notified mode: {:?}",
        sw.rxq("vhost0", 0)
    );
    let before = sw.rxq("vhost0", 0).wakeups;
    let (code, out) = a.sh("ping -c 3 -i 0.5 -W 2 10.0.0.2", CMD);
    assert_eq!(code, 0, "a ping from the idle guest:\n{out}");
    let q = sw.rxq("vhost0", 0);
    assert!(
        q.wakeups > before,
        "the guest's kick did not wake its queue: {q:?}"
    );
}

#[test]
fn guest_reboot_reconnects_by_itself() {
    let _g = serial();
    let dir = TempDir::new("vmboot");
    let sw = Ferrovsd::start(dir.path(), None);
    let a = Guest::start(GuestConfig::new("a", &sw.port_socket("vhost0"), 1));
    let b = Guest::start(GuestConfig::new("b", &sw.port_socket("vhost1"), 2));
    a.wait_ready(1, BOOT);
    b.wait_ready(1, BOOT);
    ping_clean(&a, "10.0.0.2", 3);
    // A reboots: its driver resets the device and sets it up again.
    let _ = a.sh("(sleep 0.3; reboot -f) &", CMD);
    a.wait_ready(2, BOOT);
    ping_clean(&a, "10.0.0.2", 5);
    ping_clean(&b, "10.0.0.1", 5);
}

/// ferrovsd as the vhost-user client of QEMU (OVS's dpdkvhostuserclient): it
/// is killed and started again under two pinging guests, which must not
/// notice more than a short gap; a port added at runtime survives too.
#[test]
fn client_mode_survives_a_switch_restart_without_guest_reboot() {
    let _g = serial();
    let dir = TempDir::new("vmcli");
    let qa = dir.path().join("qa.sock");
    let qb = dir.path().join("qb.sock");
    let cfg = format!(
        "[pmd]\nsleep-max = 100\n[[port]]\nname = \"a\"\ntype = \"vhost-user\"\npath = \"{}\"\nmode = \"client\"\n\
         [[port]]\nname = \"b\"\ntype = \"vhost-user\"\npath = \"{}\"\nmode = \"client\"\n",
        qa.display(),
        qb.display()
    );
    let mut ca = GuestConfig::new("a", &qa, 1);
    ca.qemu_server = true;
    let mut cb = GuestConfig::new("b", &qb, 2);
    cb.qemu_server = true;
    let a = Guest::start(ca);
    let b = Guest::start(cb);
    let mut sw = Ferrovsd::start(dir.path(), Some(&cfg));
    a.wait_ready(1, BOOT);
    b.wait_ready(1, BOOT);
    ping_clean(&a, "10.0.0.2", 3);
    sw.ok(
        "add-port",
        json!({ "name": "extra", "type": "vhost-user", "path": "extra.sock" }),
    );

    let (code, _) = a.sh("(ping -i 0.1 10.0.0.2 > /tmp/ping.log 2>&1 &)", CMD);
    assert_eq!(code, 0);
    std::thread::sleep(Duration::from_secs(1));
    // SIGKILL: no goodbye to QEMU, sockets and state left as a crash leaves them.
    if let Some(mut c) = sw.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let sw = Ferrovsd::start(dir.path(), Some(&cfg));
    let mut resumed = None;
    while started.elapsed() < Duration::from_secs(20) {
        if sw.port("a").tx > 0 && sw.port("b").tx > 0 {
            resumed = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let resumed = resumed.unwrap_or_else(|| panic!("ping did not resume; log:\n{}", sw.log_text()));
    eprintln!("ping resumed {resumed:?} after ferrovsd was started again");
    assert!(
        resumed < Duration::from_secs(2),
        "ping resumed only after {resumed:?}"
    );
    // The guests never rebooted and their pings flow again.
    std::thread::sleep(Duration::from_secs(1));
    let (_, log) = a.sh(
        "kill %1 2>/dev/null; killall ping; grep -c 'bytes from' /tmp/ping.log",
        CMD,
    );
    assert_eq!(
        a.output().matches("FV-READY").count(),
        1,
        "guest A rebooted"
    );
    assert!(
        log.lines()
            .any(|l| l.trim().parse::<u32>().is_ok_and(|n| n > 10)),
        "{log}"
    );
    ping_clean(&b, "10.0.0.1", 3);
    // The runtime port came back from the state file.
    let names = sw.port_names();
    assert!(names.contains(&"extra".to_string()), "{names:?}");
    assert!(sw.run_dir.join("extra.sock").exists());
}

/// Jumbo frames: guests with MTU 9000 on ports with mtu-request 9000 exchange
/// 8000-byte pings (mergeable buffers on guest RX); towards a port whose MTU
/// is 1500 the same frames are dropped and counted as mtu_exceeded.
#[test]
fn jumbo_frames_pass_and_oversized_frames_are_counted() {
    let _g = serial();
    let dir = TempDir::new("vmjumbo");
    let mut cfg = String::from("[pmd]\nsleep-max = 100\n");
    for (i, mtu) in [9000, 9000, 1500].iter().enumerate() {
        cfg.push_str(&format!("[[port]]\nname = \"vhost{i}\"\ntype = \"vhost-user\"\npath = \"vhost{i}.sock\"\nmtu-request = {mtu}\n"));
    }
    let sw = Ferrovsd::start(dir.path(), Some(&cfg));
    let guests: Vec<Guest> = (0..3u8)
        .map(|i| {
            let mut c = GuestConfig::new(
                &format!("g{i}"),
                &sw.port_socket(&format!("vhost{i}")),
                i + 1,
            );
            c.mtu = Some(9000);
            Guest::start(c)
        })
        .collect();
    for g in &guests {
        g.wait_ready(1, BOOT);
        assert!(
            g.output().contains("mtu 9000"),
            "guest did not take MTU 9000:\n{}",
            g.output()
        );
    }
    ping_clean(&guests[0], "10.0.0.2", 3);
    let (code, out) = guests[0].sh("ping -c 5 -i 0.3 -W 2 -s 8000 10.0.0.2", CMD);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("5 packets received"), "{out}");
    // 10.0.0.3 sits behind a 1500-byte port: small pings pass, jumbo ones are dropped.
    ping_clean(&guests[0], "10.0.0.3", 2);
    let before = sw.port("vhost2").tx_drop("mtu_exceeded");
    let (_, out) = guests[0].sh("ping -c 3 -i 0.3 -W 1 -s 8000 10.0.0.3", CMD);
    assert!(out.contains("0 packets received"), "{out}");
    let after = sw.port("vhost2").tx_drop("mtu_exceeded");
    assert!(
        after >= before + 3,
        "mtu_exceeded drops on vhost2: {before} -> {after}"
    );
    let show = sw.ok("show", json!({}));
    assert_eq!(show["ports"][0]["mtu"], "9000");
}

/// Two guests on ports offering 2 queue pairs (`n-rxq = 2`), ferrovsd with
/// PMDs on CPUs 0 and 1 (round-robin placement); `vcpus` 0 = one per queue pair.
fn two_pmds_two_queue_pairs(tag: &str, vcpus: u16) -> (TempDir, Ferrovsd, Vec<Guest>) {
    assert!(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            >= 2,
        "multiqueue tests need 2 CPUs"
    );
    let dir = TempDir::new(tag);
    let mut cfg = String::from("[pmd]\nsleep-max = 200\nrxq-assign = \"roundrobin\"\n");
    for i in 0..2 {
        cfg.push_str(&format!(
            "[[port]]\nname = \"vhost{i}\"\ntype = \"vhost-user\"\npath = \"vhost{i}.sock\"\nn-rxq = 2\n"
        ));
    }
    let sw = Ferrovsd::start_on(dir.path(), Some(&cfg), "0-1");
    let guests: Vec<Guest> = (0..2u8)
        .map(|i| {
            let mut c = GuestConfig::new(
                &format!("g{i}"),
                &sw.port_socket(&format!("vhost{i}")),
                i + 1,
            );
            c.queues = 2;
            c.vcpus = vcpus;
            Guest::start(c)
        })
        .collect();
    for g in &guests {
        g.wait_ready(1, BOOT);
    }
    (dir, sw, guests)
}

/// Multiqueue: guests with 2 vCPUs and 2 queue pairs on ports with n-rxq = 2,
/// two PMD cores; the queues spread over both cores and traffic flows.
#[test]
fn multiqueue_guests_spread_over_two_pmds() {
    let _g = serial();
    let (_dir, sw, guests) = two_pmds_two_queue_pairs("vmmq", 0);
    ping_clean(&guests[0], "10.0.0.2", 5);
    let (_, q) = guests[0].sh("ls /sys/class/net/eth0/queues/", CMD);
    assert!(
        q.contains("rx-1") && q.contains("tx-1"),
        "guest driver did not set up 2 queue pairs: {q}"
    );
    let rxq = sw.ok("pmd-rxq-show", json!({}));
    let pmds = rxq["pmds"].as_array().unwrap();
    assert_eq!(pmds.len(), 2);
    for p in pmds {
        let qs = p["queues"].as_array().unwrap();
        assert_eq!(
            qs.len(),
            2,
            "each PMD polls two of the four rx queues: {rxq}"
        );
        for q in qs {
            assert_eq!(q["enabled"], true, "guest enabled every queue: {rxq}");
        }
    }
    let show = sw.ok("show", json!({}));
    assert!(
        show["ports"][0]["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "MQ"),
        "{show}"
    );
    // Several TCP flows: the guest spreads them over its queues.
    let (_, _) = guests[1].sh(
        "for p in 5101 5102 5103 5104; do (sleep 60 | nc -l -p $p > /dev/null &); done; sleep 0.5",
        CMD,
    );
    let (code, out) = guests[0].sh(
        "dd if=/dev/zero of=/tmp/z bs=1024 count=1024 2>/dev/null; for p in 5101 5102 5103 5104; do nc -w 3 10.0.0.2 $p < /tmp/z & done; wait",
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}");
    ping_clean(&guests[1], "10.0.0.1", 3);
}

/// Ports offer 2 queue pairs but the guests have 1 vCPU, so their drivers
/// use one pair: the other queues stay disabled, nothing is sent into them
/// (from either PMD) and traffic flows.
#[test]
fn queues_the_guest_never_enabled_strand_nothing() {
    let _g = serial();
    let (_dir, sw, guests) = two_pmds_two_queue_pairs("vmmq1", 1);
    // Frames sent while a guest was still booting may be dropped as not_ready;
    // from here on, with both drivers up, nothing may be lost.
    ping_clean(&guests[0], "10.0.0.2", 2);
    let before: Vec<_> = ["vhost0", "vhost1"].iter().map(|p| sw.port(p)).collect();
    ping_clean(&guests[0], "10.0.0.2", 10);
    ping_clean(&guests[1], "10.0.0.1", 10);
    let rxq = sw.ok("pmd-rxq-show", json!({}));
    let disabled = rxq["pmds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["queues"].as_array().unwrap().clone())
        .filter(|q| q["enabled"] == false)
        .count();
    assert_eq!(
        disabled, 2,
        "queue 1 of each port is not enabled by a 1-vCPU guest: {rxq}"
    );
    for (p, b) in ["vhost0", "vhost1"].iter().zip(&before) {
        let c = sw.port(p);
        assert!(
            c.tx >= b.tx + 20,
            "{p}: the pings were delivered: {b:?} -> {c:?}"
        );
        assert_eq!(
            c.tx_dropped, b.tx_dropped,
            "{p}: nothing dropped or stranded: {b:?} -> {c:?}"
        );
    }
}
