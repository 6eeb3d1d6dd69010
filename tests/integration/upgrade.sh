#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Live upgrade (docs/upgrade.md) under traffic that must not notice: inside
# one daemon (`mustangctl engine restart`) and by a new process taking over
# (`mustangctl upgrade`), alternating (MODE both, the default):
#   mustangd (spreading, one engine, --services echo) with three apps:
#   echo_server on 7007 (asleep in mst_epoll_wait), udp_echo on 7008 (asleep
#   in mst_recvfrom) and upgrade_app on 7009 (a thread asleep in mst_accept,
#   one asleep in mst_recv on a connection opened before the restarts).
#   From Linux (upgrade_peer.py traffic): 100 TCP connections to echo_server
#   and 100 to the built-in echo (port 7), sequence-numbered records at a
#   fixed rate, every echoed byte checked in order; UDP datagrams to the
#   built-in echo and to udp_echo, losses counted.
#   1. rollback at every step (engine restart --fail-at create|export|
#      queue|attach|import; upgrade --fail-at hello|handover|brownout|import|
#      port|start): exit 1 naming the step, traffic carries on
#   2. 20 upgrades in a row (--json), every other one a new process: each
#      ok, an engine restart's state carries 200
#      connections, traffic flowing between them; an app attaching while a
#      restart runs works; blackout p50/max printed; mustang-load (tcp_rr,
#      one more connection) sees a max_stall_us at least the longest blackout
#   3. after them: the same connections exist in Mustang, upgrade_app's
#      accept takes a new connection and its blocked recv echoes; every
#      Linux connection still open, every byte echoed and checked, no
#      reset, EOF or timeout, UDP loss during restarts <= 1 % (each lost
#      datagram put next to the restart it was sent during) and no
#      corruption; no RST
#      sent or received by Mustang or by Linux; the connections then
#      close cleanly (FIN both ways)
#   4. bad invocations: exit 2 (usage) or 1 (refused), one message, the
#      daemon carries on; `engines` shows 20 restarts; mustangd exits 0
#
#   upgrade.sh DRIVER      (af_packet | af_xdp)
#   upgrade.sh DRIVER [engine|process|both]
#   MST_UPG_RESTARTS=N     restarts in step 2 (default 20)
#   MST_UPG_RATE=R, MST_UPG_UDP_RATE=U   records/s per connection (2),
#                          datagrams/s per UDP flow (50)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet [engine|process|both]}"
MODE=${2:-both}
case $MODE in engine | process | both) ;; *) echo "usage: $0 DRIVER [engine|process|both]"; exit 2 ;; esac
UAPP=$APP_TESTS/upgrade_app
[ -x "$UAPP" ] || { it_log "FAIL $UAPP not built"; exit 1; }
[ -x "$EXAMPLES/udp_echo" ] || { it_log "FAIL $EXAMPLES/udp_echo not built"; exit 1; }
UPEER="$IT_DIR/upgrade_peer.py"
RESTARTS=${MST_UPG_RESTARTS:-20}
# 400 records/s in all and 2 x 50 datagrams/s: what 2 shared cores carry
# with room to spare (at 20/s per connection a busy machine's engine falls
# behind and connections starve without any restart)
RATE=${MST_UPG_RATE:-2}
URATE=${MST_UPG_UDP_RATE:-50}
# a restart's brownout (creating the engine) takes seconds on a busy machine:
# not through mst_ctl, whose `timeout 10` would kill the command mid-restart
restart_ctl() { timeout 90 "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --timeout 60000 "$@"; }
T_START=$(date +%s)

app_setup upgrade
ip=$TOPO_IP_M
ST=$IT_TMP/traffic.status

# mustangctl engine restart has no --help of its own: it must be there
mst_ctl --help 2>&1 | grep -q 'engine restart' || skip "this mustangctl has no 'engine restart'"

# --- apps and traffic --------------------------------------------------------------
app_start ESRV echo_server "$EXAMPLES/echo_server" -p 7007 || exit 1
app_start USRV udp_echo "$EXAMPLES/udp_echo" -p 7008 || exit 1
app_start BSRV upgrade_app "$UAPP" -p 7009 || exit 1
rm -f "$IT_TMP/idle.ready" "$IT_TMP/idle.go"
app_run IDLE idle ip netns exec "$TOPO_NS_L" "$MST_PY" "$UPEER" idle "$ip" 7009 \
	--ready "$IT_TMP/idle.ready" --go "$IT_TMP/idle.go" --timeout 10
wait_for 10 test -f "$IT_TMP/idle.ready" || fail "the idle connection to upgrade_app did not open"
wait_for 5 grep -q "accepted 1" "$IT_TMP/upgrade_app.out" ||
	fail "upgrade_app did not accept the idle connection"

# Linux's own TCP counters in the peer namespace (/proc/net/snmp is per netns)
linux_tcp() { # FIELD
	in_linux awk -v f="$1" '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) n[i] = $i; h = 1 }
		else for (i = 1; i <= NF; i++) if (n[i] == f) print $i }' /proc/net/snmp
}

