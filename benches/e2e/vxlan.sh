#!/usr/bin/env bash
# VXLAN encapsulation + decapsulation (issue 16): a VM port -> vxlan -> underlay
# and back, through ferrovsd and through OVS-DPDK 3.1 userspace tunnelling, the
# underlay being the same DPDK vdev (same devargs) in both:
#
#   ferrovs-testpmd port 0 (virtio-user, "the VM": txonly --latency, so it also
#     receives and checks what comes back)
#       == VM vhost-user port ==> switch: L2 learning -> vxlan port (VNI 42)
#       -> encapsulated out of the dpdk underlay port (net_vhost0)
#   ferrovs-testpmd port 1 (virtio-user on the underlay socket, --port-mode=1,vtep:
#     the remote VTEP $REMOTE_IP; answers the switch's ARP and sends each VXLAN
#     frame back with outer MACs/IPs and inner MACs swapped)
#       == underlay ==> switch: decapsulates, learns the inner destination behind
#       the tunnel, delivers to the VM port -> port 0 counts and checks it.
#
# So every frame port 0 receives was encapsulated once and decapsulated once.
# One ferrovs-testpmd process, both ports on one forwarding lcore on CPU 0
# (--port-mode gives port 1 its own engine); the switch's PMD on CPU 1.
#
#   ferrovsd  --pmd-cores 1, [[port]] vm0 (vhost-user), phy0 (type dpdk, devargs
#             below, mtu-request 1600), vx0 (type vxlan, remote-ip, local-ip, key 42,
#             dst-port 4789, underlay phy0); normal action; sleep-max 0; other
#             threads on CPU 0
#   ovs       OVS-DPDK 3.1 as Documentation/howto/userspace-tunneling.rst: br-int
#             (netdev: dpdkvhostuser vhu0 + vxlan vx0 remote_ip/local_ip/key=42),
#             br-phy (netdev: dpdk phy0 with the same devargs, mtu_request 1600; the
#             VTEP IP $LOCAL_IP/24 on br-phy's internal interface, route checked
#             with ovs/route/show); NORMAL on both bridges; OVS ARPs for the remote
#             itself (nothing seeded); pmd-cpu-mask=0x2, everything else on CPU 0
#
# usage: benches/e2e/vxlan.sh [--quick]   (--quick: 1 round x 3 s, 64 B)
# env:   SWITCHES="ferrovsd ovs" REPEATS=3 DURATION=10 WARMUP=3
#        SIZES="64 1518" (inner frame sizes with the 4-byte FCS, as compare.sh; at most
#        1518: the underlay carries 50 bytes more, MTU 1600)
#        VHOST_MODE=server (the switch listens on the VM socket and its net_vhost0 underlay
#        listens) | client (the switch dials: ferrovsd mode = "client", OVS
#        dpdkvhostuserclient, net_vhost0 ...,client=1; the generator's ports listen)
#        LOCAL_IP=172.31.254.1 REMOTE_IP=172.31.254.2 (the switch's and the reflector's VTEP, in a
#        /24 the host must not use: OVS puts LOCAL_IP/24 on the host's br-phy interface)
#        OUT=benches/e2e/results-vxlan.json FERROVSD=... FERROVS_CTL=... FERROVS_TESTPMD=...
#        RATE=PPS: the VM sends at most this many frames a second. Unset, the one
#        generator thread is the limit on this 2-CPU VM (both switches then report its
#        rate); with a rate both keep up with, `busy cyc/rt` compares what each switch
#        spends per round trip at the same load.
#
# Reported per switch and size, over the rounds (rounds interleave the switches):
#   Mpps        frames port 0 received back per second (round trips), median [min-max]
#   cyc/rt      the PMD thread's CPU time (schedstat) x TSC rate / round trips: cycles
#               per encap + decap at this load, idle polls included (lib.sh's figure)
#   busy cyc/rt the switch's own busy-cycle account (ferrovs-ctl pmd-stats, OVS
#               pmd-stats-show) x 2: both count per packet received, and a round trip
#               enters the switch twice (VM port, underlay)
# and the ferrovsd/OVS ratios of each round, with their median: this VM runs each
# process in a fast or slow mode (about 2x apart), so per-round ratios compare better
# than ratios of medians. A run in which the PMD or the generator thread got less
# than 97% of its CPU is retried (3 more tries) and left out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

