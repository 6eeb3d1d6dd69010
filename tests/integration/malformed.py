# SPDX-License-Identifier: BSD-3-Clause
"""Malformed frames for mustangd, built with scapy, sent on the veth.

Every case is one kind of bad frame and the drop reason (a name from
include/mustang/counters.h) it must be counted under. `run` sends each case
COUNT times from the Linux end of the veth and checks, case by case, from
`mustangctl stats --json` taken before and after, that:
  * the named drop counter moved by exactly COUNT, and
  * no other drop counter moved (no double counting, no misclassification).
A few positive cases (a UDP datagram with checksum 0, which IPv4 allows)
must instead produce a reply and no drop.

  malformed.py selftest
      build every frame and check, by dissecting it independently, that it
      carries exactly the defect it claims (tests the test; no daemon needed)
  malformed.py run --iface IF --smac MAC --dmac MAC --sip IP --dip IP
                   --mustangctl BIN --ctl PATH [--count N] [--only NAME,...]
                   [--driver af_xdp|af_packet]
      run inside the Linux peer's namespace.

Exit: 0 all cases passed, 1 a case failed, 2 usage.
"""

import argparse
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mststats  # noqa: E402

import logging  # noqa: E402
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import ARP, ICMP, IP, UDP, Ether, Raw, checksum  # noqa: E402


def _ip_cksum_fix(f, ip_off=14, hlen=20):
    """Recompute the IPv4 header checksum over hlen bytes (in place)."""
    f[ip_off + 10:ip_off + 12] = b"\0\0"
    ck = checksum(bytes(f[ip_off:ip_off + hlen]))
    f[ip_off + 10:ip_off + 12] = struct.pack("!H", ck)
    return f


def _set16(f, off, v):
    f[off:off + 2] = struct.pack("!H", v)


class Ctx:
    def __init__(self, smac, dmac, sip, dip):
        self.smac, self.dmac, self.sip, self.dip = smac, dmac, sip, dip

    def eth(self, **kw):
        return Ether(src=kw.pop("src", self.smac), dst=kw.pop("dst", self.dmac), **kw)

    def ip(self, **kw):
        return IP(src=kw.pop("src", self.sip), dst=kw.pop("dst", self.dip), **kw)

    def echo(self, **ipkw):
        """A valid ICMP echo request frame (bytearray)."""
        return bytearray(bytes(self.eth() / self.ip(**ipkw) /
                               ICMP(type=8, id=0x4d53, seq=1) / Raw(b"mustang-test")))

    def udp(self, dport=7, payload=b"mustang", sport=40000, **ipkw):
        return bytearray(bytes(self.eth() / self.ip(**ipkw) /
                               UDP(sport=sport, dport=dport) / Raw(payload)))

    def arp(self, **kw):
        a = dict(op=1, hwsrc=self.smac, psrc=self.sip, hwdst="00:00:00:00:00:00",
                 pdst=self.dip)
        a.update(kw)
        return bytearray(bytes(Ether(src=self.smac, dst="ff:ff:ff:ff:ff:ff") / ARP(**a)))


# --- the cases -------------------------------------------------------------
# Each builder returns the frame as a bytearray. IP header at offset 14.

def b_ip_bad_cksum(c):
    f = c.echo()
    ck = struct.unpack("!H", f[24:26])[0]
    _set16(f, 24, ck ^ 0x00ff)
    return f


def b_ip_ihl_4(c):
    f = c.echo()
    f[14] = 0x44                      # version 4, IHL 4 (16 bytes) < 5
    return _ip_cksum_fix(f)


def b_ip_ihl_past_frame(c):
    f = bytearray(bytes(c.eth() / c.ip(proto=1)))   # 20-byte header, no payload
    f[14] = 0x4f                      # IHL 15: 60 bytes, only 20 in the frame
    _set16(f, 16, 20)
    return _ip_cksum_fix(f)


def b_ip_total_len_gt_frame(c):
    f = c.echo()
    _set16(f, 16, len(f) - 14 + 100)
    return _ip_cksum_fix(f)


def b_ip_total_len_lt_ihl(c):
    f = c.echo()
    _set16(f, 16, 19)                 # < 20 = IHL * 4
    return _ip_cksum_fix(f)


def b_ip_fragment_first(c):
    return c.echo(flags="MF", frag=0)


def b_ip_fragment_later(c):
    return c.echo(flags=0, frag=185)  # offset 1480 bytes, last fragment


def b_ip_ttl_0(c):
    return c.echo(ttl=0)


