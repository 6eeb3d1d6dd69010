#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony through loss, reordering and duplication: two mustangd whose veths
# meet in a third namespace where tcp_netem.py (a userspace netem: this
# kernel has no sch_netem) bridges them and impairs every frame, both
# directions. Each run echoes messages of mixed sizes on 8 streams and
# checks each comes back exactly once, in stream order, intact.
#   1% loss; 1% loss + 1% duplication + "delay 2ms reorder 25%" (75% of
#   packets 2 ms late, 25% overtaking them); 5% loss
#
#   1% loss and 5% loss: 10,000 messages up to 16 MiB each (~25 s each);
#   the reordering phase is shorter (500 up to 256 KiB): a delay-based
#   window stays small when a quarter of the RTT samples are 2 ms late.
#
#   pony_netem.sh DRIVER    MST_PONY_NETEM_COUNT / MST_PONY_NETEM_MAX: messages
#                           and largest size of the two loss phases
#                           (default 10000 up to 16M)
set -u
DRV=${1:?usage: $0 af_xdp|af_packet}
. "$(dirname "$0")/pony_common.sh"

pony_begin "$DRV"
pony_veth netem
pony_server SRV echo -s 7 || exit 1

N=${MST_PONY_NETEM_COUNT:-10000} M=${MST_PONY_NETEM_MAX:-16M}
export MST_PONY_CLIENT_SECS=${MST_PONY_CLIENT_SECS:-300}
netem_run --loss 1 || exit 1
check "1% loss: $N messages up to $M" \
	pony_client loss1 --client "$PONY_IP_A:7" --count "$N" --max-size "$M" --timeout 20000
netem_run --loss 1 --duplicate 1 --delay 2 --reorder 25 || exit 1
check "1% loss, 1% duplicated, 25% reordered: 500 messages up to 256 KiB" \
	pony_client reorder --client "$PONY_IP_A:7" --count 500 --max-size 256K --timeout 20000
netem_run --loss 5 || exit 1
check "5% loss: $N messages up to $M" \
	pony_client loss5 --client "$PONY_IP_A:7" --count "$N" --max-size "$M" --timeout 20000
netem_stop
for d in a b; do
	check "daemon $d: no stalled flow needed the timer scan's push (pony_stall_kicks 0)" \
		test "$(pony_counter "$IT_TMP/$d.sock" pony_stall_kicks)" -eq 0
done
ctl_b pony | grep -E "retransmits|timeouts" | sed 's/^/     /'
pony_stop "$SRV"
check "daemon A still answers" quiet ctl_a status
check "daemon B still answers" quiet ctl_b status
it_end
