#!/usr/bin/env bash
# End-to-end comparison: the same DPDK testpmd generator and sink through
#   ferrovsd (L2 learning), OVS-DPDK (NORMAL action) and testpmd net_vhost io
#   forwarding (no switching: the floor of two vhost rings),
# each switch pinned to CPU 1, the generator's forwarding lcore on CPU 0.
#
# usage: benches/e2e/compare.sh [--quick]
# env:   REPEATS=3 DURATION=10 WARMUP=3 SIZES="64 1518" SWITCHES="ferrovsd ovs testpmd"
#        GENS="dpdk ferrovs" LATENCY=1 (ferrovs generator: p50/p99 at 50% of max rate;
#        LAT_PPS=N: at N packets/s for every switch instead; SIZES="" skips throughput)
#        OUT=benches/e2e/results.json FERROVSD=... FERROVS_CTL=... FERROVS_TESTPMD=...
#        (default: build release)
#
# Generators (GENS), each on one lcore on CPU 0:
#   dpdk     one dpdk-testpmd with four ports in io forwarding:
#            net_pcap (one frame, replayed forever) -> virtio-user A ==switch==> virtio-user B -> net_null
#   ferrovs  one ferrovs-testpmd, our virtio-user driver: txonly on A, checking
#            rxonly on B (--port-topology=loop --tx-ports=0)
# Throughput is what B receives per second. Cycles per packet are the switch
# thread's CPU time (schedstat) x TSC rate / packets. A run in which the
# switch or the generator thread got less than 97% of its core is disturbed:
# it is repeated (up to 3 extra tries) and left out of the medians.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

REPEATS=${REPEATS:-3}; DURATION=${DURATION:-10}; WARMUP=${WARMUP:-3}
SIZES=${SIZES-"64 1518"}; SWITCHES=${SWITCHES:-"ferrovsd ovs testpmd"}
GENS=${GENS:-"dpdk"}; LATENCY=${LATENCY:-0}
OUT=${OUT:-$here/results.json}
if [ "${1:-}" = "--quick" ]; then REPEATS=1; DURATION=3; WARMUP=2; fi

die() { echo "compare.sh: $*" >&2; exit 1; }
for c in dpdk-testpmd stdbuf python3; do command -v "$c" >/dev/null || die "$c not found (apt-get install dpdk-dev coreutils python3)"; done
OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
if [[ " $SWITCHES " == *" ovs "* ]]; then
  [ -x "$OVS_VSWITCHD" ] || die "OVS-DPDK not found: apt-get install openvswitch-switch-dpdk"
  command -v ovsdb-server >/dev/null || die "ovsdb-server not found: apt-get install openvswitch-switch"
fi
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (switch on CPU 1, generator on CPU 0)"
# OVS-DPDK needs 1 GiB of 2 MiB hugepages (it always runs --in-memory).
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [[ " $SWITCHES " == *" ovs "* ]] && [ "$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" -lt 700 ]; then
  echo $(( $(cat "$hp") + 768 )) > "$hp" 2>/dev/null || die "OVS-DPDK needs ~700 free 2 MiB hugepages: echo 1024 > $hp"
fi

