#!/usr/bin/env python3
"""Tables for compare.sh.

usage: summarize.py --line JSON              one run, one line (progress)
       summarize.py --meta META RUNS OUT     the table of all runs (JSON lines
                                             in RUNS) to stdout, everything to OUT

Per (switch, frame size) the table uses the runs that worked and were not
disturbed (both forwarding threads got at least min_share of their core); if
none, the disturbed ones, marked with '*'."""
import json
import statistics
import sys

NAMES = {"ferrovsd": "ferrovsd", "ovs": "OVS-DPDK", "testpmd": "testpmd-vhost"}


def fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def one_line(r):
    head = f"{NAMES.get(r['switch'], r['switch'])} {r['size']}B rep {r['rep']} try {r['attempt']}:"
    if not r.get("ok"):
        return f"{head} FAILED: {r.get('error')}"
    return (f"{head} {r['mpps']:.3f} Mpps, {fmt(r['cycles_per_packet'], '.0f')} cyc/pkt "
            f"(busy {fmt(r.get('busy_cycles_per_packet'), '.0f')} c/p, {fmt(r.get('switch_busy') and 100 * r['switch_busy'], '.0f')}% of the window), loss {fmt(r['loss'] and 100 * r['loss'], '.2f', '0')}%, "
            f"CPU share switch {100 * r['switch_share']:.1f}% gen {100 * r['gen_share']:.1f}%"
            + ("  DISTURBED" if r.get("disturbed") else ""))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summary(meta, runs):
    cases, order = {}, []
    for sw in meta["switches"]:
        for size in map(int, meta["sizes"]):
            order.append((sw, size))
    rows = []
    for sw, size in order:
        rs = [r for r in runs if r["switch"] == sw and r["size"] == size]
        ok = [r for r in rs if r.get("ok")]
        good = [r for r in ok if not r.get("disturbed")]
        use, flag = (good, "") if good else (ok, "*" if ok else "")
        row = {"switch": sw, "size": size, "runs_used": len(use), "runs_total": len(rs),
               "runs_disturbed": sum(1 for r in ok if r.get("disturbed")),
               "runs_failed": sum(1 for r in rs if not r.get("ok")), "disturbed_only": bool(flag)}
        if use:
            mpps = [r["mpps"] for r in use]
            row.update(mpps_median=med(mpps), mpps_min=min(mpps), mpps_max=max(mpps),
                       cycles_per_packet_median=med(r["cycles_per_packet"] for r in use),
                       busy_cycles_per_packet_median=med(r.get("busy_cycles_per_packet") for r in use),
                       loss_median=med(r.get("loss") for r in use),
                       switch_busy_median=med(r.get("switch_busy") for r in use),
                       switch_share_median=med(r["switch_share"] for r in use),
                       generator_share_median=med(r["gen_share"] for r in use))
        rows.append(row)
    ratios = {}
    for size in map(int, meta["sizes"]):
        get = {r["switch"]: r for r in rows if r["size"] == size and r.get("mpps_median")}
        f = get.get("ferrovsd")
        for peer in ("ovs", "testpmd"):
            p = get.get(peer)
            if f and p:
                ratios[f"ferrovsd/{peer}@{size}"] = {
                    "mpps": f["mpps_median"] / p["mpps_median"],
                    "cycles_per_packet": (f["cycles_per_packet_median"] / p["cycles_per_packet_median"]
                                          if f.get("cycles_per_packet_median") and p.get("cycles_per_packet_median") else None)}
    return rows, ratios


def table(meta, rows, ratios):
    out = []
    out.append(f"{'case':<14} {'size':>5} {'runs':>5} {'Mpps med':>9} {'min':>7} {'max':>7} {'cyc/pkt':>8} "
               f"{'busy c/p':>8} {'busy%':>6} {'loss%':>6} {'sw CPU':>7} {'gen CPU':>7}")
    for r in rows:
        name = NAMES.get(r["switch"], r["switch"]) + ("*" if r["disturbed_only"] else "")
        runs = f"{r['runs_used']}/{r['runs_total']}"
        if "mpps_median" not in r:
            out.append(f"{name:<14} {r['size']:>5} {runs:>5}   (no working run)")
            continue
        out.append(f"{name:<14} {r['size']:>5} {runs:>5} {r['mpps_median']:>9.3f} {r['mpps_min']:>7.3f} {r['mpps_max']:>7.3f} "
                   f"{fmt(r['cycles_per_packet_median'], '.0f'):>8} {fmt(r['busy_cycles_per_packet_median'], '.0f'):>8} "
                   f"{fmt(r['switch_busy_median'] and 100 * r['switch_busy_median'], '.0f'):>6} "
                   f"{fmt(r['loss_median'] is not None and 100 * r['loss_median'], '.2f'):>6} "
                   f"{100 * r['switch_share_median']:>6.1f}% {100 * r['generator_share_median']:>6.1f}%")
    for k, v in ratios.items():
        who, size = k.split("@")
        out.append(f"ratio {who:<17} at {size:>4} B: Mpps {v['mpps']:.2f}x, cycles/packet {fmt(v['cycles_per_packet'], '.2f')}x")
    out.append("runs = used/total: failed runs, and disturbed ones (a forwarding thread got < min_share of what a lone")
    out.append(f"  busy loop gets on its CPU; min_share {meta.get('min_share')}) are kept in the JSON only; * = only disturbed runs were left")
    out.append("cyc/pkt = switch thread CPU time x TSC / delivered packets; busy c/p = the switch's own busy-cycle counter /")
    out.append("  packets it received; busy% = that counter / window (~100 = the switch is the bottleneck, less = the generator is);")
    out.append("  sw/gen CPU = share of a core the switch / generator forwarding thread got")
    return "\n".join(out)


def main():
    if sys.argv[1:2] == ["--line"]:
        print(one_line(json.loads(sys.argv[2])))
        return
    if sys.argv[1:2] != ["--meta"] or len(sys.argv) != 5:
        sys.exit(__doc__)
    meta = json.load(open(sys.argv[2]))
    runs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
    rows, ratios = summary(meta, runs)
    text = table(meta, rows, ratios)
    print(text)
    with open(sys.argv[4], "w") as f:
        json.dump({"meta": meta, "summary": rows, "ratios": ratios, "table": text.split("\n"), "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
