#!/bin/bash
# Live-migration benchmark (make bench; doc/bench/README.md):
#   bench/migrate.sh VMM BENCH_GUEST_DIR REPS [QEMU=0|1] >> RESULTS.md
# Downtime and total time of a loopback TCP migration of bench_dirty
# (4 vCPUs) against guest RAM size, dirty rate and compression; medians
# over REPS runs with min-max.  With QEMU=1 and qemu-system-x86_64
# installed, QEMU migrates the same guest on loopback as the reference.
# Prints a Markdown section on stdout; progress on stderr.  Narrow a run with
# BENCH_MIG_MEMS="1G", BENCH_MIG_RATES="0 10", BENCH_MIG_NO_QEMU=1.
set -u
VMM=$1; GUESTS=$2; REPS=${3:-5}; WANT_QEMU=${4:-1}
QEMU_REPS=$((REPS < 3 ? REPS : 3))
KERNEL=$GUESTS/bench_dirty.elf
HERE=$(cd "$(dirname "$0")/.." && pwd)
QMP="python3 $HERE/tests/migrate/qmp_migrate.py"
TMP=$(mktemp -d)
PORT=$((30000 + $$ % 20000))
trap 'kill -KILL $(jobs -p) 2>/dev/null; rm -rf "$TMP"' EXIT
LIMIT_MS=50

say() { echo "bench/migrate: $*" >&2; }
stat3() { sort -n | awk '{v[NR]=$1} END {if (!NR) {print "-"; exit}
	m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2;
	printf "%g (%g-%g)", m, v[1], v[NR]}'; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

wait_for() {   # FILE PATTERN PID: hang protection is the guest's own life
	while kill -0 "$3" 2>/dev/null && ! grep -q "$2" "$1"; do sleep 0.05; done
}

# One migration of ours: MEM RATE COMPRESSION; appends "downtime total rounds" to $TMP/runs.
ours() {
	local mem=$1 rate=$2 comp=$3 port=$((PORT++)) dst src
	$VMM --incoming "tcp:127.0.0.1:$port" --cpus 4 --mem "$mem" >"$TMP/dst" 2>&1 & dst=$!
	wait_for "$TMP/dst" 'waiting for the migration' $dst
	$VMM --kernel "$KERNEL" --cmdline "rate=$rate ws=4096" --cpus 4 --mem "$mem" \
		--qmp "unix:$TMP/src.qmp" >"$TMP/src" 2>&1 & src=$!
	wait_for "$TMP/src" 'dirty: ready' $src
	sleep 1   # let the dirtying reach its steady rate
	$QMP "$TMP/src.qmp" migrate "tcp:127.0.0.1:$port" \
		"{\"downtime-limit\": $LIMIT_MS, \"multifd-compression\": \"$comp\"}" >"$TMP/r.json"
	if [ "$(field 'd["info"]["status"]' <"$TMP/r.json")" = completed ]; then
		field '"%d %d %d" % (d["info"]["downtime"], d["info"]["total-time"], d["info"]["ram"]["dirty-sync-count"])' \
			<"$TMP/r.json" >>"$TMP/runs"
	else
		say "failed: $(cat "$TMP/r.json")"
	fi
	kill -KILL $src $dst 2>/dev/null; wait $src $dst 2>/dev/null
}

row() {   # LABEL MEM RATE COMP
	: >"$TMP/runs"
	for _ in $(seq "$REPS"); do ours "$2" "$3" "$4"; done
	echo "| $1 | $2 | $3 | $4 | $(cut -d' ' -f1 "$TMP/runs" | stat3) |" \
	     "$(cut -d' ' -f2 "$TMP/runs" | stat3) | $(cut -d' ' -f3 "$TMP/runs" | stat3) |" \
	     "$(wc -l <"$TMP/runs")/$REPS |"
}

# QEMU's migration of the same kernel (multiboot on -M pc, KVM).
qemu_row() {   # MEM RATE
	local q=qemu-system-x86_64 port=$((PORT++)) args dst src
	args=(-M pc,accel=kvm -cpu host,kvm-asyncpf-int=off -smp 4 -m "$1" -nographic -nodefaults
	      -serial "file:$TMP/qsrc" -device isa-debug-exit,iobase=0xf4,iosize=1)
	: >"$TMP/runs"
	# At most 3 runs of 45 s: QEMU's run often never completes here.
	for _ in $(seq "$QEMU_REPS"); do
		$q "${args[@]/$TMP\/qsrc/$TMP/qdst}" -incoming "tcp:127.0.0.1:$port" >/dev/null 2>&1 & dst=$!
		: >"$TMP/qsrc"
		$q "${args[@]}" -kernel "$KERNEL" -append "rate=$2 ws=4096" \
			-qmp "unix:$TMP/q.qmp,server=on,wait=off" >/dev/null 2>&1 & src=$!
		wait_for "$TMP/qsrc" 'dirty: ready' $src
		sleep 1
		timeout 45 $QMP "$TMP/q.qmp" migrate "tcp:127.0.0.1:$port" \
			"{\"downtime-limit\": $LIMIT_MS}" --qemu >"$TMP/r.json" 2>/dev/null &&
		[ "$(field 'd["info"]["status"]' <"$TMP/r.json")" = completed ] &&
		field '"%d %d %d" % (d["info"]["downtime"], d["info"]["total-time"], d["info"]["ram"]["dirty-sync-count"])' \
			<"$TMP/r.json" >>"$TMP/runs"
		kill -KILL $src $dst 2>/dev/null; wait $src $dst 2>/dev/null
		port=$((PORT++))
	done
	echo "| QEMU (reference) | $1 | $2 | none | $(cut -d' ' -f1 "$TMP/runs" | stat3) |" \
	     "$(cut -d' ' -f2 "$TMP/runs" | stat3) | $(cut -d' ' -f3 "$TMP/runs" | stat3) |" \
	     "$(wc -l <"$TMP/runs")/$QEMU_REPS |"
}

echo
echo "## Live migration (bench/migrate.sh)"
echo
echo "bench_dirty on 4 vCPUs (the BSP dirties RATE pages per ms of a 4096-page working set),"
echo "loopback TCP, downtime-limit $LIMIT_MS ms, hash dirty tracking (doc/migration.md)."
echo "Medians over $REPS runs with min-max; downtime is pause to the destination's RUNNING."
echo
echo "| VMM | RAM | rate (pages/ms) | compression | downtime ms | total ms | rounds | runs ok |"
echo "|---|---|---|---|---|---|---|---|"
for mem in ${BENCH_MIG_MEMS:-256M 1G}; do
	for rate in ${BENCH_MIG_RATES:-0 1 10}; do
		for comp in none zstd; do
			say "ours $mem rate=$rate $comp"
			row ours "$mem" "$rate" "$comp"
		done
	done
done
if [ "$WANT_QEMU" = 1 ] && [ -z "${BENCH_MIG_NO_QEMU:-}" ] && command -v qemu-system-x86_64 >/dev/null; then
	for mem in 256M 1G; do say "QEMU $mem"; qemu_row "$mem" 1; done
else
	echo
	echo "QEMU reference: not run ($([ "$WANT_QEMU" = 1 ] && echo "qemu-system-x86_64 not installed" || echo "QEMU=0"))."
fi