if [ -z "${FERROVSD:-}" ]; then
  (cd "$root" && cargo build --release --locked --bin ferrovsd --bin ferrovs-ctl --bin ferrovs-testpmd >&2)
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
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [ -f "$W/ovs/ovs-vswitchd.pid" ]; then kill -9 "$(cat "$W/ovs/ovs-vswitchd.pid")" 2>/dev/null; fi
  if [ -f "$W/ovs/ovsdb-server.pid" ]; then kill -9 "$(cat "$W/ovs/ovsdb-server.pid")" 2>/dev/null; fi
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
start_testpmd() { # NAME ARGS... ; sets ${NAME}_PID and ${NAME}_FD
  local name=$1; shift
  rm -f "$W/$name.in"; mkfifo "$W/$name.in"
  stdbuf -o0 -e0 dpdk-testpmd "$@" < "$W/$name.in" > "$W/$name.log" 2>&1 &
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

# --- the three switches: start_<switch> sets SOCK0, SOCK1, SW_PID, SW_TID_RE
start_ferrovsd() {
  mkdir -p "$W/fv"
  printf '[pmd]\nsleep-max = 0\n[[port]]\nname = "vhost0"\ntype = "vhost-user"\npath = "vhost0.sock"\n[[port]]\nname = "vhost1"\ntype = "vhost-user"\npath = "vhost1.sock"\n' > "$W/fv/bench.toml"
  "$FERROVSD" --config "$W/fv/bench.toml" --run-dir "$W/fv/run" --pmd-cores 1 > "$W/fv/log" 2>&1 &
  SW_PID=$!; PIDS+=("$SW_PID")
  SOCK0=$W/fv/run/vhost0.sock; SOCK1=$W/fv/run/vhost1.sock; SW_TID_RE='^pmd1$'
  local i; for i in $(seq 100); do [ -S "$SOCK1" ] && return 0; sleep 0.1; done
  cat "$W/fv/log" >&2; return 1
}
stop_ferrovsd() { kill "$SW_PID"; wait "$SW_PID" 2>/dev/null || true; }

start_ovs() {
  local d=$W/ovs; mkdir -p "$d"
  export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" --pidfile="$d/ovsdb-server.pid" --detach --log-file="$d/ovsdb-server.log" 2>> "$d/stderr.log"
  VSCTL=(ovs-vsctl --db=unix:"$d/db.sock" --timeout=30)
  "${VSCTL[@]}" --no-wait init
  "${VSCTL[@]}" --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:pmd-cpu-mask=0x2 \
    other_config:dpdk-lcore-mask=0x1 other_config:dpdk-socket-mem=1024 \
    "other_config:dpdk-extra=--no-pci --file-prefix fvb-ovs" other_config:per-port-memory=true
  # OVS always adds --in-memory (no hugepage files), which rules out --no-huge.
  taskset -c 0 "$OVS_VSWITCHD" unix:"$d/db.sock" --pidfile="$d/ovs-vswitchd.pid" --detach --log-file="$d/ovs-vswitchd.log" 2>> "$d/stderr.log"
  "${VSCTL[@]}" add-br br0 -- set bridge br0 datapath_type=netdev
  "${VSCTL[@]}" add-port br0 vhu0 -- set Interface vhu0 type=dpdkvhostuser
  "${VSCTL[@]}" add-port br0 vhu1 -- set Interface vhu1 type=dpdkvhostuser
  SW_PID=$(cat "$d/ovs-vswitchd.pid"); SOCK0=$d/vhu0; SOCK1=$d/vhu1; SW_TID_RE='^pmd-c0?1'
  local i; for i in $(seq 100); do [ -S "$SOCK1" ] && return 0; sleep 0.1; done
  tail -20 "$d/ovs-vswitchd.log" >&2; return 1
}
stop_ovs() {
  ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" exit --cleanup 2>/dev/null || kill "$(cat "$W/ovs/ovs-vswitchd.pid")"
  ovs-appctl -t "$W/ovs/ovsdb-server.$(cat "$W/ovs/ovsdb-server.pid").ctl" exit 2>/dev/null || kill "$(cat "$W/ovs/ovsdb-server.pid")"
  sleep 0.5; rm -rf "$W/ovs"; unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
}

start_testpmd_switch() {
  mkdir -p "$W/tp"; SOCK0=$W/tp/vh0.sock; SOCK1=$W/tp/vh1.sock
  start_testpmd SWTP -l 0,1 --main-lcore 0 --no-pci --no-huge -m 1024 --file-prefix fvb-sw \
    --vdev "net_vhost0,iface=$SOCK0" --vdev "net_vhost1,iface=$SOCK1" \
    -- -i --forward-mode=io --nb-cores=1 --no-mlockall --total-num-mbufs=32768
  tp_cmd SWTP start > /dev/null
  SW_PID=$SWTP_PID; SW_TID_RE='worker-1|lcore-1'
}
stop_testpmd_switch() { stop_testpmd SWTP; }

# Cycles the switch spent in iterations that moved packets, per packet: its own
# accounting (ferrovsd pmd-stats, OVS pmd-stats-show); testpmd has none.
proc_begin() {
  case $1 in
    ferrovsd) "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" --json pmd-stats > "$W/proc0.json" ;;
    ovs) ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" dpif-netdev/pmd-stats-clear > /dev/null ;;
  esac
}
proc_end() { # -> cycles per packet, or null
  case $1 in
    ferrovsd)
      "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" --json pmd-stats > "$W/proc1.json"
      python3 -c "import json,sys; a=json.load(open(sys.argv[1]))[0]; b=json.load(open(sys.argv[2]))[0]; p=b['packets']-a['packets']; print((b['busy_cycles']-a['busy_cycles'])/p if p else 'null')" "$W/proc0.json" "$W/proc1.json" ;;
    ovs)
      ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" dpif-netdev/pmd-stats-show | awk '/avg processing cycles per packet:/ {print $6; f=1; exit} END {if (!f) print "null"}' ;;
    *) echo null ;;
  esac
}

gen_rx_b() { # RX-packets of port 2 (virtio-user B)
  tp_cmd GEN "show port stats 2" | awk '/RX-packets:/ {print $2; exit}'
}

