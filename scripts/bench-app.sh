#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Benchmark of the application path (libmustang <-> engine), as root on
# Debian 12, about two minutes. Not a test: it prints figures.
#
#   scripts/bench-app.sh [SECONDS]      (per measurement, default 5)
#
# (a) 64-byte request/response from an app. echo_client on Mustang against
#     a Linux echo server (tcp_load server, kernel TCP) in the peer
#     namespace, versus tcp_load's client on Linux against the same server
#     over an identical Linux<->Linux veth pair:
#       - 1 connection, epoll loop (the library spins before it sleeps)
#       - 32 connections, epoll loop
#       - 1 connection, blocking calls, MUSTANG_SPIN_US=0: the app sleeps on
#         its eventfd on every round trip; the same with a spin long enough
#         never to sleep. The difference of the two round-trip times is the
#         wake-up latency of a blocked app (data arrival -> mst_recv return);
#         app_wakeups confirms the app really slept.
#     "App CPU" is the echo_client process's user+sys time per operation.
# (b) HTTP: wrk (2 threads, 32 connections) from the Linux namespace against
#     http_hello on Mustang, and against nginx (Debian, 1 worker, same body)
#     in a namespace with an identical veth pair (offloads off on both).
#
# Mustang: AF_XDP (AF_PACKET if AF_XDP cannot start), 1 engine, spreading.
# Everything runs on this machine's cores; the engine busy-polls one.

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh

SECS=${1:-5}
need_root
ensure_packages "${MST_PACKAGES[@]}" wrk nginx curl || mst_die "could not install the packages"
ensure_build || mst_die "build failed"
EX=$MST_BUILD/examples
for p in echo_client http_hello; do
	[ -x "$EX/$p" ] || mst_die "$EX/$p not built"
done

TMP=$(mktemp -d /tmp/mustang-bench-app.XXXXXX)
BG_PIDS=()
bench_cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	mst_cleanup
	rm -rf "$TMP"
}
trap bench_cleanup EXIT
trap 'exit 1' INT TERM HUP

LOAD=$TMP/tcp_load
gcc -O2 -o "$LOAD" tests/integration/tcp_load.c || mst_die "cannot build tcp_load"

field() { sed -n "s/.*[ :]$1=\([0-9.]*\).*/\1/p" <<<" $2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
bg() { "$@" >/dev/null 2>&1 & BG_PIDS+=($!); }

# app_run VAR ARGS... : echo_client ARGS; sets VAR to its output line plus
# " cpu_s=<user+sys seconds>".
app_run() {
	local var=$1 out cpu
	shift
	out=$( { TIMEFORMAT='%U %S'; time "$EX/echo_client" "$@" 2>"$TMP/err"; } 2>"$TMP/time") ||
		{ mst_log "echo_client $* failed:"; cat "$TMP/err" >&2; }
	cpu=$(awk '{ print $1 + $2 }' "$TMP/time" 2>/dev/null)
	printf -v "$var" '%s cpu_s=%s' "$out" "${cpu:-0}"
}
per_op_us() { # LINE : app CPU microseconds per message
	awk -v c="$(field cpu_s "$1")" -v m="$(field msgs "$1")" \
		'BEGIN { if (m > 0) printf "%.2f", c * 1e6 / m; else print "-" }'
}

wrk_run() { # NS URL : requests/s, or 0; the wrk output goes to $TMP/wrk.last
	ip netns exec "$1" timeout $((SECS + 20)) wrk -t 2 -c 32 -d "${SECS}s" "$2" >"$TMP/wrk.last" 2>&1
	if grep -q -e 'Socket errors' -e 'Non-2xx' "$TMP/wrk.last"; then
		mst_log "wrk against $2 reported errors:"
		cat "$TMP/wrk.last" >&2
	fi
	sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMP/wrk.last"
}

# --- Mustang ----------------------------------------------------------------------
topo_up ba mustang 1 || mst_die "topology"
DRV=af_xdp
start() {
	start_mustangd --ctl "$TMP/m.sock" --log "$TMP/m-$1.log" -- \
		--port "$1:iface=$TOPO_IF_M" --ip "$TOPO_IP_M/$TOPO_PREFIX" \
		--mode spreading --engines 1 --services none >/dev/null 2>&1
}
if ! start af_xdp; then
	DRV=af_packet
	start af_packet || mst_die "mustangd did not start (log: $TMP/m-af_packet.log)"
fi
export MUSTANG_CTL=$MST_DAEMON_CTL
bg ip netns exec "$TOPO_NS_L" "$LOAD" server 9000 echo
sleep 0.3
DST=$TOPO_IP_L:9000
mst_log "(a) echo_client on Mustang ($DRV) -> Linux echo server, ${SECS} s per run"
app_run WARM --count 1000 "$DST"
app_run M_RR1 --duration "$SECS" "$DST"
app_run M_RR32 --duration "$SECS" --conns 32 "$DST"
wake0=$(mst_ctl stats --json | "$MST_PY" tests/integration/mststats.py get /dev/stdin counters app_wakeups 2>/dev/null)
MUSTANG_SPIN_US=0 app_run M_SLEEP --blocking --duration "$SECS" "$DST"
wake1=$(mst_ctl stats --json | "$MST_PY" tests/integration/mststats.py get /dev/stdin counters app_wakeups 2>/dev/null)
MUSTANG_SPIN_US=10000000 app_run M_SPIN --blocking --duration "$SECS" "$DST"
WAKEUPS=$(( ${wake1:-0} - ${wake0:-0} ))

mst_log "(b) wrk -> http_hello on Mustang"
"$EX/http_hello" -p 8080 >"$TMP/http_hello.out" 2>&1 &
HH=$!
BG_PIDS+=("$HH")
for _ in $(seq 50); do grep -qs listening "$TMP/http_hello.out" && break; sleep 0.1; done
ip netns exec "$TOPO_NS_L" curl -s --max-time 5 "http://$TOPO_IP_M:8080/" | grep -q 'Hello from Mustang' ||
	mst_log "warning: curl did not get the body from http_hello"
M_HTTP=$(wrk_run "$TOPO_NS_L" "http://$TOPO_IP_M:8080/")
kill "$HH" 2>/dev/null
wait "$HH" 2>/dev/null
stop_mustangd >/dev/null 2>&1

# --- Linux <-> Linux ----------------------------------------------------------------
topo_up bl linux 2 || mst_die "topology"
mst_log "(a) tcp_load rr Linux -> Linux echo server, ${SECS} s per run"
bg ip netns exec "$TOPO_NS_M" "$LOAD" server 9000 echo
sleep 0.3
ip netns exec "$TOPO_NS_L" "$LOAD" rr "$TOPO_IP_M" 9000 1 1 >/dev/null 2>&1 # warm-up
L_RR1=$(ip netns exec "$TOPO_NS_L" "$LOAD" rr "$TOPO_IP_M" 9000 "$SECS" 1)
L_RR32=$(ip netns exec "$TOPO_NS_L" "$LOAD" rr "$TOPO_IP_M" 9000 "$SECS" 32)

mst_log "(b) wrk -> nginx on Linux"
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx;
	proxy_temp_path $TMP/nginx;
	fastcgi_temp_path $TMP/nginx;
	uwsgi_temp_path $TMP/nginx;
	scgi_temp_path $TMP/nginx;
	keepalive_requests 1000000;
	server {
		listen $TOPO_IP_M:8080;
		location = / { default_type text/plain; return 200 "Hello from Mustang\n"; }
	}
}
EOF
bg ip netns exec "$TOPO_NS_M" nginx -c "$TMP/nginx/nginx.conf" -g 'daemon off;'
for _ in $(seq 50); do
	ip netns exec "$TOPO_NS_L" curl -s --max-time 1 "http://$TOPO_IP_M:8080/" | grep -q Hello && break
	sleep 0.1
