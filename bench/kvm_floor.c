/*
 * kvm_floor: the least a VMM can do per exit.  One VM, one vCPU, the
 * multiboot kernel loaded by our loader, then a bare KVM_RUN loop that
 * answers port I/O in a switch: no bus, no threads, no devices.  The same
 * bench guest that runs under the VMM runs here, so the difference in
 * cycles per port access is the VMM's own overhead per exit.
 *
 * Ports: COM1 output goes to stdout (its line status reads "transmitter
 * empty"), a write of v to 0xf4 exits with status (v << 1) | 1 as the
 * debug-exit device does, every other read gives all ones and every other
 * write is dropped.  MMIO reads give all ones.  HLT or a crash exits 4.
 *
 * Usage: kvm_floor --kernel FILE [--cmdline STR] [--mem MiB] [--tsc-khz]
 *   --tsc-khz prints the vCPU's TSC rate (KVM_GET_TSC_KHZ) and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "vmm/memory.h"
#include "vmm/multiboot.h"

#define COM1       0x3f8
#define DEBUG_EXIT 0xf4
#define EXIT_CRASH 4

struct floor {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	struct guest_memory mem;
};

static int die(const char *what)
{
	fprintf(stderr, "kvm_floor: %s: %s\n", what, strerror(errno));
	return 1;
}

static struct kvm_segment flat(uint16_t sel, uint8_t type)
{
	return (struct kvm_segment){ .limit = 0xffffffff, .selector = sel, .type = type,
				     .present = 1, .db = 1, .s = 1, .g = 1 };
}

/* 32-bit protected mode, flat segments, paging off: the multiboot state. */
static int set_entry_state(struct floor *f, const struct boot_entry *e)
{
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = e->eip, .rax = e->eax, .rbx = e->ebx, .rflags = 2 };

	if (ioctl(f->vcpu, KVM_GET_SREGS, &s) < 0)
		return -1;
	s.cs = flat(0x08, 0xb);
	s.ds = s.es = s.fs = s.gs = s.ss = flat(0x10, 0x3);
	s.tr = (struct kvm_segment){ .limit = 0xffff, .type = 11, .present = 1 };
	s.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	s.cr0 = 0x11;
	s.cr4 = 0;
	s.efer = 0;
	if (ioctl(f->vcpu, KVM_SET_SREGS, &s) < 0)
		return -1;
	return ioctl(f->vcpu, KVM_SET_REGS, &r);
}

static int set_cpuid(struct floor *f)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(c->entries[0]));
	int ret = -1;

	if (!c)
		return -1;
	c->nent = 256;
	if (ioctl(f->kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
		ret = ioctl(f->vcpu, KVM_SET_CPUID2, c);
	free(c);
	return ret;
}

static int create(struct floor *f, const char *kernel, const char *cmdline, uint64_t mem)
{
	struct boot_entry entry;
	char err[256] = "";
	long run_size;

	f->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (f->kvm < 0)
		return die("/dev/kvm");
	f->vm = ioctl(f->kvm, KVM_CREATE_VM, 0);
	if (f->vm < 0)
		return die("KVM_CREATE_VM");
	ioctl(f->vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);   /* VMX real mode; harmless elsewhere */
	if (guest_memory_init(&f->mem, mem) < 0)
		return die("guest memory");
	if (multiboot_load(&f->mem, kernel, cmdline, NULL, 0, &entry, err, sizeof(err)) < 0) {
		fprintf(stderr, "kvm_floor: %s\n", err[0] ? err : "cannot load the kernel");
		return 1;
	}
	for (unsigned i = 0; i < f->mem.count; i++) {
		struct kvm_userspace_memory_region slot = {
			.slot = i, .guest_phys_addr = f->mem.region[i].gpa,
			.memory_size = f->mem.region[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)f->mem.region[i].host,
		};

		if (ioctl(f->vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return die("KVM_SET_USER_MEMORY_REGION");
	}
	f->vcpu = ioctl(f->vm, KVM_CREATE_VCPU, 0);
	run_size = ioctl(f->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (f->vcpu < 0 || run_size <= 0)
		return die("KVM_CREATE_VCPU");
	f->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->vcpu, 0);
	if (f->run == MAP_FAILED)
		return die("mmap kvm_run");
	if (set_cpuid(f) < 0)
		return die("KVM_SET_CPUID2");
	if (set_entry_state(f, &entry) < 0)
		return die("initial registers");
	return 0;
}

/* One port exit; returns -1 to go on, else the exit status. */
static int port_io(struct floor *f)
{
	struct kvm_run *r = f->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;

	for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
		if (r->io.direction == KVM_EXIT_IO_OUT) {
			if (r->io.port == COM1)
				putchar(data[0]);
			else if (r->io.port == DEBUG_EXIT)
				return (data[0] << 1) | 1;
		} else if (r->io.port == COM1 + 5) {
			data[0] = 0x60;               /* LSR: transmitter empty */
		} else {
			memset(data, 0xff, r->io.size);
		}
	}
	return -1;
}

static int run(struct floor *f)
{
	for (;;) {
		int status = -1;

		if (ioctl(f->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return die("KVM_RUN");
		}
		switch (f->run->exit_reason) {
		case KVM_EXIT_IO:
			status = port_io(f);
			break;
		case KVM_EXIT_MMIO:
			if (!f->run->mmio.is_write)
				memset(f->run->mmio.data, 0xff, sizeof(f->run->mmio.data));
			break;
		default:
			fprintf(stderr, "kvm_floor: exit reason %u\n", f->run->exit_reason);
			status = EXIT_CRASH;
		}
		if (status >= 0) {
			fflush(stdout);
			return status;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "tsc-khz", no_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	static struct floor f;
	const char *kernel = NULL, *cmdline = "";
	unsigned long mem_mib = 64;
	bool tsc_only = false;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': kernel = optarg; break;
		case 'c': cmdline = optarg; break;
		case 'm': mem_mib = strtoul(optarg, NULL, 0); break;
		case 't': tsc_only = true; break;
		default:
			fprintf(stderr, "usage: %s --kernel FILE [--cmdline STR] [--mem MiB] "
				"[--tsc-khz]\n", argv[0]);
			return 2;
		}
	}
	if (!kernel || !mem_mib) {
		fprintf(stderr, "kvm_floor: --kernel is required\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (create(&f, kernel, cmdline, (uint64_t)mem_mib << 20))
		return 1;
	if (tsc_only) {
		int khz = ioctl(f.vcpu, KVM_GET_TSC_KHZ, 0);

		if (khz <= 0)
			return die("KVM_GET_TSC_KHZ");
		printf("%d\n", khz);
		return 0;
	}
	return run(&f);
}
