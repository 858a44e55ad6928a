#!/usr/bin/env python3
"""Soak: checked traffic through ferrovsd for MINUTES under churn (issue 12).
Not a CI test: run it by hand, it takes the machine for the whole time.

Each round (ROUND seconds): ferrovs-testpmd sends payload-checked 64 B frames
from port a to port b (flooded: b's MAC is never learned) while, around it,
- the peer of server-mode port c (ferrovs-testpmd) is kill -9'd and restarted,
- the peer of client-mode port d (dpdk-testpmd virtio-user, server=1: it
  listens, ferrovsd dials) is kill -9'd and restarted,
- a port e<k> is added, gets a peer, and is removed under traffic,
- a rule that drops part of a's traffic is added (even rounds) or removed (odd),
- two threads hammer /metrics and the management socket the whole time.
Twice (at 1/3 and 2/3 of the time) ferrovsd itself is kill -9'd between rounds
and restarted on the same run directory (its state file restores the ports
and rules).

Every round is accounted: each generated frame was delivered to b (ferrovsd's
transmit counter; b's peer then received it payload-checked, or had it still
unread in its ring when it stopped) or sits in a drop counter (the
generator's own, a's receive drops, a's switch drops, b's transmit drops). Per round it records ferrovsd's RSS,
open fds and packet buffers in use after traffic stops; the series and a
summary are printed, and written as JSON to --out.

usage: benches/soak.py [--minutes 30] [--round 20] [--pps 100000] [--out FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
METRICS = "127.0.0.1:19391"
PMD_CPU = "1"
PEER_CPU = "0"


def mac(i):
    return f"02:00:00:00:00:{i:02x}"


class Soak:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="ferrovs-soak.")
        self.run_dir = os.path.join(self.dir, "run")
        self.sock = os.path.join(self.run_dir, "ferrovsd.sock")
        self.procs = {}
        self.switch = None
        self.stop_hammer = threading.Event()
        self.hammer = {"metrics_ok": 0, "metrics_fail": 0, "ctl_ok": 0, "ctl_fail": 0}
        self.restarts = []
        self.rounds = []
        self.lock = threading.Lock()
        self.switch_up = threading.Event()

    # ---- processes -------------------------------------------------------
    def spawn(self, name, argv, **kw):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdout=kw.pop("stdout", log), stderr=log, **kw)
        self.procs[name] = p
        return p

    def kill9(self, name):
        p = self.procs.pop(name, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()

    def cleanup(self):
        self.stop_hammer.set()
        for name in list(self.procs):
            self.kill9(name)
        if self.switch and self.switch.poll() is None:
            self.switch.kill()
            self.switch.wait()
        for d in os.listdir("/var/run/dpdk") if os.path.isdir("/var/run/dpdk") else []:
            if d.startswith("fvsoak"):
                shutil.rmtree(os.path.join("/var/run/dpdk", d), ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- ferrovsd ----------------------------------------------------------
    def write_config(self):
        cfg = "[pmd]\nsleep-max = 100\n[memory]\nn-mbufs = 16384\n"
        for n in ("a", "b", "c"):
            cfg += f'[[port]]\nname = "{n}"\ntype = "vhost-user"\npath = "{n}.sock"\n'
        cfg += (f'[[port]]\nname = "d"\ntype = "vhost-user"\nmode = "client"\n'
                f'path = "{os.path.join(self.dir, "d.sock")}"\n')
        with open(os.path.join(self.dir, "ferrovsd.toml"), "w") as f:
            f.write(cfg)

    def start_switch(self):
        t0 = time.time()
        log = open(os.path.join(self.dir, "ferrovsd.log"), "ab")
        self.switch = subprocess.Popen(
            [os.path.join(BIN, "ferrovsd"), "--config", os.path.join(self.dir, "ferrovsd.toml"),
             "--run-dir", self.run_dir, "--pmd-cores", PMD_CPU, "--metrics-addr", METRICS],
            stdout=log, stderr=log)
        while time.time() - t0 < 20:
            if self.ctl("show", check=False) is not None:
                self.switch_up.set()
                return time.time() - t0
            time.sleep(0.05)
        sys.exit("ferrovsd did not come up; see " + os.path.join(self.dir, "ferrovsd.log"))

    def kill9_switch(self):
        self.switch_up.clear()
        self.switch.send_signal(signal.SIGKILL)
        self.switch.wait()

    def ctl(self, *args, check=True):
        r = subprocess.run([os.path.join(BIN, "ferrovs-ctl"), "--socket", self.sock, "--json", *args],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            if check:
                raise RuntimeError(f"ferrovs-ctl {' '.join(args)}: {r.stderr.strip()}")
            return None
        return json.loads(r.stdout) if r.stdout.strip() else {}

    def port(self, name):
        p = self.ctl("port-stats", name)[0]
        return {"rx": p["rx_packets"], "rx_dropped": p["rx_dropped"], "tx": p["tx_packets"],
                "tx_dropped": p["tx_dropped"], "switch_drops": sum(p.get("switch_drops", {}).values())}

    def connections(self):
        """How many times each port's peer has connected (since this ferrovsd started)."""
        out = {}
        for p in self.ctl("show")["ports"]:
            flat = dict(p)
            for v in p.values():
                if isinstance(v, dict):
                    flat.update(v)
            if "connections" in flat:
                out[p["name"]] = int(flat["connections"])
        return out

    def gauges(self):
        with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"^(ferrovs_mbufs_in_use|ferrovs_mbufs) (\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out

    def process_figures(self):
        pid = self.switch.pid
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        return fds, rss

    # ---- peers -------------------------------------------------------------
    def testpmd(self, name, *args):
        return self.spawn(name, [os.path.join(BIN, "ferrovs-testpmd"), "--lcores", PEER_CPU,
                                 "--quiet", *args])

    def start_c_peer(self):
        self.testpmd("c", f"--port=virtio-user:path={self.run_dir}/c.sock,mac={mac(3)}",
                     "--forward-mode=rxonly", "--link-wait=30")

    def start_d_peer(self):
        dpdk = shutil.which("dpdk-testpmd")
        if not dpdk:
            return
        self.spawn("d", ["taskset", "-c", PEER_CPU, dpdk, "-l", "0,1", "--main-lcore", "1",
                         "--no-pci", "--no-huge", "-m", "512", "--file-prefix", "fvsoak-d",
                         "--vdev", f"net_virtio_user0,path={self.dir}/d.sock,server=1,queue_size=256,"
                                   f"mac={mac(4)}",
                         "--", "--forward-mode=rxonly", "--nb-cores=1", "--no-mlockall",
                         "--auto-start", "--stats-period", "5"],
                   stdin=subprocess.DEVNULL)

    # ---- hammer ------------------------------------------------------------
    def hammer_metrics(self):
        while not self.stop_hammer.is_set():
            if self.switch_up.is_set():
                try:
                    urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=5).read()
                    k = "metrics_ok"
                except Exception:
                    k = "metrics_fail" if self.switch_up.is_set() else None
                if k:
                    with self.lock:
                        self.hammer[k] += 1
            time.sleep(0.02)

    def hammer_ctl(self):
        while not self.stop_hammer.is_set():
            if self.switch_up.is_set():
                r = self.ctl("show", check=False)
                k = "ctl_ok" if r is not None else ("ctl_fail" if self.switch_up.is_set() else None)
                if k:
                    with self.lock:
                        self.hammer[k] += 1
            time.sleep(0.05)

    # ---- one round -----------------------------------------------------------
    def round(self, k):
        a0, b0 = self.port("a"), self.port("b")
        n = self.args.pps * max(self.args.round - 6, 4)
        gen = subprocess.Popen(
            [os.path.join(BIN, "ferrovs-testpmd"), "--lcores", PEER_CPU, "--quiet", "--json",
             f"--port=virtio-user:path={self.run_dir}/a.sock,mac={mac(1)},queue-size=1024",
             f"--port=virtio-user:path={self.run_dir}/b.sock,mac={mac(2)},queue-size=1024",
             "--forward-mode=flowgen", "--tx-ports=0", "--flows=16", "--txpkts=64",
             f"--tx-pps={self.args.pps}", f"--nb-pkts={n}", "--link-wait=20",
             f"--duration={self.args.round + 60}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1)
        self.kill9("c"); self.start_c_peer()
        time.sleep(1)
        self.kill9("d"); self.start_d_peer()
        time.sleep(1)
        e = f"e{k}"
        self.ctl("add-port", e, "type=vhost-user", f"path={self.run_dir}/{e}.sock")
        self.testpmd("e", f"--port=virtio-user:path={self.run_dir}/{e}.sock,mac={mac(5)}",
                     "--forward-mode=rxonly", "--duration=4")
        time.sleep(1)
        if k % 2 == 0:
            self.ctl("add-flow", "cookie=0x50a4,priority=50,in_port=a,udp,nw_dst=198.18.0.7,actions=drop")
        else:
            self.ctl("del-flows", "cookie=0x50a4/-1")
        time.sleep(2)
        self.ctl("del-port", e)
        self.kill9("e")
        out, _ = gen.communicate(timeout=self.args.round + 120)
        s = json.loads(out[out.index("{"):])
        time.sleep(0.5)
        a1, b1 = self.port("a"), self.port("b")
        d = lambda x, y, f: y[f] - x[f]
        generated = s["generated"]
        received = s["ports"][1]["rx_packets"]
        counted = {
            "generator": generated - s["ports"][0]["tx_packets"],
            "a_rx_dropped": d(a0, a1, "rx_dropped"),
            "a_switch": d(a0, a1, "switch_drops"),
            "b_tx_dropped": d(b0, b1, "tx_dropped"),
        }
        # Delivered into b's receive ring but not read before its peer exited
        # (a receiver starved of CPU stops after its drain time): the
        # switch's part is done, so these count as delivered, shown apart.
        delivered = d(b0, b1, "tx")
        unread = delivered - received
        fds, rss = self.process_figures()
        g = self.gauges()
        conns = self.connections()
        r = {
            "round": k, "t": round(time.time() - self.t0, 1), "pid": self.switch.pid,
            "generated": generated, "received": received,
            "bad": s["ports"][1]["checked"]["bad"], "drops": counted,
            "unread_in_peer_ring": unread,
            "unaccounted": generated - delivered - sum(counted.values()),
            "fds": fds, "rss_kib": rss, "mbufs_in_use": g.get("ferrovs_mbufs_in_use"),
            "connections": {n: conns.get(n) for n in ("c", "d")},
        }
        self.rounds.append(r)
        print(f"round {k:3} t={r['t']:7}s gen={generated} recv={received} bad={r['bad']} "
              f"drops={counted} unread={unread} unaccounted={r['unaccounted']} fds={fds} rss={rss}KiB "
              f"in_use={r['mbufs_in_use']} connections={r['connections']}", flush=True)

    def main(self):
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", "ferrovsd",
                        "--bin", "ferrovs-ctl", "--bin", "ferrovs-testpmd"], cwd=ROOT, check=True)
        self.write_config()
        self.t0 = time.time()
        self.start_switch()
        self.start_c_peer(); self.start_d_peer()
        time.sleep(2)
        idle0 = self.gauges().get("ferrovs_mbufs_in_use")
        for f in (self.hammer_metrics, self.hammer_ctl):
            threading.Thread(target=f, daemon=True).start()
        total = self.args.minutes * 60
        kills = [total / 3, 2 * total / 3]
        k = 0
        while time.time() - self.t0 < total:
            self.round(k)
            k += 1
            if kills and time.time() - self.t0 >= kills[0]:
                kills.pop(0)
                self.kill9_switch()
                took = self.start_switch()
                self.restarts.append({"t": round(time.time() - self.t0, 1), "up_after_s": round(took, 2),
                                      "ports": len(self.ctl("show")["ports"])})
                print(f"ferrovsd kill -9'd and restarted: {self.restarts[-1]}", flush=True)
                time.sleep(2)
        self.stop_hammer.set()
        for name in ("c", "d"):
            self.kill9(name)
        time.sleep(3)
        idle1 = self.gauges().get("ferrovs_mbufs_in_use")
        alive = self.switch.poll() is None and self.ctl("show", check=False) is not None
        summary = {
            "minutes": self.args.minutes, "rounds": len(self.rounds), "alive": alive,
            "generated": sum(r["generated"] for r in self.rounds),
            "received": sum(r["received"] for r in self.rounds),
            "unread_in_peer_ring": sum(r["unread_in_peer_ring"] for r in self.rounds),
            "bad": sum(r["bad"] for r in self.rounds),
            "drops": {key: sum(r["drops"][key] for r in self.rounds) for key in self.rounds[0]["drops"]},
            "unaccounted": sum(r["unaccounted"] for r in self.rounds),
            "restarts": self.restarts, "hammer": self.hammer,
            "mbufs_in_use_idle": {"start": idle0, "end": idle1},
            "fds": [r["fds"] for r in self.rounds], "rss_kib": [r["rss_kib"] for r in self.rounds],
        }
        print(json.dumps(summary, indent=1))
        if self.args.out:
            with open(self.args.out, "w") as f:
                json.dump({"summary": summary, "rounds": self.rounds}, f, indent=1)
        ok = (alive and summary["unaccounted"] == 0 and summary["bad"] == 0 and idle0 == idle1
              and all(r["unread_in_peer_ring"] >= 0 for r in self.rounds))
        return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--round", type=int, default=20, help="seconds per round")
    ap.add_argument("--pps", type=int, default=100_000)
    ap.add_argument("--out", help="write rounds and summary as JSON here")
    args = ap.parse_args()
    s = Soak(args)
    try:
        sys.exit(s.main())
    finally:
        s.cleanup()


if __name__ == "__main__":
    main()