REPEATS=${REPEATS:-3}; DURATION=${DURATION:-10}; WARMUP=${WARMUP:-3}
SIZES=${SIZES-"64 1518"}; SWITCHES=${SWITCHES:-"ferrovsd ovs"}
VHOST_MODE=${VHOST_MODE:-server}
LOCAL_IP=${LOCAL_IP:-172.31.254.1}; REMOTE_IP=${REMOTE_IP:-172.31.254.2}; VNI=42
OUT=${OUT:-$here/results-vxlan.json}
if [ "${1:-}" = "--quick" ]; then REPEATS=1; DURATION=3; WARMUP=2; SIZES=64; fi
[ "$WARMUP" -ge 2 ] || { echo "vxlan.sh: WARMUP must be at least 2 s" >&2; exit 1; }
for s in $SIZES; do [ "$s" -ge 64 ] && [ "$s" -le 1518 ] || { echo "vxlan.sh: sizes are 64..1518" >&2; exit 1; }; done
case $VHOST_MODE in server|client) ;; *) echo "vxlan.sh: VHOST_MODE is server or client" >&2; exit 1 ;; esac
SCRIPT=vxlan.sh
hp_file=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
HP_BEFORE=$(cat "$hp_file")
# lib.sh reserves hugepages for OVS when too few are free; they go back to
# 256 (HUGEPAGES_AFTER) at the end, trap included.
# OVS's netdev datapath makes persistent taps (ovs-netdev, one per bridge)
# that outlive a killed ovs-vswitchd; br-phy carries LOCAL_IP.
OUR_OVS=0
del_ovs_taps() {
  [ "$OUR_OVS" = 1 ] || return 0
  local t; for t in br-phy br-int ovs-netdev; do ip link del "$t" 2> /dev/null || true; done
}
extra_cleanup() {
  del_ovs_taps
  [ "$(cat "$hp_file")" = "$HP_BEFORE" ] || echo "${HUGEPAGES_AFTER:-256}" > "$hp_file"
}
# shellcheck source=lib.sh
. "$here/lib.sh"
command -v ip > /dev/null || die "ip not found (apt-get install iproute2)"
# LOCAL_IP/24 goes on a host interface (OVS's br-phy): it must not overlap
# anything the host routes already (default routes aside).
if [[ " $SWITCHES " == *" ovs "* ]]; then
  ip -j -4 route show table all > "$W/routes.json"
  python3 - "$LOCAL_IP" "$W/routes.json" <<'PY' || exit 1
import ipaddress, json, sys
net = ipaddress.ip_network(sys.argv[1] + "/24", strict=False)
for r in json.load(open(sys.argv[2])):
    d = r.get("dst", "default")
    if d != "default" and ipaddress.ip_network(d if "/" in d else d + "/32", strict=False).overlaps(net):
        sys.exit("vxlan.sh: LOCAL_IP %s/24 overlaps the host's route %s (%s): set LOCAL_IP and REMOTE_IP"
                 % (sys.argv[1], d, r.get("dev")))
PY
  ip link show br-phy > /dev/null 2>&1 && die "a br-phy interface exists already (another OVS?)"
fi
for sw in $SWITCHES; do case $sw in ferrovsd|ovs) ;; *) die "unknown switch $sw (ferrovsd, ovs)" ;; esac; done

VM_MAC=02:00:00:00:00:01      # port 0, the VM
PEER_MAC=02:00:00:00:00:02    # the inner destination: a VM behind the tunnel
VTEP_MAC=02:00:00:00:00:fe    # port 1, the remote VTEP on the underlay
UNDERLAY_SOCK=$W/underlay.sock
client=""; gen_server=""
if [ "$VHOST_MODE" = client ]; then client=",client=1"; gen_server=",server"; fi
UNDERLAY_DEVARGS="net_vhost0,iface=$UNDERLAY_SOCK,queues=1$client"
UNDERLAY_MTU=1600

