//! One request over the management socket.

use anyhow::{anyhow, Context, Result};
use ferrovs_proto::{Reply, ReplyLine, Request};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The reply's result as the daemon sent it, or its error.
pub fn call(socket: &Path, request: &Request) -> Result<Value> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to ferrovsd at {} (is it running? use --socket)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .context("no reply from ferrovsd")?;
    let reply: ReplyLine =
        serde_json::from_str(&reply).context("ferrovsd sent a reply that is not JSON")?;
    reply.into_result().map_err(|e| anyhow!(e))
}

/// The reply's result, typed.
pub fn call_typed(socket: &Path, request: &Request) -> Result<Reply> {
    let command = request.command();
    Reply::parse(command, call(socket, request)?).with_context(|| {
        format!(
            "{}: ferrovsd's reply is not what this ferrovs-ctl reads",
            command.name()
        )
    })
}
