#!/bin/sh
# Checkpoint/restore: tests/snapshot/run.sh [VMM] [GUEST_DIR]
# For each I/O mode: run snap_counter on 2 vCPUs (IPIs both ways, LAPIC
# timer, PIT through the I/O APIC), save a snapshot (SIGUSR2,
# VMM_SNAPSHOT_ON_SIGUSR2) after its first progress line, kill that VMM,
# restore into a new one and check the guest finishes with exact counts.
# Then: restore paused (--qmp-wait) and save again over QMP: every section
# must be identical (snapcmp); another vCPU count and another device list
# are refused before anything is loaded; corrupt and truncated snapshots
# are refused; an AP saved between INIT and SIPI starts after restore.
# snapcmp is built next to the VMM.
set -u
. "$(dirname "$0")/../lib/kvm.sh"
require_kvm "no checkpoint/restore test was run"
VMM=${1:-build/vmm}
GUESTS=${2:-build/guests}
SNAPCMP=$(dirname "$VMM")/snapcmp
QMP="python3 $(dirname "$0")/qmp_cmd.py"
KERNEL=$GUESTS/snap_counter.elf
FINAL='^final: pings 4000 pongs 4000 ticks 1500 pit 300$'
[ -x "$SNAPCMP" ] || { echo "FAIL: $SNAPCMP missing (make $SNAPCMP)"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
ok() { echo "PASS $*"; }
bad() { echo "FAIL $*"; fail=1; }

# refused NAME PATTERN ARGS...: a restore that must fail with PATTERN, nothing run.
refused() {
	name=$1 pattern=$2
	shift 2
	"$VMM" "$@" >"$TMP/out" 2>&1
	rc=$?
	if [ $rc -eq 1 ] && grep -q "$pattern" "$TMP/out" && ! grep -q '^progress\|^final' "$TMP/out"; then
		ok "$name refused: $(grep 'cannot restore' "$TMP/out" | head -1)"
	else
		bad "$name: rc=$rc"; tail -5 "$TMP/out"
	fi
}

for mode in thread lock; do
	snap=$TMP/snap.$mode
	log=$TMP/first.$mode
	VMM_SNAPSHOT_ON_SIGUSR2=$snap $VMM --kernel "$KERNEL" --cpus 2 --io $mode >"$log" 2>&1 &
	pid=$!
	# Wait for the guest to be under way (no time limit on a slow host
	# other than the guest's own end).
	while kill -0 $pid 2>/dev/null && ! grep -q '^progress 500 ' "$log"; do sleep 0.05; done
	kill -USR2 $pid 2>/dev/null
	while kill -0 $pid 2>/dev/null && ! grep -q 'snapshot saved' "$log"; do sleep 0.05; done
	kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
	if ! grep -q 'snapshot saved' "$log" || grep -q '^final' "$log"; then
		bad "$mode: no snapshot taken mid-run"; cat "$log"; continue
	fi
	before=$(grep -c '^progress' "$log")
	$VMM -v --kernel "$KERNEL" --cpus 2 --io $mode --restore "$snap" >"$TMP/second" 2>&1
	rc=$?
	after=$(grep '^progress' "$TMP/second" | head -1)
	# The guest's buffer is a run long enough to be mapped from the file.
	if [ $rc -eq 1 ] && grep -q "$FINAL" "$TMP/second" &&
	   ! grep -q '^progress 500 ' "$TMP/second" &&
	   grep -q 'RAM: [1-9][0-9]* runs of pages mapped' "$TMP/second"; then
		ok "$mode: restored after $before progress lines, first after restore: $after;" \
		   "$(grep -o '[0-9]* runs of pages mapped' "$TMP/second")"
	else
		bad "$mode: restored run rc=$rc"; tail -20 "$TMP/second"
	fi

	# Exact: restored and saved again while paused, nothing differs.  Then
	# a save over the very file the restored RAM is mapped from, and the
	# guest runs on to exact counts.
	sock=$TMP/qmp.$mode
	cp "$snap" "$snap.orig"
	$VMM --kernel "$KERNEL" --cpus 2 --io $mode --restore "$snap" --qmp "unix:$sock" \
		--qmp-wait >"$TMP/third" 2>&1 &
	pid=$!
	$QMP "$sock" x-snapshot-save "{\"file\": \"$snap.again\", \"stay-stopped\": true}" >/dev/null
	$QMP "$sock" x-snapshot-save "{\"file\": \"$snap\", \"stay-stopped\": true}" >/dev/null
	$QMP "$sock" cont >/dev/null
	wait $pid
	rc=$?
	if "$SNAPCMP" "$snap.orig" "$snap.again" >"$TMP/cmp"; then
		ok "$mode: save, restore, save: $(cat "$TMP/cmp")"
	else
		bad "$mode: save, restore, save differ: $(cat "$TMP/cmp")"; tail -5 "$TMP/third"
	fi
	if [ $rc -eq 1 ] && grep -q "$FINAL" "$TMP/third"; then
		ok "$mode: saved over its own snapshot file, ran on to exact counts"
	else
		bad "$mode: run after saving over its snapshot file: rc=$rc"; tail -5 "$TMP/third"
	fi

	# Restore refuses another machine shape, before loading anything.
	refused "$mode: --cpus mismatch" 'the snapshot has 2 vCPUs' \
		--kernel "$KERNEL" --cpus 1 --io $mode --restore "$snap"
	refused "$mode: an extra device" \
		"device list differs: this machine has device 'uart' instance 760" \
		--kernel "$KERNEL" --cpus 2 --io $mode --device uart:0x2f8,3 --restore "$snap"
	refused "$mode: a missing device" \
		"device list differs: the snapshot has device 'rtc' instance 0" \
		--kernel "$KERNEL" --cpus 2 --io $mode --no-defaults --device pic --device ioapic \
		--device lapic --device pit --device fwcfg --device uart:0x3f8,4 \
		--device debugexit:0xf4,1 --device testdev --device acpipm --device reset \
		--device i8042 --device port80 --device pcihost --device bios --restore "$snap"
done

# A parked AP: saved between its INIT and its SIPI, it must start on the
# one SIPI the restored guest sends (woken by an NMI).
for mode in thread lock; do
	sock=$TMP/parked.$mode
	$VMM --kernel "$GUESTS/snap_parked.elf" --cpus 2 --io $mode --qmp "unix:$sock" \
		>"$TMP/parked1" 2>&1 &
	pid=$!
	while kill -0 $pid 2>/dev/null && ! grep -q '^INIT sent' "$TMP/parked1"; do sleep 0.05; done
	$QMP "$sock" x-snapshot-save "{\"file\": \"$TMP/parked\", \"stay-stopped\": true}" >/dev/null
	$QMP "$sock" quit >/dev/null
	wait $pid
	rm -f "$sock"
	$VMM --kernel "$GUESTS/snap_parked.elf" --cpus 2 --io $mode --restore "$TMP/parked" \
		--qmp "unix:$sock" >"$TMP/parked2" 2>&1 &
	pid=$!
	$QMP "$sock" inject-nmi >/dev/null
	wait $pid
	rc=$?
	if [ $rc -eq 1 ] && grep -q '^CPU 1 up after one SIPI' "$TMP/parked2" &&
	   ! grep -q '^INIT sent' "$TMP/parked2"; then
		ok "$mode: a parked AP saved between INIT and SIPI starts after restore"
	else
		bad "$mode: parked AP after restore: rc=$rc"; tail -5 "$TMP/parked2"
	fi
done

# snapcmp itself: two different runs' snapshots must differ.
"$SNAPCMP" "$TMP/snap.thread" "$TMP/snap.lock" >"$TMP/cmp"
rc=$?
if [ $rc -eq 1 ] && grep -q '^section ' "$TMP/cmp"; then
	ok "snapcmp tells two runs apart: $(cat "$TMP/cmp")"
else
	bad "snapcmp on two runs' snapshots: rc=$rc $(cat "$TMP/cmp")"
fi

# Damage: a flipped byte in the middle (RAM), a flipped header byte, truncation.
snap=$TMP/snap.thread
[ -s "$snap" ] || { bad "no snapshot to damage"; exit 1; }
size=$(stat -c %s "$snap")
for what in flip-mid flip-head truncate; do
	cp "$snap" "$TMP/bad"
	case $what in
	flip-mid) off=$((size / 2)) ;;
	flip-head) off=20 ;;
	esac
	case $what in
	truncate) truncate -s $((size - 100)) "$TMP/bad" ;;
	*) b=$(od -An -tu1 -j$off -N1 "$TMP/bad" | tr -d ' ')
	   printf "$(printf '\\%03o' $(( (b + 1) % 256 )))" |
		dd of="$TMP/bad" bs=1 seek=$off conv=notrunc 2>/dev/null ;;
	esac
	refused "$what" 'cannot restore' --kernel "$KERNEL" --cpus 2 --restore "$TMP/bad"
done
exit $fail
