# SPDX-License-Identifier: BSD-3-Clause
# shellcheck shell=bash
#
# Shared shell helpers for scripts/*.sh and tests/integration/*.sh.
# Source it; it defines functions and a few variables, and runs nothing.
#
#   need_root [rc]          exit rc (default 1) unless running as root
#   ensure_packages PKG...  apt-get install only the missing Debian packages
#   ensure_build            meson setup (once) / ninja (always), idempotent
#   topo_up NAME [mustang|linux] [SUBNET]
#                           two network namespaces joined by a veth pair
#   topo_down               delete every namespace this shell created
#   start_mustangd ARG...   mustangd in the Mustang namespace, in background;
#                           returns once `mustangctl status` answers
#   stop_mustangd           SIGTERM by PID, wait; SIGKILL + fail after 10 s
#   mst_cleanup             stop_mustangd (quietly) + topo_down; for traps
#
# Topology (topo_up NAME): namespaces mst-<pid>-NAME-m (Mustang's end) and
# mst-<pid>-NAME-l (the Linux peer), veth "mst0" <-> "lnx0" created directly
# inside them so nothing ever appears in the host namespace. The Linux end
# gets 10.77.SUBNET.1/24; Mustang's end has no kernel address and IPv6
# disabled (the kernel must stay silent on it) and mustangd is given
# 10.77.SUBNET.2/24 with --ip. Checksum offloads are off on both ends so the
# kernel puts real checksums in the frames that AF_PACKET/AF_XDP see.
# With "linux" as second argument both ends are plain kernel hosts (.1, .2),
# the Linux<->Linux baseline.
#
# Everything is tracked by PID and by the names this shell created; nothing
# is ever killed or deleted by a name pattern.

MST_SRC=${MUSTANG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MST_BUILD=${MUSTANG_BUILD:-$MST_SRC/build}
MUSTANGD=$MST_BUILD/control/mustangd
MUSTANGCTL=$MST_BUILD/control/mustangctl
# Debian's interpreter: python3-scapy is a Debian package, and a python3
# earlier in PATH (pyenv, venv) would not see it.
MST_PY=/usr/bin/python3

MST_NETNS_CREATED=()   # namespaces this shell created (topo_down deletes them)
MST_DAEMON_PID=""      # mustangd started by start_mustangd
MST_DAEMON_LOG=""
MST_DAEMON_CTL=""
MST_DAEMON_RC=""       # exit status seen by stop_mustangd
MST_TMP_CREATED=()     # temp files/dirs start_mustangd made (mst_cleanup removes)

mst_log() { printf '%s\n' "$*" >&2; }
mst_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
	local rc=${1:-1}
	if [ "$(id -u)" -ne 0 ]; then
		mst_log "$(basename "$0"): must run as root (network namespaces, veth, AF_XDP)"
		exit "$rc"
	fi
}

# ensure_packages PKG... : install the Debian packages that are not installed.
# apt-get update only when the install fails (e.g. no package lists yet).
ensure_packages() {
	local missing=() p st
	for p in "$@"; do
		st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
		case "$st" in
		ii*) ;;
		*) missing+=("$p") ;;
		esac
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	mst_log "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
		mst_log "apt-get install failed; updating package lists and retrying"
		apt-get update || return 1
		apt-get install -y --no-install-recommends "${missing[@]}" || return 1
	fi
}

# The Debian packages every script and test needs, by name.
MST_PACKAGES=(meson ninja-build pkg-config gcc dpdk-dev libdpdk-dev libnuma-dev
	libcmocka-dev python3 python3-scapy socat iproute2 iputils-ping ethtool
	tcpdump procps clang libclang-rt-14-dev curl wrk bison flex prometheus
	redis-server redis-tools nginx-light memcached libmemcached-tools iperf3)

# ensure_build : configure once, then (re)build; safe to run any number of times.
ensure_build() {
	local b=$MST_BUILD
	if [ -f "$b/build.ninja" ]; then
		:
	elif [ -d "$b/meson-private" ]; then
		meson setup --wipe "$b" "$MST_SRC" --buildtype=release || return 1
	else
		meson setup "$b" "$MST_SRC" --buildtype=release || return 1
	fi
	ninja -C "$b" || return 1
}

# --- topology -------------------------------------------------------------

