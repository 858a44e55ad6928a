//! A vhost-user frontend that speaks raw messages, for tests that play a
//! hostile peer (QEMU's role, with every field and fd the test's to choose),
//! and a guest's side of two split rings in memory the test owns.
//!
//! Layout of the guest memory it builds: queue 0 (guest RX) at 0x0000, queue
//! 1 (guest TX) at 0x4000, each descriptor table / avail / used 4 KiB apart;
//! buffers from [`BUFFERS`] on. Guest-physical addresses start at 0.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// vhost-user request codes (QEMU's docs/interop/vhost-user.rst).
pub mod req {
    pub const GET_FEATURES: u32 = 1;
    pub const SET_FEATURES: u32 = 2;
    pub const SET_OWNER: u32 = 3;
    pub const SET_MEM_TABLE: u32 = 5;
    pub const SET_LOG_BASE: u32 = 6;
    pub const SET_LOG_FD: u32 = 7;
    pub const SET_VRING_NUM: u32 = 8;
    pub const SET_VRING_ADDR: u32 = 9;
    pub const SET_VRING_BASE: u32 = 10;
    pub const GET_VRING_BASE: u32 = 11;
    pub const SET_VRING_KICK: u32 = 12;
    pub const SET_VRING_CALL: u32 = 13;
    pub const GET_PROTOCOL_FEATURES: u32 = 15;
    pub const GET_QUEUE_NUM: u32 = 17;
    pub const GET_INFLIGHT_FD: u32 = 31;
    pub const SET_INFLIGHT_FD: u32 = 32;
}

pub const F_VERSION_1: u64 = 1 << 32;
pub const F_PROTOCOL_FEATURES: u64 = 1 << 30;
const FLAG_VERSION: u32 = 1;
const FLAG_NEED_REPLY: u32 = 8;

pub const QUEUE_SIZE: u16 = 256;
pub const RXQ: u32 = 0;
pub const TXQ: u32 = 1;
/// Guest address of the first packet buffer.
pub const BUFFERS: u64 = 0x10000;
/// virtio-net header with VERSION_1.
pub const NET_HDR: usize = 12;

pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;
pub const DESC_F_INDIRECT: u16 = 4;

/// One raw connection to a vhost-user socket.
pub struct RawFrontend {
    pub sock: UnixStream,
}

