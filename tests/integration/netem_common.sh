# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# A netem-style impairment between the Linux namespace and Mustang, for the
# integration tests (tcp_interop.sh, flows.sh). Sourced after common.sh and
# it_topo_daemon (it uses TOPO_* and IT_TMP).
#
# This kernel has no sch_netem, so the impairment is tcp_netem.py, a
# userspace netem bridging two interfaces in the Linux namespace. For the
# netem part the Linux address moves from lnx0 to a new veth pair:
# kernel [lnxc 10.77.x.1] <-veth-> [lnxb] tcp_netem.py [lnx0] <-veth-> mst0 Mustang
# lnxc takes lnx0's MAC (so Mustang's ARP entry stays right), lnx0 gets a
# fresh one, and neither bridge port answers ARP or owns an address.
#
#   netem_insert / netem_remove      the bridge's veth pair and addresses
#   netem_start ARGS... / netem_stop tcp_netem.py with impairment ARGS
#                                    (its summary in $IT_TMP/netem.out)
NETEM_PID=""
NETEM_IN=0
netem_insert() {
	local tmpmac=02:4d:53:00:00:01 i
	in_linux ip link add lnxc type veth peer name lnxb || return 1
	NETEM_IN=1
	for i in lnxc lnxb; do
		in_linux ethtool -K "$i" rx off tx off >/dev/null 2>&1 || true
	done
	in_linux ip addr del "$TOPO_IP_L/$TOPO_PREFIX" dev "$TOPO_IF_L" || return 1
	in_linux ip link set "$TOPO_IF_L" address "$tmpmac" arp off || return 1
	in_linux ip link set lnxc address "$TOPO_MAC_L" || return 1
	in_linux ip link set lnxb arp off up || return 1
	in_linux ip addr add "$TOPO_IP_L/$TOPO_PREFIX" dev lnxc || return 1
	in_linux ip link set lnxc up || return 1
	in_linux ip neigh replace "$TOPO_IP_M" lladdr "$TOPO_MAC_M" dev lnxc nud reachable
	for i in $(seq 50); do
		[ "$(in_linux cat /sys/class/net/lnxc/operstate)" = up ] && return 0
		sleep 0.1
	done
	return 1
}
netem_remove() {
	[ "$NETEM_IN" = 1 ] || return 0
	in_linux ip link del lnxc 2>/dev/null
	in_linux ip link set "$TOPO_IF_L" address "$TOPO_MAC_L" arp on
	in_linux ip addr add "$TOPO_IP_L/$TOPO_PREFIX" dev "$TOPO_IF_L"
	NETEM_IN=0
}
netem_start() { # tcp_netem.py impairment arguments
	rm -f "$IT_TMP/netem.ready"
	# ip netns exec (not the in_linux function) so that $! is python itself
	ip netns exec "$TOPO_NS_L" "$MST_PY" "$IT_DIR/tcp_netem.py" lnxb "$TOPO_IF_L" --ready-file "$IT_TMP/netem.ready" \
		"$@" >"$IT_TMP/netem.out" 2>&1 &
	NETEM_PID=$!
	local i
	for i in $(seq 50); do
		[ -f "$IT_TMP/netem.ready" ] && return 0
		sleep 0.1
	done
	return 1
}
netem_stop() {
	[ -n "$NETEM_PID" ] || return 0
	kill -TERM "$NETEM_PID" 2>/dev/null
	mst_wait_exit "$NETEM_PID" 5 || kill -KILL "$NETEM_PID" 2>/dev/null
	wait "$NETEM_PID" 2>/dev/null
	NETEM_PID=""
	sed 's/^/     /' "$IT_TMP/netem.out"
}

