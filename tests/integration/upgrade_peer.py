# SPDX-License-Identifier: BSD-3-Clause
"""The Linux side of upgrade.sh: long-lived traffic that must go through
engine restarts untouched.

  upgrade_peer.py traffic IP --tcp PORT:N [--tcp PORT:N ...] [--udp PORT ...]
                  [--rate R] [--udp-rate U] [--status FILE] [--out FILE]
                  [--timeout S] [--close]
      N TCP connections to each PORT, opened first (all must connect).
      Then, until SIGTERM/SIGINT: records at R per second per connection
      (round robin over all of them), each "conn u32, seq u64, len u16" +
      len bytes derived from (conn, seq); every echoed byte is compared with
      what was sent, in order (any difference is corruption, reported with
      the connection and offset). A reset, an EOF, or a record without its
      echo for S seconds ends that connection and is counted. UDP: one
      socket per PORT, U datagrams/s each (flow, seq, derived bytes);
      echoes must be byte-exact; missing ones are losses, repeated ones
      duplicates (at most --udp-max-loss % lost, default 1); --out lists
      when each lost one was sent (lost_at, CLOCK_MONOTONIC seconds). On SIGTERM: stop sending, wait up to S seconds for every
      outstanding echo (and 1 s for the last datagrams), then with --close
      half-close every connection and wait for its EOF (a clean close).
      Writes --status every 0.25 s and --out at the end (JSON, the same
      fields); exit 0 when every connection is still open (and, with
      --close, closed cleanly), every byte checked, no corruption and UDP
      loss within the limit, else 1.
  upgrade_peer.py idle IP PORT --ready FILE --go FILE [--timeout S]
      one connection opened at once, silent (the server's thread sits in a
      blocking recv); writes FILE when connected; once the file --go
      exists, sends 1000 bytes, expects them echoed within S s, closes.
      Exit 0 if the echo matched.
"""

import argparse
import collections
import errno
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

HDR = struct.Struct("!IQH")
PATTERN = bytes((i * 131 + 7) & 0xFF for i in range(4096)) * 2


def record(conn, seq):
    n = 16 + (seq * 37 + conn * 11) % 400
    off = (conn * 7 + seq * 13) % 4096
    return HDR.pack(conn, seq, n) + PATTERN[off:off + n]


def now():
    return time.monotonic()


class Conn:
    def __init__(self, idx, port):
        self.idx, self.port = idx, port
        self.sock = None
        self.seq = 0
        self.out = bytearray()         # not yet written to the socket
        self.pending = bytearray()     # written, echo not yet received
        self.marks = collections.deque()  # (end offset in the stream, send time)
        self.sent_off = 0              # bytes of the stream handed to pending
        self.echo_off = 0              # bytes echoed and checked
        self.state = "connecting"      # connecting open closing closed dead
        self.err = None
        self.max_lat = 0.0
        self.want_write = False


