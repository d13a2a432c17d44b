#!/bin/bash
# Machine reset (doc/architecture.md "Machine reset"): guest resets under
# --on-reboot restart and exit, QMP system_reset on a running and on a
# stopped guest, in both I/O modes (tests/reset/reset_test.py).
#   tests/reset/run.sh VMM GUEST_DIR [CASE...]
# Logs go to build/reset-logs/ (or $RESET_LOG_DIR).  Without /dev/kvm the
# run is skipped, loudly.
set -u

[ $# -ge 2 ] || { echo "usage: $0 VMM GUEST_DIR [CASE...]" >&2; exit 2; }
vmm=$1
guest_dir=$2
shift 2
repo=$(cd "$(dirname "$0")/../.." && pwd)
log_dir=${RESET_LOG_DIR:-$repo/build/reset-logs}

. "$(dirname "$0")/../lib/kvm.sh"
require_kvm "no machine reset test was run"
if ! command -v python3 >/dev/null; then
	echo "FAIL: python3 is needed for the reset tests" >&2
	exit 1
fi
for elf in reboot snap_counter; do
	if [ ! -f "$guest_dir/$elf.elf" ]; then
		echo "FAIL: $guest_dir/$elf.elf missing (make guests)" >&2
		exit 1
	fi
done

failed=0
for mode in thread lock; do
	python3 "$repo/tests/reset/reset_test.py" --vmm "$vmm" --guests "$guest_dir" --io "$mode" \
		--logs "$log_dir" "$@" || failed=1
done
if [ $failed -ne 0 ]; then
	echo "machine reset tests: FAILED"
	exit 1
fi
echo "machine reset tests: all passed"
