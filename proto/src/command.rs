//! The command list: every management command with its arguments and its
//! one-line help, in one table. ferrovsd's `help` reply and unknown-command
//! error and ferrovs-ctl's usage are all made from it.

/// Declares [`Command`] and its table from one list, so a command cannot be
/// added without its name and help.
macro_rules! commands {
    ($($variant:ident $name:literal $([$($alias:literal),*])? args $args:literal help $help:literal;)*) => {
        /// A management command, by what it does (its wire name is [`Command::name`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Command {
            $($variant,)*
        }

        impl Command {
            /// Every command, in the order `help` and the usage list them.
            pub const ALL: &'static [Command] = &[$(Command::$variant,)*];

            /// The name on the wire (`"command": "..."`) and on ferrovs-ctl's command line.
            pub fn name(self) -> &'static str {
                match self {
                    $(Command::$variant => $name,)*
                }
            }

            /// Other names the command answers to.
            pub fn aliases(self) -> &'static [&'static str] {
                match self {
                    $(Command::$variant => &[$($($alias),*)?],)*
                }
            }

            /// Its arguments as ferrovs-ctl takes them: `NAME` is the `name`
            /// argument, `FLOW` the `flow`, `key=value` the argument `key`.
            pub fn args(self) -> &'static str {
                match self {
                    $(Command::$variant => $args,)*
                }
            }

            /// What it does, in one line.
            pub fn help(self) -> &'static str {
                match self {
                    $(Command::$variant => $help,)*
                }
            }
        }
    };
}

commands! {
    Show "show" args ""
        help "bridge, ports (type, socket, mode, state, negotiated features), PMD cores and their queues";
    AddPort "add-port"
        args "NAME type=vhost-user|virtio-user|dpdk|vxlan [path=SOCKET] [mode=server|client] [mac=MAC] [devargs=DEVARGS] [n-rxq=N] [n-rxq-desc=N] [n-txq-desc=N] [tx-retries-max=N] [mtu-request=N] [pmd-rxq-affinity=Q:CORE,...] [tag=VID] [trunks=LIST] [vlan-mode=MODE] [mac-limit=N] [remote-ip=IP,...] [local-ip=IP] [key=VNI] [dst-port=N] [underlay=PORT]"
        help "add a port at runtime (options as in the config's [[port]])";
    DelPort "del-port" args "NAME"
        help "remove a port";
    SetPort "set-port"
        args "NAME [tag=VID] [trunks=LIST] [vlan-mode=access|trunk|native-tagged|native-untagged] [mac-limit=N]"
        help "change VLAN options or the MAC limit at runtime (\"\" or none unsets)";
    AddFlow "add-flow" args "FLOW"
        help "add a rule (ovs-ofctl flow syntax)";
    AddFlows "add-flows" args "FILE"
        help "add rules, all or none (FILE: one a line, # comments, - for stdin; on the wire flows: [{line, flow}])";
    ModFlows "mod-flows" args "[--strict] FLOW"
        help "new actions for the rules FLOW selects (counters kept)";
    DelFlows "del-flows" args "[--strict] [FLOW]"
        help "remove the rules FLOW selects; all without FLOW";
    DumpFlows "dump-flows" args "[FLOW]"
        help "rules as ovs-ofctl dump-flows prints them (n_packets, n_bytes, duration)";
    FdbShow "fdb-show" args ""
        help "learned MAC addresses";
    FdbFlush "fdb-flush" args ""
        help "forget every learned MAC";
    PortStats "port-stats" args "[NAME]"
        help "rx/tx packets, bytes, drops by reason, per queue";
    PmdStats "pmd-stats" ["pmd-stats-show"] args ""
        help "per PMD core: packets, cycles per packet, average batch, busy %, busy/idle iterations and cycles";
    PmdStatsClear "pmd-stats-clear" args ""
        help "reset the pmd-stats counters";
    PmdRxqShow "pmd-rxq-show" args ""
        help "which PMD core polls which rx queue, enabled or not, its share of the core, polled or waiting for a kick; pmd-auto-lb's last check";
    PmdRxqRebalance "pmd-rxq-rebalance" args ""
        help "recompute the rx queue placement (pmd.rxq-assign)";
    Help "help" args ""
        help "the commands and what they do";
}

