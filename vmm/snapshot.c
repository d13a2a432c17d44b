/*
 * Checkpoint and restore (see vmm/snapshot.h, format in doc/snapshot.md).
 * Sections, in order:
 *
 *   header/0   vCPU count, RAM regions (gpa, size), VM clock, kvmclock,
 *              the device list (name, instance, version of each section)
 *   ram/N      region N: runs of non-zero 4 KiB pages (first, count, pad
 *              to a page of the file, data): loading maps them
 *   cpu/N      vCPU N: run state (incl. INIT seen, pending events), KVM
 *              regs, sregs(2), XSAVE, XCRs, debug registers, events, guest
 *              TSC, every MSR KVM lists
 *   <device>/I whatever each device writes on RESTORE_SAVE
 *
 * The devices save first, into a scratch memfd, so that the header can
 * list them; their sections are copied after the vCPUs'.  Loading
 * compares that list with this machine's before it applies anything.
 * Time: the VM clock, kvmclock and guest TSCs are the values frozen at
 * vm_pause (vmm/pause.c), so two saves of one pause are identical, and a
 * restore sets them for vm_resume to continue from.
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
#define HEADER_VERSION 2   /* 2: the device list */
#define RAM_VERSION 2      /* 2: each run's pages start on a page of the file */
#define CPU_VERSION 2      /* 2: INIT seen, pending events, every MSR KVM lists */
#define MSR_IA32_TSC 0x10
#define MSR_KVM_ASYNC_PF_INT 0x4b564d06
#define MAX_MSRS 512
#define CPU_V1_MSRS 11
/* Runs shorter than this are copied: each mapped run costs a VMA. */
#define MAP_MIN_PAGES 16
#define MAP_MAX_RUNS 4096

/*
 * MSRs KVM does not keep, or that are not saved with the others: the
 * TSC goes through the TSC offset (a write of IA32_TSC is ignored on
 * some hosts), APIC_BASE and TSC_DEADLINE belong to our LAPIC.
 */
static bool msr_skipped(uint32_t index)
{
	return index == MSR_IA32_TSC || index == 0x1b || index == 0x6e0;
}

/*
 * One vCPU section: this structure up to @msrs, then @nmsrs MSR entries.
 * Version 1 had no @init_seen/@pending (zero) and always 11 entries.
 */
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
	uint8_t init_seen;          /* parked AP that got INIT, waiting for SIPI */
	uint8_t pending;            /* VCPU_EV_INIT/SIPI/NMI posted, not yet taken */
	uint16_t reserved;
	struct kvm_msr_entry msrs[MAX_MSRS];
};
#define CPU_FIXED offsetof(struct cpu_image, msrs)
_Static_assert(offsetof(struct cpu_image, init_seen) == offsetof(struct cpu_image, nmsrs) + 4 &&
	       CPU_FIXED == offsetof(struct cpu_image, nmsrs) + 8,
	       "version 2 fills version 1's padding after nmsrs");
#define CPU_PENDING (VCPU_EV_INIT | VCPU_EV_SIPI | VCPU_EV_NMI)

struct msrs {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[MAX_MSRS];
};

static bool have_sregs2(struct vm *vm)
{
	return ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
}

/* The MSRs KVM says it keeps for a guest (KVM_GET_MSR_INDEX_LIST), once. */
static pthread_mutex_t msr_list_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t msr_list[MAX_MSRS];
static unsigned msr_count;
static bool msr_listed;

/* In an order KVM accepts: the async-PF vector before the enable that needs it. */
static void msr_list_add(uint32_t index)
{
	if (index == MSR_KVM_ASYNC_PF_INT) {
		memmove(&msr_list[1], &msr_list[0], msr_count * sizeof(msr_list[0]));
		msr_list[0] = index;
		msr_count++;
	} else {
		msr_list[msr_count++] = index;
	}
}

static unsigned msr_index_list(struct vm *vm, const uint32_t **list)
{
	pthread_mutex_lock(&msr_list_lock);
	if (!msr_listed) {
		struct kvm_msr_list *l = calloc(1, sizeof(*l) + MAX_MSRS * sizeof(uint32_t));

		if (l)
			l->nmsrs = MAX_MSRS;
		if (l && ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) == 0)
			for (unsigned i = 0; i < l->nmsrs && msr_count < MAX_MSRS; i++)
				if (!msr_skipped(l->indices[i]))
					msr_list_add(l->indices[i]);
		if (!msr_count)
			pr_warn("KVM_GET_MSR_INDEX_LIST failed: snapshots carry no MSRs");
		free(l);
		msr_listed = true;
	}
	pthread_mutex_unlock(&msr_list_lock);
	*list = msr_list;
	return msr_count;
}

