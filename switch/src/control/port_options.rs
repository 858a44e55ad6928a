//! `add-port` and `set-port` options, text on the wire, into a
//! [`PortConfig`]: parsed here, checked by the config's own rules
//! ([`validate_port`], [`PortConfig::check_runtime_options`]) so a port added
//! at runtime is held to exactly what a `[[port]]` in the config is.

use crate::config::{validate_port, Mode, PortConfig, PortKind};
use crate::flow::vlan::VlanMode;
use ferrovs_proto::{AddPort, RuntimeOptions};
use std::str::FromStr;

/// The port `add-port` describes, checked.
pub fn port_config(a: &AddPort) -> Result<PortConfig, String> {
    let kind = match a.kind.as_str() {
        "vhost-user" => PortKind::VhostUser,
        "virtio-user" => PortKind::VirtioUser,
        "dpdk" => PortKind::Dpdk,
        "vxlan" => PortKind::Vxlan,
        t => {
            return Err(format!(
                "unknown port type {t:?} (known: vhost-user, virtio-user, dpdk, vxlan)"
            ))
        }
    };
    let mut cfg = PortConfig::new(&a.name, kind);
    if matches!(kind, PortKind::VhostUser | PortKind::VirtioUser) {
        cfg.path = a.path.clone().unwrap_or_default().into();
    }
    cfg.mode = match a.mode.as_deref() {
        None | Some("server") => Mode::Server,
        Some("client") => Mode::Client,
        Some(m) => return Err(format!("unknown mode {m:?} (known: server, client)")),
    };
    cfg.mac = a.mac.clone();
    cfg.devargs = a.devargs.clone();
    cfg.n_rxq = number("n-rxq", &a.n_rxq)?;
    cfg.n_rxq_desc = number("n-rxq-desc", &a.n_rxq_desc)?;
    cfg.n_txq_desc = number("n-txq-desc", &a.n_txq_desc)?;
    cfg.mtu_request = number("mtu-request", &a.mtu_request)?;
    if let Some(n) = number("tx-retries-max", &a.tx_retries_max)? {
        cfg.tx_retries_max = n;
    }
    cfg.pmd_rxq_affinity = a.pmd_rxq_affinity.clone();
    cfg.remote_ip = a.remote_ip.clone();
    cfg.local_ip = a.local_ip.clone();
    cfg.key = number("key", &a.key)?;
    cfg.dst_port = number("dst-port", &a.dst_port)?;
    cfg.underlay = a.underlay.clone();
    cfg.offloads = a
        .offloads
        .as_deref()
        .map(|v| match v {
            "true" | "on" => Ok(true),
            "false" | "off" => Ok(false),
            v => Err(format!("offloads: {v:?} is not true or false")),
        })
        .transpose()?;
    apply_runtime_options(&mut cfg, &a.runtime_options())?;
    validate_port(&cfg).map_err(|(key, msg)| format!("{key}: {msg}"))?;
    Ok(cfg)
}

/// Sets the runtime options given ("" or "none" unsets one). Their ranges
/// and combinations are checked with the whole port, by
/// `PortConfig::check_runtime_options`.
pub fn apply_runtime_options(cfg: &mut PortConfig, o: &RuntimeOptions) -> Result<(), String> {
    if let Some(v) = o.tag {
        cfg.tag = unless_unset(v)
            .map(|t| {
                t.parse::<u16>()
                    .map_err(|_| format!("tag: {t:?} is not a VLAN ID (0..4095)"))
            })
            .transpose()?;
    }
    if let Some(v) = o.trunks {
        cfg.trunks = unless_unset(v).map(String::from);
    }
    if let Some(v) = o.vlan_mode {
        cfg.vlan_mode = unless_unset(v).map(VlanMode::parse).transpose()?;
    }
    if let Some(v) = o.mac_limit {
        cfg.mac_limit = unless_unset(v)
            .map(|n| {
                n.parse::<u32>()
                    .map_err(|_| format!("mac-limit: {n:?} is not a number"))
            })
            .transpose()?;
    }
    Ok(())
}

/// The value, or None when it says "unset".
fn unless_unset(v: &str) -> Option<&str> {
    (!(v.is_empty() || v == "none" || v == "[]")).then_some(v)
}

/// An optional number given as text; its range is `validate_port`'s to check.
fn number<T: FromStr>(key: &str, v: &Option<String>) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    v.as_deref()
        .map(|s| s.parse().map_err(|e| format!("{key}: {s:?}: {e}")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(kind: &str, opts: &[(&str, &str)]) -> Result<PortConfig, String> {
        let mut args = serde_json::Map::new();
        args.insert("name".into(), "p1".into());
        args.insert("type".into(), kind.into());
        args.insert("path".into(), "p1.sock".into());
        for (k, v) in opts {
            args.insert(k.to_string(), (*v).into());
        }
        let a: AddPort = serde_json::from_value(serde_json::Value::Object(args)).unwrap();
        port_config(&a)
    }

    #[test]
    fn add_port_options_become_a_config() {
        let c = add(
            "vhost-user",
            &[
                ("mode", "client"),
                ("n-rxq", "2"),
                ("tag", "10"),
                ("mac-limit", "4"),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.mode, c.n_rxq, c.tag, c.mac_limit),
            (Mode::Client, Some(2), Some(10), Some(4))
        );
        assert_eq!(c.path, std::path::PathBuf::from("p1.sock"));
        assert_eq!(c.tx_retries_max, crate::config::DEFAULT_TX_RETRIES);
    }

    #[test]
    fn add_port_is_checked_as_the_config_is() {
        let err = |kind, opts| add(kind, opts).unwrap_err();
        assert!(err("tap", &[]).contains("unknown port type"));
        assert_eq!(err("vhost-user", &[("n-rxq", "9")]), "n-rxq: must be 1..=8");
        assert!(err("vhost-user", &[("n-rxq", "x")]).starts_with("n-rxq: \"x\": "));
        assert_eq!(
            err("dpdk", &[("n-rxq-desc", "16")]),
            "n-rxq-desc: must be 64..=4096"
        );
        assert_eq!(
            err("vhost-user", &[("mtu-request", "60")]),
            "mtu-request: must be 68..=9000"
        );
        assert_eq!(
            err("vhost-user", &[("tx-retries-max", "33")]),
            "tx-retries-max: must be 0..=32"
        );
        assert!(err("vhost-user", &[("tag", "5000")]).starts_with("tag: 5000 is not a VLAN ID"));
        assert!(err("vhost-user", &[("vlan-mode", "bogus")]).starts_with("vlan-mode:"));
        assert!(err("vhost-user", &[("tag", "10"), ("trunks", "20")]).starts_with("trunks:"));
        assert!(err("vhost-user", &[("pmd-rxq-affinity", "1:0")]).contains("beyond n-rxq"));
        assert!(err("vhost-user", &[("mac", "zz")]).starts_with("mac:"));
    }

    #[test]
    fn runtime_options_unset_with_empty_or_none() {
        let mut c = add("vhost-user", &[("tag", "10")]).unwrap();
        let o = RuntimeOptions {
            tag: Some("none"),
            trunks: Some("10,20"),
            vlan_mode: Some("trunk"),
            mac_limit: Some(""),
        };
        apply_runtime_options(&mut c, &o).unwrap();
        assert_eq!(
            (c.tag, c.trunks.as_deref(), c.vlan_mode, c.mac_limit),
            (None, Some("10,20"), Some(VlanMode::Trunk), None)
        );
        c.check_runtime_options().unwrap();
    }
}
