#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Debian's iperf3 server (select() over its control and data sockets),
# unmodified, on Mustang through LD_PRELOAD (one test, -1); the Linux
# iperf3 client sends for 3 s, then a reverse (-R) 2 s run on a second
# server: both finish with a JSON report whose byte counts are > 0 and
# agree between sender and receiver.
#
#   preload_iperf3.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip (iperf3 not installed).

. "$(dirname "$0")/preload_common.sh"
preload_begin "${1:?usage: $0 af_xdp|af_packet}" iperf3
preload_setup piperf
IP=$TOPO_IP_M

run_one() { # NAME PORT CLIENT-ARGS...
	local name=$1 port=$2 srv out rc
	shift 2
	app_run srv "$name" "${ON_MST[@]}" iperf3 -s -1 --forceflush -B "$IP" -p "$port"
	# Not port_open: a probe connection would be the one test -1 serves.
	if ! wait_for 15 grep -qs "Server listening" "$IT_TMP/$name.out"; then
		fail "$name: iperf3 -s did not listen; its output:"
		sed 's/^/  | /' "$IT_TMP/$name.out"
		return
	fi
	out=$(in_linux timeout 30 iperf3 -c "$IP" -p "$port" -J "$@" 2>&1)
	"$MST_PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
s, r = d["end"]["sum_sent"]["bytes"], d["end"]["sum_received"]["bytes"]
print("sent=%d received=%d Mbit/s=%.0f" % (s, r, d["end"]["sum_received"]["bits_per_second"] / 1e6))
sys.exit(0 if s > 0 and r > 0 and r <= s else 1)' <<<"$out" >"$IT_TMP/$name.sum" 2>&1
	rc=$?
	[ $rc -eq 0 ] || { head -c 1500 <<<"$out"; echo; }
	check "$name: report with bytes sent and received ($(tail -n 1 "$IT_TMP/$name.sum"))" test $rc -eq 0
	app_wait "$srv" 10
	check "$name: iperf3 -s -1 exits 0 after the test" test $? -eq 0
}

run_one upload 5201 -t 3
run_one reverse 5202 -t 2 -R
check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