def b_ip_version_6(c):
    f = c.echo()
    f[14] = 0x65                      # version 6 in an IPv4 EtherType frame
    return _ip_cksum_fix(f)


def b_ip_truncated(c):
    f = c.echo()
    return f[:14 + 10]                # Ethernet + 10 bytes of IPv4 header


def b_ip_not_for_us(c):
    other = c.dip.rsplit(".", 1)[0] + ".99"
    return c.echo(dst=other)


def b_ip_bad_src(c):
    return c.echo(src="224.0.0.5")    # multicast source


def b_ip_unknown_proto(c):
    return bytearray(bytes(c.eth() / c.ip(proto=253) / Raw(b"x" * 16)))


def b_icmp_truncated(c):
    f = bytearray(bytes(c.eth() / c.ip(proto=1) / Raw(b"\x08\x00\xf7\xff")))
    return f                          # 4 bytes of ICMP < its 8-byte header


def b_icmp_bad_cksum(c):
    f = c.echo()
    ck = struct.unpack("!H", f[36:38])[0]
    _set16(f, 36, ck ^ 0x0f0f)
    return f


def b_icmp_timestamp(c):
    return bytearray(bytes(c.eth() / c.ip() / ICMP(type=13, id=1, seq=1) /
                           Raw(b"\0" * 12)))


def b_udp_bad_cksum(c):
    f = c.udp()
    ck = struct.unpack("!H", f[40:42])[0]
    bad = ck ^ 0x00f0
    _set16(f, 40, bad if bad else 0x1234)
    return f


def b_udp_truncated(c):
    f = bytearray(bytes(c.eth() / c.ip(proto=17) / Raw(b"\x9c\x40\x00\x07")))
    return f                          # 4 bytes of UDP < its 8-byte header


def b_udp_len_gt_payload(c):
    f = c.udp()
    _set16(f, 38, len(f) - 34 + 20)   # UDP length past the IP payload
    _set16(f, 40, 0)                  # no checksum: the length is the defect
    return f


def b_udp_len_lt_8(c):
    f = c.udp()
    _set16(f, 38, 4)
    _set16(f, 40, 0)
    return f


def b_udp_src_port_0(c):
    return c.udp(sport=0)             # an echo to port 0 cannot be answered


def b_udp_src_port_7(c):
    return c.udp(sport=7)             # echo <-> echo would loop forever


def b_eth_runt(c):
    return bytearray(bytes(c.eth())[:10])   # shorter than an Ethernet header


def b_eth_unknown_type(c):
    return bytearray(bytes(c.eth(type=0x88b5) / Raw(b"\0" * 46)))


def b_eth_not_for_us(c):
    f = c.echo()
    f[0:6] = bytes.fromhex("020000000099")
    return f


def b_eth_bad_src(c):
    f = c.echo()
    f[6:12] = bytes.fromhex("01005e000005")  # multicast source MAC
    return f


def b_arp_truncated(c):
    return c.arp()[:14 + 20]


def b_arp_bad_format(c):
    return c.arp(hwtype=6)


def b_arp_bad_op(c):
    return c.arp(op=7)


def b_arp_not_for_us(c):
    return c.arp(pdst=c.dip.rsplit(".", 1)[0] + ".99")


def b_arp_bad_sender(c):
    return c.arp(psrc="224.0.0.1")


