#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony between two mustangd over a veth pair (af_xdp or af_packet), each in
# its own network namespace, with examples/pony_echo:
#   - 10,000 messages of mixed sizes up to 16 MiB (mostly small) echoed on
#     8 streams: every one back exactly once, in stream order, intact
#   - the zero-copy send path (registered regions)
#   - a blocking endpoint whose sends wait in libmustang for room
#   - one-sided READ of a registered region, whole and in pieces; an
#     out-of-bounds READ (ERANGE), an unknown key (ENOENT), a region that
#     is not remote-readable (EACCES), a service nobody bound: errors
#     reach the reader; the serving app is never woken (0 events)
#   - mustangctl pony (text and JSON) on both daemons
#
#   pony.sh DRIVER          MST_PONY_COUNT (default 10000) messages
set -u
DRV=${1:?usage: $0 af_xdp|af_packet}
. "$(dirname "$0")/pony_common.sh"
COUNT=${MST_PONY_COUNT:-10000}

pony_begin "$DRV"
pony_veth

pony_server SRV echo -s 7 || exit 1
check "small messages (100, up to 64 KiB)" \
	pony_client smoke --client "$PONY_IP_A:7" --count 100 --max-size 64K
check "$COUNT messages up to 16 MiB, 8 streams, exactly once, in order, intact" \
	pony_client mixed --client "$PONY_IP_A:7" --count "$COUNT" --max-size 16M --streams 8 --window 128
check "zero-copy sends (2000 messages, registered regions)" \
	pony_client zc --client "$PONY_IP_A:7" --count 2000 --max-size 256K --zero-copy -s 1008
# Blocking endpoint: the window (4096) is twice libmustang's op budget (half
# the endpoint's record ring: 2048 with the default socket buffers), so
# sends must wait in the library for completions, keeping the events that
# arrive meanwhile for the next poll; no echo may be lost or reordered.
check "blocking sends: 6000 messages, window 4096 (twice the op budget)" \
	pony_client blocking --client "$PONY_IP_A:7" --count 6000 --max-size 4K --window 4096 --blocking -s 1010
blocked_burst() { sed -n 's/.*blocking sends: up to \([0-9]*\) between two polls/\1/p' "$IT_TMP/blocking.out"; }
check "blocking sends went past the op budget without a poll" test "$(blocked_burst)" -gt 2048

# READ: a fresh server that gets nothing but READs must see no event.
pony_server RSRV reads -s 9 --region 1M || exit 1
KEY=$(pony_server_field reads key)
PKEY=$(pony_server_field reads private-key)
check "READs: whole region, pieces, ERANGE, ENOENT, EACCES, no such service" \
	pony_client read --client "$PONY_IP_A:9" --read "$KEY" --private-key "$PKEY" --region 1M -s 1009
check "pony_echo server RSRV exits 0 on SIGTERM" pony_stop "$RSRV"
check "the serving app was not woken by READs (0 events)" \
	grep -q "echoed 0 messages, 0 bytes, 0 events" "$IT_TMP/reads.out"

pony_flows_ok() { # CTL PEER: mustangctl pony lists a flow to PEER with traffic
	"$MUSTANGCTL" --ctl "$1" pony --json | "$MST_PY" -c '
import json, sys
d = json.load(sys.stdin)
f = [x for x in d["flows"] if x["peer"].startswith(sys.argv[1] + ":")]
sys.exit(0 if d["enabled"] == "yes" and f and f[0]["tx_pkts"] > 0 and f[0]["rx_pkts"] > 0 else 1)' "$2"
}
check "mustangctl pony on A lists the flow to B" pony_flows_ok "$IT_TMP/a.sock" "$PONY_IP_B"
check "mustangctl pony on B lists the flow to A" pony_flows_ok "$IT_TMP/b.sock" "$PONY_IP_A"
check "mustangctl pony (text) shows srtt and cwnd" \
	bash -c "'$MUSTANGCTL' --ctl '$IT_TMP/b.sock' pony | grep -q srtt_us"
ctl_b pony | sed 's/^/     /' | head -n 30
check "A served READs (pony_reads_served > 0)" test "$(pony_counter "$IT_TMP/a.sock" pony_reads_served)" -gt 0
check "pony_echo server SRV exits 0 on SIGTERM" pony_stop "$SRV"
check "daemon A still answers" quiet ctl_a status
check "daemon B still answers" quiet ctl_b status
it_end
