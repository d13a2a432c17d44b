/*
 * Checkpoint and restore (see vmm/snapshot.h).  Sections, in order:
 *
 *   header/0   vCPU count, RAM regions (gpa, size), VM clock, kvmclock
 *   ram/N      region N: runs of non-zero 4 KiB pages (offset, count, data)
 *   cpu/N      vCPU N: run state, KVM regs, sregs(2), FPU/XSAVE, XCRs,
 *              debug registers, events, MSRs, guest TSC
 *   <device>/I whatever each device writes on RESTORE_SAVE
 *   devices/0  the list of device sections, checked on load
 *
 * The guest TSC is restored through the TSC offset (a write of IA32_TSC
 * is ignored on some hosts), the VM clock and the kvmclock are set to
 * the saved values: time continues from the checkpoint.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "bus/bus.h"
#include "bus/message.h"
#include "vmm/log.h"
#include "vmm/pause.h"
#include "vmm/kvm.h"
#include "vmm/snapshot.h"
#include "vmm/stream.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define PAGE 4096ull
#define CPU_VERSION 1
#define MSR_IA32_TSC 0x10

/* Architectural MSRs KVM keeps for us; those a host refuses are skipped. */
static const uint32_t saved_msrs[] = {
	0x174, 0x175, 0x176,                 /* SYSENTER_CS/ESP/EIP */
	0x1a0,                               /* MISC_ENABLE */
	0x277,                               /* PAT */
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,  /* STAR LSTAR CSTAR FMASK */
	0xc0000102, 0xc0000103,              /* KERNEL_GS_BASE, TSC_AUX */
};
#define NMSRS (sizeof(saved_msrs) / sizeof(saved_msrs[0]))

struct msrs {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[NMSRS + 1];
};

/* What one vCPU section holds, in this order. */
struct cpu_image {
	uint32_t state, sipi_vector, nmi_in_flight, sregs2;
	struct kvm_regs regs;
	struct kvm_sregs2 sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs debugregs;
	struct kvm_vcpu_events events;
	uint64_t tsc;
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[NMSRS];
};

static bool have_sregs2(struct vm *vm)
{
	return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
}

static int read_msr(struct vcpu *vcpu, uint32_t index, uint64_t *value)
{
	struct msrs m = { .hdr.nmsrs = 1, .e[0].index = index };

	if (ioctl(vcpu->fd, KVM_GET_MSRS, &m) != 1)
		return -1;
	*value = m.e[0].data;
	return 0;
}

static int cpu_read(struct vcpu *vcpu, struct cpu_image *c, bool sregs2)
{
	struct kvm_sregs s1;

	memset(c, 0, sizeof(*c));
	c->state = (uint32_t)atomic_load(&vcpu->state);
	c->sipi_vector = atomic_load(&vcpu->sipi_vector);
	c->nmi_in_flight = vcpu->nmi_in_flight;
	c->sregs2 = sregs2;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &c->regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_XSAVE, &c->xsave) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_XCRS, &c->xcrs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &c->debugregs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &c->events) < 0 ||
	    read_msr(vcpu, MSR_IA32_TSC, &c->tsc) < 0)
		return -errno;
	if (sregs2) {
		if (ioctl(vcpu->fd, KVM_GET_SREGS2, &c->sregs) < 0)
			return -errno;
	} else {
		if (ioctl(vcpu->fd, KVM_GET_SREGS, &s1) < 0)
			return -errno;
		memcpy(&c->sregs, &s1, offsetof(struct kvm_sregs, interrupt_bitmap));
	}
	for (unsigned i = 0; i < NMSRS; i++) {
		uint64_t v;

		if (read_msr(vcpu, saved_msrs[i], &v) == 0) {
			c->msrs[c->nmsrs].index = saved_msrs[i];
			c->msrs[c->nmsrs++].data = v;
		}
	}
	return 0;
}

/* Move the TSC offset so that the guest reads @tsc now. */
static int set_guest_tsc(struct vcpu *vcpu, uint64_t tsc)
{
	uint64_t now;

	if (read_msr(vcpu, MSR_IA32_TSC, &now) < 0)
		return -errno;
	return vcpu_tsc_offset_add(vcpu, (int64_t)(tsc - now));
}

