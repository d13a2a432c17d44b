#!/bin/sh
# Build the Linux test guest, or fetch Debian's stock kernel.
#
#   build.sh kernel     build/linux/{bzImage,vmlinux} from linux-source-6.1
#                       plus patches/*.patch, config merged on allnoconfig
#   build.sh initramfs  build/linux/initramfs.cpio (busybox-static, init)
#   build.sh guest      both of the above
#   build.sh stock      build/linux/debian/vmlinuz from the image package
#                       linux-image-amd64 depends on (apt-get download)
#
# The kernel is rebuilt only when the config fragment, the patches or the
# Debian source package change: their hash is kept in build/linux/kernel.stamp.
# Output goes to $LINUX_OUT (default build/linux, relative to the repo root).
set -eu
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${LINUX_OUT:-$root/build/linux}
tarball=/usr/src/linux-source-6.1.tar.xz
srcdir=$out/src/linux-source-6.1
objdir=$out/obj
jobs=${JOBS:-$(nproc)}

say() { echo "linux: $*"; }
die() { echo "linux: error: $*" >&2; exit 1; }

need_tools() {
	missing=""
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
	done
	[ -z "$missing" ] || die "missing tools:$missing" \
		"(apt-get install linux-source-6.1 busybox-static flex bison bc libelf-dev patch xz-utils)"
}

