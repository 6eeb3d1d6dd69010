#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Live upgrade with Pony (docs/upgrade.md): two mustangd over a veth pair
# (af_xdp or af_packet), Pony RPCs and one-sided READs between them while
# both daemons are upgraded, one at a time, MST_UPG_RESTARTS times (default
# 20): odd ones `mustangctl engine restart 0`, even ones `mustangctl
# upgrade` (a new process takes over); daemon A for upgrades 1, 2, 5, 6,
# ..., daemon B for 3, 4, 7, 8, ... so each side is upgraded with its
# flows mid-message and mid-READ, by both paths.
#   A: mustang-load serve (Pony echo and a remote-readable region, svc 7100)
#   B: mustang-load pony_rr (8 RPCs in flight, 64 B - one per stream) and
#      mustang-load pony_read (2 READs of 256 KiB in flight), paced
# Afterwards: every upgrade ok; both clients exit 0 with 0 failed RPCs and
# READs (a failed completion or 10 s of silence is an error) and carried
# on between upgrades; no Pony flow failed, reset or timed out on either
# daemon; the counters carried over; both daemons exit 0. The RPC and READ
# counts and the blackouts (p50, max) are printed.
#
#   upgrade_pony.sh DRIVER          (af_packet | af_xdp)
#   MST_UPG_RESTARTS=N              upgrades (default 20)
#
# Exit 0 pass, 1 fail, 77 skip.
set -u
DRV=${1:?usage: $0 af_xdp|af_packet}
. "$(dirname "$0")/pony_common.sh"
RESTARTS=${MST_UPG_RESTARTS:-20}
LOAD=$MST_BUILD/tools/loadgen/mustang-load
[ -x "$LOAD" ] || { it_log "FAIL $LOAD not built"; exit 1; }
T_START=$(date +%s)

pony_begin "$DRV"
"$MUSTANGCTL" --help 2>&1 | grep -q 'engine restart' || skip "this mustangctl has no 'engine restart'"
pony_veth

wait_until() { # SECS CMD...
	local i
	for i in $(seq $(($1 * 10))); do
		"${@:2}" && return 0
		sleep 0.1
	done
	"${@:2}"
}
# the daemons' PIDs (a process upgrade replaces one; IT_BG_PIDS gets the new)
dpid() { "$MUSTANGCTL" --ctl "$IT_TMP/$1.sock" --json status |
	"$MST_PY" -c 'import json, sys; print(json.load(sys.stdin)["pid"])'; }
PID_A0=$(dpid a) PID_B0=$(dpid b)

"$LOAD" serve --stack mustang --only pony --ctl "$IT_TMP/a.sock" --port 7100 >"$IT_TMP/srv.out" 2>&1 &
SRV=$!
IT_BG_PIDS+=("$SRV")
wait_until 10 grep -q "pony echo" "$IT_TMP/srv.out" || { cat "$IT_TMP/srv.out"; fail "mustang-load serve did not start"; it_end; }

client() { # NAME MODE ARGS...: a paced client on B for the whole test, JSON at the end
	local name=$1 mode=$2
	shift 2
	"$LOAD" run --stack mustang --ctl "$IT_TMP/b.sock" --target "$PONY_IP_A:7100" \
		--mode "$mode" --duration 3600 --timeout 10 --quiet --json "$IT_TMP/$name.json" "$@" \
		>"$IT_TMP/$name.out" 2>&1 &
	IT_BG_PIDS+=("$!")
	printf -v "${name^^}" '%s' "$!"
}
client rr pony_rr --size 64 --conns 8 --rate 500
client rd pony_read --size 262144 --conns 2 --rate 100
sleep 2
check "pony_rr client runs" mst_pid_running "$RR"
check "pony_read client runs" mst_pid_running "$RD"
snap() { # FILE: both daemons' stats
	"$MUSTANGCTL" --ctl "$IT_TMP/a.sock" stats --json >"$1.a" &&
		"$MUSTANGCTL" --ctl "$IT_TMP/b.sock" stats --json >"$1.b"
}
# moves CTL COUNTER N SECS: the counter grows by N within SECS
moves() {
	local base i
	base=$(pony_counter "$1" "$2") || return 1
	for i in $(seq $(($4 * 10))); do
		sleep 0.1
		[ $(($(pony_counter "$1" "$2") - base)) -ge "$3" ] && return 0
	done
	echo "  $2 on $1 grew by $(($(pony_counter "$1" "$2") - base)) < $3 in $4 s"
	return 1
}
check "RPCs flow before the upgrades (B: 1000 messages delivered in 10 s)" \
	moves "$IT_TMP/b.sock" pony_msgs_delivered 1000 10