/*
 * Every listed MSR the host lets us read: KVM_GET_MSRS stops at the
 * first it refuses, which is skipped (a feature this host lacks).
 */
static int msrs_read(struct vm *vm, struct vcpu *vcpu, struct cpu_image *c)
{
	const uint32_t *list;
	unsigned n = msr_index_list(vm, &list);
	struct msrs *m = malloc(sizeof(*m));

	if (!m)
		return -ENOMEM;
	for (unsigned next = 0; next < n;) {
		int got;

		m->hdr.nmsrs = n - next;
		for (unsigned i = next; i < n; i++)
			m->e[i - next] = (struct kvm_msr_entry){ .index = list[i] };
		got = ioctl(vcpu->fd, KVM_GET_MSRS, m);
		if (got < 0) {
			free(m);
			return -errno;
		}
		memcpy(&c->msrs[c->nmsrs], m->e, (size_t)got * sizeof(m->e[0]));
		c->nmsrs += (uint32_t)got;
		next += (unsigned)got + 1;
	}
	free(m);
	return 0;
}

static int cpu_read(struct vm *vm, struct vcpu *vcpu, struct cpu_image *c, bool sregs2)
{
	struct kvm_sregs s1;
	uint32_t khz;

	memset(c, 0, sizeof(*c));
	c->state = (uint32_t)atomic_load(&vcpu->state);
	c->sipi_vector = atomic_load(&vcpu->sipi_vector);
	c->nmi_in_flight = vcpu->nmi_in_flight;
	c->init_seen = vcpu->init_seen;
	c->pending = (uint8_t)(atomic_load(&vcpu->events) & CPU_PENDING);
	c->sregs2 = sregs2;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &c->regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_XSAVE, &c->xsave) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_XCRS, &c->xcrs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_DEBUGREGS, &c->debugregs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &c->events) < 0)
		return -errno;
	/* Paused, the TSC stands still (vmm/pause.c): two saves agree. */
	if (vcpu->tsc_frozen)
		c->tsc = vcpu->frozen_tsc;
	else if (vcpu_guest_tsc(vcpu, &c->tsc, &khz) < 0)
		return -EIO;
	if (sregs2) {
		if (ioctl(vcpu->fd, KVM_GET_SREGS2, &c->sregs) < 0)
			return -errno;
	} else {
		if (ioctl(vcpu->fd, KVM_GET_SREGS, &s1) < 0)
			return -errno;
		memcpy(&c->sregs, &s1, offsetof(struct kvm_sregs, interrupt_bitmap));
	}
	return msrs_read(vm, vcpu, c);
}

/*
 * A refused write is fine where it changes nothing: the vCPU already
 * holds the value, or the host has no such MSR and the value is 0 (some
 * hosts list MSRs they refuse to write, e.g. MSR_KVM_POLL_CONTROL).
 */
static bool msr_write_moot(struct vcpu *vcpu, const struct kvm_msr_entry *e)
{
	struct { struct kvm_msrs hdr; struct kvm_msr_entry e; } m = {
		.hdr.nmsrs = 1, .e.index = e->index };

	if (ioctl(vcpu->fd, KVM_GET_MSRS, &m) != 1)
		return e->data == 0;
	return m.e.data == e->data;
}

static int msrs_write(struct vcpu *vcpu, const struct cpu_image *c)
{
	struct msrs *m = malloc(sizeof(*m));
	int err = 0;

	if (!m)
		return -ENOMEM;
	for (unsigned next = 0; next < c->nmsrs && !err;) {
		int done;

		m->hdr.nmsrs = c->nmsrs - next;
		memcpy(m->e, &c->msrs[next], m->hdr.nmsrs * sizeof(m->e[0]));
		done = ioctl(vcpu->fd, KVM_SET_MSRS, m);
		if (done < 0) {
			err = -errno;
		} else if (next + (unsigned)done < c->nmsrs &&
			   !msr_write_moot(vcpu, &c->msrs[next + done])) {
			pr_err("vCPU %u: KVM refused MSR %#x = %#llx", vcpu->id,
			       c->msrs[next + done].index,
			       (unsigned long long)c->msrs[next + done].data);
			err = -EINVAL;
		}
		next += (unsigned)done + 1;
	}
	free(m);
	return err;
}

