#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# http_hello (examples/) on Mustang against HTTP clients nobody here wrote:
#   curl   the body, HEAD, 404/405, keep-alive (several URLs on one
#          connection), Connection: close, HTTP/1.0
#   raw    malformed requests get 400 and a closed connection, a missing
#          Host (HTTP/1.1) too, pipelined requests answered in order
#   wrk    3 s, 2 threads, 32 connections: no socket error, no non-2xx
#
#   app_http.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
for p in curl wrk; do
	command -v "$p" >/dev/null || { it_log "FAIL $p missing (scripts/test.sh installs it)"; exit 1; }
done
app_setup http
URL=http://$TOPO_IP_M:8080
app_start SRV http_hello "$EXAMPLES/http_hello" -p 8080 || exit 1

CURL=(in_linux curl -sS --max-time 10)

# expect DESC PATTERN CMD... : CMD's output (stdout+stderr) matches the
# extended regex PATTERN.
expect() {
	local desc=$1 pat=$2 out
	shift 2
	out=$("$@" 2>&1)
	if grep -Eq -- "$pat" <<<"$out"; then
		printf 'ok   %s\n' "$desc"
	else
		fail "$desc: no /$pat/ in the output of: $*"
		sed 's/^/  | /' <<<"$out" | head -n 20
	fi
}

# --- curl ----------------------------------------------------------------------
body=$("${CURL[@]}" "$URL/")
check "GET / body is exactly 'Hello from Mustang\\n'" test "$body" = "Hello from Mustang"
check "GET / body has the newline (19 bytes)" \
	test "$("${CURL[@]}" "$URL/" | wc -c)" -eq 19
expect "GET / is 200 with Content-Length: 19" '^< Content-Length: 19' "${CURL[@]}" -v "$URL/"
expect "HEAD / is 200 without a body" '^HTTP/1.1 200 OK' "${CURL[@]}" -I "$URL/"
check "HEAD / sends no body" test "$("${CURL[@]}" -I "$URL/" | grep -c Hello)" -eq 0
expect "GET /nope is 404" '^404$' "${CURL[@]}" -o /dev/null -w '%{http_code}\n' "$URL/nope"
expect "POST / is 405" '^405$' "${CURL[@]}" -o /dev/null -w '%{http_code}\n' -d x "$URL/"
# Five URLs on one curl command: one connection, reused four times.
conns=$("${CURL[@]}" -w '%{num_connects} ' -o /dev/null "$URL/" -o /dev/null "$URL/" \
	-o /dev/null "$URL/" -o /dev/null "$URL/" -o /dev/null "$URL/")
check "keep-alive: 5 requests, 1 connection (num_connects: $conns)" test "$conns" = "1 0 0 0 0 "
expect "Connection: close is honoured" '^< Connection: close' \
	"${CURL[@]}" -v -H 'Connection: close' "$URL/"
expect "HTTP/1.0 without keep-alive: Connection: close" '^< Connection: close' \
	"${CURL[@]}" -v -0 "$URL/"
expect "HTTP/1.0 with keep-alive: kept" '^< Connection: keep-alive' \
	"${CURL[@]}" -v -0 -H 'Connection: keep-alive' "$URL/"

# --- raw requests ----------------------------------------------------------------
raw() { peer raw "$TOPO_IP_M" 8080 "$@"; }
expect "garbage gets 400" '^HTTP/1.1 400 Bad Request' raw 'GARBAGE\r\n\r\n'
expect "garbage: connection closed" '^\[closed\]' raw 'GARBAGE\r\n\r\n'
expect "HTTP/1.1 without Host gets 400" '^HTTP/1.1 400' raw 'GET / HTTP/1.1\r\n\r\n'
expect "bad header line gets 400" '^HTTP/1.1 400' raw 'GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n'
expect "HTTP/2.0 request line gets 505" '^HTTP/1.1 505' raw 'GET / HTTP/2.0\r\nHost: x\r\n\r\n'
expect "a request head over 8 KiB gets 400" '^HTTP/1.1 400' \
	raw "GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Big: $(head -c 9000 /dev/zero | tr '\0' a)\\r\\n\\r\\n"
piped=$(raw 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
check "pipelining: 200, 404, 200 in order, then closed" \
	test "$(grep -E '^HTTP/1.1|^\[' <<<"$piped" | tr -d '\r' | tr '\n' ' ')" = \
	"HTTP/1.1 200 OK HTTP/1.1 404 Not Found HTTP/1.1 200 OK [closed] "
expect "a body (Content-Length) is skipped, next request answered" '404 Not Found' \
	raw 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\nHost: x\r\n\r\n'

# --- wrk -------------------------------------------------------------------------
out=$(in_linux timeout 30 wrk -t 2 -c 32 -d 3s "$URL/" 2>&1)
echo "$out" | sed 's/^/  wrk | /'
rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
check "wrk: ran and reported a rate ($rps req/s)" test -n "$rps"
check "wrk: no socket errors" sh -c "! grep -q 'Socket errors' <<'EOF'
$out
EOF"
check "wrk: no non-2xx responses" sh -c "! grep -q 'Non-2xx' <<'EOF'
$out
EOF"

check "http_hello still running" mst_pid_running "$SRV"
kill -TERM "$SRV"
app_wait "$SRV" 10
check "http_hello exits 0 on SIGTERM" test $? -eq 0
check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