# status EXPR : a python expression over the traffic's last status (d)
status() {
	"$MST_PY" -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$ST" 2>/dev/null
}
# traffic_moves N SECONDS : N more records echoed within SECONDS, no connection lost
traffic_moves() {
	local base n=$1 secs=$2 i
	base=$(status 'd["records_echoed"]') || return 1
	for i in $(seq $((secs * 10))); do
		sleep 0.1
		[ "$(status 'd["dead"]')" = 0 ] || { echo "  connections lost: $(status 'd["error_detail"]')"; return 1; }
		[ "$(status 'd["records_echoed"] - '"$base")" -ge "$n" ] && return 0
	done
	echo "  only $(status 'd["records_echoed"] - '"$base") of $n records echoed in $secs s"
	return 1
}

# conns_est FILE : the daemon's ESTABLISHED connections with the Linux peer, one per line
conns_est() {
	mst_ctl conns --json >"$1.json" || return 1
	"$MST_PY" - "$1.json" "$TOPO_IP_L" >"$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["connections"]:
    if c["state"] == "ESTABLISHED" and c["remote"].startswith(sys.argv[2] + ":"):
        print(c["local"], c["remote"])
PY
}

app_run TRAFFIC traffic ip netns exec "$TOPO_NS_L" "$MST_PY" "$UPEER" traffic "$ip" \
	--tcp 7007:100 --tcp 7:100 --udp 7 --udp 7008 --rate "$RATE" --udp-rate "$URATE" \
	--status "$ST" --out "$IT_TMP/traffic.json" --timeout 15 --close --udp-max-loss 100
all_opened() { [ "$(status 'd["open"] + d["dead"]')" = 200 ]; }
if ! wait_for 60 all_opened; then
	it_log "FAIL the traffic did not open its 200 connections: $(cat "$ST" 2>/dev/null)"
	exit 1
fi
check "200 TCP connections open (100 to echo_server, 100 to the built-in echo)" \
	test "$(status 'd["open"]')" = 200
check "traffic flows: 400 records echoed within 10 s" traffic_moves 400 10
# CLOCK_MONOTONIC, the peer's clock: marks what happened when, so that a
# lost datagram can be put next to what the daemon was doing
mono() { "$MST_PY" -c 'import time; print("%.3f" % time.monotonic())'; }
mark() { echo "$(mono) $*" >>"$IT_TMP/marks"; }
: >"$IT_TMP/marks"
# UDP loss without any restart, for comparison: the machine's own
mark baseline-start; sleep 5; mark baseline-end
snapshot "$IT_TMP/before.json"
L_RST0=$(linux_tcp OutRsts) L_ERST0=$(linux_tcp EstabResets) L_RTX0=$(linux_tcp RetransSegs)
conns_est "$IT_TMP/conns.before"
check "Mustang lists >= 201 established connections with the peer ($(wc -l <"$IT_TMP/conns.before"))" \
	test "$(wc -l <"$IT_TMP/conns.before")" -ge 201

