#!/usr/bin/env bash
# End-to-end switch comparison on one machine, in one run.
#
# The same DPDK testpmd generator/sink pushes one UDP flow through three
# switches, one after another, each switch confined to CPU 1:
#   ferrovsd  our daemon, L2 learning bridge, two vhost-user server ports
#   ovs       OVS-DPDK (ovs-vswitchd-dpdk), netdev bridge, NORMAL action,
#             two dpdkvhostuser ports
#   testpmd   dpdk-testpmd with two net_vhost ports in io forwarding: no
#             switching at all, the floor of moving packets through two rings
#
# Generator/sink: one dpdk-testpmd confined to CPU 0, io forwarding on one
# lcore, port topology "paired":
#   port 0 net_pcap (one frame, replayed)  ->  port 1 virtio-user A  ==> switch
#   switch ==> port 2 virtio-user B  ->  port 3 net_null (no-rx=1)
# "start tx_first" first sends one burst from every port, so the switch
# learns B's MAC before the window; the frame goes A -> B as known unicast.
#
# Throughput = packets B received per second in the window. Cycles/packet =
# the switch thread's CPU time (schedstat) x TSC MHz / packets delivered.
# A run where the switch or generator thread got < MIN_SHARE (97%) of what a
# lone busy loop gets on that CPU (measured at start: a VM loses some to the
# hypervisor even when idle) is disturbed: another process or the hypervisor
# took the CPU. It is kept in the JSON, left out of the table, and repeated
# (at most RETRIES times).
#
# usage: benches/e2e/compare.sh [--quick]
#   --quick   1 repeat of 3 s (smoke test)
# env: REPEATS=3 DURATION=10 WARMUP=2 SIZES="64 1518" SWITCHES="ferrovsd ovs testpmd"
#      OUT=benches/e2e/results.json MIN_SHARE=0.97 RETRIES=3 HUGE=auto|on|off
#      FERROVSD=path FERROVS_CTL=path (default: cargo build --release)
#      KEEP=1 (keep the work dir with all logs) QUIET_WAIT=120 (s to wait for idle CPUs before a run)
#      MAX_SECONDS (whole-run watchdog)
set -Eeuo pipefail

usage() { sed -n "/^# usage:/,/^#      MAX_SECONDS/p" "$0" | sed "s/^# \{0,1\}//"; }
QUICK=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
REPEATS=${REPEATS:-3}; DURATION=${DURATION:-10}; WARMUP=${WARMUP:-2}
if [ "$QUICK" = 1 ]; then REPEATS=1; DURATION=3; fi
SIZES=${SIZES:-"64 1518"}; SWITCHES=${SWITCHES:-"ferrovsd ovs testpmd"}
OUT=${OUT:-$root/benches/e2e/results.json}
MIN_SHARE=${MIN_SHARE:-0.97}; RETRIES=${RETRIES:-3}; HUGE=${HUGE:-auto}; KEEP=${KEEP:-0}; QUIET_WAIT=${QUIET_WAIT:-120}
SW_CPU=1; GEN_CPU=0
MAC_A=02:00:00:00:00:0a; MAC_B=02:00:00:00:00:0b
nsz=$(wc -w <<< "$SIZES"); nsw=$(wc -w <<< "$SWITCHES")
MAX_SECONDS=${MAX_SECONDS:-$(( 600 + REPEATS * nsz * nsw * (1 + RETRIES) * (DURATION + WARMUP + 45) + REPEATS * nsz * nsw * QUIET_WAIT ))}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
PMD_DIR=$(ls -d /usr/lib/x86_64-linux-gnu/dpdk/pmds-* 2>/dev/null | head -1 || true)
check_prereqs() {
  [ "$(id -u)" = 0 ] || die "must run as root (DPDK and OVS need it)"
  local c
  for c in taskset timeout stdbuf mkfifo awk; do
    command -v "$c" >/dev/null || die "$c not found: apt-get install coreutils util-linux gawk"
  done
  command -v python3 >/dev/null || die "python3 not found: apt-get install python3"
  command -v dpdk-testpmd >/dev/null || die "dpdk-testpmd not found: apt-get install dpdk-dev"
  local pmd
  for pmd in net_pcap net_null net_vhost net_virtio; do
    ls "$PMD_DIR"/librte_"$pmd".so* >/dev/null 2>&1 ||
      die "DPDK driver $pmd not found under ${PMD_DIR:-/usr/lib/x86_64-linux-gnu/dpdk/pmds-*}: apt-get install dpdk"
  done
  if [[ " $SWITCHES " == *" ovs "* ]]; then
    [ -x "$OVS_VSWITCHD" ] || die "OVS-DPDK not found ($OVS_VSWITCHD): apt-get install openvswitch-switch-dpdk"
    for c in ovsdb-tool ovsdb-server ovs-vsctl ovs-appctl; do
      command -v "$c" >/dev/null || die "$c not found: apt-get install openvswitch-switch"
    done
    [ -r "$OVS_SCHEMA" ] || die "$OVS_SCHEMA missing: apt-get install openvswitch-common"
  fi
  [ -r /proc/self/task/$$/schedstat ] || die "/proc/*/schedstat missing: kernel without CONFIG_SCHED_INFO"
  grep -q '^1$\|^0-1\|^0,1' /sys/devices/system/cpu/online 2>/dev/null ||
    [ "$(nproc --all)" -ge 2 ] || die "needs CPUs 0 and 1 online (generator on 0, switch on 1)"
  taskset -c "$GEN_CPU,$SW_CPU" true 2>/dev/null || die "cannot run on CPUs $GEN_CPU and $SW_CPU (cpuset/affinity limits?)"
  local w
  for w in $SIZES; do [[ $w =~ ^[0-9]+$ ]] && [ "$w" -ge 64 ] && [ "$w" -le 1518 ] || die "SIZES: $w is not 64..1518"; done
  for w in $SWITCHES; do [[ $w =~ ^(ferrovsd|ovs|testpmd)$ ]] || die "SWITCHES: unknown switch $w"; done
}
check_prereqs

