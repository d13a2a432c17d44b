#!/bin/sh
# Fail if a guest kernel contains an instruction the host's KVM emulator
# cannot run in ring 0 (it stops with KVM_EXIT_INTERNAL_ERROR or hangs):
# SSE/AVX/MMX and x87, POPCNT/LZCNT/BMI, XSAVE, STAC/CLAC, int3/int n,
# VMCALL, and a few more from shared/notes/host-kvm-facts.md.
#   check-insns.sh FILE.elf
set -e
elf=$1
bad='^(f[a-z0-9]*|int3?|into|ud2|ud1|vmcall|vmmcall|popcnt|lzcnt|tzcnt|andn|bextr|blsi|blsmsk|blsr|bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx|adcx|adox|crc32|movbe|rdtscp|rdpid|xgetbv|xsave[a-z0-9]*|xrstor[a-z0-9]*|ldmxcsr|stmxcsr|stac|clac|emms|cmpxchg16b|invpcid|clwb|monitor|mwait|endbr32|endbr64)$'
out=$(objdump -d --no-show-raw-insn "$elf" | awk -F'\t' -v bad="$bad" '
	NF >= 2 && $1 ~ /^ *[0-9a-f]+:$/ {
		split($2, w, " ")
		m = w[1]
		if (m ~ /^(rep|repz|repnz|repe|repne|lock|data16|addr16|cs|ds|es|ss|fs|gs)$/)
			m = w[2]
		if (m ~ bad || $2 ~ /%(x|y|z)mm|%mm[0-7]|%st/)
			print $1 "\t" $2
	}')
if [ -n "$out" ]; then
	echo "$elf: instructions the KVM emulator cannot run:" >&2
	echo "$out" >&2
	exit 1
fi
