#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# A hostile Pony app cannot hurt the daemon or another app. While a
# well-behaved client on B exchanges messages with pony_echo on A,
# pony_hostile (pony_hostile.c) on A posts random Pony commands (bad
# offsets, lengths, keys, buffer ids, services, sockets), moves its record
# rings' rx_head to random values and writes random bytes over its Pony
# arena; a second run ends with abort() (a crash with ops in flight).
# Then: both daemons still answer, the good exchange was exact, app_bad_cmd
# and app_bad_fifo moved on A, and the hostile app is detached.
#
#   pony_hostile.sh DRIVER
set -u
DRV=${1:?usage: $0 af_xdp|af_packet}
. "$(dirname "$0")/pony_common.sh"
HOSTILE=$MST_BUILD/tests/integration/pony_hostile

pony_begin "$DRV"
[ -x "$HOSTILE" ] || { it_log "FAIL $HOSTILE not built"; exit 1; }
pony_veth
pony_server SRV echo -s 7 || exit 1
MST_DAEMON_CTL=$IT_TMP/a.sock
snapshot "$IT_TMP/s0"

apps_a() { [ "$("$MUSTANGCTL" --ctl "$IT_TMP/a.sock" status --json | "$MST_PY" -c \
	'import json,sys; print(json.load(sys.stdin)["apps"])')" = "$1" ]; }

"$HOSTILE" --ctl "$IT_TMP/a.sock" --peer "$PONY_IP_B" --seconds 4 --seed "$$" \
	>"$IT_TMP/hostile.out" 2>&1 &
BAD=$!
IT_BG_PIDS+=("$BAD")
check "good exchange during the attack: 1000 messages up to 1 MiB" \
	pony_client good --client "$PONY_IP_A:7" --count 1000 --max-size 1M
mst_wait_exit "$BAD" 30
wait "$BAD"
rc=$?
sed 's/^/  | /' "$IT_TMP/hostile.out"
check "pony_hostile attached and ran (exit $rc)" test "$rc" -eq 0

"$HOSTILE" --ctl "$IT_TMP/a.sock" --peer "$PONY_IP_B" --seconds 2 --seed $(($$ + 1)) --crash \
	>"$IT_TMP/crash.out" 2>&1
rc=$?
check "pony_hostile --crash died by a signal (exit $rc)" test "$rc" -gt 128
check "daemon A still answers" quiet ctl_a status
check "daemon B still answers" quiet ctl_b status
snapshot "$IT_TMP/s1"
for d in app_bad_cmd app_bad_fifo; do
	n=$(delta "$IT_TMP/s0" "$IT_TMP/s1" drops "$d")
	check "drops on A: $d moved ($n)" test "${n:-0}" -gt 0 2>/dev/null
done
check "the hostile apps are gone: 1 app on A" bash -c "for i in \$(seq 50); do \
	'$MUSTANGCTL' --ctl '$IT_TMP/a.sock' status | grep -q '^apps: 1\$' && exit 0; sleep 0.1; done; exit 1"
check "the good app still echoes afterwards (200 messages)" \
	pony_client after --client "$PONY_IP_A:7" --count 200 --max-size 64K
check "pony_echo server SRV exits 0 on SIGTERM" pony_stop "$SRV"
it_end