# TSC rate: the kernel's calibrated "cpu MHz" (constant_tsc on this class of machine).
MHZ=$(awk -F: '/^cpu MHz/ {gsub(/ /, "", $2); print $2; exit}' /proc/cpuinfo)
[ -n "$MHZ" ] || die "cannot read cpu MHz from /proc/cpuinfo"
grep -q constant_tsc /proc/cpuinfo || log "warning: no constant_tsc flag: cycles/packet use cpu MHz $MHZ, which may vary"

# Switch memory: 2 MiB hugepages when enough are free (no hugetlbfs files: --in-memory
# for DPDK, anonymous mappings for ferrovsd), else normal pages for every switch.
free_hp=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo); hp_kb=$(awk '/Hugepagesize/ {print $2}' /proc/meminfo)
case $HUGE in
  auto) if [ "$hp_kb" = 2048 ] && [ "${free_hp:-0}" -ge 160 ]; then HUGE=on; else HUGE=off; fi ;;
  on|off) ;;
  *) die "HUGE must be auto, on or off" ;;
esac
if [ "$HUGE" = on ]; then
  [ "${free_hp:-0}" -ge 160 ] || die "HUGE=on needs 160 free 2 MiB hugepages, $free_hp free"
  SW_EAL_MEM=(--in-memory -m 256)
else
  log "ferrovsd and testpmd on normal pages (HUGE=off, or fewer than 160 free hugepages: $free_hp)"
  SW_EAL_MEM=(--no-huge -m 512)
fi
# OVS 3.1 always adds --in-memory to its EAL arguments, which DPDK refuses with
# --no-huge: OVS needs hugepages whatever HUGE says.
OVS_EAL_MEM="--in-memory"; OVS_MEM_KV=(other_config:dpdk-socket-mem=256 other_config:dpdk-socket-limit=256)
if [[ " $SWITCHES " == *" ovs "* ]] && { [ "$hp_kb" != 2048 ] || [ "${free_hp:-0}" -lt 160 ]; }; then
  die "OVS-DPDK needs 160 free 2 MiB hugepages (it always runs DPDK --in-memory), $free_hp free: reserve some with
  echo \$(( \$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages) + 160 )) > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
or leave OVS out: SWITCHES=\"ferrovsd testpmd\""
fi

# ---------------------------------------------------------------- state and cleanup
W=$(mktemp -d /tmp/fvb.XXXXXX)           # short: vhost-user socket paths must fit 108 bytes
PFX=fvb$$                                 # DPDK --file-prefix of everything we start
RUNS=$W/runs.jsonl; : > "$RUNS"
declare -a PIDS=()                        # every process we started (some already gone)
GEN_FD=; SWTP_FD=; GEN_PID=; SWTP_PID=; OVSDB_PID=; SW_PID=; WATCHDOG=; FV_CTL=(); MEASURE_ARGS=(); SW_LOGS=()

