#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# UDP sockets of apps on Mustang (libmustang SOCK_DGRAM), against Linux:
#   1. examples/udp_echo (recvfrom + sendto back) on Mustang; from the Linux
#      namespace, datagrams of every size 1..1472 each come back byte-exact
#      from the server's address at the first attempt (no retries: a veth
#      is lossless, so a lost or wrong echo is a bug); then a burst of 32 back to back, and a
#      connected Linux socket (its source port stays the same).
#   2. udp_echo --client on Mustang against a Linux UDP echo server:
#      ephemeral port, ARP, sizes 1..1472 with sendto/recvfrom, then
#      connect + send/recv.
#   3. Both apps detached afterwards; mustangd still running.
#
#   app_udp.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
[ -x "$EXAMPLES/udp_echo" ] || { it_log "FAIL $EXAMPLES/udp_echo not built"; exit 1; }
app_setup udp
ip=$TOPO_IP_M

# The Linux side: plain kernel UDP sockets in the peer namespace.
UDP_PEER=$IT_TMP/udp_peer.py
cat >"$UDP_PEER" <<'EOF'
import os, socket, sys, time

def pattern(n, salt):
    return bytes(((i * 7 + n * 31 + salt) & 0xFF) for i in range(n))

def exchange(s, data, dst, connected):
    """Send data once, wait up to 2 s for its echo; the reply or None. No
    retry: the veth loses nothing, so a lost or wrong echo is a bug."""
    if connected:
        s.send(data)
    else:
        s.sendto(data, dst)
    try:
        got, src = s.recvfrom(65535)
    except socket.timeout:
        return None
    if src != dst:
        print("FAIL reply from %s:%d, expected %s:%d" % (src + dst))
        return None
    return got

def client(host, port, lo, hi, connected):
    dst = (host, port)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    if connected:
        s.connect(dst)
    bad = 0
    for n in range(lo, hi + 1):
        data = pattern(n, 1 if connected else 0)
        got = exchange(s, data, dst, connected)
        if got != data:
            bad += 1
            if got is None:
                print("FAIL %d bytes: no echo" % n)
            else:
                d = next((i for i in range(min(len(got), n)) if got[i] != data[i]), min(len(got), n))
                print("FAIL %d bytes: got %d back, first difference at %d" % (n, len(got), d))
            if bad > 10:
                break
    print("%d sizes %d..%d from port %d: %d bad" % (hi - lo + 1, lo, hi, s.getsockname()[1], bad))
    return 1 if bad else 0

def burst(host, port, count, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    sent = [pattern(size, k) for k in range(count)]
    for d in sent:
        s.sendto(d, (host, port))
    got = []
    try:
        while len(got) < count:
            got.append(s.recv(65535))
    except socket.timeout:
        pass
    ok = sum(1 for g in got if g in sent)
    print("burst: %d sent, %d echoed, %d exact" % (count, len(got), ok))
    return 0 if ok == count else 1

def server(port, ready):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    open(ready, "w").close()
    while True:
        data, src = s.recvfrom(65535)
        s.sendto(data, src)

mode = sys.argv[1]
if mode == "client":
    sys.exit(client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                    len(sys.argv) > 6 and sys.argv[6] == "connect"))
elif mode == "burst":
    sys.exit(burst(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
elif mode == "server":
    server(int(sys.argv[2]), sys.argv[3])
EOF
udp_peer() { in_linux "$MST_PY" "$UDP_PEER" "$@"; }
stat_of() { ctl_json stats "d$1" 2>/dev/null; }

# --- 1. Linux -> udp_echo on Mustang -------------------------------------------
app_start SRV udp_echo "$EXAMPLES/udp_echo" -p 7009 || exit 1
check "1 app attached" apps_is 1
check "udp_echo: sizes 1..1472 from Linux, each echo byte-exact from $ip:7009" \
	udp_peer client "$ip" 7009 1 1472
check "udp_echo: 32 x 1000 B back to back, all echoed exactly" \
	udp_peer burst "$ip" 7009 32 1000
check "udp_echo: connected Linux socket, sizes 1..1472 step 1" \
	udp_peer client "$ip" 7009 1 1472 connect
kill -TERM "$SRV"
app_wait "$SRV" 10
check "udp_echo exits 0 on SIGTERM" test $? -eq 0
grep -q "datagrams" "$IT_TMP/udp_echo.out" ||
	fail "udp_echo printed no totals: $(tail -n 2 "$IT_TMP/udp_echo.out")"

# --- 2. udp_echo --client on Mustang -> Linux echo server --------------------------
rm -f "$IT_TMP/lsrv.ready"
app_run LSRV linux_udp ip netns exec "$TOPO_NS_L" "$MST_PY" "$UDP_PEER" server 9009 \
	"$IT_TMP/lsrv.ready"
wait_for 10 test -f "$IT_TMP/lsrv.ready" || fail "Linux UDP echo server did not start"
check "udp_echo --client: sizes 1..1472 (sendto/recvfrom, ephemeral port, ARP)" \
	"$EXAMPLES/udp_echo" --client "$TOPO_IP_L:9009" --min 1 --max 1472 --retries 0
check "udp_echo --client --connect: sizes 0..1472 (send/recv)" \
	"$EXAMPLES/udp_echo" --client "$TOPO_IP_L:9009" --connect --min 0 --max 1472 --retries 0

# --- 3. usage, cleanup ----------------------------------------------------------------
"$EXAMPLES/udp_echo" --client 1.2.3:4 >/dev/null 2>&1
check "udp_echo bad address exits 2" test $? -eq 2
check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
