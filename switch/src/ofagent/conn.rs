//! One OpenFlow connection: a non-blocking socket, framing by the header's
//! length, a bounded output buffer, and the per-connection state OpenFlow
//! keeps (negotiation, role, asynchronous-message masks, keepalive).

use openflow::message::{AsyncConfig, Header, Message};
use openflow::HEADER_LEN;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

pub trait Stream: Read + Write + AsRawFd + Send {}
impl<T: Read + Write + AsRawFd + Send> Stream for T {}

/// Output a connection may have queued before asynchronous messages
/// (packet-ins) are dropped for it; replies are never dropped, and past
/// `MAX_OUTPUT` the connection is closed (a peer that does not read).
pub const ASYNC_OUTPUT_LIMIT: usize = 1 << 20;
const MAX_OUTPUT: usize = 64 << 20;
/// Input read but not yet framed (one message is at most 64 KiB).
const MAX_INPUT: usize = 1 << 20;

/// How a connection came to be: dialed controllers get asynchronous
/// messages by default; connections accepted on a listening socket
/// (`ovs-ofctl`, OVS's "service" connections) only after SET_ASYNC, or after
/// a SET_CONFIG with a non-zero miss_send_len (`ovs-ofctl monitor`), as OVS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Dialed: the index of the configured controller.
    Controller(usize),
    Service,
}

/// A header whose length is shorter than a header: the stream cannot be
/// framed any more.
#[derive(Debug)]
pub struct Unframeable;

pub struct Conn {
    pub kind: Kind,
    /// Who is on the other end (for `show` and logs).
    pub peer: String,
    stream: Box<dyn Stream>,
    input: Vec<u8>,
    /// Bytes of `input` already framed (consumed once per read, not per message).
    input_pos: usize,
    /// The peer stopped reading and its output hit MAX_OUTPUT: drop it now.
    pub overflowed: bool,
    /// When `closing` was set (a peer that never reads its last replies is
    /// dropped after a while).
    pub closing_since: Option<Instant>,
    output: Vec<u8>,
    /// Bytes of `output` already written.
    written: usize,
    /// HELLO received and version 1.3 agreed.
    pub negotiated: bool,
    /// Close once the output is written (a failed negotiation).
    pub closing: bool,
    pub role: u32,
    pub async_cfg: AsyncConfig,
    /// The peer chose `async_cfg` itself (SET_ASYNC).
    pub async_set: bool,
    pub last_input: Instant,
    pub echo_sent: Option<Instant>,
    pub since: Instant,
    /// Asynchronous messages dropped because the peer reads too slowly.
    pub async_dropped: u64,
}

impl Conn {
    pub fn new(kind: Kind, peer: String, stream: Box<dyn Stream>) -> Conn {
        let now = Instant::now();
        Conn {
            kind,
            peer,
            stream,
            input: Vec::with_capacity(4096),
            input_pos: 0,
            overflowed: false,
            closing_since: None,
            output: Vec::new(),
            written: 0,
            negotiated: false,
            closing: false,
            role: openflow::message::ROLE_EQUAL,
            async_cfg: match kind {
                Kind::Controller(_) => AsyncConfig::default(),
                Kind::Service => AsyncConfig::NONE,
            },
            async_set: false,
            last_input: now,
            echo_sent: None,
            since: now,
            async_dropped: 0,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    pub fn wants_write(&self) -> bool {
        self.written < self.output.len()
    }

    pub fn queued(&self) -> usize {
        self.output.len() - self.written
    }

    /// Marks the connection to be closed once its output is written.
    pub fn close(&mut self) {
        self.closing = true;
        self.closing_since.get_or_insert_with(Instant::now);
    }

    /// Reads what the socket has. Ok(false) at end of stream.
    pub fn read(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 16384];
        // What earlier reads framed goes now, in one move.
        if self.input_pos > 0 {
            self.input.drain(..self.input_pos);
            self.input_pos = 0;
        }
        loop {
            if self.input.len() >= MAX_INPUT {
                return Ok(true); // frame what we have first
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    self.last_input = Instant::now();
                    self.echo_sent = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The header of the next message, once its 8 bytes are in.
    pub fn peek_header(&self) -> Option<Header> {
        Header::parse(&self.input[self.input_pos..])
    }

    /// The next whole message, if one has arrived. Err: a header whose
    /// length is shorter than a header (the stream cannot be framed any more).
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, Unframeable> {
        let rest = &self.input[self.input_pos..];
        let Some(h) = Header::parse(rest) else {
            return Ok(None);
        };
        let len = h.length as usize;
        if len < HEADER_LEN {
            return Err(Unframeable);
        }
        if rest.len() < len {
            return Ok(None);
        }
        let m = rest[..len].to_vec();
        self.input_pos += len;
        Ok(Some(m))
    }

    /// Queues a reply (never dropped while the peer reads; a peer that
    /// lets MAX_OUTPUT pile up is dropped instead of growing our memory).
    pub fn send(&mut self, m: &Message, xid: u32) {
        if self.overflowed {
            return;
        }
        for part in openflow::encode(m, xid) {
            self.output.extend_from_slice(&part);
        }
        if self.queued() > MAX_OUTPUT {
            self.overflowed = true;
            self.close();
        }
    }

    /// Queues an asynchronous message unless the peer is behind.
    pub fn send_async(&mut self, m: &Message) -> bool {
        if self.queued() > ASYNC_OUTPUT_LIMIT {
            self.async_dropped += 1;
            return false;
        }
        self.send(m, 0);
        true
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        } else if self.written > (1 << 20) {
            self.output.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    /// Whether an asynchronous message of `reason` in `masks` is wanted by
    /// this connection's role (slaves use the second mask).
    pub fn wants(&self, masks: [u32; 2], reason: u8) -> bool {
        if !self.negotiated {
            return false;
        }
        let i = (self.role == openflow::message::ROLE_SLAVE) as usize;
        masks[i] & (1u32 << reason) != 0
    }
}
