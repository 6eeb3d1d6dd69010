#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# The side-by-side benchmark: Mustang against the Linux kernel on this
# machine, every figure from mustang-load (tools/loadgen/), the same binary
# for both stacks, all in one run. Prints ONE Markdown table with ratios
# against the kernel measured in the same run, writes
# bench/results/latest.json and bench/results/latest.png (gnuplot).
#
#   scripts/bench.sh [--quick] [--out DIR]
#
#   --quick    1 s per case, no warm-up: checks that the script and every
#              topology work (the `bench-quick` test), not the figures
#   --out DIR  where latest.json / latest.png go (default bench/results)
#
# Topologies (built here, torn down on exit; nothing is killed by name):
#   kernel-veth-on   kernel <-> kernel over veth, offloads on (TSO/GSO/GRO,
#                    checksums), MTU 1500
#   kernel-veth-off  the same with every offload off, MTU 1500
#   mustang-memif    two mustangd joined by memif (role=server / client),
#                    one engine each; a mustang-load server attached to
#                    daemon A, a mustang-load client attached to daemon B
#   linux->mustang   kernel client -> mustang-load server on mustangd
#                    (af_xdp on veth, offloads off as scripts/lib.sh sets them)
#   mustang->linux   mustang-load client on mustangd -> kernel server
# Placement on the 2 cores: Mustang's engines (both daemons) on core 0,
# the load generators on core 1. The engines run --mode dedicated: they
# poll, and an engine that finds nothing hands the core to the other
# (sched_yield), so two engines on one core alternate per poll rather than
# per scheduler tick; mustang-load runs with MUSTANG_SPIN_YIELD=1 and a
# long MUSTANG_SPIN_US for the same reason (client and server on core 1).
# Both cores are therefore always busy in the Mustang runs: compare the
# CPU-s/Mop column for efficiency. Kernel runs: server on core 0, client
# on core 1 (the kernel's protocol work runs in those processes' system
# calls and softirqs; they sleep when idle).
# Cases: tcp_rr 64 B on 1 and on 32 connections, tcp_crr 64 B on 8
# connections, tcp_stream 64 KiB writes on 1 connection (MTU 1500),
# udp_rr 64 B on 1 socket.
# CPU-s/Mop = CPU-seconds of the whole machine (/proc/stat, every core,
# the daemons' engines included) per million operations.
#
# Environment: MUSTANG_BUILD (default build/), BENCH_SECS / BENCH_WARMUP
# override the per-case time.

set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh

QUICK=0 OUT=bench/results
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1; shift ;;
	--out) [ $# -ge 2 ] || { echo "bench.sh: --out needs a directory" >&2; exit 2; }
		OUT=$2; shift 2 ;;
	-h|--help) sed -n '4,43p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument \"$1\" (usage: bench.sh [--quick] [--out DIR])" >&2; exit 2 ;;
	esac
done
need_root
if [ "$QUICK" -eq 1 ]; then SECS=${BENCH_SECS:-1} WARM=${BENCH_WARMUP:-0}
else SECS=${BENCH_SECS:-10} WARM=${BENCH_WARMUP:-2}; fi

ensure_packages "${MST_PACKAGES[@]}" gnuplot-nox || mst_die "could not install the packages"
if [ -z "${MUSTANG_BUILD:-}" ]; then
	ensure_build >/dev/null || mst_die "build failed (ninja -C $MST_BUILD)"
fi
LOAD=$MST_BUILD/tools/loadgen/mustang-load
[ -x "$LOAD" ] || mst_die "$LOAD not built"
"$LOAD" run --stack mustang --target 1.1.1.1:1 --mode tcp_rr --requests 1 --ctl /nonexistent \
	2>&1 | grep -q "this build has no libmustang" && mst_die "$LOAD was built without libmustang"

