//! The management socket: a unix stream socket (mode 0600 by default) that
//! speaks one JSON object per line, the protocol of `ferrovs_proto`.
//!
//! Request:  `{"command": "port-stats", "args": {"name": "vhost0"}}`
//! Reply:    `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`
//!
//! A connection may send many requests. A request line longer than
//! `MAX_REQUEST` bytes, or one that is not JSON of that shape, gets an error
//! reply; nothing a client sends can stop the daemon or its PMDs.

pub mod commands;
mod port_options;
mod reports;

use crate::bridge::Bridge;
use ferrovs_proto::{Reply, ReplyLine, Request};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Room for an `add-flows` of some 30 000 rules in one request (it is all
/// or nothing); bounded so a client cannot grow memory without limit.
pub const MAX_REQUEST: usize = 4 << 20;
const MAX_CLIENTS: usize = 16;
const CLIENT_IDLE: Duration = Duration::from_secs(30);
/// A request must be complete (its newline) this long after its first byte:
/// a client trickling bytes cannot hold a slot for hours.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    pub fn start(path: &Path, mode: u32, bridge: Arc<Bridge>) -> std::io::Result<ControlServer> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use: is another ferrovsd running with this run directory?",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mgmt".into())
            .spawn(move || serve(listener, bridge, s))?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(listener: UnixListener, bridge: Arc<Bridge>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        clients.retain(|h| !h.is_finished());
        match listener.accept() {
            Ok((mut s, _)) => {
                let _ = s.set_nonblocking(false);
                if active.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    let _ = reply(&mut s, Err("too many management clients; try again".into()));
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (b, a, st) = (bridge.clone(), active.clone(), stop.clone());
                match std::thread::Builder::new()
                    .name("mgmt-client".into())
                    .spawn(move || {
                        client(s, &b, &st);
                        a.fetch_sub(1, Ordering::Relaxed);
                    }) {
                    Ok(h) => clients.push(h),
                    Err(e) => {
                        tracing::warn!("cannot start a management client thread: {e}");
                        active.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
            // Nothing to accept: wait for a client (at once) or 100 ms, to
            // look at `stop` (a fixed nap here delayed every request).
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut pfd = libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd on our listening socket.
                unsafe { libc::poll(&mut pfd, 1, 100) };
            }
            // Out of fds and the like: the client stays queued and the
            // listener readable, so polling would spin; nap instead.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    for h in clients {
        let _ = h.join();
    }
}

fn reply(s: &mut UnixStream, r: Result<Reply, String>) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(&ReplyLine::from(r)).expect("replies serialise");
    line.push(b'\n');
    s.write_all(&line)
}

/// Parses one request line (errors say what is wrong with it).
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    Request::parse(line)
}

/// One client: requests are lines; each must be complete within
/// `REQUEST_DEADLINE` of its first byte and `MAX_REQUEST` long at most. Raw
/// reads (not `read_until`, which keeps waiting as long as bytes trickle in)
/// so the deadline is checked at least every 500 ms.
fn client(mut s: UnixStream, bridge: &Bridge, stop: &AtomicBool) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(mut out) = s.try_clone() else { return };
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut idle = Duration::ZERO;
    // When the request being read began (its first byte).
    let mut began: Option<std::time::Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if began.is_some_and(|t| t.elapsed() > REQUEST_DEADLINE) {
            let _ = reply(
                &mut out,
                Err(format!(
                    "request not complete within {} s of its first byte",
                    REQUEST_DEADLINE.as_secs()
                )),
            );
            return;
        }
        let n = match s.read(&mut chunk) {
            Ok(0) => {
                if !line.is_empty() {
                    let _ = reply(
                        &mut out,
                        Err("truncated request: connection closed before a newline".into()),
                    );
                }
                return;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += Duration::from_millis(500);
                if idle >= CLIENT_IDLE {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        idle = Duration::ZERO;
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            let (part, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            rest = &rest[part.len()..];
            if line.len() + part.len() > MAX_REQUEST {
                let _ = reply(
                    &mut out,
                    Err(format!("request longer than {MAX_REQUEST} bytes")),
                );
                return;
            }
            line.extend_from_slice(part);
            began.get_or_insert_with(std::time::Instant::now);
            if !complete {
                break;
            }
            let r = parse_request(&line).and_then(|req| commands::dispatch(bridge, req));
            line.clear();
            began = None;
            if reply(&mut out, r).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_shapes() {
        assert_eq!(parse_request(br#"{"command":"show"}"#), Ok(Request::Show));
        let r = parse_request(br#"{"command":"del-port","args":{"name":"x"}}"#).unwrap();
        assert_eq!(
            r,
            Request::DelPort(ferrovs_proto::DelPort { name: "x".into() })
        );
        assert!(parse_request(b"garbage")
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse_request(b"[1,2]").unwrap_err().contains("JSON object"));
        assert!(parse_request(br#"{"cmd":"show"}"#).is_err());
        assert!(parse_request(br#"{"command":5}"#).is_err());
        assert!(parse_request(br#"{"command":"show","args":[1]}"#).is_err());
    }
}
