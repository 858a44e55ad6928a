//! ferrovs-ctl: the operator's CLI over ferrovsd's management socket.
//!
//! `ferrovs-ctl [--socket PATH] [--json] COMMAND [ARGS]`; arguments are
//! `key=value` (`add-port NAME type=vhost-user path=SOCK [mode=server]`).

mod render;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "ferrovs-ctl", version, about = "Control a running ferrovsd", after_help = render::COMMANDS_HELP)]
struct Args {
    /// ferrovsd's management socket (default: $FERROVS_SOCKET or /run/ferrovs/ferrovsd.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Print the daemon's reply as JSON (for scripts).
    #[arg(long)]
    json: bool,
    /// show | add-port | del-port | fdb-show | fdb-flush | port-stats | pmd-stats | pmd-stats-clear |
    /// pmd-rxq-show | pmd-rxq-rebalance
    command: String,
    /// Positional NAME, then key=value pairs.
    args: Vec<String>,
}

/// Turns `NAME k=v ...` into the request's args object.
fn request_args(command: &str, words: &[String]) -> Result<Map<String, Value>> {
    let mut args = Map::new();
    for (i, w) in words.iter().enumerate() {
        match w.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_string(), json!(v));
            }
            None if i == 0 => {
                args.insert("name".into(), json!(w));
            }
            None => bail!("{command}: unexpected argument {w:?}; use key=value"),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let a = Args::parse();
    let socket = a
        .socket
        .or_else(|| std::env::var_os("FERROVS_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/run/ferrovs/ferrovsd.sock"));
    let args = request_args(&a.command, &a.args)?;
    let mut s = UnixStream::connect(&socket).with_context(|| {
        format!(
            "cannot connect to ferrovsd at {} (is it running? use --socket)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&json!({ "command": a.command, "args": args }))?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .context("no reply from ferrovsd")?;
    let v: Value =
        serde_json::from_str(&reply).context("ferrovsd sent a reply that is not JSON")?;
    if v["ok"] != json!(true) {
        let e = v["error"].as_str().unwrap_or("unknown error");
        if a.json {
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        bail!("{}: {e}", a.command);
    }
    let result = &v["result"];
    if a.json {
        println!("{}", serde_json::to_string_pretty(result)?);
    } else {
        print!("{}", render::text(&a.command, result));
    }
    Ok(())
}