static int cpu_write(struct vcpu *vcpu, const struct cpu_image *c)
{
	struct kvm_vcpu_events ev = c->events;
	struct msrs m = { .hdr.nmsrs = c->nmsrs };
	struct kvm_sregs s1;

	if (c->sregs2) {
		if (ioctl(vcpu->fd, KVM_SET_SREGS2, &c->sregs) < 0)
			return -errno;
	} else {
		if (ioctl(vcpu->fd, KVM_GET_SREGS, &s1) < 0)
			return -errno;
		memcpy(&s1, &c->sregs, offsetof(struct kvm_sregs, interrupt_bitmap));
		memset(s1.interrupt_bitmap, 0, sizeof(s1.interrupt_bitmap));
		if (ioctl(vcpu->fd, KVM_SET_SREGS, &s1) < 0)
			return -errno;
	}
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
	ev.flags &= ~(uint32_t)KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	memcpy(m.e, c->msrs, c->nmsrs * sizeof(m.e[0]));
	if (ioctl(vcpu->fd, KVM_SET_REGS, &c->regs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_XSAVE, &c->xsave) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_XCRS, &c->xcrs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &c->debugregs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	if (ioctl(vcpu->fd, KVM_SET_MSRS, &m) != (int)c->nmsrs)
		return -EINVAL;
	if (set_guest_tsc(vcpu, c->tsc) < 0)
		return -errno;
	vcpu->nmi_in_flight = c->nmi_in_flight;
	atomic_store(&vcpu->sipi_vector, c->sipi_vector);
	atomic_store(&vcpu->state, (int)c->state);
	/* A halted vCPU wakes on the IF the last exit reported. */
	vcpu->run->if_flag = !!(c->regs.rflags & 0x200);
	return 0;
}

/* RAM: runs of non-zero pages. */

static bool page_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];

	return !memcmp(p, zero, PAGE);
}

static void ram_save(struct stream *s, const struct mem_region *r, unsigned idx)
{
	uint64_t npages = r->size / PAGE;

	stream_section_begin(s, "ram", idx, 1);
	stream_put_u64(s, r->gpa);
	stream_put_u64(s, r->size);
	for (uint64_t p = 0; p < npages && !stream_error(s);) {
		uint64_t n = 0;

		while (p + n < npages && !page_zero(r->host + (p + n) * PAGE))
			n++;
		if (n) {
			stream_put_u64(s, p);
			stream_put_u64(s, n);
			stream_put(s, r->host + p * PAGE, n * PAGE);
		}
		p += n + 1;
	}
	stream_section_end(s);
}

/* Check (apply false) or copy (apply true) one region's runs. */
static int ram_load(struct stream *s, const struct mem_region *r, unsigned idx, bool apply)
{
	uint64_t npages = r->size / PAGE, next = 0;

	if (stream_section_open(s, "ram", idx, 1, NULL))
		return stream_error(s);
	if (stream_get_u64(s) != r->gpa || stream_get_u64(s) != r->size)
		return stream_fail(s, -EINVAL, "RAM region %u differs from this machine's "
				   "(gpa %#llx, %llu MiB)", idx, (unsigned long long)r->gpa,
				   (unsigned long long)(r->size >> 20));
	if (apply)
		madvise(r->host, r->size, MADV_DONTNEED);   /* private anonymous: zero again */
	while (stream_left(s) && !stream_error(s)) {
		uint64_t p = stream_get_u64(s), n = stream_get_u64(s);
		const void *data;

		if (p < next || n == 0 || n > npages || p > npages - n)
			return stream_fail(s, -EINVAL, "RAM region %u: page run %llu+%llu out of range",
					   idx, (unsigned long long)p, (unsigned long long)n);
		data = stream_get_ptr(s, n * PAGE);
		if (data && apply)
			memcpy(r->host + p * PAGE, data, n * PAGE);
		next = p + n;
	}
	return stream_section_close(s);
}

/* Devices: the restore bus. */

static int devices_send(struct vm *vm, struct stream *s, enum restore_type type)
{
	struct msg_restore msg = { .type = type, .s = s };

	bus_send(vm->bus.restore, &msg, BUS_FIFO);
	if (msg.error && !stream_error(s))
		stream_fail(s, msg.error, "a device failed to %s its state",
			    type == RESTORE_SAVE ? "save" : "load");
	return stream_error(s);
}

/* Saving. */