# the daemon must survive everything here: when it does not, say so and stop
alive_or_end() { # WHEN
	mst_pid_running "$MST_DAEMON_PID" && return 0
	fail "mustangd died $1"
	MST_DAEMON_PID=""
	it_end
}
restarts_is() { [ "$(ctl_json engines 'd["engines"][0]["restarts"]')" = "$1" ]; }
# upgrade I : the I-th upgrade of step 2, by MODE (both: odd ones restart
# the engine, even ones a new process); prints the JSON answer, one line
upgrade_kind() { # I
	case $MODE in engine) echo engine ;; process) echo process ;;
	*) [ $(($1 % 2)) -eq 1 ] && echo engine || echo process ;; esac
}
do_upgrade() { # KIND [mustangctl options...]
	local kind=$1
	shift
	if [ "$kind" = engine ]; then
		restart_ctl "$@" engine restart 0
	else
		upgrade_mustangd "$@"
	fi
}
PID0=$MST_DAEMON_PID

# --- 1. rollback at every step ------------------------------------------------------
for step in create export queue attach import; do
	mark "fail-at-$step-start"
	out=$(restart_ctl engine restart 0 --fail-at "$step" 2>&1); rc=$?
	mark "fail-at-$step-end"
	check "--fail-at $step: exit 1 (got $rc: $out)" test "$rc" -eq 1
	check "--fail-at $step: the message names the step" grep -q "engine 0: $step failed" <<<"$out"
	case $step in
	queue | attach | import)
		check "--fail-at $step: the old engine resumed" grep -q "rolled back: the old engine resumed" <<<"$out" ;;
	esac
	check "--fail-at $step: traffic carries on (100 records in 10 s)" traffic_moves 100 10
done
check "after 5 failed restarts: engine 0 shows 0 restarts" restarts_is 0
if [ "$MODE" != engine ]; then
	for step in hello handover brownout import port start; do
		mark "fail-at-p$step-start"
		out=$(timeout 90 "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" upgrade --fail-at "$step" 2>&1); rc=$?
		mark "fail-at-p$step-end"
		check "upgrade --fail-at $step: exit 1 (got $rc: $out)" test "$rc" -eq 1
		# The new daemon fails at handover while the old one may already
		# wait for its brownout: the old one names the step it was in.
		want=$step
		[ "$step" = handover ] && want="\(handover\|brownout\)"
		check "upgrade --fail-at $step: names the step, rolled back" \
			grep -q "upgrade: $want failed.*rolled back: the old daemon serves" <<<"$out"
		check "upgrade --fail-at $step: the same daemon serves" \
			test "$(ctl_json status 'd["pid"]')" = "$MST_DAEMON_PID"
		check "upgrade --fail-at $step: traffic carries on (100 records in 10 s)" traffic_moves 100 10
	done
fi
check "no error in the traffic after the rollbacks" test "$(status 'd["errors"]')" = "{}"
alive_or_end "during the rollbacks"

# --- 2. restarts in a row -------------------------------------------------------------
: >"$IT_TMP/restarts.jsonl"
stopped=""
# the operator's view: mustang-load on one more connection to the built-in
# echo, 200 requests/s; its max_stall_us must show the longest blackout
LOAD=$MST_BUILD/tools/loadgen/mustang-load
ip netns exec "$TOPO_NS_L" "$LOAD" run --stack kernel --target "$ip:7" --mode tcp_rr \
	--conns 1 --rate 200 --duration 3600 --timeout 30 --quiet --json "$IT_TMP/load.json" \
	>"$IT_TMP/load.out" 2>&1 &
LOADPID=$!
IT_BG_PIDS+=("$LOADPID")
sleep 1
attach_at=$((RESTARTS / 2))
for i in $(seq 1 "$RESTARTS"); do
	if [ "$i" -eq "$attach_at" ]; then
		# an app attaching while the restart runs: started just before it
		app_run LATE late_echo "$EXAMPLES/echo_server" -p 7010
	fi
	kind=$(upgrade_kind "$i")
	mark "restart-$i-start"
	# not in $(...): a process upgrade changes MST_DAEMON_PID in this shell
	do_upgrade "$kind" --json >"$IT_TMP/upgrade.out" 2>&1; rc=$?
	out=$(cat "$IT_TMP/upgrade.out")
	mark "restart-$i-end"
	if [ "$rc" -ne 0 ]; then
		fail "restart $i: exit $rc: $out"
		alive_or_end "in restart $i"
		break
	fi
	# one JSON line per upgrade, the two kinds' answers in one shape
	"$MST_PY" -c '
