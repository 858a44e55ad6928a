#!/usr/bin/env bash
# Many VM ports on one PMD core (issue 14): a busy pair A -> B (ferrovs-testpmd
# txonly -> checking rxonly, 64 B) with 0, 14, 62, 254, 998 silent connected
# vhost-user ports beside it on the same PMD, for ferrovsd and OVS-DPDK 3.1,
# both with their default settings (ferrovsd: pmd.sleep-max 250 us,
# pmd.rxq-notify-after 1 ms; OVS: busy polling), and `ferrovsd-poll`:
# ferrovsd busy-polling like OVS (sleep-max 0; idle queues still wait for
# kicks). `ferrovsd-nonotify` (not run by default): busy polling of every
# queue, hybrid polling off (sleep-max 0, rxq-notify-after 0) -- what
# hybrid polling costs a busy PMD. The silent ports' peers are the
# virtio-user ports of one ferrovs-testpmd in interrupt mode (rxonly).
# Per (switch, silent ports), per round:
#   - B's receive rate and the PMD's busy cycles per packet (the switch's own
#     accounting), through measure_and_record (lib.sh);
#   - with no traffic: the PMD thread's CPU share over 5 s;
#   - at the smallest and the largest count: one-way latency of 200
#     frames/s from A (silent between frames, so its queue waits for a kick
#     each time) to B.
# Rounds interleave the switches. Prints JSON lines, then medians (ranges)
# and ratios to the same switch with no silent port; draws
# benches/e2e/density.png (Mpps against ports, both switches).
#   benches/e2e/density.sh     env: COUNTS="0 14 62 254 998" SWITCHES="ferrovsd ferrovsd-poll ovs"
#                                   REPEATS=3 DURATION=8 WARMUP=3 OUT=benches/e2e/results-density.json
#                                   PLOT=benches/e2e/density.png
set -euo pipefail
SCRIPT=density.sh
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COUNTS=${COUNTS:-"0 14 62 254 998"}; SWITCHES=${SWITCHES:-"ferrovsd ferrovsd-poll ovs"}
REPEATS=${REPEATS:-3}; DURATION=${DURATION:-8}; WARMUP=${WARMUP:-3}; FLOWS=1
OUT=${OUT:-$here/results-density.json}
# shellcheck source=lib.sh
. "$here/lib.sh"
# The plot needs matplotlib: the first python3 that has it (Debian's after apt-get).
PLOT_PY=
for py in python3 /usr/bin/python3; do "$py" -c "import matplotlib" 2>/dev/null && { PLOT_PY=$py; break; }; done
if [ -z "$PLOT_PY" ]; then
  apt-get install -y -qq python3-matplotlib > /dev/null 2>&1 || true
  /usr/bin/python3 -c "import matplotlib" 2>/dev/null && PLOT_PY=/usr/bin/python3
fi
[ -n "$PLOT_PY" ] || die "matplotlib not found: apt-get install python3-matplotlib"
MAX=$(printf '%s\n' $COUNTS | sort -n | tail -1); MIN=$(printf '%s\n' $COUNTS | sort -n | head -1)
GEN_CPU_MIN=0.9   # the silent peers' process shares the generator's CPU
SW_CPU_MIN=0      # ferrovsd's PMD sleeps when its generator falls behind: by design

