#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Prometheus metrics (docs/observability.md): mustangd with --metrics-listen
# in its namespace; after pings and a TCP transfer from Linux:
#   - curl GET /metrics and `mustangctl metrics` both pass the Prometheus
#     project's `promtool check metrics` (Debian's prometheus package) and
#     a strict checker of the text format (promcheck.py)
#   - every counter and drop reason `mustangctl stats --json` names is
#     there per engine, with the value stats gave (between two snapshots)
#   - the histograms moved: TCP RTT samples, engine poll times
#   - /other is 404, POST is 405, garbage gets an answer or a close, a
#     client that sends nothing does not stop the next scrape
#   - `mustangctl metrics --json` is a usage error (2)
#   - `mustangctl top --iterations 2` prints two blocks of per-engine rates
#     (engine 0 receiving while Linux pings it)
#
#   metrics.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/common.sh"
it_begin "${1:?usage: $0 af_xdp|af_packet}"
S=$IT_TMP
ADDR=127.0.0.1:9464
URL=http://$ADDR/metrics

it_topo_daemon metrics --metrics-listen "$ADDR"
in_mst() { ip netns exec "$TOPO_NS_M" "$@"; }
# http_is CODE URL [curl args] : the daemon answers URL with status CODE.
http_is() {
	local want=$1 url=$2
	shift 2
	[ "$(in_mst curl -sS --max-time 5 -o "${HTTP_OUT:-/dev/null}" -w '%{http_code}' "$@" "$url")" = "$want" ]
}
# promtool_ok FILE : promtool check metrics passes (its findings printed).
promtool_ok() {
	local out
	out=$(promtool check metrics <"$1" 2>&1) && return 0
	printf '%s\n' "$out" | head -20 | sed 's/^/  promtool | /'
	return 1
}

check "ping Mustang 5/5" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 5 -i 0.05 -W 2 $TOPO_IP_M | grep -q ' 5 received'"
check "TCP echo through Mustang" in_linux "$MST_PY" "$IT_DIR/flows_peer.py" clean "$TOPO_IP_M" 7 100000
snapshot "$S/s0"
HTTP_OUT=$S/http.txt check "GET /metrics answers 200" http_is 200 "$URL"
mst_ctl metrics >"$S/ctl.txt" || fail "mustangctl metrics"
snapshot "$S/s1"

if command -v promtool >/dev/null; then
	check "promtool check metrics: the HTTP scrape" promtool_ok "$S/http.txt"
	check "promtool check metrics: mustangctl metrics" promtool_ok "$S/ctl.txt"
else
	it_log "note: promtool absent (Debian package prometheus): the strict checker only"
fi
check "strict format check: the HTTP scrape" "$MST_PY" "$IT_DIR/promcheck.py" "$S/http.txt"
check "strict format check: mustangctl metrics" "$MST_PY" "$IT_DIR/promcheck.py" "$S/ctl.txt"

check "every counter and drop reason of mustangctl stats, same values" "$MST_PY" -c '
import json, re, sys
s0, s1 = (json.load(open(p))["engines"][0] for p in sys.argv[1:3])
text = open(sys.argv[3]).read()
vals = {}
for line in text.splitlines():
    m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
    if m:
        vals[(m.group(1), m.group(2))] = float(m.group(3))
bad = []
for k, v0 in s0["counters"].items():
    v = vals.get(("mustang_%s_total" % k, "engine=\"0\""))
    if v is None or not v0 <= v <= s1["counters"][k]:
        bad.append((k, v0, v, s1["counters"][k]))
for k, v0 in s0["drops"].items():
    v = vals.get(("mustang_drops_total", "engine=\"0\",reason=\"%s\"" % k))
    if v is None or not v0 <= v <= s1["drops"][k]:
        bad.append((k, v0, v, s1["drops"][k]))
print("  %d counters, %d drop reasons" % (len(s0["counters"]), len(s0["drops"])))
if bad:
    print("  mismatched:", bad[:10])
sys.exit(1 if bad else 0)' "$S/s0" "$S/s1" "$S/http.txt"
hist_count() { sed -n "s/^$1_count{engine=\"0\"} //p" "$S/http.txt"; }
check "TCP RTT histogram has samples ($(hist_count mustang_tcp_rtt_seconds))" \
	test "$(hist_count mustang_tcp_rtt_seconds)" -gt 0
check "engine poll-time histogram has samples ($(hist_count mustang_engine_poll_seconds))" \
	test "$(hist_count mustang_engine_poll_seconds)" -gt 0
check "port counters: frames received" grep -Eq '^mustang_port_ipackets_total\{port="[^"]+"\} [1-9]' "$S/http.txt"

check "GET /other is 404" http_is 404 "http://$ADDR/other"
check "POST is 405" http_is 405 "$URL" -X POST
in_mst "$MST_PY" -c "
import os, socket
s = socket.create_connection(('${ADDR%:*}', ${ADDR#*:}))
s.sendall(os.urandom(20000))
try:
    s.recv(100)
except OSError:
    pass" || fail "garbage request: the connection misbehaved"
in_mst "$MST_PY" -c "
import socket, time
s = socket.create_connection(('${ADDR%:*}', ${ADDR#*:}))
time.sleep(6)" &
STALL=$!
IT_BG_PIDS+=("$STALL")
sleep 0.3
check "a silent client does not stop the next scrape" http_is 200 "$URL"
# mustangctl top, not a tty: --iterations blocks of per-engine rates.
ip netns exec "$TOPO_NS_L" ping -n -q -c 40 -i 0.05 "$TOPO_IP_M" >/dev/null 2>&1 &
PING=$!
IT_BG_PIDS+=("$PING")
mst_ctl top --iterations 2 >"$S/top.out" 2>&1
check "mustangctl top --iterations 2 exits 0 with 2 blocks" \
	test "$?" = 0 -a "$(grep -c '^mustang top:' "$S/top.out")" = 2
check "mustangctl top shows engine 0 receiving (ping running)" \
	awk '$1 == "0" && $3 > 0 { ok = 1 } END { exit !ok }' "$S/top.out"
sed 's/^/  top | /' "$S/top.out"
wait "$PING" 2>/dev/null
check "mustangctl top --json is a usage error (2)" sh -c "'$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' top --json 2>/dev/null; [ \$? = 2 ]"
check "mustangctl metrics --json is a usage error (2)" sh -c "'$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' metrics --json 2>/dev/null; [ \$? = 2 ]"
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