# topo_up NAME [mustang|linux] [SUBNET]
# Sets: TOPO_NS_M TOPO_NS_L (namespaces), TOPO_IF_M TOPO_IF_L (interfaces),
# TOPO_IP_M TOPO_IP_L (addresses, no prefix), TOPO_PREFIX, TOPO_MAC_M,
# TOPO_MAC_L.
topo_up() {
	local name=$1 kind=${2:-mustang} subnet=${3:-1}
	local m="mst-$$-$name-m" l="mst-$$-$name-l" ns
	TOPO_NS_M=$m TOPO_NS_L=$l TOPO_IF_M=mst0 TOPO_IF_L=lnx0
	TOPO_IP_L=10.77.$subnet.1 TOPO_IP_M=10.77.$subnet.2 TOPO_PREFIX=24
	[ "$kind" = linux ] && TOPO_IF_M=lnx1

	for ns in "$m" "$l"; do
		ip netns add "$ns" || return 1
		MST_NETNS_CREATED+=("$ns")
		# Before any link exists, so no interface ever gets an IPv6 address,
		# router solicitation or MLD report: the wire carries only what the
		# tests send.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 >/dev/null || return 1
		ip -n "$ns" link set lo up || return 1
	done
	ip link add "$TOPO_IF_M" netns "$m" type veth peer name "$TOPO_IF_L" netns "$l" ||
		return 1
	# Real checksums on the wire in both directions (veth would otherwise
	# leave CHECKSUM_PARTIAL packets whose checksum field is only a seed),
	# and the kernel verifies in software what Mustang sends.
	ip netns exec "$m" ethtool -K "$TOPO_IF_M" rx off tx off >/dev/null 2>&1 || true
	ip netns exec "$l" ethtool -K "$TOPO_IF_L" rx off tx off >/dev/null 2>&1 || true
	ip -n "$l" addr add "$TOPO_IP_L/$TOPO_PREFIX" dev "$TOPO_IF_L" || return 1
	if [ "$kind" = linux ]; then
		ip -n "$m" addr add "$TOPO_IP_M/$TOPO_PREFIX" dev "$TOPO_IF_M" || return 1
	fi
	ip -n "$m" link set "$TOPO_IF_M" up || return 1
	ip -n "$l" link set "$TOPO_IF_L" up || return 1
	TOPO_MAC_M=$(ip netns exec "$m" cat "/sys/class/net/$TOPO_IF_M/address")
	TOPO_MAC_L=$(ip netns exec "$l" cat "/sys/class/net/$TOPO_IF_L/address")
	# The link is up when both ends are; wait (briefly) for the carrier.
	local i
	for i in $(seq 50); do
		[ "$(ip netns exec "$l" cat "/sys/class/net/$TOPO_IF_L/operstate")" = up ] && break
		sleep 0.1
	done
	return 0
}

# topo_down : delete the namespaces this shell created (deleting a namespace
# deletes its veth end, and with it the pair). Idempotent.
topo_down() {
	local ns
	for ns in "${MST_NETNS_CREATED[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	MST_NETNS_CREATED=()
}

# --- the daemon -----------------------------------------------------------

# mst_ctl ARG... : mustangctl against the running daemon's socket, bounded.
mst_ctl() {
	timeout 10 "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" "$@"
}

# start_mustangd [--ns NS] [--ctl PATH] [--log FILE] -- MUSTANGD-ARG...
# Starts mustangd in the background in namespace NS (default TOPO_NS_M, none
# if empty), with --ctl PATH (default: a fresh temp dir). Must not be called
# from a subshell ($(...)): the daemon must be this shell's child so that
# stop_mustangd can wait for it and read its exit status.
start_mustangd() {
	local ns=${TOPO_NS_M-} ctl="" log="" i
	while [ $# -gt 0 ]; do
		case "$1" in
		--ns) ns=$2; shift 2 ;;
		--ctl) ctl=$2; shift 2 ;;
		--log) log=$2; shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	if [ ! -x "$MUSTANGD" ] || [ ! -x "$MUSTANGCTL" ]; then
		mst_log "start_mustangd: $MUSTANGD or $MUSTANGCTL not built"
		return 1
	fi
	if [ -z "$ctl" ]; then
		ctl=$(mktemp -d /tmp/mustang-ctl.XXXXXX) || return 1
		MST_TMP_CREATED+=("$ctl")
		ctl=$ctl/mustang.sock
	fi
	if [ -z "$log" ]; then
		log=$(mktemp /tmp/mustangd-log.XXXXXX) || return 1
		MST_TMP_CREATED+=("$log")
	fi
	MST_DAEMON_CTL=$ctl MST_DAEMON_LOG=$log MST_DAEMON_RC=""
	if [ -n "$ns" ]; then
		# ip netns exec execs the command: $! is mustangd's own PID.
		ip netns exec "$ns" "$MUSTANGD" --ctl "$ctl" "$@" </dev/null >"$log" 2>&1 &
	else
		"$MUSTANGD" --ctl "$ctl" "$@" </dev/null >"$log" 2>&1 &
	fi
	MST_DAEMON_PID=$!
	for i in $(seq 200); do
		if ! mst_pid_running "$MST_DAEMON_PID"; then
			wait "$MST_DAEMON_PID" 2>/dev/null
			MST_DAEMON_RC=$?
			mst_log "mustangd exited during start-up (status $MST_DAEMON_RC); its log:"
			sed 's/^/  | /' "$log" >&2
			MST_DAEMON_PID=""
			return 1
		fi
		if timeout 5 "$MUSTANGCTL" --ctl "$ctl" status >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	mst_log "mustangd (pid $MST_DAEMON_PID) did not answer on $ctl within 20 s; its log:"
	sed 's/^/  | /' "$log" >&2
	return 1
}

