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
 * Resume runs it backwards: the guest TSC and the kvmclock are moved
 * back by the paused time so they carry on from the stop, the VM clock
 * restarts, and the vCPUs are woken.
 */
#include <errno.h>
#include <linux/futex.h>
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

static void save_clock(struct vm *vm)
{
	struct kvm_clock_data clock = { 0 };

	vm->pause.stopped_at_ns = clock_ns();
	vm->pause.kvmclock = 0;
	if (vm->vm_fd >= 0 && ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) == 0)
		vm->pause.kvmclock = clock.clock;
}

/* Move the guest TSC back by the paused time, so it does not jump. */
static void restore_tsc(struct vcpu *vcpu, uint64_t paused_ns)
{
	uint32_t khz;
	int err;

	if (vcpu->fd < 0 || vcpu_tsc_khz(vcpu, &khz) < 0)
		return;
	err = vcpu_tsc_offset_add(vcpu, -(int64_t)((unsigned __int128)paused_ns * khz / 1000000));
	if (err < 0)
		pr_warn("vCPU %u: cannot adjust the TSC offset: %s", vcpu->id, strerror(-err));
}

static void restore_clock(struct vm *vm)
{
	uint64_t paused_ns = clock_ns() - vm->pause.stopped_at_ns;
	struct kvm_clock_data clock = { .clock = vm->pause.kvmclock };

	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpu[i] && vm->vcpu[i]->started)
			restore_tsc(vm->vcpu[i], paused_ns);
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
