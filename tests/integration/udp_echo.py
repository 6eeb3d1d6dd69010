# SPDX-License-Identifier: BSD-3-Clause
"""UDP checks against mustangd from the Linux peer (run in its namespace).

  udp_echo.py echo HOST [SIZES]    each size: a random datagram to HOST:7 on a
                                   connected socket comes back byte-identical
  udp_echo.py closed HOST PORT     a datagram to a closed port is answered by
                                   ICMP port unreachable, which Linux reports
                                   as ECONNREFUSED on the connected socket

Exit 0 pass, 1 fail.
"""

import errno
import os
import socket
import sys

SIZES = [1, 2, 18, 64, 100, 512, 1000, 1471, 1472]


def echo(host, sizes):
    bad = 0
    for n in sizes:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2.0)
        s.connect((host, 7))
        data = os.urandom(n)
        got = None
        # One retry: a first datagram can wait on ARP; a lost one is a
        # failure only if it is lost twice.
        for attempt in range(2):
            s.send(data)
            try:
                got = s.recv(65535)
                break
            except socket.timeout:
                print("  size %d: no reply within 2 s (attempt %d)" % (n, attempt + 1))
        src = s.getsockname()
        s.close()
        if got == data:
            print("ok   udp echo %4d bytes (from %s:%d)" % (n, src[0], src[1]))
        else:
            bad += 1
            if got is None:
                print("FAIL udp echo %4d bytes: no reply" % n)
            else:
                diff = next((i for i in range(min(len(got), n)) if got[i] != data[i]),
                            min(len(got), n))
                print("FAIL udp echo %4d bytes: got %d bytes back, first difference "
                      "at offset %d" % (n, len(got), diff))
    return 1 if bad else 0


def closed(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    s.connect((host, port))
    for attempt in range(2):
        try:
            s.send(b"anyone there?")
            s.recv(2048)
            print("FAIL udp to closed port %d: got a reply" % port)
            return 1
        except ConnectionRefusedError:
            print("ok   udp to closed port %d: ECONNREFUSED (ICMP port unreachable)"
                  % port)
            return 0
        except socket.timeout:
            print("  closed port %d: no ICMP within 2 s (attempt %d)" % (port, attempt + 1))
        except OSError as e:
            print("FAIL udp to closed port %d: %s" % (port, errno.errorcode.get(e.errno, e)))
            return 1
    print("FAIL udp to closed port %d: no ICMP port unreachable" % port)
    return 1


def main(argv):
    if len(argv) >= 3 and argv[1] == "echo":
        sizes = [int(x) for x in argv[3].split(",")] if len(argv) > 3 else SIZES
        return echo(argv[2], sizes)
    if len(argv) == 4 and argv[1] == "closed":
        return closed(argv[2], int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
