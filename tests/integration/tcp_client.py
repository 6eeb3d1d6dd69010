# SPDX-License-Identifier: BSD-3-Clause
"""Linux TCP client against mustangd's built-in services (run in the peer
namespace). Every mode checks the exact bytes and exits 0 pass, 1 fail.

  tcp_client.py discard HOST BYTES [--port 9]
      send BYTES to the discard service, half-close, and expect a clean EOF
      (FIN, not RST) once the service has read everything
  tcp_client.py chargen HOST BYTES [--port 19]
      read BYTES from chargen and check every byte against the RFC 864
      pattern: lines of 72 printable characters + CR LF, each line starting
      one character after the previous, cycling through the 95 printable
      ASCII characters (32..126)
      With --stall S the client reads nothing for S seconds first (its
      window closes; the service must probe and resume).
  tcp_client.py echo HOST BYTES [--port 7]
      send BYTES of random data while reading the echo concurrently; SHA-256
      of what was sent must equal SHA-256 of what came back, byte count
      exact; then half-close and expect a clean EOF
  tcp_client.py conns HOST N [--port 7] [--timeout S]
      open N connections at once (non-blocking, selectors), check that all N
      are ESTABLISHED at the same time (the kernel's own table), echo a
      distinct message on every one, echo a second round while all are
      still open, then close them all

BYTES accepts K/M/G suffixes (binary). Timeouts scale with the size.
"""

import argparse
import errno
import hashlib
import os
import resource
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 16


def parse_size(s):
    s = s.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def human(n):
    for unit, f in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= f:
            return "%.1f %s" % (n / f, unit)
    return "%d B" % n


def rate(n, dt):
    return "%.1f Mbit/s" % (n * 8 / dt / 1e6) if dt > 0 else "-"


