#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Mutation run: does the suite fail when the software is wrong? Applies each
# small, deliberate bug of a list (tests/mutations.txt) to a scratch copy of
# the tree, one at a time, rebuilds, runs the tests the list says must catch
# it, and prints which mutations survived (every named test still passed).
# Not part of `meson test` (a full run takes minutes to tens of minutes);
# see docs/testing.md.
#
#   scripts/mutate.sh [-l LIST] [-k] [FILTER]
#     -l LIST   mutation list (default tests/mutations.txt)
#     -k        keep the scratch directory (printed) instead of removing it
#     FILTER    only mutations whose id or file contains FILTER
#
# The list: one mutation per line, four fields separated by " @@ ":
#   FILE @@ PATTERN @@ REPLACEMENT @@ TEST [TEST...]
# FILE is relative to the tree; PATTERN is a literal string (not a regex)
# that must occur exactly once in FILE; the TESTs are meson test names.
# Lines starting with # and blank lines are ignored. A mutation is
#   caught     a named test failed (or timed out),
#   survived   every named test passed: a hole in the suite,
#   invalid    the pattern is not found exactly once, or the tree no longer
#              compiles (fix the list; neither counts toward the score).
#
# The scratch copy is the work tree as it is (tracked and untracked files,
# uncommitted changes included, .gitignore'd files such as build/ left out)
# under /tmp; the work tree is never written. Integration tests named in
# the list need root, like `meson test`.
#
# Exit: 0 when at least MST_MUTATE_MIN (default 90) percent of the valid
# mutations were caught and none was invalid, 1 otherwise, 2 usage.

set -u
cd "$(dirname "$0")/.." || exit 2
SRC=$PWD
LIST=$SRC/tests/mutations.txt
KEEP=0
FILTER=""
MIN=${MST_MUTATE_MIN:-90}
TEST_TIMEOUT=${MST_MUTATE_TIMEOUT:-1800}
# One test at a time, meson's timeouts x3: a machine shared with other
# builds must not turn a slow pass into a "caught".
MESON_TEST=(meson test --no-rebuild --num-processes 1 --timeout-multiplier 3)

while getopts "l:kh" o; do
	case $o in
	l) LIST=$(realpath "$OPTARG") ;;
	k) KEEP=1 ;;
	h) sed -n '4,33p' "$0"; exit 0 ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || { echo "usage: $0 [-l LIST] [-k] [FILTER]" >&2; exit 2; }
FILTER=${1:-}
[ -r "$LIST" ] || { echo "mutate: cannot read $LIST" >&2; exit 2; }