# (case, expected drop reason, builder, what selftest checks)
CASES = [
    ("ip_bad_cksum", "ip_bad_cksum", b_ip_bad_cksum),
    ("ip_ihl_4", "ip_bad_ihl", b_ip_ihl_4),
    ("ip_ihl_past_frame", "ip_bad_ihl", b_ip_ihl_past_frame),
    ("ip_total_len_gt_frame", "ip_bad_total_len", b_ip_total_len_gt_frame),
    ("ip_total_len_lt_ihl", "ip_bad_total_len", b_ip_total_len_lt_ihl),
    ("ip_fragment_first", "ip_fragment", b_ip_fragment_first),
    ("ip_fragment_later", "ip_fragment", b_ip_fragment_later),
    ("ip_ttl_0", "ip_ttl_expired", b_ip_ttl_0),
    ("ip_version_6", "ip_bad_version", b_ip_version_6),
    ("ip_truncated", "ip_truncated", b_ip_truncated),
    ("ip_not_for_us", "ip_not_for_us", b_ip_not_for_us),
    ("ip_bad_src", "ip_bad_src", b_ip_bad_src),
    ("ip_unknown_proto", "ip_unknown_proto", b_ip_unknown_proto),
    ("icmp_truncated", "icmp_truncated", b_icmp_truncated),
    ("icmp_bad_cksum", "icmp_bad_cksum", b_icmp_bad_cksum),
    ("icmp_timestamp", "icmp_unhandled_type", b_icmp_timestamp),
    ("udp_bad_cksum", "udp_bad_cksum", b_udp_bad_cksum),
    ("udp_truncated", "udp_truncated", b_udp_truncated),
    ("udp_len_gt_payload", "udp_bad_len", b_udp_len_gt_payload),
    ("udp_len_lt_8", "udp_bad_len", b_udp_len_lt_8),
    ("udp_src_port_0", "udp_bad_src_port", b_udp_src_port_0),
    ("udp_src_port_7", "udp_bad_src_port", b_udp_src_port_7),
    ("eth_runt", "eth_runt", b_eth_runt),
    ("eth_unknown_type", "eth_unknown_type", b_eth_unknown_type),
    ("eth_not_for_us", "eth_not_for_us", b_eth_not_for_us),
    ("eth_bad_src", "eth_bad_src", b_eth_bad_src),
    ("arp_truncated", "arp_truncated", b_arp_truncated),
    ("arp_bad_format", "arp_bad_format", b_arp_bad_format),
    ("arp_bad_op", "arp_bad_op", b_arp_bad_op),
    ("arp_not_for_us", "arp_not_for_us", b_arp_not_for_us),
    ("arp_bad_sender", "arp_bad_sender", b_arp_bad_sender),
]


# --- selftest: each frame has exactly its defect --------------------------

def _ip_ok_cksum(f, hlen=20):
    return checksum(bytes(f[14:14 + hlen])) == 0


