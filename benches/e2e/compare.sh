#!/usr/bin/env bash
# End-to-end comparison: the same DPDK testpmd generator and sink through
#   ferrovsd (L2 learning), OVS-DPDK (NORMAL action) and testpmd net_vhost io
#   forwarding (no switching: the floor of two vhost rings),
# each switch pinned to CPU 1, the generator's forwarding lcore on CPU 0.
#
# usage: benches/e2e/compare.sh [--quick]   (SIZES: frame sizes with the 4-byte FCS, as RFC 2544;
#        above 1518 every switch's ports get MTU 9000 and the testpmds 9728-byte mbufs)
# env:   REPEATS=3 DURATION=10 WARMUP=3 SIZES="64 1518" SWITCHES="ferrovsd ovs testpmd"
#        GENS="dpdk ferrovs" LATENCY=1 (ferrovs generator: p50/p99 at 50% of max rate;
#        LAT_PPS=N: at N packets/s for every switch instead; SIZES="" skips throughput)
#        OUT=benches/e2e/results.json FERROVSD=... FERROVS_CTL=... FERROVS_TESTPMD=...
#        (default: build release)
#        RULES=FILE: a flow file (ovs-ofctl syntax; ports written @A@ and @B@) that replaces
#        each switch's rules before traffic (`e2e/acl.py 1000 > acl.txt`: a 1000-rule ACL);
#        FLOWS=N: distinct flows from the ferrovs generator (source IP and UDP port vary);
#        FERROVSD_BASE=path: switch `ferrovsd-base` is that ferrovsd binary (an earlier build,
#        for before/after ratios in one run)
#        Switch `ferrovsd+churn` / `ovs+churn`: that switch while an OpenFlow client
#        (rule_churn.py) adds or deletes a rule every 10 ms (FLOW_MOD + barrier), to set
#        against the same switch's idle tables (use with RULES)
#        VHOST_MODE=client: the switches dial the generator's sockets (the production shape:
#        ferrovsd `mode = "client"`, OVS dpdkvhostuserclient, testpmd net_vhost client=1; the
#        dpdk generator's virtio-user listens with server=1); only GENS=dpdk
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
GENS=${GENS:-"dpdk"}; LATENCY=${LATENCY:-0}; RULES=${RULES:-}; FLOWS=${FLOWS:-1}
VHOST_MODE=${VHOST_MODE:-server}
OUT=${OUT:-$here/results.json}
if [ "${1:-}" = "--quick" ]; then REPEATS=1; DURATION=3; WARMUP=2; fi
SCRIPT=compare.sh
# shellcheck source=lib.sh
. "$here/lib.sh"

# Jumbo frames (CUR_SIZE, set per run, above 1518): MTU 9000 everywhere.
CUR_SIZE=64
jumbo() { [ "$CUR_SIZE" -gt 1518 ]; }
jumbo_testpmd_args() { jumbo && echo "--mbuf-size=9728 --max-pkt-len=9018" || true; }

