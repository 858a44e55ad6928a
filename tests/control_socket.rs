//! Hostile and broken management clients: every bad request gets an error
//! reply, and the switch keeps forwarding.

use ferrovs_tests::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn raw(sw: &Ferrovsd, bytes: &[u8], close_write: bool) -> Option<Value> {
    let mut s = UnixStream::connect(sw.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    if close_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

#[test]
fn bad_requests_get_errors_and_forwarding_continues() {
    let _g = serial();
    let dir = TempDir::new("ctl");
    let sw = Ferrovsd::start(dir.path(), None);
    let mode = std::fs::metadata(sw.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "management socket is private by default");
    let mut rx = Testpmd::start(&sw.port_socket("vhost1"), &mac(2), "rxonly", &mac(1));
    rx.cmd("start");
    let mut tx = Testpmd::start(&sw.port_socket("vhost0"), &mac(1), "txonly", &mac(2));
    tx.cmd("start");
    std::thread::sleep(Duration::from_millis(500));
    let before = sw.port("vhost1").tx;

    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        ("garbage", b"\x00\xff garbage \x13\n".to_vec(), false, "not valid JSON"),
        ("not an object", b"[1,2,3]\n".to_vec(), false, "JSON object"),
        ("no command", b"{\"args\":{}}\n".to_vec(), false, "no \"command\""),
        ("unknown command", b"{\"command\":\"reboot\"}\n".to_vec(), false, "unknown command"),
        ("missing argument", b"{\"command\":\"del-port\"}\n".to_vec(), false, "missing field `name`"),
        ("wrong type", b"{\"command\":\"del-port\",\"args\":{\"name\":7}}\n".to_vec(), false, "expected a string"),
        ("unknown argument", b"{\"command\":\"add-port\",\"args\":{\"name\":\"x\",\"type\":\"vhost-user\",\"path\":\"x\",\"colour\":\"red\"}}\n".to_vec(), false, "unknown field `colour`"),
        ("argument to a command without", b"{\"command\":\"fdb-show\",\"args\":{\"name\":\"x\"}}\n".to_vec(), false, "unknown field `name`"),
        ("bad port type", b"{\"command\":\"add-port\",\"args\":{\"name\":\"x\",\"type\":\"tap\",\"path\":\"x\"}}\n".to_vec(), false, "unknown port type"),
        ("bad port name", b"{\"command\":\"add-port\",\"args\":{\"name\":\"../x\",\"type\":\"vhost-user\",\"path\":\"x\"}}\n".to_vec(), false, "not a port name"),
        ("bad number", b"{\"command\":\"add-port\",\"args\":{\"name\":\"x\",\"type\":\"vhost-user\",\"path\":\"x\",\"n-rxq\":\"9\"}}\n".to_vec(), false, "n-rxq: must be 1..=8"),
        ("jumbo on a 2 KiB pool", b"{\"command\":\"add-port\",\"args\":{\"name\":\"x\",\"type\":\"vhost-user\",\"path\":\"x\",\"mtu-request\":\"9000\"}}\n".to_vec(), false, "mbuf-data-room"),
        ("truncated", b"{\"command\":\"sh".to_vec(), true, "truncated"),
        ("oversized", vec![b'x'; 5 << 20], false, "longer than"),
    ];
    for (what, bytes, close, expect) in cases {
        let r = raw(&sw, &bytes, close).unwrap_or_else(|| panic!("{what}: no reply"));
        assert_eq!(r["ok"], json!(false), "{what}: {r}");
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains(expect),
            "{what}: error {e:?} should mention {expect:?}"
        );
    }
    // A client that connects and says nothing does not block others.
    let _idle = UnixStream::connect(sw.socket()).unwrap();
    let mut half = UnixStream::connect(sw.socket()).unwrap();
    half.write_all(b"{\"command\":").unwrap();
    assert_eq!(sw.request("show", json!({}))["ok"], json!(true));
    // Several requests on one connection.
    let mut s = UnixStream::connect(sw.socket()).unwrap();
    s.write_all(b"{\"command\":\"help\"}\n{\"command\":\"fdb-show\"}\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..2 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert!(l.contains("\"ok\":true"), "{l}");
    }
    drop(r);
    // ferrovsd's help and ferrovs-ctl's usage list the same commands (one table).
    let help = sw.ctl(&["help"]);
    let usage = sw.ctl(&["--help"]);
    for c in proto::Command::ALL {
        assert!(help.contains(&format!("  {} ", c.name())), "{help}");
        assert!(usage.contains(&format!("\n  {}", c.name())), "{usage}");
    }
    assert!(
        sw.ctl_try(&["fdb-show", "vhost0"])
            .unwrap_err()
            .contains("unknown field `name`"),
        "ferrovs-ctl refuses what ferrovsd would"
    );
    let mut rest = Vec::new();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let _ = s.read_to_end(&mut rest);

    std::thread::sleep(Duration::from_millis(500));
    let after = sw.port("vhost1").tx;
    assert!(
        after > before + 1000,
        "forwarding continued: {before} -> {after}"
    );
    tx.cmd("stop");
    assert!(sw.child.is_some());
}
