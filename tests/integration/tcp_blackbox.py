# SPDX-License-Identifier: BSD-3-Clause
"""Black-box TCP checks against a running mustangd, with hand-made segments.

Run in the Linux peer's namespace by tcp_blackbox.sh. The segments come from
an address the peer kernel does not own (--sip, default .3 of the subnet,
with a made-up MAC): this script answers Mustang's ARP for it, and the
kernel, which never sees those frames as its own, never sends an RST to a
SYN-ACK it did not expect. Frames go out on a plain AF_PACKET socket; the
replies are read from the same socket (promiscuous) by a thread.

  tcp_blackbox.py --iface IF --dmac MAC --dip IP --mustangctl BIN --ctl PATH
                  [--sip IP] [--linux-ip IP] [--only NAME,...] [--list]

Every check prints "ok   ..." or "FAIL ... : reason"; exit 1 if any failed.
"""

import argparse
import collections
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mststats  # noqa: E402

import logging  # noqa: E402
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import ARP, IP, TCP, Ether, Raw, checksum  # noqa: E402

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
M32 = 0xFFFFFFFF

A = None          # parsed arguments
FAILS = []


def ok(msg):
    print("ok   " + msg, flush=True)


def bad(msg):
    FAILS.append(msg)
    print("FAIL " + msg, flush=True)


def expect(cond, msg, why=""):
    if cond:
        ok(msg)
    else:
        bad(msg + (": " + why if why else ""))
    return cond


def sadd(a, b):
    return (a + b) & M32


def sdiff(a, b):
    """a - b as a signed 32-bit sequence distance."""
    d = (a - b) & M32
    return d - (1 << 32) if d & 0x80000000 else d


def opts_of(t):
    return {k: v for k, v in t.options} if t is not None else {}


# --- wire --------------------------------------------------------------------

