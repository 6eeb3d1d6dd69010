#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# scripts/bench.sh --quick works: it builds every topology (kernel veth
# with offloads on and off, two mustangd over memif, Linux <-> Mustang over
# af_xdp), runs every case (and the pony_* cases over memif), prints the
# Markdown tables and writes the JSON
# and the PNG chart. Checks that each run produced a result and a sane
# max_stall_us (every mode, both stacks), not the figures (those belong
# to the full run on a quiet machine).

. "$(dirname "$0")/common.sh"
it_begin af_xdp

OUT=$IT_TMP/results
MUSTANG_BUILD=$MST_BUILD timeout 540 bash "$MST_SRC/scripts/bench.sh" --quick --out "$OUT" \
	>"$IT_TMP/table.md" 2>"$IT_TMP/bench.err"
rc=$?
cat "$IT_TMP/table.md"
check "bench.sh --quick exits 0 (stderr: $(tail -n 3 "$IT_TMP/bench.err" | tr '\n' ' '))" test "$rc" -eq 0
check "the main table: 25 rows (5 cases x 5 topologies)" \
	test "$(grep -c -E '^\| (tcp|udp)_' "$IT_TMP/table.md")" -eq 25
check "the Pony table: 4 rows" test "$(grep -c '^| pony_' "$IT_TMP/table.md")" -eq 4
check "the PNG chart exists" "$MST_PY" -c \
	"import sys; sys.exit(open(sys.argv[1], 'rb').read(8) != b'\\x89PNG\\r\\n\\x1a\\n')" "$OUT/latest.png"
check "latest.json: 29 runs, each with completed ops" "$MST_PY" - "$OUT/latest.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = [f"{r['topology']}/{r['case']}" for r in d["runs"]
       if not r["result"] or r["result"]["ops"] == 0]
if len(d["runs"]) != 29 or bad:
    print(f"  {len(d['runs'])} runs; without a result: {', '.join(bad)}")
    sys.exit(1)
PY
check "every run (all modes, both stacks) has 0 < max_stall_us <= max_conn_stall_us <= its length" \
	"$MST_PY" - "$OUT/latest.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
for r in d["runs"]:
    x = r["result"]
    if not x:
        continue
    S, SC, E = x.get("max_stall_us", -1), x.get("max_conn_stall_us", -1), x["elapsed_s"] * 1e6
    if not (0 < S <= SC * 1.01 + 1 and SC <= E + 1):
        bad.append(f"{r['topology']}/{r['case']}: max_stall_us {S} max_conn_stall_us {SC} elapsed_us {E:.0f}")
print("\n".join("  " + b for b in bad))
sys.exit(1 if bad else 0)
PY
it_end
