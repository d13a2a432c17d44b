#!/bin/sh
# Bad input at the command line: every case must give a clear message and
# the documented exit status, never a crash.
#   usage: tests/cli/run.sh VMM
set -u
. "$(dirname "$0")/../lib/kvm.sh"
VMM=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0

# expect STATUS PATTERN -- ARGS...: run the VMM, check status and stderr.
expect() {
	want=$1 pattern=$2
	shift 3
	"$VMM" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
	got=$?
	if [ "$got" -ne "$want" ] || ! grep -qiE "$pattern" "$TMP/out" "$TMP/err"; then
		echo "FAIL: vmm $* -> status $got (want $want), output:"
		sed 's/^/    /' "$TMP/err" "$TMP/out" | head -5
		fails=$((fails + 1))
	else
		echo "PASS: vmm $* -> $got"
	fi
}

head -c 4096 /dev/urandom >"$TMP/random.bin"
: >"$TMP/empty"
# An ELF header with nothing behind it.
printf '\177ELF\001\001\001\000' >"$TMP/truncated.elf"

expect 0 'usage'                     -- --help
expect 0 'vmm'                       -- --version
expect 2 'no kernel'                 --
expect 2 'unknown option'            -- --frobnicate
expect 2 'bad value'                 -- --kernel x --cpus 0
expect 2 'bad value'                 -- --kernel x --cpus 65
expect 2 'bad value'                 -- --kernel x --cpus two
expect 2 'bad value'                 -- --kernel x --mem 1K
expect 2 'bad value'                 -- --kernel x --mem lots
expect 2 'bad value'                 -- --kernel x --io fast
expect 2 'bad value'                 -- --kernel x --pin 1,x
expect 2 'unknown device'            -- --kernel x --device nosuch
expect 2 'needs an argument'         -- --kernel
expect 2 'unexpected argument'       -- --kernel x extra

if [ ! -c /dev/kvm ]; then
	kvm_missing_banner "kernel-loading error cases not run"
else
	expect 1 'no such file'          -- --kernel "$TMP/missing.elf"
	expect 1 'empty|too short|header' -- --kernel "$TMP/empty"
	expect 1 'multiboot'             -- --kernel "$TMP/random.bin"
	expect 1 'truncated|short|ELF'   -- --kernel "$TMP/truncated.elf"
	expect 1 'not a regular file|is a directory'      -- --kernel "$TMP"
fi

[ "$fails" -eq 0 ] && echo "cli: all passed" || echo "cli: $fails failed"
exit $((fails != 0))