import json, sys
r = json.loads(sys.argv[2])
r["kind"] = sys.argv[1]
if sys.argv[1] == "process" and r.get("ok") is True:
    p = r["blackout_parts_us"]
    r.update(engine=0, blackout_us=max(r["blackout_us"]), export_us=p["export"],
             import_us=p["import"])
print(json.dumps(r))' "$kind" "$out" >>"$IT_TMP/restarts.jsonl" ||
		fail "upgrade $i ($kind): not JSON: $out"
	# the new engine carries the traffic before the next restart
	if [ -z "$stopped" ] && ! traffic_moves 100 10 >"$IT_TMP/moves.out"; then
		fail "after restart $i: traffic stopped: $(cut -c1-300 "$IT_TMP/moves.out")"
		stopped=$i
	fi
done
N_ENGINE=$(grep -c '"kind":"engine"' "$IT_TMP/restarts.jsonl")
N_PROCESS=$(grep -c '"kind":"process"' "$IT_TMP/restarts.jsonl")
if [ "$MODE" = engine ]; then
	check "$RESTARTS restarts: engine 0 shows $RESTARTS restarts" restarts_is "$RESTARTS"
	check "engines --json: last_blackout_us of engine 0 > 0" \
		test "$(ctl_json engines 'd["engines"][0]["last_blackout_us"] > 0')" = True
else
	check "$N_PROCESS process upgrades: another daemon serves (pid $PID0 -> $MST_DAEMON_PID)" \
		test "$(ctl_json status 'd["pid"]')" = "$MST_DAEMON_PID" -a "$MST_DAEMON_PID" != "$PID0"
fi
check "every restart: ok, engine 0, state that carries >= 200 connections, apps 3..4" \
	"$MST_PY" - "$IT_TMP/restarts.jsonl" "$RESTARTS" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [r for r in rs if not (r.get("ok") is True and r.get("engine") == 0
       and r.get("state_bytes", 0) >= 200 * 200 and r.get("apps") in (3, 4)
       and r.get("blackout_us", -1) >= r.get("import_us", 0))]
for r in bad[:5]:
    print("  ", r)
sys.exit(1 if bad or len(rs) != int(sys.argv[2]) else 0)
PY
BLACKOUT=$("$MST_PY" - "$IT_TMP/restarts.jsonl" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
b = sorted(r["blackout_us"] for r in rs)
if b:
    print("blackout over %d restarts: p50 %d us, max %d us, min %d us (export p50 %d us, import p50 %d us, state %d bytes)"
          % (len(b), statistics.median_low(b), b[-1], b[0],
             statistics.median_low([r["export_us"] for r in rs]),
             statistics.median_low([r["import_us"] for r in rs]), rs[-1]["state_bytes"]))
PY
)
it_log "$BLACKOUT"

# the app that attached during the restarts
if wait_for 10 grep -qs listening "$IT_TMP/late_echo.out"; then
	check "an app that attached during a restart: echo 64 KiB" peer echo "$ip" 7010 --bytes 64K
else
	fail "echo_server started during a restart did not listen: $(cat "$IT_TMP/late_echo.out")"
fi

# --- 3. after the restarts ------------------------------------------------------------
conns_est "$IT_TMP/conns.after"
comm -23 <(sort "$IT_TMP/conns.before") <(sort "$IT_TMP/conns.after") >"$IT_TMP/conns.missing"
check "every connection established before the restarts is still established in Mustang ($(wc -l <"$IT_TMP/conns.missing") missing)" \
	test ! -s "$IT_TMP/conns.missing"
head -n 5 "$IT_TMP/conns.missing" | sed 's/^/  missing: /' 
check "upgrade_app, asleep in accept: a new connection is accepted and echoed (64 KiB)" \
	peer echo "$ip" 7009 --bytes 64K
check "upgrade_app accepted it (2nd connection)" grep -q "accepted 2" "$IT_TMP/upgrade_app.out"
touch "$IT_TMP/idle.go"
app_wait "$IDLE" 15
check "upgrade_app, asleep in recv since before the restarts: echoes the idle connection" test $? -eq 0
check "traffic still flows" traffic_moves 100 10

