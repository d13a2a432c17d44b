#!/bin/sh
# A short irqstress run for `make test` (built with ThreadSanitizer there):
# both modes with the IOAPIC behind the global lock, then lock-free mode
# with the IOAPIC behind the I/O thread and more threads than host cores.
# Fails when the harness finds a violation or TSan reports a race.
#
# Usage: tests/stress/run-short.sh IRQSTRESS
# IRQSTRESS_ARGS adds options to every run (e.g. --seed N to replay one).
set -eu

bin=${1:?usage: run-short.sh IRQSTRESS}
here=$(cd "$(dirname "$0")" && pwd)
: "${TSAN_OPTIONS:=halt_on_error=1 suppressions=$here/../tsan.supp}"
export TSAN_OPTIONS
extra=${IRQSTRESS_ARGS:-}

run() {
	echo "== $bin $* $extra"
	# shellcheck disable=SC2086  # $extra is a list of options
	"$bin" "$@" $extra
}

run --duration 2 --mode both --threads 2 --cpus 4
run --duration 1 --mode lockfree --io thread --threads 3 --cpus 3
echo "irqstress: short runs passed"
