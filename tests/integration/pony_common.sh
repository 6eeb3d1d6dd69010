# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Sourced by the pony_* integration tests: two mustangd talking Pony.
#   pony_begin DRIVER       it_begin + pony_echo built (else FAIL)
#   pony_veth [netem|bridge] namespaces A and B, a veth pair between them
#                           (with "netem": A <-> [N: tcp_netem.py] <-> B;
#                           with "bridge": A and B on a Linux bridge in N,
#                           which is a third host, 10.79.0.3),
#                           mustangd A 10.79.0.1 and B 10.79.0.2 on DRIVER
#   pony_memif              mustangd A and B joined by memif (server/client)
#   netem_run ARGS...       (re)start tcp_netem.py in N with these impairments
#   pony_server VAR NAME [ARGS]  pony_echo server on A (waits for its key line)
#   pony_client NAME ARGS   pony_echo client on B against A (foreground)
#   ctl_a / ctl_b ARGS      mustangctl against daemon A / B
#   pony_counter CTL NAME   a counter's engine total (mustangctl stats --json)
#   pony_drop CTL NAME      a drop reason's engine total
#   pony_stop PID           SIGTERM a server; its exit status (check it)
#
# Daemons and helpers are killed by PID (IT_BG_PIDS) on exit; namespaces
# are removed by mst_cleanup.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PONY_ECHO=$MST_BUILD/examples/pony_echo
PONY_IP_A=10.79.0.1
PONY_IP_B=10.79.0.2
PONY_IP_C=10.79.0.3
NETEM_PID=""

pony_begin() {
	it_begin "$1"
	[ -x "$PONY_ECHO" ] || { it_log "FAIL $PONY_ECHO not built"; exit 1; }
}

pony_ns() { # NAME: a fresh namespace, IPv6 off
	ip netns add "$1" || return 1
	MST_NETNS_CREATED+=("$1")
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		net.ipv6.conf.default.disable_ipv6=1 >/dev/null || return 1
	ip -n "$1" link set lo up
}

