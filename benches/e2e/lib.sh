# Shared by the end-to-end scripts (compare.sh, netns.sh): checks and
# set-up, the work directory and its cleanup, testpmd sessions on a fifo,
# OVS-DPDK in its own run directory, the switch's own cycle accounting.
# The sourcing script sets SCRIPT, SWITCHES, here and root first.

die() { echo "$SCRIPT: $*" >&2; exit 1; }
for c in dpdk-testpmd stdbuf python3; do command -v "$c" >/dev/null || die "$c not found (apt-get install dpdk-dev coreutils python3)"; done
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
if [[ " $SWITCHES " == *" ovs"[\ +]* ]]; then
  [ -x "$OVS_VSWITCHD" ] || die "OVS-DPDK not found: apt-get install openvswitch-switch-dpdk"
  command -v ovsdb-server >/dev/null || die "ovsdb-server not found: apt-get install openvswitch-switch"
fi
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (switch on CPU 1, generator on CPU 0)"
# OVS-DPDK needs 1 GiB of 2 MiB hugepages (it always runs --in-memory).
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [[ " $SWITCHES " == *" ovs"[\ +]* ]] && [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -lt 700 ]; then
  echo $(( $(cat "$hp") + 768 )) > "$hp" 2>/dev/null || die "OVS-DPDK needs ~700 free 2 MiB hugepages: echo 1024 > $hp"
fi

if [ -z "${FERROVSD:-}" ]; then
  (cd "$root" && cargo build --release --locked --features switch/dpdk,ferrovs-testpmd/dpdk --bin ferrovsd --bin ferrovs-ctl --bin ferrovs-testpmd >&2)
  FERROVSD=$root/target/release/ferrovsd; FERROVS_CTL=$root/target/release/ferrovs-ctl
  FERROVS_TESTPMD=${FERROVS_TESTPMD:-$root/target/release/ferrovs-testpmd}
fi
FERROVS_TESTPMD=${FERROVS_TESTPMD:-$root/target/release/ferrovs-testpmd}

W=$(mktemp -d /tmp/fvbench.XXXX)
RUNS=$W/runs.jsonl; : > "$RUNS"
MHZ=$(awk -F: '/cpu MHz/ {print $2; exit}' /proc/cpuinfo)
declare -a PIDS=()

