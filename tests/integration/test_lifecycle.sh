#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# mustangd's life on a real port: it sleeps when idle (spreading mode, on a
# 2-core machine nothing may spin), SIGTERM and SIGINT end it with status 0,
# its control socket removed, no process left, no DPDK runtime files left,
# the interface given back (no XDP program left attached) so that a new
# daemon can take the same port at once.
#
#   test_lifecycle.sh af_xdp|af_packet   exit 0 pass, 1 fail, 77 skip

. "$(dirname "$0")/common.sh"
it_begin "${1:?usage: $0 af_xdp|af_packet}"

dpdk_runtime() { ls -1 /var/run/dpdk 2>/dev/null | sort; }
dpdk_before=$(dpdk_runtime)

it_topo_daemon life
pid=$MST_DAEMON_PID
ip=$TOPO_IP_M
ctl=$MST_DAEMON_CTL

ping_n() { ip netns exec "$TOPO_NS_L" ping -n -q -c "$1" -i 0.2 -W 2 "$ip" | grep -q " $1 received"; }
check "ping: 3/3" ping_n 3

# Idle CPU: utime+stime of all the daemon's threads over 3 s.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
idle_cpu_ok() {
	local hz t0 t1 pct
	hz=$(getconf CLK_TCK)
	sleep 1
	t0=$(cpu_ticks "$pid") || return 1
	sleep 3
	t1=$(cpu_ticks "$pid") || return 1
	pct=$(( (t1 - t0) * 100 / (3 * hz) ))
	echo "  idle mustangd used ${pct}% of one core over 3 s"
	[ "$pct" -lt 50 ]
}
check "idle daemon sleeps (< 50% of a core in spreading mode)" idle_cpu_ok

dpdk_during=$(comm -13 <(echo "$dpdk_before") <(dpdk_runtime))
[ -n "$dpdk_during" ] && it_log "  new in /var/run/dpdk while running: $dpdk_during"

check "SIGTERM: exit status 0" stop_mustangd TERM
check "control socket removed" test ! -e "$ctl"
check "no mustangd process left (pid $pid)" test ! -e "/proc/$pid"
leftover() { # any process still holding our unique control path in its argv
	local hit
	# The pattern comes from a file so that grep's own argv does not match.
	printf '%s\n' "$ctl" >"$IT_TMP/ctl.pattern"
	hit=$(grep -alsF -f "$IT_TMP/ctl.pattern" /proc/[0-9]*/cmdline)
	[ -z "$hit" ] || { echo "  still running: $hit"; return 1; }
}
check "no process left that was started with this control socket" leftover
dpdk_left() {
	local new e bad=""
	new=$(comm -13 <(echo "$dpdk_before") <(dpdk_runtime))
	for e in $new; do
		# Only this daemon's runtime dir is ours to judge; others may run
		# DPDK at the same time.
		case "$e" in *"$pid"*) bad="$bad $e" ;; esac
		[ -n "$dpdk_during" ] && grep -qxF "$e" <<<"$dpdk_during" && bad="$bad $e"
	done
	[ -z "$bad" ] || { echo "  left in /var/run/dpdk:$bad"; return 1; }
}
check "no DPDK runtime files left in /var/run/dpdk" dpdk_left
no_xdp() {
	local l
	l=$(ip -n "$TOPO_NS_M" -d link show "$TOPO_IF_M") || return 1
	! grep -q "prog/xdp" <<<"$l" || { echo "  $l" | grep xdp; return 1; }
}
check "no XDP program left on $TOPO_IF_M" no_xdp

# The same port again, at once; then SIGINT.
if start_mustangd --ctl "$ctl" --log "$IT_TMP/mustangd2.log" -- \
	--port "$IT_DRIVER:iface=$TOPO_IF_M" --ip "$ip/$TOPO_PREFIX" \
	--mode spreading --services echo; then
	it_log "ok   restarted on the same port"
	pid=$MST_DAEMON_PID
	check "ping after restart: 3/3" ping_n 3
	check "SIGINT: exit status 0" stop_mustangd INT
	check "control socket removed after SIGINT" test ! -e "$ctl"
	check "no mustangd process left (pid $pid)" test ! -e "/proc/$pid"
	check "no XDP program left on $TOPO_IF_M" no_xdp
else
	fail "mustangd did not start again on $IT_DRIVER:iface=$TOPO_IF_M after a clean exit"
fi
it_end
