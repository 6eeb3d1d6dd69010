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
#   3. apps on libmustang: http_hello answering `curl` and a 3-second `wrk`
#      from the Linux namespace, and echo_client on Mustang talking to a
#      Linux echo server (active open through Mustang),
#   4. the same ping between two Linux namespaces, for comparison,
#   5. `mustangctl stats`,
#   6. a live upgrade under load: while wrk hammers http_hello, the engine
#      is handed over to a new one (`mustangctl engine restart 0`) and then
#      a new mustangd process takes over from the running one (`mustangctl
#      upgrade`, twice); wrk's connections carry on without an error,
# and tears everything down, whatever happens. Idempotent; nothing is left
# on the host.
#
#   scripts/demo.sh

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh

need_root
ensure_packages "${MST_PACKAGES[@]}" || mst_die "could not install the packages"
ensure_build || mst_die "build failed"

TMP=$(mktemp -d /tmp/mustang-demo.XXXXXX)
DEMO_PIDS=()   # apps and the Linux echo server, killed by PID on exit
demo_cleanup() {
	local p
	for p in "${DEMO_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
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

step "3. Apps on libmustang (examples/): http_hello, echo_client"
EX=$MST_BUILD/examples
echo "An app attaches to mustangd through its control socket ($MST_DAEMON_CTL)"
echo "and then talks to it through shared memory; it runs outside the namespaces."
printf '$ %s\n' "http_hello -p 8080 --ctl $MST_DAEMON_CTL &"
"$EX/http_hello" -p 8080 --ctl "$MST_DAEMON_CTL" >"$TMP/http_hello.out" 2>&1 &
HH_PID=$!
DEMO_PIDS+=("$HH_PID")
for _ in $(seq 50); do grep -qs listening "$TMP/http_hello.out" && break; sleep 0.1; done
cat "$TMP/http_hello.out"
run ip netns exec "$TOPO_NS_L" curl -sS -i --max-time 5 "http://$MST:8080/" || FAILED=1
run ip netns exec "$TOPO_NS_L" wrk -t 2 -c 16 -d 3s "http://$MST:8080/" | tee "$TMP/wrk.out" ||
	FAILED=1
if ! grep -q '^Requests/sec' "$TMP/wrk.out" || grep -q -e 'Socket errors' -e 'Non-2xx' "$TMP/wrk.out"; then
	echo "wrk reported errors"
	FAILED=1
fi
kill -TERM "$HH_PID"
wait "$HH_PID" || FAILED=1
cat "$TMP/http_hello.out"
echo
echo "A Linux echo server in the Linux namespace, and echo_client on Mustang (active open):"
ip netns exec "$TOPO_NS_L" "$MST_PY" tests/integration/app_peer.py echo-server 9000 \
	--ready "$TMP/echo.ready" >/dev/null 2>&1 &
DEMO_PIDS+=($!)
for _ in $(seq 50); do [ -f "$TMP/echo.ready" ] && break; sleep 0.1; done
run "$EX/echo_client" --ctl "$MST_DAEMON_CTL" --size 64 --count 2000 "$TOPO_IP_L:9000" || FAILED=1
run "$EX/echo_client" --ctl "$MST_DAEMON_CTL" --size 1M --count 8 --conns 4 "$TOPO_IP_L:9000" ||
	FAILED=1
echo "ARP on Mustang learned the Linux host: $("$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" stats --json |
	"$MST_PY" tests/integration/mststats.py get /dev/stdin counters arp_cache_learned) entries"

step "4. Ping RTT: Linux -> Mustang vs Linux -> Linux on a second veth pair"
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

step "5. mustangctl stats"
run "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" stats

step "6. Live upgrade under load (docs/upgrade.md)"
printf '$ %s\n' "http_hello -p 8080 --ctl $MST_DAEMON_CTL &"
"$EX/http_hello" -p 8080 --ctl "$MST_DAEMON_CTL" >"$TMP/http_hello2.out" 2>&1 &
HH_PID=$!
DEMO_PIDS+=("$HH_PID")
for _ in $(seq 50); do grep -qs listening "$TMP/http_hello2.out" && break; sleep 0.1; done
echo "$ wrk -t 2 -c 16 -d 8s http://$MST:8080/ &   (keep-alive: the same 16 connections throughout)"
ip netns exec "$DEMO_NS_L" wrk -t 2 -c 16 -d 8s "http://$MST:8080/" >"$TMP/wrk2.out" 2>&1 &
WRK_PID=$!
DEMO_PIDS+=("$WRK_PID")
sleep 2
run "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --json engine restart 0 || FAILED=1
sleep 1
echo "$ mustangctl --json upgrade      (old pid $MST_DAEMON_PID)"
upgrade_mustangd || FAILED=1
echo "now served by pid $MST_DAEMON_PID"
sleep 1
echo "$ mustangctl --json upgrade      (old pid $MST_DAEMON_PID)"
upgrade_mustangd || FAILED=1
echo "now served by pid $MST_DAEMON_PID"
wait "$WRK_PID"
cat "$TMP/wrk2.out"
if ! grep -q '^Requests/sec' "$TMP/wrk2.out" || grep -q -e 'Socket errors' -e 'Non-2xx' "$TMP/wrk2.out"; then
	echo "wrk reported errors across the upgrades"
	FAILED=1
fi
run ip netns exec "$DEMO_NS_L" curl -sS --max-time 5 "http://$MST:8080/" || FAILED=1
kill -TERM "$HH_PID"
wait "$HH_PID" || FAILED=1

step "Stopping mustangd (SIGTERM) and removing the namespaces"
stop_mustangd TERM || FAILED=1
echo "mustangd exited with status ${MST_DAEMON_RC:-?}"
if [ "$FAILED" -ne 0 ]; then
	echo "demo: some steps FAILED (see above); daemon log: $TMP/mustangd-$DRIVER.log"
	tail -n 20 "$TMP/mustangd-$DRIVER.log"
	exit 1
fi
echo "demo: done."