done
L_HTTP=$(wrk_run "$TOPO_NS_L" "http://$TOPO_IP_M:8080/")

# --- report -------------------------------------------------------------------------
M1=$(field msgs_per_s "$M_RR1") M32=$(field msgs_per_s "$M_RR32")
L1=$(field rate "$L_RR1") L32=$(field rate "$L_RR32")
SLEEP_RTT=$(field lat_p50_us "$M_SLEEP") SPIN_RTT=$(field lat_p50_us "$M_SPIN")
echo
echo "App path over veth (offloads off, MTU 1500), $SECS s per row, $(uname -r), $(nproc) cores."
echo "Mustang: $DRV, 1 engine (busy-polls a core), spreading; apps: examples/ (1 thread)."
echo "Linux: tcp_load (epoll) client / echo server; nginx $(nginx -v 2>&1 | sed 's/.*\///'), 1 worker."
echo
printf '| %-52s | %12s | %12s | %6s |\n' metric "Mustang app" "Linux" ratio
echo "|------------------------------------------------------|--------------|--------------|--------|"
printf '| %-52s | %12s | %12s | %6s |\n' "64 B request/response, 1 conn (/s)" "$M1" "$L1" "$(ratio "$M1" "$L1")"
printf '| %-52s | %12s | %12s | %6s |\n' "64 B request/response, 32 conns (/s)" "$M32" "$L32" "$(ratio "$M32" "$L32")"
printf '| %-52s | %12s | %12s | %6s |\n' "HTTP GET / keep-alive, wrk 2 thr 32 conns (req/s)" "${M_HTTP:-0}" "${L_HTTP:-0}" "$(ratio "${M_HTTP:-0}" "${L_HTTP:-0}")"
echo
echo "Mustang app side (echo_client):"
printf '| %-52s | %12s |\n' measurement value
echo "|------------------------------------------------------|--------------|"
printf '| %-52s | %12s |\n' "1 conn: RTT p50 / p99 (us)" "$(field lat_p50_us "$M_RR1") / $(field lat_p99_us "$M_RR1")"
printf '| %-52s | %12s |\n' "1 conn: app CPU per request/response (us)" "$(per_op_us "$M_RR1")"
printf '| %-52s | %12s |\n' "32 conns: app CPU per request/response (us)" "$(per_op_us "$M_RR32")"
printf '| %-52s | %12s |\n' "32 conns: ops per app-core-second" \
	"$(awk -v c="$(field cpu_s "$M_RR32")" -v m="$(field msgs "$M_RR32")" 'BEGIN { if (c > 0) printf "%.0f", m / c; else print "-" }')"
printf '| %-52s | %12s |\n' "blocking, always sleeps: RTT p50 (us)" "$SLEEP_RTT"
printf '| %-52s | %12s |\n' "blocking, always spins: RTT p50 (us)" "$SPIN_RTT"
printf '| %-52s | %12s |\n' "=> wake-up latency of a blocked app (us)" \
	"$(awk -v a="$SLEEP_RTT" -v b="$SPIN_RTT" 'BEGIN { if (a != "" && b != "") printf "%.1f", a - b; else print "-" }')"
printf '| %-52s | %12s |\n' "eventfd wake-ups during the sleeping run" "$WAKEUPS ($(field msgs "$M_SLEEP") round trips)"
printf '| %-52s | %12s |\n' "Linux 1 conn RTT (1/rate, us)" "$(awk -v r="$L1" 'BEGIN { if (r > 0) printf "%.1f", 1e6 / r; else print "-" }')"
