#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The scapy black-box TCP suite (tcp_blackbox.py) against mustangd running
# echo, discard and chargen: handshake and options, closed port, SYN-ACK
# retransmission, out-of-order/overlapping segments, out-of-window, zero
# window and probes, window scaling limits, RTO, fast retransmit, close
# sequences, RFC 5961, PAWS, malformed options/headers, SYN flood with a
# real Linux client still served.
#
#   tcp_blackbox.sh DRIVER [CHECK,...]     exit 0 pass, 1 fail, 77 skip
#   (CHECK names: see CHECKS in tcp_blackbox.py; default all)

. "$(dirname "$0")/common.sh"
DRV=${1:?usage: $0 af_xdp|af_packet [check,...]}
ONLY=${2:-}
it_begin "$DRV"
it_topo_daemon tcpbb --services echo,discard,chargen

ip=$TOPO_IP_M
check "ping before: 2/2" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 2 -i 0.2 -W 2 $ip | grep -q ' 2 received'"
check "black-box TCP checks (tcp_blackbox.py)" \
	in_linux "$MST_PY" "$IT_DIR/tcp_blackbox.py" --iface "$TOPO_IF_L" --dmac "$TOPO_MAC_M" \
	--dip "$ip" --linux-ip "$TOPO_IP_L" --mustangctl "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" \
	${ONLY:+--only "$ONLY"}
check "ping after: 3/3" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 3 -i 0.2 -W 2 $ip | grep -q ' 3 received'"
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
check "SIGTERM: mustangd exits 0" stop_mustangd TERM
it_end