/* Replace the run state: the events posted before, and lost with, the snapshot. */
static void run_state_write(struct vcpu *vcpu, const struct cpu_image *c)
{
	vcpu->nmi_in_flight = c->nmi_in_flight;
	vcpu->init_seen = c->init_seen;
	atomic_store(&vcpu->sipi_vector, c->sipi_vector);
	atomic_store(&vcpu->state, (int)c->state);
	atomic_fetch_and(&vcpu->events, ~(uint32_t)CPU_PENDING);
	if (c->pending)
		vcpu_post(vcpu, c->pending);
	/* A halted vCPU wakes on the IF the last exit reported. */
	vcpu->run->if_flag = !!(c->regs.rflags & 0x200);
	/* The TSC is set when the VM resumes (vmm/pause.c). */
	vcpu->frozen_tsc = c->tsc;
	vcpu->tsc_frozen = true;
}

static int cpu_write(struct vcpu *vcpu, const struct cpu_image *c)
{
	struct kvm_vcpu_events ev = c->events;
	struct kvm_sregs s1;
	int err;

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
	if (ioctl(vcpu->fd, KVM_SET_REGS, &c->regs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_XSAVE, &c->xsave) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_XCRS, &c->xcrs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_DEBUGREGS, &c->debugregs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ev) < 0)
		return -errno;
	err = msrs_write(vcpu, c);
	if (err)
		return err;
	run_state_write(vcpu, c);
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

	stream_section_begin(s, "ram", idx, RAM_VERSION);
	stream_put_u64(s, r->gpa);
	stream_put_u64(s, r->size);
	for (uint64_t p = 0; p < npages && !stream_error(s);) {
		uint64_t n = 0;

		while (p + n < npages && !page_zero(r->host + (p + n) * PAGE))
			n++;
		if (n) {
			stream_put_u64(s, p);
			stream_put_u64(s, n);
			stream_put_align(s, PAGE);   /* so that loading can map it */
			stream_put(s, r->host + p * PAGE, n * PAGE);
		}
		p += n + 1;
	}
	stream_section_end(s);
}

