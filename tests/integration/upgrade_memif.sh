#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Live upgrade on memif (docs/upgrade.md): two mustangd back to back, a
# (memif server) and b (client), each upgraded in turn while their apps
# talk across the link:
#   on each daemon: echo_server on 7007 (asleep in mst_epoll_wait),
#   upgrade_app on 7009 (a thread asleep in mst_accept, one per connection
#   asleep in mst_recv) and two upgrade_client apps: 8 connections to the
#   other daemon's echo_server and 2 to its upgrade_app, 64-byte
#   sequence-numbered records at MST_UPGM_RATE (10) per second each, every
#   echo checked (threads asleep in mst_recv between records).
#   1. rollbacks: a new daemon failing at import (before the port moves),
#      at port (the old one closed its port: it reopens it) and at start
#      (the new one had the port: it closes it, the old one reopens):
#      exit 1 naming the step, the same daemon serves, the link is back
#      on both sides (same MAC), traffic carries on
#   2. `engine restart 0` on each daemon: ok, traffic carries on
#   3. MST_UPGM_ROUNDS (3) rounds of: upgrade a, upgrade b; after each: a
#      new pid, the MAC kept, both links up within 2 s, traffic carries
#      on; meanwhile apps keep attaching to the daemon being upgraded
#      (echo_client, a new mst_init each time, against the other daemon's
#      built-in echo): each must succeed (it may wait for the new daemon)
#      within 30 s, none may hang or fail. Prints the engine blackout
#      (old engines' last poll to new engines' first) and the link gap the
#      peer saw (its port watchdog's log), p50 and max.
#   4. after: upgrade_app on each daemon, asleep in accept all along,
#      accepts and echoes a new connection; every client app stops on
#      SIGTERM with every connection open and every byte checked; no RST
#      sent or received by either daemon; both exit 0.
#
# Both daemons run in a namespace of their own (memif's socket is abstract).
# Exit 0 pass, 1 fail, 77 skip.
set -u
. "$(dirname "$0")/common.sh"

ROUNDS=${MST_UPGM_ROUNDS:-3}
RATE=${MST_UPGM_RATE:-10}
EXAMPLES=$MST_BUILD/examples
TESTS=$MST_BUILD/tests/integration
IP_a=10.79.6.1 IP_b=10.79.6.2
declare -A PID=() PEER=([a]=b [b]=a) ROLE=([a]=server [b]=client) APP=()
T_START=$(date +%s)

it_begin -
for x in "$EXAMPLES/echo_server" "$EXAMPLES/echo_client" "$TESTS/upgrade_app" "$TESTS/upgrade_client"; do
	[ -x "$x" ] || { it_log "FAIL $x not built"; exit 1; }
done
NS="mst-$$-um"
ip netns add "$NS" || { it_log "FAIL namespace"; exit 1; }
MST_NETNS_CREATED+=("$NS")
ip -n "$NS" link set lo up

ip_of() { local v="IP_$1"; echo "${!v}"; }
ctl() { timeout 60 "$MUSTANGCTL" --ctl "$IT_TMP/$1.sock" "${@:2}"; }
field() { # D EXPR: a python expression over `ctl D ports --json`'s first port (p)
	ctl "$1" ports --json 2>/dev/null |
		"$MST_PY" -c "import json, sys; p = json.load(sys.stdin)['ports'][0]; print($2)" 2>/dev/null
}
link_up() { [ "$(field "$1" 'p["link"]')" = up ]; }
both_up() { link_up a && link_up b; }
daemon_pid() { ctl "$1" status --json | "$MST_PY" -c 'import json, sys; print(json.load(sys.stdin)["pid"])'; }
wait_for() { # SECONDS CMD...
	local end=$((SECONDS + $1))
	shift
	until "$@"; do [ "$SECONDS" -ge "$end" ] && return 1; sleep 0.1; done
}

