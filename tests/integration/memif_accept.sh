#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A memif client that goes away before its server has accepted it must not
# take the server down (engines/port.c, memif_await_accept()). DPDK 22.11's
# server sends its hello from the accept handler; when the client has
# already closed, that send fails (EPIPE) and the PMD closes the socket with
# its interrupt callback still registered: the server daemon then died in
# "PANIC in eal_intr_thread_main(): Error adding fd ... epoll_ctl" (seen
# once in ~4 runs of upgrade-memif, where a client daemon is replaced).
#
# Made deterministic here: the server daemon is stopped (SIGSTOP) so its
# interrupt thread cannot accept, a client daemon starts (its connection
# waits in the listener's backlog) and is sent SIGTERM, the server resumes
# 0.3 s later. The client must wait for the accept before it closes: the
# server must stay alive, exit 0 on SIGTERM later, and a second client
# must bring the link up. MST_MEMIF_ACCEPT_ROUNDS times (default 3).
# Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/common.sh"

ROUNDS=${MST_MEMIF_ACCEPT_ROUNDS:-3}
IP_S=10.79.7.1 IP_C=10.79.7.2

it_begin -
NS="mst-$$-ma"
ip netns add "$NS" || { it_log "FAIL namespace"; exit 1; }
MST_NETNS_CREATED+=("$NS")
ip -n "$NS" link set lo up

launch() { # ROLE: its daemon in the background, PID in LPID
	local role=$1 ip=$IP_S
	[ "$role" = client ] && ip=$IP_C
	rm -f "$IT_TMP/$role.sock"
	ip netns exec "$NS" "$MUSTANGD" --ctl "$IT_TMP/$role.sock" \
		--port "memif:socket=$IT_TMP/memif.sock,role=$role" --ip "$ip/24" \
		--mode spreading --engines 1 --services echo \
		</dev/null >>"$IT_TMP/$role.log" 2>&1 &
	LPID=$!
	IT_BG_PIDS+=("$LPID")
}
wait_sock() { # ROLE: its control socket answers within 10 s
	local i
	for i in $(seq 100); do
		timeout 5 "$MUSTANGCTL" --ctl "$IT_TMP/$1.sock" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
link_of() {
	timeout 5 "$MUSTANGCTL" --ctl "$IT_TMP/$1.sock" ports --json 2>/dev/null |
		"$MST_PY" -c 'import json, sys; print(json.load(sys.stdin)["ports"][0]["link"])' 2>/dev/null
}

launch server
S=$LPID
wait_sock server || { fail "the server daemon did not answer"; it_end; }
for r in $(seq "$ROUNDS"); do
	kill -STOP "$S"
	launch client
	C=$LPID
	# The client connects at start: its connection now waits in the backlog.
	sleep 0.5
	kill -TERM "$C"
	sleep 0.3
	kill -CONT "$S"
	wait "$C"
	crc=$?
	check "round $r: the client exits 0 (was $crc)" test "$crc" -eq 0
	sleep 1
	if ! kill -0 "$S" 2>/dev/null; then
		fail "round $r: the memif server daemon died when its client went away before the accept"
		grep -m3 -E "PANIC|sendmsg" "$IT_TMP/server.log"
		it_end
	fi
	it_log "ok   round $r: the server is alive"
done
# The server still serves: a client that stays brings the link up.
launch client
C=$LPID
wait_sock client || fail "the last client daemon did not answer"
up=""
for i in $(seq 50); do
	[ "$(link_of server)" = up ] && [ "$(link_of client)" = up ] && { up=1; break; }
	sleep 0.1
done
check "a new client brings the link up" test -n "$up"
kill -TERM "$C"; wait "$C"; crc=$?
kill -TERM "$S"; wait "$S"; src=$?
check "the client exits 0 on SIGTERM (was $crc)" test "$crc" -eq 0
check "the server exits 0 on SIGTERM (was $src)" test "$src" -eq 0
grep -q "PANIC" "$IT_TMP/server.log" "$IT_TMP/client.log" && fail "a PANIC in a daemon log"
it_end
