#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A hostile app cannot hurt the daemon or another app. While a well-behaved
# app (echo_server) echoes a long transfer for a Linux client, app_hostile
# (app_hostile.c) attaches raw and for 4 s writes garbage into every byte
# of its segment after the header (queue pairs, socket table, FIFOs),
# plausible-looking bad commands and corrupted FIFO counters. Then:
#   - mustangd is still running and answers,
#   - the good transfer (8 s, 4 connections) completed byte-exact (SHA-256),
#   - the counters show rejected commands: app_bad_ring, app_bad_cmd,
#     app_bad_sock, app_bad_fifo all moved,
#   - the hostile app's exit detached it: 1 app left (the good one), and
#     the good app still serves a new connection.
#
#   app_hostile.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
[ -x "$APP_TESTS/app_hostile" ] || { it_log "FAIL $APP_TESTS/app_hostile not built"; exit 1; }
app_setup hostile
S=$IT_TMP

app_start SRV echo_server "$EXAMPLES/echo_server" -p 7007 || exit 1
linux_start DISCARD discard discard-server 9009 || exit 1
snapshot "$S/s0"

# The good transfer runs 8 s; the hostile app starts 1 s in, for 4 s.
app_run GOOD good in_linux "$MST_PY" "$PEER" echo "$TOPO_IP_M" 7007 --seconds 8 --conns 4
sleep 1
app_run BAD hostile "$APP_TESTS/app_hostile" --ctl "$MST_DAEMON_CTL" \
	--connect "$TOPO_IP_L:9009" --seconds 4 --seed "$$"
check "two apps attached during the attack" wait_for 5 apps_is 2
app_wait "$BAD" 30
rc=$?
sed 's/^/  | /' "$S/hostile.out"
check "app_hostile attached, opened its connection and ran (exit $rc)" test "$rc" -eq 0
app_wait "$GOOD" 60
rc=$?
sed 's/^/  | /' "$S/good.out"
check "the good app's transfer completed byte-exact (exit $rc)" test "$rc" -eq 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
check "mustangd answers" quiet mst_ctl status
snapshot "$S/s1"
for d in app_bad_ring app_bad_cmd app_bad_sock app_bad_fifo; do
	n=$(delta "$S/s0" "$S/s1" drops "$d")
	check "drops: $d moved ($n)" test "${n:-0}" -gt 0 2>/dev/null
done
it_log "     (drops: app_evt_overflow=$(delta "$S/s0" "$S/s1" drops app_evt_overflow)" \
	"app_no_memory=$(delta "$S/s0" "$S/s1" drops app_no_memory)" \
	"app_detaches=$(delta "$S/s0" "$S/s1" counters app_detaches))"
check "the hostile app is gone: 1 app attached" wait_for 5 apps_is 1
check "the good app still echoes (new connection, 1 MiB)" peer echo "$TOPO_IP_M" 7007 --bytes 1M
check "echo_server still running" mst_pid_running "$SRV"
kill -TERM "$SRV"
app_wait "$SRV" 10
check "echo_server exits 0" test $? -eq 0
check "0 apps attached at the end" wait_for 5 apps_is 0
it_end
