//! Dialing controllers without blocking the agent: a non-blocking connect
//! that completes (or fails) while the agent's poll loop goes on.

use super::target::Dial;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// A connect under way or done.
pub enum Connecting {
    /// TCP: wait for the socket to become writable, then check SO_ERROR.
    Pending(TcpStream),
    Unix(UnixStream),
}

fn socket(domain: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket() just returned it and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn start(target: &Dial) -> io::Result<Connecting> {
    match target {
        Dial::Tcp(a) => {
            let fd = socket(libc::AF_INET)?;
            // SAFETY: sockaddr_in is plain data; every field is set below.
            let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = a.port().to_be();
            sa.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            // SAFETY: sa is a valid sockaddr_in and its size is passed with it.
            let rc = unsafe {
                libc::connect(
                    fd.as_raw_fd(),
                    (&sa as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINPROGRESS) {
                    return Err(e);
                }
            }
            Ok(Connecting::Pending(TcpStream::from(fd)))
        }
        Dial::Unix(p) => Ok(Connecting::Unix(pmd::sock::connect_unix_nonblocking(p)?)),
    }
}

/// After a pending TCP connect turned writable: did it succeed?
pub fn finished(s: &TcpStream) -> io::Result<()> {
    match s.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
