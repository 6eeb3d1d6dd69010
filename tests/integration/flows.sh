#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Flow records against what the Linux peer saw (docs/observability.md).
# mustangd runs with --flow-log FILE; Linux clients (flows_peer.py) talk to
# the built-in echo service and to an echo_server app, then:
#   clean   both FINs: record "fin", bytes each way exactly what the peer's
#           app sent and received, segments each way equal to the peer
#           kernel's tcpi_segs_in/out, no retransmission
#   reset   the peer closes with SO_LINGER 0: "reset_by_peer", bytes exact
#   killed  echo_server gets SIGKILL while holding a connection:
#           "app_died" with the app's pid, command and cgroup, and the peer
#           saw the RST; an engine restart while it was open kept its
#           start time and counts (TCP_FLOW)
#   rotate  the file rotates past --flow-log-max-mb (to FILE.1)
#   ctl     `mustangctl flows` (text, --json, --app, --peer, --follow)
#           lists the same records; periodic records ("interim") for a
#           long flow with --flow-interval-s 1
#   lossy   through tcp_netem.py (2% loss both ways): "fin", bytes exact,
#           retransmissions counted
#
#   flows.sh DRIVER      (af_packet | af_xdp)
#
# Exit 0 pass, 1 fail, 77 skip.

. "$(dirname "$0")/app_common.sh"
app_begin "${1:?usage: $0 af_xdp|af_packet}"
S=$IT_TMP
LOG=$S/flows.jsonl
FP="$IT_DIR/flows_peer.py"

it_topo_daemon flows --flow-log "$LOG" --flow-interval-s 1 --flow-log-max-mb 1
export MUSTANG_CTL=$MST_DAEMON_CTL

# record_for PORT : the final record of the peer's local port PORT is in the log.
record_for() {
	grep -s "\"remote_port\":$1," "$LOG" | grep -q '"type":"end"'
}
port_of() { "$MST_PY" -c 'import json,sys; print(json.loads(sys.argv[1])["port"])' "$1"; }

# --- clean ----------------------------------------------------------------
clean=$(in_linux "$MST_PY" "$FP" clean "$TOPO_IP_M" 7 300000) || fail "clean transfer"
check "clean: a final record" wait_for 5 record_for "$(port_of "$clean")"
check "clean: record matches the peer (fin, bytes, segments)" \
	"$MST_PY" "$FP" check "$LOG" "$clean" fin
check "clean: the built-in service has no app" \
	grep -q "\"remote_port\":$(port_of "$clean"),\"app\":null" "$LOG"

# --- reset by the peer ------------------------------------------------------
reset=$(in_linux "$MST_PY" "$FP" reset "$TOPO_IP_M" 7 5000) || fail "reset transfer"
check "reset: a final record" wait_for 5 record_for "$(port_of "$reset")"
check "reset: record matches the peer (reset_by_peer, bytes)" \
	"$MST_PY" "$FP" check "$LOG" "$reset" reset_by_peer

# --- lossy -----------------------------------------------------------------
# shellcheck source=netem_common.sh
. "$IT_DIR/netem_common.sh"
if netem_insert && netem_start --loss 2 --seed 7; then
	IT_BG_PIDS+=("$NETEM_PID") # killed on an early exit
	lossy=$(in_linux "$MST_PY" "$FP" clean "$TOPO_IP_M" 7 1000000) || fail "lossy transfer"
	netem_stop
	check "lossy: a final record" wait_for 5 record_for "$(port_of "$lossy")"
	check "lossy: record matches the peer (fin, bytes, retransmissions)" \
		"$MST_PY" "$FP" check "$LOG" "$lossy" fin lossy
else
	fail "lossy: the netem bridge did not start"
	netem_stop
fi
netem_remove

# --- an app killed while holding a connection ------------------------------
app_start SRV echo_server "$EXAMPLES/echo_server" -p 7007 || exit 1
rm -f "$S/hold.out"
app_run HOLD hold in_linux "$MST_PY" "$FP" hold "$TOPO_IP_M" 7007 20000
check "killed: the peer's connection is up" wait_for 10 grep -qs ready "$S/hold.out"
sleep 1.2 # at least one periodic record of the open flow
# The flow's statistics travel with its control block (TCP_FLOW record).
check "killed: an engine restart under the open flow" mst_ctl engine restart 0
kill -KILL "$SRV"
app_wait "$SRV" 5
app_wait "$HOLD" 20
check "killed: the peer saw the RST" grep -q '"end": "reset"' "$S/hold.out"
held=$(grep '"port"' "$S/hold.out")
check "killed: a final record" wait_for 5 record_for "$(port_of "$held")"
check "killed: record matches the peer (app_died, bytes)" \
	"$MST_PY" "$FP" check "$LOG" "$held" app_died
