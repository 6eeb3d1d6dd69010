#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# What flow records cost: 64-byte request/response over 32 connections
# (tcp_load rr, Linux client -> Mustang's built-in echo) with flow records
# off and on (--flow-log FILE --flow-interval-s 1, the periodic scan at its
# busiest), alternating ROUNDS times, a fresh mustangd per run. A
# benchmark, not a test: prints each run and the medians.
#
#   sudo scripts/bench-flows.sh [SECONDS [ROUNDS [DRIVER]]]   defaults: 5 3 af_packet
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh
need_root
ensure_build >/dev/null || mst_die "build failed"
SECS=${1:-5} ROUNDS=${2:-3} DRV=${3:-af_packet}
TMP=$(mktemp -d /tmp/mustang-bench-flows.XXXXXX)
trap 'mst_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP
LOAD=$TMP/tcp_load
gcc -O2 -o "$LOAD" tests/integration/tcp_load.c || mst_die "cannot build tcp_load"

topo_up bf mustang 1 || mst_die "topology"
one() { # off|on -> prints the rate
	local extra=()
	[ "$1" = on ] && extra=(--flow-log "$TMP/flows.jsonl" --flow-interval-s 1)
	start_mustangd --ctl "$TMP/m.sock" --log "$TMP/m.log" -- \
		--port "$DRV:iface=$TOPO_IF_M" --ip "$TOPO_IP_M/$TOPO_PREFIX" \
		--mode spreading --engines 1 --services echo "${extra[@]}" >/dev/null 2>&1 ||
		mst_die "mustangd did not start (log: $TMP/m.log)"
	ip netns exec "$TOPO_NS_L" "$LOAD" rr "$TOPO_IP_M" 7 1 1 >/dev/null 2>&1
	ip netns exec "$TOPO_NS_L" "$LOAD" rr "$TOPO_IP_M" 7 "$SECS" 32 2>/dev/null |
		sed -n 's/.*rate=\([0-9.]*\).*/\1/p'
	stop_mustangd >/dev/null 2>&1
}
OFF=() ON=()
for r in $(seq "$ROUNDS"); do
	OFF+=("$(one off)")
	ON+=("$(one on)")
	echo "round $r: off ${OFF[-1]}/s on ${ON[-1]}/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_off=$(median "${OFF[@]}") m_on=$(median "${ON[@]}")
echo "tcp_rr 64 B, 32 conns, $DRV, ${SECS}s x $ROUNDS, load $(cut -d' ' -f1-3 /proc/loadavg):"
echo "  median off $m_off/s, on $m_on/s, on/off $(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.3f", a / b }')"
