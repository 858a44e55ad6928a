//! The OpenFlow 1.3 agent: controllers (Faucet, …) and `ovs-ofctl` program
//! the bridge through it, as they would program OVS.
//!
//! - [`target`]: `punix:`/`ptcp:` to listen on, `tcp:`/`unix:` to dial
//! - [`dial`]: non-blocking connects to controllers
//! - [`conn`]: one connection (framing, output buffer, role, async masks)
//! - [`handlers`]: each message → the bridge, and the reply
//! - [`mapping`]: OpenFlow matches and actions ↔ the flow table's
//!
//! One thread runs every connection in a poll loop; nothing it does waits
//! on a peer. It listens on `punix:<run-dir>/<bridge>.mgmt` (where
//! `ovs-ofctl … unix:` finds it) and any configured `listen` targets, and
//! dials each configured controller with back-off. Packet-ins are drained
//! from the PMDs' queues every 2 ms while someone is connected.

pub mod conn;
pub mod dial;
pub mod handlers;
pub mod mapping;
pub mod target;

use crate::bridge::Bridge;
use conn::{Conn, Kind};
use openflow::message::{Message, SwitchConfig, PPR_ADD, PPR_DELETE, PPR_MODIFY};
use openflow::port::PortDesc;
use pmd::PoolCache;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use target::{Dial, Listen};

/// What the switch does while no controller is connected (OVS's fail-mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Behave as a learning switch until a controller connects.
    Standalone,
    /// Keep the installed rules; add none.
    Secure,
}

