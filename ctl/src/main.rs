//! ferrovs-ctl: the operator's CLI over ferrovsd's management socket.
//!
//! `ferrovs-ctl [--socket PATH] [--json] COMMAND [ARGS]`; arguments are
//! `key=value` (`add-port NAME type=vhost-user path=SOCK [mode=server]`).

mod render;
mod top;

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
    /// mod-flows/del-flows: the same match and priority, not every rule it covers.
    #[arg(long)]
    strict: bool,
    /// show | add-port | del-port | set-port | add-flow | add-flows | mod-flows | del-flows | dump-flows |
    /// fdb-show | fdb-flush | port-stats | pmd-stats(-show) | pmd-stats-clear |
    /// pmd-rxq-show | pmd-rxq-rebalance | top [interval=SECS] [count=N]
    command: String,
    /// Positional NAME, then key=value pairs.
    args: Vec<String>,
}

/// The flow commands take one flow in ovs-ofctl syntax (words joined:
/// `priority=1 actions=drop` and `priority=1,actions=drop` are the same).
fn flow_args(command: &str, words: &[String], strict: bool) -> Result<Map<String, Value>> {
    let mut args = Map::new();
    if command == "add-flows" {
        let [file] = words else {
            bail!("add-flows takes one FILE (one flow a line, # comments; - for stdin)");
        };
        let text = if file == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
        };
        let flows: Vec<Value> = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
            .filter(|(_, l)| !l.is_empty())
            .map(|(n, l)| json!({ "line": n, "flow": l }))
            .collect();
        args.insert("flows".into(), json!(flows));
        return Ok(args);
    }
    args.insert("flow".into(), json!(words.join(" ")));
    if strict {
        args.insert("strict".into(), json!(true));
    }
    Ok(args)
}

const FLOW_COMMANDS: &[&str] = &[
    "add-flow",
    "add-flows",
    "mod-flows",
    "del-flows",
    "dump-flows",
];

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
    let args = if FLOW_COMMANDS.contains(&a.command.as_str()) {
        flow_args(&a.command, &a.args, a.strict)?
    } else {
        request_args(&a.command, &a.args)?
    };
    if a.command == "top" {
        let secs: f64 = args
            .get("interval")
            .and_then(|v| v.as_str()?.parse().ok())
            .unwrap_or(1.0);
        let count = args.get("count").and_then(|v| v.as_str()?.parse().ok());
        let call = |c: &str, args: Value| call(&socket, c, args);
        return top::run(&call, Duration::from_secs_f64(secs.max(0.1)), count);
    }
    match call(&socket, &a.command, Value::Object(args)) {
        Ok(result) if a.json => println!("{}", serde_json::to_string_pretty(&result)?),
        Ok(result) => print!("{}", render::text(&a.command, &result)),
        Err(e) => bail!("{}: {e}", a.command),
    }
    Ok(())
}

/// One request over the management socket; the reply's result, or its error.
fn call(socket: &std::path::Path, command: &str, args: Value) -> Result<Value> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to ferrovsd at {} (is it running? use --socket)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&json!({ "command": command, "args": args }))?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .context("no reply from ferrovsd")?;
    let v: Value =
        serde_json::from_str(&reply).context("ferrovsd sent a reply that is not JSON")?;
    if v["ok"] != json!(true) {
        bail!("{}", v["error"].as_str().unwrap_or("unknown error"));
    }
    Ok(v["result"].clone())
}
