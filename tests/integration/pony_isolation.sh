#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony streams are independent: small RPCs on one stream keep their p99
# within 2x of the idle p99 while 16 MiB messages stream on other streams
# between the same two hosts (two mustangd joined by memif; mustang-load
# pony_rr and pony_stream against one mustang-load server).
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
p99() { "$MST_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["latency_ns"]["p99"] if d["ops"] > 1000 else 0)' "$1"; }

check "idle: pony_rr runs" rr "$IT_TMP/idle.json"
IDLE=$(p99 "$IT_TMP/idle.json" 2>/dev/null || echo 0)

# Bulk: 16 MiB messages, 2 in flight, on the sink streams, for longer
# than the measurement.
"$LOAD" run --stack mustang --ctl "$IT_TMP/b.sock" --target "$PONY_IP_A:7100" \
	--mode pony_stream --size 16777216 --conns 2 --duration $((SECS + 4)) --timeout 10 \
	--quiet --json "$IT_TMP/bulk.json" >"$IT_TMP/bulk.txt" 2>&1 &
BULK=$!
IT_BG_PIDS+=("$BULK")
sleep 1
check "busy: pony_rr runs next to the bulk transfer" rr "$IT_TMP/busy.json"
BUSY=$(p99 "$IT_TMP/busy.json" 2>/dev/null || echo 0)
wait "$BULK"
BULK_RC=$?
check "the bulk transfer finished without errors" test "$BULK_RC" -eq 0
GBPS=$("$MST_PY" -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["gbit_per_s"])' \
	"$IT_TMP/bulk.json" 2>/dev/null || echo "?")
it_log "     p99 idle $((IDLE / 1000)) us, with 16 MiB messages streaming at $GBPS Gbit/s: $((BUSY / 1000)) us"
check "both measurements have > 1000 RPCs" test "$IDLE" -gt 0 -a "$BUSY" -gt 0
check "p99 with the bulk transfer within 2x of idle" test "$BUSY" -le $((2 * IDLE))
it_end