def connect(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def expect_eof(s, what, timeout):
    """After our FIN: the service must close cleanly (FIN -> recv() == b'')."""
    s.settimeout(timeout)
    try:
        extra = s.recv(65536)
    except socket.timeout:
        print("FAIL %s: no FIN from the service within %.0f s after our FIN" % (what, timeout))
        return False
    except ConnectionResetError:
        print("FAIL %s: connection reset instead of a clean FIN" % what)
        return False
    if extra:
        print("FAIL %s: %d unexpected bytes after the transfer" % (what, len(extra)))
        return False
    return True


class Data:
    """Random bytes, generated in chunks, hashed as they are produced."""

    def __init__(self, total):
        self.left = total
        self.h = hashlib.sha256()

    def next(self):
        if self.left == 0:
            return b""
        n = min(CHUNK * 4, self.left)
        b = os.urandom(n)
        self.h.update(b)
        self.left -= n
        return b


def mode_discard(a):
    total = a.bytes
    s = connect(a.host, a.port or 9, 10)
    s.settimeout(a.timeout)
    block = os.urandom(1 << 20)
    sent = 0
    t0 = time.monotonic()
    try:
        while sent < total:
            n = min(len(block), total - sent)
            s.sendall(memoryview(block)[:n])
            sent += n
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("FAIL discard: send failed after %d of %d bytes: %s" % (sent, total, e))
        return 1
    ok = expect_eof(s, "discard", a.timeout)
    dt = time.monotonic() - t0
    s.close()
    if not ok:
        return 1
    print("ok   discard: %s sent and acknowledged, clean close (%.1f s, %s)"
          % (human(total), dt, rate(total, dt)))
    return 0


def chargen_period(first):
    """One full period (95 lines) of the stream that starts with `first`."""
    out = bytearray()
    for line in range(95):
        out += bytes(32 + (first - 32 + line + i) % 95 for i in range(72)) + b"\r\n"
    return bytes(out)


def mode_chargen(a):
    total = a.bytes
    s = connect(a.host, a.port or 19, 10)
    s.settimeout(a.timeout)
    if a.stall:
        # Do not read for a while: the receive buffer fills, the window
        # closes, the service must probe and resume when we read again.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        time.sleep(a.stall)
    got = 0
    period = None
    pos = 0          # offset of the next byte within `period`
    buf = bytearray(CHUNK * 4)
    t0 = time.monotonic()
    try:
        while got < total:
            n = s.recv_into(buf, min(len(buf), total - got))
            if n == 0:
                print("FAIL chargen: EOF after %d of %d bytes" % (got, total))
                return 1
            data = memoryview(buf)[:n]
            if period is None:
                first = data[0]
                if not 32 <= first <= 126:
                    print("FAIL chargen: first byte 0x%02x is not printable" % first)
                    return 1
                period = chargen_period(first)
                pp = period * 2
            # Compare against the periodic pattern, in period-sized pieces.
            off = 0
            while off < n:
                k = min(n - off, len(period))
                if data[off:off + k] != pp[pos:pos + k]:
                    exp = pp[pos:pos + k]
                    d = next(i for i in range(k) if data[off + i] != exp[i])
                    print("FAIL chargen: byte %d is %r, RFC 864 pattern says %r"
                          % (got + off + d, bytes(data[off + d:off + d + 1]),
                             bytes(exp[d:d + 1])))
                    return 1
                pos = (pos + k) % len(period)
                off += k
            got += n
    except (socket.timeout, OSError) as e:
        print("FAIL chargen: %s after %d of %d bytes" % (e, got, total))
        return 1
    dt = time.monotonic() - t0
    s.close()
    print("ok   chargen: %s received, every line 72 printable chars + CRLF in the "
          "rotating RFC 864 pattern (%.1f s, %s)" % (human(total), dt, rate(total, dt)))
    return 0


def mode_echo(a):
    total = a.bytes
    s = connect(a.host, a.port or 7, 10)
    s.settimeout(a.timeout)
    src = Data(total)
    err = []

    def sender():
        try:
            while True:
                b = src.next()
                if not b:
                    break
                s.sendall(b)
        except OSError as e:
            err.append("send: %s (%d bytes left)" % (e, src.left))

    th = threading.Thread(target=sender, daemon=True)
    t0 = time.monotonic()
    th.start()
    h = hashlib.sha256()
    got = 0
    buf = bytearray(CHUNK * 4)
    try:
        while got < total:
            n = s.recv_into(buf, min(len(buf), total - got))
            if n == 0:
                err.append("EOF after %d of %d echoed bytes" % (got, total))
                break
            h.update(memoryview(buf)[:n])
            got += n
    except (socket.timeout, OSError) as e:
        err.append("recv: %s after %d of %d echoed bytes" % (e, got, total))
    th.join(a.timeout)
    if th.is_alive():
        err.append("sender still blocked")
    if err:
        print("FAIL echo: " + "; ".join(err))
        return 1
    dt = time.monotonic() - t0
    sent_h, got_h = src.h.hexdigest(), h.hexdigest()
    if sent_h != got_h:
        print("FAIL echo: %s sent, %s back, SHA-256 differs: sent %s, echoed %s"
              % (human(total), human(got), sent_h[:16], got_h[:16]))
        return 1
    s.shutdown(socket.SHUT_WR)
    if not expect_eof(s, "echo", min(a.timeout, 30)):
        return 1
    s.close()
    print("ok   echo: %s each way, SHA-256 %s... matches, clean close (%.1f s, %s)"
          % (human(total), sent_h[:16], dt, rate(total, dt)))
    return 0


def established_to(host, port):
    """ESTABLISHED connections to host:port in this namespace's kernel table."""
    want = "%08X:%04X" % (struct.unpack("<I", socket.inet_aton(host))[0], port)
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if p[2] == want and p[3] == "01":
                n += 1
    return n


def mode_conns(a):
    n, port = a.n, a.port or 7
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + 100
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft), max(need, hard)))
        except (ValueError, OSError) as e:
            print("FAIL conns: cannot raise RLIMIT_NOFILE to %d: %s" % (need, e))
            return 1
    deadline = time.monotonic() + a.timeout
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}
    connected = 0
    failed = []
    t0 = time.monotonic()
    # Keep at most `window` handshakes in flight: a SYN burst far above the
    # listen backlog would (correctly) be answered with SYN cookies; this
    # test is about holding N connections, not about the flood.
    window = a.window
    i = 0
    while connected + len(failed) < n:
        while i < n and len(pending) < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rc = s.connect_ex((a.host, port))
            if rc not in (0, errno.EINPROGRESS):
                failed.append("connect #%d: %s" % (i, os.strerror(rc)))
                s.close()
                i += 1
                continue
            socks.append(s)
            pending[s.fileno()] = s
            sel.register(s, selectors.EVENT_WRITE, i)
            i += 1
        if time.monotonic() > deadline:
            break
        for key, _ in sel.select(1.0):
            s = key.fileobj
            sel.unregister(s)
            del pending[s.fileno()]
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e:
                failed.append("connect #%d: %s" % (key.data, os.strerror(e)))
            else:
                connected += 1
    t_conn = time.monotonic() - t0
    if failed or connected < n:
        print("FAIL conns: %d of %d connected in %.1f s; %d failed (%s), %d pending"
              % (connected, n, t_conn, len(failed), "; ".join(failed[:3]), len(pending)))
        return 1
    est = established_to(a.host, port)
    if est < n:
        print("FAIL conns: all %d connect()s completed but only %d ESTABLISHED at once"
              % (n, est))
        return 1
    print("ok   conns: %d connections ESTABLISHED at the same time (%.1f s to open)"
          % (n, t_conn))

    def round_trip(tag):
        t1 = time.monotonic()
        want = {}
        for k, s in enumerate(socks):
            msg = b"%s-%06d;" % (tag, k)
            want[s.fileno()] = [s, msg, bytearray()]
            try:
                s.send(msg)  # a dozen bytes always fit in an empty send buffer
            except OSError as e:
                print("FAIL conns %s: send on #%d: %s" % (tag.decode(), k, e))
                return False
            sel.register(s, selectors.EVENT_READ, k)
        left = len(want)
        while left and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                s, msg, got = want[key.fileobj.fileno()]
                try:
                    b = s.recv(64)
                except BlockingIOError:
                    continue
                except OSError as e:
                    print("FAIL conns %s: recv on #%d: %s" % (tag.decode(), key.data, e))
                    return False
                if not b:
                    print("FAIL conns %s: #%d closed by the service" % (tag.decode(), key.data))
                    return False
                got += b
                if len(got) >= len(msg):
                    sel.unregister(s)
                    left -= 1
                    if bytes(got) != msg:
                        print("FAIL conns %s: #%d echoed %r, sent %r"
                              % (tag.decode(), key.data, bytes(got), msg))
                        return False
        if left:
            print("FAIL conns %s: %d of %d connections not echoed before the deadline"
                  % (tag.decode(), left, len(want)))
            return False
        print("ok   conns %s: every one of the %d connections echoed its own message "
              "(%.1f s)" % (tag.decode(), len(want), time.monotonic() - t1))
        return True

    if not round_trip(b"first") or not round_trip(b"second"):
        return 1
    est = established_to(a.host, port)
    if est < n:
        print("FAIL conns: only %d of %d still ESTABLISHED after the echoes" % (est, n))
        return 1
    if a.hold_file:
        # Tell the caller that all N are open now; wait for it to look.
        with open(a.hold_file, "w") as f:
            f.write("%d\n" % n)
        t1 = time.monotonic()
        while os.path.exists(a.hold_file) and time.monotonic() - t1 < 60:
            time.sleep(0.1)
    for s in socks:
        s.close()
    print("ok   conns: all %d closed" % n)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["discard", "chargen", "echo", "conns"])
    ap.add_argument("host")
    ap.add_argument("amount", help="bytes (discard/chargen/echo) or connections (conns)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=0,
                    help="seconds (default: scaled with the size)")
    ap.add_argument("--stall", type=float, default=0,
                    help="chargen: seconds to wait before reading (zero window)")
    ap.add_argument("--window", type=int, default=256,
                    help="conns: handshakes in flight at once")
    ap.add_argument("--hold-file", default="",
                    help="conns: write N here once all are open and echoed, wait "
                         "until the caller deletes it")
    a = ap.parse_args()
    if a.mode == "conns":
        a.n = int(a.amount)
        if not a.timeout:
            a.timeout = 120
    else:
        a.bytes = parse_size(a.amount)
        if not a.timeout:
            # 2 MB/s worst case (netem) + 30 s
            a.timeout = 30 + a.bytes / 2e6
    return {"discard": mode_discard, "chargen": mode_chargen, "echo": mode_echo,
            "conns": mode_conns}[a.mode](a)


if __name__ == "__main__":
    sys.exit(main())
