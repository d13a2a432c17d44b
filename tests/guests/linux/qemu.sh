#!/bin/sh
# Boot the Linux test guest under QEMU, for validation and for comparison
# with our VMM.  QEMU is not needed to build or test the VMM.
#
#   qemu.sh [-smp N] [-m MEM] [-kernel FILE] [-mode poweroff|reboot|shell]
#
# -M microvm boots the uncompressed vmlinux at its PVH entry (a bzImage works
# too, but decompresses itself in the emulator for ~40 s).  PV IPIs must be
# off: they use VMCALL from ring 0, which never completes on our hosts.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${LINUX_OUT:-$here/../../../build/linux}
smp=2 mem=256M kernel=$out/vmlinux mode=poweroff
while [ $# -gt 0 ]; do
	case $1 in
	-smp)    smp=$2 ;;
	-m)      mem=$2 ;;
	-kernel) kernel=$2 ;;
	-mode)   mode=$2 ;;
	*) echo "usage: $0 [-smp N] [-m MEM] [-kernel FILE] [-mode poweroff|reboot|shell]" >&2
	   exit 2 ;;
	esac
	shift 2
done
exec qemu-system-x86_64 -M microvm,rtc=on -enable-kvm \
	-cpu host,kvm-pv-ipi=off,kvm-pv-sched-yield=off \
	-smp "$smp" -m "$mem" -kernel "$kernel" -initrd "$out/initramfs.cpio" \
	-append "$(cat "$here/cmdline") vmmtest=$mode" -nographic -no-reboot
