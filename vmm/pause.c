/*
 * Pause and drain.  Who waits for whom, in order:
 *
 *  1. the controller sets pause.requested and posts STOP to every vCPU;
 *  2. each vCPU thread, at its next look at its events (before entering
 *     the guest, or woken from a halt or a park), completes an in-flight
 *     I/O instruction, counts itself in pause.quiet and sleeps on
 *     pause.resume_gen; finished vCPU threads count as quiet for good;
 *  3. the controller waits until pause.quiet covers every started vCPU;
 *  4. it stops the VM clock (the timer thread stops firing), saves the
 *     kvmclock and the host time;
 *  5. it drains the serializer: a barrier call through the I/O thread
 *     (FIFO, so everything queued before it has run), or one acquisition
 *     of the global lock (no callback holds it afterwards).
 *
 * Step 4 also freezes the guest TSC: each vCPU's value at the stop is
 * kept in vcpu->frozen_tsc, so two snapshots of one pause match and a
 * restore only has to set it.  Resume runs it backwards: the TSC offsets
 * and the kvmclock are set so both carry on from their frozen values,
 * the VM clock restarts, and the vCPUs are woken.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "bus/stats.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/pause.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static unsigned started_vcpus(struct vm *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->ncpus; i++)
		n += vm->vcpu[i] && vm->vcpu[i]->started;
	return n;
}

static void wait_quiet(struct vm *vm)
{
	unsigned want = started_vcpus(vm);

	for (;;) {
		uint32_t quiet = atomic_load(&vm->pause.quiet);

		if (quiet >= want)
			return;
		syscall(SYS_futex, &vm->pause.quiet, FUTEX_WAIT_PRIVATE, quiet, NULL, NULL, 0);
	}
}

static void drain_devices(struct vm *vm)
{
	if (vm->iothread) {
		iothread_barrier(vm->iothread);
	} else {
		global_lock_acquire();
		global_lock_release();
	}
}

static bool have_vcpus(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (!vm->vcpu[i] || vm->vcpu[i]->fd < 0)
			return false;
	return vm->ncpus > 0;
}

/*
 * The guest TSC of every vCPU at one instant: vCPU 0's is read, the
 * others' follow from the differences of the TSC offsets (guest TSC =
 * scaled host TSC + offset), so the vCPUs keep their exact relation.
 * A host without the offset attribute gets one read per vCPU.
 */
static void freeze_tsc(struct vm *vm)
{
	uint64_t base, off0 = 0, off;
	uint32_t khz;
	bool offsets;

	if (!have_vcpus(vm) || vcpu_guest_tsc(vm->vcpu[0], &base, &khz) < 0)
		return;
	offsets = vcpu_tsc_offset(vm->vcpu[0], &off0) == 0;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = vm->vcpu[i];

		if (offsets && vcpu_tsc_offset(v, &off) == 0)
			v->frozen_tsc = base + (off - off0);
		else if (vcpu_guest_tsc(v, &v->frozen_tsc, &khz) < 0)
			v->frozen_tsc = base;
		v->tsc_frozen = true;
	}
}

/*
 * Some hosts (this project's PVM ones) accept a new TSC offset and keep
 * the old: the guest TSC then follows the host's across a pause or a
 * restore.  Say so once.
 */
static void check_tsc_moved(struct vcpu *vcpu, uint64_t before, uint64_t delta)
{
	static atomic_bool told;
	uint64_t after;

	if (delta && vcpu_tsc_offset(vcpu, &after) == 0 && after == before &&
	    !atomic_exchange(&told, true))
		pr_warn("this host ignores TSC offset changes: the guest TSC does not stop while "
			"the VM is paused, nor continue from a snapshot's");
}

/* Move each TSC offset so that the guest TSC carries on from its frozen value. */
static void thaw_tsc(struct vm *vm)
{
	uint64_t now0, off0, off;
	uint32_t khz;

	if (!have_vcpus(vm) || vcpu_guest_tsc(vm->vcpu[0], &now0, &khz) < 0 ||
	    vcpu_tsc_offset(vm->vcpu[0], &off0) < 0)
		return;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = vm->vcpu[i];
		uint64_t now = now0;
		int err = 0;

		if (!v->tsc_frozen)
			continue;
		v->tsc_frozen = false;
		if (i && vcpu_tsc_offset(v, &off) == 0)
			now = now0 + (off - off0);
		else if (i)
			err = vcpu_guest_tsc(v, &now, &khz);
		if (!err)
			err = vcpu_tsc_offset_add(v, (int64_t)(v->frozen_tsc - now));
		if (err < 0)
			pr_warn("vCPU %u: cannot set the TSC offset: %s", i, strerror(-err));
		else if (i == 0)
			check_tsc_moved(v, off0, v->frozen_tsc - now);
	}
}

static void save_clock(struct vm *vm)
{
	struct kvm_clock_data clock = { 0 };

	freeze_tsc(vm);
	vm->pause.kvmclock = 0;
	if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) == 0)
		vm->pause.kvmclock = clock.clock;
}

static void restore_clock(struct vm *vm)
{
	struct kvm_clock_data clock = { .clock = vm->pause.kvmclock };

	thaw_tsc(vm);
	if (vm->vm_fd >= 0 && vm->pause.kvmclock && ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0)
		pr_warn("cannot restore the kvmclock: %s", strerror(errno));
}

/* Every vCPU sleeping at its pause point looks again. */
static void wake_paused_vcpus(struct vm *vm)
{
	atomic_fetch_add(&vm->pause.resume_gen, 1);
	syscall(SYS_futex, &vm->pause.resume_gen, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

int vm_pause(struct vm *vm)
{
	if (kvm_forbidden_here())
		return -EPERM;
	pthread_mutex_lock(&vm->pause.lock);
	if (vm->pause.depth++ == 0) {
		atomic_store(&vm->pause.requested, true);
		for (unsigned i = 0; i < vm->ncpus; i++)
			if (vm->vcpu[i])
				vcpu_post(vm->vcpu[i], VCPU_EV_STOP);
		wait_quiet(vm);
		if (vm->timers)
			timer_service_pause(vm->timers);
		save_clock(vm);
		drain_devices(vm);
	}
	pthread_mutex_unlock(&vm->pause.lock);
	return 0;
}

void vm_resume(struct vm *vm)
{
	if (kvm_forbidden_here())
		return;
	pthread_mutex_lock(&vm->pause.lock);
	if (vm->pause.depth && --vm->pause.depth == 0) {
		restore_clock(vm);
		if (vm->timers)
			timer_service_resume(vm->timers);
		atomic_store(&vm->pause.requested, false);
		wake_paused_vcpus(vm);
	}
	pthread_mutex_unlock(&vm->pause.lock);
}

bool vm_is_paused(struct vm *vm)
{
	return atomic_load(&vm->pause.requested);
}

/* An exit request must also free vCPUs sleeping at their pause point. */
void vm_pause_release_for_exit(struct vm *vm)
{
	wake_paused_vcpus(vm);
}
