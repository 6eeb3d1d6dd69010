#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed inputs of tests/fuzz/corpus/ in fuzz_frames.c's format.

    [config u8] then records [op u8][arg u16 LE][payload]

See the comment at the top of fuzz_frames.c for the ops. Run from anywhere:
    python3 tests/fuzz/make_seeds.py [outdir]     (default: tests/fuzz/corpus)
The seeds are committed; rerun this only when the format changes.
"""
import os
import struct
import sys

STACK_MAC = bytes([2, 0, 0, 0, 0, 1])
PEER_MAC = bytes([2, 0, 0, 0, 0, 2])
STACK_IP = bytes([10, 0, 0, 1])
PEER_IP = bytes([10, 0, 0, 2])

# config bits
RAW_DRAIN = 1
# op 2 ctl bits
CSUM, SEQ_REL, ACK_REL, NO_DF, SACK, TS, RAWOPT, ACK_UNA = 1, 2, 4, 8, 16, 32, 64, 128
# TCP flags
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16
# op 2 port selectors (low 3 bits)
LAST_FLOW, ECHO, DISCARD, CHARGEN, LISTEN = 0, 1, 2, 3, 4
# op 4 actions
CONNECT, SEND, RECV, SHUTDOWN, CLOSE, ACCEPT, SETOPT, INFO = range(8)

SYN_OPTS = bytes([2, 4, 0x05, 0xb4,   # MSS 1460
                  4, 2,               # SACK permitted
                  1, 3, 3, 7])        # NOP, window scale 7


def rec(op, arg, payload=b""):
    return bytes([op]) + struct.pack("<H", arg) + payload


def frame(payload):
    return rec(0, len(payload), payload)


def ip_raw(payload):
    return rec(1, len(payload), payload)


def tcp(ctl, flags, sel, seq=0, ack=0, win=65535, opts=b"", data=b""):
    if opts:
        ctl |= RAWOPT
    body = bytes([ctl | CSUM, flags, sel]) + struct.pack(
        "<IIHHHB", seq & 0xffffffff, ack & 0xffffffff, win, 0, 0, len(opts)) + opts + data
    return rec(2, len(body), body)


def rel(flags, data=b"", sel=LAST_FLOW, ctl=TS, seq=0, ack=0):
    """A segment in sequence on the last flow the stack sent on."""
    return tcp(ctl | SEQ_REL | ACK_REL, flags, sel, seq, ack, data=data)


def ms(n):
    return rec(3, n)


def secs(n):
    return rec(5, n)


def app(act, slot=0, p=0):
    return rec(4, act | slot << 3 | p << 6)


def icmp_err(typ, code, mtu, flow=0):
    body = bytes([typ, code]) + struct.pack(">H", mtu) + bytes([flow]) + \
        struct.pack("<I", 0) + bytes([8])
    return rec(6, len(body), body)


def cksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def ipv4(proto, l4, src=PEER_IP, dst=STACK_IP):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", cksum(h)) + h[12:] + l4


def icmp_echo(ident=0x1234, seqno=1, data=b"mustang ping"):
    m = struct.pack("!BBHHH", 8, 0, 0, ident, seqno) + data
    return m[:2] + struct.pack("!H", cksum(m)) + m[4:]


def udp(sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    ph = PEER_IP + STACK_IP + struct.pack("!BBH", 0, 17, len(u))
    c = cksum(ph + u) or 0xffff
    return u[:6] + struct.pack("!H", c) + u[8:]


def arp_request():
    return (b"\xff" * 6 + PEER_MAC + b"\x08\x06" +
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) +
            PEER_MAC + PEER_IP + b"\0" * 6 + STACK_IP)


def handshake(sel, ctl=TS):
    return tcp(ctl, SYN, sel, seq=1000, opts=SYN_OPTS) + rel(ACK, sel=LAST_FLOW, ctl=ctl)


SEEDS = {
    # passive open on the echo service, data echoed, peer closes first
    "tcp_echo_handshake_data_fin": bytes([0]) +
        handshake(ECHO) + rel(PSH | ACK, b"hello, mustang\n") + ms(50) + rel(ACK) +
        rel(FIN | ACK) + ms(50) + rel(ACK) + ms(1000),
    # same without options, raw drain (the peer never answers ARP)
    "tcp_echo_raw_drain": bytes([RAW_DRAIN | 4]) +
        tcp(0, SYN, ECHO, seq=7) + rel(ACK, ctl=0) + rel(PSH | ACK, b"x" * 100, ctl=0) + ms(300),
    "arp_request": bytes([RAW_DRAIN]) + frame(arp_request()),
    "icmp_ping": bytes([0]) + ip_raw(ipv4(1, icmp_echo())),
    "icmp_ping_fixup": bytes([0]) + rec(7, 20 + 20, ipv4(1, icmp_echo(data=b"x" * 12))),
    "udp_echo": bytes([0]) + ip_raw(ipv4(17, udp(40000, 7, b"udp echo payload"))),
    # active open from a socket, data both ways, we close first
    "tcp_active_open": bytes([0]) +
        app(CONNECT, 0, 0) + tcp(ACK_REL | TS, SYN | ACK, LAST_FLOW, seq=5000, opts=SYN_OPTS) +
        app(SEND, 0, 2) + ms(10) + rel(ACK) + rel(PSH | ACK, b"reply") + app(RECV, 0, 1) +
        app(CLOSE, 0) + ms(10) + rel(ACK) + rel(FIN | ACK) + ms(10) + secs(61),
    # the user listener: accept, recv, send, half close
    "tcp_listener_accept": bytes([0]) +
        handshake(LISTEN) + app(ACCEPT, 1) + rel(PSH | ACK, b"request") + app(RECV, 1, 10) +
        app(SEND, 1, 1) + app(INFO, 1) + ms(50) + rel(ACK) + app(SHUTDOWN, 1, 1) + ms(10) +
        rel(ACK) + rel(FIN | ACK) + app(CLOSE, 1) + ms(50),
    # chargen floods; the peer SACKs a hole, then resets
    "tcp_chargen_sack_rst": bytes([0]) +
        handshake(CHARGEN) + ms(10) +
        tcp(SEQ_REL | ACK_UNA | SACK | TS, ACK, LAST_FLOW,
            data=struct.pack("<HH", 1000, 500)) +
        ms(300) + rel(ACK) + ms(10) + rel(RST, ctl=SEQ_REL),
    # discard with a zero window, an ICMP frag-needed, timers run out
    "tcp_discard_timers": bytes([0]) +
        handshake(DISCARD) + app(INFO, 0) + rel(PSH | ACK, b"d" * 1000) +
        icmp_err(3, 4, 576, 0) + ms(200) + secs(10) + secs(120) + secs(7300),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