starttime() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
track() { PIDS+=("$1:$(starttime "$1")"); }   # pid:start time, so a recycled pid is never signalled
owned() { # PID: one we started and that still is that process
  local e
  for e in "${PIDS[@]}"; do [ "${e%%:*}" = "$1" ] && [ "${e#*:}" = "$(starttime "$1")" ] && return 0; done
  return 1
}
alive() { # PID: running and not a zombie
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}
stop_pid() { # PID [GRACE_S]: SIGTERM, then SIGKILL after GRACE_S; only processes we started
  local pid=${1:-} grace=${2:-10} i
  [ -n "$pid" ] && owned "$pid" || return 0
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then log "pid $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
}
# Runs a command in the background and waits for it: bash runs the INT/TERM
# traps at once while in `wait`, whereas a foreground child (e.g. under
# `timeout`, which has its own process group) would delay or swallow Ctrl-C.
bg_wait() { "$@" & local p=$!; track "$p"; wait "$p"; }
dpdk_leftovers() { # removes what DPDK processes with our prefix may leave behind
  rm -rf /var/run/dpdk/"$PFX"-* 2>/dev/null || true
  local m
  for m in $(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts); do rm -f "$m"/"$PFX"-* 2>/dev/null || true; done
}
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$WATCHDOG" ] && { pkill -P "$WATCHDOG" sleep; kill "$WATCHDOG"; } 2>/dev/null
  [ -n "$GEN_FD" ] && { echo quit >&"$GEN_FD"; exec {GEN_FD}>&-; } 2>/dev/null
  [ -n "$SWTP_FD" ] && { echo quit >&"$SWTP_FD"; exec {SWTP_FD}>&-; } 2>/dev/null
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]%%:*}" 5; done
  dpdk_leftovers
  if [ "$KEEP" = 1 ]; then log "work dir kept: $W"; else rm -rf "$W"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (watchdog after ${MAX_SECONDS}s, or SIGTERM)"; exit 143' TERM
# Watchdog; its fds go to /dev/null so that it never holds a caller's pipe open.
( sleep "$MAX_SECONDS" && kill -TERM $$ ) < /dev/null > /dev/null 2>&1 &
WATCHDOG=$!