class Traffic:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.errors = collections.Counter()
        self.err_detail = []
        self.records_sent = self.records_echoed = 0
        self.bytes_echoed = 0
        self.max_gap = 0.0
        self.last_echo = None
        self.stop = False
        self.t0 = now()
        self.udp = []

    # --- TCP ------------------------------------------------------------------
    def fail(self, c, kind, detail):
        if c.state == "dead":
            return
        self.errors[kind] += 1
        if len(self.err_detail) < 20:
            try:
                lport = c.sock.getsockname()[1]
            except OSError:
                lport = 0
            self.err_detail.append("conn %d (%d -> %d): %s: %s" % (c.idx, lport, c.port, kind, detail))
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.state, c.err = "dead", kind

    def events(self, c):
        ev = selectors.EVENT_READ
        if c.out or c.state == "connecting":
            ev |= selectors.EVENT_WRITE
        return ev

    def rearm(self, c):
        want = bool(c.out)
        if want != c.want_write:
            c.want_write = want
            self.sel.modify(c.sock, self.events(c), c)

    def open_all(self):
        for spec in self.a.tcp:
            port, n = (int(x) for x in spec.split(":"))
            for _ in range(n):
                # at most 256 handshakes in flight: a SYN flood is not the point
                while sum(c.state == "connecting" for c in self.conns[-256:]) >= 256:
                    self.poll(0.05)
                c = Conn(len(self.conns), port)
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.setblocking(False)
                c.sock = s
                rc = s.connect_ex((self.a.ip, port))
                if rc not in (0, errno.EINPROGRESS):
                    self.conns.append(c)
                    self.fail(c, "connect", os.strerror(rc))
                    continue
                self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
                self.conns.append(c)
        deadline = now() + self.a.timeout
        while any(c.state == "connecting" for c in self.conns) and now() < deadline:
            self.poll(0.05)
        for c in self.conns:
            if c.state == "connecting":
                self.fail(c, "connect", "timed out")

    def send_record(self, c):
        r = record(c.idx, c.seq)
        c.seq += 1
        c.out += r
        c.pending += r
        c.sent_off += len(r)
        c.marks.append((c.sent_off, now()))
        self.records_sent += 1
        self.flush(c)

    def flush(self, c):
        while c.out:
            try:
                n = c.sock.send(c.out)
            except BlockingIOError:
                break
            except OSError as e:
                self.fail(c, "reset" if e.errno in (errno.ECONNRESET, errno.EPIPE) else "send",
                          e.strerror)
                return
            del c.out[:n]
        if c.state != "dead":
            self.rearm(c)

    def on_read(self, c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.fail(c, "reset" if e.errno == errno.ECONNRESET else "recv", e.strerror)
            return
        if not data:
            if c.state == "closing" and not c.pending:
                self.sel.unregister(c.sock)
                c.sock.close()
                c.state = "closed"
            else:
                self.fail(c, "eof", "the server closed the connection with %d bytes "
                          "outstanding" % len(c.pending))
            return
        n = len(data)
        if c.pending[:n] != data:
            i = next((k for k in range(min(n, len(c.pending)))
                      if c.pending[k] != data[k]), min(n, len(c.pending)))
            self.fail(c, "corrupt", "byte %d of the stream: got %r, expected %r" %
                      (c.echo_off + i, bytes(data[i:i + 8]), bytes(c.pending[i:i + 8])))
            return
        del c.pending[:n]
        c.echo_off += n
        self.bytes_echoed += n
        t = now()
        while c.marks and c.marks[0][0] <= c.echo_off:
            _, ts = c.marks.popleft()
            c.max_lat = max(c.max_lat, t - ts)
            self.records_echoed += 1
            if self.last_echo is not None:
                self.max_gap = max(self.max_gap, t - self.last_echo)
            self.last_echo = t

    def poll(self, timeout):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if isinstance(c, Udp):
                c.on_read(self)
                continue
            if c.state == "connecting":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self.fail(c, "connect", os.strerror(err))
                    continue
                if ev & selectors.EVENT_WRITE:
                    c.state = "open"
                    self.sel.modify(c.sock, selectors.EVENT_READ, c)
                    c.want_write = False
                continue
            if ev & selectors.EVENT_READ:
                self.on_read(c)
            if c.state != "dead" and ev & selectors.EVENT_WRITE:
                self.flush(c)

    def check_timeouts(self):
        t = now()
        for c in self.conns:
            if c.state in ("open", "closing") and c.marks and t - c.marks[0][1] > self.a.timeout:
                self.fail(c, "timeout", "no echo for %.1f s (%d bytes outstanding)" %
                          (t - c.marks[0][1], len(c.pending)))

    # --- status ---------------------------------------------------------------
    def summary(self, phase):
        st = collections.Counter(c.state for c in self.conns)
        return {
            "phase": phase, "t": round(now() - self.t0, 3),
            "conns": len(self.conns), "open": st["open"] + st["closing"], "closed": st["closed"],
            "dead": st["dead"], "records_sent": self.records_sent,
            "records_echoed": self.records_echoed, "bytes_echoed": self.bytes_echoed,
            "outstanding_bytes": sum(len(c.pending) for c in self.conns if c.state != "dead"),
            "errors": dict(self.errors), "error_detail": self.err_detail,
            "max_echo_ms": round(1e3 * max([c.max_lat for c in self.conns] or [0]), 3),
            "max_gap_ms": round(1e3 * self.max_gap, 3),
            "udp": [u.summary() for u in self.udp],
        }

    def write_status(self, path, phase):
        if not path:
            return
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.summary(phase), f)
        os.replace(tmp, path)

    # --- the run --------------------------------------------------------------
    def run(self):
        a = self.a
        for p in a.udp:
            u = Udp(len(self.udp), a.ip, p)
            self.udp.append(u)
            self.sel.register(u.sock, selectors.EVENT_READ, u)
        self.open_all()
        live = [c for c in self.conns if c.state == "open"]
        self.write_status(a.status, "running")
        interval = 1.0 / (a.rate * max(1, len(live)))
        uinterval = 1.0 / a.udp_rate if a.udp_rate > 0 else None
        t_next = t_unext = t_status = t_scan = now()
        k = 0
        while not self.stop:
            t = now()
            # a late loop sends what is due, but never more than a burst
            burst = 0
            while t >= t_next and burst < 64 and live:
                c = live[k % len(live)]
                k += 1
                t_next += interval
                burst += 1
                if c.state == "open":
                    self.send_record(c)
            if t - t_next > 1.0:
                t_next = t   # the loop was stopped (a slow machine): do not catch up
            if uinterval:
                while t >= t_unext:
                    for u in self.udp:
                        u.send()
                    t_unext += uinterval
                if t - t_unext > 1.0:
                    t_unext = t
            if t >= t_scan:
                self.check_timeouts()
                t_scan = t + 0.1
            if t >= t_status:
                self.write_status(a.status, "running")
                t_status = t + 0.25
            self.poll(max(0.0, min(t_next, t_unext if uinterval else t_next) - now()))
        # drain: every outstanding echo, then the last datagrams
        self.write_status(a.status, "draining")
        deadline = now() + a.timeout
        while now() < deadline and any(c.pending for c in self.conns if c.state == "open"):
            self.poll(0.05)
            self.check_timeouts()
        udl = now() + 1.0
        while now() < udl and any(u.missing() for u in self.udp):
            self.poll(0.05)
        if a.close:
            for c in self.conns:
                if c.state == "open":
                    c.state = "closing"
                    try:
                        c.sock.shutdown(socket.SHUT_WR)
                    except OSError as e:
                        self.fail(c, "reset", "shutdown: " + e.strerror)
            deadline = now() + a.timeout
            while now() < deadline and any(c.state == "closing" for c in self.conns):
                self.poll(0.05)
            for c in self.conns:
                if c.state == "closing":
                    self.fail(c, "close_timeout", "no EOF after our FIN")
        res = self.summary("done")
        res["udp"] = [u.summary(final=True) for u in self.udp]
        ok = (res["dead"] == 0 and not res["errors"] and res["outstanding_bytes"] == 0
              and res["records_echoed"] == res["records_sent"]
              and res["open" if not a.close else "closed"] == len(self.conns)
              and all(u["corrupt"] == 0 and u["lost"] <= a.udp_max_loss / 100 * max(1, u["sent"])
                      for u in res["udp"]))
        res["ok"] = ok
        if a.out:
            with open(a.out, "w") as f:
                json.dump(res, f, indent=1)
        self.write_status(a.status, "done")
        print(json.dumps(res))
        return 0 if ok else 1