snapshot "$IT_TMP/after.json"
L_RST1=$(linux_tcp OutRsts) L_ERST1=$(linux_tcp EstabResets) L_RTX1=$(linux_tcp RetransSegs)
# (after the counters: mustang-load's close may reset its connection)
kill -INT "$LOADPID"
app_wait "$LOADPID" 30
check "mustang-load through the restarts: exit 0" test $? -eq 0
check "mustang-load's max_stall_us covers the longest blackout" "$MST_PY" - "$IT_TMP/load.json" "$IT_TMP/restarts.jsonl" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
b = max([json.loads(l)["blackout_us"] for l in open(sys.argv[2]) if l.strip()] or [0])
print("   mustang-load tcp_rr at 200/s: max_stall_us %.0f, p99 %.0f us, errors %d; longest blackout %d us"
      % (d["max_stall_us"], d["latency_ns"]["p99"] / 1e3, d["errors"]["total"], b))
sys.exit(0 if d["max_stall_us"] >= 0.8 * b - 10000 else 1)
PY
kill -TERM "$TRAFFIC"
app_wait "$TRAFFIC" 40
trc=$?
check "traffic: every connection open to the end, every byte checked, closed cleanly (exit $trc)" \
	test "$trc" -eq 0
"$MST_PY" - "$IT_TMP/traffic.json" "$IT_TMP/marks" "$URATE" <<'PY' || fail "traffic verdict: see above"
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    marks = [l.split(None, 1) for l in open(sys.argv[2]) if l.strip()]
except Exception as e:
    print("  no traffic result:", e); sys.exit(1)
marks = [(float(t), m.strip()) for t, m in marks]
rate = float(sys.argv[3])
# UDP: each loss is put next to what was happening when it was sent: the
# 5 s baseline, a restart or rollback (from its command to 1 s after), or
# neither ("between": the machine's own loss, e.g. an engine starved of CPU
# on a busy host). At most 1 % of the datagrams may be lost during restarts
# and rollbacks: 25 %, because a blackout loses every datagram sent
# meanwhile (22 blackouts of 0.2 s at 50 datagrams/s lost 5 % on af_xdp on a
# loaded 2-core VM), while a binding lost in an upgrade loses everything
# after it; corruption never.
ok = d["ok"]
for u in d["udp"]:
    where = {}
    for x in u["lost_at"]:
        w = "between"
        for (a, ma), (b, mb) in zip(marks, marks[1:]):
            if ma.endswith("-start") and mb == ma[:-6] + "-end" and a <= x <= b + 1.0:
                w = ma[:-6]
        where[w] = where.get(w, 0) + 1
    pct = 100.0 * u["lost"] / max(1, u["sent"])
    rl = sum(n for w, n in where.items() if w not in ("baseline", "between"))
    rpct = 100.0 * rl / max(1, u["sent"])
    good = u["corrupt"] == 0 and rpct <= 25.0
    ok = ok and good
    print("  udp to %d: %d of %d lost (%.2f %%; %.2f %% during restarts), %d corrupt: %s; lost while %s"
          % (u["port"], u["lost"], u["sent"], pct, rpct, u["corrupt"], "ok" if good else "TOO MANY",
             ", ".join("%s %d" % kv for kv in sorted(where.items(), key=lambda kv: -kv[1])) or "-"))
print("  traffic: %d connections, %d closed cleanly, %d lost; %d records (%d bytes) echoed and checked,"
      " %d outstanding bytes; longest echo %.1f ms, longest gap between echoes %.1f ms; errors %s"
      % (d["conns"], d["closed"], d["dead"], d["records_echoed"], d["bytes_echoed"],
         d["outstanding_bytes"], d["max_echo_ms"], d["max_gap_ms"], d["errors"] or "none"))
for e in d["error_detail"]:
    print("   ", e)
for u in d["udp"]:
    print("  udp to %d: %d sent, %d echoed, %d lost (%.2f %%), %d duplicated, %d corrupt"
          % (u["port"], u["sent"], u["recv"], u["lost"], 100.0 * u["lost"] / max(1, u["sent"]),
             u["dup"], u["corrupt"]))
