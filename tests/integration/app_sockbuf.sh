#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# SO_RCVBUF / SO_SNDBUF per socket through libmustang (issue 14): two
# mustangd joined by memif, an app on each (app_sockbuf.c). The server's
# SO_RCVBUF 8192, set before listen(), goes to the accepted socket
# (getsockopt says 8192) and to its window: while the server reads
# nothing, the sender's daemon sees 8192 bytes acknowledged and a zero
# window. The sender's SO_SNDBUF 100 reads back 4096 (clamped, no EINVAL)
# and one non-blocking send queues exactly that. Then everything arrives.
#
#   app_sockbuf.sh
set -u
. "$(dirname "$0")/pony_common.sh"
APP=$MST_BUILD/tests/integration/app_sockbuf
[ -x "$APP" ] || { it_log "FAIL $APP not built"; exit 1; }

# wait_s SECS CMD...: until CMD succeeds, at most SECS seconds
wait_s() {
	local t=$(($1 * 10))
	shift
	until "$@"; do
		t=$((t - 1))
		[ "$t" -gt 0 ] || return 1
		sleep 0.1
	done
}

it_begin -
pony_memif
"$APP" "$IT_TMP/a.sock" serve 7300 "$IT_TMP/go" >"$IT_TMP/srv.out" 2>&1 &
SRV=$!
IT_BG_PIDS+=("$SRV")
wait_s 20 grep -q listening "$IT_TMP/srv.out" || { cat "$IT_TMP/srv.out"; exit 1; }
"$APP" "$IT_TMP/b.sock" send "$PONY_IP_A" 7300 >"$IT_TMP/cli.out" 2>&1 &
CLI=$!
IT_BG_PIDS+=("$CLI")

acked_8192_wnd_0() {
	ctl_b conns >"$IT_TMP/conns.txt" 2>&1 &&
		grep -q "bytes_acked: 8192$" "$IT_TMP/conns.txt" && grep -q "snd_wnd: 0$" "$IT_TMP/conns.txt"
}
check "the accepted socket has the listener's SO_RCVBUF (8192)" \
	wait_s 20 grep -q "^accepted_rcvbuf 8192$" "$IT_TMP/srv.out"
check "the sender sees 8192 bytes acknowledged and a zero window" wait_s 20 acked_8192_wnd_0
sed 's/^/     /' "$IT_TMP/conns.txt"
touch "$IT_TMP/go"
wait "$SRV"; RS=$?
wait "$CLI"; RC=$?
sed 's/^/  | /' "$IT_TMP/srv.out" "$IT_TMP/cli.out"
check "SO_SNDBUF 100 reads back 4096" grep -q "^sndbuf 4096$" "$IT_TMP/cli.out"
check "one non-blocking send queues 4096 bytes" grep -q "^nonblocking_send 4096$" "$IT_TMP/cli.out"
check "all 100000 bytes sent and read (exit $RC / $RS)" test "$RC" -eq 0 -a "$RS" -eq 0
it_end
