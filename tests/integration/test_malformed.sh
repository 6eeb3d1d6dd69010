#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Frames with bad headers, built with scapy and sent from the Linux end of
# the veth: each must be dropped and counted under its own drop reason,
# exactly once per frame (malformed.py), and mustangd must still answer.
#
#   test_malformed.sh af_xdp|af_packet   exit 0 pass, 1 fail, 77 skip

. "$(dirname "$0")/common.sh"
it_begin "${1:?usage: $0 af_xdp|af_packet}"
it_topo_daemon bad

ip=$TOPO_IP_M
check "ping before: 2/2" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 2 -i 0.2 -W 2 $ip | grep -q ' 2 received'"
check "every malformed frame dropped and counted under its reason" \
	in_linux "$MST_PY" "$IT_DIR/malformed.py" run --iface "$TOPO_IF_L" \
	--smac "$TOPO_MAC_L" --dmac "$TOPO_MAC_M" --sip "$TOPO_IP_L" --dip "$ip" \
	--mustangctl "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --count 3 --driver "$IT_DRIVER"
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
check "ping after: 5/5" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 5 -i 0.2 -W 2 $ip | grep -q ' 5 received'"
check "UDP echo after" in_linux "$MST_PY" "$IT_DIR/udp_echo.py" echo "$ip" 1,1472
check "SIGTERM: mustangd exits 0" stop_mustangd TERM
it_end
