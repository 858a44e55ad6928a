//! Which CPUs run what, as OVS-DPDK places them: each PMD pins itself to its
//! core (which may lie outside the affinity ferrovsd was started with, when
//! the OS allows, as OVS's pmd-cpu-mask may), and every other thread runs
//! on the control cores (OVS's dpdk-lcore-mask): by default the CPUs
//! ferrovsd was allowed minus the PMD cores, so an operator who starts it
//! under `taskset` gets the PMD on its core and the rest elsewhere.

use crate::config::parse_cpu_list;

/// The plan: PMD cores in PMD order, and the control cores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cores {
    pub pmd: Vec<usize>,
    pub control: Vec<usize>,
    /// The control cores had to include a PMD core (nothing else allowed).
    pub shared: bool,
}

/// CPUs the calling thread may run on.
pub fn allowed() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; the size is the set's.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads a bit of the set we own.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// CPUs the system has online (what a PMD may be pinned to, cgroups allowing).
pub fn online() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()).ok().flatten())
        .unwrap_or_else(allowed)
}

/// Pins the calling thread to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: CPU_SET writes a bit of the set we own; c < CPU_SETSIZE (checked by the plan).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is this thread; the set is initialised above.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Plans PMD and control cores from their specs ("auto" or a CPU list),
/// the CPUs this process was allowed and those online.
pub fn plan(
    pmd_spec: &str,
    control_spec: &str,
    allowed: &[usize],
    online: &[usize],
) -> Result<Cores, String> {
    let pmd = match parse_cpu_list(pmd_spec).map_err(|e| format!("pmd cores: {e}"))? {
        // One PMD on the highest allowed CPU.
        None => vec![allowed.iter().copied().max().unwrap_or(0)],
        Some(list) => {
            if let Some(c) = list.iter().find(|c| !online.contains(c)) {
                return Err(format!(
                    "pmd cores: CPU {c} is not online (online: {})",
                    cpu_list(online)
                ));
            }
            list
        }
    };
    let (control, shared) =
        match parse_cpu_list(control_spec).map_err(|e| format!("control cores: {e}"))? {
            None => {
                let rest: Vec<usize> = allowed
                    .iter()
                    .copied()
                    .filter(|c| !pmd.contains(c))
                    .collect();
                if rest.is_empty() {
                    (allowed.to_vec(), true)
                } else {
                    (rest, false)
                }
            }
            Some(list) => {
                if let Some(c) = list.iter().find(|c| !online.contains(c)) {
                    return Err(format!(
                        "control cores: CPU {c} is not online (online: {})",
                        cpu_list(online)
                    ));
                }
                let shared = list.iter().any(|c| pmd.contains(c));
                (list, shared)
            }
        };
    Ok(Cores {
        pmd,
        control,
        shared,
    })
}

/// "0-2,5" for [0, 1, 2, 5].
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_cores_default_to_the_allowed_ones_minus_the_pmds() {
        let p = plan("1", "auto", &[0, 1], &[0, 1]).unwrap();
        assert_eq!((p.pmd, p.control, p.shared), (vec![1], vec![0], false));
        // Started under `taskset -c 0` with a PMD on CPU 1: as OVS allows.
        let p = plan("1", "auto", &[0], &[0, 1]).unwrap();
        assert_eq!((p.pmd, p.control, p.shared), (vec![1], vec![0], false));
        // Nothing but the PMD's CPU allowed: the control threads share it.
        let p = plan("auto", "auto", &[3], &[0, 1, 2, 3]).unwrap();
        assert_eq!((p.pmd, p.control, p.shared), (vec![3], vec![3], true));
        let p = plan("2-3", "0", &[0, 1, 2, 3], &[0, 1, 2, 3]).unwrap();
        assert_eq!((p.pmd, p.control, p.shared), (vec![2, 3], vec![0], false));
        assert!(plan("7", "auto", &[0, 1], &[0, 1])
            .unwrap_err()
            .contains("not online"));
        assert!(plan("1", "5", &[0, 1], &[0, 1])
            .unwrap_err()
            .contains("not online"));
        assert_eq!(cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}
