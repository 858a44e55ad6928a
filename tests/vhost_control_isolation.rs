//! One misbehaving vhost-user peer must not delay any other port's handshake
//! or the management socket (issue 12, item 4). Each test holds a hostile
//! peer in its worst state while a well-behaved one completes a handshake.

use ferrovs_tests::vhost_frontend::*;
use ferrovs_tests::*;
use serde_json::json;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// A full handshake on `path` plus one round trip; returns how long it took.
fn handshake_time(path: &Path) -> Duration {
    let t0 = Instant::now();
    let mut g = Guest::connect(path, 1 << 20);
    let f = g.fe.get_u64(req::GET_FEATURES).expect("GET_FEATURES reply");
    assert!(f & F_VERSION_1 != 0);
    t0.elapsed()
}

#[test]
fn a_peer_stalled_mid_message_does_not_delay_another_handshake() {
    let _g = serial();
    let dir = TempDir::new("stall");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(3)));

    // Peer 0: half a header, then silence (the old reader retried its timed-out read forever).
    let mut half_header = RawFrontend::connect(&sw.port_socket("vhost0"));
    half_header.send_bytes(&[1, 0, 0, 0, 1]).unwrap();
    // Peer 1: a whole header announcing 40 bytes, and only 10 of them.
    let mut half_body = RawFrontend::connect(&sw.port_socket("vhost1"));
    let mut msg = Vec::new();
    msg.extend_from_slice(&req::SET_VRING_ADDR.to_le_bytes());
    msg.extend_from_slice(&1u32.to_le_bytes());
    msg.extend_from_slice(&40u32.to_le_bytes());
    msg.extend_from_slice(&[0; 10]);
    half_body.send_bytes(&msg).unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let took = handshake_time(&sw.port_socket("vhost2"));
    eprintln!("handshake beside two stalled peers: {took:?}");
    assert!(
        !half_header.closed_by_peer() && !half_body.closed_by_peer(),
        "the good handshake finished only after the stalled peers were given up on"
    );
    assert!(sw.ctl_try(&["show"]).is_ok());

    // The stalled peers are dropped once their message deadline passes.
    assert!(
        half_header.wait_closed(Duration::from_secs(10)),
        "half a header kept forever"
    );
    assert!(
        half_body.wait_closed(Duration::from_secs(10)),
        "half a body kept forever"
    );
    let show = sw.ctl(&["show"]);
    assert!(show.contains("incomplete"), "{show}");
}

#[test]
fn a_peer_that_never_reads_its_replies_is_dropped() {
    let _g = serial();
    let dir = TempDir::new("noread");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(2)));
    let mut flood = RawFrontend::connect(&sw.port_socket("vhost0"));
    // Each GET_FEATURES earns a reply; none is read. A blocking reply would
    // stall the control thread once the socket's send buffer is full.
    let mut sent = 0;
    for _ in 0..20_000 {
        if flood.send(req::GET_FEATURES, &[], &[]).is_err() {
            break;
        }
        sent += 1;
    }
    eprintln!("sent {sent} unanswered requests");
    let took = handshake_time(&sw.port_socket("vhost1"));
    eprintln!("handshake beside a peer that reads nothing: {took:?}");
    let show = sw.ctl(&["show"]);
    assert!(show.contains("does not read its replies"), "{show}");
}

/// A listening socket with a backlog of 0 that never accepts, filled so the
/// next connect would wait.
fn full_listener(path: &Path) -> (OwnedFd, Vec<OwnedFd>) {
    // SAFETY: plain syscalls; every result is checked; fds are owned below.
    unsafe {
        let l = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(l >= 0);
        let l = OwnedFd::from_raw_fd(l);
        let addr = sockaddr(path);
        assert_eq!(
            libc::bind(
                std::os::fd::AsRawFd::as_raw_fd(&l),
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as u32
            ),
            0
        );
        assert_eq!(libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), 0), 0);
        let mut queued = Vec::new();
        loop {
            let c = libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            assert!(c >= 0);
            let c = OwnedFd::from_raw_fd(c);
            let rc = libc::connect(
                std::os::fd::AsRawFd::as_raw_fd(&c),
                (&addr as *const libc::sockaddr_un).cast(),
                std::mem::size_of::<libc::sockaddr_un>() as u32,
            );
            if rc != 0 {
                break;
            }
            queued.push(c);
            assert!(queued.len() < 100, "backlog never filled");
        }
        (l, queued)
    }
}

fn sockaddr(path: &Path) -> libc::sockaddr_un {
    // SAFETY: zeroed sockaddr_un is valid; the path is copied in below.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in a
        .sun_path
        .iter_mut()
        .zip(path.as_os_str().as_encoded_bytes())
    {
        *d = *s as libc::c_char;
    }
    a
}

#[test]
fn a_client_port_whose_peer_never_accepts_blocks_nothing() {
    let _g = serial();
    let dir = TempDir::new("noaccept");
    let sw = Ferrovsd::start(dir.path(), Some(&config_with_ports(1)));
    let deaf = dir.path().join("deaf.sock");
    let _listener = full_listener(&deaf);
    sw.ok(
        "add-port",
        json!({ "name": "deaf", "type": "vhost-user", "path": deaf.to_str().unwrap(), "mode": "client" }),
    );
    // The switch keeps dialling the deaf peer; everything else goes on.
    std::thread::sleep(Duration::from_millis(300));
    let extra = dir.path().join("extra.sock");
    sw.ok(
        "add-port",
        json!({ "name": "extra", "type": "vhost-user", "path": extra.to_str().unwrap() }),
    );
    let took = handshake_time(&extra);
    eprintln!("handshake beside a never-accepting client peer: {took:?}");
    let took = handshake_time(&sw.port_socket("vhost0"));
    eprintln!("second handshake: {took:?}");
    let show = sw.ctl(&["show"]);
    assert!(show.contains("backlog full"), "{show}");
    sw.ok("del-port", json!({ "name": "deaf" }));
}
