//! Connection targets in OVS's words: `punix:PATH` and `ptcp:PORT[:IP]`
//! to listen on, `tcp:IP[:PORT]` (and `unix:PATH`) to dial.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

/// OpenFlow's IANA port.
pub const DEFAULT_PORT: u16 = 6653;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddrV4),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dial {
    Unix(PathBuf),
    Tcp(SocketAddrV4),
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "punix:{}", p.display()),
            Listen::Tcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
        }
    }
}

impl std::fmt::Display for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dial::Unix(p) => write!(f, "unix:{}", p.display()),
            Dial::Tcp(a) => write!(f, "tcp:{}:{}", a.ip(), a.port()),
        }
    }
}

fn ip(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

fn port(s: &str) -> Result<u16, String> {
    s.parse().map_err(|_| format!("{s:?} is not a TCP port"))
}

/// `punix:PATH` or `ptcp:PORT[:IP]` (IP defaults to 0.0.0.0, as in OVS).
pub fn parse_listen(s: &str) -> Result<Listen, String> {
    if let Some(p) = s.strip_prefix("punix:") {
        if p.is_empty() {
            return Err("punix: needs a path".into());
        }
        return Ok(Listen::Unix(p.into()));
    }
    if let Some(rest) = s.strip_prefix("ptcp:") {
        let (p, a) = match rest.split_once(':') {
            Some((p, a)) => (port(p)?, ip(a)?),
            None => (
                if rest.is_empty() {
                    DEFAULT_PORT
                } else {
                    port(rest)?
                },
                Ipv4Addr::UNSPECIFIED,
            ),
        };
        return Ok(Listen::Tcp(SocketAddrV4::new(a, p)));
    }
    Err(format!("{s:?}: expected punix:PATH or ptcp:PORT[:IP]"))
}

/// `tcp:IP[:PORT]` or `unix:PATH`.
pub fn parse_dial(s: &str) -> Result<Dial, String> {
    if let Some(p) = s.strip_prefix("unix:") {
        if p.is_empty() {
            return Err("unix: needs a path".into());
        }
        return Ok(Dial::Unix(p.into()));
    }
    if let Some(rest) = s.strip_prefix("tcp:") {
        let (a, p) = match rest.split_once(':') {
            Some((a, p)) => (ip(a)?, port(p)?),
            None => (ip(rest)?, DEFAULT_PORT),
        };
        return Ok(Dial::Tcp(SocketAddrV4::new(a, p)));
    }
    Err(format!("{s:?}: expected tcp:IP[:PORT] or unix:PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_as_ovs_writes_them() {
        assert_eq!(
            parse_listen("ptcp:6654:127.0.0.1").unwrap(),
            Listen::Tcp("127.0.0.1:6654".parse().unwrap())
        );
        assert_eq!(
            parse_listen("ptcp:").unwrap().to_string(),
            "ptcp:6653:0.0.0.0"
        );
        assert_eq!(
            parse_dial("tcp:10.0.0.1").unwrap().to_string(),
            "tcp:10.0.0.1:6653"
        );
        assert!(parse_dial("tcp:host.example:6653").is_err());
        assert!(parse_listen("tcp:1.2.3.4").is_err());
        assert_eq!(
            parse_listen("punix:/run/x.mgmt").unwrap().to_string(),
            "punix:/run/x.mgmt"
        );
    }
}
