//! A minimal HTTP/1.1 responder for `GET /metrics`: one request per
//! connection, each connection on a thread of its own (at most
//! `MAX_CONNECTIONS`), each request bounded in size and by a total deadline,
//! so a slow or hostile client (slowloris) costs one thread for a few seconds
//! and never delays another scrape.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_REQUEST: usize = 8192;
/// The whole request must arrive within this, however it trickles in.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
const MAX_CONNECTIONS: usize = 32;

pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `render()` at /metrics on `addr` (port 0: any free port).
    pub fn start(
        addr: &str,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let render = Arc::new(render);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let active = Arc::new(AtomicUsize::new(0));
                let mut conns: Vec<JoinHandle<()>> = Vec::new();
                // Blocking accept: `stop` wakes it with a connection of its own.
                while !s.load(Ordering::Relaxed) {
                    conns.retain(|h| !h.is_finished());
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            if s.load(Ordering::Relaxed) {
                                break;
                            }
                            if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                                let _ = conn.set_write_timeout(Some(Duration::from_millis(100)));
                                let _ = respond(
                                    &mut conn,
                                    "503 Service Unavailable",
                                    "text/plain",
                                    "busy\n",
                                );
                                continue;
                            }
                            active.fetch_add(1, Ordering::Relaxed);
                            let (r, a) = (render.clone(), active.clone());
                            let spawned = std::thread::Builder::new()
                                .name("metrics-conn".into())
                                .spawn(move || {
                                    if let Err(e) = serve(conn, &*r) {
                                        tracing::debug!("metrics client: {e}");
                                    }
                                    a.fetch_sub(1, Ordering::Relaxed);
                                });
                            match spawned {
                                Ok(h) => conns.push(h),
                                Err(e) => {
                                    active.fetch_sub(1, Ordering::Relaxed);
                                    tracing::warn!(
                                        "metrics: cannot start a connection thread: {e}"
                                    );
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!("metrics accept: {e}");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                // Each ends within its deadlines; none may outlive the bridge it reads.
                for h in conns {
                    let _ = h.join();
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut conn: TcpStream, render: &dyn Fn() -> String) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return respond(
                &mut conn,
                "408 Request Timeout",
                "text/plain",
                "request too slow\n",
            );
        }
        conn.set_read_timeout(Some(left))?;
        let n = match conn.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return respond(
                &mut conn,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request too large\n",
            );
        }
    }
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => respond(
            &mut conn,
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &render(),
        ),
        ("GET", "/") => respond(
            &mut conn,
            "200 OK",
            "text/plain",
            "ferrovsd: metrics at /metrics\n",
        ),
        ("GET", _) => respond(&mut conn, "404 Not Found", "text/plain", "not found\n"),
        _ => respond(
            &mut conn,
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n",
        ),
    }
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body.as_bytes())
}