/* Fresh zero pages over the whole region (it may map a file from a restore before). */
static int ram_zero(const struct mem_region *r)
{
	void *p = mmap(r->host, r->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	madvise(r->host, r->size, MADV_MERGEABLE);
	return 0;
}

/*
 * Map a run of pages from the snapshot file, copy-on-write (the VM is
 * paused; KVM follows the new mapping through its MMU notifier), or copy
 * it where it is not a page-aligned run of a file.
 */
static void ram_put_run(struct stream *s, void *dst, const void *data, uint64_t len,
			unsigned *mapped)
{
	uint64_t off;
	int fd = stream_file_of(s, data, &off);

	if (fd >= 0 && !(off % PAGE) && len >= MAP_MIN_PAGES * PAGE && *mapped < MAP_MAX_RUNS &&
	    mmap(dst, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
		 (off_t)off) != MAP_FAILED) {
		(*mapped)++;
		return;
	}
	memcpy(dst, data, len);
}

/* Check (apply false) or load (apply true) one region's runs. */
static int ram_load(struct stream *s, const struct mem_region *r, unsigned idx, bool apply,
		    unsigned *mapped)
{
	uint64_t npages = r->size / PAGE, next = 0;
	uint32_t version;
	int err;

	if (stream_section_open(s, "ram", idx, RAM_VERSION, &version))
		return stream_error(s);
	if (stream_get_u64(s) != r->gpa || stream_get_u64(s) != r->size)
		return stream_fail(s, -EINVAL, "RAM region %u differs from this machine's "
				   "(gpa %#llx, %llu MiB)", idx, (unsigned long long)r->gpa,
				   (unsigned long long)(r->size >> 20));
	if (apply && (err = ram_zero(r)))
		return stream_fail(s, err, "RAM region %u: cannot clear it: %s", idx,
				   strerror(-err));
	while (stream_left(s) && !stream_error(s)) {
		uint64_t p = stream_get_u64(s), n = stream_get_u64(s);
		const void *data;

		if (p < next || n == 0 || n > npages || p > npages - n)
			return stream_fail(s, -EINVAL, "RAM region %u: page run %llu+%llu out of range",
					   idx, (unsigned long long)p, (unsigned long long)n);
		if (version >= 2)
			stream_get_align(s, PAGE);
		data = stream_get_ptr(s, n * PAGE);
		if (data && apply)
			ram_put_run(s, r->host + p * PAGE, data, n * PAGE, mapped);
		next = p + n;
	}
	return stream_section_close(s);
}

/* Devices: the restore bus. */

static int devices_send(struct vm *vm, struct stream *s, enum restore_type type, bool reset)
{
	struct msg_restore msg = { .type = type, .reset = reset, .s = s };

	bus_send(vm->bus.restore, &msg, BUS_FIFO);
	if (msg.error && !stream_error(s))
		stream_fail(s, msg.error, "a device failed to %s its state",
			    type == RESTORE_SAVE ? "save" : "load");
	return stream_error(s);
}

/*
 * This machine's devices' sections, saved into a scratch file and opened
 * for reading in @dev (closed with stream_close, then *@fd): what a save
 * writes after the header, and on load the device list to compare.
 * Saving has no effect on a device, so this is safe on either side.
 */
static int devices_capture(struct vm *vm, struct stream *s, struct stream *dev, int *fd)
{
	struct stream w;

	memset(dev, 0, sizeof(*dev));
	dev->fd = -1;
	*fd = memfd_create("vmm-devices", MFD_CLOEXEC);
	if (*fd < 0)
		return stream_fail(s, -errno, "memfd_create: %s", strerror(errno));
	if (stream_open_write_fd(&w, *fd) == 0)
		devices_send(vm, &w, RESTORE_SAVE, false);
	if (stream_close(&w))
		return stream_fail(s, stream_error(&w), "%s", stream_why(&w));
	if (stream_open_read_fd(dev, *fd, "device state"))
		return stream_fail(s, stream_error(dev), "%s", stream_why(dev));
	return 0;
}

static void devices_release(struct stream *dev, int fd)
{
	if (fd >= 0) {
		stream_close(dev);
		close(fd);
	}
}

/* Saving. */

static void header_save(struct vm *vm, struct stream *s, const struct stream *dev)
{
	stream_section_begin(s, "header", 0, HEADER_VERSION);
	stream_put_u32(s, vm->ncpus);
	stream_put_u32(s, vm->mem.count);
	for (unsigned i = 0; i < vm->mem.count; i++) {
		stream_put_u64(s, vm->mem.region[i].gpa);
		stream_put_u64(s, vm->mem.region[i].size);
	}
	stream_put_u64(s, vm_clock_ns(vm));
	stream_put_u64(s, vm->pause.kvmclock);
	/* The device list: one entry per device section, or none recorded. */
	stream_put_u32(s, dev != NULL);
	stream_put_u32(s, dev ? dev->nsections : 0);
	for (unsigned i = 0; dev && i < dev->nsections; i++) {
		stream_put(s, dev->sections[i].name, STREAM_NAME_MAX);
		stream_put_u32(s, dev->sections[i].instance);
		stream_put_u32(s, dev->sections[i].version);
	}
	stream_section_end(s);
}

int vm_state_save(struct vm *vm, struct stream *s, unsigned parts)
{
	bool sregs2 = have_sregs2(vm);
	struct stream dev;
	int dev_fd = -1;

	if ((parts & VM_STATE_DEVICES) && devices_capture(vm, s, &dev, &dev_fd)) {
		devices_release(&dev, dev_fd);
		return stream_error(s);
	}
	header_save(vm, s, dev_fd >= 0 ? &dev : NULL);
	for (unsigned i = 0; i < vm->mem.count && (parts & VM_STATE_RAM); i++)
		ram_save(s, &vm->mem.region[i], i);
	for (unsigned i = 0; i < vm->ncpus && (parts & VM_STATE_CPUS) && !stream_error(s); i++) {
		struct cpu_image *c = malloc(sizeof(*c));
		int err = c ? cpu_read(vm, vm->vcpu[i], c, sregs2) : -ENOMEM;

		if (err) {
			stream_fail(s, err, "vCPU %u: cannot read its state: %s", i, strerror(-err));
			free(c);
			break;
		}
		stream_section_begin(s, "cpu", i, CPU_VERSION);
		stream_put(s, c, CPU_FIXED + c->nmsrs * sizeof(c->msrs[0]));
		stream_section_end(s);
		free(c);
	}
	for (unsigned i = 0; dev_fd >= 0 && i < dev.nsections; i++)
		stream_put_section(s, &dev, &dev.sections[i]);
	devices_release(&dev, dev_fd);
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
	if (ret)   /* the file at @path, if any, is untouched (vmm/stream.h) */
		snprintf(err, errlen, "snapshot %s: %s", path, stream_why(&s));
	if (!stay_stopped)
		vm_resume(vm);
	return ret;
}

/* Restoring. */

struct header {
	uint64_t clock, kvmclock;
	bool has_list;
	unsigned ndev;
	const uint8_t *list;        /* ndev entries: name[24], instance, version */
};
#define DEV_ENTRY (STREAM_NAME_MAX + 8)

static int header_check(struct vm *vm, struct stream *s, struct header *h)
{
	uint32_t ncpus, count, version;

	memset(h, 0, sizeof(*h));
	if (stream_section_open(s, "header", 0, HEADER_VERSION, &version))
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
	h->clock = stream_get_u64(s);
	h->kvmclock = stream_get_u64(s);
	if (version >= 2) {
		h->has_list = stream_get_u32(s);
		h->ndev = stream_get_u32(s);
		if (h->ndev > STREAM_MAX_SECTIONS || h->ndev * (uint64_t)DEV_ENTRY != stream_left(s))
			return stream_fail(s, -EINVAL, "header: a device list of %u entries in %llu "
					   "bytes", h->ndev, (unsigned long long)stream_left(s));
		h->list = stream_get_ptr(s, h->ndev * DEV_ENTRY);
	}
	return stream_section_close(s);
}

static bool listed(const uint8_t *list, unsigned n, const char *name, uint32_t instance)
{
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = list + i * DEV_ENTRY;
		uint32_t inst;

		memcpy(&inst, e + STREAM_NAME_MAX, sizeof(inst));
		if (inst == instance && !strncmp((const char *)e, name, STREAM_NAME_MAX))
			return true;
	}
	return false;
}

