#!/usr/bin/env bash
# Generator capacity: how many Mpps each generator pushes through one
# virtio-user port into the same sink (dpdk-testpmd net_vhost in rxonly on
# CPU 1), generator on CPU 0. Runs alternate between generators so drift of
# this noisy VM hits both alike.
#
#   dpdk     dpdk-testpmd net_virtio_user txonly
#   ferrovs  ferrovs-testpmd virtio-user txonly (FERROVS_PORT_EXTRA is appended
#            to its port spec, e.g. ",event-idx=0")
#   ferrovs-b  only when FERROVS_TESTPMD_B names a second ferrovs-testpmd
#            binary: A/B of two builds against the same sink in one run
#
# usage: benches/e2e/generators.sh [--quick]
# env:   REPEATS=5 DURATION=8 WARMUP=2 SIZES="64" OUT=benches/e2e/generators.json
#        FERROVS_TESTPMD=... (default: build release)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
REPEATS=${REPEATS:-5}; DURATION=${DURATION:-8}; WARMUP=${WARMUP:-2}; SIZES=${SIZES:-64}
OUT=${OUT:-$here/generators.json}
if [ "${1:-}" = "--quick" ]; then REPEATS=1; DURATION=3; WARMUP=1; fi
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found (apt-get install dpdk-dev)" >&2; exit 1; }
if [ -z "${FERROVS_TESTPMD:-}" ]; then
  (cd "$root" && cargo build --release --locked --bin ferrovs-testpmd >&2)
  FERROVS_TESTPMD=$root/target/release/ferrovs-testpmd
fi
W=$(mktemp -d /tmp/fvgen.XXXX)
SINK_PID=""; GEN_PID=""
cleanup() {
  set +e
  for p in $GEN_PID $SINK_PID; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$W" /var/run/dpdk/fvg-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_one() { # GEN SIZE -> one JSON line on stdout
  local gen=$1 size=$2 total=$((WARMUP + DURATION + 1))
  rm -f "$W/s.sock"
  stdbuf -o0 dpdk-testpmd -l 0,1 --main-lcore 0 --no-pci --no-huge -m 1024 --file-prefix fvg-sink \
    --vdev "net_vhost0,iface=$W/s.sock,queues=1" -- --forward-mode=rxonly --nb-cores=1 \
    --no-mlockall --stats-period 1 --total-num-mbufs=16384 -a > "$W/sink.log" 2>&1 &
  SINK_PID=$!
  local i; for i in $(seq 100); do [ -S "$W/s.sock" ] && break; sleep 0.1; done
  case $gen in
    dpdk) dpdk-testpmd -l 0,1 --main-lcore 1 --no-pci --no-huge -m 1024 --file-prefix fvg-gen \
            --vdev "net_virtio_user0,path=$W/s.sock,queue_size=1024" -- --forward-mode=txonly \
            --txpkts="$size" --nb-cores=1 --no-mlockall --stats-period 100 -a --total-num-mbufs=16384 \
            > "$W/gen.log" 2>&1 & ;;
    ferrovs|ferrovs-b)
            bin=$FERROVS_TESTPMD; [ "$gen" = ferrovs-b ] && bin=$FERROVS_TESTPMD_B
            "$bin" --port "virtio-user:path=$W/s.sock${FERROVS_PORT_EXTRA:-}" \
            --forward-mode=txonly --txpkts="$size" --lcores 0 --duration "$total" --quiet \
            > "$W/gen.log" 2>&1 & ;;
  esac
  GEN_PID=$!
  sleep "$total"
  kill -INT "$GEN_PID" 2>/dev/null || true; wait "$GEN_PID" 2>/dev/null || true; GEN_PID=""
  kill -INT "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=""
  # The sink's per-second Rx-pps, warm-up seconds dropped.
  grep -a 'Rx-pps:' "$W/sink.log" | awk '{print $2}' | tail -n +"$((WARMUP + 1))" | head -n "$DURATION" \
    | python3 -c "import json,sys,statistics as st; v=[int(x) for x in sys.stdin if x.strip()]; print(json.dumps({'generator':'$gen','size':$size,'mpps':st.median(v)/1e6 if v else 0,'samples':len(v)}))"
}

RUNS=$W/runs.jsonl; : > "$RUNS"
for size in $SIZES; do
  for rep in $(seq "$REPEATS"); do
    order="dpdk ferrovs"; [ $((rep % 2)) -eq 0 ] && order="ferrovs dpdk"
    [ -n "${FERROVS_TESTPMD_B:-}" ] && order="$order ferrovs-b"
    for gen in $order; do run_one "$gen" "$size" | tee -a "$RUNS" >&2; done
  done
done
python3 - "$RUNS" "$OUT" <<'PY'
import json, sys, statistics as st
runs = [json.loads(l) for l in open(sys.argv[1])]
out = {"runs": runs, "summary": []}
for size in sorted({r["size"] for r in runs}):
    gens = sorted({r["generator"] for r in runs})
    med = {g: st.median([r["mpps"] for r in runs if r["size"] == size and r["generator"] == g]) for g in gens}
    row = {"size": size, "dpdk_mpps": med["dpdk"], "ferrovs_mpps": med["ferrovs"],
           "ferrovs_over_dpdk": med["ferrovs"] / med["dpdk"] if med["dpdk"] else None}
    if "ferrovs-b" in med:
        row["ferrovs_b_mpps"] = med["ferrovs-b"]
    out["summary"].append(row)
    print(f"{size} B: dpdk-testpmd {med['dpdk']:.2f} Mpps, ferrovs-testpmd {med['ferrovs']:.2f} Mpps, ratio {row['ferrovs_over_dpdk']:.2f}"
          + (f"; ferrovs-b {med['ferrovs-b']:.2f} Mpps" if "ferrovs-b" in med else ""))
json.dump(out, open(sys.argv[2], "w"), indent=1)
PY
