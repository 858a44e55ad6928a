//! ovs-ofctl(8)'s flow syntax, the common subset: parse a line into a
//! [`Rule`] or a [`Filter`], and print a rule back the way `ovs-ofctl
//! dump-flows` does. Every error names the field it is about.
//!
//! Ports are names or numbers; the caller resolves names (a port that does
//! not exist is an error, a number is taken as it is, as in OVS).

use super::key::*;
use super::rule::*;
use std::fmt::Write;

/// Port name <-> number, as the bridge knows them.
pub trait PortNames {
    fn number(&self, name: &str) -> Option<u16>;
    fn name(&self, no: u16) -> Option<String>;
}

/// Fields `parse` understands (for the "known:" part of errors).
const FIELDS: &str =
    "table, priority, cookie, idle_timeout, hard_timeout, in_port, dl_src, dl_dst, \
dl_vlan, dl_vlan_pcp, vlan_tci, dl_type, ip, arp, icmp, tcp, udp, nw_src, nw_dst, nw_proto, tp_src, tp_dst, \
out_port, actions";
const ACTIONS: &str = "output:PORT, PORT, in_port, normal, flood, all, drop, mod_vlan_vid:N, \
mod_vlan_pcp:N, strip_vlan, pop_vlan, push_vlan:0x8100, mod_dl_src:MAC, mod_dl_dst:MAC, \
resubmit(,N), goto_table:N, controller[:MAX_LEN]";

/// Everything a flow line may say; which parts are allowed depends on the command.
#[derive(Clone, Debug, Default)]
struct Parsed {
    table: Option<u8>,
    priority: Option<u16>,
    /// (value, mask if one was written).
    cookie: Option<(u64, Option<u64>)>,
    idle_timeout: Option<u16>,
    hard_timeout: Option<u16>,
    out_port: Option<u16>,
    m: Match,
    actions: Option<Vec<Action>>,
}

fn num<T: TryFrom<u64>>(field: &str, s: &str, max: u64) -> Result<T, String> {
    let s = s.trim();
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    };
    v.ok()
        .filter(|v| *v <= max)
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("{field}: {s:?} is not a number from 0 to {max}"))
}

/// "N" or "N/MASK".
fn num_masked(field: &str, s: &str, max: u64) -> Result<(u64, u64), String> {
    match s.split_once('/') {
        Some((v, m)) => Ok((num(field, v, max)?, num(field, m, max)?)),
        None => Ok((num(field, s, max)?, max)),
    }
}

pub fn parse_mac(field: &str, s: &str) -> Result<[u8; 6], String> {
    let err = || format!("{field}: {s:?} is not a MAC address like 52:54:00:12:34:56");
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(err());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return Err(err());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| err())?;
    }
    Ok(m)
}

fn mac_u64(m: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

fn ipv4(field: &str, s: &str) -> Result<u32, String> {
    s.parse::<std::net::Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| format!("{field}: {s:?} is not an IPv4 address"))
}

/// "10.0.0.1", "10.0.0.0/24" or "10.0.0.0/255.255.255.0".
fn ipv4_masked(field: &str, s: &str) -> Result<(u64, u64), String> {
    let (a, m) = match s.split_once('/') {
        None => (ipv4(field, s)?, u32::MAX),
        Some((a, p)) => {
            let m = if p.contains('.') {
                ipv4(field, p)?
            } else {
                let n: u32 = num(field, p, 32)?;
                if n == 0 {
                    0
                } else {
                    u32::MAX << (32 - n)
                }
            };
            (ipv4(field, a)?, m)
        }
    };
    Ok((a as u64, m as u64))
}

fn port(field: &str, s: &str, names: &dyn PortNames) -> Result<u16, String> {
    if let Ok(n) = num::<u16>(field, s, 0xfeff) {
        return Ok(n);
    }
    names
        .number(s)
        .ok_or_else(|| format!("{field}: no port named {s:?}"))
}

