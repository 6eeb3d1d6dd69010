#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# An app killed with SIGKILL mid-transfer: echo_server streams an echo to a
# Linux client (app_peer.py reset) and also holds 3 idle connections; after
# 1 MiB has been echoed the app gets SIGKILL. Then:
#   - the Linux peer sees RST: its transfer fails with ECONNRESET,
#   - `mustangctl status` shows 0 apps, `mustangctl conns` no connection
#     left on the app's port (all freed, none lingering),
#   - a new echo_server binds the same port and serves a transfer.
#
#   app_kill.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
app_setup kill
S=$IT_TMP

# conns_on_port PORT : connections mustangctl conns lists with local port PORT.
conns_on_port() {
	ctl_json conns "sum(1 for c in d.get('connections', []) if str(c.get('local', '')).endswith(':$1'))"
}
no_conns_on() { [ "$(conns_on_port "$1")" = 0 ]; }

app_start SRV echo_server "$EXAMPLES/echo_server" -p 7007 || exit 1
check "1 app attached" apps_is 1
# Idle connections (sleeping Linux clients) the app holds when it dies.
for i in 1 2 3; do
	app_run "IDLE$i" "idle$i" in_linux "$MST_PY" -c "
import socket, sys, time
s = socket.create_connection(('$TOPO_IP_M', 7007), timeout=30)
s.settimeout(30)
try:
    b = s.recv(1)
    print('idle: ' + ('EOF' if not b else 'data'))
except ConnectionResetError:
    print('idle: ECONNRESET')
    sys.exit(0)
sys.exit(1)"
done
app_run XFER xfer in_linux "$MST_PY" "$PEER" reset "$TOPO_IP_M" 7007 \
	--progress "$S/progress" --timeout 20
check "transfer under way (1 MiB echoed)" wait_for 15 test -f "$S/progress"
check "4 connections on port 7007 before the kill" test "$(conns_on_port 7007)" = 4
kill -KILL "$SRV"
app_wait "$SRV" 5
check "echo_server died of SIGKILL" test $? -eq 137
app_wait "$XFER" 30
rc=$?
sed 's/^/  | /' "$S/xfer.out"
check "the streaming Linux peer saw RST (ECONNRESET)" test "$rc" -eq 0
for i in 1 2 3; do
	pid=IDLE$i
	app_wait "${!pid}" 30
	check "idle connection $i saw RST ($(cat "$S/idle$i.out"))" test $? -eq 0
done
check "mustangctl status: 0 apps" wait_for 5 apps_is 0
check "mustangctl conns: no connection left on port 7007" wait_for 5 no_conns_on 7007
mst_ctl conns | sed 's/^/  conns | /'

app_start SRV2 echo_server2 "$EXAMPLES/echo_server" -p 7007 ||
	fail "a new echo_server could not bind port 7007"
check "the new echo_server serves port 7007 (4 MiB, SHA-256)" \
	peer echo "$TOPO_IP_M" 7007 --bytes 4M
kill -TERM "$SRV2"
app_wait "$SRV2" 10
check "the new echo_server exits 0" test $? -eq 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