static void header_save(struct vm *vm, struct stream *s)
{
	stream_section_begin(s, "header", 0, 1);
	stream_put_u32(s, vm->ncpus);
	stream_put_u32(s, vm->mem.count);
	for (unsigned i = 0; i < vm->mem.count; i++) {
		stream_put_u64(s, vm->mem.region[i].gpa);
		stream_put_u64(s, vm->mem.region[i].size);
	}
	stream_put_u64(s, vm_clock_ns(vm));
	stream_put_u64(s, vm->pause.kvmclock);
	stream_section_end(s);
}

int vm_state_save(struct vm *vm, struct stream *s, unsigned parts)
{
	bool sregs2 = have_sregs2(vm);

	header_save(vm, s);
	for (unsigned i = 0; i < vm->mem.count && (parts & VM_STATE_RAM); i++)
		ram_save(s, &vm->mem.region[i], i);
	for (unsigned i = 0; i < vm->ncpus && (parts & VM_STATE_CPUS) && !stream_error(s); i++) {
		struct cpu_image c;
		int err = cpu_read(vm->vcpu[i], &c, sregs2);

		if (err) {
			stream_fail(s, err, "vCPU %u: cannot read its state: %s", i, strerror(-err));
			break;
		}
		stream_section_begin(s, "cpu", i, CPU_VERSION);
		stream_put(s, &c, sizeof(c));
		stream_section_end(s);
	}
	if (parts & VM_STATE_DEVICES)
		devices_send(vm, s, RESTORE_SAVE);
	return stream_error(s);
}

int vm_snapshot_save(struct vm *vm, const char *path, bool stay_stopped,
		     char *err, size_t errlen)
{
	if (kvm_forbidden_here()) {
		snprintf(err, errlen, "refusing to use KVM in a forked child");
		return -EPERM;
	}
	struct stream s;
	int ret;

	vm_pause(vm);
	if (stream_open_write(&s, path) == 0)
		vm_state_save(vm, &s, VM_STATE_ALL);
	ret = stream_close(&s);
	if (ret) {
		snprintf(err, errlen, "snapshot %s: %s", path, stream_why(&s));
		unlink(path);
	}
	if (!stay_stopped)
		vm_resume(vm);
	return ret;
}

/* Restoring. */

static int header_check(struct vm *vm, struct stream *s, uint64_t *clock, uint64_t *kvmclock)
{
	uint32_t ncpus, count;

	if (stream_section_open(s, "header", 0, 1, NULL))
		return stream_error(s);
	ncpus = stream_get_u32(s);
	count = stream_get_u32(s);
	if (ncpus != vm->ncpus)
		return stream_fail(s, -EINVAL, "the snapshot has %u vCPUs, this machine %u",
				   ncpus, vm->ncpus);
	if (count != vm->mem.count)
		return stream_fail(s, -EINVAL, "the snapshot has %u RAM regions, this machine %u "
				   "(different --mem?)", count, vm->mem.count);
	for (unsigned i = 0; i < count; i++)
		if (stream_get_u64(s) != vm->mem.region[i].gpa ||
		    stream_get_u64(s) != vm->mem.region[i].size)
			return stream_fail(s, -EINVAL, "RAM region %u differs from this machine's "
					   "(different --mem?)", i);
	*clock = stream_get_u64(s);
	*kvmclock = stream_get_u64(s);
	return stream_section_close(s);
}

static int cpu_get(struct stream *s, unsigned i, struct cpu_image *c)
{
	if (stream_section_open(s, "cpu", i, CPU_VERSION, NULL))
		return stream_error(s);
	if (stream_left(s) != sizeof(*c))
		return stream_fail(s, -EINVAL, "vCPU %u: section of %llu bytes, expected %zu", i,
				   (unsigned long long)stream_left(s), sizeof(*c));
	stream_get(s, c, sizeof(*c));
	if (c->state != VCPU_PARKED && c->state != VCPU_HALTED && c->state != VCPU_RUNNING)
		return stream_fail(s, -EINVAL, "vCPU %u: bad run state %u", i, c->state);
	if (c->nmsrs > NMSRS)
		return stream_fail(s, -EINVAL, "vCPU %u: %u MSRs", i, c->nmsrs);
	return stream_section_close(s);
}

