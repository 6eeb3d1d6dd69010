#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A measurement, not part of the default suite: engine restarts with many
# connections. CONNS Linux connections to the built-in echo (port 7) send a
# checked record every 1/RATE s each; RESTARTS `engine restart 0` in a row;
# every connection must still be open with every byte echoed, and the
# blackouts are printed (p50/max, with the state size).
#
#   upgrade_conns.sh DRIVER [CONNS] [RESTARTS] [RATE]   (defaults 10000 5 0.05)
#
# Exit 0 when every connection came through, 1 if not, 77 skip.

. "$(dirname "$0")/app_common.sh"
it_begin "${1:?usage: $0 af_xdp|af_packet [CONNS] [RESTARTS] [RATE]}"
CONNS=${2:-10000} RESTARTS=${3:-5} RATE=${4:-0.05}
UPEER="$IT_DIR/upgrade_peer.py"
ST=$IT_TMP/traffic.status
ulimit -n $((CONNS + 1024)) || skip "cannot raise the fd limit to $((CONNS + 1024))"
it_topo_daemon conns
restart_ctl() { timeout 120 "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --timeout 100000 "$@"; }
status() { "$MST_PY" -c "import json, sys; d = json.load(open(sys.argv[1])); print($1)" "$ST" 2>/dev/null; }
all_opened() { [ "$(status 'd["open"] + d["dead"]')" = "$CONNS" ]; }

app_run TRAFFIC traffic ip netns exec "$TOPO_NS_L" bash -c "ulimit -n $((CONNS + 1024)) &&
	exec '$MST_PY' '$UPEER' traffic '$TOPO_IP_M' --tcp 7:$CONNS --rate $RATE --udp-rate 0 \
	--status '$ST' --out '$IT_TMP/traffic.json' --timeout 30"
wait_for 300 all_opened || { it_log "FAIL not all $CONNS opened: $(cut -c1-300 "$ST")"; it_end; }
check "$CONNS connections open" test "$(status 'd["open"]')" = "$CONNS"
sleep 5
: >"$IT_TMP/restarts.jsonl"
for i in $(seq "$RESTARTS"); do
	out=$(restart_ctl --json engine restart 0 2>&1); rc=$?
	it_log "restart $i: $out"
	[ "$rc" -eq 0 ] || { fail "restart $i: exit $rc"; break; }
	echo "$out" | tr -d '\n' >>"$IT_TMP/restarts.jsonl"; echo >>"$IT_TMP/restarts.jsonl"
	sleep 5
done
sleep 10
kill -TERM "$TRAFFIC"
app_wait "$TRAFFIC" 120
check "traffic: every connection open, every byte echoed (exit $?)" \
	"$MST_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print("  ", {k: d[k] for k in ("conns", "open", "dead", "records_echoed", "max_echo_ms", "max_gap_ms", "errors")}, d["error_detail"][:3]); sys.exit(not d["ok"])' "$IT_TMP/traffic.json"
"$MST_PY" - "$IT_TMP/restarts.jsonl" "$CONNS" <<'PY'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if rs:
    b = sorted(r["blackout_us"] for r in rs)
    print("%s connections, %d restarts: blackout p50 %d us, max %d us; export p50 %d us, import p50 %d us, "
          "brownout p50 %d ms, state %d bytes"
          % (sys.argv[2], len(rs), statistics.median_low(b), b[-1],
             statistics.median_low([r["export_us"] for r in rs]),
             statistics.median_low([r["import_us"] for r in rs]),
             statistics.median_low([r["brownout_ms"] for r in rs]), rs[-1]["state_bytes"]))
PY
it_end
