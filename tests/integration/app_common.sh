# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Sourced by the app_* integration tests (applications on libmustang against
# the Linux kernel): common.sh plus
#   app_begin DRIVER        it_begin + the example binaries are built (else FAIL)
#   app_setup NAME          topology + mustangd (1 engine, spreading)
#   app_run VAR NAME CMD... CMD in the background (output in $IT_TMP/NAME.out),
#                           its PID in VAR and in IT_BG_PIDS (killed on exit)
#   app_start VAR NAME PROG ARGS...
#                           an example program attached to the daemon; waits
#                           for its "listening" line
#   linux_start VAR NAME MODE PORT ARGS...
#                           an app_peer.py server in the Linux namespace;
#                           waits until it listens
#   app_wait PID SECONDS    wait for a background job; its exit status
#                           (124 after SIGKILL on timeout)
#   ctl_json CMD EXPR       python expression over `mustangctl CMD --json` (d)
#   wait_for SECONDS CMD... poll CMD every 0.1 s until it succeeds
#   peer ARGS...            app_peer.py in the Linux namespace
#
# Apps do not run inside a namespace: they only talk to mustangd, through
# the control socket file (a plain path) and the shared segment.

# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

EXAMPLES=$MST_BUILD/examples
APP_TESTS=$MST_BUILD/tests/integration
PEER="$IT_DIR/app_peer.py"

app_begin() {
	it_begin "$1"
	local p
	for p in echo_server echo_client http_hello; do
		if [ ! -x "$EXAMPLES/$p" ]; then
			it_log "FAIL $EXAMPLES/$p not built"
			exit 1
		fi
	done
}

app_setup() {
	it_topo_daemon "$1"
	export MUSTANG_CTL=$MST_DAEMON_CTL
}

app_run() {
	local var=$1 name=$2 pid
	shift 2
	"$@" >"$IT_TMP/$name.out" 2>&1 &
	pid=$!
	IT_BG_PIDS+=("$pid")
	printf -v "$var" '%s' "$pid"
}

app_start() {
	local var=$1 name=$2 pid
	shift 2
	app_run "$var" "$name" "$@"
	pid=${!var}
	if ! wait_for 10 grep -qs listening "$IT_TMP/$name.out"; then
		it_log "FAIL $name did not start listening; its output:"
		sed 's/^/  | /' "$IT_TMP/$name.out"
		return 1
	fi
	mst_pid_running "$pid"
}

linux_start() {
	local var=$1 name=$2 mode=$3 port=$4
	shift 4
	rm -f "$IT_TMP/$name.ready"
	# ip netns exec execs python: $! is the server itself.
	app_run "$var" "$name" ip netns exec "$TOPO_NS_L" "$MST_PY" "$PEER" "$mode" "$port" \
		--ready "$IT_TMP/$name.ready" "$@"
	wait_for 10 test -f "$IT_TMP/$name.ready" ||
		{ it_log "FAIL $name did not start"; cat "$IT_TMP/$name.out"; return 1; }
}

app_wait() {
	local pid=$1 rc
	if ! mst_wait_exit "$pid" "$2"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
	rc=$?
	return $rc
}

ctl_json() {
	local out
	out=$(mst_ctl "$1" --json) || return 1
	"$MST_PY" -c "import json, sys; d = json.load(sys.stdin); print($2)" <<<"$out"
}

wait_for() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

peer() { in_linux "$MST_PY" "$PEER" "$@"; }

# apps_is N : mustangctl status says N apps are attached.
apps_is() { [ "$(ctl_json status 'd["apps"]')" = "$1" ]; }
