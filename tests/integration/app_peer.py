# SPDX-License-Identifier: BSD-3-Clause
"""The Linux side of the app_* integration tests: plain kernel sockets in
the peer namespace, talking to example apps that run on Mustang.

  app_peer.py echo IP PORT [--bytes N] [--seconds S] [--conns K]
      K concurrent connections to an echo server; each sends N bytes (or
      for S seconds) of pseudo-random data while reading the echo, then
      half-closes and reads to EOF; SHA-256 of what was sent and what came
      back must be equal. Exit 0 if every connection matched.
  app_peer.py reset IP PORT --progress FILE [--timeout S]
      one connection streaming to an echo server; writes FILE once 1 MiB
      has been echoed, then keeps going until the connection fails. Exit 0
      if it failed with ECONNRESET (the peer sent RST), else 1.
  app_peer.py raw IP PORT DATA [--wait S]
      sends DATA (Python escapes: \\r\\n), prints what comes back within S
      seconds, then "[closed]" if the server closed the connection or
      "[open]" if it was still open.
  app_peer.py echo-server PORT --ready FILE
      threaded echo server (runs until killed): the peer of echo_client.
  app_peer.py discard-server PORT --ready FILE
      reads and discards (runs until killed).
  app_peer.py sink PORT --ready FILE --writers W --records N
      accepts one connection carrying W*N 64-byte records written by W
      threads on one shared socket (record: writer u32, seq u32, 56 bytes
      derived from both, see record_bytes); checks every record is whole, each writer's
      sequence is 0..N-1 in order; answers "OK <count>\\n" or
      "BAD <reason>\\n" and exits 0 / 1.

Sizes take K/M/G suffixes.
"""

import argparse
import errno
import hashlib
import os
import socket
import struct
import sys
import threading
import time

CHUNK = 64 * 1024
RECORD = 64


def size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s and s[-1].upper() in mult:
        return int(s[:-1]) * mult[s[-1].upper()]
    return int(s)


def stream_block(seed):
    """1 MiB of pseudo-random bytes, different per connection."""
    return hashlib.shake_256(b"mustang-%d" % seed).digest(1 << 20)


def echo_one(ip, port, nbytes, seconds, seed, result):
    block = stream_block(seed)
    sent_h, got_h = hashlib.sha256(), hashlib.sha256()
    got = [0]
    err = []
    s = socket.create_connection((ip, port), timeout=30)

    def reader():
        try:
            while True:
                b = s.recv(CHUNK * 4)
                if not b:
                    return
                got_h.update(b)
                got[0] += len(b)
        except OSError as e:
            err.append("recv: %s" % e)

    t = threading.Thread(target=reader)
    t.start()
    sent = 0
    deadline = time.monotonic() + seconds if seconds else None
    try:
        while True:
            if deadline is None and sent >= nbytes:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            off = sent % len(block)
            n = len(block) - off
            if deadline is None:
                n = min(n, nbytes - sent)
            chunk = block[off:off + min(n, CHUNK)]
            s.sendall(chunk)
            sent_h.update(chunk)
            sent += len(chunk)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append("send: %s" % e)
    t.join(60)
    s.close()
    ok = not err and got[0] == sent and got_h.digest() == sent_h.digest()
    result[seed] = (ok, sent, got[0], "; ".join(err))


