#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Apps on Mustang, echo both ways:
#   1. echo_server (examples/) on Mustang; the Linux kernel's TCP from the
#      peer namespace (app_peer.py echo): one 16 MiB transfer, then 8
#      concurrent connections of 2 MiB each; SHA-256 of every echo equal.
#   2. echo_client on Mustang against a Linux echo server in the peer
#      namespace: active open through Mustang (ARP, ephemeral port), small
#      messages and large ones over several connections, every byte checked.
#   3. Both apps detached afterwards: `mustangctl status` says 0 apps.
#
#   app_echo.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
app_setup echo
ip=$TOPO_IP_M

# --- 1. Linux client -> echo_server on Mustang ---------------------------------
app_start SRV echo_server "$EXAMPLES/echo_server" -p 7007 || exit 1
check "1 app attached" apps_is 1
check "echo_server: 16 MiB from Linux, SHA-256 equal" peer echo "$ip" 7007 --bytes 16M
check "echo_server: 8 concurrent connections x 2 MiB, SHA-256 equal" \
	peer echo "$ip" 7007 --bytes 2M --conns 8
check "echo_server: 32 concurrent connections x 64 KiB" \
	peer echo "$ip" 7007 --bytes 64K --conns 32
kill -TERM "$SRV"
app_wait "$SRV" 10
check "echo_server exits 0 on SIGTERM" test $? -eq 0
grep -q "41 connections" "$IT_TMP/echo_server.out" ||
	fail "echo_server did not count 41 connections: $(tail -n 1 "$IT_TMP/echo_server.out")"

# --- 2. echo_client on Mustang -> Linux echo server ------------------------------
linux_start LSRV linux_echo echo-server 9007 || exit 1
check "echo_client: 2000 x 64 B, 1 connection (active open, ARP)" \
	"$EXAMPLES/echo_client" --size 64 --count 2000 "$TOPO_IP_L:9007"
check "echo_client --blocking: 500 x 1 KiB" \
	"$EXAMPLES/echo_client" --blocking --size 1K --count 500 "$TOPO_IP_L:9007"
check "echo_client: 4 connections x 8 x 1 MiB" \
	"$EXAMPLES/echo_client" --size 1M --count 8 --conns 4 "$TOPO_IP_L:9007"
check "echo_client: 64 connections x 50 x 100 B" \
	"$EXAMPLES/echo_client" --size 100 --count 50 --conns 64 "$TOPO_IP_L:9007"
check "Mustang learned the Linux host's MAC by ARP" \
	sh -c "'$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' stats --json | grep -q '\"arp_cache_learned\": *[1-9]'"

# --- 3. usage errors ---------------------------------------------------------------
usage_rc() { # EXPECTED PROG ARGS... : exit status of a bad invocation
	local want=$1 rc
	shift
	"$@" >/dev/null 2>&1
	rc=$?
	[ "$rc" -eq "$want" ] || { echo "  $* exited $rc, expected $want"; return 1; }
}
check "echo_client without a destination exits 2" usage_rc 2 "$EXAMPLES/echo_client"
check "echo_client --size 0 exits 2" usage_rc 2 "$EXAMPLES/echo_client" --size 0 1.2.3.4:5
check "echo_client bad address exits 2" usage_rc 2 "$EXAMPLES/echo_client" 1.2.3:5
check "echo_server -p 70000 exits 2" usage_rc 2 "$EXAMPLES/echo_server" -p 70000
check "http_hello -p x exits 2" usage_rc 2 "$EXAMPLES/http_hello" -p x
check "echo_client with no daemon exits 1" \
	usage_rc 1 "$EXAMPLES/echo_client" --ctl "$IT_TMP/nothing.sock" 1.2.3.4:5

check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