check "READs flow before the upgrades (B: 20 READs done in 10 s)" \
	moves "$IT_TMP/b.sock" pony_reads_done 20 10
snap "$IT_TMP/before"

# upgrade NAME KIND: one upgrade of daemon NAME; its JSON answer (one line)
upgrade() {
	local name=$1 kind=$2 ctl="$IT_TMP/$1.sock" out rc old new
	if [ "$kind" = engine ]; then
		timeout 90 "$MUSTANGCTL" --ctl "$ctl" --timeout 60000 --json engine restart 0
		return
	fi
	old=$(dpid "$name") || return 1
	out=$(timeout 90 "$MUSTANGCTL" --ctl "$ctl" --json upgrade)
	rc=$?
	printf '%s\n' "$out"
	[ "$rc" -eq 0 ] || return "$rc"
	new=$(printf '%s' "$out" | sed -n 's/.*"new_pid":\([0-9]*\).*/\1/p')
	[ -n "$new" ] || return 1
	IT_BG_PIDS+=("$new")
	mst_wait_exit "$old" 10 || { echo "old mustangd $old still running"; return 1; }
}

: >"$IT_TMP/upgrades.jsonl"
for i in $(seq 1 "$RESTARTS"); do
	if [ $((i % 2)) -eq 1 ]; then kind=engine; else kind=process; fi
	if [ $(((i - 1) % 4)) -lt 2 ]; then name=a; else name=b; fi
	upgrade "$name" "$kind" >"$IT_TMP/upgrade.out" 2>&1
	rc=$?
	out=$(tail -n 1 "$IT_TMP/upgrade.out")
	if [ "$rc" -ne 0 ]; then
		fail "upgrade $i ($kind of $name): exit $rc: $(cat "$IT_TMP/upgrade.out")"
		break
	fi
	"$MST_PY" -c '
import json, sys
r = json.loads(sys.argv[3])
b = r.get("blackout_us")
print(json.dumps({"i": int(sys.argv[4]), "daemon": sys.argv[1], "kind": sys.argv[2],
                  "ok": r.get("ok"), "blackout_us": max(b) if isinstance(b, list) else b}))' \
		"$name" "$kind" "$out" "$i" >>"$IT_TMP/upgrades.jsonl" ||
		fail "upgrade $i: not JSON: $out"
	# the upgraded daemon carries Pony before the next one
	if ! moves "$IT_TMP/b.sock" pony_msgs_delivered 100 10 >"$IT_TMP/moves.out"; then
		fail "after upgrade $i ($kind of $name): RPCs stopped: $(cat "$IT_TMP/moves.out")"
		break
	fi
done
check "$RESTARTS upgrades ok (engine restarts and new processes, both daemons)" "$MST_PY" - \
	"$IT_TMP/upgrades.jsonl" "$RESTARTS" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [r for r in rs if r["ok"] is not True]
for r in bad[:5]:
    print("  ", r)
sys.exit(1 if bad or len(rs) != int(sys.argv[2]) else 0)
PY
BLACKOUT=$("$MST_PY" - "$IT_TMP/upgrades.jsonl" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip() and json.loads(l)["ok"]]
for k in ("engine", "process"):
    b = sorted(r["blackout_us"] for r in rs if r["kind"] == k)
    if b:
        print("%s: %d, blackout p50 %d us, max %d us;" % (k, len(b), statistics.median_low(b), b[-1]), end=" ")