# --- switches with 2 + N vhost-user server ports; SOCK0/SOCK1 the pair, SILENT_SOCKS the rest
start_ferrovsd_n() { # N SLEEP_MAX [NOTIFY_AFTER]
  local n=$1 sleep_max=$2 notify=${3:-1000} i
  mkdir -p "$W/fv/run"
  {
    printf '[pmd]\ncores = "1"\nsleep-max = %d\nrxq-notify-after = %d\n[memory]\nn-mbufs = 32768\n' "$sleep_max" "$notify"
    for i in $(seq 0 $((n + 1))); do
      printf '[[port]]\nname = "vhost%d"\ntype = "vhost-user"\npath = "vhost%d.sock"\n' "$i" "$i"
    done
  } > "$W/fv/bench.toml"
  "$FERROVSD" --config "$W/fv/bench.toml" --run-dir "$W/fv/run" --pmd-cores 1 --control-cores 0 \
    --metrics-addr off > "$W/fv/log" 2>&1 &
  SW_PID=$!; PIDS+=("$SW_PID"); SW_TID_RE='^pmd1$'
  SOCK0=$W/fv/run/vhost0.sock; SOCK1=$W/fv/run/vhost1.sock
  SILENT_SOCKS=(); for i in $(seq 2 $((n + 1))); do SILENT_SOCKS+=("$W/fv/run/vhost$i.sock"); done
  for i in $(seq 300); do [ -S "$W/fv/run/vhost$((n + 1)).sock" ] && return 0; sleep 0.1; done
  cat "$W/fv/log" >&2; return 1
}
start_ovs_n() { # N
  local n=$1 i args=()
  # One shared mempool: per-port pools (10 256 mbufs each) exhaust OVS's
  # 1 GiB of socket memory after ~50 ports, and the ports beyond fail to
  # configure (OVS reads the setting only when DPDK starts).
  OVS_PER_PORT_MEMORY=false start_ovs_daemon
  for i in $(seq 0 $((n + 1))); do
    args+=(-- add-port br0 "vhu$i" -- set Interface "vhu$i" type=dpdkvhostuser)
  done
  "${VSCTL[@]}" "${args[@]}"
  SOCK0=$W/ovs/vhu0; SOCK1=$W/ovs/vhu1
  SILENT_SOCKS=(); for i in $(seq 2 $((n + 1))); do SILENT_SOCKS+=("$W/ovs/vhu$i"); done
  for i in $(seq 600); do [ -S "$W/ovs/vhu$((n + 1))" ] && return 0; sleep 0.1; done
  tail -20 "$W/ovs/ovs-vswitchd.log" >&2; return 1
}
stop_switch() {
  [ -n "${SILENT_PID:-}" ] && { kill "$SILENT_PID" 2>/dev/null; wait "$SILENT_PID" 2>/dev/null || true; SILENT_PID=; }
  case ${1%@*} in ferrovsd*) kill "$SW_PID"; wait "$SW_PID" 2>/dev/null || true; rm -rf "$W/fv" ;; ovs) stop_ovs ;; esac
}

