#!/usr/bin/env bash
# Does a scrape storm slow forwarding? ferrovsd (PMD on CPU 1, busy-polling)
# forwards ferrovs-testpmd's 64 B stream (generator on CPU 0: txonly on A,
# rxonly on B); runs alternate without and with a scraper that GETs /metrics
# as fast as it can (it shares CPU 0 with the generator and ferrovsd's
# metrics thread: that is the point, the PMD's core is not theirs).
#
# Reported per case: B's receive rate (median over runs) and the PMD's own
# busy cycles per packet (`ferrovs-ctl pmd-stats`), which is the cleaner
# signal: a slower generator lowers Mpps without making ferrovsd slower.
#
# usage: benches/e2e/scrape_storm.sh    env: REPEATS=3 DURATION=8
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
REPEATS=${REPEATS:-3}; DURATION=${DURATION:-8}
(cd "$root" && cargo build --release --locked --bin ferrovsd --bin ferrovs-ctl --bin ferrovs-testpmd >&2)
bin=$root/target/release
W=$(mktemp -d /tmp/fvstorm.XXXX)
pids=()
cleanup() { set +e; for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT
printf '[pmd]\nsleep-max = 0\n[[port]]\nname = "a"\ntype = "vhost-user"\npath = "a.sock"\n[[port]]\nname = "b"\ntype = "vhost-user"\npath = "b.sock"\n' > "$W/fv.toml"

run_one() { # storm(0|1) -> JSON line
  local storm=$1
  rm -rf "$W/run"
  "$bin/ferrovsd" --config "$W/fv.toml" --run-dir "$W/run" --pmd-cores 1 --metrics-addr 127.0.0.1:0 > "$W/fv.log" 2>&1 &
  local fv=$!; pids+=("$fv")
  for _ in $(seq 100); do [ -S "$W/run/b.sock" ] && break; sleep 0.1; done
  local ctl=("$bin/ferrovs-ctl" --socket "$W/run/ferrovsd.sock" --json)
  local addr; addr=$("${ctl[@]}" show | python3 -c "import json,sys; print(json.load(sys.stdin)['metrics_addr'])")
  "$bin/ferrovs-testpmd" --port "virtio-user:path=$W/run/a.sock,mac=02:00:00:00:00:01" \
    --port "virtio-user:path=$W/run/b.sock,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
    --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --tx-first --lcores 0 \
    --duration $((DURATION + 2)) --json --quiet > "$W/gen.json" 2>/dev/null &
  local gen=$!; pids+=("$gen")
  sleep 2
  "${ctl[@]}" pmd-stats > "$W/p0.json"
  local scr=""
  if [ "$storm" = 1 ]; then
    python3 - "$addr" "$DURATION" > "$W/storm.txt" <<'PY' &
import sys, time, urllib.request
addr, secs = sys.argv[1], float(sys.argv[2])
n, t0 = 0, time.time()
while time.time() - t0 < secs:
    urllib.request.urlopen(f"http://{addr}/metrics").read()
    n += 1
print(n / (time.time() - t0))
PY
    scr=$!; pids+=("$scr")
  fi
  sleep "$DURATION"
  "${ctl[@]}" pmd-stats > "$W/p1.json"
  [ -n "$scr" ] && wait "$scr"
  wait "$gen" || true
  kill "$fv"; wait "$fv" 2>/dev/null || true
  python3 - "$storm" "$W" "$DURATION" <<'PY'
import json, sys
storm, w, d = sys.argv[1] == "1", sys.argv[2], int(sys.argv[3])
a, b = json.load(open(f"{w}/p0.json"))[0], json.load(open(f"{w}/p1.json"))[0]
pk = b["packets"] - a["packets"]
g = json.load(open(f"{w}/gen.json"))
series = g["ports"][1]["rx_pps_series"][2:2 + d]
rate = open(f"{w}/storm.txt").read().strip() if storm else "0"
print(json.dumps({"storm": storm, "mpps": sum(series) / len(series) / 1e6 if series else 0,
                  "busy_cycles_per_packet": (b["busy_cycles"] - a["busy_cycles"]) / pk if pk else None,
                  "scrapes_per_s": float(rate), "bad": g["checked"]["bad"]}))
PY
}

: > "$W/runs.jsonl"
for rep in $(seq "$REPEATS"); do
  for storm in 0 1; do run_one "$storm" | tee -a "$W/runs.jsonl" >&2; done
done
python3 - "$W/runs.jsonl" <<'PY'
import json, sys, statistics as st
runs = [json.loads(l) for l in open(sys.argv[1])]
for storm in (False, True):
    rs = [r for r in runs if r["storm"] == storm]
    print(f"{'with' if storm else 'without'} scrape storm: {st.median(r['mpps'] for r in rs):.2f} Mpps, "
          f"{st.median(r['busy_cycles_per_packet'] for r in rs):.0f} busy cycles/pkt"
          + (f", {st.median(r['scrapes_per_s'] for r in rs):.0f} scrapes/s" if storm else ""))
PY