launch() { # D
	local d=$1
	ip netns exec "$NS" "$MUSTANGD" --ctl "$IT_TMP/$d.sock" \
		--port "memif:socket=$IT_TMP/memif.sock,role=${ROLE[$d]}" --ip "$(ip_of "$d")/24" \
		--mode spreading --engines 1 --services echo </dev/null >>"$IT_TMP/$d.log" 2>&1 &
	PID[$d]=$!
	IT_BG_PIDS+=("$!")
}
launch a
launch b
wait_for 30 both_up || { fail "the memif link did not come up"; tail -n 20 "$IT_TMP"/[ab].log; it_end; }
MAC_a=$(field a 'p["mac"]') MAC_b=$(field b 'p["mac"]')

app() { # D NAME CMD...: an app on daemon D, output in $IT_TMP/NAME.out
	local d=$1 name=$2
	shift 2
	"$@" --ctl "$IT_TMP/$d.sock" >"$IT_TMP/$name.out" 2>&1 &
	APP[$name]=$!
	IT_BG_PIDS+=("$!")
}
for d in a b; do
	app "$d" "esrv_$d" "$EXAMPLES/echo_server" -p 7007
	app "$d" "uapp_$d" "$TESTS/upgrade_app" -p 7009
done
for d in a b; do
	wait_for 10 grep -qs listening "$IT_TMP/esrv_$d.out" "$IT_TMP/uapp_$d.out" ||
		fail "the server apps on $d did not listen"
done
for d in a b; do
	p=$(ip_of "${PEER[$d]}")
	app "$d" "cli_$d" "$TESTS/upgrade_client" stream "$p:7007" 8 "$RATE" "$IT_TMP/cli_$d.status"
	app "$d" "blk_$d" "$TESTS/upgrade_client" stream "$p:7009" 2 "$RATE" "$IT_TMP/blk_$d.status"
done