class Wire:
    def __init__(self, iface, smac, sip, dmac, dip):
        self.smac, self.sip, self.dmac, self.dip = smac, sip, dmac, dip
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.s.bind((iface, ETH_P_ALL))
        idx = socket.if_nametoindex(iface)
        mreq = idx.to_bytes(4, sys.byteorder) + PACKET_MR_PROMISC.to_bytes(2, sys.byteorder) \
            + b"\0" * 10
        self.s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        self.s.settimeout(0.2)
        self.cv = threading.Condition()
        self.q = collections.defaultdict(list)   # our port -> [(t, IP)]
        self.watch = set()                         # our ports whose segments we keep
        self.counted = collections.Counter()       # other ports: counted only
        self.stop = False
        self.th = threading.Thread(target=self.rx, daemon=True)
        self.th.start()
        self.sip_b = socket.inet_aton(sip)
        self.dip_b = socket.inet_aton(dip)

    def rx(self):
        while not self.stop:
            try:
                f, addr = self.s.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == 4:        # PACKET_OUTGOING: our own frames
                continue
            et = f[12:14]
            if et == b"\x08\x06" and len(f) >= 42 and f[21] == 1 and f[38:42] == self.sip_b:
                # who-has sip: answer as sip
                rep = Ether(src=self.smac, dst=f[6:12]) / ARP(
                    op=2, hwsrc=self.smac, psrc=self.sip,
                    hwdst=f[22:28], pdst=socket.inet_ntoa(f[28:32]))
                self.send_raw(bytes(rep))
                continue
            if et != b"\x08\x00" or len(f) < 34 or f[23] != 6 or f[30:34] != self.sip_b:
                continue
            ihl = (f[14] & 15) * 4
            dport = struct.unpack("!H", f[14 + ihl + 2:14 + ihl + 4])[0]
            if dport not in self.watch:
                self.counted[dport] += 1
                continue
            ip = IP(f[14:])
            with self.cv:
                self.q[dport].append((time.monotonic(), ip))
                self.cv.notify_all()

    def send_raw(self, frame):
        self.s.send(frame)

    def ip(self, **kw):
        return IP(src=self.sip, dst=self.dip, **kw)

    def send(self, pkt):
        self.send_raw(bytes(Ether(src=self.smac, dst=self.dmac) / pkt))

    def take(self, port, pred=None, timeout=1.0):
        """First queued segment to `port` that satisfies pred (removed)."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                lst = self.q[port]
                for i, (t, ip) in enumerate(lst):
                    if pred is None or pred(ip[TCP]):
                        del lst[i]
                        return t, ip[TCP]
                left = end - time.monotonic()
                if left <= 0:
                    return None, None
                self.cv.wait(left)

    def collect(self, port, duration):
        """Everything that arrives for `port` within `duration` seconds."""
        time.sleep(duration)
        with self.cv:
            out = [(t, ip[TCP]) for t, ip in self.q[port]]
            self.q[port].clear()
        return out

    def flush(self, port):
        with self.cv:
            self.q[port].clear()


W = None
_next_port = [20000 + random.randrange(0, 20000)]


def new_port():
    _next_port[0] += 1
    W.watch.add(_next_port[0])
    return _next_port[0]


# --- a connection from our fake address ----------------------------------------

def now_ts():
    return int(time.monotonic() * 1000) & M32


class Conn:
    """One TCP connection driven by hand. seq/ack are ours; rcv is the next
    byte expected from Mustang."""

    def __init__(self, dport, sack=True, ts=True, ws=7, mss=1460, win=65535):
        self.dport, self.sport = dport, new_port()
        self.sack, self.ts, self.ws, self.mss, self.win = sack, ts, ws, mss, win
        self.iss = random.randrange(1 << 32)
        self.seq = self.iss
        self.rcv = None
        self.synack = None
        self.peer_ts = 0
        self.tsval = now_ts()

    def syn_opts(self):
        o = []
        if self.mss is not None:
            o.append(("MSS", self.mss))
        if self.sack:
            o.append(("SAckOK", b""))
        if self.ts:
            o.append(("Timestamp", (self.tsval, 0)))
        if self.ws is not None:
            o += [("NOP", None), ("WScale", self.ws)]
        return o

    def opts(self, tsval=None):
        if not self.ts:
            return []
        if tsval is None:
            self.tsval = max(self.tsval + 1, now_ts())
            tsval = self.tsval
        return [("NOP", None), ("NOP", None), ("Timestamp", (tsval, self.peer_ts))]

    def seg(self, flags="A", data=b"", seq=None, ack=None, win=None, options=None, tsval=None):
        t = TCP(sport=self.sport, dport=self.dport, flags=flags,
                seq=self.seq if seq is None else seq,
                ack=(self.rcv or 0) if ack is None else ack,
                window=self.win if win is None else win,
                options=self.opts(tsval) if options is None else options)
        p = W.ip() / t
        if data:
            p = p / Raw(data)
        W.send(p)

    def syn(self, extra_opts=None, seq=None):
        t = TCP(sport=self.sport, dport=self.dport, flags="S",
                seq=self.iss if seq is None else seq, window=self.win,
                options=self.syn_opts() if extra_opts is None else extra_opts)
        W.send(W.ip() / t)

    def wait_synack(self, timeout=2.0):
        _, t = W.take(self.sport, lambda t: t.flags.S and t.flags.A, timeout)
        if t is not None:
            self.synack = t
            self.rcv = sadd(t.seq, 1)
            self.seq = sadd(self.iss, 1)
            o = opts_of(t)
            if "Timestamp" in o:
                self.peer_ts = o["Timestamp"][0]
        return t

    def open(self, win=None):
        self.syn()
        if self.wait_synack() is None:
            return False
        self.seg("A", win=win)
        return True

    def note(self, t):
        o = opts_of(t)
        if "Timestamp" in o:
            self.peer_ts = o["Timestamp"][0]

    def send_data(self, data, mss=1000):
        for i in range(0, len(data), mss):
            self.seg("PA", data[i:i + mss])
            self.seq = sadd(self.seq, len(data[i:i + mss]))

    def read(self, n, timeout=3.0, ack=True):
        """Read n in-order bytes from Mustang (ACKing as we go if ack)."""
        buf = bytearray()
        end = time.monotonic() + timeout
        while len(buf) < n:
            _, t = W.take(self.sport, lambda t: len(bytes(t.payload)) > 0,
                          max(0.0, end - time.monotonic()))
            if t is None:
                break
            self.note(t)
            d = bytes(t.payload)
            off = sdiff(t.seq, self.rcv)
            if off <= 0 and off + len(d) > 0:
                buf += d[-off:]
                self.rcv = sadd(self.rcv, len(d) + off)
                if ack:
                    self.seg("A")
        return bytes(buf)

    def rst(self):
        self.seg("R", options=[])

    def close(self):
        """Our FIN, their FIN, our ACK; True if clean (no RST)."""
        self.seg("FA")
        self.seq = sadd(self.seq, 1)
        _, t = W.take(self.sport, lambda t: t.flags.F or t.flags.R, 3.0)
        if t is None or t.flags.R:
            return False
        self.note(t)
        self.rcv = sadd(t.seq, len(bytes(t.payload)) + 1)
        self.seg("A")
        return True


# --- counters --------------------------------------------------------------------

def stats():
    c, d = mststats.totals(mststats.fetch(A.mustangctl, A.ctl))
    return c, d


class Delta:
    def __enter__(self):
        self.c0, self.d0 = stats()
        return self

    def __exit__(self, *exc):
        self.c1, self.d1 = stats()

    def c(self, name):
        return self.c1.get(name, 0) - self.c0.get(name, 0)

    def d(self, name):
        return self.d1.get(name, 0) - self.d0.get(name, 0)


def echo_ok(c, tag):
    """The connection still carries data both ways."""
    msg = b"still-alive-" + tag.encode()
    c.send_data(msg)
    got = c.read(len(msg), 2.0)
    return got == msg, "echo after: got %r" % got


# --- the checks --------------------------------------------------------------------

def t_handshake():
    c = Conn(7)
    c.syn()
    sa = c.wait_synack()
    if not expect(sa is not None, "handshake: SYN to echo answered by SYN-ACK", "no SYN-ACK in 2 s"):
        return
    o = opts_of(sa)
    expect(sa.ack == sadd(c.iss, 1), "handshake: SYN-ACK acknowledges ISS+1",
           "ack %d, want %d" % (sa.ack, sadd(c.iss, 1)))
    expect(o.get("MSS") == 1460, "handshake: SYN-ACK MSS 1460 (MTU 1500)", "options %r" % sa.options)
    expect("WScale" in o and 0 <= o["WScale"] <= 14,
           "handshake: SYN-ACK window scale offered, 0..14", "options %r" % sa.options)
    expect("SAckOK" in o, "handshake: SYN-ACK SACK-permitted", "options %r" % sa.options)
    expect("Timestamp" in o and o["Timestamp"][1] == c.tsval,
           "handshake: SYN-ACK timestamp echoes our TSval",
           "options %r, our TSval %d" % (sa.options, c.tsval))
    c.seg("A")
    msg = bytes(range(256)) * 4
    c.send_data(msg)
    got = c.read(len(msg))
    expect(got == msg, "handshake: 1024 bytes echoed after the handshake", "got %d bytes" % len(got))
    expect(c.close(), "handshake: clean close (FIN, FIN, ACK, no RST)")

    # No options offered: the SYN-ACK must not offer WS/SACK/TS, and the
    # default MSS (536) applies to what Mustang sends.
    c = Conn(7, sack=False, ts=False, ws=None, mss=None)
    c.syn()
    sa = c.wait_synack()
    if not expect(sa is not None, "no-options SYN answered", "no SYN-ACK"):
        return
    o = opts_of(sa)
    expect(not ({"WScale", "SAckOK", "Timestamp"} & set(o)),
           "no-options SYN: SYN-ACK carries no WS/SACK/TS", "options %r" % sa.options)
    c.seg("A")
    msg = os.urandom(3000)
    c.send_data(msg, 536)
    sizes = []
    buf = bytearray()
    end = time.monotonic() + 3
    while len(buf) < len(msg) and time.monotonic() < end:
        _, t = W.take(c.sport, lambda t: len(bytes(t.payload)) > 0, 0.5)
        if t is None:
            continue
        d = bytes(t.payload)
        if t.seq == c.rcv:
            buf += d
            c.rcv = sadd(c.rcv, len(d))
            sizes.append(len(d))
            c.seg("A")
    expect(bytes(buf) == msg and max(sizes or [0]) <= 536,
           "no-options connection: echo exact, segments <= 536 bytes (default MSS)",
           "got %d bytes, segment sizes %s" % (len(buf), sorted(set(sizes))[-3:]))
    c.rst()


def t_closed_port():
    with Delta() as d:
        c = Conn(4321)
        c.syn()
        _, t = W.take(c.sport, None, 2.0)
        expect(t is not None and t.flags.R and t.flags.A and t.ack == sadd(c.iss, 1),
               "closed port: SYN answered by RST+ACK, ack = ISS+1",
               "got %r" % (t.summary() if t is not None else None))
        c2 = Conn(4321)
        c2.seg("A", seq=1000, ack=123456789, options=[])
        _, t = W.take(c2.sport, None, 2.0)
        expect(t is not None and t.flags.R and t.seq == 123456789,
               "closed port: bare ACK answered by RST with seq = its ack",
               "got %r" % (t.summary() if t is not None else None))
    expect(d.d("tcp_no_socket") >= 2, "closed port: drop tcp_no_socket counted",
           "moved by %d" % d.d("tcp_no_socket"))


def t_synack_rexmit():
    with Delta() as d:
        c = Conn(7)
        c.syn()
        got = [t0 for t0, t in W.collect(c.sport, 8.0) if t.flags.S and t.flags.A]
    c.seq = sadd(c.iss, 1)
    c.rst()
    gaps = [b - a for a, b in zip(got, got[1:])]
    ok_ = len(got) >= 3 and gaps[0] >= 0.5 and all(g2 >= g1 * 1.5 for g1, g2 in zip(gaps, gaps[1:]))
    expect(ok_, "SYN-ACK retransmitted with exponential back-off (no ACK from us)",
           "%d SYN-ACKs in 8 s, gaps %s" % (len(got), ["%.2f" % g for g in gaps]))
    expect(d.c("tcp_synack_retransmits") >= 2, "SYN-ACK retransmissions counted",
           "tcp_synack_retransmits moved by %d" % d.c("tcp_synack_retransmits"))


def t_ooo_overlap():
    c = Conn(7)
    if not expect(c.open(), "ooo: connection open"):
        return
    data = os.urandom(4000)
    base = c.seq
    pieces = [(1000, 2000), (2500, 3200), (1800, 2700), (3200, 4000), (0, 1200)]
    with Delta() as d:
        sack_seen = None
        for i, (a, b) in enumerate(pieces):
            c.seg("PA", data[a:b], seq=sadd(base, a))
            if i == 0:
                _, t = W.take(c.sport, lambda t: len(bytes(t.payload)) == 0 and t.flags.A, 1.0)
                sack_seen = t
        c.seq = sadd(base, len(data))
        got = c.read(len(data), 3.0)
    o = opts_of(sack_seen)
    sk = o.get("SAck")
    expect(sack_seen is not None and sack_seen.ack == base and sk is not None and
           tuple(sk[:2]) == (sadd(base, 1000), sadd(base, 2000)),
           "ooo: immediate duplicate ACK with a SACK block for the out-of-order segment",
           "got %r options %r" % (sack_seen.summary() if sack_seen is not None else None,
                                  sack_seen.options if sack_seen is not None else None))
    expect(got == data, "ooo+overlap: echoed stream byte-exact (5 out-of-order, overlapping pieces)",
           "got %d of %d bytes, equal prefix %d" % (
               len(got), len(data), next((i for i in range(len(got)) if got[i] != data[i]), len(got))))
    expect(d.c("tcp_ooo_segs") >= 1, "ooo: tcp_ooo_segs counted", "moved by %d" % d.c("tcp_ooo_segs"))
    r = echo_ok(c, "ooo")
    expect(r[0], "ooo: connection still works", r[1])
    c.close()


def t_out_of_window():
    c = Conn(7)
    if not expect(c.open(), "out-of-window: connection open"):
        return
    W.flush(c.sport)
    with Delta() as d:
        c.seg("PA", b"far-future", seq=sadd(c.seq, 50_000_000))
        _, t1 = W.take(c.sport, lambda t: t.flags.A, 1.0)
        c.seg("PA", b"far-past", seq=sadd(c.seq, -3_000_000))
        _, t2 = W.take(c.sport, lambda t: t.flags.A, 1.0)
    for name, t in (("beyond the window", t1), ("far below RCV.NXT", t2)):
        expect(t is not None and t.ack == c.seq and not bytes(t.payload),
               "out-of-window: data %s answered by an ACK of RCV.NXT" % name,
               "got %r" % (t.summary() if t is not None else None))
    expect(d.d("tcp_out_of_window") >= 2, "out-of-window: drop tcp_out_of_window counted",
           "moved by %d" % d.d("tcp_out_of_window"))
    r = echo_ok(c, "oow")
    expect(r[0], "out-of-window: nothing delivered, connection works", r[1])
    c.close()


def t_zero_window():
    c = Conn(19, ws=0)
    with Delta() as d:
        if not expect(c.open(win=0), "zero window: chargen connection open with window 0"):
            return
        segs = []
        end = time.monotonic() + 7.0
        while time.monotonic() < end:
            t0, t = W.take(c.sport, None, 0.5)
            if t is None:
                continue
            segs.append((t0, t))
            c.note(t)
            c.seg("A", win=0)   # still closed
    print("     (during the zero window: %s)" % (
        ["%.2fs %s seq%+d len %d" % (t0 - segs[0][0], t.sprintf("%TCP.flags%"), sdiff(t.seq, c.rcv),
                                     len(bytes(t.payload))) for t0, t in segs[:8]],))
    probes = [(t0, t) for t0, t in segs if sdiff(t.seq, c.rcv) <= 0 or len(bytes(t.payload)) <= 1]
    data = sum(len(bytes(t.payload)) for _, t in segs)
    times = [t0 for t0, _ in probes]
    gaps = [b - a for a, b in zip(times, times[1:])]
    expect(len(probes) >= 2 and data <= len(probes),
           "zero window: chargen sends only window probes (>= 2 in 7 s, at most 1 byte each)",
           "%d probes, %d payload bytes, gaps %s" % (len(probes), data, ["%.2f" % g for g in gaps]))
    expect(len(gaps) >= 2 and gaps[-1] > gaps[0] * 1.5, "zero window: probes back off",
           "gaps %s" % ["%.2f" % g for g in gaps])
    expect(d.c("tcp_zero_window_probes") >= 2, "zero window: tcp_zero_window_probes counted",
           "moved by %d" % d.c("tcp_zero_window_probes"))
    # Open a 1000-byte window: at most 1000 new bytes, then silence.
    base = c.rcv
    c.seg("A", win=1000)
    got = W.collect(c.sport, 1.0)
    if not got:
        late = W.collect(c.sport, 6.0)
        print("     (nothing within 1 s of the window update; in the next 6 s: %s)" % (
            ["%s seq+%d len %d" % (t.sprintf("%TCP.flags%"), sdiff(t.seq, base), len(bytes(t.payload)))
             for _, t in late[:5]],))
    top = max([sdiff(sadd(t.seq, len(bytes(t.payload))), base) for _, t in got] or [0])
    expect(0 < top <= 1000 + 1, "zero window: window 1000 reopened -> data up to it, not beyond",
           "highest byte sent %d past the old RCV.NXT" % top)
    c.rst()


def t_window_scale():
    # WS 15 is illegal: RFC 7323 2.3 says use 14. Window field 1 then means
    # 16384 bytes; chargen must not send more than that unacknowledged.
    c = Conn(19, ws=15)
    if not expect(c.open(win=1), "window scale: SYN with WS 15 accepted"):
        return
    o = opts_of(c.synack)
    expect(o.get("WScale", 99) <= 14, "window scale: Mustang's own shift <= 14", "options %r" % c.synack.options)
    expect(c.synack.window <= 65535, "window scale: SYN-ACK window unscaled")
    base = c.rcv
    got = W.collect(c.sport, 1.5)
    top = max([sdiff(sadd(t.seq, len(bytes(t.payload))), base) for _, t in got] or [0])
    expect(0 < top <= 16384, "window scale: WS 15 clamped to 14 (window 1 = 16384 bytes in flight at most)",
           "%d bytes in flight" % top)
    c.rst()
    # Mustang's advertised window * 2^shift never exceeds 2^30 (RFC 7323 2.3)
    c = Conn(9, ws=14)
    if c.open():
        c.send_data(b"x" * 100)
        _, t = W.take(c.sport, lambda t: t.flags.A, 1.0)
        sh = opts_of(c.synack).get("WScale", 0)
        w = (t.window << sh) if t is not None else -1
        expect(0 < w <= 1 << 30, "window scale: advertised window %d <= 2^30" % w)
        c.rst()


def t_rto():
    c = Conn(7)
    if not expect(c.open(), "RTO: connection open"):
        return
    with Delta() as d:
        c.send_data(b"R" * 100)
        firsts = []
        t_end = time.monotonic() + 3.5
        while time.monotonic() < t_end:
            t0, t = W.take(c.sport, lambda t: len(bytes(t.payload)) > 0, 0.5)
            if t is not None and t.seq == c.rcv:
                firsts.append(t0)      # never ACKed: the same segment again and again
    gaps = [b - a for a, b in zip(firsts, firsts[1:])]
    expect(len(firsts) >= 3 and gaps[0] >= 0.18 and gaps[1] >= gaps[0] * 1.5,
           "RTO: unacknowledged echo retransmitted after >= RTO.min, backing off",
           "%d copies, gaps %s" % (len(firsts), ["%.3f" % g for g in gaps]))
    expect(d.c("tcp_rto_timeouts") >= 2, "RTO: tcp_rto_timeouts counted", "moved by %d" % d.c("tcp_rto_timeouts"))
    c.rcv = sadd(c.rcv, 100)   # seen (several times): acknowledge it now
    c.seg("A")
    W.collect(c.sport, 0.3)
    r = echo_ok(c, "rto")
    expect(r[0], "RTO: connection recovers once ACKed", r[1])
    c.rst()


def t_fast_rexmit():
    c = Conn(7, sack=False)
    if not expect(c.open(), "fast retransmit: connection open (no SACK)"):
        return
    data = os.urandom(8 * 1000)
    W.flush(c.sport)
    c.send_data(data, 1000)
    # Take what is echoed for 100 ms, well inside RTO.min (200 ms): the
    # dup ACKs must come before any timeout could fire.
    segs = {}
    end = time.monotonic() + 0.1
    while sum(len(v) for v in segs.values()) < len(data) and time.monotonic() < end:
        _, t = W.take(c.sport, lambda t: len(bytes(t.payload)) > 0, max(0.0, end - time.monotonic()))
        if t is not None:
            c.note(t)
            segs[sdiff(t.seq, c.rcv)] = bytes(t.payload)
    offs = sorted(segs)
    if not expect(len(offs) >= 5, "fast retransmit: >= 5 echoed segments in flight",
                  "got %d segments" % len(offs)):
        c.rst()
        return
    first_len = len(segs[offs[0]])
    hole = sadd(c.rcv, first_len)
    with Delta() as d:
        W.flush(c.sport)
        t_dup = time.monotonic()
        for _ in range(4):   # ACK of segment 1, then 3 duplicates
            c.seg("A", ack=hole)
        t0, t = W.take(c.sport, lambda t: t.seq == hole and len(bytes(t.payload)) > 0, 1.0)
    if t is not None:
        print("     (retransmission %.1f ms after the first dup ACK)" % ((t0 - t_dup) * 1000))
    expect(t is not None and t0 - t_dup < 0.15,
           "fast retransmit: 3 duplicate ACKs -> the missing segment resent at once (before RTO)",
           "retransmission after %s" % ("%.3f s" % (t0 - t_dup) if t else "never"))
    expect(d.c("tcp_fast_retransmits") >= 1, "fast retransmit: tcp_fast_retransmits counted",
           "moved by %d" % d.c("tcp_fast_retransmits"))
    # Read the rest of the echo from the hole on (ACKing as we go): Mustang
    # resends whatever we have not acknowledged.
    c.rcv = hole
    if t is not None:
        W.q[c.sport].insert(0, (t0, W.ip() / t))   # put the retransmission back
    rest = c.read(len(data) - first_len, 5.0)
    expect(segs[offs[0]] + rest == data, "fast retransmit: echoed stream exact after recovery",
           "got %d of %d bytes" % (first_len + len(rest), len(data)))
    r = echo_ok(c, "frx")
    expect(r[0], "fast retransmit: connection works after recovery", r[1])
    c.rst()


def t_close():
    # Half-close: our FIN after data; the echo still arrives, then FIN.
    c = Conn(7)
    if not expect(c.open(), "close: connection open"):
        return
    msg = os.urandom(3000)
    with Delta() as d:
        c.send_data(msg)
        c.seg("FA")
        c.seq = sadd(c.seq, 1)
        got = c.read(len(msg), 3.0)
        _, fin = W.take(c.sport, lambda t: t.flags.F or t.flags.R, 2.0)
        expect(got == msg and fin is not None and not fin.flags.R,
               "close: half-close, data sent before our FIN echoed in full, then Mustang's FIN",
               "echoed %d/%d, then %r" % (len(got), len(msg), fin.summary() if fin else None))
        if fin is None:
            return
        # Do not ACK the FIN at first: LAST_ACK retransmits it.
        _, fin2 = W.take(c.sport, lambda t: t.flags.F, 3.0)
        expect(fin2 is not None and fin2.seq == fin.seq and not fin2.flags.R,
               "close: unacknowledged FIN retransmitted (LAST_ACK)",
               "got %r" % (fin2.summary() if fin2 else None))
        c.rcv = sadd(fin.seq, 1)
        c.seg("A")
        time.sleep(0.3)
    expect(d.c("tcp_closed") >= 1 and d.c("tcp_resets_sent") == 0,
           "close: connection freed after the last ACK, no RST sent",
           "tcp_closed +%d, tcp_resets_sent +%d" % (d.c("tcp_closed"), d.c("tcp_resets_sent")))
    # We are in TIME_WAIT; our retransmitted last ACK must not draw an RST
    # storm... a stray ACK to a freed connection is answered by one RST.
    # Reusing the 4-tuple at once with a higher ISN opens a new connection.
    c2 = Conn(7)
    W.watch.discard(c2.sport)
    c2.sport = c.sport
    c2.iss = sadd(c.seq, 100000)
    ok_ = c2.open()
    expect(ok_, "close: 4-tuple reused at once (our TIME_WAIT) -> new connection", "no SYN-ACK")
    if ok_:
        r = echo_ok(c2, "reuse")
        expect(r[0], "close: reused 4-tuple carries data", r[1])
        expect(c2.close(), "close: active close from us, clean")
    # Reset by us: exact-sequence RST closes at once, silently.
    c3 = Conn(7)
    if c3.open():
        with Delta() as d:
            c3.rst()
            time.sleep(0.2)
            got = W.collect(c3.sport, 0.3)
            c3.seg("PA", b"after-rst")
            _, t = W.take(c3.sport, None, 1.0)
        expect(not got and d.c("tcp_resets_rx") >= 1, "close: exact RST closes silently",
               "tcp_resets_rx +%d, replies %d" % (d.c("tcp_resets_rx"), len(got)))
        expect(t is not None and t.flags.R, "close: data after RST answered by RST (no connection)",
               "got %r" % (t.summary() if t else None))


def t_rfc5961():
    c = Conn(7)
    if not expect(c.open(), "RFC 5961: connection open"):
        return
    W.flush(c.sport)
    with Delta() as d:
        c.seg("R", seq=sadd(c.seq, 100), options=[])
        _, t = W.take(c.sport, lambda t: t.flags.A, 1.0)
    expect(t is not None and t.ack == c.seq and not t.flags.R,
           "RFC 5961 3.2: RST in window but not exact -> challenge ACK",
           "got %r" % (t.summary() if t else None))
    expect(d.d("tcp_rst_in_window") >= 1 and d.c("tcp_challenge_acks") >= 1,
           "RFC 5961: tcp_rst_in_window and tcp_challenge_acks counted",
           "+%d, +%d" % (d.d("tcp_rst_in_window"), d.c("tcp_challenge_acks")))
    time.sleep(0.05)
    with Delta() as d:
        c.seg("R", seq=sadd(c.seq, 10_000_000), options=[])
        got = W.collect(c.sport, 0.5)
    expect(not got and d.d("tcp_rst_out_of_window") >= 1,
           "RFC 5961: RST outside the window ignored silently",
           "%d replies, tcp_rst_out_of_window +%d" % (len(got), d.d("tcp_rst_out_of_window")))
    time.sleep(0.6)   # challenge ACKs are rate-limited per connection
    with Delta() as d:
        c.seg("S", seq=sadd(c.seq, 5), options=[])
        _, t = W.take(c.sport, lambda t: t.flags.A, 1.0)
    expect(t is not None and t.ack == c.seq and not t.flags.R and not t.flags.S,
           "RFC 5961 4.2: SYN on an established connection -> challenge ACK",
           "got %r" % (t.summary() if t else None))
    expect(d.d("tcp_syn_in_sync") >= 1, "RFC 5961: tcp_syn_in_sync counted", "+%d" % d.d("tcp_syn_in_sync"))
    r = echo_ok(c, "5961a")
    expect(r[0], "RFC 5961: connection survives RST/SYN injection", r[1])
    time.sleep(0.6)
    # ACK injection: data whose ACK acknowledges bytes never sent.
    with Delta() as d:
        c.seg("PA", b"INJECTED", ack=sadd(c.rcv, 1_000_000))
        _, t = W.take(c.sport, None, 1.0)
    expect(t is not None and not bytes(t.payload) and t.flags.A,
           "RFC 5961 5.2: data with an ACK of unsent bytes dropped, answered by an ACK",
           "got %r" % (((t.summary(), bytes(t.payload)) if t else None),))
    expect(d.d("tcp_ack_too_new") >= 1, "RFC 5961: tcp_ack_too_new counted", "+%d" % d.d("tcp_ack_too_new"))
    time.sleep(0.6)
    with Delta() as d:
        c.seg("PA", b"INJECTED", ack=sadd(c.rcv, -2_000_000_000))
        _, t = W.take(c.sport, None, 1.0)
    expect(d.d("tcp_ack_too_old") >= 1 and (t is None or not bytes(t.payload)),
           "RFC 5961 5.2: data with an ACK far below SND.UNA dropped (tcp_ack_too_old)",
           "+%d, got %r" % (d.d("tcp_ack_too_old"), t.summary() if t else None))
    r = echo_ok(c, "5961b")
    expect(r[0] and b"INJECTED" not in r[1].encode(errors="replace"),
           "RFC 5961: injected bytes never delivered, connection works", r[1])
    c.close()


def t_paws():
    c = Conn(7)
    if not expect(c.open(), "PAWS: connection open"):
        return
    W.flush(c.sport)
    old = sadd(c.tsval, -100000)
    with Delta() as d:
        c.seg("PA", b"OLD-DUPLICATE", tsval=old)
        _, t = W.take(c.sport, None, 1.0)
    expect(t is not None and not bytes(t.payload) and t.ack == c.seq,
           "PAWS: segment with an old TSval dropped, answered by an ACK",
           "got %r" % (((t.summary(), bytes(t.payload)) if t else None),))
    expect(d.d("tcp_paws") >= 1, "PAWS: tcp_paws counted", "+%d" % d.d("tcp_paws"))
    msg = b"fresh-timestamp"
    c.send_data(msg)
    got = c.read(len(msg), 2.0)
    expect(got == msg, "PAWS: same sequence with a current TSval accepted, old bytes never delivered",
           "got %r" % got)
    c.close()


def raw_tcp(c, flags="A", data=b"", options=None, mutate=None):
    """Frame bytes for a segment of c, with the TCP checksum right, then mutate."""
    t = TCP(sport=c.sport, dport=c.dport, flags=flags, seq=c.seq, ack=c.rcv,
            window=c.win, options=options if options is not None else [])
    p = Ether(src=W.smac, dst=W.dmac) / W.ip() / t
    if data:
        p = p / Raw(data)
    f = bytearray(bytes(p))
    if mutate:
        f = mutate(f)
    return bytes(f)


def tcp_fix(f, ip_off=14):
    """Recompute the TCP checksum over the segment as it now is."""
    ihl = (f[ip_off] & 15) * 4
    tl = struct.unpack("!H", f[ip_off + 2:ip_off + 4])[0]
    seg = bytearray(f[ip_off + ihl:ip_off + tl])
    seg[16:18] = b"\0\0"
    ph = f[ip_off + 12:ip_off + 20] + struct.pack("!BBH", 0, 6, len(seg))
    ck = checksum(bytes(ph) + bytes(seg))
    f[ip_off + ihl + 16:ip_off + ihl + 18] = struct.pack("!H", ck)
    return f


def t_malformed():
    c = Conn(7)
    if not expect(c.open(), "malformed: connection open"):
        return
    N = 3
    T = 34  # TCP header offset in the frame

    def opt_bytes(raw):
        # Replace the option area (built as 8 NOPs) with raw bytes.
        def m(f):
            f[T + 20:T + 20 + len(raw)] = raw
            return tcp_fix(f)
        return m

    nops = [("NOP", None)] * 8
    cases = [
        ("option length 0", "tcp_bad_opts", raw_tcp(c, "PA", b"bad1", nops, opt_bytes(b"\x08\x00\x01\x01\x01\x01\x01\x01"))),
        ("option length past the header", "tcp_bad_opts", raw_tcp(c, "PA", b"bad2", nops, opt_bytes(b"\x01\x01\x08\x20\x00\x00\x00\x00"))),
        ("truncated option (kind, no length)", "tcp_bad_opts", raw_tcp(c, "PA", b"bad3", nops, opt_bytes(b"\x01\x01\x01\x01\x01\x01\x01\x08"))),
        ("timestamp option with length 6", "tcp_bad_opts", raw_tcp(c, "PA", b"bad4", nops, opt_bytes(b"\x08\x06\x00\x00\x00\x01\x01\x01"))),
        ("data offset 4", "tcp_bad_doff", raw_tcp(c, "PA", b"bad5", [], lambda f: tcp_fix(_set_doff(f, 4)))),
        ("data offset past the segment", "tcp_bad_doff", raw_tcp(c, "A", b"", [], lambda f: tcp_fix(_set_doff(f, 15)))),
        ("bad checksum", "tcp_bad_cksum", raw_tcp(c, "PA", b"bad7", [], lambda f: _flip(f, T + 16))),
        ("SYN+FIN", "tcp_bad_flags", raw_tcp(c, "SF", b"", [], None)),
    ]
    for name, drop, frame in cases:
        with Delta() as d:
            for _ in range(N):
                W.send_raw(frame)
            time.sleep(0.15)
        moved = {k: d.d(k) for k in d.d1 if d.d(k)}
        expect(d.d(drop) == N, "malformed %s: dropped and counted %s x%d" % (name, drop, N),
               "drops moved %r" % moved)
    W.flush(c.sport)
    r = echo_ok(c, "malformed")
    expect(r[0], "malformed: nothing delivered, connection works", r[1])
    c.close()
    # Absurd MSS values in the SYN: connection still works.
    for mss in (0, 1, 65535):
        k = Conn(7, mss=mss)
        if not k.open():
            bad("malformed: SYN with MSS %d not answered" % mss)
            continue
        msg = os.urandom(2000)
        k.send_data(msg, 500)
        got = k.read(len(msg), 3.0)
        expect(got == msg, "malformed: SYN with MSS %d -> connection works, echo exact" % mss,
               "got %d of %d bytes" % (len(got), len(msg)))
        k.rst()


def _set_doff(f, doff):
    f[34 + 12] = (doff << 4) | (f[34 + 12] & 15)
    return f


def _flip(f, off):
    f[off] ^= 0x5a
    return f


def t_synflood():
    n = A.flood
    ports = list(range(40000, 40000 + n))
    random.shuffle(ports)
    ok_ = False
    with Delta() as d:
        keep = Conn(7)   # one SYN whose cookie we will use
        t_start = time.monotonic()
        # Flood until the SYN queue overflows (the count that takes depends
        # on how many SYNs the port drops under the burst), at most 3 rounds.
        for rnd in range(3):
            for i, p in enumerate(ports):
                t = TCP(sport=p + 10000 * rnd, dport=7, flags="S", seq=random.randrange(1 << 32),
                        window=65535,
                        options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)])
                W.send(W.ip() / t)
            c_now, _ = stats()
            if c_now.get("tcp_syncookies_sent", 0) > d.c0.get("tcp_syncookies_sent", 0):
                break
        sa = None
        for _ in range(3):  # the SYN itself may be lost in the burst
            keep.syn(extra_opts=[("MSS", 1460)])
            sa = keep.wait_synack(2.0)
            if sa is not None:
                break
        dt = time.monotonic() - t_start
        # A real Linux client connects and echoes during the flood.
        if A.linux_ip:
            r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "tcp_client.py"),
                                "echo", A.dip, "256K", "--timeout", "10"],
                               capture_output=True, text=True, timeout=30)
            ok_ = r.returncode == 0
            why = (r.stdout + r.stderr).strip()
        if sa is not None:
            keep.seg("A")
            msg = b"cookie-connection"
            keep.send_data(msg)
            got = keep.read(len(msg), 2.0)
        else:
            got = b""
    print("     (%d SYNs in %.2f s; counters: syncookies_sent +%d, syncookies_ok +%d, "
          "passive_opens +%d; drops tcp_bad_cookie +%d, tcp_listen_overflow +%d)" % (
              n, dt, d.c("tcp_syncookies_sent"), d.c("tcp_syncookies_ok"), d.c("tcp_passive_opens"),
              d.d("tcp_bad_cookie"), d.d("tcp_listen_overflow")))
    moved = {k: d.d1[k] - d.d0.get(k, 0) for k in d.d1 if d.d1[k] != d.d0.get(k, 0)}
    print("     (drops that moved: %s)" % (moved or "none"))
    expect(d.c("tcp_syncookies_sent") > 0, "SYN flood: %d SYNs overflow the SYN queue -> SYN cookies sent" % n,
           "tcp_syncookies_sent +%d" % d.c("tcp_syncookies_sent"))
    if A.linux_ip:
        expect(ok_, "SYN flood: a real Linux client connects and echoes 256 KiB during the flood", why)
    expect(sa is not None and got == b"cookie-connection",
           "SYN flood: a connection completed from a SYN cookie carries data",
           "SYN-ACK %s, echoed %r" % ("seen" if sa is not None else "missing", got))
    expect(d.c("tcp_syncookies_ok") >= 1, "SYN flood: tcp_syncookies_ok counted",
           "+%d" % d.c("tcp_syncookies_ok"))
    if sa is not None:
        keep.rst()


CHECKS = [
    ("handshake", t_handshake), ("closed_port", t_closed_port), ("synack_rexmit", t_synack_rexmit),
    ("ooo", t_ooo_overlap), ("out_of_window", t_out_of_window), ("zero_window", t_zero_window),
    ("window_scale", t_window_scale), ("rto", t_rto), ("fast_rexmit", t_fast_rexmit),
    ("close", t_close), ("rfc5961", t_rfc5961), ("paws", t_paws), ("malformed", t_malformed),
    ("synflood", t_synflood),
]


def main():
    global A, W
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--dmac", required=True)
    ap.add_argument("--dip", required=True)
    ap.add_argument("--sip", default="")
    ap.add_argument("--smac", default="02:4d:53:54:43:50")
    ap.add_argument("--linux-ip", default="")
    ap.add_argument("--mustangctl", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--flood", type=int, default=2000)
    ap.add_argument("--only", default="")
    A = ap.parse_args()
    if not A.sip:
        A.sip = A.dip.rsplit(".", 1)[0] + ".3"
    W = Wire(A.iface, A.smac, A.sip, A.dmac, A.dip)
    # Let Mustang learn our address before the first SYN: an ARP request
    # from us (RFC 826: the target merges the sender's mapping).
    W.send_raw(bytes(Ether(src=A.smac, dst="ff:ff:ff:ff:ff:ff") /
                     ARP(op=1, hwsrc=A.smac, psrc=A.sip, pdst=A.dip)))
    time.sleep(0.2)
    only = set(A.only.split(",")) - {""}
    for name, fn in CHECKS:
        if only and name not in only:
            continue
        print("--- %s" % name, flush=True)
        try:
            fn()
        except Exception as e:  # a check that crashes is a failed check
            import traceback
            traceback.print_exc()
            bad("%s: exception %s: %s" % (name, type(e).__name__, e))
    W.stop = True
    print("%d check(s) failed" % len(FAILS) if FAILS else "all black-box checks passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
