#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Apps at the edges the other app tests never reach (app_probe.c):
#   1. UDP receive buffer full: app_probe binds a UDP socket and does not
#      read; Linux sends 3x as many 1000-byte datagrams as its FIFO holds
#      (paced, so the veth and the port drop none). Exactly `capacity`
#      are received, byte-exact and in order (the first ones), and
#      udp_rcvbuf_full counts every other one; after the drain the socket
#      receives again. Probe for the check in eng_app_udp_input().
#   2. A connected UDP socket hears only its peer: 3 datagrams from the
#      peer's port and 3 from another port of the same host; 3 arrive.
#   3. The daemon dies (SIGKILL) with an app attached and blocked in
#      mst_recv(): the blocked call returns ENETDOWN (the client notices
#      the control socket's hang-up), so do send, sendto and socket; the
#      app exits by itself.
#
#   app_limits.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
PROBE=$APP_TESTS/app_probe
[ -x "$PROBE" ] || { it_log "FAIL $PROBE not built"; exit 1; }
app_setup limits
S=$IT_TMP
SIZE=1000

# send_numbered FIRST COUNT : COUNT datagrams of SIZE bytes to the probe,
# numbered FIRST.., 200 us apart (no loss on the way on a veth).
send_numbered() {
	in_linux "$MST_PY" - "$TOPO_IP_M" 7011 "$1" "$2" "$SIZE" <<'EOF'
import socket, struct, sys, time
host, port, first, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for seq in range(first, first + count):
    body = bytes(((seq * 7 + i) & 0xFF) for i in range(4, size))
    s.sendto(struct.pack(">I", seq) + body, (host, port))
    time.sleep(0.0002)
EOF
}
field() { sed -n "s/.*\b$1[= ]\([0-9]*\).*/\1/p" "$2" | tail -n 1; }

# --- 1. UDP receive buffer full ------------------------------------------------
app_start P1 probe1 "$PROBE" udpfill 7011 "$SIZE" "$S/go1" || exit 1
cap=$(field capacity "$S/probe1.out")
check "probe reports a FIFO capacity ($cap datagrams of $SIZE B)" test "${cap:-0}" -gt 0
sent=$((cap * 3))
snapshot "$S/s0"
send_numbered 0 "$sent"
sleep 0.5
snapshot "$S/s1"
touch "$S/go1"
app_wait "$P1" 20
rc=$?
sed 's/^/  | /' "$S/probe1.out"
check "udpfill: every datagram read is byte-exact (exit 0)" test "$rc" -eq 0
got=$(field received "$S/probe1.out")
check "exactly the $cap that fit were delivered (got ${got:-none} of $sent)" test "${got:-x}" = "$cap"
check "they are datagrams 0..$((cap - 1)) in order" \
	test "$(field in_order "$S/probe1.out")" = "$cap"
full=$(delta "$S/s0" "$S/s1" drops udp_rcvbuf_full)
check "udp_rcvbuf_full counted the other $((sent - cap)) (counted $full)" \
	test "$full" = $((sent - cap))
# The drained socket receives again (space is given back).
rm -f "$S/go2"
app_start P2 probe2 "$PROBE" udpfill 7011 "$SIZE" "$S/go2" || exit 1
send_numbered 5000 3
sleep 0.3
touch "$S/go2"
app_wait "$P2" 20
check "a new socket on the port receives 3 of 3" test "$(field received "$S/probe2.out")" = 3

# --- 2. a connected UDP socket hears only its peer -------------------------------
app_start P3 probe3 "$PROBE" udpconn 7012 "$TOPO_IP_L:9100" "$S/go3" || exit 1
in_linux "$MST_PY" - "$TOPO_IP_M" <<'EOF'
import socket, sys, time
for sport in (9100, 9101, 9100, 9101, 9100, 9101):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.sendto(b"from %d" % sport, (sys.argv[1], 7012))
    s.close()
    time.sleep(0.01)
EOF
sleep 0.3
touch "$S/go3"
app_wait "$P3" 20
sed 's/^/  | /' "$S/probe3.out"
check "connected UDP socket: the 3 datagrams from its peer, none of the 3 from another port" \
	grep -qx "received 3 from_peer 3" "$S/probe3.out"

# --- 3. the daemon dies under an attached app -----------------------------------
linux_start LSINK discard discard-server 9011 || exit 1
app_run ORPH orphan "$PROBE" orphan "$TOPO_IP_L:9011"
wait_for 10 grep -qs attached "$S/orphan.out" || fail "app_probe orphan did not connect"
sleep 0.5 # let it block (spin, then sleep on the eventfd + control socket)
kill -KILL "$MST_DAEMON_PID"
wait "$MST_DAEMON_PID" 2>/dev/null
MST_DAEMON_PID=""
app_wait "$ORPH" 10
rc=$?
sed 's/^/  | /' "$S/orphan.out"
check "the app returned from its blocked mst_recv and exited 0 (status $rc)" test "$rc" -eq 0
for call in recv send sendto socket; do
	check "after the daemon's death $call fails with ENETDOWN" \
		grep -qx "$call: ENETDOWN" "$S/orphan.out"
done
it_end