# st NAME EXPR: a python expression over client NAME's status (d)
st() { "$MST_PY" -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$IT_TMP/$1.status" 2>/dev/null; }
records() { local n=0 c; for c in cli_a blk_a cli_b blk_b; do n=$((n + $(st "$c" 'd["records"]' || echo 0))); done; echo "$n"; }
# moves N SECONDS: every client has all its connections open and N more records echoed in all
moves() {
	local base c end=$((SECONDS + $2))
	base=$(records)
	while [ "$SECONDS" -lt "$end" ]; do
		for c in cli_a blk_a cli_b blk_b; do
			if [ "$(st "$c" 'd["errors"]')" != 0 ]; then
				echo "  $c: $(st "$c" 'd["first_error"]')"
				return 1
			fi
		done
		[ $(($(records) - base)) -ge "$1" ] && return 0
		sleep 0.2
	done
	echo "  only $(($(records) - base)) of $1 records in $2 s"
	return 1
}
all_open() { [ "$(st cli_a 'd["open"] + 0')$(st blk_a 'd["open"]')$(st cli_b 'd["open"]')$(st blk_b 'd["open"]')" = 8282 ]; }
check "20 connections open across the link (8 + 2 each way)" wait_for 20 all_open
check "traffic flows (200 records in 10 s)" moves 200 10
for d in a b; do
	MST_DAEMON_CTL=$IT_TMP/$d.sock snapshot "$IT_TMP/before_$d.json"
done

it_log "  set up in $(($(date +%s) - T_START)) s"
# a daemon that died (DPDK's memif has panicked in its interrupt thread
# when its peer went away: docs/upgrade.md) ends the test at once
alive_or_end() { # WHEN
	local d
	for d in a b; do
		daemon_pid "$d" >/dev/null 2>&1 && continue
		fail "mustangd $d does not answer $1; its log:"
		tail -n 12 "$IT_TMP/$d.log" | sed 's/^/  | /'
		touch "$IT_TMP/attach.stop"
		it_end
	done
}
# --- 1. rollbacks ---------------------------------------------------------------
rollback() { # D STEP
	local d=$1 step=$2 out rc pid0
	pid0=$(daemon_pid "$d")
	out=$(ctl "$d" upgrade --fail-at "$step" 2>&1); rc=$?
	check "$d: upgrade --fail-at $step: exit 1 naming the step (got $rc: $out)" \
		grep -q "upgrade: $step failed.*rolled back: the old daemon serves" <<<"$out"
	alive_or_end "after upgrade --fail-at $step on $d"
	check "$d: upgrade --fail-at $step: the same daemon serves" test "$(daemon_pid "$d")" = "$pid0"
	check "$d: upgrade --fail-at $step: both links up within 5 s" wait_for 5 both_up
	check "$d: upgrade --fail-at $step: the MAC kept" test "$(field "$d" 'p["mac"]')" = "$(eval echo "\$MAC_$d")"
	check "$d: upgrade --fail-at $step: traffic carries on (100 records in 10 s)" moves 100 10
}
rollback a import
rollback a port
rollback b port
rollback b start
rollback a start

it_log "  rollbacks done at $(($(date +%s) - T_START)) s"
# --- 2. engine restarts --------------------------------------------------------
for d in a b; do
	out=$(ctl "$d" --json engine restart 0 2>&1)
	check "$d: engine restart 0: ok ($out)" grep -q '"ok":true' <<<"$out"
	check "$d: after the engine restart: traffic carries on (100 records in 10 s)" moves 100 10
done

# --- 3. upgrades in turn, apps attaching meanwhile --------------------------------
# attach loop: an app attaching to the daemon named in $IT_TMP/target (a
# new echo_client each time: mst_init, 5 echoes with the other daemon's
# built-in echo, exit), until $IT_TMP/attach.stop exists
attach_loop() {
	local n=0 bad=0 d rc t0
	while [ ! -e "$IT_TMP/attach.stop" ]; do
		d=$(cat "$IT_TMP/target")
		t0=$(date +%s%3N)
		timeout 30 "$EXAMPLES/echo_client" --ctl "$IT_TMP/$d.sock" --size 64 --count 5 \
			"$(ip_of "${PEER[$d]}"):7" >"$IT_TMP/attach.last" 2>&1
		rc=$?
		n=$((n + 1))
		if [ "$rc" -ne 0 ]; then
			bad=$((bad + 1))
			echo "attach $n to $d: exit $rc after $(($(date +%s%3N) - t0)) ms: $(tr '\n' ' ' <"$IT_TMP/attach.last")"
		fi
	done
	echo "attaches $n failed $bad"
}
target() { echo "$1" >"$IT_TMP/target.new" && mv "$IT_TMP/target.new" "$IT_TMP/target"; }
target a
attach_loop >"$IT_TMP/attach.out" 2>&1 &
ATTACH=$!
IT_BG_PIDS+=("$ATTACH")
: >"$IT_TMP/upgrades.jsonl"
for r in $(seq "$ROUNDS"); do
	for d in a b; do
		target "$d"
		pid0=$(daemon_pid "$d")
		lines=$(wc -l <"$IT_TMP/${PEER[$d]}.log")
		out=$(ctl "$d" --json upgrade 2>&1); rc=$?
		if [ "$rc" -ne 0 ] || ! grep -q '"ok":true' <<<"$out"; then
			fail "round $r: upgrade $d: exit $rc: $out"
			continue
		fi
		pid=$("$MST_PY" -c 'import json, sys; print(json.loads(sys.argv[1])["new_pid"])' "$out")
		IT_BG_PIDS+=("$pid")
		check "round $r: $d upgraded: a new daemon ($pid0 -> $pid)" wait_for 5 test "$(daemon_pid "$d")" = "$pid"
		alive_or_end "in round $r after upgrading $d"
		check "round $r: $d: both links up within 2 s" wait_for 2 both_up
		check "round $r: $d: the MAC kept" test "$(field "$d" 'p["mac"]')" = "$(eval echo "\$MAC_$d")"
		# the gap the peer's watchdog logged for this upgrade
		gap=$(tail -n +"$((lines + 1))" "$IT_TMP/${PEER[$d]}.log" |
			sed -n 's/.*link up.* \([0-9][0-9]*\) ms down.*/\1/p' | tail -n 1)
		"$MST_PY" -c 'import json, sys
r = json.loads(sys.argv[1]); r["daemon"] = sys.argv[2]; r["link_gap_ms"] = int(sys.argv[3] or -1)
print(json.dumps(r))' "$out" "$d" "${gap:-}" >>"$IT_TMP/upgrades.jsonl"
		check "round $r: $d: traffic carries on (100 records in 10 s)" moves 100 10
	done
done
touch "$IT_TMP/attach.stop"
mst_wait_exit "$ATTACH" 40 || fail "the attach loop hung"
wait "$ATTACH" 2>/dev/null
it_log "  $(tail -n 1 "$IT_TMP/attach.out")"
check "apps attaching during the upgrades: none failed or hung" \
	grep -q "^attaches [1-9][0-9]* failed 0$" "$IT_TMP/attach.out"
grep '^attach ' "$IT_TMP/attach.out" | head -n 5 | sed 's/^/  /'
check "$((ROUNDS * 2)) upgrades: each ok (blackout and the link gap the peer logged)" "$MST_PY" - "$IT_TMP/upgrades.jsonl" "$((ROUNDS * 2))" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
for r in rs:
    if r["link_gap_ms"] < 0:  # shorter than the watchdog's 10 ms tick: never seen down
        print("   %s: the peer logged no link gap" % r["daemon"])
b = sorted(max(r["blackout_us"]) for r in rs)
g = sorted(max(0, r["link_gap_ms"]) for r in rs)
if b:
    print("   memif upgrades: %d; engine blackout p50 %d us, max %d us (port close p50 %d us, open %d us);"
          " link gap seen by the peer p50 %d ms, max %d ms"
          % (len(b), statistics.median_low(b), b[-1],
             statistics.median_low([r["blackout_parts_us"]["port_close"] for r in rs]),
             statistics.median_low([r["blackout_parts_us"]["port_open"] for r in rs]),
             statistics.median_low(g), g[-1]))
sys.exit(0 if len(rs) == int(sys.argv[2]) and all(r.get("ok") is True for r in rs) else 1)
PY

it_log "  upgrades done at $(($(date +%s) - T_START)) s"
# --- 4. after the upgrades ------------------------------------------------------
for d in a b; do
	p=${PEER[$d]}
	n0=$(grep -c '^accepted' "$IT_TMP/uapp_$d.out")
	check "upgrade_app on $d, asleep in accept: a new connection from $p echoes" \
		timeout 30 "$EXAMPLES/echo_client" --ctl "$IT_TMP/$p.sock" --size 1000 --count 50 "$(ip_of "$d"):7009"
	check "upgrade_app on $d accepted it" test "$(grep -c '^accepted' "$IT_TMP/uapp_$d.out")" -gt "$n0"
done
for c in cli_a blk_a cli_b blk_b; do
	kill -TERM "${APP[$c]}"
	mst_wait_exit "${APP[$c]}" 20
	wait "${APP[$c]}"
	rc=$?
	check "$c: every connection open to the end, every record checked (exit $rc): $(tail -n 1 "$IT_TMP/$c.out")" \
		test "$rc" -eq 0
done
for d in a b; do
	MST_DAEMON_CTL=$IT_TMP/$d.sock snapshot "$IT_TMP/after_$d.json"
	for name in tcp_resets_sent tcp_resets_rx; do
		v=$(delta "$IT_TMP/before_$d.json" "$IT_TMP/after_$d.json" counters "$name")
		check "$d: $name during the upgrades: ${v:-?}" test "${v:-1}" = 0
	done
done
for n in esrv_a uapp_a esrv_b uapp_b; do kill -TERM "${APP[$n]}" 2>/dev/null; done
for d in a b; do
	pid=$(daemon_pid "$d")
	kill -TERM "$pid"
	check "$d: mustangd (pid $pid) exits on SIGTERM" mst_wait_exit "$pid" 15
done
grep -h 'ERROR: \|segmentation\|Segmentation' "$IT_TMP"/[ab].log | head -n 5
check "no crash in either daemon's log" bash -c "! grep -qi 'segmentation\|AddressSanitizer' '$IT_TMP/a.log' '$IT_TMP/b.log'"
it_log "upgrade-memif: $(($(date +%s) - T_START)) s"
it_end