check "killed: record names the app (pid, comm, cgroup)" "$MST_PY" -c '
import json, sys
port, pid = int(sys.argv[2]), int(sys.argv[3])
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["remote_port"] == port and r["type"] == "end":
        a = r["app"]
        ok = a and a["pid"] == pid and a["comm"] == "echo_server" and a["cgroup"].startswith("/")
        print("  app:", json.dumps(a))
        sys.exit(0 if ok else 1)
sys.exit(1)' "$LOG" "$(port_of "$held")" "$SRV"
check "killed: start time and counts carried across the engine restart" "$MST_PY" -c '
import json, sys
port = int(sys.argv[2])
recs = [r for r in map(json.loads, open(sys.argv[1])) if r["remote_port"] == port]
first, last = recs[0], recs[-1]
print("  %d records; first %s segs_in %d, last %s segs_in %d" % (len(recs), first["type"],
      first["segs_in"], last["type"], last["segs_in"]))
sys.exit(0 if first["type"] == "interim" and last["type"] == "end" and
         first["start"] == last["start"] and last["segs_in"] >= first["segs_in"] > 0 else 1)' \
	"$LOG" "$(port_of "$held")"
check "killed: periodic records of the open flow came first" \
	grep -q "\"type\":\"interim\".*\"remote_port\":$(port_of "$held")," "$LOG"

# --- the control socket -------------------------------------------------------
check "mustangctl flows lists the clean flow" \
	bash -c "timeout 10 '$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' flows | grep -q ':$(port_of "$clean") .*fin'"
check "mustangctl flows --json --peer IP:PORT gives exactly that flow's records" \
	bash -c "[ \"\$(timeout 10 '$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' flows --json --peer '$TOPO_IP_L:$(port_of "$reset")' | wc -l)\" = 1 ]"
check "mustangctl flows --app PID: only the killed app's" \
	bash -c "out=\$(timeout 10 '$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' flows --json --app $SRV) &&
		[ -n \"\$out\" ] && ! grep -qv '\"pid\":$SRV,' <<<\"\$out\""
check "mustangctl flows --app with a bad pid is a usage error (2)" \
	bash -c "timeout 10 '$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' flows --app 12x; [ \$? = 2 ]"
timeout 3 "$MUSTANGCTL" --ctl "$MST_DAEMON_CTL" flows --follow --json >"$S/follow.out" 2>&1 &
FOLLOW=$!
IT_BG_PIDS+=("$FOLLOW")
sleep 0.8
late=$(in_linux "$MST_PY" "$FP" clean "$TOPO_IP_M" 7 1000) || fail "late transfer"
wait "$FOLLOW" 2>/dev/null
check "mustangctl flows --follow printed a flow that ended after it started" \
	grep -q "\"remote_port\":$(port_of "$late")," "$S/follow.out"

# --- rotation ---------------------------------------------------------------
for i in $(seq 7); do
	in_linux "$MST_PY" -c "
import socket
for _ in range(400):
    s = socket.create_connection(('$TOPO_IP_M', 7)); s.close()" || fail "rotation connections"
done
check "rotation: the log rotated past 1 MiB" wait_for 10 test -s "$LOG.1"
check "rotation: the file is under its limit" test "$(stat -c %s "$LOG")" -le 1048576
check "rotation: both files are valid JSON lines" "$MST_PY" -c '
import json, sys
for p in sys.argv[1:]:
    for line in open(p):
        json.loads(line)' "$LOG" "$LOG.1"
check "metrics: no record lost, every one written" bash -c "
	m=\$(timeout 10 '$MUSTANGCTL' --ctl '$MST_DAEMON_CTL' metrics) &&
	grep -q '^mustang_flow_records_lost_total{engine=\"0\"} 0\$' <<<\"\$m\" &&
	grep -q '^mustang_flow_log_write_errors_total 0\$' <<<\"\$m\""

check "mustangd still running" mst_pid_running "$MST_DAEMON_PID"
it_end
