//! The desired state that outlives a restart: the bridge's port list after
//! every runtime change (`add-port`, `del-port`, `set-port`) and its rules
//! once anyone changed them (`add-flow`...; in ovs-ofctl syntax, ports by
//! name), in `<run-dir>/ferrovsd.state.json`.
//!
//! Written atomically (temporary file, fsync, rename), the previous good copy
//! kept as `.prev`. A file that does not parse is reported, moved aside as
//! `.corrupt`, and the previous good copy is used: a half-written or damaged
//! file never costs the last good state.

use crate::config::PortConfig;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDoc {
    version: u32,
    ports: Vec<PortConfig>,
    /// None: the bridge's default rule (nobody changed the rules yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flows: Option<Vec<String>>,
}

/// What a state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Desired {
    pub ports: Vec<PortConfig>,
    pub flows: Option<Vec<String>>,
}

pub struct StateFile {
    path: PathBuf,
}

/// What `load` found.
#[derive(Debug)]
pub enum Loaded {
    /// No state yet: start from the config file.
    Nothing,
    State(Desired),
}

/// A state file's text as the desired state; a document that parses but
/// holds what the config would refuse (a bad port option, two ports of one
/// name) counts as damaged too, so a hand-edited file cannot stop a start.
pub fn parse_text(text: &str) -> Result<Desired, String> {
    let doc: StateDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if doc.version != 1 {
        return Err(format!("unknown state version {}", doc.version));
    }
    crate::config::validate_ports(&doc.ports).map_err(|(key, msg)| format!("{key}: {msg}"))?;
    Ok(Desired {
        ports: doc.ports,
        flows: doc.flows,
    })
}

impl StateFile {
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_suffix(&self, s: &str) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(s);
        p.into()
    }

    fn parse(path: &Path) -> Result<Option<Desired>, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        parse_text(&text).map(Some)
    }

    /// Loads the last good state, recovering from a damaged file.
    pub fn load(&self) -> Loaded {
        match Self::parse(&self.path) {
            Ok(Some(p)) => return Loaded::State(p),
            Ok(None) => {}
            Err(e) => {
                let aside = self.with_suffix(".corrupt");
                tracing::error!(
                    "state file {} is damaged ({e}); moved to {} and using the previous good copy",
                    self.path.display(),
                    aside.display()
                );
                let _ = std::fs::rename(&self.path, &aside);
            }
        }
        match Self::parse(&self.with_suffix(".prev")) {
            Ok(Some(p)) => {
                // Make the recovered copy current again.
                let _ = self.save(&p);
                Loaded::State(p)
            }
            Ok(None) => Loaded::Nothing,
            Err(e) => {
                tracing::error!(
                    "previous state copy is damaged too ({e}); starting from the config file"
                );
                Loaded::Nothing
            }
        }
    }

    pub fn save(&self, d: &Desired) -> std::io::Result<()> {
        let doc = StateDoc {
            version: 1,
            ports: d.ports.clone(),
            flows: d.flows.clone(),
        };
        let tmp = self.with_suffix(".tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(
            serde_json::to_string_pretty(&doc)
                .expect("state serialises")
                .as_bytes(),
        )?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        if self.path.exists() {
            let prev = self.with_suffix(".prev");
            let _ = std::fs::remove_file(&prev);
            std::fs::hard_link(&self.path, &prev)?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, PortKind};

    fn port(n: &str) -> PortConfig {
        let mut p = PortConfig::new(n, PortKind::VhostUser);
        p.path = format!("{n}.sock").into();
        p.mode = Mode::Client;
        p
    }

    fn ports(names: &[&str]) -> Desired {
        Desired {
            ports: names.iter().map(|n| port(n)).collect(),
            flows: None,
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fv-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn save_and_load() {
        let d = dir("ok");
        let s = StateFile::new(d.join("st.json"));
        assert!(matches!(s.load(), Loaded::Nothing));
        s.save(&ports(&["a"])).unwrap();
        let mut two = ports(&["a", "b"]);
        two.ports[1].tag = Some(10);
        two.flows = Some(vec!["table=0,priority=5,actions=drop".into()]);
        s.save(&two).unwrap();
        match s.load() {
            Loaded::State(p) => assert_eq!(p, two),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn damaged_file_falls_back_to_the_previous_good_state() {
        let d = dir("bad");
        let s = StateFile::new(d.join("st.json"));
        s.save(&ports(&["a"])).unwrap();
        s.save(&ports(&["a", "b"])).unwrap();
        std::fs::write(d.join("st.json"), "{\"version\": 1, \"ports\": [ {\"na").unwrap(); // half written
        match s.load() {
            Loaded::State(p) => assert_eq!(p, ports(&["a"]), "the previous good copy"),
            other => panic!("{other:?}"),
        }
        assert!(
            d.join("st.json.corrupt").exists(),
            "the damaged file is kept for inspection"
        );
        match s.load() {
            Loaded::State(p) => assert_eq!(p, ports(&["a"])),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(d).unwrap();
    }

    /// A document that parses but names a port twice (or holds an option the
    /// config would refuse) is damaged: the previous good copy is used.
    #[test]
    fn a_parseable_but_invalid_state_falls_back_too() {
        let d = dir("invalid");
        let s = StateFile::new(d.join("st.json"));
        s.save(&ports(&["a"])).unwrap();
        s.save(&ports(&["a", "a"])).unwrap();
        match s.load() {
            Loaded::State(p) => assert_eq!(p, ports(&["a"])),
            other => panic!("{other:?}"),
        }
        let e =
            parse_text(&std::fs::read_to_string(d.join("st.json.corrupt")).unwrap()).unwrap_err();
        assert!(e.contains("port[1].name") && e.contains("duplicate"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
