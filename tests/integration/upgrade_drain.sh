#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A live upgrade while an exited app's closed connections are still
# finishing ("draining": the engine sends what the app wrote before it
# exited, docs/upgrade.md). The upgrade waits for them, at most 5 s more,
# then resets what is left and goes on; it never fails for them.
#   A Linux receiver with a 4 KiB receive buffer that reads nothing for a
#   while; upgrade_client flood (an app on Mustang) sends it 192 KiB,
#   closes and exits at once, so most of the bytes wait in the app's
#   segment.
#   1. `mustangctl engine restart 0` right after the app exits, the
#      receiver reading after 2 s: ok, it waited (drain_wait_ms >= 300),
#      every byte arrived in order, the connection closed with a FIN.
#   2. `mustangctl upgrade` right after, the receiver reading nothing for
#      12 s: ok after the 5 s bound (drain_wait_ms 4000..9000),
#      app_drain_resets 1 in the new daemon, the receiver sees the reset.
#   3. an upgrade with nothing draining does not wait (drain_wait_ms 0).
#
#   upgrade_drain.sh DRIVER   (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
UCLI=$APP_TESTS/upgrade_client
[ -x "$UCLI" ] || { it_log "FAIL $UCLI not built"; exit 1; }
BYTES=196608
T_START=$(date +%s)
app_setup drain
ip=$TOPO_IP_L

# slow_reader PORT DELAY NAME: accepts one connection with a 4 KiB receive
# buffer, reads nothing for DELAY s, then everything until EOF; prints one
# JSON line (bytes, in order, how it ended)
cat >"$IT_TMP/reader.py" <<'PY'
import json, socket, sys, time
port, delay, ready = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
ls.bind(("0.0.0.0", port))
ls.listen(1)
open(ready, "w").close()
ls.settimeout(30)
c, _ = ls.accept()
time.sleep(delay)
c.settimeout(30)
n, good, end = 0, True, "eof"
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        good = good and all(x == (n + i) * 7 % 251 for i, x in enumerate(b))
        n += len(b)
except ConnectionResetError:
    end = "reset"
except socket.timeout:
    end = "timeout"
print(json.dumps({"bytes": n, "in_order": good, "end": end}))
PY
reader() { # VAR NAME PORT DELAY
	rm -f "$IT_TMP/$2.ready"
	app_run "$1" "$2" ip netns exec "$TOPO_NS_L" "$MST_PY" "$IT_TMP/reader.py" "$3" "$4" "$IT_TMP/$2.ready"
	wait_for 10 test -f "$IT_TMP/$2.ready" || { fail "$2 did not listen"; return 1; }
}
flood() { # PORT: the app sends, closes, exits
	"$UCLI" flood "$ip:$1" "$BYTES" --ctl "$MST_DAEMON_CTL" >"$IT_TMP/flood.out" 2>&1
}
jget() { "$MST_PY" -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))' "$1" "$2"; }
drain_resets() { ctl_json stats 'd["totals"]["counters"].get("app_drain_resets", 0)'; }

# --- 1. an engine restart waits for the drain -------------------------------------
# (engine restart here: its brownout is short, so the receiver, which
# reads after 2 s, is still stuck when the export is first refused)
reader R1 slow 7101 2 || it_end
check "the app sends $BYTES bytes, closes and exits" flood 7101
out=$(timeout 60 "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --json engine restart 0 2>&1); rc=$?
it_log "  engine restart: $out"
check "engine restart while an exited app's connection drains: ok (exit $rc)" test "$rc" -eq 0
check "it waited for the drain (drain_wait_ms $(jget "$out" drain_wait_ms) >= 300)" \
	test "$(jget "$out" drain_wait_ms)" -ge 300
app_wait "$R1" 40
res=$(tail -n 1 "$IT_TMP/slow.out")
check "the receiver got every byte in order, then a FIN: $res" \
	test "$res" = "{\"bytes\": $BYTES, \"in_order\": true, \"end\": \"eof\"}"
check "no drain reset" test "$(drain_resets)" = 0

# --- 2. a process upgrade waits at most 5 s more, then resets -------------------
reader R2 stuck 7102 12 || it_end
check "the app sends $BYTES bytes, closes and exits" flood 7102
t0=$(date +%s%3N)
# not in $(...): upgrade_mustangd sets MST_DAEMON_PID in this shell
upgrade_mustangd >"$IT_TMP/upgrade.out"; rc=$?
out=$(tail -n 1 "$IT_TMP/upgrade.out")
it_log "  upgrade: $out ($(($(date +%s%3N) - t0)) ms)"
check "upgrade while a connection cannot finish: ok (exit $rc)" test "$rc" -eq 0
w=$(jget "$out" drain_wait_ms)
check "it waited the bound (drain_wait_ms $w in 4000..9000)" test "$w" -ge 4000 -a "$w" -le 9000
check "app_drain_resets counted it (the new daemon carries the counter: $(drain_resets))" \
	test "$(drain_resets)" -eq 1
app_wait "$R2" 40
res=$(tail -n 1 "$IT_TMP/stuck.out")
check "the receiver saw the reset: $res" grep -q '"end": "reset"' <<<"$res"

# --- 3. nothing draining: no wait --------------------------------------------------
upgrade_mustangd >"$IT_TMP/upgrade.out"; rc=$?
out=$(tail -n 1 "$IT_TMP/upgrade.out")
check "upgrade with nothing draining: ok, drain_wait_ms 0 ($out)" \
	test "$rc" -eq 0 -a "$(jget "$out" drain_wait_ms)" = 0

stop_mustangd
check "mustangd exits 0 (status ${MST_DAEMON_RC:-?})" test "${MST_DAEMON_RC:-1}" -eq 0
it_log "upgrade-drain: $(($(date +%s) - T_START)) s"
it_end
