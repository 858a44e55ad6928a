#!/usr/bin/env python3
"""Writes a one-frame pcap (UDP/IPv4) of a given size for testpmd's net_pcap
generator: dst = the sink port's MAC, src = the source port's MAC.

usage: frames.py SIZE OUT.pcap [DST_MAC] [SRC_MAC]
SIZE is the Ethernet frame size including the 4-byte FCS, as in RFC 2544."""
import struct
import sys


def frame(size, dst, src):
    payload = size - 4 - 14 - 20 - 8
    if payload < 0:
        raise SystemExit(f"frame size {size} is below 46")
    eth = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex(src.replace(":", "")) + b"\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + payload, 0, 0, 64, 17, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    csum = 0
    for i in range(0, 20, 2):
        csum += (ip[i] << 8) | ip[i + 1]
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    udp = struct.pack("!HHHH", 1024, 1024, 8 + payload, 0)
    return eth + ip + udp + bytes(payload)


def main():
    size, out = int(sys.argv[1]), sys.argv[2]
    dst = sys.argv[3] if len(sys.argv) > 3 else "02:00:00:00:00:02"
    src = sys.argv[4] if len(sys.argv) > 4 else "02:00:00:00:00:01"
    f = frame(size, dst, src)
    with open(out, "wb") as o:
        o.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        o.write(struct.pack("<IIII", 0, 0, len(f), len(f)))
        o.write(f)


if __name__ == "__main__":
    main()
