#!/usr/bin/env python3
"""Summarises the JSON lines of compare.sh: median/min/max Mpps and cycles per
packet per (switch, frame size), and the ferrovsd/OVS and ferrovsd/testpmd
ratios of the medians. usage: report.py RUNS.jsonl OUT.json"""
import json
import statistics
import sys


def main():
    runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    cases = {}
    for r in runs:
        if r.get("disturbed"):
            continue
        cases.setdefault((r["switch"], r["size"]), []).append(r)
    rows = []
    print(f"{'switch':<10} {'size':>5} {'runs':>4} {'Mpps median':>12} {'min':>7} {'max':>7} {'cycles/pkt':>11} {'busy cyc/pkt':>12} {'switch CPU':>10} {'gen CPU':>8}")
    for (sw, size), rs in sorted(cases.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        mpps = [r["mpps"] for r in rs]
        cyc = [r["cycles_per_packet"] for r in rs]
        row = {
            "switch": sw, "size": size, "runs": len(rs),
            "mpps_median": statistics.median(mpps), "mpps_min": min(mpps), "mpps_max": max(mpps),
            "cycles_per_packet_median": statistics.median(cyc),
            "processing_cycles_per_packet_median": (
                statistics.median(r["processing_cycles_per_packet"] for r in rs)
                if all(r.get("processing_cycles_per_packet") is not None for r in rs) else None),
            "switch_cpu_share_median": statistics.median(r["switch_cpu"] for r in rs),
            "generator_cpu_share_median": statistics.median(r["gen_cpu"] for r in rs),
        }
        rows.append(row)
        p = row["processing_cycles_per_packet_median"]
        busy = "-" if p is None else f"{p:.0f}"
        print(f"{sw:<10} {size:>5} {len(rs):>4} {row['mpps_median']:>12.2f} {row['mpps_min']:>7.2f} {row['mpps_max']:>7.2f} "
              f"{row['cycles_per_packet_median']:>11.0f} {busy:>12} {100*row['switch_cpu_share_median']:>9.0f}% {100*row['generator_cpu_share_median']:>7.0f}%")
    ratios = {}
    med = {(r["switch"], r["size"]): r["mpps_median"] for r in rows}
    for size in sorted({r["size"] for r in rows}):
        f = med.get(("ferrovsd", size))
        for peer in ("ovs", "testpmd"):
            p = med.get((peer, size))
            if f and p:
                ratios[f"ferrovsd/{peer}@{size}B"] = f / p
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.2f}")
    disturbed = sum(1 for r in runs if r.get("disturbed"))
    if disturbed:
        print(f"({disturbed} disturbed run(s) left out: a thread got less than 97% of its core)")
    json.dump({"cases": rows, "ratios": ratios, "runs": runs}, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