# mst_pid_running PID : true while PID exists and is not a zombie (a zombie
# child still answers kill -0 until it is reaped).
mst_pid_running() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# mst_wait_exit PID SECONDS : wait for PID to exit; false on timeout.
mst_wait_exit() {
	local pid=$1 n=$(($2 * 10)) i
	for i in $(seq "$n"); do
		mst_pid_running "$pid" || return 0
		sleep 0.1
	done
	! mst_pid_running "$pid"
}

# stop_mustangd [SIGNAL] : signal the daemon (default TERM) by PID, wait up to
# 10 s; if it is still there, SIGKILL it and fail. Sets MST_DAEMON_RC.
# upgrade_mustangd [mustangctl upgrade options...] : a live upgrade of the
# daemon start_mustangd started; the answer (JSON) goes to stdout. The new
# daemon becomes MST_DAEMON_PID (not a child of this shell: it was started
# by the old one, which must exit 0). Returns mustangctl's status, 1 if the
# old daemon did not exit cleanly.
upgrade_mustangd() {
	local old=$MST_DAEMON_PID out rc new
	out=$("$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" --json upgrade "$@")
	rc=$?
	printf '%s\n' "$out"
	[ "$rc" -eq 0 ] || return "$rc"
	new=$(printf '%s' "$out" | sed -n 's/.*"new_pid":\([0-9]*\).*/\1/p')
	[ -n "$new" ] || return 1
	if ! mst_wait_exit "$old" 10; then
		mst_log "old mustangd (pid $old) still running 10 s after the upgrade"
		return 1
	fi
	if [ "${MST_DAEMON_ADOPTED:-0}" = 1 ]; then
		# Not our child (an earlier upgrade started it): its last words.
		grep -q "upgrade: pid $new took over" "$MST_DAEMON_LOG" 2>/dev/null
		rc=$?
	else
		wait "$old" 2>/dev/null
		rc=$?
	fi
	MST_DAEMON_PID=$new
	MST_DAEMON_ADOPTED=1
	if [ "$rc" -ne 0 ]; then
		mst_log "old mustangd exited with status $rc after the upgrade"
		return 1
	fi
	return 0
}

stop_mustangd() {
	local sig=${1:-TERM} pid=$MST_DAEMON_PID
	[ -n "$pid" ] || return 0
	kill -s "$sig" "$pid" 2>/dev/null
	if [ "${MST_DAEMON_ADOPTED:-0}" = 1 ]; then
		# Started by the daemon it replaced: not our child, so its exit
		# status is what it logged.
		MST_DAEMON_ADOPTED=0
		MST_DAEMON_PID=""
		if ! mst_wait_exit "$pid" 10; then
			kill -KILL "$pid" 2>/dev/null
			MST_DAEMON_RC=137
			return 1
		fi
		if tail -n 3 "$MST_DAEMON_LOG" 2>/dev/null | grep -q 'info: stopped'; then
			MST_DAEMON_RC=0
			return 0
		fi
		MST_DAEMON_RC=1
		return 1
	fi
	if ! mst_wait_exit "$pid" 10; then
		mst_log "mustangd (pid $pid) still running 10 s after SIG$sig; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		MST_DAEMON_RC=$?
		MST_DAEMON_PID=""
		return 1
	fi
	wait "$pid" 2>/dev/null
	MST_DAEMON_RC=$?
	MST_DAEMON_PID=""
	if [ "$MST_DAEMON_RC" -ne 0 ]; then
		mst_log "mustangd exited with status $MST_DAEMON_RC after SIG$sig"
		return 1
	fi
	return 0
}

# mst_cleanup : for `trap mst_cleanup EXIT`. Never fails, never prompts.
mst_cleanup() {
	if [ -n "$MST_DAEMON_PID" ]; then
		kill -TERM "$MST_DAEMON_PID" 2>/dev/null
		mst_wait_exit "$MST_DAEMON_PID" 5 || kill -KILL "$MST_DAEMON_PID" 2>/dev/null
		wait "$MST_DAEMON_PID" 2>/dev/null
		MST_DAEMON_PID=""
	fi
	topo_down
	local t
	for t in "${MST_TMP_CREATED[@]}"; do rm -rf -- "$t"; done
	MST_TMP_CREATED=()
}

# ping_stats NS ADDR COUNT INTERVAL [SIZE] : ping from namespace NS and print
# "received min avg max mdev" (ms); false if no reply at all.
ping_stats() {
	local out rx rtt
	out=$(ip netns exec "$1" ping -n -q -c "$3" -i "$4" -s "${5:-56}" -W 2 "$2" 2>&1)
	rx=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' <<<"$out")
	rtt=$(sed -n 's#^rtt min/avg/max/mdev = \([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\)/\([0-9.]*\) ms#\1 \2 \3 \4#p' <<<"$out")
	[ -n "$rtt" ] || return 1
	echo "${rx:-0} $rtt"
}