/*
 * The snapshot's device list against this machine's, before anything is
 * applied: each side's sections must all be on the other's list.
 */
static int devices_check(struct vm *vm, struct stream *s, const struct header *h)
{
	struct stream dev;
	int fd = -1, ret = 0;

	if (devices_capture(vm, s, &dev, &fd)) {
		devices_release(&dev, fd);
		return stream_error(s);
	}
	for (unsigned i = 0; i < h->ndev && !ret; i++) {
		char name[STREAM_NAME_MAX + 1] = "";
		uint32_t inst;

		memcpy(name, h->list + i * DEV_ENTRY, STREAM_NAME_MAX);
		memcpy(&inst, h->list + i * DEV_ENTRY + STREAM_NAME_MAX, sizeof(inst));
		if (!stream_section_find(s, name, inst))
			ret = stream_fail(s, -EINVAL, "device '%s' instance %u is listed but has no "
					  "section", name, inst);
		else if (!stream_section_find(&dev, name, inst))
			ret = stream_fail(s, -EINVAL, "device list differs: the snapshot has device "
					  "'%s' instance %u, this machine does not", name, inst);
	}
	for (unsigned i = 0; i < dev.nsections && !ret; i++)
		if (!listed(h->list, h->ndev, dev.sections[i].name, dev.sections[i].instance))
			ret = stream_fail(s, -EINVAL, "device list differs: this machine has device "
					  "'%s' instance %u, the snapshot does not",
					  dev.sections[i].name, dev.sections[i].instance);
	devices_release(&dev, fd);
	return ret;
}