impl FailMode {
    pub fn name(self) -> &'static str {
        match self {
            FailMode::Standalone => "standalone",
            FailMode::Secure => "secure",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub listen: Vec<Listen>,
    pub controllers: Vec<Dial>,
    pub fail_mode: FailMode,
    pub datapath_id: u64,
}

/// Seconds of silence before an echo request, and before giving up (OVS's
/// inactivity probe is 5 s).
const ECHO_AFTER: Duration = Duration::from_secs(5);
const DEAD_AFTER: Duration = Duration::from_secs(15);
const REDIAL_MIN: Duration = Duration::from_millis(250);
const REDIAL_MAX: Duration = Duration::from_secs(8);
/// How long a standalone bridge waits for a controller before it forwards
/// as a learning switch on its own.
const FAIL_OPEN_AFTER: Duration = Duration::from_secs(3);
/// Connections the agent serves at once (accepted ones beyond are closed).
const MAX_CONNS: usize = 64;
/// A closing connection whose peer does not take its last replies goes after this.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Longest a controller's rule changes wait to be compiled into the datapath
/// while FLOW_MODs keep coming, for tables that compile quickly.
const RULE_SYNC: Duration = Duration::from_millis(10);
/// Senders that sent nothing for this long have paused: their rule changes
/// go to the datapath. (`ovs-ofctl add-flows` waits for a barrier reply after
/// each FLOW_MOD, so "nothing queued right now" is no pause.)
const RULE_QUIET: Duration = Duration::from_millis(1);
/// While FLOW_MODs keep coming, a compile waits this many times as long as the
/// last one took: the whole-table compile then costs at most a fifth of the
/// agent's time, so loading 100 000 rules stays linear instead of compiling
/// a growing table every 10 ms.
const RULE_SYNC_PER_COMPILE: u32 = 4;

/// What `show` and /metrics report about the agent (the management
/// protocol's own type).
pub use ferrovs_proto::{ControllerStatus as ConnStatus, OpenflowStatus as AgentStatus};

enum Dialer {
    Idle {
        next: Instant,
        backoff: Duration,
    },
    Connecting {
        stream: std::net::TcpStream,
        since: Instant,
        backoff: Duration,
    },
    Connected,
}

enum Listener {
    Unix(UnixListener, std::path::PathBuf),
    Tcp(TcpListener),
}

/// What the agent last told controllers about a port.
#[derive(Clone, PartialEq, Eq)]
struct PortSeen {
    desc: PortDesc,
}

pub(crate) struct Agent {
    cfg: AgentConfig,
    bridge: Arc<Bridge>,
    listeners: Vec<Listener>,
    conns: Vec<Conn>,
    dialers: Vec<(Dial, Dialer)>,
    /// Buffers for packet-outs.
    cache: PoolCache,
    switch_config: SwitchConfig,
    /// The ports as connections last heard of them (None: nobody connected,
    /// so nothing is compared: a thousand ports cost nothing every tick).
    ports: Option<BTreeMap<u32, PortSeen>>,
    fail_open: bool,
    controller_lost_at: Instant,
    generation_id: Option<u64>,
    status: Arc<Mutex<AgentStatus>>,
    counters: AgentStatus,
    /// FLOW_MODs read but not applied yet: (connection, xid, message, change).
    pending: Vec<(usize, u32, Vec<u8>, crate::bridge::flow_mods::FlowChange)>,
    /// Applied to the table but not yet compiled into the datapath, since when.
    rules_dirty_since: Option<Instant>,
    /// How long the last compile and publish took.
    last_compile: Duration,
    /// When a connection last delivered bytes.
    last_input: Instant,
}

/// Handle to the agent thread.
pub struct OfAgent {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub status: Arc<Mutex<AgentStatus>>,
}

impl OfAgent {
    /// Binds the listening sockets (failing if one cannot be bound) and
    /// starts the thread.
    pub fn start(cfg: AgentConfig, bridge: Arc<Bridge>) -> std::io::Result<OfAgent> {
        let mut listeners = Vec::new();
        for l in &cfg.listen {
            listeners.push(bind(l)?);
        }
        let status = Arc::new(Mutex::new(AgentStatus::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let agent = Agent {
            dialers: cfg
                .controllers
                .iter()
                .map(|d| {
                    (
                        d.clone(),
                        Dialer::Idle {
                            next: Instant::now(),
                            backoff: REDIAL_MIN,
                        },
                    )
                })
                .collect(),
            cache: PoolCache::new(bridge.pool.clone()),
            cfg,
            bridge,
            listeners,
            conns: Vec::new(),
            switch_config: SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
            ports: None,
            fail_open: false,
            controller_lost_at: Instant::now(),
            generation_id: None,
            status: status.clone(),
            counters: AgentStatus::default(),
            pending: Vec::new(),
            rules_dirty_since: None,
            last_compile: Duration::ZERO,
            last_input: Instant::now(),
        };
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("openflow".into())
            .spawn(move || agent.run(s))?;
        Ok(OfAgent {
            stop,
            thread: Some(thread),
            status,
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for OfAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(l: &Listen) -> std::io::Result<Listener> {
    let ctx =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("OpenFlow listener {l}: {e}"));
    match l {
        Listen::Unix(p) => {
            if p.exists() {
                if std::os::unix::net::UnixStream::connect(p).is_ok() {
                    return Err(ctx(std::io::ErrorKind::AddrInUse.into()));
                }
                std::fs::remove_file(p).map_err(ctx)?;
            }
            let u = UnixListener::bind(p).map_err(ctx)?;
            u.set_nonblocking(true).map_err(ctx)?;
            Ok(Listener::Unix(u, p.clone()))
        }
        Listen::Tcp(a) => {
            let t = TcpListener::bind(a).map_err(ctx)?;
            t.set_nonblocking(true).map_err(ctx)?;
            Ok(Listener::Tcp(t))
        }
    }
}

enum Owner {
    Listener(usize),
    Conn(usize),
    Dialer(usize),
}

impl Agent {
    fn run(mut self, stop: Arc<AtomicBool>) {
        let mut next_tick = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            self.dial_due();
            let (mut fds, owners) = self.pollfds();
            let busy = self.conns.iter().any(|c| c.negotiated);
            // Rule changes waiting: look again at once, to sync when senders pause.
            let timeout = if self.rules_dirty_since.is_some() {
                1
            } else if busy {
                2
            } else {
                50
            };
            // SAFETY: fds is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n > 0 {
                for (pfd, owner) in fds.iter().zip(&owners) {
                    if pfd.revents == 0 {
                        continue;
                    }
                    match *owner {
                        Owner::Listener(i) => self.accept(i),
                        Owner::Dialer(i) => self.dial_done(i),
                        Owner::Conn(i) if !self.conns[i].closing => self.input(i),
                        Owner::Conn(_) => {}
                    }
                }
            }
            self.forward_packet_ins();
            let now = Instant::now();
            // Rule changes reach the datapath once the senders pause, or every
            // RULE_SYNC (longer for big tables) while they keep going: one
            // compile per burst, not per rule.
            if let Some(t) = self.rules_dirty_since {
                let wait = RULE_SYNC.max(self.last_compile * RULE_SYNC_PER_COMPILE);
                let quiet = now.saturating_duration_since(self.last_input) >= RULE_QUIET;
                if quiet || now.saturating_duration_since(t) >= wait {
                    self.sync_rules();
                }
            }
            if now >= next_tick {
                next_tick = now + Duration::from_millis(100);
                self.tick(now);
            }
            self.flush_and_reap();
        }
        for l in &self.listeners {
            if let Listener::Unix(_, p) = l {
                let _ = std::fs::remove_file(p);
            }
        }
        self.sync_rules();
        if self.fail_open {
            self.bridge.set_fail_open(false);
        }
    }

    fn pollfds(&self) -> (Vec<libc::pollfd>, Vec<Owner>) {
        let mut fds = Vec::new();
        let mut owners = Vec::new();
        let pfd = |fd, events| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        for (i, l) in self.listeners.iter().enumerate() {
            let fd = match l {
                Listener::Unix(u, _) => u.as_raw_fd(),
                Listener::Tcp(t) => t.as_raw_fd(),
            };
            fds.push(pfd(fd, libc::POLLIN));
            owners.push(Owner::Listener(i));
        }
        for (i, (_, d)) in self.dialers.iter().enumerate() {
            if let Dialer::Connecting { stream, .. } = d {
                fds.push(pfd(stream.as_raw_fd(), libc::POLLOUT));
                owners.push(Owner::Dialer(i));
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            // A closing connection is only written to.
            let mut ev = if c.closing { 0 } else { libc::POLLIN };
            if c.wants_write() {
                ev |= libc::POLLOUT;
            }
            fds.push(pfd(c.fd(), ev));
            owners.push(Owner::Conn(i));
        }
        (fds, owners)
    }

    fn add_conn(&mut self, mut c: Conn) {
        c.send(
            &Message::Hello {
                versions: 1 << openflow::VERSION,
            },
            0,
        );
        tracing::info!(peer = %c.peer, "OpenFlow connection");
        if self.conns.is_empty() {
            // The first connection: changes count from the ports as they are now.
            self.ports = None;
            self.conns.push(c);
            self.port_changes();
            return;
        }
        self.conns.push(c);
    }

    fn accept(&mut self, i: usize) {
        loop {
            let c = match &self.listeners[i] {
                Listener::Unix(u, p) => match u.accept() {
                    Ok((s, _)) => s.set_nonblocking(true).ok().map(|_| {
                        Conn::new(Kind::Service, format!("unix:{}", p.display()), Box::new(s))
                    }),
                    Err(_) => return,
                },
                Listener::Tcp(t) => match t.accept() {
                    Ok((s, a)) => {
                        let _ = s.set_nodelay(true);
                        s.set_nonblocking(true)
                            .ok()
                            .map(|_| Conn::new(Kind::Service, format!("tcp:{a}"), Box::new(s)))
                    }
                    Err(_) => return,
                },
            };
            if let Some(c) = c {
                if self.conns.len() >= MAX_CONNS {
                    tracing::warn!(peer = %c.peer, "OpenFlow: {MAX_CONNS} connections already; refused");
                    continue; // dropped: the socket closes
                }
                self.add_conn(c);
            }
        }
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.dialers.len() {
            let Dialer::Idle { next, backoff } = self.dialers[i].1 else {
                continue;
            };
            if now < next {
                continue;
            }
            let target = self.dialers[i].0.clone();
            match dial::start(&target) {
                Ok(dial::Connecting::Pending(stream)) => {
                    self.dialers[i].1 = Dialer::Connecting {
                        stream,
                        since: now,
                        backoff,
                    };
                }
                Ok(dial::Connecting::Unix(s)) => {
                    self.dialers[i].1 = Dialer::Connected;
                    self.add_conn(Conn::new(
                        Kind::Controller(i),
                        target.to_string(),
                        Box::new(s),
                    ));
                }
                Err(_) => self.redial(i, backoff),
            }
        }
    }

    fn redial(&mut self, i: usize, backoff: Duration) {
        self.dialers[i].1 = Dialer::Idle {
            next: Instant::now() + backoff,
            backoff: (backoff * 2).min(REDIAL_MAX),
        };
    }

    fn dial_done(&mut self, i: usize) {
        let Dialer::Connecting {
            stream, backoff, ..
        } = std::mem::replace(&mut self.dialers[i].1, Dialer::Connected)
        else {
            return;
        };
        match dial::finished(&stream) {
            Ok(()) => {
                let _ = stream.set_nodelay(true);
                let peer = self.dialers[i].0.to_string();
                self.add_conn(Conn::new(Kind::Controller(i), peer, Box::new(stream)));
            }
            Err(e) => {
                tracing::debug!(target = %self.dialers[i].0, "controller connect failed: {e}");
                self.redial(i, backoff);
            }
        }
    }

    pub(super) fn sync_rules(&mut self) {
        self.apply_pending();
        if let Some(t) = self.rules_dirty_since.take() {
            let started = Instant::now();
            self.bridge.sync_rules();
            self.last_compile = started.elapsed();
            tracing::debug!(
                "rule changes in the datapath {:?} after the first",
                t.elapsed()
            );
        }
    }

    fn input(&mut self, i: usize) {
        self.last_input = Instant::now();
        let alive = self.conns[i].read().unwrap_or_default();
        // The first message must be a HELLO: anything else (garbage, another
        // protocol) is refused as soon as its header is in, not when its
        // claimed length has arrived.
        if let Some(h) = self.conns[i]
            .peek_header()
            .filter(|_| !self.conns[i].negotiated)
        {
            if h.kind != openflow::message::HELLO {
                let e = openflow::OfError::new(
                    openflow::error::HELLO_FAILED,
                    openflow::error::HFC_INCOMPATIBLE,
                );
                self.send_error(i, e, &[], h.xid);
                self.conns[i].close();
                return;
            }
        }
        loop {
            match self.conns[i].next_message() {
                Ok(Some(raw)) => self.handle(i, &raw),
                Ok(None) => break,
                Err(conn::Unframeable) => {
                    // A length shorter than a header: nothing after it can be framed.
                    self.send_error(i, openflow::OfError::new(1, 6), &[], 0);
                    self.conns[i].close();
                    break;
                }
            }
            if self.conns[i].closing {
                break;
            }
        }
        self.apply_pending();
        if !alive {
            self.conns[i].close();
        }
    }

    fn send_error(&mut self, i: usize, e: openflow::OfError, request: &[u8], xid: u32) {
        self.counters.errors_sent += 1;
        self.conns[i].send(&openflow::message::error_reply(e, request), xid);
    }

    /// Packets the PMDs copied for the controllers.
    fn forward_packet_ins(&mut self) {
        let dp = &self.bridge.datapath;
        let mut got = Vec::new();
        dp.drain_to_controller(|p| got.push(p));
        for p in got {
            let reason = match p.reason {
                crate::datapath::controller::Reason::NoMatch => openflow::message::PR_NO_MATCH,
                crate::datapath::controller::Reason::Action => openflow::message::PR_ACTION,
            };
            let data = p.m.data();
            // A table-miss entry's copy (NO_MATCH) is cut to its action's
            // max_len like any other, as OVS does; miss_send_len only
            // concerned OpenFlow 1.0's implicit misses.
            let keep = p.max_len;
            let keep = if keep == u16::MAX {
                data.len()
            } else {
                (keep as usize).min(data.len())
            };
            let msg = Message::PacketIn(openflow::message::PacketIn {
                buffer_id: openflow::NO_BUFFER,
                total_len: data.len() as u16,
                reason,
                table_id: p.table,
                // The table-miss entry's own cookie too (OpenFlow 1.3 §7.4.1;
                // -1 is for packets no entry sent).
                cookie: p.cookie,
                m: openflow::oxm::OfMatch(vec![openflow::oxm::Oxm::exact(
                    openflow::oxm::IN_PORT,
                    if p.in_port == crate::datapath::pipeline::FROM_CONTROLLER {
                        openflow::port::CONTROLLER as u128
                    } else {
                        p.in_port as u128
                    },
                )]),
                data: data[..keep].to_vec(),
            });
            let mut sent = false;
            for c in self.conns.iter_mut() {
                if c.wants(c.async_cfg.packet_in, reason) {
                    sent |= c.send_async(&msg);
                }
            }
            if sent {
                self.counters.packet_ins += 1;
            } else {
                self.counters.packet_ins_dropped += 1;
            }
            self.cache.free(p.m);
        }
    }

    /// Every 100 ms: port changes, timed-out rules, keepalive, fail-open, status.
    fn tick(&mut self, now: Instant) {
        self.port_changes();
        for (r, hard) in self.bridge.take_expired() {
            let reason = if hard {
                openflow::message::RR_HARD_TIMEOUT
            } else {
                openflow::message::RR_IDLE_TIMEOUT
            };
            self.flow_removed(&r, reason);
        }
        for c in self.conns.iter_mut() {
            let quiet = now.saturating_duration_since(c.last_input);
            if quiet >= DEAD_AFTER {
                tracing::info!(peer = %c.peer, "OpenFlow peer silent for {quiet:?}: disconnecting");
                c.close();
            } else if quiet >= ECHO_AFTER && c.echo_sent.is_none() && c.negotiated {
                c.send(&Message::EchoRequest(Vec::new()), 0);
                c.echo_sent = Some(now);
            }
        }
        self.fail_mode(now);
        self.publish_status();
    }

    fn fail_mode(&mut self, now: Instant) {
        if self.cfg.controllers.is_empty() || self.cfg.fail_mode != FailMode::Standalone {
            return;
        }
        let connected = self
            .conns
            .iter()
            .any(|c| matches!(c.kind, Kind::Controller(_)) && c.negotiated);
        if connected {
            self.controller_lost_at = now;
            if self.fail_open {
                tracing::info!("a controller is connected: leaving fail-open mode");
                self.fail_open = false;
                self.bridge.set_fail_open(false);
            }
        } else if !self.fail_open
            && now.saturating_duration_since(self.controller_lost_at) >= FAIL_OPEN_AFTER
        {
            tracing::info!("no controller for {FAIL_OPEN_AFTER:?}: forwarding as a learning switch (fail-mode standalone)");
            self.fail_open = true;
            self.bridge.set_fail_open(true);
        }
    }

    fn port_changes(&mut self) {
        if self.conns.is_empty() {
            self.ports = None;
            return;
        }
        let now: BTreeMap<u32, PortSeen> = handlers::port_descs(&self.bridge)
            .into_iter()
            .map(|d| (d.port_no, PortSeen { desc: d }))
            .collect();
        // A new connection asks for PORT_DESC itself: changes count from here.
        let Some(before) = &self.ports else {
            self.ports = Some(now);
            return;
        };
        if now == *before {
            return;
        }
        let mut events = Vec::new();
        for (no, p) in &now {
            match before.get(no) {
                None => events.push((PPR_ADD, p.desc.clone())),
                Some(old) if old != p => events.push((PPR_MODIFY, p.desc.clone())),
                _ => {}
            }
        }
        for (no, p) in before {
            if !now.contains_key(no) {
                events.push((PPR_DELETE, p.desc.clone()));
            }
        }
        self.ports = Some(now);
        for (r, desc) in events {
            let msg = Message::PortStatus { reason: r, desc };
            for c in self.conns.iter_mut() {
                if c.wants(c.async_cfg.port_status, r) {
                    c.send_async(&msg);
                }
            }
        }
    }

    fn flow_removed(&mut self, r: &crate::flow::table::Removed, reason: u8) {
        let msg = Message::FlowRemoved(openflow::message::FlowRemoved {
            cookie: r.rule.cookie,
            priority: r.rule.priority,
            reason,
            table_id: r.rule.table,
            duration_sec: r.age.as_secs() as u32,
            duration_nsec: r.age.subsec_nanos(),
            idle_timeout: r.rule.idle_timeout,
            hard_timeout: r.rule.hard_timeout,
            packet_count: r.packets,
            byte_count: r.bytes,
            m: mapping::match_to_of(&r.rule.m),
        });
        for c in self.conns.iter_mut() {
            if c.wants(c.async_cfg.flow_removed, reason) {
                c.send_async(&msg);
            }
        }
    }

    fn flush_and_reap(&mut self) {
        let mut i = 0;
        let now = Instant::now();
        while i < self.conns.len() {
            let c = &mut self.conns[i];
            let failed = c.overflowed || c.flush().is_err();
            let lingered = c
                .closing_since
                .is_some_and(|t| now.saturating_duration_since(t) > CLOSE_LINGER);
            if failed || (c.closing && (!c.wants_write() || lingered)) {
                let c = self.conns.remove(i);
                // A tool that sent rules and left expects them in force.
                self.sync_rules();
                tracing::info!(peer = %c.peer, "OpenFlow connection closed");
                if let Kind::Controller(d) = c.kind {
                    self.controller_lost_at = Instant::now();
                    self.redial(d, REDIAL_MIN);
                }
                continue;
            }
            i += 1;
        }
    }

    fn publish_status(&mut self) {
        let now = Instant::now();
        let mut controllers: Vec<ConnStatus> = self
            .dialers
            .iter()
            .enumerate()
            .map(|(i, (t, d))| {
                let conn = self.conns.iter().find(|c| c.kind == Kind::Controller(i));
                let (state, role, since) = match (d, conn) {
                    (_, Some(c)) if c.negotiated => ("connected", role_name(c.role), c.since),
                    (_, Some(c)) => ("negotiating", "-", c.since),
                    (Dialer::Connecting { since, .. }, None) => ("connecting", "-", *since),
                    _ => ("disconnected", "-", self.controller_lost_at),
                };
                ConnStatus {
                    target: t.to_string(),
                    dialed: true,
                    state: state.into(),
                    role: role.into(),
                    seconds: now.saturating_duration_since(since).as_secs(),
                }
            })
            .collect();
        controllers.extend(
            self.conns
                .iter()
                .filter(|c| c.kind == Kind::Service)
                .map(|c| ConnStatus {
                    target: c.peer.clone(),
                    dialed: false,
                    state: if c.negotiated {
                        "connected"
                    } else {
                        "negotiating"
                    }
                    .into(),
                    role: role_name(c.role).into(),
                    seconds: now.saturating_duration_since(c.since).as_secs(),
                }),
        );
        let mut s = self.status.lock().expect("agent status poisoned");
        *s = AgentStatus {
            datapath_id: format!("{:016x}", self.cfg.datapath_id),
            fail_mode: self.cfg.fail_mode.name().into(),
            fail_open: self.fail_open,
            listening: self.cfg.listen.iter().map(|l| l.to_string()).collect(),
            controllers,
            connections: self.conns.len(),
            ..self.counters.clone()
        };
    }
}

pub(crate) fn role_name(r: u32) -> &'static str {
    match r {
        openflow::message::ROLE_MASTER => "master",
        openflow::message::ROLE_SLAVE => "slave",
        _ => "equal",
    }
}
