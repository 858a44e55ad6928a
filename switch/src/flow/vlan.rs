//! A port's VLAN options with OVS's meaning (ovs-vswitchd.conf.db(5), Port
//! table: `tag`, `trunks`, `vlan_mode`), as the `normal` action applies them:
//! which frames a port admits, which VLAN they join, and the tag they leave
//! with. The one place these options are validated (config, add-port and
//! set-port all call [`PortVlan::new`]).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VlanMode {
    /// One VLAN (`tag`); tagged frames with a nonzero VID are dropped.
    Access,
    /// The VLANs in `trunks` (all when unset); untagged frames are VLAN 0.
    Trunk,
    /// A trunk whose untagged frames join `tag`; `tag` leaves tagged.
    NativeTagged,
    /// A trunk whose untagged frames join `tag`; `tag` leaves untagged.
    NativeUntagged,
}

impl VlanMode {
    pub fn parse(s: &str) -> Result<VlanMode, String> {
        match s {
            "access" => Ok(VlanMode::Access),
            "trunk" => Ok(VlanMode::Trunk),
            "native-tagged" => Ok(VlanMode::NativeTagged),
            "native-untagged" => Ok(VlanMode::NativeUntagged),
            _ => Err(format!(
                "vlan-mode: {s:?} is not one of access, trunk, native-tagged, native-untagged"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VlanMode::Access => "access",
            VlanMode::Trunk => "trunk",
            VlanMode::NativeTagged => "native-tagged",
            VlanMode::NativeUntagged => "native-untagged",
        }
    }
}

/// 4096 bits, one per VID.
#[derive(Clone, PartialEq, Eq)]
struct VlanSet([u64; 64]);

impl VlanSet {
    fn has(&self, v: u16) -> bool {
        self.0[(v as usize >> 6) & 63] >> (v & 63) & 1 != 0
    }
    fn set(&mut self, v: u16, on: bool) {
        let (w, b) = ((v as usize >> 6) & 63, v & 63);
        if on {
            self.0[w] |= 1 << b;
        } else {
            self.0[w] &= !(1 << b);
        }
    }
}

/// "10,20-30" -> the VIDs, each 0..=4095, each once, in order.
pub fn parse_trunks(s: &str) -> Result<Vec<u16>, String> {
    // Longer than every VID written out: not a list anyone means.
    if s.len() > 4096 * 6 {
        return Err("trunks: list too long".into());
    }
    let mut set = VlanSet([0; 64]);
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let vid = |x: &str| {
            x.trim()
                .parse::<u16>()
                .ok()
                .filter(|v| *v <= 4095)
                .ok_or_else(|| format!("trunks: {x:?} is not a VLAN ID (0..4095)"))
        };
        let (a, b) = (vid(a)?, vid(b)?);
        if a > b {
            return Err(format!("trunks: {part:?} is not a range (low-high)"));
        }
        for v in a..=b {
            set.set(v, true);
        }
    }
    let out: Vec<u16> = (0..4096).filter(|v| set.has(*v)).collect();
    if out.is_empty() {
        return Err("trunks: empty list (leave it unset to trunk every VLAN)".into());
    }
    Ok(out)
}

/// The compiled VLAN behaviour of one port.
#[derive(Clone, PartialEq, Eq)]
pub struct PortVlan {
    pub mode: VlanMode,
    /// Access VLAN or native VLAN (0 on a trunk).
    pub tag: u16,
    /// VLANs the port trunks (None: all). Native modes always include
    /// their native VLAN and never VLAN 0, as OVS forces.
    trunks: Option<Box<VlanSet>>,
}

impl std::fmt::Debug for PortVlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortVlan({} tag {})", self.mode.name(), self.tag)
    }
}

impl Default for PortVlan {
    /// OVS's default: a trunk of every VLAN.
    fn default() -> Self {
        PortVlan {
            mode: VlanMode::Trunk,
            tag: 0,
            trunks: None,
        }
    }
}

impl PortVlan {
    /// Validates and compiles the options. The mode defaults as in OVS:
    /// access when `tag` is set, trunk otherwise.
    pub fn new(
        tag: Option<u16>,
        trunks: Option<&str>,
        mode: Option<VlanMode>,
    ) -> Result<PortVlan, String> {
        if let Some(t) = tag {
            if t > 4095 {
                return Err(format!("tag: {t} is not a VLAN ID (0..4095)"));
            }
        }
        let mode = mode.unwrap_or(if tag.is_some() {
            VlanMode::Access
        } else {
            VlanMode::Trunk
        });
        let list = trunks.map(parse_trunks).transpose()?;
        match mode {
            VlanMode::Access if list.is_some() => {
                return Err("trunks: an access port carries only its tag; unset trunks or use vlan-mode=trunk/native-*".into())
            }
            VlanMode::Trunk if tag.is_some() => {
                return Err("tag: a trunk port has no tag; use vlan-mode=native-tagged or native-untagged for a native VLAN".into())
            }
            VlanMode::NativeTagged | VlanMode::NativeUntagged if tag.is_none() => {
                return Err(format!("vlan-mode: {} needs tag (the native VLAN)", mode.name()))
            }
            _ => {}
        }
        let tag = tag.unwrap_or(0);
        let mut set = list.map(|l| {
            let mut s = VlanSet([0; 64]);
            for v in l {
                s.set(v, true);
            }
            Box::new(s)
        });
        if matches!(mode, VlanMode::NativeTagged | VlanMode::NativeUntagged) && tag != 0 {
            let s = set.get_or_insert_with(|| Box::new(VlanSet([u64::MAX; 64])));
            s.set(tag, true);
            s.set(0, false);
        }
        Ok(PortVlan {
            mode,
            tag,
            trunks: set,
        })
    }