# Both stacks run at the same raised priority, so that other work on the
# machine (a test suite, a build) disturbs the figures less; the CPU busy
# before the run is sampled and printed with the table.
renice -n -10 -p $$ >/dev/null 2>&1 || true
BG_BUSY=$(awk '/^cpu /{b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat)
sleep 1
BG_BUSY=$(awk -v p="$BG_BUSY" '/^cpu /{split(p, a, " "); b=$2+$3+$4+$7+$8+$9; t=b+$5+$6;
	printf "%.2f", (t > a[2]) ? (b - a[1]) / (t - a[2]) * '"$(nproc)"' : 0}' /proc/stat)

TMP=$(mktemp -d /tmp/mustang-bench.XXXXXX)
BG_PIDS=()        # mustang-load servers, by PID
DAEMON_PIDS=()    # every mustangd started here, by PID
bench_cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	for p in "${DAEMON_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		mst_wait_exit "$p" 5 || kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	MST_DAEMON_PID=""
	mst_cleanup
	rm -rf "$TMP"
}
trap bench_cleanup EXIT
trap 'exit 1' INT TERM HUP

RUNS=$TMP/runs.tsv   # topology case json-file placement
: >"$RUNS"
PORT=7100

# bg VAR CMD... : CMD in the background, PID in VAR and BG_PIDS.
bg() {
	local var=$1; shift
	"$@" >>"$TMP/bg.log" 2>&1 &
	BG_PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

stop_bg() {
	local p=$1 i keep=()
	kill "$p" 2>/dev/null; wait "$p" 2>/dev/null
	for i in "${BG_PIDS[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
	BG_PIDS=("${keep[@]}")
}

# wait_port NSCMD IP PORT : until a TCP connect to IP:PORT succeeds (10 s).
wait_port() {
	local i
	for i in $(seq 100); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
probe() { # [NS] IP PORT : one short tcp_rr
	local ns=$1 ip=$2 port=$3
	if [ -n "$ns" ]; then
		ip netns exec "$ns" "$LOAD" run --stack kernel --target "$ip:$port" --mode tcp_rr \
			--requests 1 --timeout 1 --quiet >/dev/null 2>&1
	else
		"$LOAD" run --stack kernel --target "$ip:$port" --mode tcp_rr --requests 1 --timeout 1 \
			--quiet >/dev/null 2>&1
	fi
}

# case_args CASE : mustang-load run arguments of a case
case_args() {
	case "$1" in
	rr1) echo "--mode tcp_rr --size 64 --conns 1" ;;
	rr32) echo "--mode tcp_rr --size 64 --conns 32" ;;
	crr) echo "--mode tcp_crr --size 64 --conns 8" ;;
	stream) echo "--mode tcp_stream --size 65536 --conns 1" ;;
	udp) echo "--mode udp_rr --size 64 --conns 1" ;;
	prr1) echo "--mode pony_rr --size 64 --conns 1" ;;
	prr32) echo "--mode pony_rr --size 64 --conns 32" ;;
	pstream) echo "--mode pony_stream --size 65536 --conns 16" ;;
	pread) echo "--mode pony_read --size 65536 --conns 16" ;;
	esac
}
CASES=(rr1 rr32 crr stream udp)
PONY_CASES=(prr1 prr32 pstream pread)   # Mustang<->Mustang only

# measure TOPO PLACEMENT TARGET STACK-ARGS PREFIX... : every case (of
# CASES, or of the list in MEASURE_CASES), one JSON each; the client is
# `PREFIX... mustang-load run STACK-ARGS ...`
measure() {
	local topo=$1 place=$2 target=$3 stack=$4 c json
	local -a cases=("${CASES[@]}")
	[ -n "${MEASURE_CASES:-}" ] && read -ra cases <<<"$MEASURE_CASES"
	shift 4
	for c in "${cases[@]}"; do
		json=$TMP/$topo-$c.json
		# shellcheck disable=SC2046,SC2086
		if ! timeout $((SECS + WARM + 30)) "$@" "$LOAD" run $stack --target "$target" $(case_args "$c") \
			--duration "$SECS" --warmup "$WARM" --timeout 2 --quiet --json "$json" \
			>"$TMP/$topo-$c.txt" 2>&1; then
			mst_log "bench: $topo $c: the run failed:"
			sed 's/^/  | /' "$TMP/$topo-$c.txt" >&2
		fi
		[ -s "$json" ] || json=-
		printf '%s\t%s\t%s\t%s\n' "$topo" "$c" "$json" "$place" >>"$RUNS"
	done
}

