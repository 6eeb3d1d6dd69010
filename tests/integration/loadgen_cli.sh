#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# mustang-load's command line and its kernel stack, on the loopback of a
# namespace of our own (no daemon needed):
#   - bad arguments: exit 2, a one-line error, then the usage
#   - a 1 s tcp_rr run against a kernel server writes sane JSON (counts,
#     percentiles in order, histogram adding up, CPU figures)
#   - every mode runs (tcp_rr, tcp_crr, tcp_stream, udp_rr) and reports
#     max_stall_us / max_conn_stall_us within the run; open loop keeps the
#     asked rate
#   - a server paused (SIGSTOP) for 0.6 s shows as a stall of about that
#     (how an operator sees an engine restart's blackout from the client)
#   - a refused target and a target that disappears mid-run are reported
#     (exit 1) within the timeout, never hung on

. "$(dirname "$0")/common.sh"
it_begin -

LOAD=$MST_BUILD/tools/loadgen/mustang-load
[ -x "$LOAD" ] || { it_log "FAIL $LOAD not built"; exit 1; }

# --- bad arguments ------------------------------------------------------------
# bad_args DESC ARG... : exit status 2, first stderr line "mustang-load: ..."
# (a single line), followed by the usage.
bad_args() {
	local desc=$1 rc err; shift
	err=$("$LOAD" "$@" 2>&1 >/dev/null); rc=$?
	if [ "$rc" -ne 2 ]; then fail "$desc: exit $rc, not 2"; return; fi
	if ! head -n 1 <<<"$err" | grep -q '^mustang-load: .'; then
		fail "$desc: first line is not the error: $(head -n 1 <<<"$err")"; return
	fi
	if ! sed -n 2p <<<"$err" | grep -q '^usage:'; then
		fail "$desc: the error is not one line followed by the usage"; return
	fi
	printf 'ok   %s -> exit 2: %s\n' "$desc" "$(head -n 1 <<<"$err")"
}
bad_args "no arguments"
bad_args "unknown command" jump
bad_args "no --stack" run --target 127.0.0.1:1 --mode tcp_rr
bad_args "bad --stack" run --stack bsd --target 127.0.0.1:1 --mode tcp_rr
bad_args "bad --target" run --stack kernel --target localhost --mode tcp_rr
bad_args "bad --mode" run --stack kernel --target 127.0.0.1:1 --mode tcp_ping
bad_args "--conns 0" run --stack kernel --target 127.0.0.1:1 --mode tcp_rr --conns 0
bad_args "--duration and --requests" run --stack kernel --target 127.0.0.1:1 --mode tcp_rr \
	--duration 1 --requests 5
bad_args "missing value" run --stack kernel --target 127.0.0.1:1 --mode tcp_rr --size
bad_args "serve without --port" serve --stack kernel
check "--help exits 0 with the usage" bash -c "'$LOAD' --help | grep -q '^usage:'"

# --- a namespace with only loopback ---------------------------------------------
NS="mst-$$-lgcli"
ip netns add "$NS" || { it_log "FAIL cannot create $NS"; exit 1; }
MST_NETNS_CREATED+=("$NS")
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }

# not through in_ns: $! must be the server itself (ip netns exec execs it)
ip netns exec "$NS" "$LOAD" serve --stack kernel --port 7000 --threads 2 >"$IT_TMP/srv.out" 2>&1 &
SRV=$!
IT_BG_PIDS+=("$SRV")
for _ in $(seq 50); do grep -q serving "$IT_TMP/srv.out" && break; sleep 0.1; done
check "serve prints its ports" grep -q "tcp echo on 7000, tcp sink on 7001" "$IT_TMP/srv.out"

J=$IT_TMP/rr.json
check "tcp_rr 1 s, 4 conns, 2 threads: exit 0" \
	timeout 20 ip netns exec "$NS" "$LOAD" run --stack kernel --target 127.0.0.1:7000 \
	--mode tcp_rr --conns 4 --threads 2 --duration 1 --json "$J" --quiet
check "the JSON is sane" "$MST_PY" - "$J" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
L = d["latency_ns"]
ok = True
def want(cond, what):
    global ok
    if not cond:
        print("  JSON check failed:", what); ok = False
