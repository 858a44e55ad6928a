#!/usr/bin/env python3
"""An OpenFlow 1.3 client that changes one rule every 10 ms until SIGTERM: it
adds `priority=1000,ip,nw_dst=10.0.195.80,actions=output:2` (no benchmark
traffic matches it) and deletes it again, alternately, each FLOW_MOD followed by
a BARRIER_REQUEST, reading the replies as they come. On exit it prints
{"rule_changes": N, "barriers": M, "errors": E} (barrier replies) on stdout.

compare.sh runs it beside the switches named `SWITCH+churn` (forwarding while
the rules change vs the same tables idle).

usage: rule_churn.py unix:PATH|tcp:IP:PORT [PERIOD_MS=10]
"""
import json
import os
import signal
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from of_burst import connect, count_replies, flow_mod, msg  # noqa: E402


def main():
    target = sys.argv[1]
    period = (int(sys.argv[2]) if len(sys.argv) > 2 else 10) / 1000
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    s = connect(target)
    s.sendall(msg(0, struct.pack("!HHI", 1, 8, 1 << 4), 1))  # HELLO, 1.3 only
    counts = {"rule_changes": 0, "barriers": 0, "errors": 0}
    threading.Thread(target=count_replies, args=(s, counts), daemon=True).start()
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        # The same rule each time: add on even ticks, delete (command 3) on odd.
        s.sendall(flow_mod(50_000, 0 if i % 2 == 0 else 3) + msg(20, b"", 9))
        i += 1
        counts["rule_changes"] = i
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))
    time.sleep(0.1)
    s.close()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
