# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Sourced by the preload_* integration tests (unmodified Debian programs on
# Mustang through libmustang-preload.so): app_common.sh plus
#   preload_begin DRIVER PROG...   it_begin; skip (77) if a program is absent,
#                                  FAIL if the preload library is not built
#   preload_setup NAME             app_setup NAME; then ON_MST is the command
#                                  prefix (env LD_PRELOAD=... MUSTANG_CTL=...):
#                                  "${ON_MST[@]}" prog runs prog on Mustang (an
#                                  exec: app_run's PID is the program's)
#   port_open HOST PORT            a TCP connect from the Linux namespace works
#   preload_stop PID NAME SIG      the server was still running, exits 0 on
#                                  SIG, detached, printed no preload warning
#
# The programs run outside any namespace (they reach the network through
# mustangd); their Linux peers run in the Linux namespace (in_linux).

# shellcheck source=app_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/app_common.sh"

PRELOAD_LIB=$MST_BUILD/client/preload/libmustang-preload.so

preload_begin() {
	local drv=$1 p
	shift
	it_begin "$drv"
	for p in "$@"; do
		command -v "$p" >/dev/null || skip "$p is not installed (scripts/test.sh installs it)"
	done
	if [ ! -f "$PRELOAD_LIB" ]; then
		it_log "FAIL $PRELOAD_LIB not built"
		exit 1
	fi
}

preload_setup() {
	app_setup "$1"
	ON_MST=(env "LD_PRELOAD=$PRELOAD_LIB" "MUSTANG_CTL=$MST_DAEMON_CTL")
}

port_open() {
	in_linux "$MST_PY" -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()" "$1" "$2" 2>/dev/null
}

preload_stop() {
	local pid=$1 name=$2 sig=$3 rc
	check "$name still running" mst_pid_running "$pid"
	kill "-$sig" "$pid"
	app_wait "$pid" 10
	rc=$?
	check "$name exits 0 on SIG$sig" test $rc -eq 0
	check "0 apps attached at the end" wait_for 5 apps_is 0
	check "no preload warning from $name" test "$(grep -c mustang-preload "$IT_TMP/$name.out")" -eq 0
}
