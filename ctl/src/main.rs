//! ferrovs-ctl: the operator's CLI over ferrovsd's management socket.
//!
//! `ferrovs-ctl [--socket PATH] [--json] COMMAND [ARGS]`; arguments are
//! `key=value` (`add-port NAME type=vhost-user path=SOCK [mode=server]`).
//! The commands, their requests and replies are `ferrovs_proto`'s.

mod client;
mod render;
mod request;
mod top;

use anyhow::{anyhow, Result};
use clap::Parser;
use ferrovs_proto::{Command, Reply};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "ferrovs-ctl", version, about = "Control a running ferrovsd", after_help = commands_help())]
struct Args {
    /// ferrovsd's management socket (default: $FERROVS_SOCKET or /run/ferrovs/ferrovsd.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the daemon's reply as JSON (for scripts).
    #[arg(long)]
    json: bool,
    /// mod-flows/del-flows: the same match and priority, not every rule it covers.
    #[arg(long)]
    strict: bool,
    /// One of the commands below.
    command: String,
    /// Positional NAME, then key=value pairs.
    args: Vec<String>,
}

/// The daemon's commands (from the protocol's table), then ctl's own.
fn commands_help() -> String {
    ferrovs_proto::usage() + &ferrovs_proto::usage_line(top::SYNOPSIS, top::HELP)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let socket = a
        .socket
        .or_else(|| std::env::var_os("FERROVS_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/run/ferrovs/ferrovsd.sock"));
    if a.command == top::NAME {
        let opts = request::key_values(top::NAME, &a.args)?;
        let opt = |k: &str| opts.get(k).and_then(|v| v.as_str());
        let secs: f64 = opt("interval").and_then(|v| v.parse().ok()).unwrap_or(1.0);
        let count = opt("count").and_then(|v| v.parse().ok());
        let interval = Duration::from_secs_f64(secs.max(0.1));
        return top::run(&|r| client::call_typed(&socket, r), interval, count);
    }
    let command = Command::from_name(&a.command).map_err(|e| anyhow!("{e} (and {})", top::NAME))?;
    let request = request::build(command, &a.args, a.strict)?;
    let result = client::call(&socket, &request).map_err(|e| anyhow!("{}: {e:#}", a.command))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let reply = Reply::parse(command, result).map_err(|e| {
            anyhow!(
                "{}: ferrovsd's reply is not what this ferrovs-ctl reads: {e}",
                a.command
            )
        })?;
        print!("{}", render::text(&reply));
    }
    Ok(())
}
