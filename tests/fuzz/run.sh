#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
#
# Build a libFuzzer target (tests/fuzz/fuzz_frames.c, or the one
# MST_FUZZ_TARGET names) with clang (ASan + UBSan, independent of the gcc
# main build) and run it for a bounded time over its kept corpus
# (tests/fuzz/corpus/ for fuzz_frames, tests/fuzz/corpus_state/ for
# fuzz_state).
#
#   tests/fuzz/run.sh                 fuzz for MST_FUZZ_SECONDS (default 60)
#   tests/fuzz/run.sh FILE...         run the fuzzer once on each FILE (repro)
#
# Environment:
#   MST_SRC            source root (default: two levels above this script)
#   MST_FUZZ_TARGET    fuzz_frames (default) or fuzz_state
#   MST_FUZZ_SECONDS   fuzzing time, default 60
#   MST_FUZZ_SAVE=1    write new interesting inputs into the target's corpus
#                      (default: into a scratch dir that is thrown away)
#   MST_FUZZ_WORKDIR   build/scratch dir (default: a fresh mktemp -d)
#   MST_FUZZ_JOBS      libFuzzer -fork=N (default: one process)
#   MST_FUZZ_ARGS      extra libFuzzer arguments
#   CLANG              compiler (default: clang)
#
# Exit: 0 clean, 77 clang or its fuzzer/sanitizer runtime missing (skip),
# 1 on any crash, leak, UBSan report, timeout or OOM (the input is printed).
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=${MST_SRC:-$(cd "$here/../.." && pwd)}
fz="$src/tests/fuzz"
clang=${CLANG:-clang}
seconds=${MST_FUZZ_SECONDS:-60}
target=${MST_FUZZ_TARGET:-fuzz_frames}
case "$target" in
fuzz_frames) corpus="$fz/corpus" ;;
fuzz_state) corpus="$fz/corpus_state" ;;
*) echo "fuzz: unknown target $target"; exit 1 ;;
esac

if ! command -v "$clang" >/dev/null 2>&1; then
	echo "fuzz: $clang not found (apt-get install clang libclang-rt-14-dev); skipping"
	exit 77
fi

work=${MST_FUZZ_WORKDIR:-}
if [ -z "$work" ]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/mst-fuzz.XXXXXX") || exit 1
fi
mkdir -p "$work/scratch" "$work/artifacts" || exit 1

cflags="-g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

# The toolchain: can clang link a sanitized libFuzzer binary at all?
printf '%s\n' '#include <stdint.h>' '#include <stddef.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$work/probe.c"
# shellcheck disable=SC2086
if ! "$clang" $cflags "$work/probe.c" -o "$work/probe" >"$work/probe.log" 2>&1; then
	echo "fuzz: $clang cannot build -fsanitize=fuzzer,address,undefined" \
		"(libclang-rt-14-dev missing?); skipping"
	sed 's/^/  /' "$work/probe.log" | head -5
	exit 77
fi

# The stack (plain C, no DPDK) and the harness. getrandom() is renamed so the
# stack's secret, hence ISNs and cookies, are deterministic: a crash found
# once reproduces every time.
# calloc()/free() of the stack go through fuzz_frames.c, which keeps big
# blocks (the sim's 80 MiB packet pool, the timer wheel) from one sim to the
# next: see mst_fuzz_calloc() there.
echo "fuzz: building $work/$target"
nrepro=$#
for a in "$@"; do
	printf '%s\n' "$a"
done >"$work/repro.list"
objs=
for f in "$src"/common/*.c "$src"/transport/net/*.c "$src"/transport/tcp/*.c \
	"$src"/transport/sim/*.c "$src"/transport/pony/*.c; do
	o="$work/obj_$(basename "$f" .c).o"
	case "$f" in
	*/transport/sim/sim.c) alloc=mst_fuzz_calloc_pool ;;
	*/transport/tcp/tcp.c) alloc=mst_fuzz_calloc ;;
	*) alloc= ;;
	esac
	# Only one-argument free() calls are redirected: a function pointer
	# member called free (io.free(ctx, p), fops->free(...)) keeps its name.
	set -- -Dgetrandom=mst_fuzz_getrandom
	[ -n "$alloc" ] && set -- "$@" "-Dcalloc(n,s)=$alloc(n,s)" \
		'-DMST_FZ_SEL(a,b,c,d,name,...)=name' \
		'-Dfree(...)=MST_FZ_SEL(__VA_ARGS__,free,free,free,mst_fuzz_free,)(__VA_ARGS__)'
	# shellcheck disable=SC2086
	if ! "$clang" $cflags "$@" -I "$src/include" -I "$src" -c "$f" -o "$o"; then
		[ -n "$alloc" ] || { echo "fuzz: build failed"; exit 1; }
		echo "fuzz: $f does not build with the allocation hooks;" \
			"building it without (slower fuzzing)"
		# shellcheck disable=SC2086
		"$clang" $cflags -Dgetrandom=mst_fuzz_getrandom -I "$src/include" -I "$src" \
			-c "$f" -o "$o" || { echo "fuzz: build failed"; exit 1; }
	fi
	objs="$objs $o"
done
# shellcheck disable=SC2086
if ! "$clang" $cflags -I "$src/include" -I "$src" "$fz/$target.c" $objs -lm \
	-o "$work/$target"; then
	echo "fuzz: build failed"
	exit 1
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=1:abort_on_error=0:symbolize=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}print_stacktrace=1:halt_on_error=1"

# libFuzzer's default error exit code is 77, which meson reads as "skipped".
common="-error_exitcode=1 -timeout_exitcode=1 -timeout=20 -rss_limit_mb=2560
	-artifact_prefix=$work/artifacts/"

if [ "$nrepro" -gt 0 ]; then
	rc=0
	while IFS= read -r f; do
		# shellcheck disable=SC2086
		"$work/$target" $common -runs=1 "$f" || rc=1
	done <"$work/repro.list"
	exit $rc
fi

if [ "${MST_FUZZ_SAVE:-0}" = 1 ]; then
	dirs="$corpus"
else
	dirs="$work/scratch $corpus"
fi
fork=
if [ -n "${MST_FUZZ_JOBS:-}" ]; then
	fork="-fork=$MST_FUZZ_JOBS -ignore_crashes=0"
fi

echo "fuzz: running $target for ${seconds}s over $corpus (work dir $work)"
# shellcheck disable=SC2086
"$work/$target" $common -max_total_time="$seconds" -print_final_stats=1 \
	$fork ${MST_FUZZ_ARGS:-} $dirs
rc=$?

found=$(ls "$work/artifacts" 2>/dev/null)
if [ $rc -ne 0 ] || [ -n "$found" ]; then
	echo "fuzz: FAILED (libFuzzer exit $rc)"
	for f in $found; do
		echo "fuzz: crashing input: $work/artifacts/$f"
	done
	echo "fuzz: reproduce with: $fz/run.sh <input>;" \
		"minimize with: $work/$target -minimize_crash=1 -runs=10000 <input>"
	[ $rc -eq 0 ] && rc=1
	[ $rc -eq 77 ] && rc=1
	exit $rc
fi
[ -z "${MST_FUZZ_WORKDIR:-}" ] && rm -rf "$work"
echo "fuzz: clean"
exit 0
