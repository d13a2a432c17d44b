#!/bin/bash
# Part 6 of `make bench` (LINUX=1): the Linux test guest's boot milestones,
# ours (both I/O modes, host-side decompression on and off) against QEMU
# microvm on the same kernel.  Every configuration boots LINUX_REPS times
# (default 3: a boot takes 20-60 s here, the in-guest decompressor minutes);
# each figure is the median with min-max.  Writes a markdown section to $1
# and prints problems to stderr.
#   usage: bench/linux.sh OUT.md RAWDIR VMM LINUXDIR QEMU_BIN
set -u
out=$1 raw=$2 vmm=$3 dir=$4 qemu=$5
args="$(cat tests/guests/linux/cmdline) vmmtest=poweroff"
limit=${BENCH_LINUX_TIMEOUT:-400}
reps=${LINUX_REPS:-3}

since() { echo "$(date +%s.%N) - $1" | bc; }

# stamp LOG STOP CMD...: run CMD, prefixing every output line with seconds
# since start.  A non-empty STOP ends the run once a line contains it (for
# a VMM that does not exit after the guest powers off).
stamp() {
	local log=$1 stop=$2 t0 fifo pid line
	shift 2
	fifo=$(mktemp -u) && mkfifo "$fifo" || return
	t0=$(date +%s.%N)
	# setsid: the background job leads its own process group, killed whole.
	setsid timeout -k 5 "$limit" "$@" </dev/null >"$fifo" 2>&1 &
	pid=$!
	while IFS= read -r line; do
		printf '%s %s\n' "$(since "$t0")" "${line%$'\r'}"
		if [ -n "$stop" ] && [[ $line == *"$stop"* ]]; then
			echo "$(since "$t0") STOPPED (bench: '$stop' seen)"
			kill -TERM -- "-$pid" 2>/dev/null
		fi
	done <"$fifo" >"$log"
	wait "$pid" 2>/dev/null
	rm -f "$fifo"
	echo "$(since "$t0") EXIT" >>"$log"
}

# at LOG PATTERN: seconds at the first line matching PATTERN, or "-".
at() {
	awk -v p="$2" 'index($0, p) { printf "%.1f", $1; found = 1; exit } END { if (!found) print "-" }' "$1"
}

# median VALUE...: "median (min–max)" of the numeric values, "-" if none;
# "k/n" is added when only k of n runs reached the milestone.
median() {
	printf '%s\n' "$@" | awk -v n=$# '
		$1 != "-" { v[++k] = $1 + 0 }
		END {
			if (!k) { print "-"; exit }
			for (i = 2; i <= k; i++)            # insertion sort: mawk has no asort
				for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
			m = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
			printf "%.1f (%.1f–%.1f)%s", m, v[1], v[k], k < n ? sprintf(" %d/%d", k, n) : ""
		}'
}

# row ID LABEL STOP CMD...: LINUX_REPS boots, one table row; logs linux-ID-R.log.
row() {
	local id=$1 name=$2 stop=$3 log work="" r init=() marker=() done=()
	shift 3
	for r in $(seq 1 "$reps"); do
		log=$raw/linux-$id-$r.log
		stamp "$log" "$stop" "$@"
		init+=("$(at "$log" 'Run /init')")
		marker+=("$(at "$log" 'VMM-GUEST-READY')")
		if [ -n "$stop" ]; then done+=("-"); else done+=("$(at "$log" ' EXIT')"); fi
		[ -n "$work" ] || work=$(grep -m1 -o 'VMM-GUEST-WORKLOAD-OK.*' "$log" |
					 sed 's/VMM-GUEST-WORKLOAD-OK //')
		grep -q 'VMM-GUEST-WORKLOAD-OK' "$log" ||
			echo "bench: Linux $name, run $r: no workload line (log $log)" >&2
	done
	printf '| %s | %s | %s | %s | %s |\n' "$name" "$(median "${init[@]}")" \
		"$(median "${marker[@]}")" \
		"$(if [ -n "$stop" ]; then echo "stopped by the bench"; else median "${done[@]}"; fi)" \
		"${work:-failed, see $raw/linux-$id-*.log}"
}

{
	echo
	echo "## 6. Linux (\`make bench LINUX=1\`, $reps boots each)"
	echo
	echo "The test guest (tests/guests/linux) on 2 vCPUs, 256 MiB, powering off after its workload:"
	echo "wall seconds from start to \"Run /init\", to the guest's marker, to the VMM's exit;"
	echo "median (min–max) over $reps boots (LINUX_REPS).  The workload column is the first boot's."
	echo
	echo '| configuration | Run /init (s) | marker (s) | exit (s) | workload (first boot) |'
	echo '|---|---|---|---|---|'
	row thread "ours, --io thread, bzImage unpacked on the host" "" "$vmm" --cpus 2 --mem 256M \
		--io thread --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	row lock "ours, --io lock, bzImage unpacked on the host" "" "$vmm" --cpus 2 --mem 256M \
		--io lock --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	row pvh "ours, --io thread, vmlinux (PVH)" "" "$vmm" --cpus 2 --mem 256M --io thread --pvh \
		--kernel "$dir/vmlinux" --initrd "$dir/initramfs.cpio" --cmdline "$args"
	row no-unpack "ours, --io thread, --no-unpack (guest decompresses)" "" "$vmm" --cpus 2 \
		--mem 256M --no-unpack --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio" \
		--cmdline "$args"
	if command -v "$qemu" >/dev/null 2>&1; then
		row qemu-on "QEMU microvm, in-kernel irqchip, vmlinux (PVH)" "" "$qemu" \
			-M microvm,rtc=on -enable-kvm -cpu host,kvm-pv-ipi=off,kvm-pv-sched-yield=off \
			-smp 2 -m 256M -kernel "$dir/vmlinux" -initrd "$dir/initramfs.cpio" \
			-append "$args" -nographic -no-reboot
		# With its userspace irqchip this QEMU never finishes the guest's
		# workload here (it stops after the marker): the run ends at the marker.
		row qemu-off "QEMU microvm, kernel-irqchip=off, 1 vCPU, vmlinux (PVH)" \
			"VMM-GUEST-READY" "$qemu" -M microvm,rtc=on,kernel-irqchip=off -enable-kvm \
			-cpu host,kvm-asyncpf-int=off,kvm-pv-ipi=off,kvm-pv-sched-yield=off -smp 1 -m 256M \
			-kernel "$dir/vmlinux" -initrd "$dir/initramfs.cpio" -append "$args" \
			-nographic -no-reboot
	else
		echo "| QEMU | not installed (make bench-deps) | | | |"
		echo "bench: Linux: QEMU ($qemu) not installed: its rows are missing (make bench-deps)" >&2
	fi
	echo
	echo "\"-\": the milestone never came; \"k/n\": only k of n boots reached it (logs in $raw)."
} >"$out"
