#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# An af_xdp or af_packet port whose interface goes down and up again
# (issue 19): a Linux TCP client echoes 100-byte messages every 20 ms with
# Mustang's echo service; the veth on Mustang's side is set down for
# MST_FLAP_S (2) seconds and up again. The connection must survive by its
# own retransmission (every message echoed intact, no reset), pings must
# pass again afterwards, and `mustangctl ports` must count the gap
# (link_downs >= 1, link_ups >= 2).
#
#   link_flap.sh DRIVER
set -u
. "$(dirname "$0")/common.sh"

FLAP_S=${MST_FLAP_S:-2}

it_begin "${1:-af_packet}"
it_topo_daemon flap

# The client: one connection, a message every 20 ms for 10 s, each echo
# checked; waits up to 30 s for a late echo (retransmission after the gap).
cat >"$IT_TMP/flap_client.py" <<'EOF'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7), timeout=5)
s.settimeout(30)
t_end = time.time() + 10
n = 0
while time.time() < t_end:
    msg = (b"%08d" % n) * 12 + b"...."
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            sys.exit("connection closed by Mustang after %d messages" % n)
        got += chunk
    if got != msg:
        sys.exit("message %d came back different" % n)
    n += 1
    time.sleep(0.02)
s.close()
print("flap_client: %d messages echoed" % n)
EOF
in_linux "$MST_PY" "$IT_TMP/flap_client.py" "$TOPO_IP_M" >"$IT_TMP/client.out" 2>&1 &
CLIENT=$!
IT_BG_PIDS+=("$CLIENT")
sleep 2
ip -n "$TOPO_NS_M" link set "$TOPO_IF_M" down
sleep "$FLAP_S"
ip -n "$TOPO_NS_M" link set "$TOPO_IF_M" up
if mst_wait_exit "$CLIENT" 60; then
	wait "$CLIENT"
	rc=$?
else
	rc=124
	kill "$CLIENT" 2>/dev/null
fi
sed 's/^/  | /' "$IT_TMP/client.out"
check "$IT_DRIVER: a TCP echo survives the interface down for ${FLAP_S} s" [ "$rc" -eq 0 ]
check "$IT_DRIVER: ping after the gap" in_linux ping -c 2 -W 2 "$TOPO_IP_M"
counts=$("$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" ports --json | "$MST_PY" -c '
import json, sys; c = json.load(sys.stdin)["ports"][0]["counters"]; print(c["link_downs"], c["link_ups"])')
it_log "  link_downs link_ups: $counts"
check "$IT_DRIVER: the gap is counted" bash -c "[ '${counts%% *}' -ge 1 ] && [ '${counts##* }' -ge 2 ]"
check "$IT_DRIVER: no engine reset a connection" \
	bash -c "'$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' stats --json | '$MST_PY' -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d[\"totals\"][\"counters\"][\"tcp_resets_sent\"] != 0)'"
stop_mustangd || fail "mustangd did not exit cleanly"
it_end
