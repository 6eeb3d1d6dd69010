#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Debian's nginx (nginx-light), unmodified, on Mustang through LD_PRELOAD:
# one process (master_process off: the fork rule keeps a worker from using
# its master's listening socket, docs/preload.md), epoll, sendfile on.
#   curl   index.html content, a 2 MiB file (sha256 compared: sendfile),
#          404, keep-alive (5 URLs, 1 connection), HTTP/1.0
#   wrk    3 s, 64 connections: no socket error, no non-2xx answer
#
#   preload_nginx.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip (nginx not installed).

. "$(dirname "$0")/preload_common.sh"
preload_begin "${1:?usage: $0 af_xdp|af_packet}" nginx curl wrk
preload_setup pnginx
IP=$TOPO_IP_M
mkdir -p "$IT_TMP/www" "$IT_TMP/logs"
echo "Hello from nginx on Mustang $$" >"$IT_TMP/www/index.html"
head -c 2097152 /dev/urandom >"$IT_TMP/www/big.bin"
cat >"$IT_TMP/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $IT_TMP/logs/error.log warn;
pid $IT_TMP/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	keepalive_requests 1000000;
	client_body_temp_path $IT_TMP/body;
	proxy_temp_path $IT_TMP/proxy;
	fastcgi_temp_path $IT_TMP/fastcgi;
	server {
		listen $IP:8080;
		root $IT_TMP/www;
	}
}
CONF
app_run SRV nginx "${ON_MST[@]}" nginx -p "$IT_TMP" -c "$IT_TMP/nginx.conf"
if ! wait_for 15 port_open "$IP" 8080; then
	it_log "FAIL nginx did not listen on $IP:8080 through Mustang; its output:"
	sed 's/^/  | /' "$IT_TMP/nginx.out" "$IT_TMP/logs/error.log"
	exit 1
fi
check "nginx is attached to mustangd" wait_for 5 apps_is 1

URL=http://$IP:8080
CURL=(in_linux curl -sS --max-time 10)
check "GET / is index.html" test "$("${CURL[@]}" "$URL/")" = "Hello from nginx on Mustang $$"
check "GET /big.bin (2 MiB, sendfile) has the file's sha256" \
	test "$("${CURL[@]}" "$URL/big.bin" | sha256sum)" = "$(sha256sum <"$IT_TMP/www/big.bin")"
check "GET /nope is 404" test "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$URL/nope")" = 404
conns=$("${CURL[@]}" -w '%{num_connects} ' -o /dev/null "$URL/" -o /dev/null "$URL/" \
	-o /dev/null "$URL/" -o /dev/null "$URL/big.bin" -o /dev/null "$URL/")
check "keep-alive: 5 requests, 1 connection (num_connects: $conns)" test "$conns" = "1 0 0 0 0 "
check "HTTP/1.0 answered" grep -q "Mustang $$" <<<"$("${CURL[@]}" -0 "$URL/")"

out=$(in_linux timeout 30 wrk -t 2 -c 64 -d 3s "$URL/" 2>&1)
echo "$out" | sed 's/^/  wrk | /'
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
check "wrk: ran and reported a rate ($rps req/s)" test -n "$rps"
check "wrk: no socket errors" test "$(grep -c 'Socket errors' <<<"$out")" -eq 0
check "wrk: no non-2xx responses" test "$(grep -c 'Non-2xx' <<<"$out")" -eq 0
check "still serves after wrk" test "$("${CURL[@]}" "$URL/")" = "Hello from nginx on Mustang $$"

preload_stop "$SRV" nginx QUIT
check "no [alert]/[crit] in nginx's error log" test "$(grep -cE '\[(alert|crit|emerg)\]' "$IT_TMP/logs/error.log")" -eq 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
