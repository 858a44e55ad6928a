//! `--port SPEC`: which driver, and its options.
//!
//! - `virtio-user:path=SOCK[,queues=N][,queue-size=N][,mac=MAC][,tx-indirect=1]
//!   [,mrg-rxbuf=0][,event-idx=0][,indirect-desc=0][,tx-retries=N]` — our virtio driver,
//!   connecting to a vhost-user backend (a switch, DPDK's net_vhost ...)
//! - `vhost:path=SOCK[,client][,queues=N][,mac=MAC]` — our vhost-user backend
//!   (DPDK's virtio-user or a VM attaches)
//! - `ring` — an in-process ring; consecutive ring ports are joined back to
//!   back, an odd one out loops to itself
//! - `dpdk:[queues=N,][rxd=N,][txd=N,][mtu=N,][mac=MAC,]devargs=DEVARGS` — a NIC
//!   or vdev through DPDK's ethdev drivers (built with feature `dpdk`);
//!   `devargs` comes last and takes the rest of the spec, commas included
//!   (`dpdk:devargs=net_af_packet0,iface=eth1`). The EAL starts at the first
//!   such port with `--eal-args`.

use anyhow::{anyhow, bail, Context, Result};
use pmd::ring::RingPort;
use pmd::vhost::{SocketMode, VhostControl, VhostPort, VhostPortConfig};
use pmd::virtio::{VirtioPort, VirtioUserConfig};
use pmd::{Pool, Port};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct OpenPort {
    pub spec: String,
    pub port: Arc<dyn Port>,
    pub mac: [u8; 6],
    vhost: Option<Arc<VhostPort>>,
}

/// Every port of the run and what must be torn down with them.
pub struct Ports {
    pub list: Vec<OpenPort>,
    vhost_ctl: Option<VhostControl>,
    rings: Vec<Arc<RingPort>>,
    /// The EAL's file prefix, once started (cleaned up at close).
    eal_prefix: Option<String>,
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<_> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("bad MAC address {s:?}");
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| anyhow!("bad MAC address {s:?}"))?;
    }
    Ok(m)
}

fn default_mac(idx: usize) -> [u8; 6] {
    [0x02, 0xfe, 0x7e, 0x57, 0x00, idx as u8 + 1]
}

/// `kind:k=v,flag,...` → (kind, options). A `devargs=` option takes the
/// rest of the spec: DPDK devargs have commas of their own.
fn split_spec(spec: &str) -> Result<(&str, BTreeMap<String, String>)> {
    let (kind, mut rest) = spec.split_once(':').unwrap_or((spec, ""));
    let mut opts = BTreeMap::new();
    let devargs_at = if rest.starts_with("devargs=") {
        Some(0)
    } else {
        rest.find(",devargs=").map(|i| i + 1)
    };
    if let Some(i) = devargs_at {
        opts.insert(
            "devargs".to_string(),
            rest[i + "devargs=".len()..].to_string(),
        );
        rest = rest[..i].trim_end_matches(',');
    }
    for kv in rest.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if opts.insert(k.to_string(), v.to_string()).is_some() {
            bail!("port option {k:?} given twice in {spec:?}");
        }
    }
    Ok((kind, opts))
}

fn take_num<T: std::str::FromStr>(o: &mut BTreeMap<String, String>, k: &str) -> Result<Option<T>> {
    match o.remove(k) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| anyhow!("port option {k}={v:?} is not a number")),
    }
}

fn take_bool(o: &mut BTreeMap<String, String>, k: &str, default: bool) -> Result<bool> {
    match o.remove(k).as_deref() {
        None => Ok(default),
        Some("" | "1" | "on" | "true") => Ok(true),
        Some("0" | "off" | "false") => Ok(false),
        Some(v) => bail!("port option {k}={v:?}: use 0 or 1"),
    }
}

