#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The same unmodified programs on Mustang (LD_PRELOAD=libmustang-preload.so)
# and on the Linux kernel, in one run, each driven from a Linux namespace
# over its own veth pair (checksum offloads off on both, as in the tests):
#   redis-server   redis-benchmark -c 50 -t set,get (no pipelining)
#   nginx          1 process, wrk -t 2 -c 64, a 32-byte page
# Prints one line per figure and the Mustang/kernel ratio.
#
#   bench/preload_bench.sh [DRIVER] [SECONDS]     (af_packet; 5)
#
# Root only; numbers mean something only on a quiet machine.
. "$(dirname "$0")/../tests/integration/preload_common.sh"
preload_begin "${1:-af_packet}" redis-server redis-benchmark nginx wrk
SECS=${2:-5}
N=$((SECS * 20000))

nginx_conf() { # IP FILE
	mkdir -p "$IT_TMP/www"
	echo "Hello from the preload bench!!!" >"$IT_TMP/www/index.html"
	cat >"$2" <<CONF
daemon off; master_process off; worker_processes 1;
error_log $IT_TMP/error.log warn; pid $2.pid;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000; client_body_temp_path $IT_TMP/body;
       server { listen $1:8080; root $IT_TMP/www; } }
CONF
}

measure() { # LABEL IP PREFIX... : runs redis then nginx under PREFIX
	local label=$1 ip=$2 srv out
	shift 2
	app_run srv "redis-$label" "$@" redis-server --bind "$ip" --port 6379 \
		--protected-mode no --save '' --appendonly no --logfile ''
	wait_for 15 port_open "$ip" 6379 || { it_log "FAIL redis ($label) did not start"; exit 1; }
	out=$(in_linux redis-benchmark -h "$ip" -c 50 -n "$N" -t set,get -r 100000 -q 2>&1 | tr '\r' '\n')
	for t in SET GET; do
		printf '%-8s redis %s %s\n' "$label" "$t" \
			"$(sed -n "s/^$t: \([0-9.]*\) requests per second.*/\1/p" <<<"$out" | tail -n 1)"
	done
	kill "$srv"; app_wait "$srv" 10
	nginx_conf "$ip" "$IT_TMP/nginx-$label.conf"
	app_run srv "nginx-$label" "$@" nginx -p "$IT_TMP" -c "$IT_TMP/nginx-$label.conf"
	wait_for 15 port_open "$ip" 8080 || { it_log "FAIL nginx ($label) did not start"; exit 1; }
	out=$(in_linux wrk -t 2 -c 64 -d "${SECS}s" "http://$ip:8080/" 2>&1)
	printf '%-8s nginx wrk %s\n' "$label" "$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")"
	kill -QUIT "$srv"; app_wait "$srv" 10
}

preload_setup pbench
MIP=$TOPO_IP_M
# Not through a pipe: measure must run in this shell (IT_BG_PIDS).
measure mustang "$MIP" "${ON_MST[@]}" >"$IT_TMP/m.txt"
cat "$IT_TMP/m.txt"
topo_up pbenchk linux 2 || { it_log "FAIL kernel topology"; exit 1; }
measure kernel "$TOPO_IP_M" ip netns exec "$TOPO_NS_M" >"$IT_TMP/k.txt"
cat "$IT_TMP/k.txt"
paste "$IT_TMP/m.txt" "$IT_TMP/k.txt" | awk '{ printf "ratio    %s %s %.2f\n", $2, $3, ($4 > 0 && $8 > 0) ? $4 / $8 : 0 }'
it_end
