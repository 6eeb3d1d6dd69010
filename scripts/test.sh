#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The whole test suite, as root on Debian 12: installs the Debian packages it
# needs (only the missing ones), builds with meson if needed, then runs
# `meson test` (cmocka unit tests + the integration tests against the Linux
# kernel in network namespaces). Exits with meson's status. Idempotent.
#
#   sudo scripts/test.sh [meson test args, e.g. --suite integration]

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh

need_root
ensure_packages "${MST_PACKAGES[@]}" || mst_die "could not install the packages"
ensure_build || mst_die "build failed"
exec meson test -C "$MST_BUILD" --print-errorlogs "$@"
