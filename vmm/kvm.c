#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "vmm/kvm.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define KVM_TSS_ADDR 0xfffbd000ul
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ul

/* MSRs our LAPIC emulates: they must exit to user space. */
#define MSR_IA32_APICBASE 0x1b
#define MSR_IA32_TSC_DEADLINE 0x6e0

static pid_t kvm_owner;   /* the process that created the VM */

bool kvm_forbidden_here(void)
{
	if (!kvm_owner || getpid() == kvm_owner)
		return false;
	fprintf(stderr, "vmm: error: refusing to use KVM in a forked child (pid %d): "
		"the VM belongs to process %d\n", (int)getpid(), (int)kvm_owner);
	return true;
}

const char *kvm_unavailable_reason(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? "/dev/kvm is missing (no KVM on this host)"
				       : "/dev/kvm cannot be opened";
	close(fd);
	return NULL;
}

static int set_memslots(struct vm *vm, uint32_t flags, char *err, size_t errlen)
{
	for (unsigned i = 0; i < vm->mem.count; i++) {
		const struct mem_region *r = &vm->mem.region[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i, .flags = flags, .guest_phys_addr = r->gpa, .memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return -errno;
		}
	}
	return 0;
}

int kvm_set_dirty_logging(struct vm *vm, bool on, char *err, size_t errlen)
{
	return set_memslots(vm, on ? KVM_MEM_LOG_DIRTY_PAGES : 0, err, errlen);
}

/* Deny the MSRs our LAPIC owns so that KVM hands them to user space. */
static int trap_lapic_msrs(struct vm *vm, char *err, size_t errlen)
{
	static uint8_t deny = 0;
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR,
		.args[0] = KVM_MSR_EXIT_REASON_FILTER | KVM_MSR_EXIT_REASON_UNKNOWN,
	};
	struct kvm_msr_filter filter = {
		.flags = KVM_MSR_FILTER_DEFAULT_ALLOW,
		.ranges = {
			{ .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			  .nmsrs = 1, .base = MSR_IA32_APICBASE, .bitmap = &deny },
			{ .flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE,
			  .nmsrs = 1, .base = MSR_IA32_TSC_DEADLINE, .bitmap = &deny },
		},
	};

	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0 ||
	    ioctl(vm->vm_fd, KVM_X86_SET_MSR_FILTER, &filter) < 0) {
		snprintf(err, errlen, "cannot trap LAPIC MSRs: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

int kvm_vm_create(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	kvm_owner = getpid();
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		snprintf(err, errlen, "%s", kvm_unavailable_reason() ?: strerror(errno));
		return -ENODEV;
	}
	if (ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		snprintf(err, errlen, "unsupported KVM API version");
		return -ENODEV;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		snprintf(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		snprintf(err, errlen, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		return -errno;
	}
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap);
	ret = set_memslots(vm, 0, err, errlen);
	if (!ret)
		ret = trap_lapic_msrs(vm, err, errlen);
	return ret;
}

void kvm_vm_destroy(struct vm *vm)
{
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
}

static struct kvm_cpuid2 *supported_cpuid(int kvm_fd)
{
	for (unsigned n = 64; n <= 1024; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

int kvm_vcpu_set_cpuid(struct vcpu *vcpu)
{
	struct kvm_cpuid2 *c = supported_cpuid(vcpu->vm->kvm_fd);
	int ret;

	if (!c)
		return -errno;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffff) | (vcpu->id << 24) |
				 ((vcpu->vm->ncpus & 0xff) << 16);
			e->edx |= 1u << 9;              /* APIC present */
			e->ecx &= ~(1u << 21);          /* no x2APIC */
			e->ecx |= 1u << 31;             /* hypervisor */
			e->ecx |= 1u << 24;             /* TSC deadline: our LAPIC traps the MSR */
			break;
		case 0x40000001:
			/*
			 * Only the paravirtual features that need neither the
			 * in-kernel LAPIC nor hypercalls: the kvmclock and the
			 * no-op I/O delay.  PV IPIs, PV spinlock kicks, TLB
			 * flushes and sched-yield are VMCALLs (which never
			 * complete on PVM hosts, and would bypass our LAPIC);
			 * PV EOI and async PF need the in-kernel LAPIC; the
			 * stable-clock bit and steal time get text-patched while
			 * the tick runs.  See doc/host-notes.md.
			 */
			e->eax &= (1u << 0) | (1u << 1) | (1u << 3);
			break;
		case 0xb:
		case 0x1f:
			e->edx = vcpu->id;
			break;
		}
	}
	ret = ioctl(vcpu->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	return ret;
}
