#!/usr/bin/env python3
"""Summarises the JSON lines of compare.sh: median/min/max Mpps and cycles per
packet per (switch, frame size, generator), the ferrovsd/OVS and
ferrovsd/testpmd ratios of the medians, the ferrovs/dpdk generator ratio
through the same switch, and latency percentiles.
usage: report.py RUNS.jsonl OUT.json"""
import json
import statistics
import sys


def main():
    all_runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    runs = [r for r in all_runs if r.get("kind") != "latency"]
    lat_runs = [r for r in all_runs if r.get("kind") == "latency"]
    cases = {}
    for r in runs:
        if r.get("disturbed"):
            continue
        cases.setdefault((r["switch"], r["size"], r.get("generator", "dpdk")), []).append(r)
    rows = []
    print(f"{'switch':<10} {'size':>5} {'gen':>8} {'runs':>4} {'Mpps median':>12} {'min':>7} {'max':>7} {'cycles/pkt':>11} {'busy cyc/pkt':>12} {'switch CPU':>10} {'gen CPU':>8}")
    for (sw, size, gen), rs in sorted(cases.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        mpps = [r["mpps"] for r in rs]
        cyc = [r["cycles_per_packet"] for r in rs]
        row = {
            "switch": sw, "size": size, "generator": gen, "runs": len(rs),
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
        print(f"{sw:<10} {size:>5} {gen:>8} {len(rs):>4} {row['mpps_median']:>12.2f} {row['mpps_min']:>7.2f} {row['mpps_max']:>7.2f} "
              f"{row['cycles_per_packet_median']:>11.0f} {busy:>12} {100*row['switch_cpu_share_median']:>9.0f}% {100*row['generator_cpu_share_median']:>7.0f}%")
    ratios = {}
    med = {(r["switch"], r["size"], r["generator"]): r["mpps_median"] for r in rows}
    for size in sorted({r["size"] for r in rows}):
        for gen in sorted({r["generator"] for r in rows}):
            f = med.get(("ferrovsd", size, gen))
            for peer in ("ovs", "testpmd", "ferrovsd-base"):
                p = med.get((peer, size, gen))
                if f and p:
                    ratios[f"ferrovsd/{peer}@{size}B,{gen}-gen"] = f / p
            # Rule churn: each switch against its own idle tables, then the two switches.
            for sw in ("ferrovsd", "ovs"):
                idle, churn = med.get((sw, size, gen)), med.get((sw + "+churn", size, gen))
                if idle and churn:
                    ratios[f"{sw}+churn/{sw}@{size}B,{gen}-gen"] = churn / idle
            f, p = med.get(("ferrovsd+churn", size, gen)), med.get(("ovs+churn", size, gen))
            if f and p:
                ratios[f"ferrovsd+churn/ovs+churn@{size}B,{gen}-gen"] = f / p
        for sw in sorted({r["switch"] for r in rows}):
            a, b = med.get((sw, size, "ferrovs")), med.get((sw, size, "dpdk"))
            if a and b:
                ratios[f"ferrovs-gen/dpdk-gen@{sw},{size}B"] = a / b
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.2f}")
    by_mode = modes(runs)
    json_modes = {f"{sw}@{size}B,{gen}-gen,{mode}": v for (sw, size, gen, mode), v in by_mode.items()}
    disturbed = sum(1 for r in runs if r.get("disturbed"))
    if disturbed:
        print(f"({disturbed} disturbed run(s) left out: a thread got less than 97% of its core)")
    latency = []
    for sw in sorted({r["switch"] for r in lat_runs}):
        rs = [r for r in lat_runs if r["switch"] == sw and r.get("latency")]
        if not rs:
            continue
        row = {"switch": sw, "size": rs[0]["size"], "runs": len(rs),
               "rate_mpps_median": statistics.median(r["rate_pps"] for r in rs) / 1e6}
        for q in ("p50_us", "p99_us", "p999_us"):
            row[q + "_median"] = statistics.median(r["latency"][q] for r in rs)
        latency.append(row)
        how = "50% of its max" if all(r["max_mpps"] for r in rs) else "fixed rate"
        row["rate"] = how
        print(f"latency {sw} {row['size']} B at {row['rate_mpps_median']:.2f} Mpps ({how}): "
              f"p50 {row['p50_us_median']:.1f} us, p99 {row['p99_us_median']:.1f} us, p99.9 {row['p999_us_median']:.1f} us ({len(rs)} runs)")
    json.dump({"cases": rows, "ratios": ratios, "by_mode": json_modes, "latency": latency, "runs": all_runs},
              open(sys.argv[2], "w"), indent=1)


def modes(runs):
    """This VM runs each process in a fast or a slow mode (about 2x apart),
    chosen at its start: a median over a mix says more about how many runs
    drew which mode than about the switch. Split each (size, generator)'s
    runs at the middle of their Mpps range and give medians per mode, and
    ferrovsd's ratio to each peer within a mode."""
    out = {}
    groups = {}
    for r in runs:
        if not r.get("disturbed"):
            groups.setdefault((r["size"], r.get("generator", "dpdk")), []).append(r)
    for (size, gen), rs in sorted(groups.items()):
        lo, hi = min(r["mpps"] for r in rs), max(r["mpps"] for r in rs)
        if hi < 1.4 * lo:
            continue  # one mode only
        mid = (lo + hi) / 2
        for mode, keep in (("fast", lambda r: r["mpps"] >= mid), ("slow", lambda r: r["mpps"] < mid)):
            med = {}
            for sw in sorted({r["switch"] for r in rs}):
                m = [r for r in rs if r["switch"] == sw and keep(r)]
                if not m:
                    continue
                busy = [r["processing_cycles_per_packet"] for r in m if r.get("processing_cycles_per_packet") is not None]
                med[sw] = statistics.median(r["mpps"] for r in m)
                out[(sw, size, gen, mode)] = {
                    "runs": len(m), "mpps_median": med[sw], "mpps_min": min(r["mpps"] for r in m),
                    "mpps_max": max(r["mpps"] for r in m),
                    "busy_cycles_per_packet_median": statistics.median(busy) if busy else None}
                b = out[(sw, size, gen, mode)]["busy_cycles_per_packet_median"]
                print(f"{mode} mode: {sw:<14} {size:>5} B {gen:>8}-gen {len(m)} runs {med[sw]:.2f} Mpps "
                      f"({min(r['mpps'] for r in m):.2f}-{max(r['mpps'] for r in m):.2f})"
                      + (f", busy {b:.0f} cyc/pkt" if b else ""))
            f = med.get("ferrovsd")
            for peer in ("ovs", "testpmd", "ferrovsd-base"):
                if f and med.get(peer):
                    print(f"{mode} mode ratio ferrovsd/{peer}@{size}B,{gen}-gen: {f / med[peer]:.2f}")
    return out


if __name__ == "__main__":
    main()