nap() { sleep "$1" & wait $! || true; }          # interruptible sleep
wait_until() { # TIMEOUT_S WHAT COMMAND...: polls COMMAND every 0.1 s
  local t=$1 what=$2 i; shift 2
  for ((i = 0; i < t * 10; i++)); do "$@" 2>/dev/null && return 0; sleep 0.1; done
  log "timed out after ${t}s waiting for $what"; return 1
}
tid_of() { # PID COMM-REGEX: id of the first thread whose name matches
  local t
  for t in /proc/"$1"/task/*; do
    grep -Eq "$2" "$t/comm" 2>/dev/null && { basename "$t"; return 0; }
  done
  return 1
}
wait_tid() { # PID COMM-REGEX TIMEOUT_S
  local i
  for ((i = 0; i < $3 * 10; i++)); do tid_of "$1" "$2" && return 0; alive "$1" || return 1; sleep 0.1; done
  return 1
}
show_log() { # FILE [LINES]: the tail of a log, indented, to stderr
  [ -f "$1" ] && { echo "  --- $1 (last ${2:-25} lines):"; tail -n "${2:-25}" "$1" | sed 's/^/  | /'; } >&2 || true
}

# ---------------------------------------------------------------- testpmd sessions
# An interactive testpmd reads commands from a fifo (held open read-write by
# us, so it never sees EOF) and writes to a log; tpctl.py runs one command.
tp_start() { # NAME CPU ARGS...: sets <NAME>_PID and <NAME>_FD; 0 when the prompt appeared
  local name=$1 cpu=$2; shift 2
  local fifo=$W/$name.in logf=$W/$name.log fd
  rm -f "$fifo"; mkfifo "$fifo"; : > "$logf"
  exec {fd}<>"$fifo"
  taskset -c "$cpu" stdbuf -o0 -e0 dpdk-testpmd "$@" < "$fifo" > "$logf" 2>&1 &
  local pid=$!; track "$pid"
  printf -v "${name}_PID" %s "$pid"; printf -v "${name}_FD" %s "$fd"
  local i
  for ((i = 0; i < 400; i++)); do
    if grep -q 'testpmd> ' "$logf"; then
      if grep -Eq 'Failed to start device|Failed to recv msg|Fail to start port|Port [0-9]+ can not be set|EAL: Error' "$logf"; then
        return 1
      fi
      return 0
    fi
    alive "$pid" || return 1
    sleep 0.1
  done
  return 1
}
tp_stop() { # NAME
  local fdv=${1}_FD pidv=${1}_PID
  if [ -n "${!fdv:-}" ]; then
    echo quit >&"${!fdv}" 2>/dev/null || true
    local i; for ((i = 0; i < 100; i++)); do alive "${!pidv}" || break; sleep 0.1; done
    eval "exec ${!fdv}>&-"
    printf -v "$fdv" %s ""
  fi
  stop_pid "${!pidv}" 5
}
tp() { # NAME COMMAND: prints the command's output
  python3 "$here/tpctl.py" "$W/$1.in" "$W/$1.log" "$2" 15
}

# ---------------------------------------------------------------- the switches
# start_<switch> sets SW_PID (process), SW_TID (PMD thread), SOCK0, SOCK1, SW_LOGS,
# and MEASURE_ARGS (how measure.py reads the switch's own counters).

start_ferrovsd() {
  local d=$W/fv
  rm -rf "$d"; mkdir -p "$d/run"
  # The embedded default config (bridge br0, vhost0.sock, vhost1.sock), but always polling.
  "$FV_BIN" --print-default-config > "$d/default.toml"
  sed -E 's/^sleep-max *=.*/sleep-max = 0/' "$d/default.toml" > "$d/bench.toml"
  [ "$HUGE" = off ] && sed -i -E 's/^hugepages *=.*/hugepages = "off"/' "$d/bench.toml"
  grep -q '^sleep-max = 0' "$d/bench.toml" || { log "ferrovsd's default config has no [pmd] sleep-max line"; return 1; }
  FERROVS_LOG=info taskset -c "$SW_CPU" "$FV_BIN" --config "$d/bench.toml" --run-dir "$d/run" \
    --pmd-cores "$SW_CPU" > "$d/ferrovsd.log" 2>&1 &
  SW_PID=$!; track "$SW_PID"
  SOCK0=$d/run/vhost0.sock; SOCK1=$d/run/vhost1.sock; SW_LOGS=("$d/ferrovsd.log")
  wait_until 20 "ferrovsd's sockets" test -S "$d/run/ferrovsd.sock" -a -S "$SOCK0" -a -S "$SOCK1" || return 1
  SW_TID=$(wait_tid "$SW_PID" "^pmd$SW_CPU\$" 10) || { log "ferrovsd has no thread named pmd$SW_CPU"; return 1; }
  FV_CTL=("$FV_CTL_BIN" --socket "$d/run/ferrovsd.sock")
  MEASURE_ARGS=(ctl="$FV_CTL_BIN" ctl_socket="$d/run/ferrovsd.sock")
}
stop_ferrovsd() {
  stop_pid "$SW_PID" 10
  if [ -e "$SOCK0" ] || [ -e "$W/fv/run/ferrovsd.sock" ]; then log "note: ferrovsd left sockets behind after SIGTERM"; fi
}
post_ferrovsd() { # facts after the window, for the JSON: learned MACs, flooding
  timeout 10 "${FV_CTL[@]}" --json fdb-show 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"fdb": [e.get("mac") for e in d.get("entries", [])]}))' ||
    echo '{}'
}

