//! A command line into a typed request: `NAME key=value ...`, or the flow
//! commands' flow (words joined: `priority=1 actions=drop` and
//! `priority=1,actions=drop` are the same) and flow file.

use anyhow::{anyhow, bail, Context, Result};
use ferrovs_proto::{AddFlow, AddFlows, Command, DumpFlows, FlowSelection, NumberedFlow, Request};
use serde_json::{Map, Value};

pub fn build(command: Command, words: &[String], strict: bool) -> Result<Request> {
    let flow = || words.join(" ");
    Ok(match command {
        Command::AddFlow => Request::AddFlow(AddFlow { flow: flow() }),
        Command::AddFlows => Request::AddFlows(AddFlows {
            flows: flow_file(words)?,
        }),
        Command::ModFlows => Request::ModFlows(FlowSelection {
            flow: flow(),
            strict,
        }),
        Command::DelFlows => Request::DelFlows(FlowSelection {
            flow: flow(),
            strict,
        }),
        Command::DumpFlows => Request::DumpFlows(DumpFlows { flow: flow() }),
        // The same check of the arguments as ferrovsd's, before sending.
        _ => Request::from_args(command, key_values(command.name(), words)?)
            .map_err(|e| anyhow!(e))?,
    })
}

/// `NAME k=v ...` as the request's args object (every value text).
pub fn key_values(command: &str, words: &[String]) -> Result<Map<String, Value>> {
    let mut args = Map::new();
    for (i, w) in words.iter().enumerate() {
        match w.split_once('=') {
            Some((k, v)) => {
                args.insert(k.to_string(), v.into());
            }
            None if i == 0 => {
                args.insert("name".into(), w.as_str().into());
            }
            None => bail!("{command}: unexpected argument {w:?}; use key=value"),
        }
    }
    Ok(args)
}

/// add-flows FILE: one flow a line, `#` comments, `-` for stdin; each
/// with its line number for errors.
fn flow_file(words: &[String]) -> Result<Vec<NumberedFlow>> {
    let [file] = words else {
        bail!("add-flows takes one FILE (one flow a line, # comments; - for stdin)");
    };
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, flow)| NumberedFlow {
            line,
            flow: flow.into(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrovs_proto::{PortStatsArgs, SetPort};

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_values_and_a_leading_name() {
        let r = build(
            Command::SetPort,
            &words(&["vm1", "tag=", "trunks=10,20"]),
            false,
        )
        .unwrap();
        assert_eq!(
            r,
            Request::SetPort(SetPort {
                name: "vm1".into(),
                tag: Some("".into()),
                trunks: Some("10,20".into()),
                ..SetPort::default()
            })
        );
        let r = build(Command::PortStats, &[], false).unwrap();
        assert_eq!(r, Request::PortStats(PortStatsArgs::default()));
        assert!(build(Command::DelPort, &words(&["a", "b"]), false).is_err());
    }

    #[test]
    fn unknown_arguments_are_refused_before_sending() {
        let e = build(
            Command::SetPort,
            &words(&["vm1", "mtu-request=9000"]),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `mtu-request`"), "{e}");
        let e = build(Command::FdbShow, &words(&["vm1"]), false).unwrap_err();
        assert!(e.to_string().contains("fdb-show: bad arguments"), "{e}");
    }

    #[test]
    fn flows_join_their_words() {
        let r = build(Command::DelFlows, &words(&["priority=1", "ip"]), true).unwrap();
        assert_eq!(
            r,
            Request::DelFlows(FlowSelection {
                flow: "priority=1 ip".into(),
                strict: true
            })
        );
    }
}
