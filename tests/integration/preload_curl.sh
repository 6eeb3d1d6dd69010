#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Debian's curl, unmodified, on Mustang through LD_PRELOAD, as the client of
# a Linux HTTP server (preload_httpd.py in the Linux namespace):
#   GET of a 3 MiB file (sha256 compared), PUT of a 2 MiB file (the server
#   answers the sha256 it received), 5 URLs on one connection;
# and the switches around it:
#   MUSTANG_PRELOAD_EXCLUDE=:PORT  the connection stays on the kernel (which
#                                  has no route to the Linux namespace here:
#                                  the file does not arrive); rules that do
#                                  not match leave it on Mustang
#   loopback                       always the kernel: a server on 127.0.0.1
#                                  answers curl on Mustang
#   no daemon                      curl fails with the preload's message;
#                                  MUSTANG_PRELOAD_FALLBACK=kernel works
#
#   preload_curl.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip (curl not installed).

. "$(dirname "$0")/preload_common.sh"
preload_begin "${1:?usage: $0 af_xdp|af_packet}" curl
preload_setup pcurl
mkdir -p "$IT_TMP/www"
head -c 3145728 /dev/urandom >"$IT_TMP/www/big.bin"
head -c 2097152 /dev/urandom >"$IT_TMP/up.bin"
echo "hello over loopback $$" >"$IT_TMP/www/lo.txt"
rm -f "$IT_TMP/httpd.ready"
app_run HTTPD httpd ip netns exec "$TOPO_NS_L" "$MST_PY" "$IT_DIR/preload_httpd.py" \
	"$TOPO_IP_L" 8000 "$IT_TMP/www" "$IT_TMP/httpd.ready"
wait_for 10 test -f "$IT_TMP/httpd.ready" || { it_log "FAIL httpd did not start"; exit 1; }
URL=http://$TOPO_IP_L:8000
CURL=("${ON_MST[@]}" curl -sS --max-time 20)

check "GET 3 MiB through Mustang: sha256 matches" \
	test "$("${CURL[@]}" "$URL/big.bin" | sha256sum | cut -d' ' -f1)" = \
	"$(sha256sum <"$IT_TMP/www/big.bin" | cut -d' ' -f1)"
check "PUT 2 MiB through Mustang: the server got the same sha256" \
	test "$("${CURL[@]}" -T "$IT_TMP/up.bin" "$URL/up")" = \
	"$(sha256sum <"$IT_TMP/up.bin" | cut -d' ' -f1)"
conns=$("${CURL[@]}" -w '%{num_connects} ' -o /dev/null "$URL/big.bin" -o /dev/null \
	"$URL/big.bin" -o /dev/null "$URL/big.bin" -o /dev/null "$URL/big.bin" -o /dev/null "$URL/big.bin")
check "keep-alive: 5 requests, 1 connection (num_connects: $conns)" test "$conns" = "1 0 0 0 0 "
check "curl reports its local address as Mustang's ($TOPO_IP_M)" \
	test "$("${CURL[@]}" -o /dev/null -w '%{local_ip}' "$URL/big.bin")" = "$TOPO_IP_M"

# The kernel of this namespace has no address or route towards the Linux
# namespace (at most a default route elsewhere): only Mustang reaches the
# server, so a connection left on the kernel cannot fetch the file.
want=$(sha256sum <"$IT_TMP/www/big.bin" | cut -d' ' -f1)
got=$(MUSTANG_PRELOAD_EXCLUDE=":8000" "${CURL[@]}" --max-time 5 "$URL/big.bin" 2>/dev/null |
	sha256sum | cut -d' ' -f1)
check "MUSTANG_PRELOAD_EXCLUDE=:8000 keeps the connection on the kernel (no file)" \
	test "$got" != "$want"
got=$(MUSTANG_PRELOAD_EXCLUDE="10.0.0.0/8:9,$TOPO_IP_L:7,garbage/77" "${CURL[@]}" "$URL/big.bin" \
	2>"$IT_TMP/excl.err" | sha256sum | cut -d' ' -f1)
check "rules that do not match leave it on Mustang (file fetched)" test "$got" = "$want"
check "a malformed rule is reported" grep -q "ignoring 'garbage/77'" "$IT_TMP/excl.err"

"$MST_PY" -m http.server --bind 127.0.0.1 --directory "$IT_TMP/www" 18080 >"$IT_TMP/lo.out" 2>&1 &
LO=$!
IT_BG_PIDS+=("$LO")
wait_for 10 curl -s -o /dev/null http://127.0.0.1:18080/lo.txt
check "loopback stays on the kernel: curl on Mustang reads 127.0.0.1" \
	test "$("${CURL[@]}" http://127.0.0.1:18080/lo.txt)" = "hello over loopback $$"

out=$(env LD_PRELOAD="$PRELOAD_LIB" MUSTANG_CTL="$IT_TMP/none.sock" curl -sS --max-time 5 \
	http://127.0.0.1:18080/lo.txt 2>&1)
check "no daemon: curl fails" test "$(grep -c "hello over loopback" <<<"$out")" -eq 0
check "no daemon: the preload says why (cannot attach ... ENETDOWN)" \
	grep -q "mustang-preload: cannot attach to mustangd at $IT_TMP/none.sock" <<<"$out"
check "no daemon, MUSTANG_PRELOAD_FALLBACK=kernel: curl works on the kernel" \
	test "$(env LD_PRELOAD="$PRELOAD_LIB" MUSTANG_CTL="$IT_TMP/none.sock" \
		MUSTANG_PRELOAD_FALLBACK=kernel curl -sS --max-time 5 \
		http://127.0.0.1:18080/lo.txt 2>/dev/null)" = "hello over loopback $$"

check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