/// Splits on commas and whitespace outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | ' ' | '\t' if depth == 0 => {
                if i > start {
                    out.push(&s[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

fn parse_actions(s: &str, names: &dyn PortNames) -> Result<Vec<Action>, String> {
    let mut out = Vec::new();
    for a in split_top(s) {
        let (k, v) = match a.split_once(':') {
            Some((k, v)) => (k, Some(v)),
            None => (a, None),
        };
        let lk = k.to_ascii_lowercase();
        let need =
            |what: &str| v.ok_or_else(|| format!("actions: {lk} needs {what} ({lk}:{what})"));
        let act = match lk.as_str() {
            "drop" => {
                if split_top(s).len() > 1 {
                    return Err("actions: drop must be the only action".into());
                }
                continue;
            }
            "output" if v.is_some_and(|v| v.eq_ignore_ascii_case("controller")) => {
                Action::Controller { max_len: u16::MAX }
            }
            "output" => Action::Output(port("actions: output", need("PORT")?, names)?),
            "controller" => Action::Controller {
                max_len: match v {
                    Some(n) => num("actions: controller", n, u16::MAX as u64)?,
                    None => u16::MAX,
                },
            },
            "in_port" => Action::InPort,
            "normal" => Action::Normal,
            "flood" => Action::Flood,
            "all" => Action::All,
            "mod_vlan_vid" => Action::ModVlanVid(num("actions: mod_vlan_vid", need("VID")?, 4095)?),
            "mod_vlan_pcp" => Action::ModVlanPcp(num("actions: mod_vlan_pcp", need("PCP")?, 7)?),
            "strip_vlan" | "pop_vlan" => Action::StripVlan,
            "push_vlan" => {
                let t: u16 = num("actions: push_vlan", need("TPID")?, 0xffff)?;
                if t != ETH_TYPE_VLAN {
                    return Err(format!(
                        "actions: push_vlan: only TPID 0x8100 is supported, not {t:#x}"
                    ));
                }
                Action::PushVlan(t)
            }
            "mod_dl_src" => Action::ModDlSrc(parse_mac("actions: mod_dl_src", need("MAC")?)?),
            "mod_dl_dst" => Action::ModDlDst(parse_mac("actions: mod_dl_dst", need("MAC")?)?),
            "goto_table" => Action::GotoTable(num(
                "actions: goto_table",
                need("TABLE")?,
                MAX_TABLE as u64,
            )?),
            _ if lk.starts_with("resubmit") => {
                let inner = a
                    .strip_prefix(k.get(..8).unwrap_or(""))
                    .and_then(|r| r.strip_prefix('('))
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|r| r.strip_prefix(','))
                    .ok_or_else(|| format!("actions: {a:?}: only resubmit(,TABLE) is supported"))?;
                Action::Resubmit(num("actions: resubmit", inner, MAX_TABLE as u64)?)
            }
            _ if v.is_none()
                && (num::<u16>("", a, 0xfeff).is_ok() || names.number(a).is_some()) =>
            {
                Action::Output(port("actions", a, names)?)
            }
            _ => return Err(format!("actions: unknown action {a:?} (known: {ACTIONS})")),
        };
        out.push(act);
    }
    if let Some(i) = out.iter().position(|a| matches!(a, Action::GotoTable(_))) {
        if i + 1 != out.len() {
            return Err("actions: goto_table must be the last action".into());
        }
    }
    Ok(out)
}

fn parse(line: &str, names: &dyn PortNames) -> Result<Parsed, String> {
    let line = line.trim();
    let (head, actions) = match line.find("actions=") {
        Some(i) => (&line[..i], Some(&line[i + "actions=".len()..])),
        None => (line, None),
    };
    let mut p = Parsed::default();
    let mut dl_type: Option<u16> = None;
    let mut nw_proto: Option<u8> = None;
    // A shorthand or dl_type; conflicting ones are an error, not a silent override.
    let set_type = |p: &mut Parsed,
                    dl_type: &mut Option<u16>,
                    nw_proto: &mut Option<u8>,
                    field: &str,
                    t: u16,
                    proto: Option<u8>|
     -> Result<(), String> {
        if dl_type.is_some_and(|d| d != t)
            || (proto.is_some() && nw_proto.is_some_and(|n| Some(n) != proto))
        {
            return Err(format!(
                "{field}: contradicts an earlier dl_type or nw_proto"
            ));
        }
        *dl_type = Some(t);
        p.m.set(Field::DL_TYPE, t as u64, 0xffff);
        if let Some(n) = proto {
            *nw_proto = Some(n);
            p.m.set(Field::NW_PROTO, n as u64, 0xff);
        }
        Ok(())
    };
    for tok in split_top(head) {
        let (k, v) = match tok.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (tok.trim(), None),
        };
        let val = || v.ok_or_else(|| format!("{k}: needs a value ({k}=...)"));
        match k {
            "ip" | "ipv4" => set_type(&mut p, &mut dl_type, &mut nw_proto, k, ETH_TYPE_IP, None)?,
            "arp" => set_type(&mut p, &mut dl_type, &mut nw_proto, k, ETH_TYPE_ARP, None)?,
            "icmp" => set_type(
                &mut p,
                &mut dl_type,
                &mut nw_proto,
                k,
                ETH_TYPE_IP,
                Some(IPPROTO_ICMP),
            )?,
            "tcp" => set_type(
                &mut p,
                &mut dl_type,
                &mut nw_proto,
                k,
                ETH_TYPE_IP,
                Some(IPPROTO_TCP),
            )?,
            "udp" => set_type(
                &mut p,
                &mut dl_type,
                &mut nw_proto,
                k,
                ETH_TYPE_IP,
                Some(IPPROTO_UDP),
            )?,
            "table" => p.table = Some(num(k, val()?, 255)?),
            "priority" => p.priority = Some(num(k, val()?, 65535)?),
            "idle_timeout" => p.idle_timeout = Some(num(k, val()?, 65535)?),
            "hard_timeout" => p.hard_timeout = Some(num(k, val()?, 65535)?),
            "cookie" => {
                let v = val()?;
                p.cookie = Some(match v.split_once('/') {
                    // ovs-ofctl writes an exact-match mask as -1.
                    Some((a, "-1")) => (num(k, a, u64::MAX)?, Some(u64::MAX)),
                    Some((a, m)) => (num(k, a, u64::MAX)?, Some(num(k, m, u64::MAX)?)),
                    None => (num(k, v, u64::MAX)?, None),
                });
            }
            "out_port" => p.out_port = Some(port(k, val()?, names)?),
            "in_port" => {
                p.m.set(Field::IN_PORT, port(k, val()?, names)? as u64, 0xffff)
            }
            "dl_src" | "dl_dst" => {
                let f = if k == "dl_src" {
                    Field::DL_SRC
                } else {
                    Field::DL_DST
                };
                let v = val()?;
                let (a, m) = match v.split_once('/') {
                    Some((a, m)) => (parse_mac(k, a)?, parse_mac(k, m)?),
                    None => (parse_mac(k, v)?, [0xff; 6]),
                };
                p.m.set(f, mac_u64(a), mac_u64(m));
            }
            "dl_vlan" => {
                let vid: u16 = num(k, val()?, 0xffff)?;
                match vid {
                    // OVS: 0xffff means "no 802.1Q header".
                    0xffff => p.m.set(Field::VLAN_TCI, 0, 0xffff),
                    0..=4095 => {
                        let (tci, mask) = p.m.get(Field::VLAN_TCI);
                        p.m.set(
                            Field::VLAN_TCI,
                            (tci & 0xe000) | VLAN_CFI as u64 | vid as u64,
                            mask | 0x1fff,
                        );
                    }
                    _ => {
                        return Err(format!(
                            "{k}: {vid} is not a VLAN ID (0..4095, or 0xffff for untagged)"
                        ))
                    }
                }
            }
            // OVS's raw form: the TCI with the CFI bit as "tag present"
            // (what OpenFlow's vlan_vid OFPVID_NONE/PRESENT matches become).
            "vlan_tci" => {
                let v = val()?;
                let (a, m) = match v.split_once('/') {
                    Some((a, m)) => (num::<u16>(k, a, 0xffff)?, num::<u16>(k, m, 0xffff)?),
                    None => (num::<u16>(k, v, 0xffff)?, 0xffff),
                };
                p.m.set(Field::VLAN_TCI, a as u64, m as u64);
            }
            "dl_vlan_pcp" => {
                let pcp: u16 = num(k, val()?, 7)?;
                let (tci, mask) = p.m.get(Field::VLAN_TCI);
                p.m.set(
                    Field::VLAN_TCI,
                    (tci & 0x0fff) | VLAN_CFI as u64 | (pcp as u64) << 13,
                    mask | 0xf000,
                );
            }
            "dl_type" => {
                let t: u16 = num(k, val()?, 0xffff)?;
                set_type(&mut p, &mut dl_type, &mut nw_proto, k, t, None)?;
            }
            "nw_proto" => {
                let n: u8 = num(k, val()?, 255)?;
                if nw_proto.is_some_and(|x| x != n) {
                    return Err(format!("{k}: contradicts an earlier protocol shorthand"));
                }
                nw_proto = Some(n);
                p.m.set(Field::NW_PROTO, n as u64, 0xff);
            }
            "nw_src" | "nw_dst" => {
                let f = if k == "nw_src" {
                    Field::NW_SRC
                } else {
                    Field::NW_DST
                };
                let (a, m) = ipv4_masked(k, val()?)?;
                p.m.set(f, a, m);
            }
            "tp_src" | "tp_dst" => {
                let f = if k == "tp_src" {
                    Field::TP_SRC
                } else {
                    Field::TP_DST
                };
                let (a, m) = num_masked(k, val()?, 0xffff)?;
                p.m.set(f, a, m);
            }
            "" => {}
            _ => return Err(format!("unknown field {k:?} (known: {FIELDS})")),
        }
    }
    // OpenFlow prerequisites, as OVS checks them.
    let has = |f: Field| p.m.get(f).1 != 0;
    if (has(Field::NW_SRC) || has(Field::NW_DST) || has(Field::NW_PROTO))
        && !matches!(dl_type, Some(ETH_TYPE_IP) | Some(ETH_TYPE_ARP))
    {
        let f = if has(Field::NW_SRC) {
            "nw_src"
        } else if has(Field::NW_DST) {
            "nw_dst"
        } else {
            "nw_proto"
        };
        return Err(format!(
            "{f}: needs dl_type=0x0800 (ip) or 0x0806 (arp) in the match"
        ));
    }
    if (has(Field::TP_SRC) || has(Field::TP_DST))
        && (dl_type != Some(ETH_TYPE_IP)
            || !matches!(nw_proto, Some(IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP)))
    {
        let f = if has(Field::TP_SRC) {
            "tp_src"
        } else {
            "tp_dst"
        };
        return Err(format!(
            "{f}: needs tcp, udp or icmp (or nw_proto=6/17/1 with ip) in the match"
        ));
    }
    if let Some(a) = actions {
        p.actions = Some(parse_actions(a, names)?);
    }
    Ok(p)
}

/// A rule for `add-flow`: actions required, defaults as ovs-ofctl's.
pub fn parse_rule(line: &str, names: &dyn PortNames) -> Result<Rule, String> {
    let p = parse(line, names)?;
    if p.out_port.is_some() {
        return Err("out_port: only allowed when selecting flows (del-flows, dump-flows)".into());
    }
    let table = p.table.unwrap_or(0);
    if table > MAX_TABLE {
        return Err(format!("table: {table} is not a table (0..={MAX_TABLE})"));
    }
    let actions = p
        .actions
        .ok_or("actions: missing (add actions=... at the end; actions=drop to drop)")?;
    check_actions_for_table(&actions, table)?;
    let (cookie, cmask) = p.cookie.unwrap_or((0, None));
    if cmask.is_some() {
        return Err("cookie: a mask is only allowed when selecting flows".into());
    }
    Ok(Rule {
        table,
        priority: p.priority.unwrap_or(DEFAULT_PRIORITY),
        cookie,
        idle_timeout: p.idle_timeout.unwrap_or(0),
        hard_timeout: p.hard_timeout.unwrap_or(0),
        m: p.m,
        actions,
    })
}

/// OpenFlow's rule for actions in `table`: goto_table only goes forward.
pub fn check_actions_for_table(actions: &[Action], table: u8) -> Result<(), String> {
    for a in actions {
        if let Action::GotoTable(t) = a {
            if *t <= table {
                return Err(format!(
                    "actions: goto_table:{t} must go to a later table than {table}"
                ));
            }
        }
    }
    Ok(())
}

/// What `mod-flows`, `del-flows` and `dump-flows` say besides the selection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// mod-flows: the new actions.
    pub actions: Option<Vec<Action>>,
    /// mod-flows: `cookie=V` without a mask sets the rules' cookie (ovs-ofctl).
    pub new_cookie: Option<u64>,
}

