#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# mustangd on one end of a veth, the Linux kernel on the other: ARP, ping,
# UDP echo (several sizes up to a full 1500-byte MTU), ICMP port unreachable,
# the CLI and the counters moving.
#
#   test_l3.sh af_xdp|af_packet        exit 0 pass, 1 fail, 77 skip

. "$(dirname "$0")/common.sh"
it_begin "${1:?usage: $0 af_xdp|af_packet}"
S=$IT_TMP
topo_up l3 mustang 1 || { it_log "FAIL topology setup"; exit 1; }
ip=$TOPO_IP_M

# Gratuitous ARP at start: listen on the Linux end before mustangd starts.
ip netns exec "$TOPO_NS_L" timeout 25 tcpdump -l -n -i "$TOPO_IF_L" -c 1 \
	"arp and ether src $TOPO_MAC_M" >"$S/garp" 2>"$S/garp.err" &
garp_pid=$!
IT_BG_PIDS+=("$garp_pid")
for _ in $(seq 50); do grep -q "listening on" "$S/garp.err" && break; sleep 0.1; done
it_daemon
garp_ok() {
	local i
	for i in $(seq 30); do [ -s "$S/garp" ] && break; sleep 0.1; done
	kill "$garp_pid" 2>/dev/null; wait "$garp_pid" 2>/dev/null
	sed 's/^/  /' "$S/garp"
	grep -qE "(who-has $ip tell $ip|Reply $ip is-at)" "$S/garp"
}
check "gratuitous ARP for $ip seen on the wire at start" garp_ok

# --- CLI --------------------------------------------------------------------
check "mustangctl status answers" quiet mst_ctl status
check "mustangctl ports answers" quiet mst_ctl ports
check "mustangctl engines answers" quiet mst_ctl engines
check "mustangctl stats (human) answers" quiet mst_ctl stats
check "mustangctl --json status is JSON" \
	sh -c "timeout 10 '$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' --json status | '$MST_PY' -m json.tool >/dev/null"
check "mustangctl stats --json parses" snapshot "$S/s0"
check "stats --json names every counter and drop reason of counters.h" \
	"$MST_PY" "$IT_DIR/mststats.py" check-names "$S/s0" "$MST_SRC/include/mustang/counters.h"
human_names_ok() {
	local out miss="" n
	out=$(mst_ctl stats) || return 1
	for n in rx_frames icmp_echo_replies udp_echo_replies ip_bad_cksum udp_no_port; do
		grep -q "$n" <<<"$out" || miss="$miss $n"
	done
	[ -z "$miss" ] || { echo "  human stats lack:$miss"; return 1; }
}
check "mustangctl stats (human) prints counters by name" human_names_ok

# --- ARP resolution by Mustang --------------------------------------------------
# With a permanent neighbour entry the Linux host sends no ARP, so Mustang
# meets 10.77.1.1 first as the destination of its echo reply: it must ARP
# for it, hold the reply in its pending queue, and send it once resolved.
ip -n "$TOPO_NS_L" neigh replace "$ip" lladdr "$TOPO_MAC_M" dev "$TOPO_IF_L" nud permanent
snapshot "$S/r0"
check "UDP echo with Mustang resolving the Linux host by ARP" \
	in_linux "$MST_PY" "$IT_DIR/udp_echo.py" echo "$ip" 100
snapshot "$S/r1"
d=$(delta "$S/r0" "$S/r1" counters arp_requests_sent)
check "arp_requests_sent moved (got $d)" test "${d:-0}" -ge 1 2>/dev/null
d=$(delta "$S/r0" "$S/r1" counters arp_pending_sent)
check "arp_pending_sent moved: the queued reply left after resolution (got $d)" \
	test "${d:-0}" -ge 1 2>/dev/null
ip -n "$TOPO_NS_L" neigh del "$ip" dev "$TOPO_IF_L"

# --- ARP + ping ---------------------------------------------------------------
ping_ok() { # COUNT ARGS... : every echo answered
	local n=$1; shift
	local out
	out=$(in_linux ping -n -q -c "$n" -W 2 "$@" "$ip" 2>&1)
	grep -q " $n received" <<<"$out" || { echo "$out" | sed 's/^/  | /'; return 1; }
}
check "ping -c 5 from the Linux namespace: 5/5 replies" ping_ok 5 -i 0.2
snapshot "$S/s1"
d=$(delta "$S/s0" "$S/s1" counters icmp_echo_replies)
check "icmp_echo_replies moved by exactly 5 (got $d)" test "$d" = 5
d=$(delta "$S/s0" "$S/s1" counters arp_replies_sent)
check "arp_replies_sent moved (got $d)" test "${d:-0}" -ge 1 2>/dev/null
neigh=$(ip -n "$TOPO_NS_L" neigh show "$ip" dev "$TOPO_IF_L")
check "Linux learned Mustang's MAC $TOPO_MAC_M by ARP ($neigh)" grep -qi "lladdr $TOPO_MAC_M" <<<"$neigh"
check "full-size ping (1472-byte payload, 1500-byte packet): 3/3" ping_ok 3 -i 0.2 -s 1472 -M "do"
check "ping -c 200 -i 0.005: no loss" ping_ok 200 -i 0.005

# --- UDP echo ---------------------------------------------------------------------
snapshot "$S/s2"
check "UDP echo on port 7 returns each datagram byte for byte" \
	in_linux "$MST_PY" "$IT_DIR/udp_echo.py" echo "$ip"
snapshot "$S/s3"
d=$(delta "$S/s2" "$S/s3" counters udp_echo_replies)
check "udp_echo_replies moved by >= 9 (got $d)" test "${d:-0}" -ge 9 2>/dev/null
socat_ok() {
	local got
	got=$(echo "mustang over socat" | in_linux timeout 10 socat -T 2 - "UDP:$ip:7")
	[ "$got" = "mustang over socat" ] || { echo "  socat got: '$got'"; return 1; }
}
check "socat UDP round trip through the echo service" socat_ok

# --- closed port -------------------------------------------------------------------
check "UDP to closed port 9 gets ICMP port unreachable (ECONNREFUSED)" \
	in_linux "$MST_PY" "$IT_DIR/udp_echo.py" closed "$ip" 9
snapshot "$S/s4"
d=$(delta "$S/s3" "$S/s4" counters icmp_unreach_sent)
check "icmp_unreach_sent moved (got $d)" test "${d:-0}" -ge 1 2>/dev/null
d=$(delta "$S/s3" "$S/s4" drops udp_no_port)
check "drop udp_no_port moved (got $d)" test "${d:-0}" -ge 1 2>/dev/null

for c in rx_frames tx_frames rx_bytes tx_bytes ipv4_rx; do
	d=$(delta "$S/s0" "$S/s4" counters "$c")
	check "$c moved (got $d)" test "${d:-0}" -gt 0 2>/dev/null
done

check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
check "SIGTERM: mustangd exits 0" stop_mustangd TERM
it_end
