#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Ping RTT through Mustang vs between two Linux namespaces, same kind of veth,
# same machine. Prints a Markdown table (the README's "Measured" table).
#
#   scripts/bench-ping.sh [COUNT [INTERVAL [MODE]]]
#   defaults: COUNT=500 INTERVAL=0.01 MODE=spreading
#   (MODE=dedicated pins the engine to CPU 1 and spins it for the run)

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh
need_root
ensure_packages "${MST_PACKAGES[@]}" || mst_die "could not install the packages"
ensure_build >/dev/null || mst_die "build failed"

N=${1:-500} I=${2:-0.01} MODE=${3:-spreading}
EXTRA=()
# dedicated pins its engine to a core (and spins on it): use CPU 1.
[ "$MODE" = dedicated ] && EXTRA=(--cores 1)
TMP=$(mktemp -d /tmp/mustang-bench.XXXXXX)
trap 'mst_cleanup; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM HUP

row() { # LABEL "rx min avg max mdev"
	local rx min avg max mdev
	read -r rx min avg max mdev <<<"$2"
	printf '| %-40s | %7s | %6s | %6s | %6s | %6s |\n' "$1" "$rx/$N" "$min" "$avg" "$max" "$mdev"
}

echo "ping -c $N -i $I (56-byte payload), $(uname -r), $(nproc) cores"
echo
printf '| %-40s | %7s | %6s | %6s | %6s | %6s |\n' path replies "min ms" "avg ms" "max ms" "mdev"
echo "|------------------------------------------|---------|--------|--------|--------|--------|"
sub=1
for drv in af_xdp af_packet; do
	topo_up "b$drv" mustang $sub || mst_die "topology"
	if start_mustangd --ctl "$TMP/$drv.sock" --log "$TMP/$drv.log" -- \
		--port "$drv:iface=$TOPO_IF_M" --ip "$TOPO_IP_M/$TOPO_PREFIX" \
		--mode "$MODE" --engines 1 "${EXTRA[@]}" 2>/dev/null; then
		ping_stats "$TOPO_NS_L" "$TOPO_IP_M" 5 0.1 >/dev/null   # ARP, warm-up
		r=$(ping_stats "$TOPO_NS_L" "$TOPO_IP_M" "$N" "$I") || r="0 - - - -"
		row "Linux -> Mustang ($drv, $MODE)" "$r"
		stop_mustangd >/dev/null 2>&1
	else
		row "Linux -> Mustang ($drv) did not start" "0 - - - -"
	fi
	topo_down
	sub=$((sub + 1))
done
topo_up base linux $sub || mst_die "topology"
ping_stats "$TOPO_NS_L" "$TOPO_IP_M" 5 0.1 >/dev/null
r=$(ping_stats "$TOPO_NS_L" "$TOPO_IP_M" "$N" "$I") || r="0 - - - -"
row "Linux -> Linux (veth, kernel)" "$r"
