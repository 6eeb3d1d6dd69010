#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# preload_edge.c (a plain libc program) on Mustang through LD_PRELOAD
# against a Linux echo server: descriptor numbers, dup, mixed
# poll/select/epoll, O_NONBLOCK/FIONBIO/FIONREAD, EINTR, the fork rule,
# exec/close-on-exec, garbage arguments, UDP against a socat echo (see the
# program's checks).
#
#   preload_edge.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/preload_common.sh"
preload_begin "${1:?usage: $0 af_xdp|af_packet}"
EDGE=$APP_TESTS/preload_edge
[ -x "$EDGE" ] || { it_log "FAIL $EDGE not built"; exit 1; }
preload_setup pedge
linux_start ECHO echo echo-server 7007 || exit 1
command -v socat >/dev/null || { it_log "FAIL socat missing (scripts/test.sh installs it)"; exit 1; }
app_run UECHO uecho ip netns exec "$TOPO_NS_L" socat UDP4-RECVFROM:7008,bind="$TOPO_IP_L",fork PIPE
"${ON_MST[@]}" timeout 60 "$EDGE" "$TOPO_IP_L" 7007 >"$IT_TMP/edge.out" 2>"$IT_TMP/edge.err"
rc=$?
cat "$IT_TMP/edge.out"
sed 's/^/  stderr | /' "$IT_TMP/edge.err"
check "preload_edge passed all its checks (exit $rc)" test $rc -eq 0
check "unsupported calls warned once each (F_SETOWN, SIOCATMARK)" \
	test "$(grep -c 'mustang-preload: fcntl(cmd' "$IT_TMP/edge.err")" -eq 1 -a \
	"$(grep -c 'mustang-preload: ioctl(' "$IT_TMP/edge.err")" -eq 1
check "0 apps attached at the end" wait_for 5 apps_is 0
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