def selftest():
    c = Ctx("02:00:00:00:00:01", "02:00:00:00:00:02", "10.77.1.1", "10.77.1.2")
    ok = True

    def expect(name, cond, what):
        nonlocal ok
        if not cond:
            ok = False
            print("FAIL %s: %s" % (name, what))

    for name, drop, build in CASES:
        f = build(c)
        et = struct.unpack("!H", f[12:14])[0] if len(f) >= 14 else None
        if et == 0x0800 and len(f) >= 34:
            ver, ihl = f[14] >> 4, f[14] & 15
            tot = struct.unpack("!H", f[16:18])[0]
            ipv = len(f) - 14
            good_hdr = (ver == 4 and ihl == 5 and 20 <= tot <= ipv and
                        _ip_ok_cksum(f) and f[22] > 0)
            frag = struct.unpack("!H", f[20:22])[0] & 0x3fff
        if name == "ip_bad_cksum":
            expect(name, ver == 4 and ihl == 5 and tot == ipv and not _ip_ok_cksum(f), "cksum")
        elif name == "ip_ihl_4":
            expect(name, ihl == 4 and tot == ipv and _ip_ok_cksum(f), "ihl")
        elif name == "ip_ihl_past_frame":
            expect(name, ihl * 4 > ipv, "ihl past frame")
        elif name == "ip_total_len_gt_frame":
            expect(name, ihl == 5 and tot > ipv and _ip_ok_cksum(f), "tot > frame")
        elif name == "ip_total_len_lt_ihl":
            expect(name, ihl == 5 and tot < 20 and _ip_ok_cksum(f), "tot < ihl")
        elif name.startswith("ip_fragment"):
            expect(name, ihl == 5 and tot == ipv and _ip_ok_cksum(f) and frag != 0, "frag")
        elif name == "ip_ttl_0":
            expect(name, ver == 4 and tot == ipv and _ip_ok_cksum(f) and f[22] == 0, "ttl")
        elif name == "ip_version_6":
            expect(name, ver == 6 and _ip_ok_cksum(f), "version")
        elif name == "ip_truncated":
            expect(name, et == 0x0800 and len(f) - 14 < 20, "truncated")
        elif name in ("ip_not_for_us", "ip_bad_src", "ip_unknown_proto",
                      "icmp_truncated", "icmp_bad_cksum", "icmp_timestamp",
                      "udp_bad_cksum", "udp_truncated", "udp_len_gt_payload",
                      "udp_len_lt_8", "udp_src_port_0", "udp_src_port_7",
                      "eth_not_for_us", "eth_bad_src"):
            expect(name, good_hdr and frag == 0, "IPv4 header must be valid")
            p = Ether(bytes(f))
            if name == "ip_not_for_us":
                expect(name, p[IP].dst != c.dip, "dst")
            elif name == "ip_bad_src":
                expect(name, p[IP].src.startswith("224."), "src")
            elif name == "ip_unknown_proto":
                expect(name, f[23] == 253, "proto")
            elif name == "icmp_truncated":
                expect(name, f[23] == 1 and tot - 20 < 8, "icmp len")
            elif name == "icmp_bad_cksum":
                expect(name, f[23] == 1 and checksum(bytes(f[34:14 + tot])) != 0, "icmp ck")
            elif name == "icmp_timestamp":
                expect(name, f[34] == 13 and checksum(bytes(f[34:14 + tot])) == 0, "type")
            elif name == "udp_bad_cksum":
                chk = p[UDP].chksum
                p2 = p.copy()
                p2[UDP].chksum = None
                good = Ether(bytes(p2))[UDP].chksum
                expect(name, chk != 0 and chk != good and p[UDP].len == tot - 20, "udp ck")
            elif name == "udp_truncated":
                expect(name, f[23] == 17 and tot - 20 < 8, "udp trunc")
            elif name == "udp_len_gt_payload":
                ulen = struct.unpack("!H", f[38:40])[0]
                expect(name, ulen > tot - 20 and f[40:42] == b"\0\0", "udp len")
            elif name == "udp_len_lt_8":
                ulen = struct.unpack("!H", f[38:40])[0]
                expect(name, ulen < 8, "udp len")
            elif name.startswith("udp_src_port_"):
                expect(name, p[UDP].dport == 7 and p[UDP].sport == int(name[13:]) and
                       p[UDP].len == tot - 20, "sport")
                p2 = p.copy()
                p2[UDP].chksum = None
                expect(name, Ether(bytes(p2))[UDP].chksum == p[UDP].chksum, "udp ck ok")
            elif name == "eth_not_for_us":
                expect(name, bytes(f[0:6]) != bytes.fromhex(c.dmac.replace(":", "")) and
                       not f[0] & 1, "dst mac")
            elif name == "eth_bad_src":
                expect(name, f[6] & 1 == 1, "src mac")
        elif name == "eth_runt":
            expect(name, len(f) < 14, "runt")
        elif name == "eth_unknown_type":
            expect(name, et not in (0x0800, 0x0806), "type")
        elif name.startswith("arp_"):
            expect(name, et == 0x0806, "arp type")
            if name == "arp_truncated":
                expect(name, len(f) - 14 < 28, "arp len")
            else:
                a = Ether(bytes(f))[ARP]
                if name == "arp_bad_format":
                    expect(name, a.hwtype != 1 and a.ptype == 0x0800, "hwtype")
                elif name == "arp_bad_op":
                    expect(name, a.op not in (1, 2) and a.pdst == c.dip, "op")
                elif name == "arp_not_for_us":
                    expect(name, a.op == 1 and a.pdst != c.dip, "target")
                elif name == "arp_bad_sender":
                    expect(name, a.op == 1 and a.pdst == c.dip and
                           a.psrc.startswith("224."), "sender")
        else:
            expect(name, False, "no selftest for this case")
        # Sanity: the frame names a drop reason that exists.
    cn, dn = mststats.header_names(_header())
    for name, drop, _ in CASES:
        if drop not in dn:
            ok = False
            print("FAIL %s: drop reason %s is not in counters.h" % (name, drop))
    print("selftest: %d cases, %s" % (len(CASES), "ok" if ok else "FAILED"))
    return 0 if ok else 1


def _header():
    src = os.environ.get("MUSTANG_SRC") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    return os.path.join(src, "include", "mustang", "counters.h")


# --- run: against the daemon ------------------------------------------------

def _read(a):
    return mststats.totals(mststats.fetch(a.mustangctl, a.ctl))


def _settle(a, before_c, sent, want=None):
    """Poll until rx_frames moved by `sent` (or 3 s), then read once more
    after a short pause so that late extra counts are seen too."""
    deadline = time.time() + 3.0
    while time.time() < deadline:
        c, d = _read(a)
        if c.get("rx_frames", 0) - before_c.get("rx_frames", 0) >= sent:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    return _read(a)


def _moved(before, after):
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in set(before) | set(after) if after.get(k, 0) != before.get(k, 0)}