# Time-wait heavy tcp_crr: a wide port range and TIME_WAIT reuse for the
# kernel clients (Linux's own defaults run out of ports within seconds),
# above the ports the servers listen on (7100, 7101).
ns_tune() {
	ip netns exec "$1" sysctl -qw net.ipv4.ip_local_port_range="10000 65535" \
		net.ipv4.tcp_tw_reuse=1 >/dev/null
}

KPLACE="server: core 0, client: core 1 (kernel stack in their syscalls/softirq)"
MPLACE="engines (both daemons, dedicated+yield): core 0; mustang-load server + client (spin+yield): core 1"
# libmustang busy-polls (yielding) for up to 1 s before it sleeps
MSPIN=(env MUSTANG_SPIN_YIELD=1 MUSTANG_SPIN_US=1000000)

# --- 1. kernel <-> kernel over veth, offloads on and off ---------------------
for offl in on off; do
	topo_up "k$offl" linux 11 || mst_die "topology"
	for ns_if in "$TOPO_NS_M:$TOPO_IF_M" "$TOPO_NS_L:$TOPO_IF_L"; do
		ip netns exec "${ns_if%%:*}" ethtool -K "${ns_if#*:}" rx "$offl" tx "$offl" sg "$offl" \
			tso "$offl" gso "$offl" gro "$offl" >/dev/null 2>&1
		ip -n "${ns_if%%:*}" link set "${ns_if#*:}" mtu 1500
		ns_tune "${ns_if%%:*}"
	done
	bg SRV ip netns exec "$TOPO_NS_M" taskset -c 0 "$LOAD" serve --stack kernel --port "$PORT"
	wait_port probe "$TOPO_NS_L" "$TOPO_IP_M" "$PORT" ||
		{ tail -n 5 "$TMP/bg.log" >&2; mst_die "kernel server did not answer"; }
	measure "kernel-veth-$offl" "$KPLACE" "$TOPO_IP_M:$PORT" "--stack kernel" \
		ip netns exec "$TOPO_NS_L" taskset -c 1
	stop_bg "$SRV"
	topo_down
done

# --- 2. Mustang <-> Mustang over memif ----------------------------------------
MEMIF=$TMP/memif.sock
DOPTS=(--mode dedicated --engines 1 --cores 0 --log-level warn)
start_mustangd --ns "" --ctl "$TMP/a.sock" --log "$TMP/a.log" -- \
	--port "memif:socket=$MEMIF,role=server" --ip 10.78.0.1/24 "${DOPTS[@]}" ||
	mst_die "mustangd A (memif server) did not start"
DAEMON_PIDS+=("$MST_DAEMON_PID") A_CTL=$MST_DAEMON_CTL
start_mustangd --ns "" --ctl "$TMP/b.sock" --log "$TMP/b.log" -- \
	--port "memif:socket=$MEMIF,role=client" --ip 10.78.0.2/24 "${DOPTS[@]}" ||
	mst_die "mustangd B (memif client) did not start"
DAEMON_PIDS+=("$MST_DAEMON_PID") B_CTL=$MST_DAEMON_CTL
MST_DAEMON_PID=""   # both are ours to stop (bench_cleanup)
for i in $(seq 50); do
	up=0
	for ctl in "$A_CTL" "$B_CTL"; do
		timeout 5 "$MUSTANGCTL" --ctl "$ctl" ports --json 2>/dev/null | grep -q '"link":"up"' &&
			up=$((up + 1))
	done
	[ "$up" -eq 2 ] && break
	sleep 0.1