kill_leftovers() { # after a failed try: nothing of it may survive into the next
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  PIDS=()
  if [ -d "$W/ovs" ]; then
    for p in "$W"/ovs/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
    rm -rf "$W/ovs"
  fi
  rm -rf "$W"/fv "$W"/tp "$W"/*.in /var/run/dpdk/fvb-*
  sleep 0.5
}

# ferrovs-testpmd as generator (A) and sink (B); its JSON summary goes to $W/fgen.json.
start_ferrovs_gen() { # SIZE SECONDS [EXTRA ARGS...] ; sets GEN_PID
  local size=$1 secs=$2; shift 2
  "$FERROVS_TESTPMD" --port "virtio-user:path=$SOCK0,mac=02:00:00:00:00:01" \
    --port "virtio-user:path=$SOCK1,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
    --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts="$size" --tx-first \
    --lcores 0 --stats-period 1 --duration "$secs" --json --quiet "$@" > "$W/fgen.json" 2> "$W/fgen.err" &
  GEN_PID=$!; PIDS+=("$GEN_PID")
}
fgen_mpps() { # mean receive rate of B over the measured periods
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['ports'][1]['rx_pps_series'][$WARMUP:$((WARMUP + DURATION))]; print(sum(s)/len(s)/1e6 if s else 0)" "$W/fgen.json"
}

start_switch() { case $1 in ferrovsd) start_ferrovsd ;; ovs) start_ovs ;; testpmd) start_testpmd_switch ;; esac; }
stop_switch() { case $1 in ferrovsd) stop_ferrovsd ;; ovs) stop_ovs ;; testpmd) stop_testpmd_switch ;; esac; }

run_one() { # SWITCH SIZE GEN -> appends one JSON line
  local sw=$1 size=$2 gen=$3
  start_switch "$sw"
  if [ "$gen" = dpdk ]; then
    python3 "$here/frames.py" "$size" "$W/f$size.pcap"
    start_testpmd GEN -l 0,1 --main-lcore 1 --no-pci --no-huge -m 1024 --file-prefix fvb-gen \
      --vdev "net_pcap0,rx_pcap=$W/f$size.pcap,infinite_rx=1" \
      --vdev "net_virtio_user0,path=$SOCK0,mac=02:00:00:00:00:01,queue_size=1024" \
      --vdev "net_virtio_user1,path=$SOCK1,mac=02:00:00:00:00:02,queue_size=1024" \
      --vdev "net_null0,no-rx=1" \
      -- -i --forward-mode=io --port-topology=paired --nb-cores=1 --no-mlockall --total-num-mbufs=65536 \
         --rxd=1024 --txd=1024
    # tx_first: every port sends one burst first, so the switch learns B's MAC.
    tp_cmd GEN "start tx_first" > /dev/null
  else
    start_ferrovs_gen "$size" $((WARMUP + DURATION + 1))
  fi
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
  python3 - "$sw" "$size" "$b0" "$b1" "$s0" "$s1" "$g0" "$g1" "$t0" "$t1" "$MHZ" "$proc" "$gen" >> "$RUNS" <<'PY'
import json, sys
sw, size = sys.argv[1], int(sys.argv[2])
b0, b1, s0, s1, g0, g1, t0, t1 = map(int, sys.argv[3:11]); mhz = float(sys.argv[11])
proc = None if sys.argv[12] in ("null", "") else float(sys.argv[12])
wall = t1 - t0; pkts = b1 - b0
r = {"switch": sw, "size": size, "generator": sys.argv[13], "packets": pkts, "seconds": wall / 1e9,
     "mpps": pkts / wall * 1e3, "switch_cpu": (s1 - s0) / wall, "gen_cpu": (g1 - g0) / wall,
     "cycles_per_packet": (s1 - s0) * mhz / 1e3 / max(pkts, 1), "processing_cycles_per_packet": proc}
r["disturbed"] = r["switch_cpu"] < 0.97 or r["gen_cpu"] < 0.97
print(json.dumps(r))
PY
  tail -1 "$RUNS" >&2
}

# Latency at half of the switch's maximum rate (ferrovs-testpmd stamps each
# frame on A with the monotonic clock and B records the difference).
latency_one() { # SWITCH SIZE
  local sw=$1 size=$2 max=0 rate
  start_switch "$sw"
  if [ -n "${LAT_PPS:-}" ]; then
    rate=$LAT_PPS
  else
    start_ferrovs_gen "$size" $((WARMUP + DURATION + 1)); wait "$GEN_PID" || true
    max=$(fgen_mpps)
    rate=$(python3 -c "print(int($max * 1e6 / 2))")
  fi
  start_ferrovs_gen "$size" $((WARMUP + DURATION)) --latency --tx-pps "$rate"; wait "$GEN_PID" || true
  stop_switch "$sw"
  python3 - "$sw" "$size" "$max" "$rate" "$W/fgen.json" >> "$RUNS" <<'PY'
import json, sys
s = json.load(open(sys.argv[5]))
print(json.dumps({"kind": "latency", "switch": sys.argv[1], "size": int(sys.argv[2]), "max_mpps": float(sys.argv[3]),
                  "rate_pps": int(sys.argv[4]), "rx_pps": s["ports"][1]["rx_pps"], "latency": s["latency"],
                  "bad": s["checked"]["bad"]}))
PY
  tail -1 "$RUNS" >&2
}

echo "switches: $SWITCHES; generators: $GENS; sizes: $SIZES; $REPEATS x ${DURATION}s after ${WARMUP}s warm-up; TSC ${MHZ} MHz" >&2
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
if [ "$LATENCY" = 1 ]; then
  for sw in $SWITCHES; do
    [ "$sw" = testpmd ] && continue
    for rep in $(seq "$REPEATS"); do latency_one "$sw" 64 || kill_leftovers; done
  done
fi
python3 "$here/report.py" "$RUNS" "$OUT"
echo "results: $OUT" >&2
