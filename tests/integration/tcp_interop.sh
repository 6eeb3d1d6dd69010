#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# TCP interoperability with the Linux kernel: a Linux client in the peer
# namespace against mustangd's built-in services (tcp_client.py does the
# transfers and checks every byte).
#
#   tcp_interop.sh DRIVER [bulk|netem|conns|all]     (default all)
#
#   bulk   discard BYTES, chargen BYTES (RFC 864 pattern checked byte by
#          byte), echo BYTES with SHA-256 both ways; counters cross-checked
#   netem  echo NETEM_BYTES through a netem-style impairment in BOTH
#          directions (tcp_netem.py: this kernel has no sch_netem): 1% loss;
#          25% reordering with 5 ms delay; 1% duplication; 0.1% corruption.
#          Exact bytes every time; the recovery counters move (with loss:
#          retransmits, SACK blocks read and fast retransmits, so a
#          timeout-only recovery fails).
#   conns  CONNS (default 10000) concurrent connections to echo, all
#          ESTABLISHED at once (Linux's table and mustangd's counters), each
#          echoes its own message twice, then all close.
#
# Sizes (K/M/G suffixes):
#   MST_TCP_BYTES        clean transfers          (default 64M)
#   MST_TCP_NETEM_BYTES  each netem transfer      (default 16M, or
#                                                  MST_TCP_BYTES if that is set)
#   MST_TCP_CONNS        concurrent connections   (default 10000)
# The full run the TCP issue asks for:
#   MST_TCP_BYTES=1G tests/integration/tcp_interop.sh af_xdp
#
# Exit 0 pass, 1 fail, 77 skip (not root, driver unusable).

. "$(dirname "$0")/common.sh"
DRV=${1:?usage: $0 af_xdp|af_packet [bulk|netem|conns|all]}
PART=${2:-all}
case "$PART" in bulk | netem | conns | all) ;; *) echo "unknown part '$PART'"; exit 2 ;; esac
it_begin "$DRV"

BYTES=${MST_TCP_BYTES:-64M}
NETEM_BYTES=${MST_TCP_NETEM_BYTES:-${MST_TCP_BYTES:-16M}}
CONNS=${MST_TCP_CONNS:-10000}
S=$IT_TMP
CLIENT="$IT_DIR/tcp_client.py"

tcp_bytes() { "$MST_PY" -c "import sys; sys.path.insert(0, '$IT_DIR'); import tcp_client; print(tcp_client.parse_size('$1'))"; }

CONNS_PID=""
tcp_cleanup() {
	local rc=$?
	[ -n "$NETEM_PID" ] && kill -KILL "$NETEM_PID" 2>/dev/null
	[ -n "$CONNS_PID" ] && kill -KILL "$CONNS_PID" 2>/dev/null
	(exit "$rc")
	it_cleanup
}
trap tcp_cleanup EXIT

it_topo_daemon tcp --services echo,discard,chargen
ip=$TOPO_IP_M
# Plenty of ephemeral ports for the connection test (and its TIME_WAITs).
in_linux sysctl -qw net.ipv4.ip_local_port_range="1024 65000"

check "ping before: 2/2" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 2 -i 0.2 -W 2 $ip | grep -q ' 2 received'"

# counter_ge A B KIND NAME MIN : delta of NAME between snapshots >= MIN
counter_ge() {
	local d
	d=$(delta "$1" "$2" "$3" "$4")
	if [ "$d" = missing ] || [ "${d:-0}" -lt "$5" ] 2>/dev/null; then
		echo "  $4 moved by $d, expected >= $5"
		return 1
	fi
}
counter_eq() { # A B KIND NAME VALUE
	local d
	d=$(delta "$1" "$2" "$3" "$4")
	[ "$d" = "$5" ] || { echo "  $4 moved by $d, expected $5"; return 1; }
}
show_delta() { # A B KIND NAME... : log deltas (information, not a check)
	local a=$1 b=$2 k=$3 n out=""; shift 3
	for n in "$@"; do out="$out $n=$(delta "$a" "$b" "$k" "$n")"; done
	it_log "     ($k:$out )"
}

