#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Pony between two mustangd joined by memif (role=server / client, as
# scripts/bench.sh does): messages of mixed sizes up to 16 MiB echoed on
# 8 streams, exactly once, in order, intact; a READ; mustangctl pony.
#
#   pony_memif.sh           MST_PONY_COUNT (default 2000) messages
set -u
. "$(dirname "$0")/pony_common.sh"
COUNT=${MST_PONY_COUNT:-2000}

pony_begin -
pony_memif
pony_server SRV echo -s 7 || exit 1
check "memif: $COUNT messages up to 16 MiB" \
	pony_client mixed --client "$PONY_IP_A:7" --count "$COUNT" --max-size 16M --window 128
KEY=$(pony_server_field echo key)
check "memif: READ of a registered region" \
	pony_client read --client "$PONY_IP_A:7" --read "$KEY" --region 1M -s 1009
check "memif: mustangctl pony lists the flow" \
	bash -c "'$MUSTANGCTL' --ctl '$IT_TMP/b.sock' pony | grep -q 'peer: $PONY_IP_A'"
check "pony_echo server SRV exits 0 on SIGTERM" pony_stop "$SRV"
it_end
