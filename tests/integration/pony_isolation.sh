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

# One attempt: idle p99, then p99 next to a 16 MiB transfer (2 in flight,
# on the sink streams, for longer than the measurement). On two shared
# cores a scheduling hiccup alone can double a 4-second p99, so the
# property is checked over up to 3 attempts: head-of-line blocking behind
# the big messages (p99 in milliseconds) fails all three.
attempt() { # N: sets IDLE, BUSY, BULK_RC, GBPS
	IDLE=0 BUSY=0 BULK_RC=1
	rr "$IT_TMP/idle$1.json" || return 1
	IDLE=$(p99 "$IT_TMP/idle$1.json" 2>/dev/null || echo 0)
	"$LOAD" run --stack mustang --ctl "$IT_TMP/b.sock" --target "$PONY_IP_A:7100" \
		--mode pony_stream --size 16777216 --conns 2 --duration $((SECS + 4)) --timeout 10 \
		--quiet --json "$IT_TMP/bulk$1.json" >"$IT_TMP/bulk$1.txt" 2>&1 &
	local bulk=$!
	IT_BG_PIDS+=("$bulk")
	sleep 1
	rr "$IT_TMP/busy$1.json"
	BUSY=$(p99 "$IT_TMP/busy$1.json" 2>/dev/null || echo 0)
	wait "$bulk"
	BULK_RC=$?
	GBPS=$("$MST_PY" -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["gbit_per_s"])' \
		"$IT_TMP/bulk$1.json" 2>/dev/null || echo "?")
	it_log "     attempt $1: p99 idle $((IDLE / 1000)) us, with 16 MiB messages streaming at $GBPS Gbit/s: $((BUSY / 1000)) us"
	[ "$BULK_RC" -eq 0 ] && [ "$IDLE" -gt 0 ] && [ "$BUSY" -gt 0 ] && [ "$BUSY" -le $((2 * IDLE)) ]
}

OK=0 IDLE=0 BUSY=0 BULK_RC=1
for n in 1 2 3; do
	if attempt "$n"; then OK=$n; break; fi
done
check "pony_rr ran idle and next to the bulk transfer (> 1000 RPCs each)" test "$IDLE" -gt 0 -a "$BUSY" -gt 0
check "the bulk transfer finished without errors" test "$BULK_RC" -eq 0
check "p99 with the bulk transfer within 2x of idle (attempt $OK of 3)" test "$OK" -gt 0
it_end