#[cfg(feature = "dpdk")]
fn open_dpdk(
    o: &mut BTreeMap<String, String>,
    eal_args: &str,
    eal_prefix: &mut Option<String>,
) -> Result<Arc<dyn Port>> {
    use pmd::dpdk::{eal_init, DpdkPort, DpdkPortConfig};
    let devargs = o
        .remove("devargs")
        .context("dpdk needs devargs=DEVARGS (last)")?;
    let mut c = DpdkPortConfig::new(devargs);
    let q = take_num(o, "queues")?.unwrap_or(1);
    (c.n_rxq, c.n_txq) = (q, q);
    c.rx_desc = take_num(o, "rxd")?.unwrap_or(c.rx_desc);
    c.tx_desc = take_num(o, "txd")?.unwrap_or(c.tx_desc);
    c.mtu = take_num(o, "mtu")?.unwrap_or(c.mtu);
    if eal_prefix.is_none() {
        let prefix = format!("fvtp{}", std::process::id());
        let mut args = vec!["ferrovs-testpmd".to_string()];
        args.extend(eal_args.split_whitespace().map(String::from));
        args.extend(["--file-prefix".into(), prefix.clone(), "--no-shconf".into()]);
        eal_init(&args).map_err(|e| anyhow!(e))?;
        *eal_prefix = Some(prefix);
    }
    Ok(Arc::new(DpdkPort::open(c).map_err(|e| anyhow!(e))?))
}

#[cfg(not(feature = "dpdk"))]
fn open_dpdk(
    _: &mut BTreeMap<String, String>,
    _: &str,
    _: &mut Option<String>,
) -> Result<Arc<dyn Port>> {
    bail!("this ferrovs-testpmd was built without DPDK support (cargo build --features ferrovs-testpmd/dpdk)")
}

impl Ports {
    /// Opens every port; `eal_args` start DPDK's EAL if a `dpdk:` port is among them.
    pub fn open(specs: &[String], pool: &Arc<Pool>, eal_args: &str) -> Result<Ports> {
        let mut ports = Ports {
            list: Vec::new(),
            vhost_ctl: None,
            rings: Vec::new(),
            eal_prefix: None,
        };
        let mut pending_ring: Option<Arc<RingPort>> = None;
        let n_rings = specs.iter().filter(|s| s.as_str() == "ring").count();
        let mut rings_seen = 0;
        for (idx, spec) in specs.iter().enumerate() {
            let (kind, mut o) = split_spec(spec)?;
            let mac = match o.remove("mac") {
                Some(m) => parse_mac(&m)?,
                None => default_mac(idx),
            };
            let (port, vhost): (Arc<dyn Port>, _) = match kind {
                "virtio-user" => {
                    let path = o.remove("path").context("virtio-user needs path=SOCKET")?;
                    let mut c = VirtioUserConfig::new(path);
                    c.mac = mac;
                    c.server = take_bool(&mut o, "server", false)?;
                    c.queue_pairs = take_num(&mut o, "queues")?.unwrap_or(1);
                    c.queue_size = take_num(&mut o, "queue-size")?.unwrap_or(1024);
                    c.tx_indirect = take_bool(&mut o, "tx-indirect", false)?;
                    // A generator drops what the ring cannot take, as
                    // testpmd does: retrying only hammers the used ring the
                    // backend is writing.
                    c.tx_retries_max = take_num(&mut o, "tx-retries")?.unwrap_or(0);
                    c.wish.mrg_rxbuf = take_bool(&mut o, "mrg-rxbuf", true)?;
                    c.wish.event_idx = take_bool(&mut o, "event-idx", true)?;
                    c.wish.indirect_desc = take_bool(&mut o, "indirect-desc", true)?;
                    c.wish.tx_offloads = take_bool(&mut o, "tx-offloads", false)?;
                    let p = VirtioPort::start(c, Arc::clone(pool))
                        .map_err(|e| anyhow!("port {idx} ({spec}): {e}"))?;
                    (p, None)
                }
                "vhost" => {
                    let path = o.remove("path").context("vhost needs path=SOCKET")?;
                    let mode = if take_bool(&mut o, "client", false)? {
                        SocketMode::Client
                    } else {
                        SocketMode::Server
                    };
                    let vp = Arc::new(VhostPort::new(VhostPortConfig {
                        path: path.into(),
                        mode,
                        queue_pairs: take_num(&mut o, "queues")?.unwrap_or(1),
                        mac,
                        tx_retries_max: 8,
                        mtu: (pool.data_room() - 18) as u32,
                        // Its buffers hold one frame each: nothing larger.
                        offloads: false,
                    }));
                    if ports.vhost_ctl.is_none() {
                        ports.vhost_ctl = Some(VhostControl::start()?);
                    }
                    let ctl = ports.vhost_ctl.as_ref().expect("started above");
                    ctl.add(Arc::clone(&vp))
                        .with_context(|| format!("port {idx} ({spec})"))?;
                    (vp.clone() as Arc<dyn Port>, Some(vp))
                }
                "ring" => {
                    rings_seen += 1;
                    let p = match pending_ring.take() {
                        Some(p) => p,
                        None if rings_seen == n_rings && n_rings % 2 == 1 => {
                            RingPort::loopback(1024)
                        }
                        None => {
                            let (a, b) = RingPort::pair(1024);
                            pending_ring = Some(b);
                            a
                        }
                    };
                    ports.rings.push(Arc::clone(&p));
                    (p as Arc<dyn Port>, None)
                }
                "dpdk" => (
                    open_dpdk(&mut o, eal_args, &mut ports.eal_prefix)
                        .with_context(|| format!("port {idx} ({spec})"))?,
                    None,
                ),
                other => bail!(
                    "port {idx}: unknown port type {other:?} (virtio-user, vhost, ring, dpdk)"
                ),
            };
            if let Some(k) = o.keys().next() {
                bail!("port {idx} ({spec}): unknown option {k:?}");
            }
            ports.list.push(OpenPort {
                spec: spec.clone(),
                port,
                mac,
                vhost,
            });
        }
        Ok(ports)
    }