/// A selection for `mod-flows` (`for_modify`), `del-flows` and `dump-flows`.
/// `cookie=V/MASK` selects; a bare `cookie=V` sets the cookie in mod-flows
/// and selects exactly V elsewhere.
pub fn parse_filter(
    line: &str,
    names: &dyn PortNames,
    for_modify: bool,
) -> Result<(Filter, Change), String> {
    let p = parse(line, names)?;
    let table = match p.table {
        None | Some(ALL_TABLES) => None,
        Some(t) => Some(t),
    };
    let (cookie, new_cookie) = match p.cookie {
        None => ((0, 0), None),
        Some((v, Some(m))) => ((v, m), None),
        Some((v, None)) if for_modify => ((0, 0), Some(v)),
        Some((v, None)) => ((v, u64::MAX), None),
    };
    let filter = Filter {
        table,
        priority: p.priority,
        cookie,
        m: p.m,
        out_port: p.out_port,
    };
    Ok((
        filter,
        Change {
            actions: p.actions,
            new_cookie,
        },
    ))
}

fn mac_str(v: u64) -> String {
    let b = v.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

fn ip_str(v: u64) -> String {
    std::net::Ipv4Addr::from(v as u32).to_string()
}

fn port_str(no: u16, names: &dyn PortNames) -> String {
    names.name(no).unwrap_or_else(|| no.to_string())
}

/// The match as ovs-ofctl prints it (shorthands first), without a trailing comma.
pub fn format_match(m: &Match, names: &dyn PortNames) -> String {
    let mut parts: Vec<String> = Vec::new();
    let (ty, tym) = m.get(Field::DL_TYPE);
    let (proto, protom) = m.get(Field::NW_PROTO);
    let mut proto_done = false;
    if tym == 0xffff {
        match (ty as u16, protom == 0xff, proto as u8) {
            (ETH_TYPE_IP, true, IPPROTO_TCP) => (parts.push("tcp".into()), proto_done = true),
            (ETH_TYPE_IP, true, IPPROTO_UDP) => (parts.push("udp".into()), proto_done = true),
            (ETH_TYPE_IP, true, IPPROTO_ICMP) => (parts.push("icmp".into()), proto_done = true),
            (ETH_TYPE_IP, _, _) => (parts.push("ip".into()), ()),
            (ETH_TYPE_ARP, _, _) => (parts.push("arp".into()), ()),
            _ => (parts.push(format!("dl_type=0x{ty:04x}")), ()),
        };
    }
    let (ip, ipm) = m.get(Field::IN_PORT);
    if ipm != 0 {
        parts.push(format!("in_port={}", port_str(ip as u16, names)));
    }
    let (tci, tcim) = m.get(Field::VLAN_TCI);
    let tagged = tci & VLAN_CFI as u64 != 0;
    match tcim {
        0 => {}
        0xffff if tci == 0 => parts.push("dl_vlan=0xffff".into()),
        // The forms dl_vlan and dl_vlan_pcp write; anything else in OVS's raw form.
        0x1fff if tagged => parts.push(format!("dl_vlan={}", tci & 0x0fff)),
        0xf000 if tagged => parts.push(format!("dl_vlan_pcp={}", tci >> 13)),
        0xffff if tagged => {
            parts.push(format!("dl_vlan={}", tci & 0x0fff));
            parts.push(format!("dl_vlan_pcp={}", tci >> 13));
        }
        _ => parts.push(format!("vlan_tci=0x{tci:04x}/0x{tcim:04x}")),
    }
    for (name, f) in [("dl_src", Field::DL_SRC), ("dl_dst", Field::DL_DST)] {
        let (v, mk) = m.get(f);
        if mk == 0xffff_ffff_ffff {
            parts.push(format!("{name}={}", mac_str(v)));
        } else if mk != 0 {
            parts.push(format!("{name}={}/{}", mac_str(v), mac_str(mk)));
        }
    }
    for (name, f) in [("nw_src", Field::NW_SRC), ("nw_dst", Field::NW_DST)] {
        let (v, mk) = m.get(f);
        if mk == 0xffff_ffff {
            parts.push(format!("{name}={}", ip_str(v)));
        } else if mk != 0 {
            let bits = (mk as u32).leading_ones();
            if (mk as u32).checked_shl(bits).unwrap_or(0) == 0 {
                parts.push(format!("{name}={}/{bits}", ip_str(v)));
            } else {
                parts.push(format!("{name}={}/{}", ip_str(v), ip_str(mk)));
            }
        }
    }
    if protom != 0 && !proto_done {
        parts.push(format!("nw_proto={proto}"));
    }
    for (name, f) in [("tp_src", Field::TP_SRC), ("tp_dst", Field::TP_DST)] {
        let (v, mk) = m.get(f);
        if mk == 0xffff {
            parts.push(format!("{name}={v}"));
        } else if mk != 0 {
            parts.push(format!("{name}=0x{v:x}/0x{mk:x}"));
        }
    }
    parts.join(",")
}

pub fn format_actions(actions: &[Action], names: &dyn PortNames) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    let mut s = String::new();
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = match a {
            Action::Output(p) => write!(s, "output:{}", port_str(*p, names)),
            Action::InPort => write!(s, "IN_PORT"),
            Action::Normal => write!(s, "NORMAL"),
            Action::Flood => write!(s, "FLOOD"),
            Action::All => write!(s, "ALL"),
            Action::ModVlanVid(v) => write!(s, "mod_vlan_vid:{v}"),
            Action::ModVlanPcp(v) => write!(s, "mod_vlan_pcp:{v}"),
            Action::StripVlan => write!(s, "strip_vlan"),
            Action::PushVlan(t) => write!(s, "push_vlan:0x{t:04x}"),
            Action::ModDlSrc(m) => write!(s, "mod_dl_src:{}", mac_str(mac_u64(*m))),
            Action::ModDlDst(m) => write!(s, "mod_dl_dst:{}", mac_str(mac_u64(*m))),
            Action::Resubmit(t) => write!(s, "resubmit(,{t})"),
            Action::GotoTable(t) => write!(s, "goto_table:{t}"),
            Action::Controller { max_len } => write!(s, "CONTROLLER:{max_len}"),
        };
    }
    s
}

