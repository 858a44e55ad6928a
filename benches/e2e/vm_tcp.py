#!/usr/bin/env python3
"""Guest-to-guest TCP throughput (iperf3) between two QEMU Linux guests whose
virtio-net devices are vhost-user ports of
  ferrovsd            offloads on (the default): checksums and TSO negotiated,
                      large segments passed whole, one copy between guests
  ferrovsd-nooffload  both ports `offloads = false`: MTU-sized frames
  ovs                 OVS-DPDK with other_config:userspace-tso-enable=true
Rounds are interleaved (ferrovsd, ferrovsd-nooffload, ovs, ferrovsd, ...), the
same guests' image and settings for every switch; each run boots two fresh
guests. QEMU listens on the vhost-user sockets and the switch dials them
(ferrovsd `mode = "client"`, OVS dpdkvhostuserclient: the production shape;
OVS 3.1 also drops TSO frames towards a dpdkvhostuser server port as "No TCP
checksum support"). The switches' PMD is on CPU 1 and may sleep when idle (ferrovsd's
default sleep-max, OVS's pmd-maxsleep), the guests float. Under TCG the guests
are the bottleneck: report the ratios.

usage: benches/e2e/vm_tcp.py   env: ROUNDS=3 SECONDS=10 SWITCHES="ferrovsd ferrovsd-nooffload ovs"
       OUT=benches/e2e/results-vm-tcp.json FERROVSD=target/release/ferrovsd
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECS = int(os.environ.get("SECONDS", "10"))
SWITCHES = os.environ.get("SWITCHES", "ferrovsd ferrovsd-nooffload ovs").split()
OUT = os.environ.get("OUT", os.path.join(HERE, "results-vm-tcp.json"))
FERROVSD = os.environ.get("FERROVSD", os.path.join(ROOT, "target/release/ferrovsd"))
CACHE = "/var/tmp/ferrovs-guest"


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


class Guest:
    """A QEMU guest (the test image) driven through its serial console."""

    def __init__(self, name, sock, n, qemu_server=False):
        self.name = name
        self.out = ""
        self.seq = 0
        chardev = f"socket,id=c0,path={sock}" + (",server=on,wait=off" if qemu_server else ",reconnect=1")
        mac = f"52:54:00:00:00:{n:02x}"
        self.p = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max", "-m", "512", "-smp", "1",
             "-nographic", "-no-user-config", "-nodefaults", "-display", "none", "-serial", "stdio",
             "-object", "memory-backend-memfd,id=mem,size=512M,share=on", "-numa", "node,memdev=mem",
             "-kernel", f"{CACHE}/vmlinuz", "-initrd", f"{CACHE}/initramfs.gz",
             "-append", f"console=ttyS0 quiet panic=-1 fv.ip=10.0.0.{n}/24 fv.mac={mac}",
             "-chardev", chardev, "-netdev", "vhost-user,id=n0,chardev=c0",
             "-device", f"virtio-net-pci,netdev=n0,mac={mac},romfile=,vectors=0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            b = self.p.stdout.read1(4096)
            if not b:
                return
            self.out += b.decode(errors="replace")

    def wait_ready(self, within=120):
        t0 = time.time()
        while "FV-READY" not in self.out:
            if time.time() - t0 > within:
                raise SystemExit(f"{self.name} did not boot:\n{self.out[-2000:]}")
            time.sleep(0.2)
        time.sleep(1)

    def sh(self, cmd, within=120):
        self.seq += 1
        marker = f"FVB{self.seq}X"
        start = len(self.out)
        self.p.stdin.write(f"{cmd}; echo {marker}$?Y\n".encode())
        self.p.stdin.flush()
        t0 = time.time()
        while True:
            m = re.search(marker + r"(\d+)Y", self.out[start:])
            if m:
                return int(m.group(1)), self.out[start:start + m.start()]
            if time.time() - t0 > within:
                raise SystemExit(f"{self.name}: {cmd} timed out:\n{self.out[start:][-2000:]}")
            time.sleep(0.1)

    def stop(self):
        self.p.kill()
        self.p.wait()


def start_ferrovsd(work, socks, offloads):
    run_dir = os.path.join(work, "run")
    os.makedirs(run_dir, exist_ok=True)
    extra = "" if offloads else "offloads = false\n"
    cfg = "".join(
        f'[[port]]\nname = "vhost{i}"\ntype = "vhost-user"\npath = "{s}"\nmode = "client"\n{extra}'
        for i, s in enumerate(socks))
    with open(os.path.join(work, "fv.toml"), "w") as f:
        f.write(cfg)
    p = subprocess.Popen([FERROVSD, "--config", os.path.join(work, "fv.toml"), "--run-dir", run_dir,
                          "--pmd-cores", "1"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "fv.log"), "w"))
    return lambda: (p.terminate(), p.wait())


def start_ovs(work, socks):
    d = os.path.join(work, "ovs")
    os.makedirs(d)
    env = dict(os.environ, OVS_RUNDIR=d, OVS_DBDIR=d, OVS_LOGDIR=d, OVS_SYSCONFDIR=d)
    vsctl = ["ovs-vsctl", f"--db=unix:{d}/db.sock", "--timeout=60"]
    run("ovsdb-tool", "create", f"{d}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema", env=env)
    run("ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb.pid", "--detach",
        f"--log-file={d}/ovsdb.log", env=env)
    run(*vsctl, "--no-wait", "init", env=env)
    run(*vsctl, "--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
        "other_config:pmd-cpu-mask=0x2", "other_config:dpdk-lcore-mask=0x1", "other_config:dpdk-socket-mem=1024",
        "other_config:dpdk-extra=--no-pci --file-prefix fvb-ovs", "other_config:userspace-tso-enable=true",
        "other_config:pmd-maxsleep=100", env=env)
    vswitchd = shutil.which("ovs-vswitchd") or "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
    if os.path.exists("/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"):
        vswitchd = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
    run("taskset", "-c", "0", vswitchd, f"unix:{d}/db.sock", f"--pidfile={d}/vswitchd.pid", "--detach",
        f"--log-file={d}/vswitchd.log", env=env)
    run(*vsctl, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev", env=env)
    for i, s in enumerate(socks):
        run(*vsctl, "add-port", "br0", f"vhu{i}", "--", "set", "Interface", f"vhu{i}",
            "type=dpdkvhostuserclient", f"options:vhost-server-path={s}", env=env)

    def stop():
        for pidfile in ("vswitchd.pid", "ovsdb.pid"):
            try:
                pid = int(open(os.path.join(d, pidfile)).read())
                os.kill(pid, 9)
            except (OSError, ValueError):
                pass
        time.sleep(0.5)
        subprocess.run("rm -rf /var/run/dpdk/fvb-ovs", shell=True)
    return stop


def one_run(switch):
    work = tempfile.mkdtemp(prefix="fv-vmtcp-")
    socks = [os.path.join(work, f"vm{i}.sock") for i in range(2)]
    a = b = None
    stop = None
    try:
        a, b = Guest("a", socks[0], 1, qemu_server=True), Guest("b", socks[1], 2, qemu_server=True)
        for _ in range(100):
            if all(os.path.exists(s) for s in socks):
                break
            time.sleep(0.1)
        if switch == "ovs":
            stop = start_ovs(work, socks)
        else:
            stop = start_ferrovsd(work, socks, offloads=(switch == "ferrovsd"))
        a.wait_ready()
        b.wait_ready()
        code, out = a.sh("ping -c 30 -w 30 -W 1 10.0.0.2 | grep -q 'bytes from'")
        if code != 0:
            raise SystemExit(f"{switch}: guests cannot reach each other:\n{out}")
        _, tso = a.sh("/sbin/ethtool -k eth0 | grep tcp-segmentation-offload")
        b.sh("iperf3 -s -D")
        time.sleep(1)
        code, out = a.sh(f"timeout {SECS + 20} iperf3 -c 10.0.0.2 -t {SECS} -f k", within=SECS + 60)
        m = re.findall(r"([\d.]+) Kbits/sec\s+\d*\s*sender", out)
        if code != 0 or not m:
            stats = ""
            if switch == "ovs":
                d = os.path.join(work, "ovs")
                stats = subprocess.run(["ovs-vsctl", f"--db=unix:{d}/db.sock", "--columns=name,statistics",
                                        "list", "interface"], capture_output=True, text=True).stdout
                stats += "".join(l for l in open(os.path.join(d, "vswitchd.log")) if "|WARN|" in l or "|ERR|" in l)
            raise SystemExit(f"{switch}: iperf3 failed:\n{out}\n{stats}")
        return {"switch": switch, "mbit_s": float(m[-1]) / 1000, "guest_tso": "on" in tso.split(":")[-1]}
    finally:
        for g in (a, b):
            if g:
                g.stop()
        if stop:
            stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    if not os.path.exists(FERROVSD):
        run("cargo", "build", "--release", "--bin", "ferrovsd", cwd=ROOT)
    run(os.path.join(ROOT, "tests/guest/build.sh"), CACHE)
    results = []
    for r in range(ROUNDS):
        for sw in SWITCHES:
            res = one_run(sw)
            res["round"] = r
            print(json.dumps(res), flush=True)
            results.append(res)
    summary = {}
    for sw in SWITCHES:
        v = [x["mbit_s"] for x in results if x["switch"] == sw]
        summary[sw] = {"median_mbit_s": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v)}
        print(f"{sw:20s} {statistics.median(v):8.0f} Mbit/s (min {min(v):.0f}, max {max(v):.0f}, {len(v)} runs)")
    base = summary.get("ferrovsd", {}).get("median_mbit_s")
    for sw in SWITCHES:
        if base and sw != "ferrovsd":
            print(f"ratio ferrovsd/{sw}: {base / summary[sw]['median_mbit_s']:.2f}")
    with open(OUT, "w") as f:
        json.dump({"seconds": SECS, "runs": results, "summary": summary}, f, indent=1)
    print(f"results: {OUT}")


if __name__ == "__main__":
    sys.exit(main())