    fn trunks_vlan(&self, v: u16) -> bool {
        self.mode != VlanMode::Access && self.trunks.as_ref().is_none_or(|s| s.has(v))
    }

    /// Whether frames of VLAN `v` may leave (or enter) through this port.
    #[inline]
    pub fn includes(&self, v: u16) -> bool {
        (self.mode != VlanMode::Trunk && v == self.tag) || self.trunks_vlan(v)
    }

    /// The VLAN a frame with VID `vid` (0: untagged or priority-tagged)
    /// joins on ingress, or None when the port must drop it.
    #[inline]
    pub fn ingress(&self, vid: u16) -> Option<u16> {
        match self.mode {
            VlanMode::Access => (vid == 0).then_some(self.tag),
            VlanMode::Trunk => self.trunks_vlan(vid).then_some(vid),
            VlanMode::NativeTagged | VlanMode::NativeUntagged => {
                if vid == 0 {
                    Some(self.tag)
                } else {
                    self.trunks_vlan(vid).then_some(vid)
                }
            }
        }
    }

    /// How a frame of VLAN `v` leaves: None untagged, Some(vid) tagged with
    /// `vid` (for VID 0 only when the frame has a nonzero PCP to carry: a
    /// priority tag, as OVS keeps it on trunks).
    #[inline]
    pub fn egress_vid(&self, v: u16) -> Option<u16> {
        match self.mode {
            VlanMode::Access => None,
            VlanMode::Trunk | VlanMode::NativeTagged => Some(v),
            VlanMode::NativeUntagged => (v != self.tag).then_some(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(tag: Option<u16>, trunks: Option<&str>, mode: Option<&str>) -> PortVlan {
        PortVlan::new(tag, trunks, mode.map(|m| VlanMode::parse(m).unwrap())).unwrap()
    }

    #[test]
    fn access_port() {
        let a = pv(Some(10), None, None);
        assert_eq!(a.mode, VlanMode::Access);
        assert_eq!(a.ingress(0), Some(10), "untagged joins the tag");
        assert_eq!(
            a.ingress(10),
            None,
            "tagged frames are dropped, even with its own VID"
        );
        assert_eq!(a.ingress(20), None);
        assert!(a.includes(10) && !a.includes(20) && !a.includes(0));
        assert_eq!(a.egress_vid(10), None);
    }

    #[test]
    fn trunk_port() {
        let all = PortVlan::default();
        assert_eq!(all.ingress(0), Some(0));
        assert_eq!(all.ingress(4095), Some(4095));
        assert_eq!(all.egress_vid(7), Some(7));
        let t = pv(None, Some("10,20-30"), None);
        assert_eq!(t.ingress(25), Some(25));
        assert_eq!(t.ingress(31), None);
        assert_eq!(t.ingress(0), None, "untagged is VLAN 0, not trunked");
        assert!(t.includes(20) && !t.includes(0));
    }

    #[test]
    fn native_ports() {
        let nt = pv(Some(5), Some("10"), Some("native-tagged"));
        assert_eq!(nt.ingress(0), Some(5));
        assert_eq!(nt.ingress(10), Some(10));
        assert_eq!(nt.ingress(5), Some(5), "the native VLAN is trunked too");
        assert_eq!(nt.ingress(11), None);
        assert_eq!(nt.egress_vid(5), Some(5));
        let nu = pv(Some(5), None, Some("native-untagged"));
        assert_eq!(nu.egress_vid(5), None);
        assert_eq!(nu.egress_vid(9), Some(9));
        assert!(!nu.includes(0), "native modes never carry VLAN 0");
    }

    #[test]
    fn bad_options_are_named() {
        let e = |t, tr, m: Option<&str>| {
            PortVlan::new(t, tr, m.map(|m| VlanMode::parse(m).unwrap())).unwrap_err()
        };
        assert!(e(Some(4096), None, None).starts_with("tag:"));
        assert!(e(None, Some("10-5"), None).starts_with("trunks:"));
        assert!(e(None, Some("x"), None).starts_with("trunks:"));
        assert!(e(None, Some("4096"), None).starts_with("trunks:"));
        assert!(e(Some(3), Some("10"), Some("access")).starts_with("trunks:"));
        assert!(e(Some(3), None, Some("trunk")).starts_with("tag:"));
        assert!(e(None, None, Some("native-tagged")).contains("needs tag"));
        assert!(VlanMode::parse("hybrid")
            .unwrap_err()
            .starts_with("vlan-mode:"));
    }
}
