#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The whole test suite, as root on Debian 12: installs the Debian packages it
# needs (only the missing ones), builds with meson if needed, then runs
# `meson test` (cmocka unit tests + the integration tests against the Linux
# kernel in network namespaces). Exits with meson's status. Idempotent.
#
# With CI=true (the CI sets it) a skipped test fails the run unless it is on
# tests/skips-allowed.txt with a reason (scripts/ci_skips.py over meson's
# testlog.json): meson counts a skip as a pass, and a broken runner (no
# root, no AF_XDP, no clang) would otherwise test nothing and turn green.
#
#   scripts/test.sh [meson test args, e.g. --suite integration]

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh

need_root
ensure_packages "${MST_PACKAGES[@]}" || mst_die "could not install the packages"
ensure_build || mst_die "build failed"
rm -f "$MST_BUILD/meson-logs/testlog.json"
meson test -C "$MST_BUILD" --print-errorlogs "$@"
rc=$?
if [ "${CI:-}" = true ]; then
	"$MST_PY" scripts/ci_skips.py "$MST_BUILD/meson-logs/testlog.json" \
		tests/skips-allowed.txt || rc=1
fi
exit $rc
