#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Threads sharing sockets (app_threads.c): 4 threads block in mst_accept()
# on one listener and echo what they accept, while 4 other threads send
# 64-byte records on one shared connection to a Linux sink. Verified from
# Linux: 16 concurrent connections each echoed byte-exact (SHA-256), so
# every acceptor served 4; the sink saw every record whole and each
# writer's records in order.
#
#   app_threads.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
[ -x "$APP_TESTS/app_threads" ] || { it_log "FAIL $APP_TESTS/app_threads not built"; exit 1; }
app_setup threads
T=4 K=4 N=5000

linux_start SINK sink sink 9010 --writers $T --records $N || exit 1
app_start APP app_threads "$APP_TESTS/app_threads" -p 7010 --sink "$TOPO_IP_L:9010" \
	--threads $T --accepts $K --records $N || exit 1
check "$((T * K)) concurrent Linux connections echoed byte-exact" \
	peer echo "$TOPO_IP_M" 7010 --bytes 256K --conns $((T * K))
app_wait "$APP" 60
rc=$?
sed 's/^/  | /' "$IT_TMP/app_threads.out"
check "app_threads: every thread did its share, the sink said OK (exit $rc)" test "$rc" -eq 0
app_wait "$SINK" 10
rc=$?
sed 's/^/  | /' "$IT_TMP/sink.out"
check "the sink verified $((T * N)) records: whole, in order per writer" test "$rc" -eq 0
check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
