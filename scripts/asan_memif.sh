#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# mustangd under ASan + UBSan through memif start/link/traffic/SIGTERM
# cycles in both roles and every start order (issue 19):
#
#   scripts/asan_memif.sh [CYCLES]      (default 50)
#
# Builds build-asan/ (-Db_sanitize=address,undefined) next to build/ if it
# is not there (a few minutes on 2 cores), then runs
# tests/integration/memif_link.sh against it with CYCLES/3 runs of each
# start order (each one: both daemons up, link up, SIGTERM to both), the
# server stopped under a reconnecting client CYCLES/5 times, and the
# SIGKILL-and-restart of each role under TCP and Pony traffic. Every
# daemon log is checked for "ERROR: AddressSanitizer" / "runtime error:"
# (memif_link.sh's stop()); any report fails the run. Leak checking is off:
# DPDK's EAL keeps its memory until exit by design.
#
# Not in the default suite: the second build costs CPU every CI run.
set -eu
cd "$(dirname "$0")/.."
CYCLES=${1:-50}
BUILD=${MST_ASAN_BUILD:-build-asan}

if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$BUILD" control/mustangd control/mustangctl examples/echo_client examples/pony_echo >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
MUSTANG_BUILD=$BUILD \
MST_MEMIF_ORDERS=$(((CYCLES + 2) / 3)) \
MST_MEMIF_STOPS=$(((CYCLES + 4) / 5)) \
MST_MEMIF_UP_S=${MST_MEMIF_UP_S:-5} \
	exec bash tests/integration/memif_link.sh
