#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony against a remote attacker (issue 13): A and B (mustangd) on a Linux
# bridge whose namespace is a third host C (10.79.0.3, no spoofing).
#   - C sends 5,000 first pieces of 64 KiB messages it never finishes
#     (pony_attacker.py partials); they used to fill A's whole message
#     pool for good. Now C gets its share (pony_peer_over_share counts the
#     rest), B's messages to A and A's echoes still go through, and C's
#     flow is reset once its partial messages have stalled for 10 s
#     (pony_rx_stalled).
#   - C spoofs B's address with other epochs while B and A exchange
#     messages (pony_attacker.py spoof): these used to reset A's flow to B.
#     Now they get CHALLENGEs (to the real B, which ignores them), A's flow
#     never fails and the exchange completes.
#
#   pony_attack.sh DRIVER
set -u
DRV=${1:?usage: $0 af_xdp|af_packet}
. "$(dirname "$0")/pony_common.sh"

pony_begin "$DRV"
pony_veth bridge
pony_server SRV echo -s 7 || exit 1
check "B <-> A before the attack (50 messages)" \
	pony_client before --client "$PONY_IP_A:7" --count 50 --max-size 64K

ip netns exec "$PONY_NS_N" "$MST_PY" "$IT_DIR/pony_attacker.py" partials "$PONY_IP_A" \
	>"$IT_TMP/attacker.out" 2>&1
sed 's/^/     /' "$IT_TMP/attacker.out"
OVER=$(pony_counter "$IT_TMP/a.sock" pony_peer_over_share 2>/dev/null || echo 0)
it_log "     A: pony_peer_over_share $OVER"
check "A refused C past its share (pony_peer_over_share > 0)" test "${OVER:-0}" -gt 0
MST_PONY_CLIENT_SECS=30 check "B <-> A during the attack (200 messages, echoed by A)" \
	pony_client during --client "$PONY_IP_A:7" --count 200 --max-size 64K

stalled() { [ "$(pony_counter "$IT_TMP/a.sock" pony_rx_stalled 2>/dev/null || echo 0)" -ge 1 ]; }
for _ in $(seq 150); do stalled && break; sleep 0.1; done
check "C's stalled partial messages expired with its flow (pony_rx_stalled)" stalled
check "A lists no flow to C any more" \
	bash -c "! '$MUSTANGCTL' --ctl '$IT_TMP/a.sock' pony | grep -q 'peer: $PONY_IP_C'"

FAILED0=$(pony_counter "$IT_TMP/a.sock" pony_flows_failed 2>/dev/null || echo 0)
ip netns exec "$PONY_NS_N" "$MST_PY" "$IT_DIR/pony_attacker.py" spoof "$PONY_IP_A" \
	--as "$PONY_IP_B" --count 20000 >"$IT_TMP/spoof.out" 2>&1 &
SPOOF=$!
IT_BG_PIDS+=("$SPOOF")
MST_PONY_CLIENT_SECS=30 check "B <-> A while C spoofs B with other epochs (300 messages)" \
	pony_client spoofed --client "$PONY_IP_A:7" --count 300 --max-size 64K
wait "$SPOOF"
sed 's/^/     /' "$IT_TMP/spoof.out"
UNVAL=$(pony_counter "$IT_TMP/a.sock" pony_unvalidated 2>/dev/null || echo 0)
FAILED=$(pony_counter "$IT_TMP/a.sock" pony_flows_failed 2>/dev/null || echo 1)
it_log "     A: pony_unvalidated $UNVAL, pony_flows_failed $FAILED"
check "A challenged the spoofed packets (pony_unvalidated >= 20000)" test "${UNVAL:-0}" -ge 20000
check "no flow of A failed while C spoofed B" test "${FAILED:-1}" -eq "${FAILED0:-0}"
pony_stop "$SRV"
check "daemon A still answers" quiet ctl_a status
it_end