done
[ "$up" -eq 2 ] || mst_die "memif link between the two daemons did not come up"
# one kind of server at a time: an idle server thread busy-polling on core 1
# would take turns with the measured ones
bg SRV "${MSPIN[@]}" taskset -c 1 "$LOAD" serve --stack mustang --ctl "$A_CTL" --port "$PORT" \
	--only sockets
wait_port taskset -c 1 "$LOAD" run --stack mustang --ctl "$B_CTL" --target "10.78.0.1:$PORT" \
	--mode tcp_rr --requests 1 --timeout 1 --quiet || mst_log "bench: mustang memif server not answering"
measure mustang-memif "$MPLACE" "10.78.0.1:$PORT" "--stack mustang --ctl $B_CTL" "${MSPIN[@]}" taskset -c 1
stop_bg "$SRV"
bg SRV "${MSPIN[@]}" taskset -c 1 "$LOAD" serve --stack mustang --ctl "$A_CTL" --port "$PORT" \
	--only pony
sleep 1
MEASURE_CASES="${PONY_CASES[*]}" measure mustang-memif "$MPLACE" "10.78.0.1:$PORT" \
	"--stack mustang --ctl $B_CTL" "${MSPIN[@]}" taskset -c 1
stop_bg "$SRV"
for p in "${DAEMON_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; mst_wait_exit "$p" 10; wait "$p" 2>/dev/null; done
DAEMON_PIDS=()

# --- 3. Linux -> Mustang and Mustang -> Linux over veth (af_xdp) ---------------
topo_up x mustang 12 || mst_die "topology"
ns_tune "$TOPO_NS_L"
start_mustangd --ctl "$TMP/x.sock" --log "$TMP/x.log" -- \
	--port "af_xdp:iface=$TOPO_IF_M" --ip "$TOPO_IP_M/$TOPO_PREFIX" "${DOPTS[@]}" ||
	mst_die "mustangd (af_xdp) did not start"
DAEMON_PIDS+=("$MST_DAEMON_PID") X_CTL=$MST_DAEMON_CTL
MST_DAEMON_PID=""
bg SRV "${MSPIN[@]}" taskset -c 1 "$LOAD" serve --stack mustang --ctl "$X_CTL" --port "$PORT" \
	--only sockets
wait_port probe "$TOPO_NS_L" "$TOPO_IP_M" "$PORT" || mst_log "bench: mustang af_xdp server not answering"
measure linux-to-mustang "engine (dedicated+yield): core 0; mustang-load server (spin+yield) + kernel client: core 1" \
	"$TOPO_IP_M:$PORT" "--stack kernel" ip netns exec "$TOPO_NS_L" taskset -c 1
stop_bg "$SRV"
bg SRV ip netns exec "$TOPO_NS_L" taskset -c 1 "$LOAD" serve --stack kernel --port "$PORT"
wait_port probe "$TOPO_NS_L" "$TOPO_IP_L" "$PORT" ||
	{ tail -n 5 "$TMP/bg.log" >&2; mst_die "kernel server (Linux namespace) did not answer"; }
measure mustang-to-linux "engine (dedicated+yield): core 0; kernel server + mustang-load client (spin+yield): core 1" \
	"$TOPO_IP_L:$PORT" "--stack mustang --ctl $X_CTL" "${MSPIN[@]}" taskset -c 1
stop_bg "$SRV"

# --- report ---------------------------------------------------------------------
mkdir -p "$OUT" || mst_die "cannot create $OUT"
"$MST_PY" - "$RUNS" "$OUT" "$SECS" "$WARM" "$QUICK" "$BG_BUSY" <<'PY' || mst_die "report failed"
import json, os, platform, sys, time
runs, out, secs, warm, quick = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1"
bg_busy = float(sys.argv[6])
TOPOS = ["kernel-veth-on", "kernel-veth-off", "mustang-memif", "linux-to-mustang", "mustang-to-linux"]
LABEL = {"kernel-veth-on": "kernel<->kernel veth, offloads on",
         "kernel-veth-off": "kernel<->kernel veth, offloads off",
         "mustang-memif": "Mustang<->Mustang memif",
         "linux-to-mustang": "Linux client -> Mustang (af_xdp)",
         "mustang-to-linux": "Mustang client -> Linux (af_xdp)"}
