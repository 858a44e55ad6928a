//! One thread serves the vhost-user control channel of every port: it
//! listens (server mode) or dials (client mode), and feeds the frontend's
//! messages to each port's [`VhostDevice`]. The data path never waits on it.

use super::device::VhostDevice;
use super::port::{SocketMode, VhostPort};
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vhost::vhost_user::{BackendReqHandler, Error as VuError};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

type Handler = BackendReqHandler<Mutex<VhostDevice>>;

enum Cmd {
    Add(Arc<VhostPort>, Sender<io::Result<()>>),
    Remove(Arc<VhostPort>, Sender<()>),
    Stop,
}

/// A frontend that sends half a message may stall this thread at most this long.
const MSG_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

struct Entry {
    port: Arc<VhostPort>,
    listener: Option<UnixListener>,
    conn: Option<(Handler, RawFd)>,
    next_dial: Instant,
    backoff: Duration,
}

impl Entry {
    fn disconnect(&mut self, why: &str) {
        if self.conn.take().is_some() {
            tracing::info!(path = %self.port.config.path.display(), "vhost-user peer gone: {why}");
        }
        self.port.reset_queues();
        self.port.connected.store(false, Ordering::Relaxed);
    }

    fn attach(&mut self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(MSG_TIMEOUT));
        let _ = stream.set_write_timeout(Some(MSG_TIMEOUT));
        let fd = stream.as_raw_fd();
        let dev = Arc::new(Mutex::new(VhostDevice::new(self.port.clone())));
        self.port.reset_queues();
        self.conn = Some((BackendReqHandler::from_stream(stream, dev), fd));
        self.port.connected.store(true, Ordering::Relaxed);
        self.port.connections.fetch_add(1, Ordering::Relaxed);
        self.backoff = RECONNECT_MIN;
        tracing::info!(path = %self.port.config.path.display(), "vhost-user peer connected");
    }

    fn dial(&mut self, now: Instant) {
        match UnixStream::connect(&self.port.config.path) {
            Ok(s) => self.attach(s),
            Err(e) => {
                self.port
                    .set_error(format!("connect {}: {e}", self.port.config.path.display()));
                self.next_dial = now + self.backoff;
                self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}

/// Handle to the vhost-user control thread.
pub struct VhostControl {
    tx: Sender<Cmd>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
}

impl VhostControl {
    pub fn start() -> io::Result<VhostControl> {
        let (tx, rx) = channel();
        let wake = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let w = wake.clone();
        let thread = std::thread::Builder::new()
            .name("vhost-ctl".into())
            .spawn(move || run(rx, w))?;
        Ok(VhostControl {
            tx,
            wake,
            thread: Some(thread),
        })
    }

    fn send(&self, c: Cmd) {
        let _ = self.tx.send(c);
        let _ = self.wake.write(1);
    }

    /// Starts serving a port's socket; fails if a server socket cannot be bound.
    pub fn add(&self, port: Arc<VhostPort>) -> io::Result<()> {
        let (rtx, rrx) = channel();
        self.send(Cmd::Add(port, rtx));
        rrx.recv()
            .unwrap_or_else(|_| Err(io::Error::other("vhost control thread is gone")))
    }

    /// Closes the port's connection and socket; returns once done.
    pub fn remove(&self, port: &Arc<VhostPort>) {
        let (rtx, rrx) = channel();
        self.send(Cmd::Remove(port.clone(), rtx));
        let _ = rrx.recv();
    }

    pub fn stop(&mut self) {
        self.send(Cmd::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VhostControl {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Errors that refuse one request but leave the connection usable. QEMU,
/// for one, sends SET_VRING_ENABLE before it has acked PROTOCOL_FEATURES.
fn request_level(e: &VuError) -> bool {
    matches!(
        e,
        VuError::InactiveFeature(_)
            | VuError::InactiveOperation(_)
            | VuError::InvalidParam
            | VuError::InvalidOperation(_)
            | VuError::FeatureMismatch
            | VuError::BackendInternalError
            | VuError::ReqHandlerError(_)
    )
}

/// Binds a server socket, replacing a stale one that nobody listens on.
fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another process", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let l = UnixListener::bind(path)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn run(rx: Receiver<Cmd>, wake: Arc<EventFd>) {
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        let now = Instant::now();
        for e in entries.iter_mut() {
            if e.conn.is_none() && e.port.config.mode == SocketMode::Client && now >= e.next_dial {
                e.dial(now);
            }
        }
        // (fd, entry index or usize::MAX for the wake fd)
        let mut fds = vec![libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let mut owners = vec![usize::MAX];
        let mut timeout = Duration::from_secs(1);
        for (i, e) in entries.iter().enumerate() {
            let fd = match (&e.conn, &e.listener) {
                (Some((_, fd)), _) => *fd,
                (None, Some(l)) => l.as_raw_fd(),
                (None, None) => {
                    timeout = timeout.min(e.next_dial.saturating_duration_since(now));
                    continue;
                }
            };
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
            owners.push(i);
        }
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_millis().max(1) as i32,
            )
        };
        if n < 0 {
            continue; // EINTR
        }
        for (pfd, &i) in fds.iter().zip(&owners) {
            if pfd.revents == 0 || i == usize::MAX {
                continue;
            }
            let e = &mut entries[i];
            if let Some((h, _)) = e.conn.as_mut() {
                let result = h.handle_request();
                e.port.refresh_tx_map();
                match result {
                    Ok(()) => {}
                    Err(err) if request_level(&err) => {
                        // The message was read whole and refused; the channel is intact.
                        tracing::debug!(path = %e.port.config.path.display(), "vhost-user request refused: {err}");
                        e.port
                            .set_error(format!("vhost-user request refused: {err}"));
                    }
                    Err(err) => {
                        let why = format!("{err}");
                        e.disconnect(&why);
                        if !matches!(err, VuError::Disconnected | VuError::PartialMessage) {
                            e.port
                                .set_error(format!("vhost-user connection failed: {why}"));
                        }
                        // A client re-dials after a pause, like QEMU's reconnect.
                        e.next_dial = Instant::now() + RECONNECT_MIN;
                    }
                }
            } else if let Some(l) = e.listener.as_ref() {
                if let Ok((s, _)) = l.accept() {
                    e.attach(s);
                }
            }
        }
        if fds[0].revents != 0 {
            let _ = wake.read();
            while let Ok(cmd) = rx.try_recv() {
                match cmd {
                    Cmd::Add(port, reply) => {
                        let listener = match port.config.mode {
                            SocketMode::Server => match bind(&port.config.path) {
                                Ok(l) => Some(l),
                                Err(err) => {
                                    let _ = reply.send(Err(err));
                                    continue;
                                }
                            },
                            SocketMode::Client => None,
                        };
                        entries.push(Entry {
                            port,
                            listener,
                            conn: None,
                            next_dial: Instant::now(),
                            backoff: RECONNECT_MIN,
                        });
                        let _ = reply.send(Ok(()));
                    }
                    Cmd::Remove(port, reply) => {
                        if let Some(i) = entries.iter().position(|e| Arc::ptr_eq(&e.port, &port)) {
                            let mut e = entries.swap_remove(i);
                            e.disconnect("port removed");
                            if e.listener.take().is_some() {
                                let _ = std::fs::remove_file(&e.port.config.path);
                            }
                        }
                        let _ = reply.send(());
                    }
                    Cmd::Stop => {
                        for e in entries.iter_mut() {
                            e.disconnect("shutting down");
                            if e.listener.take().is_some() {
                                let _ = std::fs::remove_file(&e.port.config.path);
                            }
                        }
                        return;
                    }
                }
            }
        }
    }
}