run_bulk() {
	local n
	n=$(tcp_bytes "$BYTES")
	snapshot "$S/b0"
	check "discard: $BYTES from Linux, acknowledged, clean close" \
		in_linux "$MST_PY" "$CLIENT" discard "$ip" "$BYTES"
	snapshot "$S/b1"
	check "discard: tcp_rx_bytes moved by >= $n" counter_ge "$S/b0" "$S/b1" counters tcp_rx_bytes "$n"
	check "chargen: $BYTES to Linux, RFC 864 pattern exact" \
		in_linux "$MST_PY" "$CLIENT" chargen "$ip" "$BYTES"
	snapshot "$S/b2"
	check "chargen: tcp_tx_bytes moved by >= $n" counter_ge "$S/b1" "$S/b2" counters tcp_tx_bytes "$n"
	check "echo: $BYTES both ways, SHA-256 equal" \
		in_linux "$MST_PY" "$CLIENT" echo "$ip" "$BYTES"
	snapshot "$S/b3"
	check "echo: tcp_rx_bytes moved by >= $n" counter_ge "$S/b2" "$S/b3" counters tcp_rx_bytes "$n"
	show_delta "$S/b0" "$S/b3" counters tcp_passive_opens tcp_established tcp_rx_segs \
		tcp_tx_segs tcp_retransmits tcp_rto_timeouts tcp_resets_sent tcp_zero_window_probes
	show_delta "$S/b0" "$S/b3" drops tcp_paws tcp_out_of_window tcp_bad_cksum tcp_ooo_full
	# A clean, in-order path from Linux (monotonic TSvals) gives PAWS
	# (RFC 7323 5.3) nothing to reject.
	check "clean transfers: no segment rejected by PAWS" counter_eq "$S/b0" "$S/b3" drops tcp_paws 0
}

# --- netem, both directions --------------------------------------------------
# (netem_common.sh: tcp_netem.py bridging lnxc/lnxb and lnx0)
# shellcheck source=netem_common.sh
. "$IT_DIR/netem_common.sh"

run_netem() {
	local name args
	if ! netem_insert; then
		fail "netem: could not insert the impairment bridge"
		netem_remove
		return
	fi
	if netem_start && check "through the (idle) netem bridge: ping 2/2" \
		sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 2 -i 0.2 -W 2 $ip | grep -q ' 2 received'"; then
		:
	fi
	netem_stop
	while IFS='|' read -r name args; do
		[ -n "$name" ] || continue
		# shellcheck disable=SC2086
		if ! netem_start $args; then
			fail "netem $name: tcp_netem.py $args did not start"
			netem_stop
			continue
		fi
		snapshot "$S/n0"
		check "echo through netem $name ($args, both directions): $NETEM_BYTES, SHA-256 equal" \
			in_linux "$MST_PY" "$CLIENT" echo "$ip" "$NETEM_BYTES"
		snapshot "$S/n1"
		netem_stop
		case "$name" in
		loss)
			check "netem loss: Mustang retransmitted (tcp_retransmits moved)" \
				counter_ge "$S/n0" "$S/n1" counters tcp_retransmits 1
			# A timeout-only recovery must not pass: Linux SACKs the
			# holes and three duplicate ACKs trigger fast retransmit.
			check "netem loss: Linux's SACK blocks read (tcp_sack_blocks_rx moved)" \
				counter_ge "$S/n0" "$S/n1" counters tcp_sack_blocks_rx 1
			check "netem loss: fast retransmit ran (tcp_fast_retransmits moved)" \
				counter_ge "$S/n0" "$S/n1" counters tcp_fast_retransmits 1
			;;
		reorder)
			check "netem reorder: out-of-order segments queued (tcp_ooo_segs moved)" \
				counter_ge "$S/n0" "$S/n1" counters tcp_ooo_segs 1
			;;
		corrupt)
			check "netem corrupt: corrupted frames dropped on a checksum" \
				sh -c "[ \$(( $(delta "$S/n0" "$S/n1" drops tcp_bad_cksum) + $(delta "$S/n0" "$S/n1" drops ip_bad_cksum) )) -gt 0 ]"
			;;
		esac
		show_delta "$S/n0" "$S/n1" counters tcp_retransmits tcp_fast_retransmits \
			tcp_rto_timeouts tcp_dup_acks tcp_sack_blocks_rx tcp_ooo_segs
		show_delta "$S/n0" "$S/n1" drops tcp_bad_cksum ip_bad_cksum tcp_out_of_window \
			tcp_ooo_full tcp_paws
	done <<-'EOF'
	loss|--loss 1
	reorder|--delay 5 --reorder 25
	duplicate|--duplicate 1
	corrupt|--corrupt 0.1
	EOF
	netem_remove
	check "direct path restored: ping 2/2" \
		sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 2 -i 0.2 -W 2 $ip | grep -q ' 2 received'"
}

