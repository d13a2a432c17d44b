#!/bin/bash
# The QMP control socket over a real socket, against the VMM running guest
# kernels (tests/guests/qmp_*.c), in both I/O modes.
#   tests/qmp/run.sh VMM GUEST_DIR [CASE...]
# Cases (tests/qmp/qmp_test.py): cli, counter, regs, crash, signal.
# Logs go to build/qmp-logs/ (or $QMP_LOG_DIR).  Without /dev/kvm the run
# is skipped, loudly; otherwise nothing is skipped.
set -u

[ $# -ge 2 ] || { echo "usage: $0 VMM GUEST_DIR [CASE...]" >&2; exit 2; }
vmm=$1
guest_dir=$2
shift 2
repo=$(cd "$(dirname "$0")/../.." && pwd)
log_dir=${QMP_LOG_DIR:-$repo/build/qmp-logs}

. "$(dirname "$0")/../lib/kvm.sh"
require_kvm "no QMP socket test was run"
if ! command -v python3 >/dev/null; then
	echo "FAIL: python3 is needed for the QMP socket tests" >&2
	exit 1
fi
for elf in qmp_counter qmp_regs qmp_crash hello; do
	if [ ! -f "$guest_dir/$elf.elf" ]; then
		echo "FAIL: $guest_dir/$elf.elf missing (make guests)" >&2
		exit 1
	fi
done

failed=0
for mode in thread lock; do
	python3 "$repo/tests/qmp/qmp_test.py" --vmm "$vmm" --guests "$guest_dir" --io "$mode" \
		--logs "$log_dir" "$@" || failed=1
done
if [ $failed -ne 0 ]; then
	echo "QMP socket tests: FAILED"
	exit 1
fi
echo "QMP socket tests: all passed"