def run(a):
    c = Ctx(a.smac, a.dmac, a.sip, a.dip)
    only = set(a.only.split(",")) if a.only else None
    # A plain AF_PACKET socket, not scapy's L2socket: scapy silently pads a
    # frame the kernel refuses up to 60 bytes and sends that instead, which
    # would turn a runt into some other defect.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((a.iface, 0))
    failed, skipped, passed = [], [], []
    try:
        for name, drop, build in CASES:
            if only and name not in only:
                continue
            f = bytes(build(c))
            c0, d0 = _read(a)
            try:
                for _ in range(a.count):
                    sock.send(f)
            except OSError as e:
                # AF_PACKET refuses frames shorter than the link header
                # (dev_validate_header): a veth cannot carry them at all.
                skipped.append(name)
                print("SKIP %-22s cannot be sent on %s (%s); covered by unit tests"
                      % (name, a.iface, e.strerror or e))
                continue
            if drop == "ip_fragment" and a.driver == "af_packet":
                # DPDK 22.11's af_packet PMD joins a PACKET_FANOUT group with
                # PACKET_FANOUT_FLAG_DEFRAG: the kernel reassembles fragments
                # before the port sees them, and holds a lone fragment until
                # its reassembly timer expires. So Mustang must see nothing.
                time.sleep(0.5)
                c1, d1 = _read(a)
                rx = c1.get("rx_frames", 0) - c0.get("rx_frames", 0)
                dmoved = _moved(d0, d1)
                if rx or dmoved:
                    failed.append(name)
                    print("FAIL %-22s af_packet: expected the kernel to hold fragments; "
                          "rx_frames +%d, drops moved: %s" % (name, rx, dmoved or "none"))
                else:
                    passed.append(name)
                    print("ok   %-22s af_packet: held by the kernel's defrag (not seen)"
                          % name)
                continue
            c1, d1 = _settle(a, c0, a.count)
            dmoved = _moved(d0, d1)
            got = dmoved.get(drop, 0)
            others = {k: v for k, v in dmoved.items() if k != drop}
            if drop not in d1:
                failed.append(name)
                print("FAIL %-22s drop counter %r absent from stats --json" % (name, drop))
            elif got != a.count or others:
                failed.append(name)
                print("FAIL %-22s sent %d, expected %s +%d; drops moved: %s; rx_frames +%d"
                      % (name, a.count, drop, a.count, dmoved or "none",
                         c1.get("rx_frames", 0) - c0.get("rx_frames", 0)))
                print("     frame: %s" % f.hex())
            else:
                passed.append(name)
                print("ok   %-22s %s +%d" % (name, drop, got))

        # Positive case: UDP checksum 0 means "no checksum" in IPv4 and must
        # be accepted and echoed, not counted as a bad checksum. A socket on
        # the source port takes the replies (else the Linux peer would answer
        # them with port unreachable).
        if not only or "udp_zero_cksum" in only:
            payload = b"zero-checksum"
            f = c.udp(payload=payload)
            _set16(f, 40, 0)
            rs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rs.bind((a.sip, 40000))
            rs.settimeout(2.0)
            c0, d0 = _read(a)
            for _ in range(a.count):
                sock.send(bytes(f))
            echoed = 0
            try:
                for _ in range(a.count):
                    if rs.recv(2048) == payload:
                        echoed += 1
            except socket.timeout:
                pass
            rs.close()
            c1, d1 = _settle(a, c0, a.count)
            rep = c1.get("udp_echo_replies", 0) - c0.get("udp_echo_replies", 0)
            dmoved = _moved(d0, d1)
            if rep != a.count or echoed != a.count or dmoved:
                failed.append("udp_zero_cksum")
                print("FAIL %-22s sent %d, expected %d echoes and no drop; got %d back, "
                      "udp_echo_replies +%d, drops moved: %s"
                      % ("udp_zero_cksum", a.count, a.count, echoed, rep, dmoved or "none"))
            else:
                passed.append("udp_zero_cksum")
                print("ok   %-22s %d echoed, no drop" % ("udp_zero_cksum", echoed))
    finally:
        sock.close()
    print("malformed: %d passed, %d failed, %d not injectable"
          % (len(passed), len(failed), len(skipped)))
    if failed:
        print("failed: " + " ".join(failed))
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest")
    r = sub.add_parser("run")
    for k in ("iface", "smac", "dmac", "sip", "dip", "mustangctl", "ctl"):
        r.add_argument("--" + k, required=True)
    r.add_argument("--count", type=int, default=3)
    r.add_argument("--only", default="")
    r.add_argument("--driver", default="", help="port driver, for its known quirks")
    a = p.parse_args()
    if a.cmd == "selftest":
        return selftest()
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
