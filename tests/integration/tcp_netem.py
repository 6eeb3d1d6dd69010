# SPDX-License-Identifier: BSD-3-Clause
"""A userspace netem: bridges two interfaces (AF_PACKET, promiscuous) and
impairs the frames it forwards, in both directions, netem-style.

This kernel has no sch_netem (nor act_gact), so tcp_interop.sh puts this
bridge between the Linux client's interface and the veth to Mustang instead
of `tc qdisc add ... netem`.

  tcp_netem.py IF_A IF_B [--loss P] [--delay MS --reorder P]
                         [--duplicate P] [--corrupt P] [--seed N]

Percentages as in netem:
  --loss P        drop P% of frames
  --delay MS --reorder P
                  P% of frames go out at once, the others MS later, so the
                  immediate ones overtake them (netem "delay 5ms reorder 25%")
  --duplicate P   send P% of frames twice
  --corrupt P     flip one random bit past the Ethernet header in P% of frames
Prints a summary line on SIGTERM/SIGINT. Runs until killed.
"""

import argparse
import heapq
import os
import random
import selectors
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1


def open_if(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    s.bind((name, ETH_P_ALL))
    idx = socket.if_nametoindex(name)
    mreq = idx.to_bytes(4, sys.byteorder) + PACKET_MR_PROMISC.to_bytes(2, sys.byteorder) \
        + b"\0" * 10
    s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    s.setblocking(False)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("if_a")
    ap.add_argument("if_b")
    ap.add_argument("--loss", type=float, default=0)
    ap.add_argument("--delay", type=float, default=0)
    ap.add_argument("--reorder", type=float, default=0)
    ap.add_argument("--duplicate", type=float, default=0)
    ap.add_argument("--corrupt", type=float, default=0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ready-file", default="")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    loss, dup, corrupt = a.loss / 100, a.duplicate / 100, a.corrupt / 100
    reorder, delay = a.reorder / 100, a.delay / 1000
    sa, sb = open_if(a.if_a), open_if(a.if_b)
    peer = {sa: sb, sb: sa}
    sel = selectors.DefaultSelector()
    sel.register(sa, selectors.EVENT_READ)
    sel.register(sb, selectors.EVENT_READ)
    later = []          # heap of (due, seq, out socket, frame)
    seq = 0
    st = dict(fwd=0, lost=0, delayed=0, dup=0, corrupt=0, txerr=0)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def tx(out, f):
        try:
            out.send(f)
        except OSError:
            st["txerr"] += 1

    if a.ready_file:
        open(a.ready_file, "w").close()
    while not stop:
        now = time.monotonic()
        while later and later[0][0] <= now:
            _, _, out, f = heapq.heappop(later)
            tx(out, f)
        timeout = max(0.0, later[0][0] - now) if later else 0.2
        try:
            events = sel.select(timeout)
        except InterruptedError:
            continue
        for key, _ in events:
            s = key.fileobj
            out = peer[s]
            for _ in range(64):
                try:
                    f, addr = s.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue    # our own transmissions, seen by the tap
                if loss and rnd.random() < loss:
                    st["lost"] += 1
                    continue
                if corrupt and rnd.random() < corrupt and len(f) > 14:
                    b = bytearray(f)
                    i = rnd.randrange(14, len(b))
                    b[i] ^= 1 << rnd.randrange(8)
                    f = bytes(b)
                    st["corrupt"] += 1
                copies = 2 if dup and rnd.random() < dup else 1
                if copies == 2:
                    st["dup"] += 1
                for _ in range(copies):
                    if delay and not (reorder and rnd.random() < reorder):
                        seq += 1
                        heapq.heappush(later, (time.monotonic() + delay, seq, out, f))
                        st["delayed"] += 1
                    else:
                        tx(out, f)
                    st["fwd"] += 1
    for _, _, out, f in sorted(later):
        tx(out, f)
    print("netem bridge %s<->%s: " % (a.if_a, a.if_b) +
          " ".join("%s=%d" % kv for kv in st.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
