# Linux test guest (tests/guests/linux, doc/linux-guest.md).  Included from
# the top Makefile; not part of `all`: the kernel build takes minutes.
#
#   make linux-guest   build/linux/bzImage, build/linux/vmlinux (rebuilt only
#                      when the config fragment or the patches change) and
#                      build/linux/initramfs.cpio
#   make linux-stock   build/linux/debian/vmlinuz, Debian's stock kernel
#
# build.sh decides what is out of date (by a hash of its inputs), so the
# targets are phony and cheap when nothing changed.
LINUX_OUT := build/linux

.PHONY: linux-guest linux-kernel linux-initramfs linux-stock
linux-guest:
	LINUX_OUT=$(CURDIR)/$(LINUX_OUT) tests/guests/linux/build.sh guest

linux-kernel:
	LINUX_OUT=$(CURDIR)/$(LINUX_OUT) tests/guests/linux/build.sh kernel

linux-initramfs:
	LINUX_OUT=$(CURDIR)/$(LINUX_OUT) tests/guests/linux/build.sh initramfs

linux-stock:
	LINUX_OUT=$(CURDIR)/$(LINUX_OUT) tests/guests/linux/build.sh stock
