# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Sourced by every integration test: the scripts/lib.sh helpers plus
#   it_begin DRIVER|-     root check (else 77), binaries present (else FAIL),
#                         driver usable on this kernel (else 77), cleanup trap
#   check DESC CMD...     run CMD; record "ok"/"FAIL" and keep going
#   fail MSG              record a failure
#   it_end                exit 1 if anything failed, else 0
#   it_topo_daemon NAME [extra mustangd args]
#                         topology + mustangd on DRIVER with the test address
#   it_daemon [extra mustangd args]   mustangd alone (after topo_up)
#   snapshot FILE         `mustangctl stats --json` into FILE (validated)
#   delta A B counters|drops NAME
#
# Exit codes follow meson: 0 pass, 1 fail, 77 skip.

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib.sh
. "$IT_DIR/../../scripts/lib.sh"

IT_FAILS=0
IT_TMP=""
IT_DRIVER=""
IT_BG_PIDS=()   # helpers started in the background (tcpdump...), by PID

it_log() { printf '%s\n' "$*"; }
fail() { IT_FAILS=$((IT_FAILS + 1)); printf 'FAIL %s\n' "$*"; }
skip() { printf 'SKIP %s\n' "$*"; exit 77; }

check() {
	local desc=$1; shift
	if "$@"; then
		printf 'ok   %s\n' "$desc"
	else
		fail "$desc (command: $*)"
	fi
}

it_cleanup() {
	local rc=$? p
	for p in "${IT_BG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	mst_cleanup
	[ -n "$IT_TMP" ] && [ -z "${MST_KEEP_TMP:-}" ] && rm -rf "$IT_TMP"
	[ -n "${MST_KEEP_TMP:-}" ] && it_log "kept $IT_TMP"
	exit "$rc"
}

it_end() {
	if [ "$IT_FAILS" -ne 0 ]; then
		it_log "$(basename "$0") ${IT_DRIVER}: $IT_FAILS check(s) FAILED"
		if [ -n "$MST_DAEMON_LOG" ] && [ -s "$MST_DAEMON_LOG" ]; then
			it_log "--- mustangd log (last 40 lines) ---"
			tail -n 40 "$MST_DAEMON_LOG"
		fi
		exit 1
	fi
	it_log "$(basename "$0") ${IT_DRIVER}: all checks passed"
	exit 0
}

# af_xdp needs the kernel's AF_XDP sockets and DPDK's net_af_xdp PMD.
it_driver_usable() {
	case "$1" in
	af_xdp)
		"$MST_PY" -c 'import socket; socket.socket(44, socket.SOCK_RAW, 0)' 2>/dev/null ||
			skip "af_xdp: this kernel has no AF_XDP sockets"
		ls /usr/lib/*/dpdk/pmds-*/librte_net_af_xdp.so* >/dev/null 2>&1 ||
			skip "af_xdp: DPDK's net_af_xdp PMD is not installed"
		;;
	af_packet) ;;
	-) ;;
	*) it_log "unknown driver '$1'"; exit 1 ;;
	esac
}

it_begin() {
	IT_DRIVER=${1:--}
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, veth, AF_XDP)"
	if [ ! -x "$MUSTANGD" ] || [ ! -x "$MUSTANGCTL" ]; then
		# The build must produce them: a missing daemon is a failure, not a skip.
		it_log "FAIL $MUSTANGD / $MUSTANGCTL not built"
		exit 1
	fi
	"$MST_PY" -c 'import scapy' 2>/dev/null ||
		{ it_log "FAIL python3-scapy missing (scripts/test.sh installs it)"; exit 1; }
	it_driver_usable "$IT_DRIVER"
	IT_TMP=$(mktemp -d /tmp/mustang-it.XXXXXX)
	trap it_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	ip netns add "mst-$$-probe" 2>/dev/null || skip "cannot create network namespaces"
	ip netns del "mst-$$-probe"
}

# it_topo_daemon NAME [mustangd args...] : topology NAME + mustangd on it.
it_topo_daemon() {
	local name=$1; shift
	topo_up "$name" mustang 1 || { it_log "FAIL topology setup"; exit 1; }
	it_daemon "$@"
}

# it_daemon [mustangd args...] : mustangd on the topology's Mustang end.
it_daemon() {
	if ! start_mustangd --ctl "$IT_TMP/ctl/mustang.sock" --log "$IT_TMP/mustangd.log" -- \
		--port "$IT_DRIVER:iface=$TOPO_IF_M" --ip "$TOPO_IP_M/$TOPO_PREFIX" \
		--mode spreading --engines 1 --services echo --log-level info "$@"; then
		it_log "FAIL mustangd did not start on $IT_DRIVER:iface=$TOPO_IF_M"
		exit 1
	fi
}

in_linux() { ip netns exec "$TOPO_NS_L" "$@"; }
quiet() { "$@" >/dev/null; }

snapshot() {
	"$MST_PY" "$IT_DIR/mststats.py" snapshot "$MUSTANGCTL" "$MST_DAEMON_CTL" >"$1"
}

delta() {
	"$MST_PY" "$IT_DIR/mststats.py" delta "$@"
}