pony_link() { # NS1 IF1 NS2 IF2: a veth pair, offloads off, up
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || return 1
	ip netns exec "$1" ethtool -K "$2" rx off tx off >/dev/null 2>&1 || true
	ip netns exec "$3" ethtool -K "$4" rx off tx off >/dev/null 2>&1 || true
	ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

pony_daemon() { # NAME NS PORTSPEC IP [args]
	local name=$1 ns=$2 port=$3 ip=$4
	shift 4
	start_mustangd --ns "$ns" --ctl "$IT_TMP/$name.sock" --log "$IT_TMP/$name.log" -- \
		--port "$port" --ip "$ip/24" --mode spreading --engines 1 --log-level info "$@" ||
		{ it_log "FAIL mustangd $name did not start ($port)"; exit 1; }
	IT_BG_PIDS+=("$MST_DAEMON_PID")
	MST_DAEMON_PID=""   # stopped by PID with the other helpers
}

ctl_a() { "$MUSTANGCTL" --ctl "$IT_TMP/a.sock" "$@"; }
ctl_b() { "$MUSTANGCTL" --ctl "$IT_TMP/b.sock" "$@"; }

pony_veth() {
	local mode=${1:-direct}
	PONY_NS_A="mst-$$-pa" PONY_NS_B="mst-$$-pb" PONY_NS_N="mst-$$-pn"
	pony_ns "$PONY_NS_A" && pony_ns "$PONY_NS_B" || { it_log "FAIL namespaces"; exit 1; }
	if [ "$mode" = netem ]; then
		pony_ns "$PONY_NS_N" &&
			pony_link "$PONY_NS_A" mst0 "$PONY_NS_N" na0 &&
			pony_link "$PONY_NS_B" mst0 "$PONY_NS_N" nb0 ||
			{ it_log "FAIL veth setup"; exit 1; }
		netem_run || exit 1
	elif [ "$mode" = bridge ]; then
		pony_ns "$PONY_NS_N" &&
			pony_link "$PONY_NS_A" mst0 "$PONY_NS_N" na0 &&
			pony_link "$PONY_NS_B" mst0 "$PONY_NS_N" nb0 &&
			ip -n "$PONY_NS_N" link add br0 type bridge &&
			ip -n "$PONY_NS_N" link set na0 master br0 &&
			ip -n "$PONY_NS_N" link set nb0 master br0 &&
			ip -n "$PONY_NS_N" addr add "$PONY_IP_C/24" dev br0 &&
			ip -n "$PONY_NS_N" link set br0 up ||
			{ it_log "FAIL bridge setup"; exit 1; }
	else
		pony_link "$PONY_NS_A" mst0 "$PONY_NS_B" mst0 || { it_log "FAIL veth setup"; exit 1; }
	fi
	pony_daemon a "$PONY_NS_A" "$IT_DRIVER:iface=mst0" "$PONY_IP_A"
	pony_daemon b "$PONY_NS_B" "$IT_DRIVER:iface=mst0" "$PONY_IP_B"
}

pony_memif() {
	pony_daemon a "" "memif:socket=$IT_TMP/memif.sock,role=server" "$PONY_IP_A"
	pony_daemon b "" "memif:socket=$IT_TMP/memif.sock,role=client" "$PONY_IP_B"
	local i
	for i in $(seq 50); do
		ctl_a ports --json 2>/dev/null | grep -q '"link":"up"' &&
			ctl_b ports --json 2>/dev/null | grep -q '"link":"up"' && return 0
		sleep 0.1
	done
	it_log "FAIL the memif link did not come up"
	exit 1
}

netem_stop() {
	[ -n "$NETEM_PID" ] || return 0
	kill "$NETEM_PID" 2>/dev/null
	wait "$NETEM_PID" 2>/dev/null
	NETEM_PID=""
	sed 's/^/     /' "$IT_TMP/netem.out"
}

netem_run() {
	netem_stop
	rm -f "$IT_TMP/netem.ready"
	ip netns exec "$PONY_NS_N" "$MST_PY" "$IT_DIR/tcp_netem.py" na0 nb0 \
		--ready-file "$IT_TMP/netem.ready" --seed 7 "$@" >"$IT_TMP/netem.out" 2>&1 &
	NETEM_PID=$!
	IT_BG_PIDS+=("$NETEM_PID")
	local i
	for i in $(seq 50); do
		[ -f "$IT_TMP/netem.ready" ] && return 0
		sleep 0.1
	done
	it_log "FAIL tcp_netem.py did not start"
	cat "$IT_TMP/netem.out"
	return 1
}

pony_server() { # VAR NAME [pony_echo args]: server on A
	local var=$1 name=$2 pid i
	shift 2
	"$PONY_ECHO" --ctl "$IT_TMP/a.sock" "$@" >"$IT_TMP/$name.out" 2>&1 &
	pid=$!
	IT_BG_PIDS+=("$pid")
	printf -v "$var" '%s' "$pid"
	for i in $(seq 100); do
		grep -qs ' key ' "$IT_TMP/$name.out" && return 0
		mst_pid_running "$pid" || break
		sleep 0.1
	done
	it_log "FAIL pony_echo server $name did not start:"
	sed 's/^/  | /' "$IT_TMP/$name.out"
	return 1
}

# pony_server_field NAME FIELD: a value from the server's ready line.
pony_server_field() {
	sed -n "s/.* $2 \([0-9]*\).*/\1/p" "$IT_TMP/$1.out" | head -n1
}

pony_stop() { # PID: SIGTERM and wait; the server's exit status (0 expected;
	# 124 when it ignored SIGTERM for 10 s and was killed)
	local rc
	kill -TERM "$1" 2>/dev/null
	if ! mst_wait_exit "$1" 10; then
		kill -KILL "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		return 124
	fi
	wait "$1" 2>/dev/null
	rc=$?
	[ "$rc" -eq 0 ] || it_log "     pony_echo server (pid $1) exited with status $rc"
	return "$rc"
}

pony_counter() { # CTL NAME: the engine total (a counter or a drop reason)
	"$MUSTANGCTL" --ctl "$1" stats --json | "$MST_PY" -c '
import json, sys; t = json.load(sys.stdin)["totals"]; n = sys.argv[1]
print(t["counters"][n] if n in t["counters"] else t["drops"][n])' "$2"
}

pony_drop() { # CTL NAME: the engine total of a drop reason
	"$MUSTANGCTL" --ctl "$1" stats --json | "$MST_PY" -c '
import json, sys; d = json.load(sys.stdin); print(d["totals"]["drops"][sys.argv[1]])' "$2"
}
pony_client() { # NAME ARGS: client on B against A, in the foreground, time-limited
	# (MST_PONY_CLIENT_SECS, default 120)
	local name=$1 rc
	shift
	timeout "${MST_PONY_CLIENT_SECS:-120}" "$PONY_ECHO" --ctl "$IT_TMP/b.sock" "$@" >"$IT_TMP/$name.out" 2>&1
	rc=$?
	sed 's/^/     /' "$IT_TMP/$name.out" | tail -n 12
	return $rc
}