start_ovs() {
  local d=$W/ovs
  rm -rf "$d"; mkdir -p "$d"
  OVSDB=unix:$d/db.sock
  ovsenv() { OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d "$@"; }
  vsctl() { ovsenv timeout 60 ovs-vsctl --db="$OVSDB" --timeout=45 "$@"; }
  ovsenv timeout 20 ovsdb-tool create "$d/conf.db" "$OVS_SCHEMA" || return 1
  # `env`, not a shell function, so that $! is the daemon itself.
  env OVS_RUNDIR="$d" OVS_DBDIR="$d" OVS_LOGDIR="$d" OVS_SYSCONFDIR="$d" \
    taskset -c "$SW_CPU" ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" \
    --pidfile="$d/ovsdb-server.pid" --unixctl="$d/ovsdb-server.ctl" \
    --log-file="$d/ovsdb-server.log" -vconsole:off > "$d/ovsdb-server.out" 2>&1 &
  OVSDB_PID=$!; track "$OVSDB_PID"
  wait_until 20 "ovsdb-server's socket" test -S "$d/db.sock" || return 1
  vsctl --no-wait init || return 1
  vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
    other_config:pmd-cpu-mask="$(printf '0x%x' $((1 << SW_CPU)))" \
    "other_config:dpdk-extra=$OVS_EAL_MEM --no-pci --file-prefix=$PFX-ovs" \
    other_config:per-port-memory=true "${OVS_MEM_KV[@]}" || return 1
  # The whole daemon on CPU 1: its non-PMD threads (main, handlers,
  # revalidators, vhost events) share the switch's core, not the generator's.
  env OVS_RUNDIR="$d" OVS_DBDIR="$d" OVS_LOGDIR="$d" OVS_SYSCONFDIR="$d" \
    taskset -c "$SW_CPU" "$OVS_VSWITCHD" "$OVSDB" --pidfile="$d/ovs-vswitchd.pid" \
    --unixctl="$d/ovs-vswitchd.ctl" --log-file="$d/ovs-vswitchd.log" -vconsole:off > "$d/ovs-vswitchd.out" 2>&1 &
  SW_PID=$!; track "$SW_PID"
  SW_LOGS=("$d/ovs-vswitchd.log")
  local i
  for ((i = 0; ; i++)); do
    [ "$(vsctl get Open_vSwitch . dpdk_initialized 2>/dev/null)" = true ] && break
    alive "$SW_PID" || { log "ovs-vswitchd exited during DPDK init"; return 1; }
    ((i < 300)) || { log "timed out after 60s waiting for OVS DPDK init"; return 1; }
    sleep 0.2
  done
  vsctl add-br br0 -- set bridge br0 datapath_type=netdev || return 1
  vsctl add-port br0 vhu0 -- set Interface vhu0 type=dpdkvhostuser || return 1
  vsctl add-port br0 vhu1 -- set Interface vhu1 type=dpdkvhostuser || return 1
  SOCK0=$d/vhu0; SOCK1=$d/vhu1
  wait_until 30 "OVS vhost-user sockets" test -S "$SOCK0" -a -S "$SOCK1" || return 1
  SW_TID=$(wait_tid "$SW_PID" "^pmd-c0*$SW_CPU/" 20) || { log "ovs-vswitchd has no PMD thread on core $SW_CPU"; return 1; }
  OVS_CTL=$d/ovs-vswitchd.ctl
  MEASURE_ARGS=(appctl="$OVS_CTL" ovsdb="$OVSDB")
}
stop_ovs() {
  local d=$W/ovs
  if alive "$SW_PID"; then timeout 20 ovs-appctl -t "$d/ovs-vswitchd.ctl" exit --cleanup >/dev/null 2>&1 || true; fi
  local i; for ((i = 0; i < 100; i++)); do alive "$SW_PID" || break; sleep 0.1; done
  stop_pid "$SW_PID" 5
  if alive "${OVSDB_PID:-}"; then timeout 10 ovs-appctl -t "$d/ovsdb-server.ctl" exit >/dev/null 2>&1 || true; fi
  for ((i = 0; i < 50; i++)); do alive "${OVSDB_PID:-}" || break; sleep 0.1; done
  stop_pid "${OVSDB_PID:-}" 5
}
post_ovs() {
  timeout 10 ovs-appctl -t "$OVS_CTL" fdb/show br0 2>/dev/null |
    python3 -c 'import json,sys; print(json.dumps({"fdb": [l.split()[2] for l in sys.stdin if l.split()[:1] != ["port"] and len(l.split()) > 3]}))' ||
    echo '{}'
}

start_testpmd() {
  local d=$W/tp
  rm -rf "$d"; mkdir -p "$d"
  SOCK0=$d/vh0.sock; SOCK1=$d/vh1.sock
  # lcore 1 forwards, lcore 0 (main) only reads the command fifo; both on CPU 1.
  tp_start SWTP "$SW_CPU" --lcores "0@$SW_CPU,1@$SW_CPU" --main-lcore 0 --no-pci "${SW_EAL_MEM[@]}" \
    --file-prefix "$PFX-tp" --vdev "net_vhost0,iface=$SOCK0,queues=1" --vdev "net_vhost1,iface=$SOCK1,queues=1" \
    -- -i --forward-mode=io --port-topology=paired --nb-cores=1 --burst=32 --no-mlockall \
    --total-num-mbufs=16384 --record-core-cycles || return 1
  SW_PID=$SWTP_PID; SW_LOGS=("$W/SWTP.log")
  tp SWTP start > /dev/null || return 1
  SW_TID=$(wait_tid "$SW_PID" '^(rte|lcore)-worker-1$' 10) || { log "switch testpmd has no worker thread for lcore 1"; return 1; }
  MEASURE_ARGS=(sw_fifo="$W/SWTP.in" sw_log="$W/SWTP.log")
}
stop_testpmd() { tp_stop SWTP; rm -rf /var/run/dpdk/"$PFX"-tp; }
post_testpmd() { echo '{}'; }