/// The rule as a line `parse_rule` reads back (the persisted form).
pub fn format_rule(r: &Rule, names: &dyn PortNames) -> String {
    let mut s = format!("table={},priority={}", r.table, r.priority);
    if r.cookie != 0 {
        let _ = write!(s, ",cookie={:#x}", r.cookie);
    }
    if r.idle_timeout != 0 {
        let _ = write!(s, ",idle_timeout={}", r.idle_timeout);
    }
    if r.hard_timeout != 0 {
        let _ = write!(s, ",hard_timeout={}", r.hard_timeout);
    }
    let m = format_match(&r.m, names);
    if !m.is_empty() {
        s.push(',');
        s.push_str(&m);
    }
    let _ = write!(s, ",actions={}", format_actions(&r.actions, names));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl PortNames for Names {
        fn number(&self, n: &str) -> Option<u16> {
            match n {
                "vm1" => Some(1),
                "vm2" => Some(2),
                _ => None,
            }
        }
        fn name(&self, no: u16) -> Option<String> {
            match no {
                1 => Some("vm1".into()),
                2 => Some("vm2".into()),
                _ => None,
            }
        }
    }

    fn rule(s: &str) -> Rule {
        parse_rule(s, &Names).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse_rule(s, &Names).unwrap_err()
    }

    #[test]
    fn parses_the_common_subset() {
        let r = rule("table=1, priority=100,cookie=0x2a,idle_timeout=10,hard_timeout=20,tcp,in_port=vm1,dl_src=02:00:00:00:00:01,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_vlan=10,dl_vlan_pcp=3,nw_src=10.0.0.0/24,nw_dst=10.1.2.3,tp_src=1024,tp_dst=0x50/0xfff0 actions=mod_vlan_vid:20,strip_vlan,push_vlan:0x8100,mod_dl_src:02:00:00:00:00:09,mod_dl_dst:02:00:00:00:00:0a,output:vm2,3,resubmit(,4),normal,flood,all,in_port,goto_table:7");
        assert_eq!(
            (
                r.table,
                r.priority,
                r.cookie,
                r.idle_timeout,
                r.hard_timeout
            ),
            (1, 100, 42, 10, 20)
        );
        assert_eq!(r.m.get(Field::IN_PORT), (1, 0xffff));
        assert_eq!(r.m.get(Field::VLAN_TCI), (0x1000 | 10 | 3 << 13, 0xffff));
        assert_eq!(r.m.get(Field::NW_SRC), (0x0a00_0000, 0xffff_ff00));
        assert_eq!(r.m.get(Field::TP_DST), (0x50, 0xfff0));
        assert_eq!(r.m.get(Field::NW_PROTO), (6, 0xff));
        assert_eq!(r.actions.len(), 13);
        assert_eq!(r.actions[5], Action::Output(2));
        assert_eq!(r.actions[6], Action::Output(3));
        assert_eq!(r.actions[7], Action::Resubmit(4));
        assert_eq!(r.actions[12], Action::GotoTable(7));
        let d = rule("priority=5,actions=drop");
        assert!(d.actions.is_empty());
        assert_eq!(d.table, 0);
        assert!(rule("priority=5,actions=").actions.is_empty());
        assert_eq!(rule("actions=NORMAL").actions, vec![Action::Normal]);
        assert_eq!(rule("actions=NORMAL").priority, DEFAULT_PRIORITY);
        assert_eq!(
            rule("dl_vlan=0xffff,actions=drop").m.get(Field::VLAN_TCI),
            (0, 0xffff)
        );
        assert_eq!(
            rule("arp,nw_dst=10.0.0.1,actions=drop")
                .m
                .get(Field::DL_TYPE),
            (0x0806, 0xffff)
        );
        assert_eq!(
            rule("ip,nw_src=10.0.0.0/255.255.0.0,actions=drop")
                .m
                .get(Field::NW_SRC)
                .1,
            0xffff_0000
        );
    }

    #[test]
    fn errors_name_the_field() {
        assert!(
            err("nw_src=10.0.0.1,actions=drop").starts_with("nw_src:"),
            "prerequisite"
        );
        assert!(err("ip,tp_dst=80,actions=drop").starts_with("tp_dst:"));
        assert!(err("ip,nw_src=10.0.0.300,actions=drop").starts_with("nw_src:"));
        assert!(err("dl_vlan=4096,actions=drop").starts_with("dl_vlan:"));
        assert!(err("dl_vlan_pcp=8,actions=drop").starts_with("dl_vlan_pcp:"));
        assert!(err("dl_src=zz,actions=drop").starts_with("dl_src:"));
        assert!(err("in_port=nope,actions=drop").starts_with("in_port:"));
        assert!(err("priority=70000,actions=drop").starts_with("priority:"));
        assert!(err("nw_srcc=1,actions=drop").contains("unknown field \"nw_srcc\""));
        assert!(err("priority=1").starts_with("actions:"));
        assert!(err("actions=outptu:2").contains("unknown action"));
        assert!(err("actions=output:nope").contains("no port named"));
        assert!(err("actions=goto_table:2,normal").contains("last"));
        assert!(err("table=3,actions=goto_table:2").contains("later table"));
        assert!(err("actions=resubmit(1,2)").contains("resubmit(,TABLE)"));
        assert!(err("actions=push_vlan:0x88a8").contains("0x8100"));
        assert!(err("tcp,udp,actions=drop").starts_with("udp:"));
        assert!(err("table=255,actions=drop").starts_with("table:"));
        assert!(err("actions=drop,output:1").contains("only action"));
    }

    #[test]
    fn formats_what_it_parses() {
        for s in [
            "table=0,priority=0,actions=NORMAL",
            "table=1,priority=100,cookie=0x2a,idle_timeout=10,tcp,in_port=vm1,dl_vlan=10,dl_src=02:00:00:00:00:01,nw_src=10.0.0.0/24,tp_dst=80,actions=mod_vlan_vid:20,output:vm2,resubmit(,4)",
            "table=2,priority=7,dl_vlan=0xffff,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=strip_vlan,push_vlan:0x8100,FLOOD,ALL,IN_PORT,goto_table:9",
            "table=0,priority=5,arp,nw_dst=10.0.0.1,actions=drop",
            "table=0,priority=5,ip,nw_proto=47,actions=output:9",
            "table=0,priority=5,dl_type=0x88cc,actions=mod_dl_dst:02:00:00:00:00:0a",
            // What OpenFlow's OFPVID_NONE and OFPVID_PRESENT become (state file round trip).
            "table=0,priority=4096,in_port=vm1,vlan_tci=0x0000/0x1fff,actions=push_vlan:0x8100,mod_vlan_vid:100,goto_table:1",
            "table=1,priority=9,vlan_tci=0x1000/0x1000,actions=CONTROLLER:96,goto_table:2",
            "table=1,priority=9,dl_vlan=100,dl_vlan_pcp=5,actions=drop",
        ] {
            let r = rule(s);
            let out = format_rule(&r, &Names);
            assert_eq!(out, s);
            assert_eq!(rule(&out), r, "{s}");
        }
    }

    #[test]
    fn filters_and_garbage() {
        let (f, a) =
            parse_filter("table=255,cookie=0x10/0xf0,out_port=vm2,ip", &Names, false).unwrap();
        assert_eq!(f.table, None);
        assert_eq!(f.cookie, (0x10, 0xf0));
        assert_eq!(f.out_port, Some(2));
        let (f, _) = parse_filter("cookie=0x50/-1", &Names, false).unwrap();
        assert_eq!(
            f.cookie,
            (0x50, u64::MAX),
            "-1 is ovs-ofctl's exact-match mask"
        );
        assert_eq!(a, Change::default());
        let (f, _) = parse_filter("", &Names, false).unwrap();
        assert_eq!(f, Filter::ALL);
        let (f, c) = parse_filter("cookie=7,actions=drop", &Names, true).unwrap();
        assert_eq!(
            (f.cookie, c.new_cookie, c.actions),
            ((0, 0), Some(7), Some(vec![]))
        );
        let (f, _) = parse_filter("cookie=7", &Names, false).unwrap();
        assert_eq!(
            f.cookie,
            (7, u64::MAX),
            "a bare cookie selects exactly elsewhere"
        );
        assert!(parse_rule("actions=drop output:1", &Names)
            .unwrap_err()
            .contains("only action"));
        // Nothing a user types may panic the parser.
        for s in [
            "=",
            ",,,",
            "actions=(",
            "actions=resubmit",
            "actions=resubmit(",
            "dl_src=/",
            "nw_src=/",
            "tp_dst=1/",
            "cookie=/",
            "actions=output:",
            "dl_vlan=",
            "in_port",
        ] {
            let _ = parse_rule(s, &Names);
            let _ = parse_filter(s, &Names, true);
        }
    }
}