# --- the three switches: start_<switch> sets SOCK0, SOCK1, SW_PID, SW_TID_RE
start_ferrovsd() { # [BINARY]
  local bin=${1:-$FERROVSD} mtu=""
  mkdir -p "$W/fv"
  jumbo && mtu='mtu-request = 9000\n'
  SOCK0=$W/fv/run/vhost0.sock; SOCK1=$W/fv/run/vhost1.sock; SW_TID_RE='^pmd1$'
  printf "[pmd]\nsleep-max = 0\n[[port]]\nname = \"vhost0\"\ntype = \"vhost-user\"\npath = \"%s\"\nmode = \"%s\"\n$mtu[[port]]\nname = \"vhost1\"\ntype = \"vhost-user\"\npath = \"%s\"\nmode = \"%s\"\n$mtu" \
    "$SOCK0" "$VHOST_MODE" "$SOCK1" "$VHOST_MODE" > "$W/fv/bench.toml"
  mkdir -p "$W/fv/run"
  "$bin" --config "$W/fv/bench.toml" --run-dir "$W/fv/run" --pmd-cores 1 > "$W/fv/log" 2>&1 &
  SW_PID=$!; PIDS+=("$SW_PID")
  local i t
  for i in $(seq 100); do
    if [ -S "$W/fv/run/ferrovsd.sock" ] && { [ "$VHOST_MODE" = client ] || [ -S "$SOCK1" ]; }; then
      # Its other threads on CPU 0, as ovs-vswitchd's (--control-cores is issue 14).
      for t in /proc/"$SW_PID"/task/*; do
        grep -q '^pmd' "$t/comm" || taskset -pc 0 "$(basename "$t")" > /dev/null
      done
      return 0
    fi
    sleep 0.1
  done
  cat "$W/fv/log" >&2; return 1
}
stop_ferrovsd() { kill "$SW_PID"; wait "$SW_PID" 2>/dev/null || true; }

start_ovs() {
  start_ovs_daemon
  local d=$W/ovs
  if jumbo; then
    start_ovs_ports
    "${VSCTL[@]}" set Interface vhu0 mtu_request=9000 -- set Interface vhu1 mtu_request=9000
    return 0
  fi
  start_ovs_ports
}
start_ovs_ports() {
  local d=$W/ovs
  if [ "$VHOST_MODE" = client ]; then
    SOCK0=$W/gen-vhu0.sock; SOCK1=$W/gen-vhu1.sock
    "${VSCTL[@]}" add-port br0 vhu0 -- set Interface vhu0 type=dpdkvhostuserclient options:vhost-server-path="$SOCK0"
    "${VSCTL[@]}" add-port br0 vhu1 -- set Interface vhu1 type=dpdkvhostuserclient options:vhost-server-path="$SOCK1"
    return 0
  fi
  "${VSCTL[@]}" add-port br0 vhu0 -- set Interface vhu0 type=dpdkvhostuser
  "${VSCTL[@]}" add-port br0 vhu1 -- set Interface vhu1 type=dpdkvhostuser
  SOCK0=$d/vhu0; SOCK1=$d/vhu1
  local i; for i in $(seq 100); do [ -S "$SOCK1" ] && return 0; sleep 0.1; done
  tail -20 "$d/ovs-vswitchd.log" >&2; return 1
}

start_testpmd_switch() {
  mkdir -p "$W/tp"; SOCK0=$W/tp/vh0.sock; SOCK1=$W/tp/vh1.sock
  local client=""; [ "$VHOST_MODE" = client ] && client=",client=1"
  start_testpmd SWTP -l 0,1 --main-lcore 0 --no-pci --no-huge -m 1024 --file-prefix fvb-sw \
    --vdev "net_vhost0,iface=$SOCK0$client" --vdev "net_vhost1,iface=$SOCK1$client" \
    -- -i --forward-mode=io --nb-cores=1 --no-mlockall --total-num-mbufs=32768 $(jumbo_testpmd_args)
  tp_cmd SWTP start > /dev/null
  SW_PID=$SWTP_PID; SW_TID_RE='worker-1|lcore-1'
}
stop_testpmd_switch() { stop_testpmd SWTP; }


# ferrovs-testpmd as generator (A) and sink (B); its JSON summary goes to $W/fgen.json.
start_ferrovs_gen() { # SIZE SECONDS [EXTRA ARGS...] ; sets GEN_PID
  local size=$1 secs=$2; shift 2
  "$FERROVS_TESTPMD" --port "virtio-user:path=$SOCK0,mac=02:00:00:00:00:01" \
    --port "virtio-user:path=$SOCK1,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
    --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts=$((size - 4)) --tx-first \
    --lcores 0 --stats-period 1 --duration "$secs" --flows "$FLOWS" --json --quiet "$@" > "$W/fgen.json" 2> "$W/fgen.err" &
  GEN_PID=$!; PIDS+=("$GEN_PID")
}

# RULES with the switch's port names, in place of its default rule.
load_rules() { # SWITCH
  [ -n "$RULES" ] || return 0
  case $1 in
    ferrovsd*)
      sed 's/@A@/vhost0/g; s/@B@/vhost1/g' "$RULES" > "$W/rules.txt"
      "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" del-flows
      "$FERROVS_CTL" --socket "$W/fv/run/ferrovsd.sock" add-flows "$W/rules.txt" ;;
    ovs)
      sed 's/@A@/vhu0/g; s/@B@/vhu1/g' "$RULES" > "$W/rules.txt"
      ovs-ofctl -O OpenFlow13 del-flows br0
      ovs-ofctl -O OpenFlow13 add-flows br0 "$W/rules.txt" ;;
    *) die "RULES: switch $1 has no flow table" ;;
  esac
}

# rule_churn.py on the switch's OpenFlow socket (switches named SWITCH+churn).
start_churn() { # SWITCH
  local of
  case $1 in
    ferrovsd*) of=$W/fv/run/br0.mgmt ;;
    ovs) of=$W/ovs/br0.mgmt ;;
  esac
  # On the generator's CPU, as the switches' own control threads: never the PMD's.
  taskset -c 0 python3 "$here/rule_churn.py" "unix:$of" > "$W/churn.json" &
  CHURN_PID=$!; PIDS+=("$CHURN_PID")
}
stop_churn() {
  [ -n "${CHURN_PID:-}" ] || return 0
  kill -TERM "$CHURN_PID" 2>/dev/null; wait "$CHURN_PID" 2>/dev/null || true
  CHURN_PID=
  echo "  rule churn: $(cat "$W/churn.json" 2>/dev/null)" >&2
}

start_switch() {
  if [[ $1 == *+churn ]]; then
    start_switch "${1%+churn}"
    start_churn "${1%+churn}"
    return
  fi
  case $1 in
    ferrovsd) start_ferrovsd ;;
    ferrovsd-base) start_ferrovsd "${FERROVSD_BASE:?set FERROVSD_BASE to an earlier ferrovsd build}" ;;
    ovs) start_ovs ;;
    testpmd) start_testpmd_switch ;;
  esac
  load_rules "$1"
}
stop_switch() {
  stop_churn
  case ${1%+churn} in ferrovsd|ferrovsd-base) stop_ferrovsd ;; ovs) stop_ovs ;; testpmd) stop_testpmd_switch ;; esac
}

run_one() { # SWITCH SIZE GEN -> appends one JSON line
  local sw=$1 size=$2 gen=$3 server=""
  # The churn client shares the generator's CPU (a few per cent of it).
  if [[ $sw == *+churn ]]; then GEN_CPU_MIN=0.9; else GEN_CPU_MIN=0.97; fi
  [ "$VHOST_MODE" = client ] && server=",server=1"
  CUR_SIZE=$size
  start_switch "$sw"
  if [ "$gen" = dpdk ]; then
    python3 "$here/frames.py" "$size" "$W/f$size.pcap"
    start_testpmd GEN -l 0,1 --main-lcore 1 --no-pci --no-huge -m 1024 --file-prefix fvb-gen \
      --vdev "net_pcap0,rx_pcap=$W/f$size.pcap,infinite_rx=1" \
      --vdev "net_virtio_user0,path=$SOCK0,mac=02:00:00:00:00:01,queue_size=1024$server" \
      --vdev "net_virtio_user1,path=$SOCK1,mac=02:00:00:00:00:02,queue_size=1024$server" \
      --vdev "net_null0,no-rx=1" \
      -- -i --forward-mode=io --port-topology=paired --nb-cores=1 --no-mlockall --total-num-mbufs=65536 \
         --rxd=1024 --txd=1024 $(jumbo_testpmd_args)
    # tx_first: every port sends one burst first, so the switch learns B's MAC.
    tp_cmd GEN "start tx_first" > /dev/null
  else
    start_ferrovs_gen "$size" $((WARMUP + DURATION + 1))
  fi
  measure_and_record "$sw" "$size" "$gen"
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

[ "$VHOST_MODE" = server ] || { [ "$VHOST_MODE" = client ] && [ "$GENS" = dpdk ]; } || die "VHOST_MODE=client needs GENS=dpdk"
echo "vhost-user: switches are ${VHOST_MODE}s; switches: $SWITCHES; generators: $GENS; sizes: $SIZES; $REPEATS x ${DURATION}s after ${WARMUP}s warm-up; TSC ${MHZ} MHz" >&2
run_all_cases
if [ "$LATENCY" = 1 ]; then
  for sw in $SWITCHES; do
    [ "$sw" = testpmd ] && continue
    for rep in $(seq "$REPEATS"); do latency_one "$sw" 64 || kill_leftovers; done
  done
fi
python3 "$here/report.py" "$RUNS" "$OUT"
echo "results: $OUT" >&2
