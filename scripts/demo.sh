#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Mustang in two minutes, as root on Debian 12: installs what is missing,
# builds, puts mustangd on one end of a veth pair (AF_XDP, or AF_PACKET if
# AF_XDP cannot start) and a Linux host on the other, each in its own network
# namespace, then shows
#   1. the Linux host pinging Mustang,
#   2. UDP datagrams echoed by Mustang's echo service, and ICMP port
#      unreachable from a closed port,
#   3. the same ping between two Linux namespaces, for comparison,
#   4. `mustangctl stats`,
# and tears everything down, whatever happens. Idempotent; nothing is left
# on the host.
#
#   sudo scripts/demo.sh

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh

need_root
ensure_packages "${MST_PACKAGES[@]}" || mst_die "could not install the packages"
ensure_build || mst_die "build failed"

TMP=$(mktemp -d /tmp/mustang-demo.XXXXXX)
demo_cleanup() {
	mst_cleanup
	rm -rf "$TMP"
}
trap demo_cleanup EXIT
trap 'exit 1' INT TERM HUP

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
FAILED=0

step "Topology: Linux host <-veth-> Mustang, each in its own network namespace"
topo_up demo mustang 1 || mst_die "could not create the topology"
MST=$TOPO_IP_M
echo "Linux host : $TOPO_IP_L/24 on $TOPO_IF_L in namespace $TOPO_NS_L"
echo "Mustang    : $MST/24 on $TOPO_IF_M ($TOPO_MAC_M) in namespace $TOPO_NS_M (no kernel address)"

start() { # DRIVER
	start_mustangd --ctl "$TMP/mustang.sock" --log "$TMP/mustangd-$1.log" -- \
		--port "$1:iface=$TOPO_IF_M" --ip "$MST/$TOPO_PREFIX" \
		--mode spreading --engines 1 --services echo
}
DRIVER=af_xdp
step "Starting mustangd --port af_xdp:iface=$TOPO_IF_M --ip $MST/24 --mode spreading --services echo"
if ! start af_xdp; then
	DRIVER=af_packet
	echo "AF_XDP did not start (see above); falling back to AF_PACKET."
	step "Starting mustangd --port af_packet:iface=$TOPO_IF_M --ip $MST/24 --mode spreading --services echo"
	start af_packet || mst_die "mustangd did not start on af_packet either"
fi
run "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" status

step "1. The Linux host pings Mustang"
run ip netns exec "$TOPO_NS_L" ping -c 5 -i 0.2 "$MST" || FAILED=1
echo "ARP on the Linux host: $(ip -n "$TOPO_NS_L" neigh show "$MST")"

step "2. UDP with Mustang's echo service (port 7)"
printf '$ echo "hello, Mustang" | socat -T 2 - UDP:%s:7\n' "$MST"
reply=$(echo "hello, Mustang" | ip netns exec "$TOPO_NS_L" timeout 10 socat -T 2 - "UDP:$MST:7")
echo "reply: $reply"
[ "$reply" = "hello, Mustang" ] || FAILED=1
run ip netns exec "$TOPO_NS_L" "$MST_PY" tests/integration/udp_echo.py echo "$MST" 1,64,512,1472 || FAILED=1
echo "A closed port answers with ICMP port unreachable:"
run ip netns exec "$TOPO_NS_L" "$MST_PY" tests/integration/udp_echo.py closed "$MST" 9 || FAILED=1

step "3. Ping RTT: Linux -> Mustang vs Linux -> Linux on a second veth pair"
DEMO_NS_L=$TOPO_NS_L   # the Linux host facing Mustang
topo_up base linux 2 || mst_die "could not create the Linux<->Linux pair"
N=50 I=0.02
echo "(ping -c $N -i $I from the Linux namespace, 56-byte payload)"
m=$(ping_stats "$DEMO_NS_L" "$MST" $N $I) || { m="0 - - - -"; FAILED=1; }
l=$(ping_stats "$TOPO_NS_L" "$TOPO_IP_M" $N $I) || l="0 - - - -"
read -r m_rx m_min m_avg m_max _ <<<"$m"
read -r l_rx l_min l_avg l_max _ <<<"$l"
printf '%-28s %8s %9s %9s %9s\n' "path" "replies" "min ms" "avg ms" "max ms"
printf '%-28s %8s %9s %9s %9s\n' "Linux -> Mustang ($DRIVER)" "$m_rx/$N" "$m_min" "$m_avg" "$m_max"
printf '%-28s %8s %9s %9s %9s\n' "Linux -> Linux (veth)" "$l_rx/$N" "$l_min" "$l_avg" "$l_max"
echo "RTT: Mustang ($DRIVER, spreading) avg $m_avg ms vs Linux<->Linux avg $l_avg ms"

step "4. mustangctl stats"
run "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" stats

step "Stopping mustangd (SIGTERM) and removing the namespaces"
stop_mustangd TERM || FAILED=1
echo "mustangd exited with status ${MST_DAEMON_RC:-?}"
if [ "$FAILED" -ne 0 ]; then
	echo "demo: some steps FAILED (see above); daemon log: $TMP/mustangd-$DRIVER.log"
	tail -n 20 "$TMP/mustangd-$DRIVER.log"
	exit 1
fi
echo "demo: done."
