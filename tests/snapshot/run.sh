#!/bin/sh
# Checkpoint/restore: tests/snapshot/run.sh [VMM] [GUEST_DIR]
# For each I/O mode: run snap_counter on 2 vCPUs, save a snapshot (SIGUSR2,
# VMM_SNAPSHOT_ON_SIGUSR2) after its first progress line, kill that VMM,
# restore into a new one and check the guest finishes with exact counts;
# then check that corrupt and truncated snapshots are refused.
set -u
VMM=${1:-build/vmm}
GUESTS=${2:-build/guests}
KERNEL=$GUESTS/snap_counter.elf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
ok() { echo "PASS $*"; }
bad() { echo "FAIL $*"; fail=1; }

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
	$VMM --kernel "$KERNEL" --cpus 2 --io $mode --restore "$snap" >"$TMP/second" 2>&1
	rc=$?
	after=$(grep '^progress' "$TMP/second" | head -1)
	if [ $rc -eq 1 ] && grep -q '^final: pings 4000 pongs 4000 ticks 1500' "$TMP/second" &&
	   ! grep -q '^progress 500 ' "$TMP/second"; then
		ok "$mode: restored after $before progress lines, first after restore: $after"
	else
		bad "$mode: restored run rc=$rc"; tail -20 "$TMP/second"
	fi
	# Restore refuses another machine shape.
	$VMM --kernel "$KERNEL" --cpus 1 --io $mode --restore "$snap" >"$TMP/cpus" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 1 ] && grep -q 'vCPUs' "$TMP/cpus"; then ok "$mode: --cpus mismatch refused"
	elif [ $rc -eq 1 ] && grep -q 'the snapshot has 2 vCPUs' "$TMP/cpus"; then ok "$mode: --cpus mismatch refused"
	else bad "$mode: --cpus mismatch rc=$rc"; cat "$TMP/cpus"; fi
done

# Damage: a flipped byte in the middle (RAM), a flipped header byte, truncation.
snap=$TMP/snap.thread
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
	$VMM --kernel "$KERNEL" --cpus 2 --restore "$TMP/bad" >"$TMP/out" 2>&1
	rc=$?
	if [ $rc -eq 1 ] && grep -q 'cannot restore' "$TMP/out" && ! grep -q '^final' "$TMP/out"; then
		ok "$what refused: $(grep 'cannot restore' "$TMP/out" | head -1)"
	else
		bad "$what: rc=$rc"; tail -5 "$TMP/out"
	fi
done
exit $fail
