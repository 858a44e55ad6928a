#!/usr/bin/env bash
# netns -> switch -> vhost-user sink: frames made inside a network namespace
# leave through a veth; the switch takes them from the host end with DPDK's
# net_af_packet (the same devargs for every switch) and forwards them to a
# vhost-user port, where the generator's own virtio-user port B counts them.
#   ferrovsd  [[port]] type = "dpdk", devargs = "net_af_packet0,iface=HOST_IF" + vhost-user vhost1
#   ovs       OVS-DPDK 3.1: type=dpdk options:dpdk-devargs=(same) + dpdkvhostuser vhu1, NORMAL
#   testpmd   dpdk-testpmd io forwarding net_af_packet -> net_vhost (no switching: the floor)
# Each switch's packet thread on CPU 1; the generator's on CPU 0, inside the
# namespace, where the kernel's veth work also lands (it runs in the
# sender's context).
#
# usage: benches/e2e/netns.sh [--quick]   (SIZES: frame sizes with the 4-byte FCS, as RFC 2544)
# env:   REPEATS=3 DURATION=10 WARMUP=3 SIZES="64 1518" SWITCHES="ferrovsd ovs testpmd"
#        GENS="dpdk ferrovs" GEN_CPU_MIN=0.85 AF_PACKET_ARGS="" (extra net_af_packet devargs for
#        every side, e.g. ",framecnt=2048") OUT=benches/e2e/results-netns.json
#        FERROVSD=... FERROVS_CTL=... FERROVS_TESTPMD=... (default: build release)
#
# Generators (GENS), each one lcore on CPU 0, inside the namespace:
#   dpdk     dpdk-testpmd, io forwarding, paired:
#            net_pcap (one frame, replayed) -> net_af_packet (namespace end of the veth);
#            virtio-user B -> net_null
#   ferrovs  ferrovs-testpmd: txonly on dpdk:devargs=net_af_packet0,iface=NS_IF, checking
#            rxonly on virtio-user B (--port-topology=loop --tx-ports=0)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

REPEATS=${REPEATS:-3}; DURATION=${DURATION:-10}; WARMUP=${WARMUP:-3}
SIZES=${SIZES-"64 1518"}; SWITCHES=${SWITCHES:-"ferrovsd ovs testpmd"}
GENS=${GENS:-"dpdk ferrovs"}; AF_PACKET_ARGS=${AF_PACKET_ARGS:-}
OUT=${OUT:-$here/results-netns.json}
# The kernel's share of the generator's sends partly runs in ksoftirqd on
# CPU 0, outside the generator thread: only below 85 % is a run disturbed.
GEN_CPU_MIN=${GEN_CPU_MIN:-0.85}
if [ "${1:-}" = "--quick" ]; then REPEATS=1; DURATION=3; WARMUP=2; fi
SCRIPT=netns.sh
# shellcheck source=lib.sh
. "$here/lib.sh"
command -v ip > /dev/null || die "ip not found (apt-get install iproute2)"

NS=fvbns$$; HOST_IF=fvbh$$; NS_IF=fvbn$$
extra_cleanup() { ip link del "$HOST_IF" 2> /dev/null; ip netns del "$NS" 2> /dev/null; }
ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
ip -n "$NS" link set "$NS_IF" up; ip -n "$NS" link set lo up
sysctl -qw "net.ipv6.conf.$HOST_IF.disable_ipv6=1"
ip link set "$HOST_IF" up
PHY_DEVARGS="net_af_packet0,iface=$HOST_IF$AF_PACKET_ARGS"

# --- the switches: start_<switch> sets SOCK1, SW_PID, SW_TID_RE
start_ferrovsd() {
  mkdir -p "$W/fv"
  cat > "$W/fv/bench.toml" <<TOML
[pmd]
sleep-max = 0
[dpdk]
eal-args = "--no-huge -m 512 --no-pci"
[[port]]
name = "phy0"
type = "dpdk"
devargs = "$PHY_DEVARGS"
[[port]]
name = "vhost1"
type = "vhost-user"
path = "vhost1.sock"
TOML
  "$FERROVSD" --config "$W/fv/bench.toml" --run-dir "$W/fv/run" --pmd-cores 1 > "$W/fv/log" 2>&1 &
  SW_PID=$!; PIDS+=("$SW_PID")
  SOCK1=$W/fv/run/vhost1.sock; SW_TID_RE='^pmd1$'
  local i; for i in $(seq 100); do [ -S "$SOCK1" ] && return 0; sleep 0.1; done
  cat "$W/fv/log" >&2; return 1
}
stop_ferrovsd() { kill "$SW_PID"; wait "$SW_PID" 2>/dev/null || true; }

