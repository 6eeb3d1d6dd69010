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
# Both daemons' total of a counter (or, with "drops", a drop reason).
sum_ab() {
	local f=pony_counter
	[ "${2:-}" = drops ] && f=pony_drop
	echo $(( $($f "$IT_TMP/a.sock" "$1") + $($f "$IT_TMP/b.sock" "$1") ))
}
# phase_moved NAME: after a phase, the impairment happened (netem's own
# count) and Pony repaired it (its counters moved): the run must not pass
# if the bridge stopped impairing or recovery never ran.
netem_field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" "$IT_TMP/netem.out" | tail -n 1; }
REX0=0 DUP0=0
phase_start() { REX0=$(sum_ab pony_retransmits); DUP0=$(sum_ab pony_dup drops); }
phase_end() { # NAME [dup]
	netem_stop
	local rex=$(( $(sum_ab pony_retransmits) - REX0 )) lost
	lost=$(netem_field lost)
	it_log "     $1: netem dropped ${lost:-?} frames; Pony retransmitted $rex packets"
	check "$1: the bridge dropped frames (lost=${lost:-none})" test "${lost:-0}" -gt 0
	check "$1: Pony retransmitted ($rex packets)" test "$rex" -gt 0
	if [ "${2:-}" = dup ]; then
		local dups=$(( $(sum_ab pony_dup drops) - DUP0 ))
		check "$1: duplicates arrived and were re-acknowledged, not delivered (pony_dup $dups)" \
			test "$dups" -gt 0 -a "$(netem_field dup)" -gt 0
	fi
}
netem_run --loss 1 || exit 1
phase_start
check "1% loss: $N messages up to $M" \
	pony_client loss1 --client "$PONY_IP_A:7" --count "$N" --max-size "$M" --timeout 20000
phase_end "1% loss"
netem_run --loss 1 --duplicate 1 --delay 2 --reorder 25 || exit 1
phase_start
check "1% loss, 1% duplicated, 25% reordered: 500 messages up to 256 KiB" \
	pony_client reorder --client "$PONY_IP_A:7" --count 500 --max-size 256K --timeout 20000
phase_end "reorder" dup
netem_run --loss 5 || exit 1
phase_start
check "5% loss: $N messages up to $M" \
	pony_client loss5 --client "$PONY_IP_A:7" --count "$N" --max-size "$M" --timeout 20000
phase_end "5% loss"
for d in a b; do
	check "daemon $d: no stalled flow needed the timer scan's push (pony_stall_kicks 0)" \
		test "$(pony_counter "$IT_TMP/$d.sock" pony_stall_kicks)" -eq 0
done
ctl_b pony | grep -E "retransmits|timeouts" | sed 's/^/     /'
check "pony_echo server SRV exits 0 on SIGTERM" pony_stop "$SRV"
check "daemon A still answers" quiet ctl_a status
check "daemon B still answers" quiet ctl_b status
it_end
