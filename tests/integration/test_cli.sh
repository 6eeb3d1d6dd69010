#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The command line of mustangd and mustangctl, on the `null` port (no
# network needed): bad options and files are refused with one line and a
# non-zero status before anything starts; mustangctl says when no daemon
# runs; one daemon per control socket; a stale socket file is replaced.
#
#   test_cli.sh        exit 0 pass, 1 fail, 77 skip

. "$(dirname "$0")/common.sh"
it_begin -

T=$IT_TMP
OK=(--port null --ip 10.99.0.1/24 --mode spreading)

# --- mustangctl without a daemon ---------------------------------------------
not_running() { # PATH ARGS...
	local path=$1 out rc; shift
	out=$(timeout 10 "$MUSTANGCTL" --ctl "$path" "$@" 2>&1); rc=$?
	[ "$rc" = 1 ] || { echo "  exit status $rc, output: $out"; return 1; }
	grep -qF "mustangd is not running at $path" <<<"$out" ||
		{ echo "  output: $out"; return 1; }
}
for a in status ports engines stats "stats --json" "--json stats"; do
	# shellcheck disable=SC2086
	check "mustangctl $a, no socket: 'not running', exit 1" not_running "$T/none/x.sock" $a
done
# A socket file nobody listens on (a daemon killed with SIGKILL leaves one).
"$MST_PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
check "mustangctl status, stale socket: 'not running', exit 1" not_running "$T/stale.sock" status

# --- bad options -----------------------------------------------------------------
n=0
bad_option() { # WORD-IN-MESSAGE ARGS...
	local word=$1 out rc lines sock
	shift
	n=$((n + 1))
	sock=$T/bad$n/ctl.sock
	out=$(timeout 15 "$MUSTANGD" --ctl "$sock" "$@" 2>&1 </dev/null); rc=$?
	lines=$(printf '%s\n' "$out" | grep -c .)
	local why=""
	[ "$rc" -ne 0 ] || why="$why exit status 0;"
	[ "$rc" -ne 124 ] || why="$why still running after 15 s;"
	[ "$lines" = 1 ] || why="$why $lines lines of output;"
	grep -qi -- "$word" <<<"$out" || why="$why message does not name '$word';"
	[ ! -e "$sock" ] || why="$why control socket created;"
	if [ -n "$why" ]; then
		echo "  mustangd $*"
		echo "  ->$why output:"
		printf '%s\n' "$out" | head -n 5 | sed 's/^/  | /'
		return 1
	fi
	echo "  $out"
}
check "--mtu abc"               bad_option mtu   "${OK[@]}" --mtu abc
check "--mtu 70000"             bad_option mtu   "${OK[@]}" --mtu 70000
check "--port bogus:x"          bad_option bogus --port bogus:x --ip 10.99.0.1/24
check "--port af_packet (no iface)" bad_option iface --port af_packet --ip 10.99.0.1/24
check "--port memif role=boss"  bad_option role  --port "memif:socket=$T/m.sock,role=boss" --ip 10.99.0.1/24
check "missing --ip"            bad_option ip    --port null --mode spreading
check "no --port"               bad_option port  --ip 10.99.0.1/24
check "--ip 10.99.0.300/24"     bad_option 10.99.0.300 --port null --ip 10.99.0.300/24
check "--ip 10.99.0.1/33"       bad_option ip    --port null --ip 10.99.0.1/33
check "--mode turbo"            bad_option turbo "${OK[@]}" --mode turbo
check "--engines 0"             bad_option engines "${OK[@]}" --engines 0
check "--engines x"             bad_option engines "${OK[@]}" --engines x
check "--log-level loud"        bad_option loud  "${OK[@]}" --log-level loud
check "--services bogus"        bad_option bogus "${OK[@]}" --services bogus
check "--frobnicate"            bad_option frobnicate "${OK[@]}" --frobnicate
check "--gw not-an-address"     bad_option not-an-address "${OK[@]}" --gw not-an-address
check "--config missing file"   bad_option nonexistent.conf --config "$T/nonexistent.conf"
printf 'ip = 10.99.0.1/24\nport = null\n# comment\nmtu = abc\n' >"$T/bad.conf"
check "--config with a bad line names file:line" bad_option "bad.conf:4" --config "$T/bad.conf"

help_ok() {
	local out rc
	out=$(timeout 10 "$MUSTANGD" --help 2>/dev/null); rc=$?
	[ "$rc" = 0 ] && grep -q -- "--port" <<<"$out" || { echo "  status $rc"; return 1; }
}
check "mustangd --help: usage on stdout, exit 0" help_ok

# --- a good configuration on the null port ----------------------------------------
ctl=$T/run/ctl.sock
if start_mustangd --ns "" --ctl "$ctl" --log "$T/good.log" -- "${OK[@]}"; then
	it_log "ok   mustangd starts on the null port"
	check "status answers" quiet mst_ctl status
	check "--json status is JSON" sh -c "timeout 10 '$MUSTANGCTL' --ctl '$ctl' --json status | '$MST_PY' -m json.tool >/dev/null"
	check "stats --json parses" snapshot "$T/null.json"
	second_refused() {
		local out rc
		out=$(timeout 15 "$MUSTANGD" --ctl "$ctl" "${OK[@]}" 2>&1 </dev/null); rc=$?
		[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] ||
			{ echo "  second daemon: status $rc"; printf '%s\n' "$out" | tail -3; return 1; }
		echo "  $out" | tail -1
	}
	check "a second mustangd on the same control socket is refused" second_refused
	check "the first still answers" quiet mst_ctl status
	check "SIGTERM: exit 0" stop_mustangd TERM
	check "control socket removed" test ! -e "$ctl"
else
	fail "mustangd ${OK[*]} did not start"
fi

# A stale socket file (left by a killed daemon) is replaced.
mkdir -p "$T/run"
"$MST_PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/run/stale.sock"
if start_mustangd --ns "" --ctl "$T/run/stale.sock" --log "$T/stale.log" -- "${OK[@]}"; then
	it_log "ok   mustangd replaces a stale control socket"
	check "SIGTERM: exit 0" stop_mustangd TERM
else
	fail "mustangd refused to start over a stale control socket file"
fi
it_end
