//! NICs through DPDK's ethdev drivers (feature `dpdk`): the EAL, started
//! once per process, and [`DpdkPort`], a [`Port`] over one ethdev port.
//!
//! Packets cross between our buffers and DPDK's mbufs by copy: our pool
//! stays the one memory every other driver (vhost, virtio-user) shares, and
//! DPDK keeps its own mempool per port. The copy is one memcpy per frame.
//! Our PMD threads are not EAL lcores: each registers itself with
//! `rte_thread_register` on first use so mempool caches work.

use crate::mbuf::{Batch, PoolCache, BURST};
use crate::port::{DropReason, Port, PortInfo, QueueStats, RxNotify};
use crate::sync::SpinLock;
use dpdk_sys as sys;
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::sync::{Mutex, OnceLock};

static EAL: OnceLock<Result<(), String>> = OnceLock::new();

/// ethdev ports an open [`DpdkPort`] drives: a second open of the same
/// device (other devargs, same name) must not reconfigure or close it.
static IN_USE: Mutex<Vec<u16>> = Mutex::new(Vec::new());

fn errno_str(rc: i32) -> String {
    let e = if rc < 0 { -rc } else { rc };
    // SAFETY: rte_strerror returns a static, NUL-terminated string.
    unsafe { CStr::from_ptr(sys::rte_strerror(e)) }
        .to_string_lossy()
        .into_owned()
}

/// Starts DPDK's EAL with `args` (argv[0] included) the first time; later
/// calls return the first result. The EAL cannot be restarted in a process.
pub fn eal_init(args: &[String]) -> Result<(), String> {
    EAL.get_or_init(|| {
        let c: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| format!("EAL argument {a:?} has a NUL")))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*mut libc::c_char> = c.iter().map(|a| a.as_ptr() as *mut _).collect();
        // The EAL pins its caller to the main lcore's CPU; the caller is our
        // control thread, whose later threads must not all inherit one CPU.
        // SAFETY: cpu_set_t is plain data; 0 = the calling thread.
        let mut cpus: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid out pointer of the right size.
        let saved = unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut cpus)
        } == 0;
        // SAFETY: argv points at NUL-terminated strings that outlive the call
        // (the EAL copies what it keeps).
        let rc = unsafe { sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if saved {
            // SAFETY: restores the set read above.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &cpus) };
        }
        if rc < 0 {
            // SAFETY: reads this thread's rte_errno.
            return Err(format!(
                "DPDK EAL init failed: {}",
                errno_str(unsafe { sys::ferrovs_rte_errno() })
            ));
        }
        Ok(())
    })
    .clone()
}

/// Releases the EAL at process exit and removes its runtime directory
/// (`/var/run/dpdk/<file_prefix>`), which DPDK leaves behind otherwise.
pub fn eal_cleanup(file_prefix: &str) {
    if matches!(EAL.get(), Some(Ok(()))) {
        // SAFETY: called once at shutdown, after every DPDK port was closed.
        unsafe { sys::rte_eal_cleanup() };
        for base in ["/var/run/dpdk", "/run/dpdk"] {
            let _ = std::fs::remove_dir_all(format!("{base}/{file_prefix}"));
        }
    }
}

