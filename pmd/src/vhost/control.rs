//! One thread serves the vhost-user control channel of every port: it
//! listens (server mode) or dials (client mode), and feeds the frontend's
//! messages to each port's [`VhostDevice`]. The data path never waits on it.
//!
//! No peer may stall this thread (and with it every other port's handshake):
//! connects are non-blocking, a message is handed to the `vhost` crate's
//! reader only once all its bytes are queued on the socket (the crate's reader
//! blocks, and retries a timed-out read forever), a message still incomplete
//! after [`MSG_TIMEOUT`] ends the connection, and so does a peer that leaves
//! its replies unread (our next reply could block).

use super::device::VhostDevice;
use super::fault_guard;
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

/// A frontend has this long to finish a message it has started.
const MSG_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a connection with half a message queued is looked at again
/// (it is readable all the while, so it cannot wait in poll for POLLIN).
const PARTIAL_RECHECK: Duration = Duration::from_millis(10);
/// Unread reply bytes (kernel accounting, per-skb overhead included) beyond
/// which a peer is dropped: well under the socket's send buffer, so a reply
/// never blocks.
const MAX_UNREAD_REPLIES: i32 = 64 * 1024;
/// A vhost-user message header: request, flags, payload size (u32 each).
const HDR_LEN: usize = 12;
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

struct Entry {
    port: Arc<VhostPort>,
    listener: Option<UnixListener>,
    conn: Option<(Handler, RawFd)>,
    /// When the connection's current message was first seen incomplete.
    partial_since: Option<Instant>,
    next_dial: Instant,
    backoff: Duration,
}

impl Entry {
    fn disconnect(&mut self, why: &str) {
        self.partial_since = None;
        if self.conn.take().is_some() {
            tracing::info!(path = %self.port.config.path.display(), "vhost-user peer gone: {why}");
        }
        self.port.reset_queues();
        self.port.connected.store(false, Ordering::Relaxed);
    }

    fn attach(&mut self, stream: UnixStream) {
        // Reads happen only for fully queued messages and writes only below
        // MAX_UNREAD_REPLIES; non-blocking makes any slip an error, not a stall.
        if let Err(e) = stream.set_nonblocking(true) {
            self.port.set_error(format!("vhost-user socket: {e}"));
            return;
        }
        // Urgent data inline: an out-of-band byte would otherwise be counted
        // by FIONREAD, stop a peek short and never be read.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on our socket with a c_int option value.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_OOBINLINE,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
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
        match connect_nonblocking(&self.port.config.path) {
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

/// Connects without waiting (see `crate::sock`); a full backlog is reported
/// as WouldBlock with a message `show` can print.
fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    crate::sock::connect_unix_nonblocking(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::EAGAIN) {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "the listener accepts no connections (backlog full)",
            )
        } else {
            e
        }
    })
}

/// What the bytes queued on a connection amount to.
#[derive(Debug, PartialEq, Eq)]
enum Queued {
    /// A whole message (or end of stream, or a header the reader will refuse):
    /// reading it cannot block.
    Ready,
    /// Part of a message; wait for the rest.
    Partial,
}

/// Looks at the socket's queue without consuming it (and without taking any
/// fds: a peek with no control buffer installs none).
fn queued(fd: RawFd) -> Queued {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer given.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } != 0 || n == 0 {
        return Queued::Ready; // error or EOF: the reader reports it
    }
    let n = n as usize;
    if n < HDR_LEN {
        return Queued::Partial;
    }
    let mut hdr = [0u8; HDR_LEN];
    // SAFETY: reads at most HDR_LEN bytes into a local buffer.
    let got = unsafe {
        libc::recv(
            fd,
            hdr.as_mut_ptr().cast(),
            HDR_LEN,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if got != HDR_LEN as isize {
        // The header is split at an fd boundary (a peek stops after a part
        // that carries fds): no frontend sends that, and the crate's reader
        // could retry a read forever on it. It waits like a partial message,
        // and the deadline drops the peer.
        return Queued::Partial;
    }
    let size = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
    if n >= HDR_LEN.saturating_add(size) {
        Queued::Ready
    } else {
        Queued::Partial
    }
}

/// Bytes of our replies the peer has not read yet.
fn unread_replies(fd: RawFd) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int to the pointer given.
    if unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) } != 0 {
        return 0;
    }
    n
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
        // A live listener answers (or is too busy to: backlog full); only a
        // refused connection means the socket file is stale.
        let in_use = match connect_nonblocking(path) {
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        if in_use {
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
    let mut faults_seen = fault_guard::faults();
    loop {
        let now = Instant::now();
        // A truncated guest memory file (see fault_guard) ends its connection.
        if fault_guard::faults() != faults_seen {
            faults_seen = fault_guard::faults();
            for e in entries.iter_mut() {
                if e.conn.is_some() && e.port.memory_truncated() {
                    e.port.set_error(
                        "the frontend truncated guest memory under the switch; connection dropped",
                    );
                    e.disconnect("guest memory truncated");
                    e.next_dial = now + RECONNECT_MIN;
                }
            }
        }
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
            if let (Some((_, fd)), Some(_)) = (&e.conn, e.partial_since) {
                // Readable all along: watch only for hang-up, look again soon.
                fds.push(libc::pollfd {
                    fd: *fd,
                    events: libc::POLLRDHUP,
                    revents: 0,
                });
                owners.push(i);
                timeout = timeout.min(PARTIAL_RECHECK);
                continue;
            }
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
        let now = Instant::now();
        for (pfd, &i) in fds.iter().zip(&owners) {
            if i == usize::MAX {
                continue;
            }
            let e = &mut entries[i];
            if pfd.revents == 0 && e.partial_since.is_none() {
                continue;
            }
            if let Some((h, fd)) = e.conn.as_mut() {
                let fd = *fd;
                let hung_up = pfd.revents & (libc::POLLHUP | libc::POLLRDHUP | libc::POLLERR) != 0;
                if e.partial_since.is_some() && hung_up {
                    e.disconnect("hung up mid-message");
                    e.next_dial = now + RECONNECT_MIN;
                    continue;
                }
                if queued(fd) == Queued::Partial {
                    let since = *e.partial_since.get_or_insert(now);
                    if now.duration_since(since) > MSG_TIMEOUT {
                        e.port.set_error(format!(
                            "vhost-user peer left a message incomplete for {} s",
                            MSG_TIMEOUT.as_secs()
                        ));
                        e.disconnect("incomplete message");
                        e.next_dial = now + RECONNECT_MIN;
                    }
                    continue;
                }
                e.partial_since = None;
                if unread_replies(fd) > MAX_UNREAD_REPLIES {
                    e.port
                        .set_error("vhost-user peer does not read its replies".to_string());
                    e.disconnect("replies unread");
                    e.next_dial = now + RECONNECT_MIN;
                    continue;
                }
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
                            partial_since: None,
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