CASES = {"rr1": "tcp_rr 64 B, 1 conn", "rr32": "tcp_rr 64 B, 32 conns",
         "crr": "tcp_crr 64 B, 8 conns", "stream": "tcp_stream 64 KiB writes, 1 conn",
         "udp": "udp_rr 64 B, 1 socket"}
res, place = {}, {}
for line in open(runs):
    topo, case, path, pl = line.rstrip("\n").split("\t")
    place[topo] = pl
    try:
        res[(topo, case)] = json.load(open(path)) if path != "-" else None
    except Exception:
        res[(topo, case)] = None
def rate(r, case):
    if r is None or r["ops"] == 0: return None
    return r["gbit_per_s"] if case == "stream" else r["ops_per_s"]
def ref(case):
    # the kernel figure a ratio is taken against: stream against the
    # offloads-off kernel (the issue's target), the others against the
    # better of the two kernel runs
    if case == "stream":
        return "kernel-veth-off"
    cand = [t for t in ("kernel-veth-on", "kernel-veth-off") if rate(res.get((t, case)), case)]
    return max(cand, key=lambda t: rate(res[(t, case)], case)) if cand else None
def fmt_rate(v, case):
    if v is None: return "failed"
    return f"{v:.2f} Gbit/s" if case == "stream" else f"{v:,.0f}/s"
def us(ns): return f"{ns / 1000:.1f}"
print(f"Mustang vs Linux, {secs:g} s per case after {warm:g} s warm-up, {platform.release()}, {os.cpu_count()} cores"
      + (" (--quick: checks the script, not the figures)" if quick else ""))
print(f"Other work on the machine just before the run: {bg_busy:.2f} of {os.cpu_count()} cores busy"
      + (" -- figures disturbed, rerun on a quiet machine" if bg_busy > 0.2 else ""))