SCRATCH=$(mktemp -d /tmp/mustang-mutate.XXXXXX) || exit 1
cleanup() {
	if [ "$KEEP" = 1 ]; then
		echo "mutate: scratch tree kept in $SCRATCH"
	else
		rm -rf -- "$SCRATCH"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

log() { printf '%s\n' "$*"; }

# The tree as it is, without build directories or other ignored files.
log "mutate: copying $SRC to $SCRATCH/tree"
mkdir "$SCRATCH/tree"
git -C "$SRC" ls-files -z --cached --others --exclude-standard |
	(cd "$SRC" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) |
	tar -C "$SRC" --null -T - -cf - | tar -C "$SCRATCH/tree" -xf - || exit 1
T=$SCRATCH/tree
B=$SCRATCH/build

log "mutate: building (meson setup + ninja in $B)"
meson setup "$B" "$T" >"$SCRATCH/setup.log" 2>&1 ||
	{ tail -n 20 "$SCRATCH/setup.log"; exit 1; }
ninja -C "$B" >"$SCRATCH/build.log" 2>&1 || { tail -n 30 "$SCRATCH/build.log"; exit 1; }

# Parse the list into arrays.
ids=() files=() pats=() reps=() tests=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
	n=$((n + 1))
	case "$line" in '' | '#'*) continue ;; esac
	f=${line%% @@ *}; rest=${line#* @@ }
	p=${rest%% @@ *}; rest=${rest#* @@ }
	r=${rest%% @@ *}; t=${rest#* @@ }
	if [ "$(grep -o ' @@ ' <<<"$line" | wc -l)" -ne 3 ] || [ -z "$t" ]; then
		log "mutate: $LIST:$n: want 'FILE @@ PATTERN @@ REPLACEMENT @@ TESTS'"
		exit 2
	fi
	id="L$n:$f"
	if [ -n "$FILTER" ] && [[ "$id" != *"$FILTER"* ]]; then
		continue
	fi
	ids+=("$id") files+=("$f") pats+=("$p") reps+=("$r") tests+=("$t")
done <"$LIST"
[ ${#ids[@]} -gt 0 ] || { log "mutate: no mutation selected"; exit 2; }

# Baseline: every named test must pass on the unmutated tree, or a "caught"
# would mean nothing.
# shellcheck disable=SC2207
all_tests=($(printf '%s\n' "${tests[@]}" | tr ' ' '\n' | sort -u))
log "mutate: baseline: ${all_tests[*]}"
if ! timeout "$TEST_TIMEOUT" "${MESON_TEST[@]}" -C "$B" "${all_tests[@]}" \
	>"$SCRATCH/baseline.log" 2>&1; then
	grep -E '^ *[0-9]+/[0-9]+ ' "$SCRATCH/baseline.log" | grep -v ' OK '
	log "mutate: the named tests do not all pass on the unmutated tree; fix that first"
	exit 1
fi

# apply FILE PATTERN REPLACEMENT : literal replace of the single occurrence.
apply() {
	/usr/bin/python3 - "$T/$1" "$2" "$3" <<'EOF'
import sys
path, pat, rep = sys.argv[1], sys.argv[2], sys.argv[3]
s = open(path).read()
if s.count(pat) != 1:
    print("pattern occurs %d times" % s.count(pat))
    sys.exit(1)
open(path, "w").write(s.replace(pat, rep, 1))
EOF
}

caught=0 survived=0 invalid=0
survivors=() invalids=()
start=$(date +%s)
for i in "${!ids[@]}"; do
	id=${ids[$i]} f=${files[$i]}
	cp -p "$T/$f" "$SCRATCH/orig" || { invalids+=("$id (no such file)"); invalid=$((invalid + 1)); continue; }
	if ! why=$(apply "$f" "${pats[$i]}" "${reps[$i]}"); then
		verdict=invalid; invalids+=("$id ($why)")
	elif ! ninja -C "$B" >"$SCRATCH/m.log" 2>&1; then
		verdict=invalid; invalids+=("$id (does not compile)")
	else
		# shellcheck disable=SC2086
		if timeout "$TEST_TIMEOUT" "${MESON_TEST[@]}" -C "$B" ${tests[$i]} \
			>"$SCRATCH/m.log" 2>&1; then
			verdict=survived; survivors+=("$id: '${pats[$i]}' -> '${reps[$i]}' (${tests[$i]})")
		else
			verdict=caught
			by=$(grep -E '^ *[0-9]+/[0-9]+ ' "$SCRATCH/m.log" | grep -vE ' (OK|SKIP) ' |
				sed -E 's/^ *[0-9]+\/[0-9]+ +[^ ]+ \/ ([^ ]+).*/\1/' | tr '\n' ' ')
		fi
	fi
	# Restore the content with a new mtime, so ninja rebuilds what the
	# mutation touched.
	cp "$SCRATCH/orig" "$T/$f" && touch "$T/$f"
	case $verdict in
	caught) caught=$((caught + 1)); log "caught    $id  by ${by:-timeout}" ;;
	survived) survived=$((survived + 1)); log "SURVIVED  $id  (${tests[$i]})" ;;
	invalid) invalid=$((invalid + 1)); log "INVALID   ${invalids[-1]}" ;;
	esac
done

valid=$((caught + survived))
pct=0
[ $valid -gt 0 ] && pct=$((100 * caught / valid))
log ""
log "mutate: $caught caught, $survived survived, $invalid invalid of ${#ids[@]}" \
	"($pct% of the valid ones caught) in $(( $(date +%s) - start )) s"
for s in "${survivors[@]}"; do log "  survived: $s"; done
for s in "${invalids[@]}"; do log "  invalid:  $s"; done
[ $invalid -eq 0 ] && [ $pct -ge "$MIN" ]
