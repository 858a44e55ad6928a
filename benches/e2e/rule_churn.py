#!/usr/bin/env python3
"""Forwarding while a controller changes rules every 10 ms, against idle tables.

ferrovsd (PMD on CPU 1) holds 1 000 ACL-like rules plus `priority=0,actions=normal`;
ferrovs-testpmd (CPU 0) sends 64 B flowgen frames A -> B as fast as it can for
DURATION s. In the churn runs an OpenFlow client adds a rule and deletes it again,
alternately, every 10 ms (FLOW_MOD + BARRIER each). Runs alternate idle/churn;
prints per run B's receive rate and the PMD's busy cycles per packet, then medians.

usage: benches/e2e/rule_churn.py [ROUNDS=3] [DURATION=8]
"""
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from of_burst import flow_mod, msg  # noqa: E402


def ctl(sock, *args):
    out = subprocess.run([os.path.join(BIN, "ferrovs-ctl"), "--socket", sock, "--json", *args],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else {}


def churn(path, stop, counter):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(msg(0, struct.pack("!HHI", 1, 8, 1 << 4), 1))
    i = 0
    while not stop.is_set():
        # 50 000 + i: outside the 1 000 installed ones; add on even ticks, delete on odd.
        s.sendall(flow_mod(50_000 + i // 2, 0 if i % 2 == 0 else 3) + msg(20, b"", 9))
        i += 1
        counter[0] = i
        time.sleep(0.01)
    s.close()


def one(sock, mgmt, a, b, duration, churning):
    stop = threading.Event()
    count = [0]
    t = None
    if churning:
        t = threading.Thread(target=churn, args=(mgmt, stop, count))
        t.start()
    p0 = ctl(sock, "pmd-stats")[0]
    out = subprocess.run(
        [os.path.join(BIN, "ferrovs-testpmd"), f"--port=virtio-user:path={a},mac=02:00:00:00:00:01",
         f"--port=virtio-user:path={b},mac=02:00:00:00:00:02", "--forward-mode=flowgen",
         "--tx-ports=0", "--flows=64", "--txpkts=64", "--lcores=0", f"--duration={duration}",
         "--json", "--quiet"], capture_output=True, text=True).stdout
    p1 = ctl(sock, "pmd-stats")[0]
    stop.set()
    if t:
        t.join()
    s = json.loads(out[out.index("{"):])
    pk = p1["packets"] - p0["packets"]
    return {"churn": churning, "rule_changes": count[0], "b_mpps": round(s["ports"][1]["rx_pps"] / 1e6, 3),
            "busy_cycles_per_pkt": round((p1["busy_cycles"] - p0["busy_cycles"]) / pk, 1) if pk else None}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    duration = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "ferrovsd", "--bin", "ferrovs-ctl",
                    "--bin", "ferrovs-testpmd"], cwd=ROOT, check=True, capture_output=True)
    d = tempfile.mkdtemp(prefix="fvchurn.")
    cfg = os.path.join(d, "fv.toml")
    with open(cfg, "w") as f:
        f.write('[pmd]\nsleep-max = 0\n[[port]]\nname = "a"\ntype = "vhost-user"\npath = "a.sock"\n'
                '[[port]]\nname = "b"\ntype = "vhost-user"\npath = "b.sock"\n')
    run = os.path.join(d, "run")
    sw = subprocess.Popen([os.path.join(BIN, "ferrovsd"), "--config", cfg, "--run-dir", run,
                           "--pmd-cores", "1", "--metrics-addr", "off"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock, mgmt = os.path.join(run, "ferrovsd.sock"), os.path.join(run, "br0.mgmt")
        for _ in range(100):
            if os.path.exists(mgmt):
                break
            time.sleep(0.1)
        rules = [f"priority=100,ip,nw_dst=10.9.{i >> 8}.{i & 255},actions=drop" for i in range(1000)]
        rules.append("priority=0,actions=normal")
        path = os.path.join(d, "rules.txt")
        with open(path, "w") as f:
            f.write("\n".join(rules) + "\n")
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flows", f"unix:{mgmt}", path], check=True)
        a, b = os.path.join(run, "a.sock"), os.path.join(run, "b.sock")
        res = []
        for _ in range(rounds):
            for churning in (False, True):
                r = one(sock, mgmt, a, b, duration, churning)
                print(json.dumps(r), flush=True)
                res.append(r)
        for churning in (False, True):
            rs = [r for r in res if r["churn"] == churning]
            print(json.dumps({"churn": churning, "b_mpps_median": statistics.median(r["b_mpps"] for r in rs),
                              "b_mpps_range": [min(r["b_mpps"] for r in rs), max(r["b_mpps"] for r in rs)],
                              "cycles_per_pkt_median": statistics.median(r["busy_cycles_per_pkt"] for r in rs)}))
    finally:
        sw.terminate()
        sw.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
