#!/usr/bin/env bash
# Flow-mod rate into ferrovsd and OVS-DPDK 3.1, one run: `ovs-ofctl -O OpenFlow13
# add-flows` of 10 000 and 100 000 rules (one FLOW_MOD each, one barrier at the
# end), and a controller-like burst (of_burst.py: 10 000 adds pipelined, a barrier
# after every 1 or every 100). Both switches idle (no traffic); ovs-vswitchd's
# and ferrovsd's non-PMD threads and the OpenFlow client on CPU 0, PMDs on CPU 1
# (a client on the PMD's CPU measures the scheduler, not the switch).
# Rounds alternate the switches. Prints one JSON line per case and round, then
# medians (ranges) and ratios.
#   benches/e2e/flowmod.sh        env: SIZES="10000 100000" BURST=10000 ROUNDS=3
set -euo pipefail
SCRIPT=flowmod.sh
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SIZES=${SIZES:-"10000 100000"}; BURST=${BURST:-10000}; ROUNDS=${ROUNDS:-3}
SWITCHES="ferrovsd ovs"
source "$here/lib.sh"   # checks, builds, $W and its cleanup, OVS helpers

rules() { # N FILE
  python3 -c "import sys
n=int(sys.argv[1])
with open(sys.argv[2],'w') as f:
    for i in range(n):
        f.write(f'table=0,priority=1000,ip,nw_dst=10.{i>>16&255}.{i>>8&255}.{i&255},actions=output:2\n')" "$1" "$2"
}

now() { date +%s.%N; }

measure() { # SWITCH TARGET
  local sw=$1 t=$2 n t0 t1
  for n in $SIZES; do
    rules "$n" "$W/r$n.txt"
    t0=$(now); taskset -c 0 ovs-ofctl -O OpenFlow13 add-flows "$t" "$W/r$n.txt"; t1=$(now)
    local got; got=$(ovs-ofctl -O OpenFlow13 dump-aggregate "$t" | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p')
    python3 -c "import json,sys; n,t0,t1,got=int(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]),int(sys.argv[5]); print(json.dumps({'switch':sys.argv[1],'case':f'ovs-ofctl add-flows {n}','seconds':round(t1-t0,3),'per_second':round(n/(t1-t0)),'flows_after':got}))" "$sw" "$n" "$t0" "$t1" "$got"
    ovs-ofctl -O OpenFlow13 del-flows "$t"
  done
  for k in 100 1; do
    taskset -c 0 python3 "$here/of_burst.py" "$t" "$BURST" "$k" | python3 -c "import json,sys; d=json.load(sys.stdin); d['switch']=sys.argv[1]; d['case']=f'burst {d[\"flow_mods\"]}, barrier every {d[\"barrier_every\"]}'; print(json.dumps(d))" "$sw"
    ovs-ofctl -O OpenFlow13 del-flows "$t"
  done
}

# ferrovsd: two vhost-user ports (port 2 exists), PMD on CPU 1, its other threads
# moved to CPU 0 (as OVS runs ovs-vswitchd here; --control-cores is issue 14).
printf '[pmd]\nsleep-max = 100\n[[port]]\nname = "a"\ntype = "vhost-user"\npath = "a.sock"\n[[port]]\nname = "b"\ntype = "vhost-user"\npath = "b.sock"\n' > "$W/fv.toml"
round_ferrovsd() {
  rm -rf "$W/fv"
  "$FERROVSD" --config "$W/fv.toml" --run-dir "$W/fv" --pmd-cores 1 --metrics-addr off > "$W/fv.log" 2>&1 &
  FV_PID=$!; PIDS+=("$FV_PID")
  for _ in $(seq 100); do [ -S "$W/fv/br0.mgmt" ] && break; sleep 0.1; done
  for t in /proc/"$FV_PID"/task/*; do
    grep -q '^pmd' "$t/comm" || taskset -pc 0 "$(basename "$t")" > /dev/null
  done
  measure ferrovsd "unix:$W/fv/br0.mgmt"
  kill "$FV_PID"; wait "$FV_PID" 2>/dev/null || true
}
round_ovs() {
  start_ovs_daemon
  "${VSCTL[@]}" set bridge br0 protocols=OpenFlow13
  measure ovs "unix:$W/ovs/br0.mgmt"
  stop_ovs
}
for r in $(seq "$ROUNDS"); do
  round_ferrovsd; round_ovs
done | tee "$W/results.json"
python3 - "$W/results.json" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cases = list(dict.fromkeys(r['case'] for r in rows))
for c in cases:
    v = {sw: sorted(r['per_second'] for r in rows if r['case'] == c and r['switch'] == sw)
         for sw in ('ferrovsd', 'ovs')}
    if not all(v.values()):
        continue
    m = {sw: statistics.median(x) for sw, x in v.items()}
    print(f"{c}: ferrovsd {m['ferrovsd']:.0f}/s ({v['ferrovsd'][0]}-{v['ferrovsd'][-1]}), "
          f"OVS {m['ovs']:.0f}/s ({v['ovs'][0]}-{v['ovs'][-1]}), ratio {m['ferrovsd'] / m['ovs']:.2f}")
PY