# --- 10,000 connections --------------------------------------------------------
run_conns() {
	local hold=$S/conns.hold out rc pid n
	snapshot "$S/c0"
	rm -f "$hold"
	ip netns exec "$TOPO_NS_L" "$MST_PY" "$CLIENT" conns "$ip" "$CONNS" --hold-file "$hold" \
		>"$S/conns.out" 2>&1 &
	pid=$!
	CONNS_PID=$pid
	# While the client holds them all open, look at Mustang's side.
	for n in $(seq 1200); do
		[ -f "$hold" ] && break
		mst_pid_running "$pid" || break
		sleep 0.1
	done
	if [ -f "$hold" ]; then
		snapshot "$S/c1"
		check "conns: mustangd counted >= $CONNS connections established while all are open" \
			counter_ge "$S/c0" "$S/c1" counters tcp_established "$CONNS"
		show_delta "$S/c0" "$S/c1" counters tcp_passive_opens tcp_established tcp_closed \
			tcp_syncookies_sent tcp_syncookies_ok
		show_delta "$S/c0" "$S/c1" drops tcp_no_tcb tcp_listen_overflow
		rm -f "$hold"
	fi
	wait "$pid"
	rc=$?
	CONNS_PID=""
	sed 's/^/  /' "$S/conns.out"
	check "conns: $CONNS concurrent connections opened, held, echoed, closed (client exit $rc)" \
		test "$rc" = 0
	check "mustangd still running after $CONNS connections" mst_pid_running "$MST_DAEMON_PID"
	# Linux closed first: every Mustang side goes CLOSE_WAIT -> LAST_ACK ->
	# CLOSED once the service has closed and Linux ACKed its FIN.
	local d=0
	for n in $(seq 100); do
		snapshot "$S/c2"
		d=$(delta "$S/c0" "$S/c2" counters tcp_closed)
		[ "$d" -ge "$CONNS" ] 2>/dev/null && break
		sleep 0.2
	done
	check "conns: mustangd freed all $CONNS connections after the close (tcp_closed moved by $d)" \
		test "$d" -ge "$CONNS"
	show_delta "$S/c0" "$S/c2" counters tcp_closed tcp_resets_sent tcp_resets_rx tcp_retransmits
	show_delta "$S/c0" "$S/c2" drops tx_full tcp_no_socket tcp_out_of_window
}

case "$PART" in
bulk) run_bulk ;;
netem) run_netem ;;
conns) run_conns ;;
all) run_bulk; run_netem; run_conns ;;
esac

check "ping after: 3/3" sh -c "ip netns exec '$TOPO_NS_L' ping -n -q -c 3 -i 0.2 -W 2 $ip | grep -q ' 3 received'"
check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
check "SIGTERM: mustangd exits 0" stop_mustangd TERM
it_end
