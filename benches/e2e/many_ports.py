#!/usr/bin/env python3
"""A thousand vhost-user ports on one ferrovsd (issue 14, "a thousand ports").

For each vhost-user mode -- `server` (ferrovsd listens, the peers dial) and
`client` (the peers listen, ferrovsd dials: the production shape) -- with
N ports whose peers are the virtio-user ports of one ferrovs-testpmd
(interrupt mode, receiving only):

  - bring-up: seconds from starting the later of the two until every port
    is up;
  - the control plane at N ports: `show`, `port-stats`, `pmd-rxq-show`, a
    /metrics scrape (medians of repeated calls), `add-port` + `del-port`
    (each persists the state file of N ports);
  - memory: ferrovsd's RSS (anonymous, shared) and open fds, less those of
    a ferrovsd with no port, per port;
  - the PMD's CPU share over 5 s with every port silent;
  - a reconnection storm, REPEATS times: ferrovsd killed (-9) and started
    again; seconds until all N ports are up again.

Non-PMD threads and the peers run on CPU 0, the PMD on CPU 1.
Writes JSON lines to OUT and prints a summary.

    benches/e2e/many_ports.py   env: N=1000 MODES="server client" REPEATS=3
                                     OUT=benches/e2e/results-many-ports.json
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
N = int(os.environ.get("N", "1000"))
MODES = os.environ.get("MODES", "server client").split()
REPEATS = int(os.environ.get("REPEATS", "3"))
OUT = os.environ.get("OUT", os.path.join(ROOT, "benches", "e2e", "results-many-ports.json"))
REL = os.path.join(ROOT, "target", "release")
FERROVSD, CTL, TESTPMD = (os.path.join(REL, b) for b in ("ferrovsd", "ferrovs-ctl", "ferrovs-testpmd"))


def build():
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "--features", "switch/dpdk,ferrovs-testpmd/dpdk",
         "--bin", "ferrovsd", "--bin", "ferrovs-ctl", "--bin", "ferrovs-testpmd"],
        cwd=ROOT, check=True, stdout=sys.stderr)


def config(work, mode, n):
    lines = ['[pmd]\ncores = "1"\n[memory]\nn-mbufs = 32768\n']
    for i in range(n):
        path = f"{work}/peers/p{i}.sock" if mode == "client" else f"vhost{i}.sock"
        lines.append(f'[[port]]\nname = "vhost{i}"\ntype = "vhost-user"\npath = "{path}"\n')
        if mode == "client":
            lines.append('mode = "client"\n')
    p = f"{work}/ferrovsd-{mode}-{n}.toml"
    with open(p, "w") as f:
        f.write("".join(lines))
    return p


class Switch:
    def __init__(self, work, cfg):
        self.work, self.cfg, self.proc = work, cfg, None

    def start(self):
        self.proc = subprocess.Popen(
            [FERROVSD, "--config", self.cfg, "--run-dir", f"{self.work}/run", "--pmd-cores", "1",
             "--control-cores", "0", "--metrics-addr", "127.0.0.1:0"],
            stdout=open(f"{self.work}/ferrovsd.log", "a"), stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None

    def ctl(self, *args):
        r = subprocess.run([CTL, "--socket", f"{self.work}/run/ferrovsd.sock", *args],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"ferrovs-ctl {' '.join(args)}: {r.stderr}")
        return r.stdout

    def show(self):
        return json.loads(self.ctl("--json", "show"))

    def links_up(self):
        try:
            return sum(p["link"] == "up" for p in self.show()["ports"])
        except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired):
            return 0

    def wait_up(self, n, t0, limit=120):
        while time.monotonic() - t0 < limit:
            if self.links_up() >= n:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise RuntimeError(f"only {self.links_up()} of {n} ports up after {limit} s")

    def status(self):
        s = {}
        for line in open(f"/proc/{self.proc.pid}/status"):
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssShmem", "RssFile"):
                s[k] = int(v.split()[0])
        s["fds"] = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        return s

    def pmd_share(self, secs=5.0):
        tid = next(t for t in os.listdir(f"/proc/{self.proc.pid}/task")
                   if open(f"/proc/{self.proc.pid}/task/{t}/comm").read().strip() == "pmd1")
        ns = lambda: int(open(f"/proc/{self.proc.pid}/task/{tid}/schedstat").read().split()[0])
        c0, t0 = ns(), time.monotonic_ns()
        time.sleep(secs)
        return (ns() - c0) / (time.monotonic_ns() - t0)


def peers(work, mode, n):
    args = []
    for i in range(n):
        if mode == "client":
            spec = f"virtio-user:path={work}/peers/p{i}.sock,server"
        else:
            spec = f"virtio-user:path={work}/run/vhost{i}.sock"
        args.append(f"--port={spec},mac=02:00:00:01:{i >> 8:02x}:{i & 255:02x},queue-size=256")
    return subprocess.Popen(
        [TESTPMD, *args, "--forward-mode=rxonly", "--rx-mode=interrupt", "--lcores=0", "--no-huge",
         f"--total-num-mbufs={(n + 64) * 512}", "--link-wait=300", "--duration=100000", "--quiet"],
        stdout=open(f"{work}/peers.log", "w"), stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}))


def median_ms(f, times):
    ts = []
    for _ in range(times):
        t = time.perf_counter()
        f()
        ts.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(ts), 2)


def run_mode(mode):
    work = tempfile.mkdtemp(prefix="fvports.")
    os.makedirs(f"{work}/peers")
    # Baseline: the same daemon with no port.
    base = Switch(work, config(work, mode, 0))
    base.start()
    base.wait_up(0, time.monotonic())
    time.sleep(1)
    empty = base.status()
    base.stop()
    sw = Switch(work, config(work, mode, N))
    peer = None
    try:
        t0 = time.monotonic()
        if mode == "client":
            peer = peers(work, mode, N)
            while len(os.listdir(f"{work}/peers")) < N:
                time.sleep(0.05)
            t0 = time.monotonic()
            sw.start()
        else:
            sw.start()
            while not os.path.exists(f"{work}/run/vhost{N - 1}.sock"):
                time.sleep(0.05)
            t0 = time.monotonic()
            peer = peers(work, mode, N)
        bring_up = sw.wait_up(N, t0)
        time.sleep(2)
        st = sw.status()
        addr = sw.show()["metrics_addr"]
        scrape = lambda: urllib.request.urlopen(f"http://{addr}/metrics", timeout=10).read()
        series = sum(1 for l in scrape().decode().splitlines() if l and not l.startswith("#"))
        extra = f"{work}/extra.sock"

        def add_del():
            sw.ctl("add-port", "extra", "type=vhost-user", f"path={extra}")
            sw.ctl("del-port", "extra")

        row = {
            "mode": mode, "ports": N, "bring_up_s": round(bring_up, 2),
            "show_ms": median_ms(lambda: sw.ctl("--json", "show"), 10),
            "port_stats_ms": median_ms(lambda: sw.ctl("--json", "port-stats"), 10),
            "pmd_rxq_show_ms": median_ms(lambda: sw.ctl("--json", "pmd-rxq-show"), 10),
            "metrics_ms": median_ms(scrape, 20), "metrics_series": series,
            "add_del_port_ms": median_ms(add_del, 5),
            "rss_anon_kib": st["RssAnon"], "rss_shmem_kib": st["RssShmem"], "fds": st["fds"],
            "anon_kib_per_port": round((st["RssAnon"] - empty["RssAnon"]) / N, 1),
            "fds_per_port": round((st["fds"] - empty["fds"]) / N, 1),
            "idle_pmd_share": round(sw.pmd_share(), 4),
        }
        storms = []
        for _ in range(REPEATS):
            sw.kill()
            time.sleep(1)
            t0 = time.monotonic()
            sw.start()
            storms.append(round(sw.wait_up(N, t0), 2))
        row["restart_all_up_s"] = storms
        return row
    finally:
        sw.stop()
        if peer:
            peer.kill()
            peer.wait()
        subprocess.run(["rm", "-rf", work])


def main():
    build()
    rows = [run_mode(m) for m in MODES]
    with open(OUT, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    for r in rows:
        s = r["restart_all_up_s"]
        print(f"{r['mode']:>6}: {r['ports']} ports up in {r['bring_up_s']} s; after kill -9 + restart "
              f"all up in {statistics.median(s)} s ({min(s)}-{max(s)}); show {r['show_ms']} ms, "
              f"port-stats {r['port_stats_ms']} ms, pmd-rxq-show {r['pmd_rxq_show_ms']} ms, "
              f"/metrics {r['metrics_ms']} ms ({r['metrics_series']} series), add+del port "
              f"{r['add_del_port_ms']} ms; {r['anon_kib_per_port']} KiB anon and "
              f"{r['fds_per_port']} fds per port; idle PMD {100 * r['idle_pmd_share']:.2f}% of its core")


if __name__ == "__main__":
    main()
