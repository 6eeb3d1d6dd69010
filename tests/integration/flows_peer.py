# SPDX-License-Identifier: BSD-3-Clause
"""The Linux side of flows.sh: one TCP connection to an echo server, and what
the kernel saw of it (TCP_INFO), as one JSON line on stdout.

  flows_peer.py clean IP PORT BYTES   send BYTES, read them back, shut down,
                                      read EOF, close (both FINs)
  flows_peer.py reset IP PORT BYTES   send BYTES, read them back, close with
                                      SO_LINGER 0 (an RST)
  flows_peer.py hold IP PORT BYTES    send BYTES, read them back, then wait for
                                      the server to go away (EOF or ECONNRESET)
  flows_peer.py check FILE PEER_JSON REASON [lossy]
                                      the flow record in FILE (JSON lines) for
                                      the peer's port must match what it saw
                                      (lossy: retransmissions expected, the
                                      segment counts differ by the losses)

Output fields: port (our local port), sent, received (application bytes),
tcpi_* (struct tcp_info at the end, before close), end ("eof"/"reset").
"""

import json
import socket
import struct
import sys
import time

TCP_INFO_FMT = "8B24I"  # up to tcpi_total_retrans
# offsets past the u8/u32 head: pacing(8), max_pacing(8), bytes_acked(8),
# bytes_received(8), segs_out(4), segs_in(4)


def tcp_info(s):
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    head = struct.calcsize(TCP_INFO_FMT)
    bytes_acked, bytes_received, segs_out, segs_in = struct.unpack_from(
        "QQII", raw, head + 16)
    return {"tcpi_bytes_acked": bytes_acked, "tcpi_bytes_received": bytes_received,
            "tcpi_segs_out": segs_out, "tcpi_segs_in": segs_in,
            "tcpi_total_retrans": struct.unpack_from("I", raw, head - 4)[0]}


def echo(s, n):
    data = bytes((i * 7) & 0xFF for i in range(n))
    s.sendall(data)
    got = b""
    while len(got) < n:
        b = s.recv(65536)
        if not b:
            raise SystemExit("EOF before the echo came back")
        got += b
    if got != data:
        raise SystemExit("echo differs")
    return len(data), len(got)


def run(mode, ip, port, n):
    s = socket.create_connection((ip, port), timeout=20)
    out = {"port": s.getsockname()[1]}
    out["sent"], out["received"] = echo(s, n)
    if mode == "clean":
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            raise SystemExit("data after the echo")
        time.sleep(0.2)  # the ACK of the server's FIN is out
        out.update(tcp_info(s))
        out["end"] = "eof"
        s.close()
    elif mode == "reset":
        out.update(tcp_info(s))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        out["end"] = "reset"
    else:  # hold: until the server side goes away
        print(json.dumps({"ready": True}), flush=True)
        try:
            b = s.recv(1)
            out["end"] = "eof" if not b else "data"
        except ConnectionResetError:
            out["end"] = "reset"
        s.close()
    print(json.dumps(out), flush=True)


def check(path, peer_json, reason, lossy=False):
    peer = json.loads(peer_json)
    recs = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["remote_port"] == peer["port"] and r["type"] == "end":
                recs.append(r)
    if len(recs) != 1:
        raise SystemExit(f"{len(recs)} final records for port {peer['port']}")
    r = recs[0]
    errs = []

    def want(k, v):
        if r[k] != v:
            errs.append(f"{k} = {r[k]!r}, want {v!r}")

    want("close_reason", reason)
    want("bytes_in", peer["sent"])          # what the peer's app sent, exactly
    want("bytes_out", peer["received"])     # what the peer's app received
    if "tcpi_segs_in" in peer and reason == "fin" and not lossy:
        # Segments: everything each side sent arrived (a lossless veth).
        want("segs_out", peer["tcpi_segs_in"])
        want("segs_in", peer["tcpi_segs_out"])
    if lossy:
        if not (r["retransmits"] > 0 and r["bytes_sent"] > r["bytes_out"]):
            errs.append(f"retransmits = {r['retransmits']}, bytes_sent = {r['bytes_sent']}:"
                        " want retransmissions through a lossy path")
    elif "tcpi_total_retrans" in peer:
        want("retransmits", 0)
    for k in ("srtt_us", "min_rtt_us", "max_cwnd"):
        if reason != "app_died" and not r[k] > 0:
            errs.append(f"{k} = {r[k]}, want > 0")
    if errs:
        raise SystemExit("record " + json.dumps(r) + "\n  " + "\n  ".join(errs))
    print(f"port {peer['port']}: {reason}, rtx {r['retransmits']} rto {r['rto_count']} "
          f"fr {r['fast_recoveries']}, in {r['bytes_in']} B / {r['segs_in']} segs, "
          f"out {r['bytes_out']} B / {r['segs_out']} segs, srtt {r['srtt_us']} us")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4], len(sys.argv) > 5 and sys.argv[5] == "lossy")
    else:
        run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
