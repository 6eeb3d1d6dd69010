#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Debian's redis-server, unmodified, on Mustang through LD_PRELOAD
# (libmustang-preload.so), driven from the Linux namespace:
#   redis-cli        PING, SET then GET of a 3 KB random value, a 1 MiB value
#                    round trip (sha256 compared), 2000 pipelined INCRs
#                    (ends at 2000), CLIENT LIST shows the Linux peer address
#                    (getpeername)
#   redis-benchmark  SET/GET, 50 clients, 40000 requests each: all complete,
#                    keys land in the database (3-byte values)
#   SHUTDOWN         redis-server exits 0; the app detaches from mustangd
#
#   preload_redis.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip (redis not installed).

. "$(dirname "$0")/preload_common.sh"
preload_begin "${1:?usage: $0 af_xdp|af_packet}" redis-server redis-cli redis-benchmark
preload_setup predis
IP=$TOPO_IP_M
app_run SRV redis "${ON_MST[@]}" redis-server --bind "$IP" --port 6379 --protected-mode no \
	--save '' --appendonly no --daemonize no --dir "$IT_TMP" --logfile ''
if ! wait_for 15 port_open "$IP" 6379; then
	it_log "FAIL redis-server did not listen on $IP:6379 through Mustang; its output:"
	sed 's/^/  | /' "$IT_TMP/redis.out"
	exit 1
fi
check "redis-server is attached to mustangd" wait_for 5 apps_is 1

R=(in_linux redis-cli -h "$IP" -p 6379)
check "PING -> PONG" test "$("${R[@]}" ping)" = PONG
val=$(head -c 2250 /dev/urandom | base64 -w0)
check "SET k1 <3 KB> -> OK" test "$("${R[@]}" set k1 "$val")" = OK
check "GET k1 returns the value set" test "$("${R[@]}" get k1)" = "$val"
head -c 1048576 /dev/urandom | base64 -w0 >"$IT_TMP/big"
check "SET big <1.4 MB> -> OK" test "$("${R[@]}" -x set big <"$IT_TMP/big")" = OK
check "GET big returns the same bytes" test \
	"$("${R[@]}" --raw get big | head -c -1 | sha256sum)" = "$(sha256sum <"$IT_TMP/big")"
for _ in $(seq 2000); do echo "INCR ctr"; done >"$IT_TMP/incr"
last=$("${R[@]}" <"$IT_TMP/incr" | tail -n 1)
check "2000 pipelined INCRs end at 2000 (got $last)" test "$last" = 2000
check "CLIENT LIST shows the Linux peer ($TOPO_IP_L)" \
	grep -q "addr=$TOPO_IP_L:" <<<"$("${R[@]}" client list)"

out=$(in_linux timeout 60 redis-benchmark -h "$IP" -p 6379 -c 50 -n 40000 -t set,get -r 1000 -q 2>&1)
echo "$out" | tr '\r' '\n' | grep -E 'requests per second' | sed 's/^/  bench | /'
check "redis-benchmark: SET finished" grep -q 'SET: .*requests per second' <<<"$(tr '\r' '\n' <<<"$out")"
check "redis-benchmark: GET finished" grep -q 'GET: .*requests per second' <<<"$(tr '\r' '\n' <<<"$out")"
keys=$("${R[@]}" dbsize)
check "benchmark keys are in the database (dbsize $keys > 3)" test "${keys:-0}" -gt 3
check "a benchmark key holds its 3-byte value (STRLEN)" \
	test "$("${R[@]}" strlen "key:000000000001")" = 3

"${R[@]}" shutdown nosave >/dev/null 2>&1
app_wait "$SRV" 10
check "redis-server exited 0" test $? -eq 0
check "0 apps attached at the end" wait_for 5 apps_is 0
check "no preload warning from redis" sh -c "! grep -q 'mustang-preload' '$IT_TMP/redis.out'"
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