# Hash of everything the kernel build depends on.
kernel_hash() {
	{
		dpkg-query -W -f '${Package} ${Version}\n' linux-source-6.1 2>/dev/null || true
		cat "$here/config" "$here"/patches/*.patch "$here/check-config.sh"
	} | sha256sum | cut -d' ' -f1
}

build_kernel() {
	need_tools gcc make flex bison bc patch xz sha256sum
	[ -r "$tarball" ] || die "$tarball missing (apt-get install linux-source-6.1)"
	[ -r /usr/include/libelf.h ] || die "libelf.h missing (apt-get install libelf-dev)"
	hash=$(kernel_hash)
	if [ -f "$out/bzImage" ] && [ -f "$out/vmlinux" ] &&
	   [ "$(cat "$out/kernel.stamp" 2>/dev/null)" = "$hash" ]; then
		say "kernel up to date ($out/bzImage, $out/vmlinux)"
		return
	fi
	rm -f "$out/kernel.stamp"

	say "unpacking 6.1 source ($tarball)"
	rm -rf "$out/src" "$objdir" "$out/gen_init_cpio"
	mkdir -p "$out/src" "$objdir"
	tar -xJf "$tarball" -C "$out/src"

	for p in "$here"/patches/*.patch; do
		say "applying $(basename "$p")"
		patch -d "$srcdir" -p1 --batch --forward --quiet < "$p" ||
			die "patch $(basename "$p") does not apply"
	done

	say "configuring (allnoconfig + tests/guests/linux/config)"
	(cd "$srcdir" && scripts/kconfig/merge_config.sh -n -O "$objdir" \
		"$here/config") > "$out/config.log" 2>&1 ||
		{ cat "$out/config.log" >&2; die "merge_config.sh failed"; }
	make -C "$srcdir" O="$objdir" olddefconfig >> "$out/config.log" 2>&1 ||
		{ cat "$out/config.log" >&2; die "olddefconfig failed"; }
	"$here/check-config.sh" "$here/config" "$objdir/.config"

	# Fixed build identity so that the same inputs give the same kernel.
	cc=gcc
	if command -v ccache >/dev/null 2>&1; then
		cc="ccache gcc"
		export CCACHE_DIR="${CCACHE_DIR:-$out/ccache}"
	fi
	say "building kernel with $jobs jobs (takes ~5 min; log: $out/kernel.log)"
	start=$(date +%s)
	if ! make -C "$srcdir" O="$objdir" -j"$jobs" CC="$cc" \
		KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC" \
		KBUILD_BUILD_USER=vmm KBUILD_BUILD_HOST=vmm \
		KBUILD_BUILD_VERSION=1 bzImage > "$out/kernel.log" 2>&1; then
		tail -40 "$out/kernel.log" >&2
		die "kernel build failed (full log: $out/kernel.log)"
	fi
	# Replaced by rename: a VM may be reading the old files right now.
	cp "$objdir/arch/x86/boot/bzImage" "$out/bzImage.tmp"
	cp "$objdir/vmlinux" "$out/vmlinux.tmp"
	mv "$out/bzImage.tmp" "$out/bzImage"
	mv "$out/vmlinux.tmp" "$out/vmlinux"
	echo "$hash" > "$out/kernel.stamp"
	say "kernel built in $(( $(date +%s) - start )) s:" \
		"$out/bzImage ($(stat -c %s "$out/bzImage") bytes)," \
		"$out/vmlinux ($(stat -c %s "$out/vmlinux") bytes)"
}

# An uncompressed newc cpio written by the kernel's own gen_init_cpio from
# a generated list: no root, fixed mtimes, the same bytes every time.
build_initramfs() {
	busybox=/bin/busybox
	[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
	if command -v readelf >/dev/null 2>&1 &&
	   readelf -l "$busybox" | grep -q 'Requesting program interpreter'; then
		die "$busybox is dynamically linked (apt-get install busybox-static)"
	fi
	[ -r "$srcdir/usr/gen_init_cpio.c" ] || {
		say "unpacking 6.1 source for gen_init_cpio"
		mkdir -p "$out/src"
		tar -xJf "$tarball" -C "$out/src" linux-source-6.1/usr/gen_init_cpio.c
	}
	if [ ! -x "$out/gen_init_cpio" ]; then
		gcc -O2 -o "$out/gen_init_cpio" "$srcdir/usr/gen_init_cpio.c"
	fi

	say "building initramfs (busybox $($busybox | head -1 | cut -d' ' -f2))"
	stage=$out/initramfs.d
	rm -rf "$stage"
	mkdir -p "$stage"
	# A slice of busybox as the data to hash, and its hash from the host.
	cp "$busybox" "$stage/busybox"
	cp "$here/init" "$stage/init"
	head -c 65536 "$busybox" > "$stage/data"
	(cd "$stage" && sha256sum data > data.sha256)
	# gen_init_cpio stores a file's own mtime: make them all the same.
	touch -d @0 "$stage"/*
	list=$out/initramfs.list
	{
		for d in /dev /proc /sys /tmp /root /bin /sbin /usr /usr/bin /usr/sbin; do
			echo "dir $d 0755 0 0"
		done
		echo "nod /dev/console 0600 0 0 c 5 1"
		echo "file /bin/busybox $stage/busybox 0755 0 0"
		# Every applet with a directory (not linuxrc) as a symlink.
		"$busybox" --list-full | grep / | sort | while read -r applet; do
			[ "$applet" = bin/busybox ] && continue
			echo "slink /$applet /bin/busybox 0777 0 0"
		done
		echo "file /init $stage/init 0755 0 0"
		echo "file /data $stage/data 0644 0 0"
		echo "file /data.sha256 $stage/data.sha256 0644 0 0"
	} > "$list"
	"$out/gen_init_cpio" -t 0 "$list" > "$out/initramfs.cpio.tmp"
	if cmp -s "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"; then
		rm "$out/initramfs.cpio.tmp"
	else
		mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
	fi
	say "initramfs: $out/initramfs.cpio ($(stat -c %s "$out/initramfs.cpio") bytes)"
}

# Debian's stock kernel, for the later test that boots a distribution
# kernel.  Only downloaded and unpacked here, never installed.
fetch_stock() {
	need_tools apt-cache apt-get dpkg-deb
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
	[ -n "$pkg" ] || die "no linux-image-amd64 in the package lists (apt-get update)"
	ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
	deb=$out/debian
	if [ -f "$deb/vmlinuz" ] &&
	   [ "$(cat "$deb/package" 2>/dev/null)" = "$pkg $ver" ]; then
		say "stock kernel up to date ($deb/vmlinuz, $pkg $ver)"
		return
	fi
	say "downloading $pkg $ver"
	rm -rf "$deb"
	mkdir -p "$deb/dl"
	# apt-get download warns when root's files are out of _apt's reach.
	(cd "$deb/dl" && apt-get download -q "$pkg" 2>&1 | grep -v unsandboxed) || true
	set -- "$deb"/dl/*.deb
	[ -f "$1" ] || die "apt-get download $pkg failed"
	say "extracting $(basename "$1")"
	dpkg-deb -x "$1" "$deb/pkg"
	set -- "$deb"/pkg/boot/vmlinuz-*
	[ -f "$1" ] || die "no /boot/vmlinuz-* in $pkg"
	cp "$1" "$deb/vmlinuz"
	cp "$deb"/pkg/boot/config-* "$deb/config" 2>/dev/null || true
	rm -rf "$deb/dl" "$deb/pkg"
	echo "$pkg $ver" > "$deb/package"
	say "stock kernel: $deb/vmlinuz ($pkg $ver, $(stat -c %s "$deb/vmlinuz") bytes)"
}

mkdir -p "$out"
case ${1:-guest} in
kernel)    build_kernel ;;
initramfs) build_initramfs ;;
guest)     build_kernel; build_initramfs ;;
stock)     fetch_stock ;;
*)         die "usage: $0 kernel|initramfs|guest|stock" ;;
esac