static int cpu_get(struct stream *s, unsigned i, struct cpu_image *c)
{
	uint32_t version;
	uint64_t len;

	if (stream_section_open(s, "cpu", i, CPU_VERSION, &version))
		return stream_error(s);
	memset(c, 0, sizeof(*c));
	len = stream_left(s);
	if (len < CPU_FIXED)
		return stream_fail(s, -EINVAL, "vCPU %u: section of %llu bytes", i,
				   (unsigned long long)len);
	stream_get(s, c, CPU_FIXED);
	if (c->nmsrs > (version == 1 ? CPU_V1_MSRS : MAX_MSRS))
		return stream_fail(s, -EINVAL, "vCPU %u: %u MSRs", i, c->nmsrs);
	if (len != CPU_FIXED + (version == 1 ? CPU_V1_MSRS : c->nmsrs) * sizeof(c->msrs[0]))
		return stream_fail(s, -EINVAL, "vCPU %u: section of %llu bytes for %u MSRs", i,
				   (unsigned long long)len, c->nmsrs);
	stream_get(s, c->msrs, len - CPU_FIXED);
	if (c->state != VCPU_PARKED && c->state != VCPU_HALTED && c->state != VCPU_RUNNING)
		return stream_fail(s, -EINVAL, "vCPU %u: bad run state %u", i, c->state);
	if (c->pending & ~CPU_PENDING)
		return stream_fail(s, -EINVAL, "vCPU %u: bad pending events %#x", i, c->pending);
	return stream_section_close(s);
}

/* Everything but the devices' own state, before anything is applied. */
static int verify_all(struct vm *vm, struct stream *s, unsigned parts, struct header *h,
		      struct cpu_image *c)
{
	if (header_check(vm, s, h))
		return stream_error(s);
	if ((parts & VM_STATE_DEVICES) && h->has_list && devices_check(vm, s, h))
		return stream_error(s);
	for (unsigned i = 0; i < vm->mem.count && (parts & VM_STATE_RAM); i++)
		if (ram_load(s, &vm->mem.region[i], i, false, NULL))
			return stream_error(s);
	for (unsigned i = 0; i < vm->ncpus && (parts & VM_STATE_CPUS); i++)
		if (cpu_get(s, i, c))
			return stream_error(s);
	return 0;
}

static int apply_all(struct vm *vm, struct stream *s, unsigned parts, const struct header *h,
		     struct cpu_image *c)
{
	const struct stream_section *extra;
	unsigned mapped = 0;

	for (unsigned i = 0; i < vm->mem.count && (parts & VM_STATE_RAM); i++)
		if (ram_load(s, &vm->mem.region[i], i, true, &mapped))
			return stream_error(s);
	if (parts & VM_STATE_RAM)
		pr_info("RAM: %u runs of pages mapped from the file, the rest copied", mapped);
	for (unsigned i = 0; i < vm->ncpus && (parts & VM_STATE_CPUS); i++) {
		int err;

		cpu_get(s, i, c);
		err = cpu_write(vm->vcpu[i], c);
		if (err)
			return stream_fail(s, err, "vCPU %u: KVM refused the saved state: %s", i,
					   strerror(-err));
	}
	if (vm->timers)
		timer_service_set_clock(vm->timers, h->clock);
	if ((parts & VM_STATE_DEVICES) &&
	    devices_send(vm, s, RESTORE_LOAD, parts & VM_STATE_RESET))
		return stream_error(s);
	extra = stream_unused_section(s);
	if (extra)
		return stream_fail(s, -EINVAL, "section '%s' instance %u belongs to no device of "
				   "this machine (different device list?)", extra->name,
				   extra->instance);
	/* vm_resume() sets the kvmclock and the TSCs to these. */
	vm->pause.kvmclock = h->kvmclock;
	return 0;
}

int vm_state_load(struct vm *vm, struct stream *s, unsigned parts, bool *applied)
{
	struct cpu_image *c = malloc(sizeof(*c));
	struct header h;
	int ret;

	*applied = false;
	if (!c)
		return stream_fail(s, -ENOMEM, "out of memory");
	ret = verify_all(vm, s, parts, &h, c);
	if (!ret) {
		*applied = true;
		ret = apply_all(vm, s, parts, &h, c);
	}
	free(c);
	return ret;
}

int vm_snapshot_restore(struct vm *vm, const char *path, char *err, size_t errlen)
{
	if (kvm_forbidden_here()) {
		snprintf(err, errlen, "refusing to use KVM in a forked child");
		return -EPERM;
	}
	struct stream s;
	bool applied = false;
	uint64_t t0 = clock_ns(), t1 = 0;
	int ret;

	vm_pause(vm);
	ret = stream_open_read(&s, path);
	if (!ret) {
		t1 = clock_ns();
		ret = vm_state_load(vm, &s, VM_STATE_ALL, &applied);
	}
	if (!ret)
		pr_info("restored %s in %llu ms (%llu ms of it checking the file)", path,
			(unsigned long long)(clock_ns() - t0) / 1000000,
			(unsigned long long)(t1 - t0) / 1000000);
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
