# Sourced by the test scripts that boot guests.  Without /dev/kvm they may
# not fail and may not pass silently: they say so loudly and skip.
#   require_kvm "no QMP socket test was run"    (exits 0 without /dev/kvm)
#   kvm_missing_banner "kernel-loading error cases not run"

kvm_missing_banner() {
	echo "################################################################"
	echo "#  SKIPPED: /dev/kvm missing -- $1"
	echo "################################################################"
}

require_kvm() {
	[ -e /dev/kvm ] && return 0
	kvm_missing_banner "$1"
	exit 0
}
