//! A vhost-user message stream, fds attached, into the backend's request
//! handler (the `vhost` crate's framing + our VhostDevice), then one burst
//! each way on whatever rings the messages set up. Invariants: no panic, no
//! access outside memory the messages mapped, no fd kept for a refused message.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pmd::vhost::device::VhostDevice;
use pmd::vhost::{SocketMode, VhostPort, VhostPortConfig};
use pmd::{Batch, Pool, PoolCache, Port};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use vhost::vhost_user::BackendReqHandler;

#[derive(Arbitrary, Debug)]
enum Fd {
    /// A memfd of this many pages (at most 64), sealable or not.
    Memory {
        pages: u8,
        sealable: bool,
    },
    Event,
    Pipe,
}

#[derive(Arbitrary, Debug)]
struct Msg {
    code: u8,
    flags: u8,
    body: Vec<u8>,
    /// Claimed size when set (may disagree with the body).
    size: Option<u16>,
    fds: Vec<Fd>,
}

fn pool() -> &'static Arc<Pool> {
    static P: OnceLock<Arc<Pool>> = OnceLock::new();
    P.get_or_init(|| Pool::new(512, false).unwrap())
}

fn make_fd(f: &Fd) -> Option<OwnedFd> {
    // SAFETY: plain syscalls; each result is checked before it is owned.
    unsafe {
        let fd = match f {
            Fd::Memory { pages, sealable } => {
                let flags = if *sealable {
                    libc::MFD_ALLOW_SEALING
                } else {
                    0
                };
                let fd = libc::memfd_create(c"fuzz-mem".as_ptr(), libc::MFD_CLOEXEC | flags);
                if fd >= 0 {
                    libc::ftruncate(fd, (*pages as i64 % 65) * 4096);
                }
                fd
            }
            Fd::Event => libc::eventfd(0, libc::EFD_CLOEXEC),
            Fd::Pipe => {
                let mut p = [0; 2];
                if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                    return None;
                }
                libc::close(p[0]);
                p[1]
            }
        };
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

fn send(sock: &UnixStream, bytes: &[u8], fds: &[RawFd]) {
    let iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut _,
        iov_len: bytes.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; zeroed is valid and filled in below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &iov as *const _ as *mut _;
    msg.msg_iovlen = 1;
    let fds = &fds[..fds.len().min(8)];
    if !fds.is_empty() {
        // SAFETY: 128 bytes of control buffer hold one cmsg with up to 8 fds.
        unsafe {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: msg points at live data for the call; a failure just drops the message.
    unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
}

fuzz_target!(|msgs: Vec<Msg>| {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let port = Arc::new(VhostPort::new(VhostPortConfig {
        path: "/nonexistent".into(),
        mode: SocketMode::Server,
        queue_pairs: 2,
        mac: [2, 0, 0, 0, 0, 1],
        tx_retries_max: 0,
        mtu: 1500,
        offloads: true,
    }));
    let dev = Arc::new(Mutex::new(VhostDevice::new(port.clone())));
    let mut handler = BackendReqHandler::from_stream(ours, dev);
    for m in msgs.iter().take(48) {
        let body = &m.body[..m.body.len().min(512)];
        let mut bytes = Vec::with_capacity(12 + body.len());
        bytes.extend_from_slice(&(m.code as u32 % 50).to_le_bytes());
        bytes.extend_from_slice(&(m.flags as u32 & 0xd | 1).to_le_bytes());
        let size = m.size.map(u32::from).unwrap_or(body.len() as u32);
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(body);
        let owned: Vec<OwnedFd> = m.fds.iter().take(8).filter_map(make_fd).collect();
        let raw: Vec<RawFd> = owned.iter().map(|f| f.as_raw_fd()).collect();
        send(&theirs, &bytes, &raw);
    }
    // End of stream: every read past the messages sees EOF, never blocks.
    theirs.shutdown(std::net::Shutdown::Write).unwrap();
    // Refused requests leave the stream usable; only its end stops us.
    for _ in 0..64 {
        let r = handler.handle_request();
        port.refresh_tx_map();
        if matches!(r, Err(vhost::vhost_user::Error::Disconnected)) {
            break;
        }
    }
    let mut cache = PoolCache::new(pool().clone());
    for q in 0..2 {
        let mut out = Batch::new();
        port.rx_burst(q, &mut cache, &mut out);
        port.tx_burst(q, &mut cache, &mut out);
        cache.free_batch(&mut out);
    }
    port.reset_queues();
    drop(cache);
    assert_eq!(pool().stats().in_use, 0, "a packet buffer was lost");
});
