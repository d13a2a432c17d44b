#!/bin/bash
# The driver of `make bench` (doc/bench/README.md explains every figure).
#
# Runs every part REPS times, interleaved (rep 1 of every part, then rep
# 2, ...), so that a noisy minute on this shared machine hits every
# configuration alike.  Each run adds samples "rep part case x metric
# value" to build/bench/raw/samples.tsv; ratios are taken between two
# samples of the same rep; the summary of every figure is its median with
# min and max over the reps.  Writes doc/bench/RESULTS.md and the SVG
# plots, prints RESULTS.md.  A tool that fails or a peer that is missing
# is reported in RESULTS.md (and here), never dropped.
#
# Environment (set by bench/bench.mk): BENCH_VMM, BENCH_BUS, BENCH_FLOOR,
# BENCH_GUESTS, BENCH_IRQSTRESS, BENCH_IRQSTRESS_BUILD (ok, failed or
# none: how its build went), BENCH_REPS (5), BENCH_QEMU (1),
# BENCH_LINUX (0), BENCH_OUT (doc/bench), BENCH_RAW (build/bench/raw).
set -u

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
VMM=${BENCH_VMM:-build/vmm}
BUS=${BENCH_BUS:-build/bench/bus_bench}
FLOOR=${BENCH_FLOOR:-build/bench/kvm_floor}
GUESTS=${BENCH_GUESTS:-build/bench/guests}
IRQSTRESS=${BENCH_IRQSTRESS:-build/irqstress}
REPS=${BENCH_REPS:-5}
USE_QEMU=${BENCH_QEMU:-1}
LINUX=${BENCH_LINUX:-0}
OUT=${BENCH_OUT:-doc/bench}
RAW=${BENCH_RAW:-build/bench/raw}
QEMU_BIN=${BENCH_QEMU_BIN:-qemu-system-x86_64}
THREADS="1 2 4 8"
GUEST_TIMEOUT=60
QEMU_TIMEOUT=40

rm -rf "$RAW"
mkdir -p "$RAW" "$OUT"
SAMPLES=$RAW/samples.tsv
ERRORS=$RAW/errors.txt
NOTES=$RAW/notes.txt
: >"$SAMPLES"
: >"$ERRORS"
: >"$NOTES"
start_s=$(date +%s)
declare -A broken=()

say() { echo "bench: $*" >&2; }
# error WHAT: a failure the results must show.
error() {
	printf '%s\n' "$*" >>"$ERRORS"
	say "ERROR: $*"
}
note() { printf '%s\n' "$*" >>"$NOTES"; say "$*"; }

# ---------------------------------------------------------------- machine

tsc_khz=
kvm_ok=0
if [ -e /dev/kvm ] && [ -x "$FLOOR" ]; then
	if tsc_khz=$("$FLOOR" --kernel "$GUESTS/bench_pio.elf" --tsc-khz 2>"$RAW/tsc.err"); then
		kvm_ok=1
	else
		error "kvm_floor --tsc-khz failed: $(head -c 300 "$RAW/tsc.err")"
	fi
elif [ ! -e /dev/kvm ]; then
	error "/dev/kvm is missing: no guest figures (parts 4-6)"
else
	error "$FLOOR is not built"
fi

qemu_ok=0
qemu_version="not installed (run make bench-deps)"
if [ "$USE_QEMU" != 1 ]; then
	qemu_version="not run (QEMU=0)"
elif command -v "$QEMU_BIN" >/dev/null 2>&1; then
	qemu_ok=1
	qemu_version=$("$QEMU_BIN" --version | head -1)
else
	error "QEMU: $QEMU_BIN not installed (run make bench-deps): no peer figures"
fi

