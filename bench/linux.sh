#!/bin/bash
# Part 6 of `make bench` (LINUX=1): the Linux test guest's boot milestones,
# ours (both I/O modes, host-side decompression on and off) against QEMU
# microvm on the same kernel, one boot each (a boot takes ~20-60 s here,
# the in-guest decompressor minutes).  Writes a markdown section to $1 and
# prints problems to stderr.
#   usage: bench/linux.sh OUT.md RAWDIR VMM LINUXDIR QEMU_BIN
set -u
out=$1 raw=$2 vmm=$3 dir=$4 qemu=$5
args="$(cat tests/guests/linux/cmdline) vmmtest=poweroff"
limit=${BENCH_LINUX_TIMEOUT:-400}

# stamp LOG CMD...: run CMD, prefixing every output line with seconds since start.
stamp() {
	local log=$1 t0
	shift
	t0=$(date +%s.%N)
	timeout -k 5 "$limit" "$@" </dev/null 2>&1 | while IFS= read -r line; do
		printf '%s %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "${line%$'\r'}"
	done >"$log"
	echo "$(echo "$(date +%s.%N) - $t0" | bc) EXIT" >>"$log"
}

# at LOG PATTERN: seconds at the first line matching PATTERN, or "-".
at() {
	awk -v p="$2" 'index($0, p) { printf "%.1f", $1; found = 1; exit } END { if (!found) print "-" }' "$1"
}

# row ID LABEL CMD...: one boot, one table row; the log is linux-ID.log.
row() {
	local id=$1 name=$2 log=$raw/linux-$1.log work
	shift 2
	stamp "$log" "$@"
	work=$(grep -m1 -o 'VMM-GUEST-WORKLOAD-OK.*' "$log" | sed 's/VMM-GUEST-WORKLOAD-OK //')
	[ -n "$work" ] || echo "bench: Linux $name: no workload line (log $log)" >&2
	printf '| %s | %s | %s | %s | %s |\n' "$name" "$(at "$log" 'Run /init')" \
		"$(at "$log" 'VMM-GUEST-READY')" "$(at "$log" ' EXIT')" "${work:-failed, see $log}"
}

{
	echo
	echo "## 6. Linux (\`make bench LINUX=1\`, one boot each)"
	echo
	echo "The test guest (tests/guests/linux) on 2 vCPUs, 256 MiB, powering off after its workload:"
	echo "wall seconds from start to \"Run /init\", to the guest's marker, to the VMM's exit."
	echo
	echo '| configuration | Run /init (s) | marker (s) | exit (s) | workload |'
	echo '|---|---|---|---|---|'
	row thread "ours, --io thread, bzImage unpacked on the host" "$vmm" --cpus 2 --mem 256M --io thread \
		--kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	row lock "ours, --io lock, bzImage unpacked on the host" "$vmm" --cpus 2 --mem 256M --io lock \
		--kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	row pvh "ours, --io thread, vmlinux (PVH)" "$vmm" --cpus 2 --mem 256M --io thread --pvh \
		--kernel "$dir/vmlinux" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	row no-unpack "ours, --io thread, --no-unpack (guest decompresses)" "$vmm" --cpus 2 --mem 256M \
		--no-unpack --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	if command -v "$qemu" >/dev/null 2>&1; then
		row qemu-on "QEMU microvm, in-kernel irqchip, vmlinux (PVH)" "$qemu" -M microvm,rtc=on \
			-enable-kvm -cpu host,kvm-pv-ipi=off,kvm-pv-sched-yield=off -smp 2 -m 256M \
			-kernel "$dir/vmlinux" -initrd "$dir/initramfs.cpio" -append "$args" \
			-nographic -no-reboot
		row qemu-off "QEMU microvm, kernel-irqchip=off, 1 vCPU, vmlinux (PVH)" "$qemu" \
			-M microvm,rtc=on,kernel-irqchip=off -enable-kvm \
			-cpu host,kvm-asyncpf-int=off,kvm-pv-ipi=off,kvm-pv-sched-yield=off -smp 1 -m 256M \
			-kernel "$dir/vmlinux" -initrd "$dir/initramfs.cpio" -append "$args" \
			-nographic -no-reboot
	else
		echo "| QEMU | not installed (make bench-deps) | | | |"
	fi
	echo
	echo "\"-\": the milestone never came (see the logs in $raw)."
} >"$out"
