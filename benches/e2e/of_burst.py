#!/usr/bin/env python3
"""A controller-like burst of OpenFlow 1.3 FLOW_MODs, as Faucet sends them:
N adds (each its own match, one table), a BARRIER_REQUEST after every K, all
pipelined; the time until the last BARRIER_REPLY is the switch's rate.

usage: of_burst.py unix:PATH|tcp:IP:PORT N [K] [--delete]   -> prints JSON
"""
import json
import socket
import struct
import sys
import threading
import time


def msg(t, body, xid):
    return struct.pack("!BBHI", 4, t, 8 + len(body), xid) + body


def oxm(field, value, n):
    return struct.pack("!I", (0x8000 << 16) | (field << 9) | n) + value.to_bytes(n, "big")


def flow_mod(i, command=0):
    fields = oxm(5, 0x0800, 2) + oxm(12, 0x0A000000 + i, 4)  # ip, nw_dst=10.0.0.0+i
    l = 4 + len(fields)
    match = struct.pack("!HH", 1, l) + fields + b"\0" * ((-l) % 8)
    out = struct.pack("!HHIH6x", 0, 16, 2, 0)  # output:2
    ins = struct.pack("!HH4x", 4, 8 + len(out)) + out
    body = struct.pack("!QQBBHHHIIIH2x", 0xb0b, 0, 0, command, 0, 0, 1000,
                       0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0) + match + (ins if command == 0 else b"")
    return msg(14, body, 1000 + i)


def connect(target):
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target[5:])
    else:
        host, port = target[4:].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    return s


def read_msgs(s, buf):
    while len(buf) >= 8:
        t = buf[1]
        n = struct.unpack("!H", buf[2:4])[0]
        if len(buf) < n:
            break
        yield t, bytes(buf[:n])
        del buf[:n]


def count_replies(s, counts, until=None):
    """Reads replies until the socket ends (or `until` barrier replies),
    counting barrier replies and errors into `counts`."""
    buf = bytearray()
    while until is None or counts["barriers"] < until:
        try:
            data = s.recv(1 << 16)
        except OSError:
            return
        if not data:
            return
        buf += data
        for t, _ in read_msgs(s, buf):
            if t == 21:
                counts["barriers"] += 1
            elif t == 1:
                counts["errors"] += 1


def main():
    target, n = sys.argv[1], int(sys.argv[2])
    k = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3].isdigit() else 1
    delete = "--delete" in sys.argv
    s = connect(target)
    s.sendall(msg(0, struct.pack("!HHI", 1, 8, 1 << 4), 1))
    want = n // k + (1 if n % k else 0)
    counts = {"barriers": 0, "errors": 0}
    # Replies are read while requests go out: a switch may drop a client
    # that lets its replies pile up (OVS resets it).
    rd = threading.Thread(target=count_replies, args=(s, counts, want))
    t0 = time.monotonic()
    rd.start()
    out = bytearray()
    for i in range(n):
        out += flow_mod(i, 3 if delete else 0)
        if (i + 1) % k == 0 or i + 1 == n:
            out += msg(20, b"", 7)
        if len(out) > 1 << 14:
            s.sendall(out)
            out.clear()
    s.sendall(out)
    rd.join()
    got, errors = counts["barriers"], counts["errors"]
    dt = time.monotonic() - t0
    print(json.dumps({"flow_mods": n, "barrier_every": k, "barriers": got, "errors": errors,
                      "seconds": round(dt, 3), "per_second": round(n / dt)}))


if __name__ == "__main__":
    main()