class Udp:
    def __init__(self, flow, ip, port):
        self.flow, self.port = flow, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((ip, port))
        self.seq = 0
        self.sent_at = {}   # seq -> time, until echoed
        self.got = set()
        self.sent = self.recv = self.dup = self.corrupt = 0
        self.send_err = 0

    def send(self):
        d = record(1000 + self.flow, self.seq)
        try:
            self.sock.send(d)
        except OSError:
            self.send_err += 1   # e.g. ECONNREFUSED from an ICMP unreachable
        self.sent_at[self.seq] = now()
        self.seq += 1
        self.sent += 1

    def on_read(self, t):
        while True:
            try:
                d = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self.send_err += 1
                return
            if len(d) < HDR.size:
                self.corrupt += 1
                continue
            flow, seq, _ = HDR.unpack_from(d)
            if flow != 1000 + self.flow or seq >= self.seq or d != record(flow, seq):
                self.corrupt += 1
            elif seq in self.got:
                self.dup += 1
            else:
                self.got.add(seq)
                self.sent_at.pop(seq, None)
                self.recv += 1

    def missing(self):
        return self.sent - self.recv

    def summary(self, final=False):
        d = {"port": self.port, "sent": self.sent, "recv": self.recv,
             "lost": self.sent - self.recv, "dup": self.dup, "corrupt": self.corrupt,
             "send_errors": self.send_err}
        if final:
            # when each lost datagram was sent (CLOCK_MONOTONIC, s): the
            # caller lines them up with what it did meanwhile
            d["lost_at"] = sorted(round(t, 3) for t in self.sent_at.values())
        return d


def cmd_traffic(a):
    t = Traffic(a)

    def on_sig(*_):
        t.stop = True
    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGINT, on_sig)
    return t.run()


def cmd_idle(a):
    s = socket.create_connection((a.ip, a.port), timeout=a.timeout)
    open(a.ready, "w").close()
    while not os.path.exists(a.go):
        time.sleep(0.05)
    data = os.urandom(1000)
    s.sendall(data)
    got = b""
    s.settimeout(a.timeout)
    try:
        while len(got) < len(data):
            b = s.recv(4096)
            if not b:
                print("idle: EOF after %d of %d bytes" % (len(got), len(data)))
                return 1
            got += b
    except OSError as e:
        print("idle: %s after %d of %d bytes" % (e, len(got), len(data)))
        return 1
    s.close()
    ok = got == data
    print("idle: echo %s" % ("matched" if ok else "DIFFERS"))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("traffic")
    t.add_argument("ip")
    t.add_argument("--tcp", action="append", default=[])
    t.add_argument("--udp", action="append", type=int, default=[])
    t.add_argument("--rate", type=float, default=20)
    t.add_argument("--udp-rate", type=float, default=200)
    t.add_argument("--status")
    t.add_argument("--out")
    t.add_argument("--timeout", type=float, default=10)
    t.add_argument("--close", action="store_true")
    t.add_argument("--udp-max-loss", type=float, default=1.0)
    i = sub.add_parser("idle")
    i.add_argument("ip")
    i.add_argument("port", type=int)
    i.add_argument("--ready", required=True)
    i.add_argument("--go", required=True)
    i.add_argument("--timeout", type=float, default=10)
    a = p.parse_args()
    return cmd_traffic(a) if a.cmd == "traffic" else cmd_idle(a)


if __name__ == "__main__":
    sys.exit(main())
