#!/usr/bin/env python3
"""Writes a pcap holding one Ethernet/IPv4/UDP frame for testpmd's net_pcap
generator (replayed forever with infinite_rx=1).

usage: mkpcap.py SIZE OUT.pcap DST_MAC SRC_MAC
SIZE counts the 4-byte FCS as RFC 2544 does, so 64 and 1518 give 60- and
1514-byte frames in the file (what a virtio ring carries: DPDK and vhost-user
never see an FCS). 1518 therefore fits a 1500-byte MTU."""
import struct
import sys


def checksum16(data):
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(text):
    b = bytes.fromhex(text.replace(":", ""))
    if len(b) != 6:
        raise SystemExit(f"mkpcap: bad MAC {text!r}")
    return b


def frame(size, dst, src):
    l2 = size - 4                      # without FCS
    udp_len = l2 - 14 - 20
    if udp_len < 8:
        raise SystemExit(f"mkpcap: frame size {size} is below 64")
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0,
                               bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])))
    ip[10:12] = struct.pack("!H", checksum16(bytes(ip)))
    udp = struct.pack("!HHHH", 4000, 4001, udp_len, 0)   # UDP checksum 0 = none
    payload = bytes(i & 0xFF for i in range(udp_len - 8))
    return mac(dst) + mac(src) + b"\x08\x00" + bytes(ip) + udp + payload


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    size, out, dst, src = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    f = frame(size, dst, src)
    with open(out, "wb") as o:
        # classic pcap: magic, v2.4, tz 0, sigfigs 0, snaplen 65535, linktype 1 (Ethernet)
        o.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        o.write(struct.pack("<IIII", 0, 0, len(f), len(f)))
        o.write(f)


if __name__ == "__main__":
    main()