/* Everything but the devices' own sections, before anything is applied. */
static int verify_all(struct vm *vm, struct stream *s, unsigned parts,
		      uint64_t *clock, uint64_t *kvmclock)
{
	struct cpu_image c;

	if (header_check(vm, s, clock, kvmclock))
		return stream_error(s);
	for (unsigned i = 0; i < vm->mem.count && (parts & VM_STATE_RAM); i++)
		if (ram_load(s, &vm->mem.region[i], i, false))
			return stream_error(s);
	for (unsigned i = 0; i < vm->ncpus && (parts & VM_STATE_CPUS); i++)
		if (cpu_get(s, i, &c))
			return stream_error(s);
	return 0;
}

static int apply_all(struct vm *vm, struct stream *s, unsigned parts,
		     uint64_t clock, uint64_t kvmclock)
{
	const struct stream_section *extra;

	for (unsigned i = 0; i < vm->mem.count && (parts & VM_STATE_RAM); i++)
		if (ram_load(s, &vm->mem.region[i], i, true))
			return stream_error(s);
	for (unsigned i = 0; i < vm->ncpus && (parts & VM_STATE_CPUS); i++) {
		struct cpu_image c;
		int err;

		cpu_get(s, i, &c);
		err = cpu_write(vm->vcpu[i], &c);
		if (err)
			return stream_fail(s, err, "vCPU %u: KVM refused the saved state: %s", i,
					   strerror(-err));
	}
	if (vm->timers)
		timer_service_set_clock(vm->timers, clock);
	if ((parts & VM_STATE_DEVICES) && devices_send(vm, s, RESTORE_LOAD))
		return stream_error(s);
	extra = stream_unused_section(s);
	if (extra)
		return stream_fail(s, -EINVAL, "section '%s' instance %u belongs to no device of "
				   "this machine (different device list?)", extra->name,
				   extra->instance);
	/* vm_resume() moves the kvmclock and TSC back by the time since "now". */
	vm->pause.kvmclock = kvmclock;
	vm->pause.stopped_at_ns = clock_ns();
	return 0;
}

int vm_state_load(struct vm *vm, struct stream *s, unsigned parts, bool *applied)
{
	uint64_t clock = 0, kvmclock = 0;

	*applied = false;
	if (verify_all(vm, s, parts, &clock, &kvmclock))
		return stream_error(s);
	*applied = true;
	return apply_all(vm, s, parts, clock, kvmclock);
}

int vm_snapshot_restore(struct vm *vm, const char *path, char *err, size_t errlen)
{
	if (kvm_forbidden_here()) {
		snprintf(err, errlen, "refusing to use KVM in a forked child");
		return -EPERM;
	}
	struct stream s;
	bool applied = false;
	int ret;

	vm_pause(vm);
	ret = stream_open_read(&s, path);
	if (!ret)
		ret = vm_state_load(vm, &s, VM_STATE_ALL, &applied);
	if (ret) {
		snprintf(err, errlen, "cannot restore %s: %s", path, stream_why(&s));
		/* Half loaded, it must never run; untouched, it runs on as it was. */
		if (applied)
			vm_request_exit(vm, 1);
	}
	stream_close(&s);
	vm_resume(vm);
	return ret;
}

/* SIGUSR2 → save, for tests. */

static sem_t signal_sem;
static const char *signal_path;

static void usr2_handler(int sig)
{
	(void)sig;
	sem_post(&signal_sem);
}

static void *signal_saver(void *arg)
{
	struct vm *vm = arg;
	char err[512];

	bus_thread_enter();
	for (;;) {
		if (sem_wait(&signal_sem) < 0)
			continue;
		if (atomic_load(&vm->exiting))
			break;
		if (vm_snapshot_save(vm, signal_path, false, err, sizeof(err)))
			pr_err("%s", err);
		else
			pr_warn("snapshot saved to %s", signal_path);
	}
	bus_thread_exit();
	return NULL;
}

void snapshot_signal_init(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = usr2_handler, .sa_flags = SA_RESTART };
	pthread_t t;

	signal_path = getenv("VMM_SNAPSHOT_ON_SIGUSR2");
	if (!signal_path || !*signal_path)
		return;
	sem_init(&signal_sem, 0, 0);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	if (pthread_create(&t, NULL, signal_saver, vm) == 0)
		pthread_detach(t);
}
