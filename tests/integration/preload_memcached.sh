#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Debian's memcached (2 worker threads, libevent/epoll), unmodified, on
# Mustang through LD_PRELOAD; a Python client in the Linux namespace sets
# 500 keys (values of 1 byte .. 100 KB, random) over 4 connections and gets
# every one back (multi-get too), compares them, and checks incr/delete.
#
#   preload_memcached.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip (memcached not installed).

. "$(dirname "$0")/preload_common.sh"
preload_begin "${1:?usage: $0 af_xdp|af_packet}" memcached
preload_setup pmemc
IP=$TOPO_IP_M
app_run SRV memcached "${ON_MST[@]}" memcached -u root -l "$IP" -p 11211 -U 0 -t 2 -m 64
if ! wait_for 15 port_open "$IP" 11211; then
	it_log "FAIL memcached did not listen on $IP:11211 through Mustang; its output:"
	sed 's/^/  | /' "$IT_TMP/memcached.out"
	exit 1
fi
check "memcached is attached to mustangd" wait_for 5 apps_is 1

cat >"$IT_TMP/client.py" <<'PY'
import os, random, socket, sys
ip = sys.argv[1]
conns = [socket.create_connection((ip, 11211), 5) for _ in range(4)]
files = [c.makefile("rb") for c in conns]
def cmd(i, line, data=None):
    conns[i].sendall(line + b"\r\n" + (data + b"\r\n" if data is not None else b""))
def get_many(i, keys):
    cmd(i, b"get " + b" ".join(keys))
    out = {}
    while True:
        line = files[i].readline()
        if line == b"END\r\n":
            return out
        _, k, _, n = line.split()
        out[k] = files[i].read(int(n) + 2)[:-2]
rnd = random.Random(int(sys.argv[2]))
vals = {}
for n in range(500):
    k = b"k%d" % n
    size = rnd.choice([1, 100, 1000, 10000, 100000])
    vals[k] = os.urandom(size)
    i = n % 4
    cmd(i, b"set %s 0 0 %d" % (k, size), vals[k])
    assert files[i].readline() == b"STORED\r\n", k
bad = 0
for n, (k, v) in enumerate(vals.items()):
    if get_many((n + 1) % 4, [k]).get(k) != v:
        bad += 1
got = get_many(0, list(vals)[:50])
bad += sum(got.get(k) != vals[k] for k in list(vals)[:50])
cmd(1, b"set ctr 0 0 1", b"5"); files[1].readline()
cmd(1, b"incr ctr 37"); incr = files[1].readline().strip()
cmd(2, b"delete k0"); dele = files[2].readline().strip()
print("bad=%d incr=%s delete=%s after=%d" % (bad, incr.decode(), dele.decode(), len(get_many(3, [b"k0"]))))
PY
out=$(in_linux timeout 60 "$MST_PY" "$IT_TMP/client.py" "$IP" $$ 2>&1)
it_log "  client | $out"
check "500 values (1 B .. 100 KB) read back equal, multi-get too" grep -q '^bad=0 ' <<<"$out"
check "incr 5 by 37 is 42" grep -q ' incr=42 ' <<<"$out"
check "delete then get: gone" grep -q ' delete=DELETED after=0$' <<<"$out"

preload_stop "$SRV" memcached TERM
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
