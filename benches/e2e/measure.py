#!/usr/bin/env python3
"""One measurement window of compare.sh: samples the generator's port
counters, the CPU time of the switch's and the generator's forwarding
threads (/proc/PID/task/TID/schedstat) and the switch's own counters, sleeps
DURATION seconds, samples again, and prints one JSON object.

usage: measure.py key=value ...   (keys: see `need` below)

Ports of the generator testpmd: 0 = net_pcap (source), 1 = virtio-user A
(into the switch), 2 = virtio-user B (out of the switch), 3 = net_null (sink)."""
import json
import re
import subprocess
import sys
import time

import tpctl

need = ("switch", "size", "rep", "attempt", "duration", "mhz", "min_share", "sw_pid", "sw_tid",
        "gen_pid", "gen_tid", "gen_fifo", "gen_log")
A = dict(a.split("=", 1) for a in sys.argv[1:])
for k in need:
    if k not in A:
        sys.exit(f"measure.py: missing {k}=")


def cpu_ns(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


def run(cmd, timeout=15):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def tp(fifo, log, command):
    out = tpctl.run(fifo, log, command, 15)
    if out is None:
        raise RuntimeError(f"testpmd ({log}) did not answer {command!r}")
    return out


def port_stats(text):
    """{port: {rx, tx, rx_missed, tx_errors}} from `show port stats all`."""
    ports = {}
    for m in re.finditer(r"NIC statistics for port (\d+)\s*#+\s*RX-packets:\s*(\d+)\s+RX-missed:\s*(\d+).*?"
                         r"TX-packets:\s*(\d+)\s+TX-errors:\s*(\d+)", text, re.S):
        ports[int(m[1])] = {"rx": int(m[2]), "rx_missed": int(m[3]), "tx": int(m[4]), "tx_errors": int(m[5])}
    if not {1, 2} <= set(ports):
        raise RuntimeError(f"cannot parse generator port stats:\n{text}")
    return ports


def switch_stats(kind):
    """The switch's own counters: busy cycles and received packets of its
    PMD (cumulative), plus drop counters, as a flat dict."""
    if kind == "ferrovsd":
        ctl = [A["ctl"], "--socket", A["ctl_socket"], "--json"]
        pmds = json.loads(run(ctl + ["pmd-stats"]))
        pmd = next(p for p in pmds if str(p.get("core")) == A["sw_cpu"])
        ports = {p["name"]: p for p in json.loads(run(ctl + ["port-stats"]))}
        s = {"busy_cycles": pmd["busy_cycles"], "packets": pmd["packets"], "flooded": pmd.get("flooded", 0),
             "pmd_drops": sum(pmd.get("drops", {}).values())}
        for name, p in ports.items():
            for k in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped"):
                s[f"{name}.{k}"] = p.get(k, 0)
        return s
    if kind == "ovs":
        out = run(["ovs-appctl", "-t", A["appctl"], "dpif-netdev/pmd-stats-show"])
        sec = re.search(r"pmd thread numa_id \d+ core_id %s:(.*?)(?=\n\S|\Z)" % A["sw_cpu"], out, re.S)
        if not sec:
            raise RuntimeError(f"no PMD on core {A['sw_cpu']} in pmd-stats-show:\n{out}")
        body = sec[1]

        def num(label):
            m = re.search(re.escape(label) + r":\s*([\d.]+)", body)
            return float(m[1]) if m else 0

        s = {"busy_cycles": num("processing cycles"), "packets": num("packets received"),
             "idle_cycles": num("idle cycles"), "emc_hits": num("emc hits"), "smc_hits": num("smc hits"),
             "megaflow_hits": num("megaflow hits"), "upcalls": num("miss with success upcall")}
        for port in ("vhu0", "vhu1"):
            st = run(["ovs-vsctl", "--db=" + A["ovsdb"], "--timeout=10", "get", "Interface", port, "statistics"])
            for k, v in re.findall(r'"?([\w]+)"?=(\d+)', st):
                if k in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped", "ovs_tx_failure_drops"):
                    s[f"{port}.{k}"] = int(v)
        return s
    if kind == "testpmd":
        out = tp(A["sw_fifo"], A["sw_log"], "show fwd stats all")
        m = re.search(r"total cycles=(\d+) / total \w+ packets=(\d+)", out)
        s = {"busy_cycles": int(m[1]) if m else 0, "packets": int(m[2]) if m else 0}
        drops = re.findall(r"TX-dropped:\s*(\d+)", out)
        s["tx_dropped_total"] = int(drops[-1]) if drops else 0
        return s
    raise RuntimeError(f"unknown switch {kind}")


def sample():
    s = {"t0": time.monotonic_ns()}
    s["sw_ns"] = cpu_ns(A["sw_pid"], A["sw_tid"])
    s["gen_ns"] = cpu_ns(A["gen_pid"], A["gen_tid"])
    s["ports"] = port_stats(tp(A["gen_fifo"], A["gen_log"], "show port stats all"))
    s["t_ports"] = time.monotonic_ns()
    s["sw"] = switch_stats(A["switch"])
    return s


def main():
    r = {"switch": A["switch"], "size": int(A["size"]), "rep": int(A["rep"]), "attempt": int(A["attempt"])}
    try:
        a = sample()
        time.sleep(float(A["duration"]))
        b = sample()
    except Exception as e:  # noqa: BLE001 - reported in the JSON line
        r.update(ok=False, error=str(e))
        print(json.dumps(r))
        return
    wall = b["t0"] - a["t0"]
    delivered = b["ports"][2]["rx"] - a["ports"][2]["rx"]
    offered = b["ports"][1]["tx"] - a["ports"][1]["tx"]
    sw_ns = b["sw_ns"] - a["sw_ns"]
    gen_ns = b["gen_ns"] - a["gen_ns"]
    mhz = float(A["mhz"])
    d = {k: b["sw"][k] - a["sw"][k] for k in b["sw"]}
    r.update(
        ok=delivered > 0,
        seconds=wall / 1e9,
        packets=delivered,
        offered=offered,
        mpps=delivered / (b["t_ports"] - a["t_ports"]) * 1e3,
        loss=(offered - delivered) / offered if offered > 0 else None,
        switch_share=sw_ns / wall,
        gen_share=gen_ns / wall,
        cycles_per_packet=sw_ns * mhz / 1e3 / delivered if delivered else None,
        busy_cycles_per_packet=d["busy_cycles"] / d["packets"] if d.get("packets") else None,
        # Fraction of the window the switch itself counts as busy (TSC cycles in
        # iterations that moved packets): ~1 = the switch is the bottleneck.
        switch_busy=d["busy_cycles"] / (mhz * wall / 1e3) if d.get("busy_cycles") else None,
        switch_counters=d,
    )
    if not r["ok"]:
        r["error"] = "no packets reached the sink (virtio-user B) in the window"
    # Disturbed: a thread got less than min_share of what a lone busy loop
    # gets on its CPU (base_*: measured by compare.sh at start).
    ms = float(A["min_share"])
    r["baseline_share"] = {"switch_cpu": float(A.get("base_sw", 1)), "generator_cpu": float(A.get("base_gen", 1))}
    r["disturbed"] = (r["switch_share"] < ms * float(A.get("base_sw", 1))
                      or r["gen_share"] < ms * float(A.get("base_gen", 1)))
    print(json.dumps(r))


if __name__ == "__main__":
    main()