# ---------------------------------------------------------------- generator
start_gen() { # SIZE: the generator/sink testpmd on CPU 0, retried on virtio-user start failures
  local size=$1 try
  for try in 1 2 3; do
    # lcore 0 forwards, lcore 1 (main) reads commands: both on CPU 0, so no
    # generator thread ever runs on the switch's CPU.
    if tp_start GEN "$GEN_CPU" --lcores "0@$GEN_CPU,1@$GEN_CPU" --main-lcore 1 --no-pci \
        --no-huge -m 1024 --file-prefix "$PFX-gen" \
        --vdev "net_pcap0,rx_pcap=$W/frame$size.pcap,infinite_rx=1" \
        --vdev "net_virtio_user0,path=$SOCK0,queues=1,queue_size=1024,mac=$MAC_A" \
        --vdev "net_virtio_user1,path=$SOCK1,queues=1,queue_size=1024,mac=$MAC_B" \
        --vdev "net_null0,no-rx=1" \
        -- -i --forward-mode=io --port-topology=paired --nb-cores=1 --burst=32 --no-mlockall \
        --total-num-mbufs=32768 --rxd=1024 --txd=1024 --eth-peer=1,"$MAC_B" --eth-peer=2,"$MAC_A"; then
      if grep -qi "Port 1: $MAC_A" "$W/GEN.log" && grep -qi "Port 2: $MAC_B" "$W/GEN.log"; then
        GEN_TID=$(wait_tid "$GEN_PID" '^(rte|lcore)-worker-0$' 10) && return 0
        log "generator: no worker thread for lcore 0"
      else
        log "generator: ports not in the expected order (1 = A $MAC_A, 2 = B $MAC_B)"
      fi
    fi
    log "generator start $try/3 failed (DPDK 22.11 virtio-user flakes under load)"; show_log "$W/GEN.log" 12
    tp_stop GEN; rm -rf /var/run/dpdk/"$PFX"-gen
    nap 1
  done
  return 1
}