# The silent peers: one ferrovs-testpmd, interrupt mode, receiving only.
start_silent() {
  SILENT_PID=
  [ "${#SILENT_SOCKS[@]}" -gt 0 ] || return 0
  local a=() i=0 s
  for s in "${SILENT_SOCKS[@]}"; do
    a+=("--port=virtio-user:path=$s,mac=02:00:00:01:$(printf %02x:%02x $((i >> 8)) $((i & 255))),queue-size=256")
    i=$((i + 1))
  done
  # Every thread of it on CPU 0 (its per-port control threads too): the
  # PMD's CPU is the switch's alone.
  taskset -c 0 "$FERROVS_TESTPMD" "${a[@]}" --forward-mode=rxonly --rx-mode=interrupt --lcores=0 --no-huge \
    --total-num-mbufs=$(( (${#SILENT_SOCKS[@]} + 64) * 512 )) --link-wait=120 --duration=100000 \
    --quiet > "$W/silent.log" 2>&1 &
  SILENT_PID=$!; PIDS+=("$SILENT_PID")
  # Every silent port up before measuring.
  local want=$((${#SILENT_SOCKS[@]})) t
  for t in $(seq 600); do
    [ "$(links_up "$1")" -ge "$want" ] && return 0
    sleep 0.2
  done
  echo "silent peers did not all connect ($(links_up "$1") of $want)" >&2; return 1
}
links_up() { # SWITCH -> connected ports
  case ${1%@*} in
    ferrovsd*) "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" --json show | python3 -c "import json,sys; print(sum(p['link']=='up' for p in json.load(sys.stdin)['ports']))" ;;
    ovs) ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" dpif-netdev/pmd-rxq-show | grep -c 'port: vhu.*enabled' || true ;;
  esac
}

# The PMD thread's CPU share over 5 s of no traffic.
idle_share() {
  local tid c0 c1 t0 t1
  tid=$(tid_of "$SW_PID" "$SW_TID_RE")
  c0=$(cpu_ns "$SW_PID" "$tid"); t0=$(date +%s%N); sleep 5
  c1=$(cpu_ns "$SW_PID" "$tid"); t1=$(date +%s%N)
  python3 -c "print(round(($c1 - $c0) / ($t1 - $t0), 4))"
}

# One measured run; fails (for the retry loop) when any step does: the
# caller's `if` turns off set -e inside it.
one() { # SWITCH N
  local sw=$1 n=$2 tag="$1@$2"
  local rows; rows=$(wc -l < "$RUNS")
  case $sw in
    ferrovsd) start_ferrovsd_n "$n" 250 ;;
    ferrovsd-poll) start_ferrovsd_n "$n" 0 ;;
    ferrovsd-nonotify) start_ferrovsd_n "$n" 0 0 ;;
    ovs) start_ovs_n "$n" ;;
  esac || return 1
  start_silent "$sw" || return 1
  sleep 2
  local idle; idle=$(idle_share) || return 1
  # The busy pair: A -> B as fast as the generator goes.
  "$FERROVS_TESTPMD" --port "virtio-user:path=$SOCK0,mac=02:00:00:00:00:01" \
    --port "virtio-user:path=$SOCK1,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
    --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts=60 --tx-first \
    --lcores 0 --link-wait 90 --stats-period 1 --duration $((WARMUP + DURATION + 1)) --json --quiet > "$W/fgen.json" 2> "$W/fgen.err" &
  GEN_PID=$!; PIDS+=("$GEN_PID")
  local lat=null
  if [ "$n" = "$MAX" ] || [ "$n" = "$MIN" ]; then
    # measure_and_record stops the switch: the latency run goes first, on its own.
    # --tx-first: the switch learns B first (else every frame floods to all ports).
    wait "$GEN_PID" || true
    "$FERROVS_TESTPMD" --port "virtio-user:path=$SOCK0,mac=02:00:00:00:00:01" \
      --port "virtio-user:path=$SOCK1,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
      --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts=60 --latency --tx-pps=200 --tx-first \
      --lcores 0 --link-wait 90 --duration 10 --json --quiet > "$W/lat.json" 2> "$W/lat.err" || true
    lat=$(python3 -c "import json; print(json.dumps(json.load(open('$W/lat.json')).get('latency')))" 2>/dev/null || echo null)
    "$FERROVS_TESTPMD" --port "virtio-user:path=$SOCK0,mac=02:00:00:00:00:01" \
      --port "virtio-user:path=$SOCK1,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
      --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts=60 --tx-first \
      --lcores 0 --link-wait 90 --stats-period 1 --duration $((WARMUP + DURATION + 1)) --json --quiet > "$W/fgen.json" 2> "$W/fgen.err" &
    GEN_PID=$!; PIDS+=("$GEN_PID")
  fi
  # Its forwarding thread starts once both links are up (an OVS with
  # hundreds of ports takes seconds to bring a new one up).
  local w
  for w in $(seq 900); do
    tid_of "$GEN_PID" 'worker-0|lcore-0|^lcore0$' > /dev/null && break
    kill -0 "$GEN_PID" 2>/dev/null || break
    sleep 0.1
  done
  measure_and_record "$tag" 64 ferrovs || { tail -3 "$W/fgen.err" "$W/lat.err" >&2 2>/dev/null; return 1; }
  # Exactly this run's row, or nothing was measured.
  [ "$(wc -l < "$RUNS")" -eq $((rows + 1)) ] && tail -1 "$RUNS" | grep -q "\"switch\": \"$tag\"" || return 1
  python3 - "$RUNS" "$sw" "$n" "$idle" "$lat" <<'PY'
import json, sys
path, sw, n, idle, lat = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
r = rows[-1]
r.update({"switch": sw, "silent_ports": int(n), "idle_pmd_share": float(idle), "wake_latency": json.loads(lat)})
rows[-1] = r
with open(path, "w") as f:
    f.write("".join(json.dumps(x) + "\n" for x in rows))
print(json.dumps(r))
PY
}

echo "density: switches $SWITCHES, silent ports $COUNTS, $REPEATS rounds x ${DURATION}s" >&2
for rep in $(seq "$REPEATS"); do
  for n in $COUNTS; do
    for sw in $SWITCHES; do
      for try in 1 2 3; do
        if one "$sw" "$n"; then
          tail -1 "$RUNS" | grep -q '"disturbed": true' || break
        else
          kill_leftovers
        fi
        echo "($sw with $n silent ports: disturbed or failed run, retrying)" >&2
      done
    done
  done
done
cp "$RUNS" "$OUT"
$PLOT_PY "$here/density_report.py" "$OUT" "${PLOT:-$here/density.png}"