    /// Stops drivers and frees what their rings still hold.
    pub fn close(mut self, pool: &Arc<Pool>) {
        for p in &self.list {
            if let (Some(ctl), Some(vp)) = (&self.vhost_ctl, &p.vhost) {
                ctl.remove(vp);
            }
            p.port.shutdown();
        }
        if let Some(mut ctl) = self.vhost_ctl.take() {
            ctl.stop();
        }
        let mut cache = pmd::PoolCache::new(Arc::clone(pool));
        for r in &self.rings {
            r.drain(&mut cache);
        }
        #[cfg(feature = "dpdk")]
        if let Some(prefix) = &self.eal_prefix {
            pmd::dpdk::eal_cleanup(prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_are_refused() {
        let (k, o) = split_spec("virtio-user:path=/x,queues=2,client").unwrap();
        assert_eq!(k, "virtio-user");
        assert_eq!(o["path"], "/x");
        assert_eq!(o["client"], "");
        let (k, o) =
            split_spec("dpdk:queues=2,devargs=net_af_packet0,iface=veth0,qpairs=2").unwrap();
        assert_eq!(k, "dpdk");
        assert_eq!(o["devargs"], "net_af_packet0,iface=veth0,qpairs=2");
        assert_eq!(o["queues"], "2");
        assert_eq!(
            split_spec("dpdk:devargs=net_ring0").unwrap().1["devargs"],
            "net_ring0"
        );
        assert!(split_spec("vhost:path=a,path=b").is_err());
        let pool = Pool::new(256, false).unwrap();
        for bad in [
            "virtio-user",
            "virtio-user:path=/nonexistent,queues=x",
            "virtio-user:path=/nonexistent,queues=99",
            "virtio-user:path=/nonexistent,bogus=1",
            "tap:iface=x",
            "vhost:client",
        ] {
            assert!(Ports::open(&[bad.to_string()], &pool, "").is_err(), "{bad}");
        }
        assert_eq!(parse_mac("02:00:00:00:00:0a").unwrap()[5], 10);
        assert!(parse_mac("02:00").is_err());
    }

    #[test]
    fn ring_ports_pair_up_and_an_odd_one_loops() {
        let pool = Pool::new(256, false).unwrap();
        let specs: Vec<String> = ["ring", "ring", "ring"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ports = Ports::open(&specs, &pool, "").unwrap();
        let mut cache = pmd::PoolCache::new(Arc::clone(&pool));
        let send = |p: &Arc<dyn Port>, cache: &mut pmd::PoolCache| {
            let mut b = pmd::Batch::new();
            let mut m = cache.alloc().unwrap();
            m.fill(&[1; 60]);
            b.push(m).unwrap();
            p.tx_burst(0, cache, &mut b);
        };
        send(&ports.list[0].port, &mut cache);
        send(&ports.list[2].port, &mut cache);
        let mut b = pmd::Batch::new();
        assert_eq!(ports.list[1].port.rx_burst(0, &mut cache, &mut b), 1);
        assert_eq!(ports.list[2].port.rx_burst(0, &mut cache, &mut b), 1);
        cache.free_batch(&mut b);
        drop(cache);
        ports.close(&pool);
    }
}
