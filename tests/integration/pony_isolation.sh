#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony streams are independent: small RPCs on one stream are not stuck
# behind 16 MiB messages streaming on other streams between the same two
# hosts (two mustangd joined by memif; mustang-load pony_rr and
# pony_stream against one mustang-load server): the RPCs' median latency
# stays far below one big message's transfer time (see below).
#
#   pony_isolation.sh      MST_ISO_SECS seconds per measurement (default 4)
set -u
. "$(dirname "$0")/pony_common.sh"
SECS=${MST_ISO_SECS:-4}
LOAD=$MST_BUILD/tools/loadgen/mustang-load
[ -x "$LOAD" ] || { it_log "FAIL $LOAD not built"; exit 1; }

pony_begin -
pony_memif
"$LOAD" serve --stack mustang --ctl "$IT_TMP/a.sock" --port 7100 >"$IT_TMP/srv.out" 2>&1 &
IT_BG_PIDS+=("$!")
for i in $(seq 50); do
	grep -q "pony echo" "$IT_TMP/srv.out" && break
	sleep 0.1
done
check "the mustang-load server answers Pony" grep -q "pony echo" "$IT_TMP/srv.out"

rr() { # JSON: pony_rr, 64 B, one request in flight, for SECS
	"$LOAD" run --stack mustang --ctl "$IT_TMP/b.sock" --target "$PONY_IP_A:7100" \
		--mode pony_rr --size 64 --conns 1 --duration "$SECS" --warmup 1 --timeout 5 \
		--quiet --json "$1" >"$1.txt" 2>&1
}
# jget FILE EXPR: a value from a mustang-load JSON report (d), 0 if absent.
jget() { "$MST_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(int('"$2"'))' "$1" 2>/dev/null || echo 0; }

# What is measured, and why no retry is needed. Head-of-line blocking
# means an RPC waits for the 16 MiB message ahead of it: its MEDIAN
# latency then grows to about half a message's transfer time or more
# (msg_ns = 16 MiB at the bulk's own measured rate: ~33 ms at 4 Gbit/s).
# Without it, the median stays at a few hundred microseconds even on two
# busy shared cores. The check is median < msg_ns / 8: a 4x margin below
# the blocked case, scaled by the rate the transfer actually reached (a
# slow, noisy run has a longer msg_ns too), and a median over thousands of
# RPCs is not moved by the scheduling hiccups that can double a p99 (the
# old p99-within-2x-of-idle check needed 3 attempts). p99s are printed.
rr "$IT_TMP/idle.json"
"$LOAD" run --stack mustang --ctl "$IT_TMP/b.sock" --target "$PONY_IP_A:7100" \
	--mode pony_stream --size 16777216 --conns 2 --duration $((SECS + 4)) --timeout 10 \
	--quiet --json "$IT_TMP/bulk.json" >"$IT_TMP/bulk.txt" 2>&1 &
BULK=$!
IT_BG_PIDS+=("$BULK")
sleep 1
rr "$IT_TMP/busy.json"
wait "$BULK"
BULK_RC=$?
IDLE_OPS=$(jget "$IT_TMP/idle.json" 'd["ops"]') BUSY_OPS=$(jget "$IT_TMP/busy.json" 'd["ops"]')
IDLE50=$(jget "$IT_TMP/idle.json" 'd["latency_ns"]["p50"]') IDLE99=$(jget "$IT_TMP/idle.json" 'd["latency_ns"]["p99"]')
BUSY50=$(jget "$IT_TMP/busy.json" 'd["latency_ns"]["p50"]') BUSY99=$(jget "$IT_TMP/busy.json" 'd["latency_ns"]["p99"]')
MBPS=$(jget "$IT_TMP/bulk.json" 'd["gbit_per_s"] * 1000')
MSG_NS=0
[ "$MBPS" -gt 0 ] && MSG_NS=$((16777216 * 8 * 1000 / MBPS))
it_log "     idle: p50 $((IDLE50 / 1000)) us, p99 $((IDLE99 / 1000)) us ($IDLE_OPS RPCs)"
it_log "     with 16 MiB messages at $MBPS Mbit/s (one message = $((MSG_NS / 1000000)) ms):" \
	"p50 $((BUSY50 / 1000)) us, p99 $((BUSY99 / 1000)) us ($BUSY_OPS RPCs)"
check "pony_rr ran idle and next to the bulk transfer (> 1000 RPCs each)" \
	test "$IDLE_OPS" -gt 1000 -a "$BUSY_OPS" -gt 1000
check "the bulk transfer finished without errors and moved data" \
	test "$BULK_RC" -eq 0 -a "$MSG_NS" -gt 0
check "no head-of-line blocking: p50 next to the bulk ($((BUSY50 / 1000)) us) < 1/8 of one 16 MiB message ($((MSG_NS / 8000)) us)" \
	test "$BUSY50" -gt 0 -a "$BUSY50" -lt $((MSG_NS / 8))
it_end