start_ovs() {
  start_ovs_daemon
  local d=$W/ovs
  "${VSCTL[@]}" add-port br0 phy0 -- set Interface phy0 type=dpdk "options:dpdk-devargs=$PHY_DEVARGS"
  "${VSCTL[@]}" add-port br0 vhu1 -- set Interface vhu1 type=dpdkvhostuser
  SOCK1=$d/vhu1
  local i; for i in $(seq 100); do [ -S "$SOCK1" ] && return 0; sleep 0.1; done
  tail -20 "$d/ovs-vswitchd.log" >&2; return 1
}

start_testpmd_switch() {
  mkdir -p "$W/tp"; SOCK1=$W/tp/vh1.sock
  start_testpmd SWTP -l 0,1 --main-lcore 0 --no-pci --no-huge -m 1024 --file-prefix fvb-sw \
    --vdev "$PHY_DEVARGS" --vdev "net_vhost0,iface=$SOCK1" \
    -- -i --forward-mode=io --nb-cores=1 --no-mlockall --total-num-mbufs=32768
  tp_cmd SWTP start > /dev/null
  SW_PID=$SWTP_PID; SW_TID_RE='worker-1|lcore-1'
}
stop_testpmd_switch() { stop_testpmd SWTP; }

start_switch() { case $1 in ferrovsd) start_ferrovsd ;; ovs) start_ovs ;; testpmd) start_testpmd_switch ;; esac; }
stop_switch() { case $1 in ferrovsd) stop_ferrovsd ;; ovs) stop_ovs ;; testpmd) stop_testpmd_switch ;; esac; }

run_one() { # SWITCH SIZE GEN -> appends one JSON line
  local sw=$1 size=$2 gen=$3
  start_switch "$sw"
  if [ "$gen" = dpdk ]; then
    python3 "$here/frames.py" "$size" "$W/f$size.pcap"
    IN_NETNS=$NS start_testpmd GEN -l 0,1 --main-lcore 1 --no-pci --no-huge -m 1024 --file-prefix fvb-gen \
      --vdev "net_pcap0,rx_pcap=$W/f$size.pcap,infinite_rx=1" \
      --vdev "net_af_packet1,iface=$NS_IF$AF_PACKET_ARGS" \
      --vdev "net_virtio_user0,path=$SOCK1,mac=02:00:00:00:00:02,queue_size=1024" \
      --vdev "net_null0,no-rx=1" \
      -- -i --forward-mode=io --port-topology=paired --nb-cores=1 --no-mlockall --total-num-mbufs=65536 \
         --rxd=1024 --txd=1024
    # tx_first: B sends a burst first, so the switch learns its MAC.
    tp_cmd GEN "start tx_first" > /dev/null
  else
    ip netns exec "$NS" "$FERROVS_TESTPMD" --eal-args "--no-huge -m 512 --no-pci -l 0" \
      --port "dpdk:mac=02:00:00:00:00:01,devargs=net_af_packet1,iface=$NS_IF$AF_PACKET_ARGS" \
      --port "virtio-user:path=$SOCK1,mac=02:00:00:00:00:02" --port-topology=loop --tx-ports=0 \
      --forward-mode=txonly --eth-peer=0,02:00:00:00:00:02 --txpkts=$((size - 4)) --tx-first \
      --lcores 0 --stats-period 1 --duration $((WARMUP + DURATION + 1)) --json --quiet \
      > "$W/fgen.json" 2> "$W/fgen.err" &
    GEN_PID=$!; PIDS+=("$GEN_PID")
  fi
  measure_and_record "$sw" "$size" "$gen"
}

echo "netns -> switch -> vhost-user; switches: $SWITCHES; generators: $GENS; sizes: $SIZES; $REPEATS x ${DURATION}s after ${WARMUP}s warm-up; devargs $PHY_DEVARGS" >&2
run_all_cases
python3 "$here/report.py" "$RUNS" "$OUT"
echo "results: $OUT" >&2
