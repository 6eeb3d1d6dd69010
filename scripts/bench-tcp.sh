#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# TCP through Mustang vs through the Linux kernel, same client, same kind of
# veth (offloads off, MTU 1500), same machine, one run. A benchmark, not a
# test. Prints a Markdown table with the ratio Mustang / Linux.
#
#   scripts/bench-tcp.sh [SECONDS [DRIVER]]     defaults: 5 af_xdp
#
# Rows: bulk goodput (one connection, 64 KiB writes into discard, timed
# until the server's EOF, so every byte was received), 64-byte
# request/response rate on 1 connection and on 32 connections (echo).
# The client is tests/integration/tcp_load.c (built here with gcc); the Linux
# server is the same program in server mode in the other namespace.
# Mustang runs one engine, --mode spreading (the machine has 2 cores).

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh
need_root
ensure_packages "${MST_PACKAGES[@]}" || mst_die "could not install the packages"
ensure_build >/dev/null || mst_die "build failed"

SECS=${1:-5} DRV=${2:-af_xdp}
TMP=$(mktemp -d /tmp/mustang-bench-tcp.XXXXXX)
SRV_PIDS=()
bench_cleanup() {
	local p
	for p in "${SRV_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	mst_cleanup
	rm -rf "$TMP"
}
trap bench_cleanup EXIT
trap 'exit 1' INT TERM HUP

LOAD=$TMP/tcp_load
gcc -O2 -o "$LOAD" tests/integration/tcp_load.c || mst_die "cannot build tcp_load"

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
# run NS ARGS... : one tcp_load client run, its output line (empty on failure)
run() { local ns=$1; shift; timeout $((SECS * 3 + 20)) ip netns exec "$ns" "$LOAD" "$@" 2>"$TMP/err" || cat "$TMP/err" >&2; }

measure() { # NS HOST -> sets BULK RR1 RR32
	local ns=$1 host=$2 out
	run "$ns" rr "$host" 7 1 1 >/dev/null    # warm-up: ARP, first connection
	out=$(run "$ns" bulk "$host" 9 "$SECS"); BULK=$(field gbps "$out")
	out=$(run "$ns" rr "$host" 7 "$SECS" 1); RR1=$(field rate "$out")
	out=$(run "$ns" rr "$host" 7 "$SECS" 32); RR32=$(field rate "$out")
}

# --- Linux client -> Mustang -------------------------------------------------
topo_up bm mustang 1 || mst_die "topology"
M_NS_L=$TOPO_NS_L M_IP=$TOPO_IP_M
start_mustangd --ctl "$TMP/m.sock" --log "$TMP/m.log" -- \
	--port "$DRV:iface=$TOPO_IF_M" --ip "$TOPO_IP_M/$TOPO_PREFIX" \
	--mode spreading --engines 1 --services echo,discard,chargen >/dev/null 2>&1 ||
	mst_die "mustangd did not start (log: $TMP/m.log)"
measure "$M_NS_L" "$M_IP"
M_BULK=${BULK:-0} M_RR1=${RR1:-0} M_RR32=${RR32:-0}
stop_mustangd >/dev/null 2>&1
topo_down

# --- Linux client -> Linux server ----------------------------------------------
topo_up bl linux 2 || mst_die "topology"
for svc in 7:echo 9:discard; do
	ip netns exec "$TOPO_NS_M" "$LOAD" server "${svc%%:*}" "${svc#*:}" &
	SRV_PIDS+=($!)
done
sleep 0.3
measure "$TOPO_NS_L" "$TOPO_IP_M"
L_BULK=${BULK:-0} L_RR1=${RR1:-0} L_RR32=${RR32:-0}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "TCP over veth (offloads off, MTU 1500), $SECS s per row, $(uname -r), $(nproc) cores;"
echo "Mustang: $DRV, 1 engine, spreading. Client: tcp_load in the Linux namespace."
echo
printf '| %-38s | %12s | %12s | %7s |\n' metric "Mustang" "Linux" "ratio"
echo "|----------------------------------------|--------------|--------------|---------|"
printf '| %-38s | %12s | %12s | %7s |\n' "bulk goodput to discard (Gbit/s)" "$M_BULK" "$L_BULK" "$(ratio "$M_BULK" "$L_BULK")"
printf '| %-38s | %12s | %12s | %7s |\n' "64 B request/response, 1 conn (/s)" "$M_RR1" "$L_RR1" "$(ratio "$M_RR1" "$L_RR1")"
printf '| %-38s | %12s | %12s | %7s |\n' "64 B request/response, 32 conns (/s)" "$M_RR32" "$L_RR32" "$(ratio "$M_RR32" "$L_RR32")"