impl Command {
    /// The command called `name` (or one of its aliases).
    pub fn from_name(name: &str) -> Result<Command, String> {
        Command::ALL
            .iter()
            .copied()
            .find(|c| c.name() == name || c.aliases().contains(&name))
            .ok_or_else(|| format!("unknown command {name:?}; known: {}", known()))
    }

    /// Arguments and help in one line, as the `help` reply gives them.
    pub fn summary(self) -> String {
        match self.args() {
            "" => self.help().to_string(),
            args => format!("{args}: {}", self.help()),
        }
    }

    /// `NAME ARGS` as ferrovs-ctl's usage shows it (aliases after a `|`).
    pub fn synopsis(self) -> String {
        let mut s = self.name().to_string();
        for a in self.aliases() {
            s.push_str(" | ");
            s.push_str(a);
        }
        if !self.args().is_empty() {
            s.push(' ');
            s.push_str(self.args());
        }
        s
    }
}

/// The command names, comma-separated (for errors).
pub fn known() -> String {
    Command::ALL
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Column where the help of a usage line starts.
const HELP_COLUMN: usize = 41;
/// Width the synopsis is wrapped to.
const WIDTH: usize = 96;

/// One entry of a usage list: the synopsis wrapped under its command name,
/// the help beside its last line or below it when that line is too long.
pub fn usage_line(synopsis: &str, help: &str) -> String {
    let (name, rest) = synopsis.split_once(' ').unwrap_or((synopsis, ""));
    let indent = " ".repeat(2 + name.len() + 1);
    let mut lines = vec![format!("  {name}")];
    for word in rest.split(' ').filter(|w| !w.is_empty()) {
        let last = lines.last_mut().expect("one line at least");
        if last.len() + 1 + word.len() > WIDTH && last.len() > indent.len() {
            lines.push(format!("{indent}{word}"));
        } else {
            last.push(' ');
            last.push_str(word);
        }
    }
    let last = lines.last_mut().expect("one line at least");
    if last.len() < HELP_COLUMN - 1 {
        let pad = HELP_COLUMN - last.len();
        last.push_str(&" ".repeat(pad));
        last.push_str(help);
    } else {
        lines.push(format!("{}{help}", " ".repeat(HELP_COLUMN)));
    }
    lines.join("\n") + "\n"
}

/// The usage list of every command (ferrovs-ctl's `--help`).
pub fn usage() -> String {
    let mut s = String::from("Commands:\n");
    for c in Command::ALL {
        s.push_str(&usage_line(&c.synopsis(), c.help()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for c in Command::ALL {
            for n in std::iter::once(c.name()).chain(c.aliases().iter().copied()) {
                assert!(seen.insert(n), "{n} named twice");
                assert_eq!(Command::from_name(n), Ok(*c));
            }
            assert!(!c.help().is_empty());
        }
    }

    #[test]
    fn unknown_command_lists_the_known_ones() {
        let e = Command::from_name("reboot").unwrap_err();
        assert!(
            e.starts_with("unknown command \"reboot\"; known: show, add-port,"),
            "{e}"
        );
        assert!(e.ends_with("pmd-rxq-rebalance, help"), "{e}");
    }

    #[test]
    #[ignore = "prints the usage list"]
    fn print_usage() {
        print!("{}", usage());
    }

    #[test]
    fn usage_wraps_long_synopses_and_aligns_help() {
        let u = usage();
        assert!(
            u.contains("\n  del-port NAME                          remove a port\n"),
            "{u}"
        );
        assert!(
            u.contains("\n  pmd-stats | pmd-stats-show             per PMD core"),
            "{u}"
        );
        let add = usage_line(&Command::AddPort.synopsis(), Command::AddPort.help());
        assert!(add.lines().count() > 2, "{add}");
        assert!(
            add.lines().nth(1).unwrap().starts_with("           ["),
            "{add}"
        );
    }
}
