#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The scheduling modes on a real port with two engines (af_packet fanout
# spreads frames, software steering sends each TCP segment to the engine
# that owns its connection): compacting packs both engines on worker
# threads and connections spread over both engines without a reset; dedicated pins its engine to the CPU
# given. Each daemon answers ping and TCP and exits 0 on SIGTERM.
#
#   test_modes.sh af_packet   exit 0 pass, 1 fail, 77 skip

. "$(dirname "$0")/common.sh"
it_begin "${1:?usage: $0 af_packet}"
[ "$IT_DRIVER" = af_packet ] || skip "two engines need af_packet on veth (no combined channels for af_xdp)"

ip=
ping_n() { in_linux ping -n -q -c "$1" -i 0.2 -W 2 "$ip" | grep -q " $1 received"; }
engines_json() { "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --json engines; }
stats_json() { "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --json stats; }

# 8 connections to discard, 2 s of data each, from the Linux side.
load() {
	in_linux "$MST_PY" - "$ip" <<'PY'
import socket, sys, threading, time
ip = sys.argv[1]
def one():
    s = socket.create_connection((ip, 9), timeout=5)
    end = time.time() + 2
    while time.time() < end:
        s.sendall(b"x" * 65536)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
errors = []
def run():
    try:
        one()
    except OSError as e:
        errors.append(repr(e))
ts = [threading.Thread(target=run) for _ in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
if errors:
    print("  stream errors:", errors)
    sys.exit(1)
PY
}

# --- compacting, two engines ---------------------------------------------------
it_topo_daemon modes --mode compacting --engines 2 --services echo,discard
ip=$TOPO_IP_M
check "compacting: ping 5/5" ping_n 5
check "compacting: 8 TCP streams to discard complete" load
compact_ok() {
	engines_json | "$MST_PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["mode"] == "compacting", d["mode"]
assert d["workers"] == 2, d
assert len(d["engines"]) == 2, d
assert all(e["load"]["polls"] > 0 for e in d["engines"]), d
print("  workers %d active %d grows %d shrinks %d" % (d["workers"], d["active_workers"], d["grows"], d["shrinks"]))'
}
check "compacting: 2 workers poll 2 engines" compact_ok
both_served() {
	stats_json | "$MST_PY" -c '
import json, sys
d = json.load(sys.stdin)
opens = [e["counters"]["tcp_passive_opens"] for e in d["engines"]]
steered = [e["counters"]["steered_in"] for e in d["engines"]]
resets = d["totals"]["counters"]["tcp_resets_sent"]
print("  passive opens per engine:", opens, "steered in:", steered, "resets sent:", resets)
if resets:  # which drops went with them (tcp_no_socket, tcp_listen_bad, ...)
    for i, e in enumerate(d["engines"]):
        print("  engine %d tcp drops:" % i, {k: v for k, v in e.get("drops", {}).items() if v and k.startswith("tcp")})
assert len(opens) == 2 and all(o > 0 for o in opens)
assert resets == 0'
}
check "compacting: connections spread over both engines, no RST" both_served
check "compacting: SIGTERM exits 0" stop_mustangd TERM

# --- dedicated, one engine pinned -----------------------------------------------
it_daemon --mode dedicated --engines 1 --cores 1 --services echo,discard
check "dedicated: ping 5/5" ping_n 5
pinned() {
	engines_json | "$MST_PY" -c '
import json, sys
d = json.load(sys.stdin)
assert d["mode"] == "dedicated" and d["engines"][0]["cpu"] == 1, d'
}
check "dedicated: engine 0 pinned to CPU 1" pinned
check "dedicated: SIGTERM exits 0" stop_mustangd TERM

it_end