PY
)
it_log "     $BLACKOUT"
check "daemon A is another process now ($PID_A0 -> $(dpid a))" test "$(dpid a)" != "$PID_A0"
check "daemon B is another process now ($PID_B0 -> $(dpid b))" test "$(dpid b)" != "$PID_B0"
check "RPCs still flow after the upgrades" moves "$IT_TMP/b.sock" pony_msgs_delivered 500 10
snap "$IT_TMP/after"

# --- the clients' verdict: every RPC and READ completed, none failed ---------------
kill -INT "$RR" "$RD"
wait "$RR"
rrc=$?
wait "$RD"
rdc=$?
check "the clients exit 0 (pony_rr $rrc, pony_read $rdc)" test "$rrc" -eq 0 -a "$rdc" -eq 0
verdict() { # NAME WHAT
	"$MST_PY" - "$IT_TMP/$1.json" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = d["errors"]["total"]
print("   %s: %d completed, %d failed, longest stall %.1f ms, p99 %.0f us"
      % (sys.argv[2], d["ops"], e, d["max_stall_us"] / 1e3, d["latency_ns"]["p99"] / 1e3))
sys.exit(0 if e == 0 and d["ops"] > 0 else 1)
PY
}
check "pony_rr through $RESTARTS upgrades: 0 failed RPCs" verdict rr "RPCs (64 B echo)"
check "pony_read through $RESTARTS upgrades: 0 failed one-sided READs" verdict rd "READs (256 KiB)"
RPCS=$("$MST_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops"])' "$IT_TMP/rr.json" 2>/dev/null)
READS=$("$MST_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops"])' "$IT_TMP/rd.json" 2>/dev/null)

# --- the daemons: no flow failed or reset, the counters carried over ----------------
pdelta() { # SIDE NAME: after - before (a counter or a drop reason)
	"$MST_PY" - "$IT_TMP/before.$1" "$IT_TMP/after.$1" "$2" <<'PY'
import json, sys
def v(f):
    t = json.load(open(f))["totals"]
    return t["counters"].get(sys.argv[3], t["drops"].get(sys.argv[3], 0))
print(v(sys.argv[2]) - v(sys.argv[1]))
PY
}
for side in a b; do
	for name in pony_flows_failed pony_resets_sent pony_flows_closed pony_msgs_failed; do
		check "daemon ${side^^}: $name +0 during the upgrades" test "$(pdelta "$side" "$name")" = 0
	done
	check "daemon ${side^^}: no Pony packet refused for an unknown incarnation (pony_stale_epoch, pony_no_flow +0)" \
		test "$(pdelta "$side" pony_stale_epoch)" = 0 -a "$(pdelta "$side" pony_no_flow)" = 0
done
check "daemon A: counters carried over (pony_reads_served +$(pdelta a pony_reads_served))" \
	test "$(pdelta a pony_reads_served)" -gt 0
it_log "     the daemons' Pony retransmissions during the upgrades: A +$(pdelta a pony_retransmits), B +$(pdelta b pony_retransmits)"

kill -TERM "$SRV"
wait "$SRV"
src=$?
check "mustang-load serve exits 0 (status $src)" test "$src" -eq 0
for side in a b; do
	p=$(dpid "$side")
	kill -TERM "$p"
	check "mustangd ${side^^} (pid $p) exits after $RESTARTS upgrades" mst_wait_exit "$p" 10
	check "mustangd ${side^^} stopped cleanly" bash -c "tail -n 3 '$IT_TMP/$side.log' | grep -q 'info: stopped'"
done
it_log "upgrade-pony $DRV: $RPCS RPCs and $READS READs, 0 failed, over $RESTARTS upgrades; $BLACKOUT $(($(date +%s) - T_START)) s"
it_end