{
	echo "date	$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "machine	$(uname -a)"
	echo "cpu	$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) online cores"
	echo "kvm	$([ $kvm_ok = 1 ] && echo "/dev/kvm, TSC $tsc_khz kHz" || echo unavailable)"
	echo "gcc	$(gcc --version | head -1)"
	echo "qemu	$qemu_version"
	echo "gnuplot	$(gnuplot --version 2>/dev/null || echo 'not installed (run make bench-deps)')"
	echo "commit	$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "reps	$REPS"
	echo "load_start	$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RAW/header.tsv"

# ---------------------------------------------------------------- 1+2: bus

bench_bus() {
	local log=$RAW/bus-rep$rep.log
	if [ ! -x "$BUS" ]; then
		[ "$rep" = 1 ] && error "bus_bench: $BUS is not built"
		return
	fi
	timeout -k 5 120 "$BUS" --duration-ms 200 >"$log" 2>&1
	local rc=$?
	awk -v rep="$rep" '$1 == "R" && $3 != "-" { print rep "\tbus\t" $3 "\t" $4 "\t" $5 "\t" $6 }' \
		"$log" >>"$SAMPLES"
	[ $rc -eq 0 ] || error "bus_bench (rep $rep): exit status $rc: $(grep -m3 ERROR "$log" | tr '\n' ' ') (log $log)"
}

# ---------------------------------------------------------------- 3: irqstress

# "lockfree: N interrupts in S s = R/s; latency p50 X us p90 ... p99 Z ms ..."
parse_irqstress() {
	awk -v rep="$rep" -v t="$1" '
	function ns(v, u) { return u == "ms" ? v * 1e6 : u == "us" ? v * 1e3 : v }
	/^(lockfree|lock): [0-9]+ interrupts in/ {
		mode = $1; sub(":", "", mode)
		for (i = 1; i <= NF; i++) {
			if ($i == "=") { r = $(i + 1); sub("/s;?", "", r); print rep "\tirq\t" mode "\t" t "\teps\t" r }
			if ($i == "p50" || $i == "p99") { u = $(i + 2); sub(/[;,]$/, "", u)
				print rep "\tirq\t" mode "\t" t "\t" $i "_us\t" ns($(i + 1), u) / 1e3 }
		}
	}' "$2"
}

bench_irqstress() {
	local t log rc
	if [ "${BENCH_IRQSTRESS_BUILD:-}" = failed ]; then
		[ "$rep" = 1 ] && error "irqstress: not built (its build failed; see the make output)"
		return
	elif [ "${BENCH_IRQSTRESS_BUILD:-}" = none ] || [ ! -x "$IRQSTRESS" ]; then
		[ "$rep" = 1 ] && error "irqstress: not built ($IRQSTRESS missing)"
		return
	fi
	for t in $THREADS; do
		[ -n "${broken[irq]:-}${broken[irq/$t]:-}" ] && continue
		log=$RAW/irqstress-t$t-rep$rep.log
		# Two 1 s runs and their drains take a few seconds; 30 s means stuck.
		timeout -k 5 30 "$IRQSTRESS" --mode both --threads "$t" --cpus 4 --duration 1 \
			--drain-timeout 3 --seed $((rep * 100 + t)) >"$log" 2>&1
		rc=$?
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			error "irqstress --threads $t (rep $rep): hung, killed after 30 s; every later irqstress run skipped (log $log)"
			broken[irq]=1
			continue
		fi
		if [ $rc -ne 0 ] || grep -q VIOLATED "$log"; then
			error "irqstress --threads $t (rep $rep): exit status $rc$(grep -q VIOLATED "$log" && echo ', invariant VIOLATED'); figures dropped; later reps skipped (log $log)"
			broken[irq/$t]=1
			continue
		fi
		parse_irqstress "$t" "$log" >>"$SAMPLES"
	done
}

# ---------------------------------------------------------------- 4+5: guests

# BENCH lines of a guest log to samples: cycles become ns with the TSC rate.
parse_guest() {
	local part=$1 cfg=$2 log=$3
	tr -d '\r' <"$log" | awk -v rep="$rep" -v part="$part" -v cfg="$cfg" -v khz="$tsc_khz" '
	function ns(c) { return c * 1e6 / khz }
	function out(x, m, v) { print rep "\t" part "\t" cfg "\t" x "\t" m "\t" v }
	$1 == "BENCH" {
		delete kv
		for (i = 3; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
		if ($2 ~ /^pio_/) {
			x = substr($2, 5)
			out(x, "p50_ns", ns(kv["blk_p50"])); out(x, "best_ns", ns(kv["blk_min"]))
			out(x, "mean_ns", ns(kv["cycles"] / kv["ops"]))
		} else if ($2 ~ /^ipi_/) {
			x = substr($2, 5)
			out(x, "p50_us", ns(kv["p50"]) / 1e3); out(x, "p99_us", ns(kv["p99"]) / 1e3)
		} else if ($2 == "timer_periodic") {
			out(kv["period_us"], "rate", kv["ticks"] * 1e6 / kv["us"])
		} else if ($2 == "timer_oneshot") {
			out("oneshot", "p50_us", ns(kv["p50"]) / 1e3); out("oneshot", "p99_us", ns(kv["p99"]) / 1e3)
		} else if ($2 == "timer_hz") {
			out("clock", "mhz", kv["hz"] / 1e6)
		}
	}' >>"$SAMPLES"
}

# run_guest PART CONFIG TIMEOUT COMMAND...: one boot; its verdict and figures.
run_guest() {
	local part=$1 cfg=$2 limit=$3 log rc why=
	shift 3
	[ -n "${broken[$part/$cfg]:-}" ] && return
	log=$RAW/$part-$cfg-rep$rep.log
	timeout -k 5 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		if tr -d '\r' <"$log" | grep -aq '^== '; then
			why="hung: killed after ${limit}s; last guest line: $(tr -d '\r' <"$log" | grep -av '^qemu-system' | tail -1 | cut -c1-120)"
		else
			why="hung: killed after ${limit}s before the guest printed anything (stuck in firmware or boot)"
		fi
	elif [ $rc -ne 1 ]; then
		why="exit status $rc, want 1; $(tr -d '\r' <"$log" | grep -a -m1 'FAIL' | cut -c1-160)"
	elif ! tr -d '\r' <"$log" | grep -aq '^PASS: '; then
		why="no PASS line"
	fi
	if [ -n "$why" ]; then
		error "$part/$cfg (rep $rep): $why; later reps skipped (log $log)"
		broken[$part/$cfg]=1
		return 1
	fi
	parse_guest "$part" "$cfg" "$log"
}

# Commands as arrays: `timeout` runs programs, not shell functions.
VMM_CMD=("$VMM" --mem 64M)
FLOOR_CMD=("$FLOOR" --mem 64)
# shellcheck disable=SC2054  # the commas are QEMU's option syntax
QEMU_CMD=("$QEMU_BIN" -enable-kvm -m 64 -nodefaults -display none -serial stdio -monitor none
	-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=1 -device pc-testdev)
# QEMU's userspace LAPIC needs the async-PF interrupt MSR off on these hosts.
# shellcheck disable=SC2054
QEMU_OFF=("${QEMU_CMD[@]}" -M pc,kernel-irqchip=off -cpu host,kvm-asyncpf-int=off)
QEMU_ON=("${QEMU_CMD[@]}" -M pc -cpu host)

PIO_ARGS="blocks=40 iters=100 warmup=50"

bench_guests() {
	local pio=$GUESTS/bench_pio.elf ipi=$GUESTS/bench_ipi.elf timer=$GUESTS/bench_timer.elf
	[ $kvm_ok = 1 ] || return
	# 4. Ours, and the floor.
	run_guest pio floor $GUEST_TIMEOUT "${FLOOR_CMD[@]}" --kernel "$pio" --cmdline "port=0xe0 $PIO_ARGS"
	run_guest pio thread $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$pio" --io thread --cmdline "port=0xe0 echo $PIO_ARGS"
	run_guest pio lock $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$pio" --io lock --cmdline "port=0xe0 echo $PIO_ARGS"
	run_guest pio claimed $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$pio" --io thread \
		--device testdev:0x2e0,0xfebe0000,claimed --cmdline "port=0x2e0 echo $PIO_ARGS"
	run_guest pio unassigned $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$pio" --io thread --cmdline "port=0x2a0 $PIO_ARGS"
	run_guest ipi thread $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$ipi" --cpus 2 --io thread
	run_guest ipi lock $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$ipi" --cpus 2 --io lock
	run_guest timer thread $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$timer" --io thread
	run_guest timer lock $GUEST_TIMEOUT "${VMM_CMD[@]}" --kernel "$timer" --io lock
	# 5. The peer.
	[ $qemu_ok = 1 ] || return
	run_guest pio qemu-off $QEMU_TIMEOUT "${QEMU_OFF[@]}" -kernel "$pio" -append "port=0xe0 echo $PIO_ARGS"
	run_guest pio qemu-on $QEMU_TIMEOUT "${QEMU_ON[@]}" -kernel "$pio" -append "port=0xe0 echo $PIO_ARGS"
	run_guest pio qemu-unassigned $QEMU_TIMEOUT "${QEMU_ON[@]}" -kernel "$pio" -append "port=0x2a0 $PIO_ARGS"
	run_guest ipi qemu-off $QEMU_TIMEOUT "${QEMU_OFF[@]}" -smp 2 -kernel "$ipi"
	run_guest ipi qemu-on $QEMU_TIMEOUT "${QEMU_ON[@]}" -smp 2 -kernel "$ipi"
	run_guest timer qemu-off $QEMU_TIMEOUT "${QEMU_OFF[@]}" -kernel "$timer"
	run_guest timer qemu-on $QEMU_TIMEOUT "${QEMU_ON[@]}" -kernel "$timer"
}

# ---------------------------------------------------------------- 6: Linux

# LINUX_REPS boots per configuration (bench/linux.sh), in the first rep only:
# a boot takes 20-60 s.
bench_linux() {
	[ "$rep" = 1 ] || return
	if [ "$LINUX" != 1 ]; then
		note "Linux boot milestones: not run (make bench LINUX=1; slow here)"
		return
	fi
	if [ ! -f build/linux/bzImage ] || [ ! -f build/linux/initramfs.cpio ]; then
		error "Linux boot milestones: build/linux missing (make linux-guest)"
		return
	fi
	say "Linux boots (${LINUX_REPS:-3} each, minutes)"
	bench/linux.sh "$RAW/linux.md" "$RAW" "$VMM" build/linux "$QEMU_BIN" 2>>"$ERRORS"
}

# ---------------------------------------------------------------- run

for rep in $(seq 1 "$REPS"); do
	say "rep $rep of $REPS ($(($(date +%s) - start_s)) s so far)"
	bench_bus
	bench_irqstress
	bench_guests
	bench_linux
done
echo "seconds	$(($(date +%s) - start_s))" >>"$RAW/header.tsv"
echo "load_end	$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/header.tsv"

# ---------------------------------------------------------------- summarise

# Ratios: "name part caseA caseB metric": A/B per rep and per x.
cat >"$RAW/ratios.spec" <<'EOF'
sync_iothread_over_lock bus iothread-sync lock-sync p50_ns
async_iothread_over_lock bus iothread-async lock-async mps
sync_iothread_over_classic bus iothread-sync-nospin classic-sync p50_ns
async_iothread_over_classic bus iothread-async classic-async mps
claimed_over_lock bus claimed lock-sync p50_ns
posted_iothread_over_lock bus iothread-async lock-async p50_ns
slow_posted_iothread_over_lock bus iothread-async-slow lock-async-slow p50_ns
slow_async_iothread_over_lock bus iothread-async-slow lock-async-slow mps
slow_async_iothread_over_classic bus iothread-async-slow classic-async-slow mps
pio_thread_over_floor pio thread floor p50_ns
pio_lock_over_floor pio lock floor p50_ns
pio_claimed_over_floor pio claimed floor p50_ns
pio_unassigned_over_floor pio unassigned floor p50_ns
pio_thread_over_lock pio thread lock p50_ns
pio_qemu-off_over_floor pio qemu-off floor p50_ns
pio_qemu-on_over_floor pio qemu-on floor p50_ns
pio_qemu-unassigned_over_floor pio qemu-unassigned floor p50_ns
pio_qemu-on_over_lock pio qemu-on lock p50_ns
pio_qemu-unassigned_over_unassigned pio qemu-unassigned unassigned p50_ns
ipi_thread_over_lock ipi thread lock p50_us
ipi_qemu-on_over_thread ipi qemu-on thread p50_us
ipi_qemu-off_over_thread ipi qemu-off thread p50_us
timer_thread_over_lock timer thread lock p50_us
timer_qemu-off_over_thread timer qemu-off thread p50_us
timer_qemu-on_over_thread timer qemu-on thread p50_us
irq_lockfree_over_lock irq lockfree lock eps
irq_lockfree_over_lock_p50 irq lockfree lock p50_us
EOF
awk -F'\t' 'NR == FNR { spec[NR] = $0; n = NR; next }
	{ v[$1 SUBSEP $2 SUBSEP $3 SUBSEP $4 SUBSEP $5] = $6; xs[$2 SUBSEP $4] = 1; reps[$1] = 1 }
	END {
		for (i = 1; i <= n; i++) {
			split(spec[i], s, " ")
			for (px in xs) {
				split(px, q, SUBSEP)
				if (q[1] != s[2]) continue
				for (r in reps) {
					a = r SUBSEP s[2] SUBSEP s[3] SUBSEP q[2] SUBSEP s[5]
					b = r SUBSEP s[2] SUBSEP s[4] SUBSEP q[2] SUBSEP s[5]
					if ((a in v) && (b in v) && v[b] > 0)
						print r "\tratio\t" s[1] "\t" q[2] "\tx\t" v[a] / v[b]
				}
			}
		}
	}' "$RAW/ratios.spec" "$SAMPLES" >"$RAW/ratios.tsv"

# median, min, max per (part, case, x, metric)
cat "$SAMPLES" "$RAW/ratios.tsv" | awk -F'\t' '
	{ k = $2 "\t" $3 "\t" $4 "\t" $5; n[k]++; v[k, n[k]] = $6 + 0 }
	END {
		for (k in n) {
			m = n[k]
			for (i = 1; i <= m; i++) a[i] = v[k, i]
			for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
			med = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
			print k "\t" m "\t" med "\t" a[1] "\t" a[m]
		}
	}' | sort >"$RAW/summary.tsv"

# ---------------------------------------------------------------- plots

for f in bus_latency bus_posted bus_throughput irqstress guest_pio guest_irq; do
	rm -f "$OUT/$f.svg"
done
if command -v gnuplot >/dev/null 2>&1; then
	awk -F'\t' -v dir="$RAW" '
		$1 == "bus" && ($4 == "p50_ns" || $4 == "p99_ns" || $4 == "mps") {
			f = dir "/plot-bus-" $2 "-" $4 ".dat"; print $3, $6, $7, $8 > f }
		$1 == "irq" && ($4 == "eps" || $4 == "p50_us" || $4 == "p99_us") {
			f = dir "/plot-irq-" $2 "-" $4 ".dat"; print $3, $6, $7, $8 > f }
	' "$RAW/summary.tsv"
	for f in "$RAW"/plot-*.dat; do
		[ -e "$f" ] && sort -n -o "$f" "$f"
	done
	# Bar charts: one line per configuration, in a fixed order.
	bars() { # FILE PART X METRIC SCALE CONFIGS...
		local file=$1 part=$2 x=$3 metric=$4 scale=$5 c
		shift 5
		: >"$file"
		for c in "$@"; do
			awk -F'\t' -v p="$part" -v c="$c" -v x="$x" -v m="$metric" -v s="$scale" -v l="${SHORT[$c]}" '
				$1 == p && $2 == c && $3 == x && $4 == m { v = $6 * s " " $7 * s " " $8 * s }
				END { print "\"" l "\"", v == "" ? "NaN NaN NaN" : v }' "$RAW/summary.tsv" >>"$file"
		done
	}
	declare -A SHORT=([floor]="KVM floor" [lock]="ours, lock" [thread]="ours, I/O thread"
		[claimed]="ours, claimed" [unassigned]="ours, no device" [qemu-off]="QEMU irqchip=off"
		[qemu-on]="QEMU in-kernel" [qemu-unassigned]="QEMU, no device")
	PIO_CFGS=(floor lock thread claimed unassigned qemu-off qemu-on qemu-unassigned)
	bars "$RAW/bars-pio-out.dat" pio out p50_ns 0.001 "${PIO_CFGS[@]}"
	bars "$RAW/bars-pio-in.dat" pio in p50_ns 0.001 "${PIO_CFGS[@]}"
	bars "$RAW/bars-ipi.dat" ipi hlt p50_us 1 lock thread qemu-off qemu-on
	bars "$RAW/bars-timer.dat" timer oneshot p50_us 1 lock thread qemu-off qemu-on
	if ! gnuplot -e "raw='$RAW'; out='$OUT'" bench/plots.gp >"$RAW/gnuplot.log" 2>&1; then
		error "gnuplot failed: $(grep -m2 -i 'error\|line [0-9]' "$RAW/gnuplot.log" | tr '\n' ' ')"
	fi
else
	error "gnuplot: not installed (run make bench-deps): no plots"
fi

awk -f bench/report.awk -v out="$OUT" -v threads="$THREADS" "$RAW/header.tsv" \
	"$RAW/summary.tsv" "$ERRORS" "$NOTES" >"$OUT/RESULTS.md"
[ -f "$RAW/linux.md" ] && cat "$RAW/linux.md" >>"$OUT/RESULTS.md"

cat "$OUT/RESULTS.md"
plots=("$OUT"/*.svg)
[ -e "${plots[0]}" ] || plots=()
say "done in $(($(date +%s) - start_s)) s: $OUT/RESULTS.md, ${#plots[@]} plots, $(wc -l <"$ERRORS") problems"
exit 0