def cmd_echo(a):
    result = {}
    threads = [threading.Thread(target=echo_one,
                                args=(a.ip, a.port, size(a.bytes), a.seconds, i, result))
               for i in range(a.conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    bad = 0
    total = 0
    for i in range(a.conns):
        ok, sent, got, err = result.get(i, (False, 0, 0, "no result"))
        total += sent
        if not ok:
            bad += 1
            print("conn %d: sent %d, echoed %d, SHA-256 %s %s"
                  % (i, sent, got, "differs" if got == sent else "n/a", err))
    print("echo: %d connections, %d bytes each way in %.1f s, %d bad"
          % (a.conns, total, secs, bad))
    return 1 if bad else 0


def cmd_reset(a):
    s = socket.create_connection((a.ip, a.port), timeout=10)
    s.settimeout(a.timeout)
    block = stream_block(99)
    echoed = [0]
    ends = []   # how each direction ended, in order

    def reader():
        try:
            while True:
                b = s.recv(CHUNK)
                if not b:
                    ends.append("recv: EOF")
                    return
                echoed[0] += len(b)
                if echoed[0] >= 1 << 20 and not os.path.exists(a.progress):
                    with open(a.progress, "w") as f:
                        f.write("%d\n" % echoed[0])
        except OSError as e:
            ends.append("recv: %s" % errno.errorcode.get(e.errno, e))

    t = threading.Thread(target=reader)
    t.start()
    off = 0
    try:
        while t.is_alive():
            s.sendall(block[off:off + CHUNK])
            off = (off + CHUNK) % len(block)
    except OSError as e:
        ends.append("send: %s" % errno.errorcode.get(e.errno, e))
    t.join(a.timeout)
    s.close()
    # Linux reports a received RST as ECONNRESET once (sock_error() clears
    # it): to whichever of send/recv asks first; the other then sees EOF
    # or EPIPE. A FIN alone never produces ECONNRESET.
    print("reset: %d bytes echoed; %s" % (echoed[0], ", ".join(ends) or "no end seen"))
    return 0 if any(e.endswith("ECONNRESET") for e in ends) else 1


def cmd_raw(a):
    s = socket.create_connection((a.ip, a.port), timeout=10)
    s.sendall(a.data.encode().decode("unicode_escape").encode("latin-1"))
    s.settimeout(a.wait)
    out = b""
    state = "[open]"
    try:
        while True:
            b = s.recv(CHUNK)
            if not b:
                state = "[closed]"
                break
            out += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        state = "[reset]"
    s.close()
    sys.stdout.write(out.decode("latin-1"))
    print(state)
    return 0


def listener(port, ready):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", port))
    ls.listen(512)
    with open(ready, "w") as f:
        f.write("ready\n")
    return ls


def serve_forever(ls, handler):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def echo_handler(c):
    try:
        while True:
            b = c.recv(CHUNK)
            if not b:
                break
            c.sendall(b)
    except OSError:
        pass
    c.close()


def discard_handler(c):
    try:
        while c.recv(CHUNK):
            pass
    except OSError:
        pass
    c.close()


def record_bytes(writer, seq):
    """As app_threads.c writes them: byte i >= 8 is (w*31 + seq*7 + i) & 255."""
    head = struct.pack("<II", writer, seq)
    return head + bytes((writer * 31 + seq * 7 + i) & 255 for i in range(8, RECORD))


def cmd_sink(a):
    ls = listener(a.port, a.ready)
    c, _ = ls.accept()
    c.settimeout(60)
    buf = bytearray()
    next_seq = [0] * a.writers
    count = 0
    why = None
    try:
        while True:
            b = c.recv(CHUNK)
            if not b:
                break
            buf += b
            whole = len(buf) // RECORD * RECORD
            for off in range(0, whole, RECORD):
                rec = bytes(buf[off:off + RECORD])
                w, seq = struct.unpack_from("<II", rec)
                if why is None:
                    if w >= a.writers or rec != record_bytes(w, seq):
                        why = "record %d is not whole (interleaved or corrupt)" % count
                    elif seq != next_seq[w]:
                        why = "writer %d: record %d after %d" % (w, seq, next_seq[w] - 1)
                    else:
                        next_seq[w] += 1
                count += 1
            del buf[:whole]
    except OSError as e:
        why = why or "recv: %s" % e
    if why is None and buf:
        why = "%d trailing bytes" % len(buf)
    if why is None and count != a.writers * a.records:
        why = "%d records, expected %d" % (count, a.writers * a.records)
    reply = "OK %d\n" % count if why is None else "BAD %s\n" % why
    print("sink: " + reply.strip())
    try:
        c.sendall(reply.encode())
        c.close()
    except OSError:
        pass
    return 0 if why is None else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("ip")
    e.add_argument("port", type=int)
    e.add_argument("--bytes", default="1M")
    e.add_argument("--seconds", type=float, default=0)
    e.add_argument("--conns", type=int, default=1)
    r = sub.add_parser("reset")
    r.add_argument("ip")
    r.add_argument("port", type=int)
    r.add_argument("--progress", required=True)
    r.add_argument("--timeout", type=float, default=20)
    w = sub.add_parser("raw")
    w.add_argument("ip")
    w.add_argument("port", type=int)
    w.add_argument("data")
    w.add_argument("--wait", type=float, default=1.0)
    for name in ("echo-server", "discard-server"):
        s = sub.add_parser(name)
        s.add_argument("port", type=int)
        s.add_argument("--ready", required=True)
    k = sub.add_parser("sink")
    k.add_argument("port", type=int)
    k.add_argument("--ready", required=True)
    k.add_argument("--writers", type=int, required=True)
    k.add_argument("--records", type=int, required=True)
    a = p.parse_args()
    if a.cmd == "echo":
        return cmd_echo(a)
    if a.cmd == "reset":
        return cmd_reset(a)
    if a.cmd == "raw":
        return cmd_raw(a)
    if a.cmd == "sink":
        return cmd_sink(a)
    handler = echo_handler if a.cmd == "echo-server" else discard_handler
    serve_forever(listener(a.port, a.ready), handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