# ---------------------------------------------------------------- one run
cpu_busy() { # fraction of the busier of CPUs 0/1 used in the last second (by anything)
  local a b
  a=$(awk '/^cpu[01] / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat | paste -sd' ')
  sleep 1
  b=$(awk '/^cpu[01] / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat | paste -sd' ')
  python3 -c '
import sys
a = list(map(int, sys.argv[1].split())); b = list(map(int, sys.argv[2].split()))
print(max((b[i] - a[i]) / max(1, b[i] - a[i] + b[i + 1] - a[i + 1]) for i in (0, 2)))' "$a" "$b"
}
quiet_wait() { # waits (up to QUIET_WAIT s) until nothing else keeps CPU 0 or 1 busy
  local t0=$SECONDS busy warned=
  while :; do
    busy=$(cpu_busy)
    python3 -c "import sys; sys.exit(0 if float('$busy') < 0.15 else 1)" && return 0
    if [ -z "$warned" ]; then
      log "CPUs 0/1 are $(python3 -c "print(round(100*$busy))")% busy before the run (other jobs?); waiting up to ${QUIET_WAIT}s. Top:"
      ps -eo pid,pcpu,etime,comm --sort=-pcpu | sed -n '2,5p' | sed 's/^/    /' >&2
      warned=1
    fi
    if ((SECONDS - t0 >= QUIET_WAIT)); then log "still busy: running anyway (the CPU-share check will tell)"; return 0; fi
    nap 4
  done
}

run_one() { # SWITCH SIZE REP ATTEMPT: appends one JSON line to $RUNS; 1 if the run failed
  local sw=$1 size=$2 rep=$3 attempt=$4 line
  quiet_wait
  SW_PID=; SW_TID=; GEN_PID=; GEN_TID=; MEASURE_ARGS=(); SW_LOGS=()
  local fail=
  if ! "start_$sw"; then
    fail="$sw did not start"
  elif ! start_gen "$size"; then
    fail="generator did not start against $sw"
  elif ! tp GEN "start tx_first" > /dev/null; then
    fail="generator did not start forwarding"
  fi
  if [ -z "$fail" ]; then
    nap "$WARMUP"
    bg_wait timeout $((DURATION + 60)) python3 "$here/measure.py" switch="$sw" size="$size" rep="$rep" \
      attempt="$attempt" duration="$DURATION" mhz="$MHZ" min_share="$MIN_SHARE" sw_cpu="$SW_CPU" \
      sw_pid="$SW_PID" sw_tid="$SW_TID" gen_pid="$GEN_PID" gen_tid="$GEN_TID" \
      gen_fifo="$W/GEN.in" gen_log="$W/GEN.log" base_sw="$BASE_SW" base_gen="$BASE_GEN" "${MEASURE_ARGS[@]}" \
      > "$W/measure.out" && line=$(cat "$W/measure.out") || line=
    [ -n "$line" ] || fail="measurement timed out"
    if [ -n "$line" ]; then
      local post; post=$("post_$sw" 2>/dev/null || echo '{}')
      line=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["post"]=json.loads(sys.argv[2] or "{}"); print(json.dumps(r))' "$line" "$post")
    fi
    tp GEN stop > "$W/gen-stop.txt" 2>&1 || true
  fi
  if [ -n "$fail" ]; then
    line=$(python3 -c 'import json,sys; print(json.dumps({"switch": sys.argv[1], "size": int(sys.argv[2]), "rep": int(sys.argv[3]), "attempt": int(sys.argv[4]), "ok": False, "error": sys.argv[5]}))' \
      "$sw" "$size" "$rep" "$attempt" "$fail")
  fi
  if [[ $line == *'"ok": false'* ]]; then
    log "$sw ${size}B: FAILED: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("error"))' "$line")"
    local f; for f in "${SW_LOGS[@]}"; do show_log "$f" 30; done; show_log "$W/GEN.log" 15
    if [ "$sw" = ferrovsd ] && alive "$SW_PID"; then
      { echo "  --- ferrovs-ctl port-stats / pmd-stats:"; timeout 10 "${FV_CTL[@]}" port-stats; timeout 10 "${FV_CTL[@]}" pmd-stats; } >&2 2>&1 || true
    fi
  fi
  tp_stop GEN; rm -rf /var/run/dpdk/"$PFX"-gen
  "stop_$sw"
  dpdk_leftovers
  echo "$line" >> "$RUNS"
  python3 "$here/summarize.py" --line "$line" >&2
  [[ $line != *'"ok": false'* ]]
}

# ---------------------------------------------------------------- main
# ferrovsd: explicit binaries, or build. Copies are run, so a concurrent
# `cargo build` cannot swap the binary under a measurement.
if [ -z "${FERROVSD:-}" ] && [[ " $SWITCHES " == *" ferrovsd "* ]]; then
  command -v cargo >/dev/null || die "cargo not found (install Rust), or set FERROVSD= and FERROVS_CTL="
  log "building ferrovsd (cargo build --release)"
  bg_wait timeout 1800 cargo build --manifest-path "$root/Cargo.toml" --release --bin ferrovsd --bin ferrovs-ctl >&2 ||
    die "cargo build --release failed; fix the build or set FERROVSD=/path/ferrovsd FERROVS_CTL=/path/ferrovs-ctl"
  FERROVSD=$root/target/release/ferrovsd
fi
FERROVS_CTL=${FERROVS_CTL:-$(dirname "${FERROVSD:-$root/target/release/ferrovsd}")/ferrovs-ctl}

if [[ " $SWITCHES " == *" ferrovsd "* ]]; then
  [ -x "$FERROVSD" ] || die "ferrovsd not found at $FERROVSD (cargo build --release, or set FERROVSD=)"
  [ -x "$FERROVS_CTL" ] || die "ferrovs-ctl not found at $FERROVS_CTL (set FERROVS_CTL=)"
  mkdir -p "$W/bin"; cp "$FERROVSD" "$W/bin/ferrovsd"; cp "$FERROVS_CTL" "$W/bin/ferrovs-ctl"
  FV_BIN=$W/bin/ferrovsd; FV_CTL_BIN=$W/bin/ferrovs-ctl
fi
for size in $SIZES; do python3 "$here/mkpcap.py" "$size" "$W/frame$size.pcap" "$MAC_B" "$MAC_A"; done

META=$W/meta.json
python3 - "$META" <<PY
import json, os, subprocess, sys, time
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception: return ""
fv = "${FERROVSD:-}"
json.dump({
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "command": "benches/e2e/compare.sh" + (" --quick" if "$QUICK" == "1" else ""),
    "repeats": $REPEATS, "duration_s": $DURATION, "warmup_s": $WARMUP, "sizes": "$SIZES".split(),
    "switches": "$SWITCHES".split(), "min_share": $MIN_SHARE, "retries": $RETRIES,
    "tsc_mhz": float("$MHZ"), "switch_cpu": $SW_CPU, "generator_cpu": $GEN_CPU,
    "switch_memory": {"ferrovsd+testpmd": "hugepages-2048kB" if "$HUGE" == "on" else "normal pages", "ovs": "hugepages-2048kB (--in-memory)"},
    "generator_memory": "--no-huge -m 1024 (memfd, 4 KiB pages)",
    "cpu": sh("awk -F: '/model name/ {print \$2; exit}' /proc/cpuinfo"), "kernel": os.uname().release,
    "dpdk": sh("dpkg-query -W -f='\${Version}' dpdk-dev"),
    "ovs": sh("dpkg-query -W -f='\${Version}' openvswitch-switch-dpdk"),
    "ferrovsd": {"path": fv, "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(fv))) if fv and os.path.exists(fv) else None,
                 "version": sh(f"'{fv}' --version") if fv else None,
                 "git": sh("git -C '$root' describe --always --dirty")},
}, open(sys.argv[1], "w"), indent=1)
PY

# What a lone busy loop gets of CPUs 0 and 1 here (a VM loses a few % to the
# hypervisor and to interrupts even when idle): a run is disturbed when a
# forwarding thread got less than MIN_SHARE of that. Best of three 3-s tries.
calibrate() {
  quiet_wait
  local out
  out=$(python3 - "$GEN_CPU" "$SW_CPU" <<'PY'
import os, sys, time
def spin(cpu, secs=3.0):
    os.sched_setaffinity(0, {cpu})
    s0 = int(open("/proc/self/schedstat").read().split()[0]); t0 = time.monotonic_ns()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        pass
    return (int(open("/proc/self/schedstat").read().split()[0]) - s0) / (time.monotonic_ns() - t0)
best = {}
for _ in range(3):
    pids = []
    for cpu in map(int, sys.argv[1:3]):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r); os.write(w, repr(spin(cpu)).encode()); os._exit(0)
        os.close(w); pids.append((cpu, pid, r))
    for cpu, pid, r in pids:
        os.waitpid(pid, 0); v = float(os.read(r, 64)); os.close(r)
        best[cpu] = max(best.get(cpu, 0), v)
print(best[int(sys.argv[1])], best[int(sys.argv[2])])
PY
  ) || out="1 1"
  read -r BASE_GEN BASE_SW <<< "$out"
  log "a lone busy loop gets $(python3 -c "print(f'{100*$BASE_GEN:.1f}% of CPU $GEN_CPU and {100*$BASE_SW:.1f}% of CPU $SW_CPU')") here"
  if python3 -c "import sys; sys.exit(0 if min($BASE_GEN, $BASE_SW) < 0.85 else 1)"; then
    log "warning: the machine is noisy (busy loops get < 85% of a core); using 85% as the baseline"
    BASE_GEN=$(python3 -c "print(max($BASE_GEN, 0.85))"); BASE_SW=$(python3 -c "print(max($BASE_SW, 0.85))")
  fi
}

log "switches: $SWITCHES | sizes: $SIZES | $REPEATS x ${DURATION}s after ${WARMUP}s warm-up | TSC $MHZ MHz | hugepages for ferrovsd/testpmd: $HUGE, OVS: on | watchdog ${MAX_SECONDS}s"
# Interleaved: every repeat visits every (size, switch) once, so slow drifts of
# the machine hit all switches alike.
for rep in $(seq "$REPEATS"); do
  calibrate          # again every repeat: what the hypervisor leaves us drifts
  for size in $SIZES; do
    for sw in $SWITCHES; do
      for ((attempt = 1; attempt <= 1 + RETRIES; attempt++)); do
        if run_one "$sw" "$size" "$rep" "$attempt"; then
          tail -1 "$RUNS" | grep -q '"disturbed": true' || break
          [ "$attempt" -le "$RETRIES" ] && log "$sw ${size}B: disturbed (a thread got < $MIN_SHARE of its core): repeating"
        else
          [ "$attempt" -le "$RETRIES" ] && log "$sw ${size}B: failed: repeating"
        fi
      done
    done
  done
done

mkdir -p "$(dirname "$OUT")"
python3 "$here/summarize.py" --meta "$META" "$RUNS" "$OUT"
log "results: $OUT"
