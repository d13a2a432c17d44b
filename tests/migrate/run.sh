#!/bin/sh
# Live migration: tests/migrate/run.sh [VMM] [GUEST_DIR]
# snap_counter (2 vCPUs, IPI ping-pong and a LAPIC timer) is migrated
# mid-run between two VMM processes; the destination must finish it with
# exact counts and the source must end "postmigrate".  Then the faults: a
# destination killed mid-migration and one that refuses (--cpus 1) leave
# the source running to its own exact end.  Waits are hang protection only.
set -u
. "$(dirname "$0")/../lib/kvm.sh"
require_kvm "no live migration test was run"
VMM=${1:-build/vmm}
GUESTS=${2:-build/guests}
KERNEL=$GUESTS/snap_counter.elf
HERE=$(cd "$(dirname "$0")" && pwd)
QMP="python3 $HERE/qmp_migrate.py"
TMP=$(mktemp -d)
PORT=$((20000 + $$ % 20000))
pids=
trap 'for p in $pids; do kill -KILL $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
fail=0
ok() { echo "PASS $*"; }
bad() { echo "FAIL $*"; fail=1; }
FINAL='^final: pings 4000 pongs 4000 ticks 1500'

if [ ! -e /dev/kvm ]; then echo "SKIPPED: no /dev/kvm"; exit 0; fi

# start_src NAME [VMM options]: the source, under way (its first progress line).
start_src() {
	name=$1; shift
	$VMM --kernel "$KERNEL" --cpus 2 --qmp "unix:$TMP/$name.qmp" "$@" >"$TMP/$name.src" 2>&1 &
	src=$!; pids="$pids $src"
	while kill -0 $src 2>/dev/null && ! grep -q '^progress 500 ' "$TMP/$name.src"; do
		sleep 0.05
	done
}

# start_dst NAME URI [VMM options]
start_dst() {
	name=$1; uri=$2; shift 2
	$VMM --incoming "$uri" "$@" >"$TMP/$name.dst" 2>&1 &
	dst=$!; pids="$pids $dst"
	while kill -0 $dst 2>/dev/null && ! grep -q 'waiting for the migration' "$TMP/$name.dst"; do
		sleep 0.05
	done
}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# A whole migration that must succeed: NAME URI PARAMS [VMM options].
migrate_ok() {
	name=$1; uri=$2; params=$3; shift 3
	start_dst "$name" "$uri" --cpus 2 "$@"
	start_src "$name" "$@"
	$QMP "$TMP/$name.qmp" migrate "$uri" "$params" >"$TMP/$name.json" 2>&1
	wait $dst; drc=$?
	st=$(json 'd["status"]["status"]' <"$TMP/$name.json" 2>/dev/null)
	ms=$(json 'd["info"]["status"]' <"$TMP/$name.json" 2>/dev/null)
	ev=$(json '" ".join(s or e for e, s in d["events"])' <"$TMP/$name.json" 2>/dev/null)
	$QMP "$TMP/$name.qmp" quit >/dev/null 2>&1; wait $src
	before=$(grep -c '^progress' "$TMP/$name.src")
	if [ $drc -eq 1 ] && grep -q "$FINAL" "$TMP/$name.dst" && ! grep -q '^final' "$TMP/$name.src" &&
	   [ "$st" = postmigrate ] && [ "$ms" = completed ] &&
	   [ "$ev" = "setup active device STOP completed" ]; then
		ok "$name: $(json '"downtime %d ms, total %d ms, %d rounds" % (d["info"]["downtime"], d["info"]["total-time"], d["info"]["ram"]["dirty-sync-count"])' <"$TMP/$name.json"), $before progress lines before"
	else
		bad "$name: destination rc=$drc, source $st, migration $ms, events '$ev'"
		cat "$TMP/$name.json"; tail -5 "$TMP/$name.src" "$TMP/$name.dst"
	fi
}

# The source finishes its own run with exact counts (after a failed migration).
source_finishes() {
	wait $src; rc=$?
	if [ $rc -eq 1 ] && grep -q "$FINAL" "$TMP/$1.src"; then
		ok "$1: the source ran on to '$(grep '^final' "$TMP/$1.src")'"
	else
		bad "$1: source rc=$rc"; tail -5 "$TMP/$1.src"
	fi
}

migrate_ok tcp-thread "tcp:127.0.0.1:$PORT" '' --io thread
migrate_ok tcp-lock "tcp:127.0.0.1:$((PORT + 1))" '' --io lock
migrate_ok unix "unix:$TMP/mig.sock" ''
migrate_ok zstd-verify "tcp:127.0.0.1:$((PORT + 2))" \
	'{"multifd-compression": "zstd", "x-verify": true, "downtime-limit": 0, "x-max-rounds": 3}'

# A destination killed mid-migration (pre-copy slowed by max-bandwidth).
name=killed
start_dst $name "tcp:127.0.0.1:$((PORT + 3))" --cpus 2
start_src $name
$QMP "$TMP/$name.qmp" migrate "tcp:127.0.0.1:$((PORT + 3))" '{"max-bandwidth": 50000}' \
	>"$TMP/$name.json" 2>&1 &
helper=$!
until $QMP "$TMP/$name.qmp" query-migrate 2>/dev/null | grep -q '"active"'; do
	kill -0 $helper 2>/dev/null || break; sleep 0.05
done
kill -KILL $dst; wait $dst 2>/dev/null
wait $helper
ms=$(json 'd["info"]["status"]' <"$TMP/$name.json" 2>/dev/null)
why=$(json 'd["info"].get("error-desc", "")' <"$TMP/$name.json" 2>/dev/null)
if [ "$ms" = failed ] && [ -n "$why" ]; then ok "$name: query-migrate failed: $why"
else bad "$name: migration status '$ms'"; cat "$TMP/$name.json"; fi
source_finishes $name

# A destination of another shape refuses; the source runs on.
name=refused
start_dst $name "tcp:127.0.0.1:$((PORT + 4))" --cpus 1
start_src $name
$QMP "$TMP/$name.qmp" migrate "tcp:127.0.0.1:$((PORT + 4))" '' >"$TMP/$name.json" 2>&1
wait $dst; drc=$?
ms=$(json 'd["info"]["status"]' <"$TMP/$name.json" 2>/dev/null)
why=$(json 'd["info"].get("error-desc", "")' <"$TMP/$name.json" 2>/dev/null)
if [ "$ms" = failed ] && echo "$why" | grep -q 'vCPUs' && [ $drc -eq 1 ] &&
   ! grep -q '^progress' "$TMP/$name.dst"; then
	ok "$name: destination rc=$drc, error-desc: $why"
else
	bad "$name: migration '$ms' ($why), destination rc=$drc"; cat "$TMP/$name.dst"
fi
source_finishes $name
exit $fail
