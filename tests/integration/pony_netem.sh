#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony through loss, reordering and duplication: two mustangd whose veths
# meet in a third namespace where tcp_netem.py (a userspace netem: this
# kernel has no sch_netem) bridges them and impairs every frame, both
# directions. Each run echoes messages of mixed sizes on 8 streams and
# checks each comes back exactly once, in stream order, intact.
#   1% loss; 1% loss + 1% duplication + 25% reordered (2 ms); 5% loss
#
#   pony_netem.sh DRIVER
set -u
DRV=${1:?usage: $0 af_xdp|af_packet}
. "$(dirname "$0")/pony_common.sh"

pony_begin "$DRV"
pony_veth netem
pony_server SRV echo -s 7 || exit 1

netem_run --loss 1 || exit 1
check "1% loss: 1000 messages up to 1 MiB" \
	pony_client loss1 --client "$PONY_IP_A:7" --count 1000 --max-size 1M --timeout 20000
netem_run --loss 1 --duplicate 1 --delay 2 --reorder 25 || exit 1
check "1% loss, 1% duplicated, 25% reordered: 500 messages up to 256 KiB" \
	pony_client reorder --client "$PONY_IP_A:7" --count 500 --max-size 256K --timeout 20000
netem_run --loss 5 || exit 1
check "5% loss: 500 messages up to 256 KiB" \
	pony_client loss5 --client "$PONY_IP_A:7" --count 500 --max-size 256K --timeout 20000
netem_stop
ctl_b pony | grep -E "retransmits|timeouts" | sed 's/^/     /'
pony_stop "$SRV"
check "daemon A still answers" quiet ctl_a status
check "daemon B still answers" quiet ctl_b status
it_end
