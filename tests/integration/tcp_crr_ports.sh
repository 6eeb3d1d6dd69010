#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Active opens do not run dry while their ports are only in TIME_WAIT
# (issue 18): two mustangd joined by memif, the client daemon B with a
# 64-port ephemeral range (--tcp-ephemeral-ports) and a 1 ms TIME_WAIT
# reuse delay; mustang-load tcp_crr (connect, 64 B request/response, the
# client closes first: TIME_WAIT on B) for MST_CRR_SECS (default 3) seconds,
# twice in a row. Both runs: thousands of connections through 64 ports,
# no error; B's counters say every port came back by RFC 6191 reuse
# (tcp_tw_reused_connect), none was refused (tcp_connect_no_port) and the
# pool was never the reason (tcp_tw_pool_recycled).
#
#   tcp_crr_ports.sh
set -u
. "$(dirname "$0")/pony_common.sh"
SECS=${MST_CRR_SECS:-3}
LOAD=$MST_BUILD/tools/loadgen/mustang-load
[ -x "$LOAD" ] || { it_log "FAIL $LOAD not built"; exit 1; }

it_begin -
pony_daemon a "" "memif:socket=$IT_TMP/memif.sock,role=server" "$PONY_IP_A"
pony_daemon b "" "memif:socket=$IT_TMP/memif.sock,role=client" "$PONY_IP_B" \
	--tcp-ephemeral-ports 40000-40063 --tcp-tw-reuse-delay-ms 1
for i in $(seq 50); do
	ctl_a ports --json 2>/dev/null | grep -q '"link":"up"' &&
		ctl_b ports --json 2>/dev/null | grep -q '"link":"up"' && break
	sleep 0.1
done
"$LOAD" serve --stack mustang --ctl "$IT_TMP/a.sock" --port 7100 --only sockets \
	>"$IT_TMP/srv.out" 2>&1 &
IT_BG_PIDS+=("$!")
sleep 1

crr() { # N: one tcp_crr run; prints its ops, fails on any error
	"$LOAD" run --stack mustang --ctl "$IT_TMP/b.sock" --target "$PONY_IP_A:7100" \
		--mode tcp_crr --size 64 --conns 8 --duration "$SECS" --timeout 5 \
		--quiet --json "$IT_TMP/crr$1.json" >"$IT_TMP/crr$1.txt" 2>&1
	"$MST_PY" - "$IT_TMP/crr$1.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("     %d connections, %.0f/s, %d errors %s" % (d["ops"], d["ops_per_s"], d["errors"]["total"],
      {k: v for k, v in d["errors"].items() if k != "total" and v}))
sys.exit(0 if d["errors"]["total"] == 0 and d["ops"] > 4 * 64 else 1)
EOF
}

check "tcp_crr run 1: many more connections than 64 ports, no error" crr 1
check "tcp_crr run 2, right after: the same" crr 2
REUSED=$(pony_counter "$IT_TMP/b.sock" tcp_tw_reused_connect)
OPENS=$(pony_counter "$IT_TMP/b.sock" tcp_active_opens)
it_log "     B: $OPENS active opens, $REUSED TIME_WAIT tuples reused"
check "B reused its TIME_WAIT tuples (all but the first 64 opens, give or take the range's tail)" \
	test "$REUSED" -ge $((OPENS - 64 * 2))
check "B refused no connect (tcp_connect_no_port 0)" \
	test "$(pony_counter "$IT_TMP/b.sock" tcp_connect_no_port)" -eq 0
check "B's pool never had to end a TIME_WAIT (tcp_tw_pool_recycled 0)" \
	test "$(pony_counter "$IT_TMP/b.sock" tcp_tw_pool_recycled)" -eq 0
it_end