want(d["tool"] == "mustang-load" and d["args"]["mode"] == "tcp_rr", "tool/mode")
want(d["args"]["stack"] == "kernel" and d["args"]["conns"] == 4, "args")
want(0.9 <= d["elapsed_s"] <= 1.5, f"elapsed {d['elapsed_s']}")
want(d["ops"] > 100, f"ops {d['ops']}")
want(abs(d["ops_per_s"] - d["ops"] / d["elapsed_s"]) < 1 + d["ops_per_s"] * 1e-6, "ops_per_s")
want(d["bytes_tx"] >= 64 * d["ops"] and d["bytes_rx"] >= 64 * d["ops"], "bytes")
want(d["gbit_per_s"] > 0, "gbit_per_s")
want(L["count"] == d["ops"], f"latency count {L['count']} != ops {d['ops']}")
want(0 < L["min"] <= L["p50"] <= L["p90"] <= L["p99"] <= L["p99.9"] <= L["max"], "percentiles in order")
want(L["max"] < 10e9, "max latency under 10 s")
want(sum(c for _, _, c in L["histogram"]) == L["count"], "histogram adds up")
want(all(lo <= hi for lo, hi, _ in L["histogram"]), "bucket bounds")
want(d["errors"]["total"] == 0, f"errors {d['errors']}")
# stalls: in closed loop a connection's gap between two completions is the
# latency of the second op, so its longest gap is at least the median; no
# gap is longer than the run; the gap across all connections is at most
# the longest one of a connection
S, SC = d["max_stall_us"], d["max_conn_stall_us"]
want(0 < S <= d["elapsed_s"] * 1e6, f"max_stall_us {S} not in (0, elapsed]")
want(L["p50"] / 1e3 * 0.98 <= SC <= d["elapsed_s"] * 1e6, f"max_conn_stall_us {SC} not in [p50, elapsed]")
want(S <= SC * 1.01, f"max_stall_us {S} > max_conn_stall_us {SC}")
c = d["cpu"]
want(c["ncpu"] >= 1 and c["machine_busy_s"] > 0 and c["machine_total_s"] >= c["machine_busy_s"], "cpu")
want(c["loadgen_user_s"] + c["loadgen_sys_s"] > 0, "loadgen cpu")
want(c["machine_cpu_s_per_mop"] > 0, "cpu per mop")
sys.exit(0 if ok else 1)
PY
check "the summary table is printed" bash -c "timeout 20 ip netns exec '$NS' '$LOAD' run \
	--stack kernel --target 127.0.0.1:7000 --mode tcp_rr --requests 1000 >'$IT_TMP/summary' &&
	grep -q 'latency (us) *p50' '$IT_TMP/summary' &&
	grep -Eq '^  stall +max [0-9.]+ us without a completed op \(one conn: [0-9.]+ us\)' '$IT_TMP/summary'"

for m in tcp_crr tcp_stream udp_rr; do
	check "$m 0.5 s: exit 0, ops > 0" bash -c "timeout 20 ip netns exec '$NS' '$LOAD' run \
		--stack kernel --target 127.0.0.1:7000 --mode $m --conns 2 --duration 0.5 \
		--json '$IT_TMP/$m.json' --quiet >/dev/null &&
		'$MST_PY' -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d[\"ops\"] == 0)' \
		'$IT_TMP/$m.json'"
	check "$m: 0 < max_stall_us <= max_conn_stall_us <= the run" "$MST_PY" -c '
import json, sys
d = json.load(open(sys.argv[1])); S, SC, E = d["max_stall_us"], d["max_conn_stall_us"], d["elapsed_s"] * 1e6
print("  ", sys.argv[1].rsplit("/", 1)[-1], "max_stall_us", S, "max_conn_stall_us", SC)
sys.exit(not (0 < S <= SC * 1.01 and SC <= E))' "$IT_TMP/$m.json"
done
check "open loop 2000/s for 1 s: 1800..2200 ops, latency from the schedule" bash -c "
	timeout 20 ip netns exec '$NS' '$LOAD' run --stack kernel --target 127.0.0.1:7000 \
		--mode tcp_rr --conns 4 --rate 2000 --duration 1 --json '$IT_TMP/open.json' --quiet \
		>/dev/null &&
	'$MST_PY' -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not 1800 <= d[\"ops\"] <= 2200)' \
		'$IT_TMP/open.json'"

# --- a paused server is a stall -----------------------------------------------------
ip netns exec "$NS" "$LOAD" run --stack kernel --target 127.0.0.1:7000 --mode tcp_rr \
	--conns 2 --duration 3 --timeout 3 --json "$IT_TMP/pause.json" --quiet >/dev/null 2>&1 &
CLI=$!
IT_BG_PIDS+=("$CLI")
sleep 1
kill -STOP "$SRV"; sleep 0.6; kill -CONT "$SRV"
mst_wait_exit "$CLI" 15
wait "$CLI"; rc=$?
check "paused server: the run ends well (exit $rc)" test "$rc" -eq 0
check "paused server 0.6 s: max_stall_us 0.55..2 s, the same on a connection" "$MST_PY" -c '
import json, sys
d = json.load(open(sys.argv[1])); S, SC = d["max_stall_us"], d["max_conn_stall_us"]
print("   max_stall_us", S, "max_conn_stall_us", SC, "p99 us", d["latency_ns"]["p99"] / 1e3)
sys.exit(not (550e3 <= S <= 2e6 and S <= SC * 1.01 and SC <= d["elapsed_s"] * 1e6))' \
	"$IT_TMP/pause.json"

# --- refused and vanishing targets ----------------------------------------------
t0=$(date +%s)
out=$(timeout 20 ip netns exec "$NS" "$LOAD" run --stack kernel --target 127.0.0.1:7999 \
	--mode tcp_rr --duration 5 --timeout 1 2>&1); rc=$?
t1=$(date +%s)
check "refused target: exit 1" test "$rc" -eq 1
check "refused target: reported as refused" grep -q "refused" <<<"$out"
check "refused target: gives up in under 5 s ($((t1 - t0)) s)" test $((t1 - t0)) -lt 5

ip netns exec "$NS" "$LOAD" run --stack kernel --target 127.0.0.1:7000 --mode tcp_rr \
	--conns 2 --duration 30 --timeout 1 --quiet >"$IT_TMP/vanish.out" 2>&1 &
CLI=$!
IT_BG_PIDS+=("$CLI")
sleep 1
kill "$SRV"; wait "$SRV" 2>/dev/null
t0=$(date +%s)
mst_wait_exit "$CLI" 15
wait "$CLI"; rc=$?
t1=$(date +%s)
check "vanished target: the client ends on its own ($((t1 - t0)) s after)" test $((t1 - t0)) -lt 10
check "vanished target: exit 1" test "$rc" -eq 1
check "vanished target: errors reported" grep -Eq "errors +[1-9]" "$IT_TMP/vanish.out"

it_end