# --- the switches: start_<switch> sets SOCK_VM, SW_PID, SW_TID_RE
pin_ferrovsd_threads() { # everything but the PMD on CPU 0 (DPDK's threads come with the dpdk port)
  local t
  for t in /proc/"$SW_PID"/task/*; do
    grep -q '^pmd' "$t/comm" 2> /dev/null || taskset -pc 0 "$(basename "$t")" > /dev/null 2>&1 || true
  done
}
start_ferrovsd() {
  mkdir -p "$W/fv/run"
  if [ "$VHOST_MODE" = client ]; then SOCK_VM=$W/gen-vm.sock; else SOCK_VM=$W/fv/run/vm0.sock; fi
  cat > "$W/fv/bench.toml" <<TOML
[pmd]
sleep-max = 0
[dpdk]
eal-args = "--no-huge -m 512 --no-pci"
[[port]]
name = "vm0"
type = "vhost-user"
path = "$SOCK_VM"
mode = "$VHOST_MODE"
[[port]]
name = "phy0"
type = "dpdk"
devargs = "$UNDERLAY_DEVARGS"
mtu-request = $UNDERLAY_MTU
[[port]]
name = "vx0"
type = "vxlan"
remote-ip = "$REMOTE_IP"
local-ip = "$LOCAL_IP"
key = $VNI
dst-port = 4789
underlay = "phy0"
TOML
  "$FERROVSD" --config "$W/fv/bench.toml" --run-dir "$W/fv/run" --pmd-cores 1 > "$W/fv/log" 2>&1 &
  SW_PID=$!; PIDS+=("$SW_PID"); SW_TID_RE='^pmd1$'
  local i
  for i in $(seq 100); do
    if [ -S "$W/fv/run/ferrovsd.sock" ] && { [ "$VHOST_MODE" = client ] || { [ -S "$SOCK_VM" ] && [ -S "$UNDERLAY_SOCK" ]; }; }; then
      pin_ferrovsd_threads; return 0
    fi
    kill -0 "$SW_PID" 2> /dev/null || break
    sleep 0.1
  done
  cat "$W/fv/log" >&2; return 1
}
stop_ferrovsd() { kill "$SW_PID"; wait "$SW_PID" 2> /dev/null || true; }

appctl() { ovs-appctl -t "$(ls "$W"/ovs/ovs-vswitchd*.ctl)" "$@"; }
start_ovs() {
  OUR_OVS=1
  start_ovs_daemon   # lib.sh: own db and run dir, pmd-cpu-mask=0x2, netdev bridge br0
  local d=$W/ovs
  "${VSCTL[@]}" del-br br0 \
    -- add-br br-int -- set bridge br-int datapath_type=netdev \
    -- add-br br-phy -- set bridge br-phy datapath_type=netdev
  "${VSCTL[@]}" add-port br-phy phy0 -- set Interface phy0 type=dpdk \
    "options:dpdk-devargs=$UNDERLAY_DEVARGS" mtu_request=$UNDERLAY_MTU
  # The VTEP address on br-phy's internal interface (a tap in the host).
  sysctl -qw net.ipv6.conf.br-phy.disable_ipv6=1 2> /dev/null || true
  ip addr add "$LOCAL_IP/24" dev br-phy
  ip link set br-phy up
  # OVS caches the kernel's connected route; added by hand only if it did not.
  local i net=${LOCAL_IP%.*}.0/24
  for i in $(seq 50); do appctl ovs/route/show | grep -q "$net dev br-phy" && break; sleep 0.1; done
  appctl ovs/route/show | grep -q "$net dev br-phy" || appctl ovs/route/add "$LOCAL_IP/24" br-phy > /dev/null
  if [ "$VHOST_MODE" = client ]; then
    SOCK_VM=$W/gen-vm.sock
    "${VSCTL[@]}" add-port br-int vhu0 -- set Interface vhu0 type=dpdkvhostuserclient options:vhost-server-path="$SOCK_VM"
  else
    SOCK_VM=$d/vhu0
    "${VSCTL[@]}" add-port br-int vhu0 -- set Interface vhu0 type=dpdkvhostuser
  fi
  "${VSCTL[@]}" add-port br-int vx0 -- set Interface vx0 type=vxlan \
    options:remote_ip="$REMOTE_IP" options:local_ip="$LOCAL_IP" options:key=$VNI options:dst_port=4789
  [ "$VHOST_MODE" = client ] && return 0
  for i in $(seq 100); do [ -S "$SOCK_VM" ] && [ -S "$UNDERLAY_SOCK" ] && return 0; sleep 0.1; done
  tail -20 "$d/ovs-vswitchd.log" >&2; return 1
}
ovs_state() { # how OVS resolved the remote (its own ARP, answered by the vtep port)
  echo "  ovs: route $(appctl ovs/route/show | grep -m1 "${LOCAL_IP%.*}.0/24" | tr -s ' ' || true);" \
    "neighbour $(appctl tnl/neigh/show | grep -m1 "$REMOTE_IP" | tr -s ' ' || echo "$REMOTE_IP unresolved")" >&2
}

start_switch() { case $1 in ferrovsd) start_ferrovsd ;; ovs) start_ovs ;; esac; }
stop_switch() {
  case $1 in
    ferrovsd) stop_ferrovsd ;;
    ovs) ovs_state; ip addr del "$LOCAL_IP/24" dev br-phy 2> /dev/null || true; stop_ovs; del_ovs_taps ;;
  esac
}

# ferrovs-testpmd: the VM (port 0, txonly with --latency: it also receives and
# checks) and the remote VTEP (port 1, vtep), one lcore on CPU 0; per-second
# lines on stderr tell when forwarding started.
start_gen() { # SIZE
  local size=$1
  taskset -c 0 "$FERROVS_TESTPMD" \
    --port "virtio-user:path=$SOCK_VM,mac=$VM_MAC$gen_server" \
    --port "virtio-user:path=$UNDERLAY_SOCK,mac=$VTEP_MAC$gen_server" \
    --port-topology=loop --forward-mode=txonly --latency --port-mode=1,vtep --vtep-ip="$REMOTE_IP" \
    --eth-peer=0,$PEER_MAC --txpkts=$((size - 4)) --tx-first --link-wait 20 \
    --lcores 0 --stats-period 1 --duration $((WARMUP + DURATION + 3)) ${RATE:+--tx-pps=$RATE} --json \
    > "$W/fgen.json" 2> "$W/fgen.err" &
  GEN_PID=$!; PIDS+=("$GEN_PID")
}

# One measured round trip run: the generator's first per-second line marks
# 1 s of forwarding; the window is seconds WARMUP .. WARMUP+DURATION of it.
run_one() { # SWITCH SIZE ROUND -> appends one JSON line to $RUNS
  local sw=$1 size=$2 round=$3 i
  start_switch "$sw" || return 1
  start_gen "$size"
  for i in $(seq 300); do
    grep -q '^\[ *[0-9.]*s\] port 0' "$W/fgen.err" 2> /dev/null && break
    kill -0 "$GEN_PID" 2> /dev/null || { echo "--- generator:" >&2; tail -5 "$W/fgen.err" >&2; return 1; }
    sleep 0.1
  done
  grep -q '^\[ *[0-9.]*s\] port 0' "$W/fgen.err" || { echo "--- the generator never started forwarding" >&2; return 1; }
  sleep $((WARMUP - 1))
  [ "$sw" = ferrovsd ] && pin_ferrovsd_threads
  local sw_tid gen_tid s0 s1 g0 g1 t0 t1 proc
  sw_tid=$(tid_of "$SW_PID" "$SW_TID_RE") || { echo "no switch thread matching $SW_TID_RE" >&2; return 1; }
  gen_tid=$(tid_of "$GEN_PID" '^lcore0$') || { echo "no generator thread" >&2; return 1; }
  proc_begin "$sw"
  s0=$(cpu_ns "$SW_PID" "$sw_tid"); g0=$(cpu_ns "$GEN_PID" "$gen_tid"); t0=$(date +%s%N)
  sleep "$DURATION"
  s1=$(cpu_ns "$SW_PID" "$sw_tid"); g1=$(cpu_ns "$GEN_PID" "$gen_tid"); t1=$(date +%s%N)
  proc=$(proc_end "$sw")
  # A thread gone before the window closed (the generator ends 3 s after it): no run.
  [ -n "$s0" ] && [ -n "$s1" ] && [ -n "$g0" ] && [ -n "$g1" ] || { echo "a thread ended inside the window" >&2; return 1; }
  wait "$GEN_PID" || true
  stop_switch "$sw"
  local b1
  b1=$(python3 - "$W/fgen.json" "$WARMUP" "$DURATION" "$t0" "$t1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["ports"][0]["rx_pps_series"]
w, d, t0, t1 = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = s[w:w + d]
print(int(sum(s) / len(s) * (t1 - t0) / 1e9) if s else 0)
PY
  ) || return 1
  local lines; lines=$(wc -l < "$RUNS")
  record_run "$sw" "$size" 0 "$b1" "$s0" "$s1" "$g0" "$g1" "$t0" "$t1" "$MHZ" "$proc" ferrovs-vtep 2> /dev/null
  [ "$(wc -l < "$RUNS")" -gt "$lines" ] || { echo "no run recorded" >&2; return 1; }
  # The round, what the VM port checked and what the VTEP did, on the same line.
  python3 - "$RUNS" "$W/fgen.json" "$round" "$VHOST_MODE" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
r = json.loads(lines[-1]); g = json.load(open(sys.argv[2]))
vm, vtep = g["ports"][0], g["ports"][1]
r.update(round=int(sys.argv[3]), vhost_mode=sys.argv[4], kind="vxlan", checked=vm["checked"],
         vm_tx_packets=vm["tx_packets"], vm_rx_packets=vm["rx_packets"], vtep=vtep.get("vtep"),
         vtep_rx_packets=vtep["rx_packets"], vtep_tx_packets=vtep["tx_packets"],
         latency=g.get("latency"))
if r["mpps"] <= 0 or vm["checked"]["bad"] > 0:
    r["failed"] = True
lines[-1] = json.dumps(r)
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
  tail -1 "$RUNS" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(f\"  {r['switch']} {r['size']} B round {r['round']}: {r['mpps']:.3f} Mpps, {r['cycles_per_packet']:.0f} cyc/rt, switch CPU {100*r['switch_cpu']:.0f}%, gen CPU {100*r['gen_cpu']:.0f}%, checked {r['checked']}, vtep {r['vtep']}\" + (' DISTURBED' if r['disturbed'] else '') + (' FAILED' if r.get('failed') else ''))" >&2
  ! tail -1 "$RUNS" | grep -q '"failed": true'
}

echo "VXLAN round trips; switches: $SWITCHES; vhost-user: switches are ${VHOST_MODE}s; sizes: $SIZES; $REPEATS x ${DURATION}s after ${WARMUP}s warm-up; underlay $UNDERLAY_DEVARGS; VTEPs $LOCAL_IP (switch) <-> $REMOTE_IP; VNI $VNI; TSC ${MHZ} MHz" >&2
for size in $SIZES; do
  for round in $(seq "$REPEATS"); do
    for sw in $SWITCHES; do
      for try in 1 2 3 4; do
        if run_one "$sw" "$size" "$round"; then
          tail -1 "$RUNS" | grep -q '"disturbed": true' || break
        else
          kill_leftovers
          del_ovs_taps
        fi
        echo "($sw $size B round $round: disturbed or failed run, retrying)" >&2
      done
    done
  done
done

python3 - "$RUNS" "$OUT" "$VHOST_MODE" "$REPEATS" "$DURATION" "$WARMUP" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mode, repeats, duration, warmup = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ok = lambda r: not r.get("disturbed") and not r.get("failed")
# The last try of each (switch, size, round) is the round's run.
final = {}
for r in runs:
    final[(r["switch"], r["size"], r["round"])] = r
def busy_rt(r):
    p = r.get("processing_cycles_per_packet")
    return None if p is None else 2 * p
def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None
rows = []
print(f"\nVXLAN round trip (VM port -> vxlan -> underlay -> reflector -> underlay -> vxlan -> VM port), vhost-user {mode}")
print(f"{'switch':<9} {'size':>5} {'runs':>4} {'Mpps median [min-max]':>24} {'cyc/rt':>8} {'busy cyc/rt':>12} {'sw CPU':>7} {'gen CPU':>8}")
switches = list(dict.fromkeys(r["switch"] for r in runs))
sizes = sorted({r["size"] for r in runs})
for size in sizes:
    for sw in switches:
        rs = [r for k, r in sorted(final.items()) if k[0] == sw and k[1] == size and ok(r)]
        if not rs:
            print(f"{sw:<9} {size:>5} {0:>4}   (no undisturbed run)")
            continue
        mpps = [r["mpps"] for r in rs]
        row = {"switch": sw, "size": size, "runs": len(rs),
               "mpps_median": med(mpps), "mpps_min": min(mpps), "mpps_max": max(mpps),
               "cycles_per_round_trip_median": med(r["cycles_per_packet"] for r in rs),
               "busy_cycles_per_round_trip_median": med(busy_rt(r) for r in rs),
               "switch_cpu_median": med(r["switch_cpu"] for r in rs),
               "gen_cpu_median": med(r["gen_cpu"] for r in rs)}
        rows.append(row)
        b = row["busy_cycles_per_round_trip_median"]
        rng = f"{row['mpps_median']:.3f} [{row['mpps_min']:.3f}-{row['mpps_max']:.3f}]"
        print(f"{sw:<9} {size:>5} {len(rs):>4} {rng:>24} {row['cycles_per_round_trip_median']:>8.0f} "
              f"{'-' if b is None else f'{b:.0f}':>12} {100*row['switch_cpu_median']:>6.0f}% {100*row['gen_cpu_median']:>7.0f}%")
ratios = []
for size in sizes:
    for sw in [s for s in switches if s != "ovs"]:
        per = []
        for rnd in range(1, repeats + 1):
            a, b = final.get((sw, size, rnd)), final.get(("ovs", size, rnd))
            if a and b and ok(a) and ok(b) and b["mpps"] > 0:
                per.append({"round": rnd, "mpps": a["mpps"] / b["mpps"],
                            "cycles_per_round_trip": a["cycles_per_packet"] / b["cycles_per_packet"],
                            "busy_cycles_per_round_trip": (busy_rt(a) / busy_rt(b)
                                                           if busy_rt(a) and busy_rt(b) else None)})
        if not per:
            continue
        r = {"pair": f"{sw}/ovs", "size": size, "rounds": per,
             "mpps_median": med(p["mpps"] for p in per),
             "cycles_per_round_trip_median": med(p["cycles_per_round_trip"] for p in per),
             "busy_cycles_per_round_trip_median": med(p["busy_cycles_per_round_trip"] for p in per)}
        ratios.append(r)
        fmt = lambda v: "-" if v is None else f"{v:.2f}"
        print(f"{sw}/ovs {size} B per round: Mpps " + " ".join(fmt(p["mpps"]) for p in per)
              + f" (median {fmt(r['mpps_median'])}); cyc/rt " + " ".join(fmt(p["cycles_per_round_trip"]) for p in per)
              + f" (median {fmt(r['cycles_per_round_trip_median'])}); busy cyc/rt "
              + " ".join(fmt(p["busy_cycles_per_round_trip"]) for p in per)
              + f" (median {fmt(r['busy_cycles_per_round_trip_median'])})")
left = sum(1 for r in final.values() if not ok(r))
if left:
    print(f"({left} round(s) without an undisturbed run left out)")
json.dump({"benchmark": "vxlan", "vhost_mode": mode, "repeats": repeats, "duration_s": duration,
           "warmup_s": warmup, "summary": rows, "ratios": ratios, "runs": runs},
          open(sys.argv[2], "w"), indent=1)
PY
echo "results: $OUT" >&2