thread_local! {
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread known to DPDK (mempool per-lcore caches).
fn register_thread() {
    REGISTERED.with(|r| {
        if !r.get() {
            // SAFETY: registers the calling thread; harmless if it fails
            // (mempool ops then skip the per-lcore cache).
            unsafe { sys::rte_thread_register() };
            r.set(true);
        }
    });
}

#[derive(Clone, Debug)]
pub struct DpdkPortConfig {
    /// OVS's options:dpdk-devargs: a vdev (`net_af_packet0,iface=eth1`) or a PCI address.
    pub devargs: String,
    pub n_rxq: u16,
    pub n_txq: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    pub mtu: u16,
}

impl DpdkPortConfig {
    pub fn new(devargs: impl Into<String>) -> DpdkPortConfig {
        DpdkPortConfig {
            devargs: devargs.into(),
            n_rxq: 1,
            n_txq: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            mtu: 1500,
        }
    }
}

/// One DPDK mbuf pointer array per queue, used under the queue's lock.
struct QueueBufs([*mut sys::rte_mbuf; BURST]);
// SAFETY: the pointers are DPDK mbufs owned by whoever holds the queue lock.
unsafe impl Send for QueueBufs {}

pub struct DpdkPort {
    config: DpdkPortConfig,
    port_id: u16,
    driver: String,
    /// The probed device, unplugged at shutdown so the same devargs can be added again.
    device: *mut sys::rte_device,
    pool: *mut sys::rte_mempool,
    rxq: Vec<SpinLock<QueueBufs>>,
    txq: Vec<SpinLock<QueueBufs>>,
    rx_stats: Vec<QueueStats>,
    tx_stats: Vec<QueueStats>,
    /// Per rx queue: the device's interrupt fd (rx interrupts, for hybrid
    /// polling), if its driver has one.
    rx_intr: Vec<Option<RxIntr>>,
    stopped: Mutex<bool>,
    /// The device's MAC (a tunnel's underlay sends from it).
    mac: [u8; 6],
}

/// An rx queue's interrupt channel as DPDK set it up.
#[derive(Clone, Copy, Debug)]
struct RxIntr {
    fd: std::os::fd::RawFd,
    /// An eventfd (virtio-user's call fd, VFIO's): emptied by the waiter.
    /// Otherwise the data fd itself (net_tap), readable while packets wait.
    counter: bool,
    /// The driver switches the interrupt on and off (rx_intr_enable); a
    /// data fd needs no switching.
    switched: bool,
}

// SAFETY: the mempool pointer is DPDK's thread-safe mempool; queues are
// serialised by their locks.
unsafe impl Send for DpdkPort {}
// SAFETY: as above.
unsafe impl Sync for DpdkPort {}

/// RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP (function-like macros
/// in rte_ethdev.h, which bindgen cannot expand): bits 2-5, 7-11, 13, 15-17.
const RSS_IP_TCP_UDP: u64 = (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 7)
    | (1 << 8)
    | (1 << 9)
    | (1 << 10)
    | (1 << 11)
    | (1 << 13)
    | (1 << 15)
    | (1 << 16)
    | (1 << 17);

fn check(rc: i32, what: &str) -> Result<(), String> {
    if rc < 0 {
        Err(format!("{what}: {}", errno_str(rc)))
    } else {
        Ok(())
    }
}

impl DpdkPort {
    /// Probes the device named by `devargs` and starts it. The EAL must be
    /// up ([`eal_init`]). A bad devargs string is an error, never a crash.
    pub fn open(mut config: DpdkPortConfig) -> Result<DpdkPort, String> {
        match EAL.get() {
            Some(Ok(())) => {}
            _ => return Err("DPDK's EAL is not initialised".into()),
        }
        register_thread();
        if config.n_rxq == 0 || config.n_txq == 0 || config.n_rxq > 8 || config.n_txq > 8 {
            return Err("n_rxq and n_txq must be 1..=8".into());
        }
        let name = config
            .devargs
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let c_devargs =
            CString::new(config.devargs.as_str()).map_err(|_| "devargs contains NUL")?;
        let c_name = CString::new(name.as_str()).map_err(|_| "devargs contains NUL")?;
        let mut port_id = 0u16;
        // SAFETY: NUL-terminated strings; port_id is a valid out pointer.
        let known =
            unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut port_id) } == 0;
        if !known {
            // SAFETY: as above.
            let rc = unsafe { sys::rte_dev_probe(c_devargs.as_ptr()) };
            check(rc, &format!("cannot probe {:?}", config.devargs))?;
            // SAFETY: as above.
            let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut port_id) };
            check(rc, &format!("{name}: no ethdev port after probing"))?;
        }
        if IN_USE.lock().expect("poisoned").contains(&port_id) {
            return Err(format!("device {name} is already used by another port"));
        }
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: valid port and out pointer.
        check(
            unsafe { sys::rte_eth_dev_info_get(port_id, &mut info) },
            "rte_eth_dev_info_get",
        )?;
        let device = info.device;
        // Unplugs what this call probed, so corrected devargs can be added.
        let abandon = |e: String| {
            if !known && !device.is_null() {
                // SAFETY: the device probed above; its port is closed or never configured.
                unsafe { sys::rte_dev_remove(device) };
            }
            Err(e)
        };
        if config.n_rxq > info.max_rx_queues {
            return abandon(format!(
                "n_rxq {} is more than {} can do ({}; net_af_packet: add qpairs=N to devargs)",
                config.n_rxq, name, info.max_rx_queues
            ));
        }
        // More polling threads than tx queues share them (each tx queue has a lock).
        config.n_txq = config.n_txq.min(info.max_tx_queues.max(1));
        // SAFETY: port_id is a valid port (looked up above).
        let socket = unsafe { sys::rte_eth_dev_socket_id(port_id) }.max(0);
        // Unique per open: a name DPDK still holds would make the create fail.
        static POOLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = POOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pool_name = CString::new(format!("fv_mp_{port_id}_{n}")).expect("no NUL");
        let n_mbufs = ((config.rx_desc as u32 * config.n_rxq as u32
            + config.tx_desc as u32 * config.n_txq as u32)
            * 2)
        .max(4096);
        // SAFETY: a named pool of default-size mbufs; checked for null.
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(
                pool_name.as_ptr(),
                n_mbufs,
                256,
                0,
                (sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16)
                    .max(config.mtu + 18 + sys::RTE_PKTMBUF_HEADROOM as u16),
                socket,
            )
        };
        if pool.is_null() {
            // SAFETY: reads this thread's rte_errno.
            let e = errno_str(unsafe { sys::ferrovs_rte_errno() });
            return abandon(format!("cannot create mempool: {e}"));
        }
        // Rx interrupts where the driver has them (hybrid polling: an idle
        // queue sleeps on its fd); a driver that refuses them, at configure
        // or at start (virtio-pci without MSI-X), runs without.
        let started = Self::configure_and_start(port_id, socket, pool, &config, &info, true)
            .or_else(|e| {
                tracing::debug!(devargs = %config.devargs, "without rx interrupts: {e}");
                Self::configure_and_start(port_id, socket, pool, &config, &info, false)
            });
        if let Err(e) = started {
            // SAFETY: the port never started: release its queues, then our pool.
            unsafe {
                sys::rte_eth_dev_close(port_id);
                sys::rte_mempool_free(pool);
            }
            return abandon(e);
        }
        // SAFETY: valid port; a switch port sees every destination MAC.
        unsafe { sys::rte_eth_promiscuous_enable(port_id) };
        let driver = if info.driver_name.is_null() {
            "?".to_string()
        } else {
            // SAFETY: the driver name is a static C string.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        IN_USE.lock().expect("poisoned").push(port_id);
        let rx_intr = (0..config.n_rxq).map(|q| rx_intr_of(port_id, q)).collect();
        let bufs = || QueueBufs([std::ptr::null_mut(); BURST]);
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: a started port and an out pointer to a 6-byte address.
        unsafe { sys::rte_eth_macaddr_get(port_id, &mut addr) };
        Ok(DpdkPort {
            mac: addr.addr_bytes,
            rxq: (0..config.n_rxq).map(|_| SpinLock::new(bufs())).collect(),
            txq: (0..config.n_txq).map(|_| SpinLock::new(bufs())).collect(),
            rx_stats: (0..config.n_rxq).map(|_| QueueStats::default()).collect(),
            tx_stats: (0..config.n_txq).map(|_| QueueStats::default()).collect(),
            rx_intr,
            config,
            port_id,
            driver,
            device,
            pool,
            stopped: Mutex::new(false),
        })
    }

    fn configure_and_start(
        port_id: u16,
        socket: i32,
        pool: *mut sys::rte_mempool,
        config: &DpdkPortConfig,
        info: &sys::rte_eth_dev_info,
        rx_intr: bool,
    ) -> Result<(), String> {
        let mut conf = sys::rte_eth_conf::default();
        // Several rx queues: spread flows by RSS over what the NIC can hash
        // (OVS's choice: IP, TCP and UDP); devices without RSS (af_packet
        // fans out in the kernel) get none.
        let rss_hf = RSS_IP_TCP_UDP & info.flow_type_rss_offloads;
        if config.n_rxq > 1 && rss_hf != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        conf.intr_conf.set_rxq(rx_intr as u32);
        // SAFETY: valid port, queue counts checked, conf lives for the call.
        check(
            unsafe { sys::rte_eth_dev_configure(port_id, config.n_rxq, config.n_txq, &conf) },
            "rte_eth_dev_configure",
        )?;
        for q in 0..config.n_rxq {
            // SAFETY: valid port/queue; default rx conf (null); our pool.
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port_id,
                    q,
                    config.rx_desc,
                    socket as u32,
                    std::ptr::null(),
                    pool,
                )
            };
            check(rc, "rte_eth_rx_queue_setup")?;
        }
        for q in 0..config.n_txq {
            // SAFETY: valid port/queue; default tx conf (null).
            let rc = unsafe {
                sys::rte_eth_tx_queue_setup(
                    port_id,
                    q,
                    config.tx_desc,
                    socket as u32,
                    std::ptr::null(),
                )
            };
            check(rc, "rte_eth_tx_queue_setup")?;
        }
        // SAFETY: valid port. Some vdevs cannot change MTU: not fatal.
        let rc = unsafe { sys::rte_eth_dev_set_mtu(port_id, config.mtu) };
        if rc < 0 {
            tracing::warn!(devargs = %config.devargs, "cannot set MTU {}: {}", config.mtu, errno_str(rc));
        }
        // SAFETY: valid, configured port.
        check(
            unsafe { sys::rte_eth_dev_start(port_id) },
            "rte_eth_dev_start",
        )?;
        Ok(())
    }

    pub fn driver(&self) -> &str {
        &self.driver
    }
}

