#!/usr/bin/env python3
"""Summary of density.sh runs: per (switch, silent ports) the median Mpps
(range) of the busy pair, busy cycles per packet, the idle PMD's CPU share
and the wake-up latency; ratios to the same switch with no silent port and
ferrovsd/OVS; a PNG of Mpps against ports for both switches.

usage: density_report.py RESULTS.jsonl [RESULTS.jsonl ...] [OUT.png]
(several files: runs of several invocations, e.g. the 998-port rounds run apart)
"""
import json
import statistics
import sys


def main():
    args = sys.argv[1:]
    png = args.pop() if args and args[-1].endswith(".png") else None
    rows = [json.loads(l) for path in args for l in open(path) if l.strip()]
    rows = [r for r in rows if "silent_ports" in r and not r.get("disturbed")]
    cases = {}
    for r in rows:
        cases.setdefault((r["switch"], r["silent_ports"]), []).append(r)
    med = {}
    for (sw, n), rs in sorted(cases.items()):
        m = [r["mpps"] for r in rs]
        busy = [r["processing_cycles_per_packet"] for r in rs if r.get("processing_cycles_per_packet")]
        idle = [r["idle_pmd_share"] for r in rs]
        med[(sw, n)] = statistics.median(m)
        lat = [r["wake_latency"] for r in rs if r.get("wake_latency")]
        line = (f"{sw:<9} {n:>5} silent: {statistics.median(m):6.2f} Mpps ({min(m):.2f}-{max(m):.2f}), "
                f"busy {statistics.median(busy) if busy else float('nan'):4.0f} cyc/pkt, "
                f"idle PMD {100 * statistics.median(idle):5.1f}% of its core")
        if lat:
            line += (f", wake-up latency p50 {statistics.median(l['p50_us'] for l in lat):.1f} us"
                     f" p99 {statistics.median(l['p99_us'] for l in lat):.1f} us")
        print(line + f"  [{len(rs)} runs]")
    # This VM runs each process in a fast or a slow mode (about 2x apart):
    # medians within each mode compare like with like (split at the middle
    # of each count's range, when it spans both).
    for n in sorted({n for _, n in cases}):
        rs = [r for r in rows if r["silent_ports"] == n]
        lo, hi = min(r["mpps"] for r in rs), max(r["mpps"] for r in rs)
        if hi < 1.4 * lo:
            continue
        mid = (lo + hi) / 2
        for mode, keep in (("fast", lambda r: r["mpps"] >= mid), ("slow", lambda r: r["mpps"] < mid)):
            for sw in sorted({r["switch"] for r in rs}):
                m = [r["mpps"] for r in rs if r["switch"] == sw and keep(r)]
                if m:
                    print(f"{mode} mode: {sw:<14} {n:>5} silent: {statistics.median(m):.2f} Mpps "
                          f"({min(m):.2f}-{max(m):.2f}, {len(m)} runs)")
    for (sw, n), v in sorted(med.items()):
        base = med.get((sw, 0))
        if base and n:
            print(f"ratio {sw} {n} silent / none: {v / base:.2f}")
        o = med.get(("ovs", n))
        if sw.startswith("ferrovsd") and o:
            print(f"ratio {sw}/ovs at {n} silent: {v / o:.2f}")
    if png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4))
        # Every run a dot: this VM runs each process in a fast or a slow mode
        # (~2x apart), and a median across both would describe neither.
        # Runs that forwarded nothing (a switch that failed to set up its
        # ports) are failures, not rates, and are left out.
        for k, (sw, label) in enumerate((("ferrovsd", "ferrovsd (defaults)"),
                                         ("ferrovsd-poll", "ferrovsd, sleep-max 0"),
                                         ("ovs", "OVS-DPDK 3.1 (defaults)"))):
            pts = [((r["silent_ports"] + 2) * (1.06 ** (k - 1)), r["mpps"])
                   for r in rows if r["switch"] == sw and r["mpps"] > 0.01]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("vhost-user ports on the PMD core (2 busy, the rest silent)")
        ax.set_ylabel("busy pair, Mpps (64 B, one dot per run)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        print(f"plot: {png}")


if __name__ == "__main__":
    main()