impl RawFrontend {
    /// Connects to a server-mode port, waiting up to 5 s for its socket.
    pub fn connect(path: &Path) -> RawFrontend {
        let t0 = Instant::now();
        loop {
            match UnixStream::connect(path) {
                Ok(sock) => {
                    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    return RawFrontend { sock };
                }
                Err(e) if t0.elapsed() > Duration::from_secs(5) => {
                    panic!("connect {}: {e}", path.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Sends one message (header + payload in one sendmsg, fds attached).
    pub fn send_flags(
        &mut self,
        code: u32,
        flags: u32,
        payload: &[u8],
        fds: &[RawFd],
    ) -> io::Result<()> {
        let mut hdr = [0u8; 12];
        hdr[..4].copy_from_slice(&code.to_le_bytes());
        hdr[4..8].copy_from_slice(&flags.to_le_bytes());
        hdr[8..].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        send_with_fds(&self.sock, &[&hdr, payload], fds)
    }

    pub fn send(&mut self, code: u32, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
        self.send_flags(code, FLAG_VERSION, payload, fds)
    }

    /// Sends a message asking for an ack (REPLY_ACK) and returns the ack's
    /// value (0 = accepted); only meaningful once REPLY_ACK is negotiated.
    pub fn send_acked(&mut self, code: u32, payload: &[u8], fds: &[RawFd]) -> io::Result<u64> {
        self.send_flags(code, FLAG_VERSION | FLAG_NEED_REPLY, payload, fds)?;
        let (_, body) = self.recv()?;
        Ok(u64::from_le_bytes(
            body[..8].try_into().unwrap_or([0xff; 8]),
        ))
    }

    /// Bytes as they are: half messages, garbage.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.write_all(bytes)
    }

    /// Reads one reply: (request code, payload).
    pub fn recv(&mut self) -> io::Result<(u32, Vec<u8>)> {
        let mut hdr = [0u8; 12];
        self.sock.read_exact(&mut hdr)?;
        let code = u32::from_le_bytes(hdr[..4].try_into().unwrap());
        let size = u32::from_le_bytes(hdr[8..].try_into().unwrap()) as usize;
        let mut body = vec![0u8; size];
        self.sock.read_exact(&mut body)?;
        Ok((code, body))
    }

    /// A request whose reply is one u64 (GET_FEATURES, GET_QUEUE_NUM…).
    pub fn get_u64(&mut self, code: u32) -> io::Result<u64> {
        self.send(code, &[], &[])?;
        let (got, body) = self.recv()?;
        if got != code || body.len() != 8 {
            return Err(io::Error::other(format!(
                "reply {got} with {} bytes to {code}",
                body.len()
            )));
        }
        Ok(u64::from_le_bytes(body.try_into().unwrap()))
    }

    /// True once the backend has closed the connection.
    pub fn closed_by_peer(&self) -> bool {
        let mut b = [0u8; 1];
        // SAFETY: a non-blocking peek of one byte into a local.
        let n = unsafe {
            libc::recv(
                self.sock.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n == 0
    }

    /// Waits up to `t` for the backend to close the connection.
    pub fn wait_closed(&self, t: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < t {
            if self.closed_by_peer() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

fn send_with_fds(sock: &UnixStream, parts: &[&[u8]], fds: &[RawFd]) -> io::Result<()> {
    let iov: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let space = if fds.is_empty() {
        0
    } else {
        // SAFETY: CMSG_SPACE is a pure size computation.
        unsafe { libc::CMSG_SPACE(std::mem::size_of_val(fds) as u32) as usize }
    };
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; zeroed is valid and the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = iov.len();
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: the control buffer holds one cmsg of CMSG_SPACE(fds) bytes.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(c).cast::<RawFd>(),
                fds.len(),
            );
        }
    }
    let total: usize = parts.iter().map(|p| p.len()).sum();
    // SAFETY: msg points at live iovecs and control data for this call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != total {
        return Err(io::Error::other("short sendmsg"));
    }
    Ok(())
}

/// An eventfd for kick/call.
pub fn eventfd() -> OwnedFd {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
    // SAFETY: eventfd just returned it and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Memory of a guest: one memfd mapped here. `gpa` is where the guest sees
/// its first byte; the frontend's own address (`uva`) is where we mapped it.
pub struct GuestMemory {
    pub fd: OwnedFd,
    ptr: *mut u8,
    pub len: usize,
    pub gpa: u64,
}

impl GuestMemory {
    /// `len` bytes of fresh memory at guest address `gpa`; `sealable` picks
    /// a memfd ferrovsd can seal (like QEMU's memory-backend-memfd) or not.
    pub fn new(len: usize, gpa: u64, sealable: bool) -> GuestMemory {
        let flags = libc::MFD_CLOEXEC | if sealable { libc::MFD_ALLOW_SEALING } else { 0 };
        // SAFETY: the name is a NUL-terminated literal; the result is checked.
        let raw = unsafe { libc::memfd_create(c"test-guest".as_ptr(), flags) };
        assert!(raw >= 0);
        // SAFETY: memfd_create just returned it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: plain syscalls on our own fd; results checked.
        let ptr = unsafe {
            assert_eq!(libc::ftruncate(raw, len as libc::off_t), 0);
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        GuestMemory {
            fd,
            ptr: ptr.cast(),
            len,
            gpa,
        }
    }

    pub fn uva(&self) -> u64 {
        self.ptr as u64
    }

    /// The region entry of SET_MEM_TABLE for this memory: gpa, size, uva, offset.
    pub fn region(&self, size: u64, offset: u64) -> [u8; 32] {
        let mut r = [0u8; 32];
        r[..8].copy_from_slice(&self.gpa.to_le_bytes());
        r[8..16].copy_from_slice(&size.to_le_bytes());
        r[16..24].copy_from_slice(&self.uva().to_le_bytes());
        r[24..].copy_from_slice(&offset.to_le_bytes());
        r
    }

    fn at(&self, gpa: u64, n: usize) -> *mut u8 {
        let off = gpa
            .checked_sub(self.gpa)
            .expect("address below this memory") as usize;
        assert!(off + n <= self.len, "{gpa:#x}+{n} outside guest memory");
        // SAFETY: bounds checked just above.
        unsafe { self.ptr.add(off) }
    }

    pub fn write(&self, gpa: u64, bytes: &[u8]) {
        // SAFETY: `at` checked the range; volatile, since ferrovsd reads concurrently.
        unsafe {
            let p = self.at(gpa, bytes.len());
            for (i, b) in bytes.iter().enumerate() {
                std::ptr::write_volatile(p.add(i), *b);
            }
        }
    }

    pub fn read(&self, gpa: u64, n: usize) -> Vec<u8> {
        let p = self.at(gpa, n);
        // SAFETY: `at` checked the range.
        (0..n)
            .map(|i| unsafe { std::ptr::read_volatile(p.add(i)) })
            .collect()
    }

    /// One 16-bit store where aligned (ring indexes are): written byte by
    /// byte, the switch could read a torn index (0x01ff on the way from 0x00ff
    /// to 0x0100), think the guest offered 500 entries, and mark the ring
    /// broken, as it should.
    pub fn write_u16(&self, gpa: u64, v: u16) {
        let p = self.at(gpa, 2);
        if (p as usize).is_multiple_of(2) {
            // SAFETY: `at` checked the range; aligned; volatile (shared).
            unsafe { std::ptr::write_volatile(p.cast::<u16>(), v.to_le()) };
        } else {
            self.write(gpa, &v.to_le_bytes());
        }
    }

    pub fn read_u16(&self, gpa: u64) -> u16 {
        let p = self.at(gpa, 2);
        if (p as usize).is_multiple_of(2) {
            // SAFETY: as in write_u16.
            return u16::from_le(unsafe { std::ptr::read_volatile(p.cast::<u16>()) });
        }
        u16::from_le_bytes(self.read(gpa, 2).try_into().unwrap())
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Guest addresses of queue `q`'s three parts.
pub fn ring_gpa(q: u32) -> (u64, u64, u64) {
    let base = q as u64 * 0x4000;
    (base, base + 0x1000, base + 0x2000)
}

/// A guest with two queues on one ferrovsd port, driven by raw messages.
pub struct Guest {
    pub fe: RawFrontend,
    /// Holds the rings and buffers.
    pub mem: GuestMemory,
    /// More regions of the memory table (after `mem`).
    pub extra: Vec<GuestMemory>,
    pub kick: [OwnedFd; 2],
    pub call: [OwnedFd; 2],
    /// Next avail index per queue.
    avail_idx: [u16; 2],
    /// Features acked besides VERSION_1 (`with_features`).
    pub extra_features: u64,
}

impl Guest {
    /// Connects to `path` and runs the handshake for both queues over
    /// `mem_len` bytes of guest memory (VERSION_1 only, rings enabled at start).
    pub fn connect(path: &Path, mem_len: usize) -> Guest {
        Guest::with_memory(path, GuestMemory::new(mem_len, 0, true), Vec::new())
    }

    /// As `connect`, with memory the test made (`mem` at guest address 0
    /// holds the rings; `extra` regions follow in the table).
    pub fn with_memory(path: &Path, mem: GuestMemory, extra: Vec<GuestMemory>) -> Guest {
        Guest::with_features(path, mem, extra, 0)
    }

    /// As `with_memory`, acking `features` (bits the switch offers) too.
    pub fn with_features(
        path: &Path,
        mem: GuestMemory,
        extra: Vec<GuestMemory>,
        features: u64,
    ) -> Guest {
        let fe = RawFrontend::connect(path);
        let mut g = Guest {
            fe,
            mem,
            extra,
            kick: [eventfd(), eventfd()],
            call: [eventfd(), eventfd()],
            avail_idx: [0; 2],
            extra_features: features,
        };
        g.handshake();
        g
    }

    pub fn handshake(&mut self) {
        let fe = &mut self.fe;
        fe.send(req::SET_OWNER, &[], &[]).unwrap();
        let offered = fe.get_u64(req::GET_FEATURES).unwrap();
        assert!(offered & F_VERSION_1 != 0);
        assert_eq!(
            offered & self.extra_features,
            self.extra_features,
            "not offered"
        );
        fe.send(
            req::SET_FEATURES,
            &(F_VERSION_1 | self.extra_features).to_le_bytes(),
            &[],
        )
        .unwrap();
        let (table, fds) = self.mem_table();
        self.fe.send(req::SET_MEM_TABLE, &table, &fds).unwrap();
        for q in [RXQ, TXQ] {
            self.setup_queue(q);
        }
        // A round trip: every message above has been handled when it returns.
        self.fe.get_u64(req::GET_FEATURES).unwrap();
    }

    /// The SET_MEM_TABLE payload and fds for every region.
    pub fn mem_table(&self) -> (Vec<u8>, Vec<RawFd>) {
        let all: Vec<&GuestMemory> = std::iter::once(&self.mem).chain(&self.extra).collect();
        let mut table = Vec::new();
        table.extend_from_slice(&(all.len() as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        for m in &all {
            table.extend_from_slice(&m.region(m.len as u64, 0));
        }
        (table, all.iter().map(|m| m.fd.as_raw_fd()).collect())
    }

    /// SET_VRING_NUM/ADDR/BASE/CALL/KICK for queue `q` at its usual place.
    pub fn setup_queue(&mut self, q: u32) {
        let (d, a, u) = ring_gpa(q);
        let uva = |gpa: u64| self.mem.uva() + gpa - self.mem.gpa;
        let fe = &mut self.fe;
        fe.send(req::SET_VRING_NUM, &state(q, QUEUE_SIZE as u32), &[])
            .unwrap();
        let mut addr = Vec::with_capacity(40);
        addr.extend_from_slice(&q.to_le_bytes());
        addr.extend_from_slice(&0u32.to_le_bytes());
        for x in [uva(d), uva(u), uva(a), 0] {
            addr.extend_from_slice(&x.to_le_bytes());
        }
        fe.send(req::SET_VRING_ADDR, &addr, &[]).unwrap();
        fe.send(req::SET_VRING_BASE, &state(q, 0), &[]).unwrap();
        fe.send(
            req::SET_VRING_CALL,
            &(q as u64).to_le_bytes(),
            &[self.call[q as usize].as_raw_fd()],
        )
        .unwrap();
        fe.send(
            req::SET_VRING_KICK,
            &(q as u64).to_le_bytes(),
            &[self.kick[q as usize].as_raw_fd()],
        )
        .unwrap();
        self.avail_idx[q as usize] = 0;
    }

    /// Writes descriptor `i` of queue `q`.
    pub fn write_desc(&self, q: u32, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let (d, _, _) = ring_gpa(q);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..].copy_from_slice(&next.to_le_bytes());
        self.mem.write(d + 16 * i as u64, &b);
    }

    /// Makes descriptor chain `head` available on queue `q`.
    pub fn push_avail(&mut self, q: u32, head: u16) {
        let (_, a, _) = ring_gpa(q);
        let idx = self.avail_idx[q as usize];
        self.mem
            .write_u16(a + 4 + 2 * (idx % QUEUE_SIZE) as u64, head);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.avail_idx[q as usize] = idx.wrapping_add(1);
        self.mem.write_u16(a + 2, idx.wrapping_add(1));
        // As a driver without EVENT_IDX does: kick unless the device said
        // it polls (VRING_USED_F_NO_NOTIFY). A switch whose idle queue waits
        // for a kick (hybrid polling) would otherwise see the offer only at
        // its periodic rescue, 100 ms later.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        let (_, _, u) = ring_gpa(q);
        if self.mem.read_u16(u) & 1 == 0 {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a local to our own eventfd.
            unsafe { libc::write(self.kick[q as usize].as_raw_fd(), one.as_ptr().cast(), 8) };
        }
    }

    pub fn set_avail_idx(&mut self, q: u32, idx: u16) {
        let (_, a, _) = ring_gpa(q);
        self.avail_idx[q as usize] = idx;
        self.mem.write_u16(a + 2, idx);
    }

    pub fn used_idx(&self, q: u32) -> u16 {
        let (_, _, u) = ring_gpa(q);
        self.mem.read_u16(u + 2)
    }

    pub fn avail_idx(&self, q: u32) -> u16 {
        self.avail_idx[q as usize]
    }

    /// Waits up to 5 s for queue `q`'s used index to reach `idx`.
    pub fn wait_used(&self, q: u32, idx: u16) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if self.used_idx(q) == idx {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Offers `n` receive buffers of 4 KiB (slots 128.. of the buffer area).
    pub fn post_rx(&mut self, n: u16) {
        for i in 0..n {
            let slot = 128 + i;
            self.write_desc(RXQ, i, BUFFERS + slot as u64 * 4096, 4096, DESC_F_WRITE, 0);
            self.push_avail(RXQ, i);
        }
    }

    /// Frame `k` the switch delivered to the receive queue (header stripped).
    pub fn received(&self, k: u16) -> Vec<u8> {
        let (_, _, u) = ring_gpa(RXQ);
        let e = self.mem.read(u + 4 + 8 * (k % QUEUE_SIZE) as u64, 8);
        let id = u32::from_le_bytes(e[..4].try_into().unwrap()) as u16;
        let len = u32::from_le_bytes(e[4..].try_into().unwrap()) as usize;
        let slot = 128 + id;
        let b = self.mem.read(BUFFERS + slot as u64 * 4096, len);
        b[NET_HDR.min(len)..].to_vec()
    }

    /// Puts `frame` (with a zero virtio-net header) in buffer `slot` and
    /// offers it on the TX queue as a one-descriptor chain.
    pub fn send_frame(&mut self, slot: u16, frame: &[u8]) {
        self.send_with_header(slot, &[0; NET_HDR], frame);
    }

    /// As `send_frame`, behind the virtio-net header `hdr`.
    pub fn send_with_header(&mut self, slot: u16, hdr: &[u8; NET_HDR], frame: &[u8]) {
        let addr = BUFFERS + slot as u64 * 4096;
        let mut b = hdr.to_vec();
        b.extend_from_slice(frame);
        self.mem.write(addr, &b);
        self.write_desc(TXQ, slot, addr, b.len() as u32, 0, 0);
        self.push_avail(TXQ, slot);
    }
}

/// A vring state payload: index, num.
pub fn state(index: u32, num: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&index.to_le_bytes());
    b[4..].copy_from_slice(&num.to_le_bytes());
    b
}

/// A broadcast UDP frame of `len` bytes from `src`.
pub fn broadcast_frame(src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(60)];
    f[..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

/// Open fds of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident set of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