/// Queue `q`'s rx interrupt fd, when its driver made one.
fn rx_intr_of(port_id: u16, q: u16) -> Option<RxIntr> {
    // SAFETY: valid, started port; returns -1 when the queue has no interrupt.
    let fd = unsafe { sys::rte_eth_dev_rx_intr_ctl_q_get_fd(port_id, q) };
    if fd < 0 {
        return None;
    }
    let counter = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .map(|l| l.to_string_lossy().contains("eventfd"))
        .unwrap_or(false);
    // SAFETY: valid port and queue; enabling and disabling again is harmless.
    let switched = unsafe { sys::rte_eth_dev_rx_intr_disable(port_id, q) } == 0;
    Some(RxIntr {
        fd,
        counter,
        switched,
    })
}

impl Port for DpdkPort {
    fn kind(&self) -> &'static str {
        "dpdk"
    }
    fn n_rxq(&self) -> usize {
        self.rxq.len()
    }
    fn n_txq(&self) -> usize {
        self.txq.len()
    }

    fn rx_burst(&self, qid: usize, cache: &mut PoolCache, out: &mut Batch) -> usize {
        register_thread();
        let Some(mut q) = self.rxq[qid].try_lock() else {
            return 0;
        };
        let want = out.room().min(BURST) as u16;
        // SAFETY: valid port and queue; the array holds BURST pointers.
        let n = unsafe { sys::rte_eth_rx_burst(self.port_id, qid as u16, q.0.as_mut_ptr(), want) }
            as usize;
        let stats = &self.rx_stats[qid];
        let (mut got, mut bytes) = (0, 0);
        for &m in &q.0[..n] {
            // SAFETY: DPDK handed us m; data_len bytes at mtod are its frame.
            let (data, len) = unsafe {
                (
                    sys::ferrovs_pktmbuf_mtod(m) as *const u8,
                    (*m).data_len as usize,
                )
            };
            match cache.alloc() {
                Some(mut b) if len <= b.capacity() && unsafe { &*m }.nb_segs == 1 => {
                    // SAFETY: `len` bytes at `data` are DPDK's; the slice is copied at once.
                    b.fill(unsafe { std::slice::from_raw_parts(data, len) });
                    bytes += len;
                    got += 1;
                    let _ = out.push(b);
                }
                Some(b) => {
                    cache.free(b);
                    stats.drop_n(DropReason::Oversized, 1);
                }
                None => stats.drop_n(DropReason::NoBuffer, 1),
            }
            // SAFETY: we own m and are done with it.
            unsafe { sys::rte_pktmbuf_free(m) };
        }
        stats.count(got as u64, bytes as u64);
        got
    }

    fn tx_burst(&self, qid: usize, cache: &mut PoolCache, pkts: &mut Batch) -> usize {
        register_thread();
        let qid = qid % self.txq.len();
        let stats = &self.tx_stats[qid];
        let mut q = self.txq[qid].lock();
        let mut n = 0usize;
        // Lengths kept aside: a sent mbuf belongs to the driver at once.
        let mut lens = [0u16; BURST];
        for b in pkts.drain() {
            // SAFETY: our mempool; checked for null.
            let m = unsafe { sys::rte_pktmbuf_alloc(self.pool) };
            let len = b.len();
            if m.is_null() {
                stats.drop_n(DropReason::NoBuffer, 1);
            } else {
                // SAFETY: append returns room for `len` bytes in m, or null.
                let dst = unsafe { sys::rte_pktmbuf_append(m, len as u16) } as *mut u8;
                if dst.is_null() {
                    // SAFETY: m is ours.
                    unsafe { sys::rte_pktmbuf_free(m) };
                    stats.drop_n(DropReason::Oversized, 1);
                } else {
                    // SAFETY: dst has len bytes of room; b's data is len bytes.
                    unsafe { std::ptr::copy_nonoverlapping(b.data().as_ptr(), dst, len) };
                    q.0[n] = m;
                    lens[n] = len as u16;
                    n += 1;
                }
            }
            cache.free(b);
        }
        // SAFETY: valid port/queue; the first n pointers are our mbufs.
        let sent =
            unsafe { sys::rte_eth_tx_burst(self.port_id, qid as u16, q.0.as_mut_ptr(), n as u16) }
                as usize;
        for &m in &q.0[sent..n] {
            // SAFETY: not taken by the driver: still ours.
            unsafe { sys::rte_pktmbuf_free(m) };
        }
        stats.drop_n(DropReason::RingFull, (n - sent) as u64);
        let sent_bytes: u64 = lens[..sent].iter().map(|&l| l as u64).sum();
        stats.count(sent as u64, sent_bytes);
        sent
    }

    fn rxq_stats(&self, qid: usize) -> &QueueStats {
        &self.rx_stats[qid]
    }
    fn txq_stats(&self, qid: usize) -> &QueueStats {
        &self.tx_stats[qid]
    }

    /// Hybrid polling through DPDK rx interrupts (net_tap, virtio-user,
    /// VFIO NICs); drivers without them (af_packet, af_xdp, ring) stay polled.
    fn arm_rx_notify(&self, qid: usize) -> RxNotify {
        let Some(intr) = self.rx_intr[qid] else {
            return RxNotify::Unsupported;
        };
        if intr.switched {
            // SAFETY: valid port and queue.
            if unsafe { sys::rte_eth_dev_rx_intr_enable(self.port_id, qid as u16) } < 0 {
                return RxNotify::Unsupported;
            }
            // Packets that came before the request raised nothing: look once
            // more (drivers that cannot count answer < 0; a late packet is
            // then found by the datapath's periodic look).
            // SAFETY: valid port and queue.
            if unsafe { sys::rte_eth_rx_queue_count(self.port_id, qid as u16) } > 0 {
                self.disarm_rx_notify(qid);
                return RxNotify::Pending;
            }
        }
        // SAFETY: dup of DPDK's fd; the duplicate is ours to close.
        let dup = unsafe { libc::fcntl(intr.fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            self.disarm_rx_notify(qid);
            return RxNotify::Unsupported;
        }
        RxNotify::Armed {
            // SAFETY: a fresh descriptor nobody else owns.
            fd: unsafe { std::os::fd::FromRawFd::from_raw_fd(dup) },
            epoch: 0,
            counter: intr.counter,
        }
    }

    fn disarm_rx_notify(&self, qid: usize) {
        if self.rx_intr[qid].is_some_and(|i| i.switched) {
            // SAFETY: valid port and queue.
            unsafe { sys::rte_eth_dev_rx_intr_disable(self.port_id, qid as u16) };
        }
    }

    fn refresh_stats(&self) {
        let mut st = sys::rte_eth_stats::default();
        // SAFETY: valid port and out pointer; ethdev stats reads are safe
        // beside the polling thread.
        if unsafe { sys::rte_eth_stats_get(self.port_id, &mut st) } == 0 {
            // Per port only: attributed to queue 0.
            self.rx_stats[0].set_drops(DropReason::Missed, st.imissed);
        }
    }

    fn mac(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }

    fn link_up(&self) -> bool {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid port and out pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.port_id, &mut l) };
        l.link_status() != 0
    }

    fn info(&self) -> PortInfo {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: valid port and out pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.port_id, &mut l) };
        vec![
            ("devargs", self.config.devargs.clone()),
            ("driver", self.driver.clone()),
            ("dpdk_port", self.port_id.to_string()),
            ("link_speed_mbps", l.link_speed.to_string()),
            (
                "queues",
                format!("{} rx, {} tx", self.rxq.len(), self.txq.len()),
            ),
            ("mtu", self.config.mtu.to_string()),
            (
                "mac",
                self.mac
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            (
                "rx_interrupts",
                if self.rx_intr.iter().all(Option::is_some) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
        ]
    }

    fn shutdown(&self) {
        let mut s = self.stopped.lock().expect("poisoned");
        if !*s {
            // SAFETY: valid port; nobody polls it any more (removed from the datapath).
            unsafe {
                sys::rte_eth_dev_stop(self.port_id);
                sys::rte_eth_dev_close(self.port_id);
            }
            IN_USE
                .lock()
                .expect("poisoned")
                .retain(|&p| p != self.port_id);
            if !self.device.is_null() {
                // SAFETY: the device this port was probed on; its only port is closed.
                let rc = unsafe { sys::rte_dev_remove(self.device) };
                if rc < 0 {
                    tracing::warn!(devargs = %self.config.devargs, "cannot unplug the device: {}", errno_str(rc));
                }
            }
            // SAFETY: every mbuf of the pool is back (queues released at close).
            unsafe { sys::rte_mempool_free(self.pool) };
            *s = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mbuf::Pool;

    fn eal() {
        let args: Vec<String> = [
            "ferrovs-test",
            "-l",
            "0",
            "--no-pci",
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--file-prefix".to_string(),
            format!("fvu{}", std::process::id()),
        ])
        .collect();
        eal_init(&args).expect("EAL");
    }

    /// net_ring is a loopback: what we send comes back, copied both ways.
    #[test]
    fn frames_cross_a_dpdk_ring_port_and_come_back_intact() {
        eal();
        let port = DpdkPort::open(DpdkPortConfig::new("net_ring0")).expect("net_ring0");
        assert_eq!(port.driver(), "net_ring");
        assert!(port.link_up());
        let mut cache = PoolCache::new(Pool::new(1024, false).unwrap());
        let mut b = Batch::new();
        for i in 0..8u8 {
            let mut m = cache.alloc().unwrap();
            m.fill(&[i; 100]);
            b.push(m).unwrap();
        }
        // The same device under other devargs is refused, not reconfigured.
        let e = DpdkPort::open(DpdkPortConfig::new("net_ring0,nodeaction=x"))
            .err()
            .unwrap();
        assert!(e.contains("already used"), "{e}");
        assert_eq!(port.tx_burst(0, &mut cache, &mut b), 8);
        let mut out = Batch::new();
        assert_eq!(port.rx_burst(0, &mut cache, &mut out), 8);
        for (i, m) in out.iter().enumerate() {
            assert_eq!(m.data(), &[i as u8; 100]);
        }
        cache.free_batch(&mut out);
        assert_eq!(
            port.rxq_stats(0)
                .packets
                .load(std::sync::atomic::Ordering::Relaxed),
            8
        );
        // A bad devargs string is an error, not a crash.
        let e = DpdkPort::open(DpdkPortConfig::new("net_nosuchdriver0,x=1"))
            .err()
            .unwrap();
        assert!(e.contains("cannot probe"), "{e}");
        port.shutdown();
        // Removed means removed: the same devargs can be added again, here
        // with two queue pairs (net_ring loops tx queue i to rx queue i).
        let mut c = DpdkPortConfig::new("net_ring0");
        (c.n_rxq, c.n_txq) = (2, 2);
        let again = DpdkPort::open(c).expect("net_ring0 again");
        assert!(again.link_up());
        let mut b = Batch::new();
        let mut m = cache.alloc().unwrap();
        m.fill(&[7; 64]);
        b.push(m).unwrap();
        assert_eq!(again.tx_burst(1, &mut cache, &mut b), 1);
        assert_eq!(again.rx_burst(0, &mut cache, &mut out), 0);
        assert_eq!(again.rx_burst(1, &mut cache, &mut out), 1);
        cache.free_batch(&mut out);
        again.shutdown();
        assert_eq!(cache.pool().stats().in_use, 0);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/fvu{}", std::process::id()));
    }
}