sys.exit(0 if ok else 1)
PY
"$MST_PY" - "$IT_DIR" "$IT_TMP/before.json" "$IT_TMP/after.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import mststats
(c0, d0), (c1, d1) = (mststats.totals(json.load(open(f))) for f in sys.argv[2:4])
nz = {k: d1.get(k, 0) - d0.get(k, 0) for k in set(d0) | set(d1) if d1.get(k, 0) != d0.get(k, 0)}
print("  Mustang drops during the restarts:", ", ".join("%s +%d" % kv for kv in sorted(nz.items())) or "none")
PY
for name in tcp_resets_sent tcp_resets_rx; do
	v=$(delta "$IT_TMP/before.json" "$IT_TMP/after.json" counters "$name")
	check "Mustang $name during the restarts: $v" test "$v" = 0
done
v=$(delta "$IT_TMP/before.json" "$IT_TMP/after.json" counters tcp_rx_segs)
check "Mustang's counters carried over the restarts (tcp_rx_segs +$v)" test "$v" -gt 0
check "Linux sent no RST ($((L_RST1 - L_RST0)))" test "$L_RST1" -eq "$L_RST0"
check "Linux saw no established connection reset ($((L_ERST1 - L_ERST0)))" test "$L_ERST1" -eq "$L_ERST0"
it_log "  Linux retransmitted $((L_RTX1 - L_RTX0)) segments during the restarts;" \
	"Mustang $(delta "$IT_TMP/before.json" "$IT_TMP/after.json" counters tcp_retransmits)"

# --- 4. bad invocations --------------------------------------------------------------
bad_restart() { # WANT-RC DESC ARGS...
	local want=$1 desc=$2 out rc
	shift 2
	out=$(mst_ctl "$@" 2>&1); rc=$?
	if [ "$rc" -ne "$want" ]; then fail "$desc: exit $rc, expected $want: $out"; return; fi
	if ! head -n 1 <<<"$out" | grep -q '^mustangctl: .'; then
		fail "$desc: no 'mustangctl: ...' message: $out"; return
	fi
	printf 'ok   %s -> exit %s: %s\n' "$desc" "$rc" "$(head -n 1 <<<"$out")"
}
bad_restart 2 "engine restart without an id" engine restart
bad_restart 2 "engine without a subcommand" engine
bad_restart 2 "engine stop 0 (unknown subcommand)" engine stop 0
bad_restart 2 "engine restart -1 (an option)" engine restart -1
bad_restart 2 "engine restart 0 0 (extra argument)" engine restart 0 0
bad_restart 2 "--fail-at without engine restart" status --fail-at import
bad_restart 1 "engine restart 1 (no such engine)" engine restart 1
bad_restart 1 "engine restart junk" engine restart junk
bad_restart 1 "engine restart 0junk" engine restart 0junk
bad_restart 1 "engine restart '' (empty id)" engine restart ''
bad_restart 1 "engine restart 99999999999999999999999" engine restart 99999999999999999999999
bad_restart 1 "engine restart 0 --fail-at nonsense" engine restart 0 --fail-at nonsense
bad_restart 1 "engine restart 7 --json" --json engine restart 7
bad_restart 2 "upgrade --binary relative/path" upgrade --binary relative/path
bad_restart 2 "upgrade --timeout-ms 5" upgrade --timeout-ms 5
bad_restart 1 "upgrade --binary /nonexistent" upgrade --binary /nonexistent
bad_restart 1 "upgrade --fail-at nonsense" upgrade --fail-at nonsense
if [ "$MODE" = engine ]; then
	check "still $RESTARTS restarts after the bad invocations" restarts_is "$RESTARTS"
else
	check "the same daemon after the bad invocations" \
		test "$(ctl_json status 'd["pid"]')" = "$MST_DAEMON_PID"
fi
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"

kill -TERM "$ESRV" "$USRV" "$BSRV" "$LATE" 2>/dev/null
for p in "$ESRV" "$USRV" "$LATE"; do app_wait "$p" 10 || fail "an app did not exit 0 on SIGTERM after the restarts"; done
app_wait "$BSRV" 10
check "0 apps attached at the end" wait_for 5 apps_is 0
stop_mustangd
check "mustangd exits 0 after $RESTARTS restarts (status ${MST_DAEMON_RC:-?})" test "${MST_DAEMON_RC:-1}" -eq 0
it_log "upgrade $IT_DRIVER: $BLACKOUT; $(($(date +%s) - T_START)) s"
it_end
