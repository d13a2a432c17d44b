#!/bin/bash
# Boot every guest test kernel under the VMM, in both I/O modes, and check
# its verdict.   tests/guests/run.sh VMM GUEST_DIR
#
# A case passes when the VMM exits with status 1 (the guest wrote 0 to the
# debug-exit port: status = (v << 1) | 1) AND the console log holds the
# guest's "PASS: <name>" line.  The marker matters: status 1 alone is also
# what the VMM returns on its own errors.  A case may instead expect
# another status and log lines (the crash guests: the VMM's own verdict).
# Logs go to build/guest-logs/ (or $GUEST_LOG_DIR).  Without /dev/kvm the
# whole run is skipped, loudly; otherwise no case is ever skipped.
set -u

# One line per case:
#   name | vCPUs | extra VMM options | guest arguments [| expect]
# The guest is GUEST_DIR/<name>.elf; the VMM hands it "<path> <arguments>"
# as its multiboot command line, as GRUB does.  vCPUs may be a list
# ("2 4"): the case runs once per count.  expect, if present, is
# "STATUS PATTERN; PATTERN...": the VMM's exit status, and extended
# regular expressions that must each match a line of the log (no '|').
CASES='
hello       | 1     | | hello from run.sh
pio         | 1     | | rounds=300 seed=7
smp         | 2 4 64 | |
ipi         | 2 4   | |
lapic_timer | 1 2   | |
pit_irq     | 1 2   | |
badpoke     | 1 2 4 | | seed=1
wildicr     | 1 2 4 | | seed=1
triple      | 1     | | | 4 vCPU 0: triple fault; rip=; code at
badinsn     | 1     | | | 4 KVM internal error; code at .*: f3 0f b8 c0
trapinsn    | 1 2   | |
'
MODES="thread lock"
TIMEOUT=${GUEST_TIMEOUT:-120}

usage() {
	echo "usage: $0 VMM GUEST_DIR [NAME...]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
vmm=$1
guest_dir=$2
shift 2
only=("$@")
repo=$(cd "$(dirname "$0")/../.." && pwd)
log_dir=${GUEST_LOG_DIR:-$repo/build/guest-logs}

. "$(dirname "$0")/../lib/kvm.sh"
require_kvm "no guest test was run"

trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	echo "${s%"${s##*[![:space:]]}"}"
}

wanted() {
	[ ${#only[@]} -eq 0 ] && return 0
	local n
	for n in "${only[@]}"; do
		[ "$n" = "$1" ] && return 0
	done
	return 1
}

# check_expect LOG RC EXPECT: why LOG and RC do not meet EXPECT ("" if they do).
check_expect() {
	local log=$1 rc=$2 want_rc=${3%% *} patterns pat
	local -a list

	patterns=${3#"$want_rc"}
	if [ "$rc" -ne "$want_rc" ]; then
		echo "VMM exit status $rc, want $want_rc"
		return
	fi
	IFS=';' read -r -a list <<<"$patterns"
	for pat in "${list[@]}"; do
		pat=$(trim "$pat")
		[ -z "$pat" ] && continue
		if ! tr -d '\r' <"$log" | grep -Eq -- "$pat"; then
			echo "no line matching /$pat/ in the log"
			return
		fi
	done
}

# run_case NAME CPUS MODE VMM_OPTS GUEST_ARGS [EXPECT]: prints one verdict line.
run_case() {
	local name=$1 cpus=$2 mode=$3 opts=$4 args=$5 expect=${6:-}
	local elf=$guest_dir/$name.elf
	local log=$log_dir/$name-cpus$cpus-$mode.log
	local rc why=

	if [ ! -f "$elf" ]; then
		echo "FAIL $name cpus=$cpus io=$mode: $elf missing (make guests)"
		return 1
	fi
	# shellcheck disable=SC2086  # $opts is a list of options
	timeout -k 10 "$TIMEOUT" "$vmm" --kernel "$elf" --cmdline "$args" \
		--cpus "$cpus" --mem 64M --io "$mode" $opts >"$log" 2>&1 </dev/null
	rc=$?
	if [ $rc -eq 124 ]; then
		why="timed out after ${TIMEOUT}s"
	elif [ -n "$expect" ]; then
		why=$(check_expect "$log" "$rc" "$expect")
	elif [ $rc -ne 1 ]; then
		why="VMM exit status $rc, want 1"
		[ $rc -ge 3 ] && [ $((rc & 1)) -eq 1 ] && why="$why (guest exit code $((rc >> 1)))"
	elif ! tr -d '\r' <"$log" | grep -qx "PASS: $name"; then
		why="no 'PASS: $name' line in the log"
	fi
	if [ -n "$why" ]; then
		echo "FAIL $name cpus=$cpus io=$mode: $why; log $log"
		grep -m1 "^FAIL:" "$log" | sed 's/^/     /'
		return 1
	fi
	echo "PASS $name cpus=$cpus io=$mode; log $log"
}

mkdir -p "$log_dir" || exit 1
failed=0
total=0
while IFS='|' read -r name cpu_list opts args expect; do
	name=$(trim "$name")
	[ -z "$name" ] && continue
	case $name in \#*) continue ;; esac
	wanted "$name" || continue
	for cpus in $cpu_list; do
		for mode in $MODES; do
			total=$((total + 1))
			run_case "$name" "$cpus" "$mode" "$(trim "$opts")" "$(trim "$args")" \
				"$(trim "${expect:-}")" || failed=$((failed + 1))
		done
	done
done <<<"$CASES"

if [ $total -eq 0 ]; then
	echo "FAIL: no guest test matched: ${only[*]}"
	exit 1
fi
echo "guest tests: $((total - failed)) of $total passed"
[ $failed -eq 0 ]