print()
print("| case | stack / topology | rate | ratio vs kernel | p50 us | p99 us | p50 ratio | CPU-s/Mop | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for case in CASES:
    rk = ref(case)
    kr = res.get((rk, case)) if rk else None
    for topo in TOPOS:
        r = res.get((topo, case))
        v = rate(r, case)
        ratio = p50r = ""
        if v is not None and kr is not None and rate(kr, case):
            ratio = f"{v / rate(kr, case):.2f}x" + (" (ref)" if topo == rk else "")
            if case != "stream" and r["latency_ns"]["p50"] and kr["latency_ns"]["p50"]:
                p50r = f"{r['latency_ns']['p50'] / kr['latency_ns']['p50']:.2f}"
        lat = r["latency_ns"] if r else None
        p50 = us(lat["p50"]) if lat and case != "stream" and lat["count"] else "-"
        p99 = us(lat["p99"]) if lat and case != "stream" and lat["count"] else "-"
        cpu = f"{r['cpu']['machine_cpu_s_per_mop']:.1f}" if r and r["ops"] else "-"
        err = str(r["errors"]["total"]) if r else "-"
        print(f"| {CASES[case]} | {LABEL[topo]} | {fmt_rate(v, case)} | {ratio} | {p50} | {p99} | {p50r} | {cpu} | {err} |")
print()
# Pony (Mustang<->Mustang only) against Mustang's TCP and the kernel's
PONY = {"prr1": ("pony_rr 64 B, 1 in flight", "rr1"), "prr32": ("pony_rr 64 B, 32 in flight", "rr32"),
        "pstream": ("pony_stream 64 KiB, 16 in flight", "stream"),
        "pread": ("pony_read 64 KiB, 16 in flight", "stream")}
if any(("mustang-memif", c) in res for c in PONY):
    print("| Pony case (Mustang<->Mustang memif) | rate | vs Mustang TCP | vs kernel | p50 us | p99 us | CPU-s/Mop | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c, (label, tcp) in PONY.items():
        r = res.get(("mustang-memif", c))
        stream = tcp == "stream"
        v = (r["gbit_per_s"] if stream else r["ops_per_s"]) if r and r["ops"] else None
        mt = rate(res.get(("mustang-memif", tcp)), tcp)
        rk = ref(tcp)
        kt = rate(res.get((rk, tcp)), tcp) if rk else None
        fmt = (lambda x: f"{x:.2f} Gbit/s") if stream else (lambda x: f"{x:,.0f}/s")
        lat = r["latency_ns"] if r else None
        cells = [label, fmt(v) if v is not None else "failed",
                 f"{v / mt:.2f}x" if v is not None and mt else "",
                 f"{v / kt:.2f}x" if v is not None and kt else "",
                 us(lat["p50"]) if lat and lat["count"] else "-",
                 us(lat["p99"]) if lat and lat["count"] else "-",
                 f"{r['cpu']['machine_cpu_s_per_mop']:.1f}" if r and r["ops"] else "-",
                 str(r["errors"]["total"]) if r else "-"]
        print("| " + " | ".join(cells) + " |")
    print()
    print("Pony ratios: pony_rr against tcp_rr with as many requests in flight (Mustang over the same memif;")
    print("kernel: the better veth run); pony_stream / pony_read (Gbit/s) against tcp_stream.")
    print()
print("Ratios: rate / the kernel's (stream: offloads-off kernel; others: the better kernel run,")
print("marked ref); p50 ratio = p50 / the kernel's. CPU-s/Mop: whole machine (both cores, daemons")
print("included) per million ops; stream: one op = one 64 KiB write. Placement:")
for t in TOPOS:
    if t in place: print(f"- {LABEL[t]}: {place[t]}")
print()
print(f"Chart: ![throughput and p99 per stack]({os.path.join(out, 'latest.png')})")
doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "kernel": platform.release(),
       "cpus": os.cpu_count(), "background_busy_cores": bg_busy, "seconds": secs, "warmup": warm, "quick": quick,
       "placement": place, "runs": [{"topology": t, "case": c, "result": res.get((t, c))}
                                    for t in TOPOS for c in list(CASES) + list(PONY) if (t, c) in res]}
json.dump(doc, open(os.path.join(out, "latest.json"), "w"), separators=(",", ":"))
with open(os.path.join(out, "latest.dat"), "w") as f:
    f.write("# topology " + " ".join(f"{c}_rate {c}_p99us" for c in CASES) + "\n")
    for t in TOPOS:
        row = []
        for c in CASES:
            r = res.get((t, c)); v = rate(r, c)
            row.append(f"{v if v is not None else 0:.4f}")
            row.append(f"{r['latency_ns']['p99'] / 1000 if r and c != 'stream' and r['latency_ns']['count'] else 0:.2f}")
        f.write(f"\"{t}\" " + " ".join(row) + "\n")
PY

# the chart: rates normalized to the best kernel run per case, and p99
gnuplot <<EOF || mst_log "bench: gnuplot failed; no chart"
set terminal pngcairo size 1200,520 font ",10"
set output "$OUT/latest.png"
set multiplot layout 1,2 title "Mustang vs Linux kernel ($(uname -r), $(nproc) cores)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left font ",8"
set xtics rotate by -20 font ",8"
set grid ytics
set logscale y
set title "throughput (rr/crr: ops/s; stream: Gbit/s x 10^5)"
plot "$OUT/latest.dat" using 2:xtic(1) title "rr, 1 conn", '' using 4 title "rr, 32 conns", \
     '' using 6 title "crr", '' using (\$8*100000) title "stream", '' using 10 title "udp rr"
set title "p99 latency (us)"
plot "$OUT/latest.dat" using 3:xtic(1) title "rr, 1 conn", '' using 5 title "rr, 32 conns", \
     '' using 7 title "crr", '' using 11 title "udp rr"
unset multiplot
EOF
rm -f "$OUT/latest.dat"