cleanup() {
  set +e
  for fd in ${GEN_FD:-} ${SWTP_FD:-}; do { exec {fd}>&-; } 2>/dev/null; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; rm -rf "/var/run/dpdk/ferrovsd$p" "/var/run/dpdk/fvtp$p"; done
  if [ -f "$W/ovs/ovs-vswitchd.pid" ]; then kill -9 "$(cat "$W/ovs/ovs-vswitchd.pid")" 2>/dev/null; fi
  if [ -f "$W/ovs/ovsdb-server.pid" ]; then kill -9 "$(cat "$W/ovs/ovsdb-server.pid")" 2>/dev/null; fi
  if declare -F extra_cleanup > /dev/null; then extra_cleanup; fi
  rm -rf /var/run/dpdk/fvb-* "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tid_of() { # PID COMM-REGEX -> first thread id whose comm matches
  local pid=$1 re=$2 t
  for t in /proc/"$pid"/task/*; do
    if grep -Eq "$re" "$t/comm" 2>/dev/null; then basename "$t"; return 0; fi
  done
  return 1
}
cpu_ns() { awk '{print $1}' "/proc/$1/task/$2/schedstat"; }

# testpmd interactive sessions fed through a fifo; output to a log.
# With IN_NETNS=NS set, testpmd runs inside network namespace NS.
start_testpmd() { # NAME ARGS... ; sets ${NAME}_PID and ${NAME}_FD
  local name=$1; shift
  rm -f "$W/$name.in"; mkfifo "$W/$name.in"
  local wrap=(); [ -n "${IN_NETNS:-}" ] && wrap=(ip netns exec "$IN_NETNS")
  "${wrap[@]}" stdbuf -o0 -e0 dpdk-testpmd "$@" < "$W/$name.in" > "$W/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local fd; exec {fd}> "$W/$name.in"
  printf -v "${name}_PID" %s "$pid"; printf -v "${name}_FD" %s "$fd"
  local i
  for i in $(seq 300); do
    grep -q "testpmd> " "$W/$name.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "--- $name did not start:" >&2; tail -20 "$W/$name.log" >&2; return 1
}
tp_cmd() { # NAME CMD -> prints the command's output
  local name=$1 cmd=$2 fdv="${1}_FD" log="$W/$1.log"
  local before; before=$(stat -c %s "$log")
  echo "$cmd" >&"${!fdv}"; echo "show config fwd-marker" >&"${!fdv}"
  local i
  for i in $(seq 200); do
    if tail -c +"$((before + 1))" "$log" | grep -q "testpmd> show config fwd-marker"; then
      tail -c +"$((before + 1))" "$log" | sed '/testpmd> show config fwd-marker/,$d'; return 0
    fi
    sleep 0.05
  done
  return 1
}
stop_testpmd() { # NAME
  local fdv="${1}_FD" pidv="${1}_PID"
  local fd=${!fdv}
  echo "quit" >&"$fd" 2>/dev/null || true
  { exec {fd}>&-; } 2>/dev/null || true
  local i; for i in $(seq 50); do kill -0 "${!pidv}" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "${!pidv}" 2>/dev/null || true
}

# --- OVS-DPDK: its own db, run dir and log; PMD on CPU 1, everything else on CPU 0
start_ovs_daemon() { # OVS-DPDK with an empty netdev bridge br0; sets VSCTL, SW_PID, SW_TID_RE
  local d=$W/ovs; mkdir -p "$d"
  export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" --pidfile="$d/ovsdb-server.pid" --detach --log-file="$d/ovsdb-server.log" 2>> "$d/stderr.log"
  VSCTL=(ovs-vsctl --db=unix:"$d/db.sock" --timeout=30)
  "${VSCTL[@]}" --no-wait init
  "${VSCTL[@]}" --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:pmd-cpu-mask=0x2 \
    other_config:dpdk-lcore-mask=0x1 other_config:dpdk-socket-mem=1024 \
    "other_config:dpdk-extra=--no-pci --file-prefix fvb-ovs" other_config:per-port-memory="${OVS_PER_PORT_MEMORY:-true}"
  # OVS always adds --in-memory (no hugepage files), which rules out --no-huge.
  taskset -c 0 "$OVS_VSWITCHD" unix:"$d/db.sock" --pidfile="$d/ovs-vswitchd.pid" --detach --log-file="$d/ovs-vswitchd.log" 2>> "$d/stderr.log"
  "${VSCTL[@]}" add-br br0 -- set bridge br0 datapath_type=netdev
  SW_PID=$(cat "$d/ovs-vswitchd.pid"); SW_TID_RE='^pmd-c0?1'
}
stop_ovs() {
  ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" exit --cleanup 2>/dev/null || kill "$(cat "$W/ovs/ovs-vswitchd.pid")"
  ovs-appctl -t "$W/ovs/ovsdb-server.$(cat "$W/ovs/ovsdb-server.pid").ctl" exit 2>/dev/null || kill "$(cat "$W/ovs/ovsdb-server.pid")"
  sleep 0.5; rm -rf "$W/ovs"; unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
}


# Cycles the switch spent in iterations that moved packets, per packet: its own
# accounting (ferrovsd pmd-stats, OVS pmd-stats-show); testpmd has none.
proc_begin() {
  local s=${1%+churn}; s=${s%@*}
  case $s in
    ferrovsd*) "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" --json pmd-stats > "$W/proc0.json" ;;
    ovs) ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" dpif-netdev/pmd-stats-clear > /dev/null ;;
  esac
}
proc_end() { # -> cycles per packet, or null
  local s=${1%+churn}; s=${s%@*}
  case $s in
    ferrovsd*)
      "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" --json pmd-stats > "$W/proc1.json"
      python3 -c "import json,sys; a=json.load(open(sys.argv[1]))[0]; b=json.load(open(sys.argv[2]))[0]; p=b['packets']-a['packets']; print((b['busy_cycles']-a['busy_cycles'])/p if p else 'null')" "$W/proc0.json" "$W/proc1.json" ;;
    ovs)
      ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" dpif-netdev/pmd-stats-show | awk '/avg processing cycles per packet:/ {print $6; f=1; exit} END {if (!f) print "null"}' ;;
    *) echo null ;;
  esac
}

kill_leftovers() { # after a failed try: nothing of it may survive into the next
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; rm -rf "/var/run/dpdk/ferrovsd$p" "/var/run/dpdk/fvtp$p"; done
  PIDS=()
  if [ -d "$W/ovs" ]; then
    for p in "$W"/ovs/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
    rm -rf "$W/ovs"
  fi
  rm -rf "$W"/fv "$W"/tp "$W"/*.in /var/run/dpdk/fvb-*
  sleep 0.5
}

# One measured run as a JSON line on $RUNS:
#   record_run SWITCH SIZE B0 B1 S0 S1 G0 G1 T0 T1 MHZ PROC GEN
# (sink packets, switch and generator thread CPU ns, wall ns before/after).
record_run() {
  local sw=$1 size=$2 b0=$3 b1=$4 s0=$5 s1=$6 g0=$7 g1=$8 t0=$9 t1=${10} mhz=${11} proc=${12} gen=${13}
  python3 - "$sw" "$size" "$b0" "$b1" "$s0" "$s1" "$g0" "$g1" "$t0" "$t1" "$mhz" "$proc" "$gen" "${GEN_CPU_MIN:-0.97}" "${SW_CPU_MIN:-0.97}" >> "$RUNS" <<'PY'
import json, sys
sw, size = sys.argv[1], int(sys.argv[2])
b0, b1, s0, s1, g0, g1, t0, t1 = map(int, sys.argv[3:11]); mhz = float(sys.argv[11])
proc = None if sys.argv[12] in ("null", "") else float(sys.argv[12])
wall = t1 - t0; pkts = b1 - b0
r = {"switch": sw, "size": size, "generator": sys.argv[13], "packets": pkts, "seconds": wall / 1e9,
     "mpps": pkts / wall * 1e3, "switch_cpu": (s1 - s0) / wall, "gen_cpu": (g1 - g0) / wall,
     "cycles_per_packet": (s1 - s0) * mhz / 1e3 / max(pkts, 1), "processing_cycles_per_packet": proc}
r["disturbed"] = r["switch_cpu"] < float(sys.argv[15]) or r["gen_cpu"] < float(sys.argv[14])
print(json.dumps(r))
PY
  tail -1 "$RUNS" >&2
}

gen_rx_b() { # RX-packets of port 2 (virtio-user B)
  tp_cmd GEN "show port stats 2" | awk '/RX-packets:/ {print $2; exit}'
}

fgen_mpps() { # mean receive rate of B over the measured periods
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['ports'][1]['rx_pps_series'][$WARMUP:$((WARMUP + DURATION))]; print(sum(s)/len(s)/1e6 if s else 0)" "$W/fgen.json"
}

# With the generator running: waits out the warm-up, measures one window
# (B's packets, switch and generator thread CPU, the switch's own busy
# cycles), stops generator and switch (stop_switch of the calling script)
# and records the run. B is port 2 of the dpdk generator, port 1 of ours.
measure_and_record() { # SWITCH SIZE GEN
  local sw=$1 size=$2 gen=$3
  sleep "$WARMUP"
  local sw_tid gen_tid
  sw_tid=$(tid_of "$SW_PID" "$SW_TID_RE") || { echo "no switch thread matching $SW_TID_RE" >&2; ls /proc/"$SW_PID"/task | head >&2; return 1; }
  gen_tid=$(tid_of "$GEN_PID" 'worker-0|lcore-0|^lcore0$') || { echo "no generator worker thread" >&2; return 1; }
  local b0 s0 g0 t0 b1 s1 g1 t1
  proc_begin "$sw"
  b0=0; [ "$gen" = dpdk ] && b0=$(gen_rx_b)
  s0=$(cpu_ns "$SW_PID" "$sw_tid"); g0=$(cpu_ns "$GEN_PID" "$gen_tid"); t0=$(date +%s%N)
  sleep "$DURATION"
  s1=$(cpu_ns "$SW_PID" "$sw_tid"); g1=$(cpu_ns "$GEN_PID" "$gen_tid"); t1=$(date +%s%N)
  local proc; proc=$(proc_end "$sw")
  if [ "$gen" = dpdk ]; then
    b1=$(gen_rx_b)
    stop_testpmd GEN
  else
    wait "$GEN_PID" || true
    # Packets B received in the window, from the generator's own per-second rates.
    b1=$(python3 -c "print(int($(fgen_mpps) * 1e6 * ($t1 - $t0) / 1e9))")
  fi
  stop_switch "$sw"
  record_run "$sw" "$size" "$b0" "$b1" "$s0" "$s1" "$g0" "$g1" "$t0" "$t1" "$MHZ" "$proc" "$gen"
}

# Every (size, repeat, switch, generator) through the calling script's
# run_one; a disturbed or failed run is retried up to 3 times.
run_all_cases() {
  local size rep sw gen try
  for size in $SIZES; do
    for rep in $(seq "$REPEATS"); do
      for sw in $SWITCHES; do
        for gen in $GENS; do
          for try in 1 2 3 4; do
            if run_one "$sw" "$size" "$gen"; then
              tail -1 "$RUNS" | grep -q '"disturbed": true' || break
            else
              kill_leftovers
            fi
            echo "($sw $size B $gen: disturbed or failed run, retrying)" >&2
          done
        done
      done
    done
  done
}
