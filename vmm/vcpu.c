/*
 * The vCPU thread: a state machine around KVM_RUN.
 *
 *   PARKED ---INIT,SIPI---> RUNNING <---> SERVICE (handle an exit)
 *                             |  ^
 *                         HLT v  | interrupt, NMI
 *                           HALTED
 *
 * Kicks follow KVM's own vcpu->mode protocol: the thread publishes
 * IN_GUEST (seq_cst) and then re-reads its events before KVM_RUN; a poster
 * publishes its events (seq_cst) and then moves IN_GUEST to EXITING and
 * signals the thread.  Either the thread sees the event, or the poster
 * sees IN_GUEST and the signal's handler sets immediate_exit, which makes
 * KVM_RUN return at once even if the signal lands before the ioctl.
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "bus/call.h"
#include "bus/message.h"
#include "bus/posted.h"
#include "vmm/cpu_state.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/machine_reset.h"
#include "vmm/vcpu.h"
#include "vmm/vcpu_exit.h"
#include "vmm/vm.h"

#define SIG_KICK (SIGRTMIN + 1)

static __thread struct vcpu *current;

struct vcpu *vcpu_current(void)
{
	return current;
}

static void kick_handler(int sig)
{
	(void)sig;
	if (current)
		((volatile struct kvm_run *)current->run)->immediate_exit = 1;
}

static void install_kick_handler_once(void)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(SIG_KICK, &sa, NULL);
}

static void install_kick_handler(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install_kick_handler_once);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

void vcpu_post(struct vcpu *vcpu, uint32_t events)
{
	uint32_t old = atomic_load(&vcpu->events);
	int in_guest = VCPU_IN_GUEST;
	int state;

	/* The version changes on every post, so a sleeper's futex sees it. */
	while (!atomic_compare_exchange_weak(&vcpu->events, &old,
					     ((old | events) & VCPU_EV_MASK) |
					     ((old & ~VCPU_EV_MASK) + VCPU_EV_VERSION)))
		;
	if (atomic_compare_exchange_strong(&vcpu->mode, &in_guest, VCPU_EXITING))
		pthread_kill(vcpu->thread, SIG_KICK);
	state = atomic_load(&vcpu->state);
	if (state == VCPU_HALTED || state == VCPU_PARKED)
		futex_wake_all(&vcpu->events);
}

void vcpu_post_sipi(struct vcpu *vcpu, uint8_t vector)
{
	atomic_store_explicit(&vcpu->sipi_vector, vector, memory_order_relaxed);
	vcpu_post(vcpu, VCPU_EV_SIPI);   /* the post's seq_cst CAS publishes the vector */
}

void vcpu_set_irq_ops(struct vcpu *vcpu, const struct vcpu_irq_ops *ops, void *ctx)
{
	vcpu->irq_ctx = ctx;
	vcpu->irq = ops;
}

int vcpu_tsc_khz(struct vcpu *vcpu, uint32_t *khz)
{
	int ret;

	if (kvm_forbidden_here())
		return -EPERM;
	if (!vcpu->tsc_khz) {
		ret = ioctl(vcpu->fd, KVM_GET_TSC_KHZ);
		if (ret <= 0)
			return -EINVAL;
		vcpu->tsc_khz = (uint32_t)ret;
	}
	*khz = vcpu->tsc_khz;
	return 0;
}

int vcpu_guest_tsc(struct vcpu *vcpu, uint64_t *tsc, uint32_t *khz)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs = { .hdr.nmsrs = 1, .entry.index = 0x10 /* IA32_TIME_STAMP_COUNTER */ };
	int ret = vcpu_tsc_khz(vcpu, khz);

	if (ret < 0)
		return ret;
	if (ioctl(vcpu->fd, KVM_GET_MSRS, &msrs) != 1)
		return -EIO;
	*tsc = msrs.entry.data;
	return 0;
}

int vcpu_tsc_offset(struct vcpu *vcpu, uint64_t *offset)
{
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
					.addr = (uint64_t)(uintptr_t)offset };

	if (kvm_forbidden_here())
		return -EPERM;
	return ioctl(vcpu->fd, KVM_GET_DEVICE_ATTR, &attr) < 0 ? -errno : 0;
}

int vcpu_tsc_offset_add(struct vcpu *vcpu, int64_t delta)
{
	uint64_t offset;
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
					.addr = (uint64_t)(uintptr_t)&offset };
	int err = vcpu_tsc_offset(vcpu, &offset);

	if (err)
		return err;
	offset += (uint64_t)delta;
	return ioctl(vcpu->fd, KVM_SET_DEVICE_ATTR, &attr) < 0 ? -errno : 0;
}

/* Take every pending event bit, keeping the version. */
static uint32_t take_events(struct vcpu *vcpu)
{
	uint32_t old = atomic_load(&vcpu->events);

	while (!atomic_compare_exchange_weak(&vcpu->events, &old, old & ~VCPU_EV_MASK))
		;
	return old & VCPU_EV_MASK;
}

static int irq_pending(struct vcpu *vcpu)
{
	return vcpu->irq ? vcpu->irq->pending(vcpu->irq_ctx) : -1;
}

static void set_state(struct vcpu *vcpu, enum vcpu_state state)
{
	atomic_store(&vcpu->state, state);
}

const char *const vcpu_time_names[VCPU_TIME_COUNT] = {
	[VCPU_TIME_GUEST] = "guest", [VCPU_TIME_BLOCKED] = "blocked",
	[VCPU_TIME_INLINE] = "host-inline", [VCPU_TIME_IOTHREAD] = "host-iothread",
	[VCPU_TIME_LOCK] = "host-lock", [VCPU_TIME_PAUSED] = "paused",
};

/* Charge the time since the last call to @what. */
static void account(struct vcpu *vcpu, enum vcpu_time what)
{
	uint64_t now = clock_ns();

	atomic_fetch_add_explicit(&vcpu->runstate.ns[what], now - vcpu->runstate_since,
				  memory_order_relaxed);
	vcpu->runstate_since = now;
}

/* Exit service time, split by what the vCPU thread waited for. */
static void account_service(struct vcpu *vcpu, uint64_t io_before, uint64_t lock_before)
{
	uint64_t io = iothread_thread_wait_ns() - io_before;
	uint64_t lock = global_lock_thread_wait_ns() - lock_before;

	atomic_fetch_add_explicit(&vcpu->runstate.ns[VCPU_TIME_IOTHREAD], io, memory_order_relaxed);
	atomic_fetch_add_explicit(&vcpu->runstate.ns[VCPU_TIME_LOCK], lock, memory_order_relaxed);
	vcpu->runstate_since += io + lock;
	account(vcpu, VCPU_TIME_INLINE);
}

/* Sleep until some event is posted after @seen was read. */
static void wait_events(struct vcpu *vcpu, uint32_t seen)
{
	account(vcpu, VCPU_TIME_INLINE);
	futex_wait(&vcpu->events, seen);
	account(vcpu, VCPU_TIME_BLOCKED);
}

void vcpu_runstate_read(struct vcpu *vcpu, uint64_t ns[VCPU_TIME_COUNT])
{
	for (unsigned i = 0; i < VCPU_TIME_COUNT; i++)
		ns[i] = atomic_load_explicit(&vcpu->runstate.ns[i], memory_order_relaxed);
}

/*
 * Finish an in-flight port or MMIO access: KVM completes the instruction on
 * the next KVM_RUN and, with immediate_exit set, returns before running on.
 */
static void complete_pending_io(struct vcpu *vcpu)
{
	if (atomic_load(&vcpu->state) != VCPU_COMPLETING)
		return;
	vcpu->run->immediate_exit = 1;
	if (ioctl(vcpu->fd, KVM_RUN, 0) == 0 || errno != EINTR)
		pr_warn("vCPU %u: completing I/O before a pause did not stop at once", vcpu->id);
	vcpu->run->immediate_exit = 0;
	set_state(vcpu, VCPU_RUNNING);
}

/* Stay here while the VM is paused (vmm/pause.c waits for us to arrive). */
static void pause_point(struct vcpu *vcpu)
{
	struct vm_pause *p = &vcpu->vm->pause;

	complete_pending_io(vcpu);
	account(vcpu, VCPU_TIME_INLINE);
	atomic_fetch_add(&p->quiet, 1);
	futex_wake_all(&p->quiet);
	for (;;) {
		uint32_t gen = atomic_load(&p->resume_gen);

		if (!atomic_load(&p->requested) || atomic_load(&vcpu->vm->exiting))
			break;
		futex_wait(&p->resume_gen, gen);
	}
	atomic_fetch_sub(&p->quiet, 1);
	account(vcpu, VCPU_TIME_PAUSED);
}

static void start_at_sipi(struct vcpu *vcpu)
{
	uint8_t vector = (uint8_t)atomic_load_explicit(&vcpu->sipi_vector, memory_order_relaxed);

	if (cpu_state_real_mode(vcpu, (uint16_t)(vector << 8), 0) < 0) {
		pr_err("vCPU %u: cannot set the SIPI start state: %s", vcpu->id, strerror(errno));
		vm_request_exit(vcpu->vm, 1);
		return;
	}
	pr_info("vCPU %u: started at %02x00:0000 by SIPI", vcpu->id, vector);
	set_state(vcpu, VCPU_RUNNING);
}

/*
 * Apply INIT, SIPI and NMI events, then stop if a pause is requested: at
 * the pause point nothing taken from the event word is held back, so a
 * snapshot sees it all (run state, KVM's NMI, the word's later bits).
 * True if the loop must end.
 */
static bool handle_events(struct vcpu *vcpu, uint32_t ev)
{
	int state = atomic_load(&vcpu->state);

	if ((ev & VCPU_EV_EXIT) || atomic_load(&vcpu->vm->exiting))
		return true;
	if (ev & VCPU_EV_INIT) {
		if (vcpu->irq && vcpu->irq->reset)
			vcpu->irq->reset(vcpu->irq_ctx);
		vcpu->init_seen = true;
		set_state(vcpu, state = VCPU_PARKED);
	}
	if ((ev & VCPU_EV_SIPI) && state == VCPU_PARKED && vcpu->init_seen) {
		vcpu->init_seen = false;
		start_at_sipi(vcpu);
	}
	if ((ev & VCPU_EV_NMI) && state != VCPU_PARKED) {
		if (ioctl(vcpu->fd, KVM_NMI) < 0)
			pr_warn("vCPU %u: KVM_NMI: %s", vcpu->id, strerror(errno));
		else
			vcpu->nmi_in_flight = true;
		if (state == VCPU_HALTED)
			set_state(vcpu, VCPU_RUNNING);
	}
	if ((ev & VCPU_EV_STOP) && atomic_load(&vcpu->vm->pause.requested)) {
		pause_point(vcpu);
		if (atomic_load(&vcpu->vm->exiting))
			return true;
	}
	return false;
}

/*
 * Inject what the interrupt controller has when the guest can take it
 * (KVM here does not check IF itself), else ask for an interrupt window.
 * Called before every entry, because the window exit may come late or not
 * at all when the guest exits for another reason first.
 */
static void inject_interrupts(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int token;

	/* A posted write may be what lowers an interrupt line: let it land. */
	bus_posted_fence();
	token = irq_pending(vcpu);

	run->request_interrupt_window = 0;
	if (token < 0)
		return;
	if (run->ready_for_interrupt_injection && run->if_flag) {
		int vector = vcpu->irq->acknowledge(vcpu->irq_ctx, token);
		struct kvm_interrupt irq = { .irq = (uint32_t)vector };

		if (vector >= 0 && ioctl(vcpu->fd, KVM_INTERRUPT, &irq) < 0)
			pr_warn("vCPU %u: KVM_INTERRUPT %d: %s", vcpu->id, vector, strerror(errno));
		/* Only one injection per entry: a second one would replace it. */
		run->ready_for_interrupt_injection = 0;
		if (irq_pending(vcpu) >= 0)
			run->request_interrupt_window = 1;
	} else {
		run->request_interrupt_window = 1;
	}
}

/*
 * A machine reset is on its way (vmm/machine_reset.h): like a CPU whose
 * RESET line is asserted, do not run the guest; sleep until the reset
 * thread's pause posts STOP.  Posts wake only halted and parked vCPUs, so
 * look halted meanwhile (the state comes back for the pause point, which
 * must still complete an I/O instruction).
 */
static void wait_for_reset(struct vcpu *vcpu)
{
	int state = atomic_load(&vcpu->state);
	uint32_t seen;

	set_state(vcpu, VCPU_HALTED);
	seen = atomic_load(&vcpu->events);
	if (!(seen & VCPU_EV_MASK) && machine_reset_pending(vcpu->vm))
		wait_events(vcpu, seen);
	set_state(vcpu, state);
}

/* One KVM_RUN; false if the loop must end. */
static bool run_guest(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int ret;

	if (kvm_forbidden_here()) {
		vm_request_exit(vcpu->vm, 1);
		return false;
	}
	/* The write that asked for a reset may still be on its way: let it land. */
	bus_posted_fence();
	if (machine_reset_pending(vcpu->vm)) {
		wait_for_reset(vcpu);
		return true;
	}
	inject_interrupts(vcpu);
	atomic_store(&vcpu->mode, VCPU_IN_GUEST);
	if (atomic_load(&vcpu->events) & VCPU_EV_MASK) {
		atomic_store(&vcpu->mode, VCPU_OUTSIDE_GUEST);
		return true;
	}
	account(vcpu, VCPU_TIME_INLINE);
	ret = ioctl(vcpu->fd, KVM_RUN, 0);
	atomic_store(&vcpu->mode, VCPU_OUTSIDE_GUEST);
	run->immediate_exit = 0;
	account(vcpu, VCPU_TIME_GUEST);
	if (ret < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return true;
		pr_err("vCPU %u: KVM_RUN: %s", vcpu->id, strerror(errno));
		vm_request_exit(vcpu->vm, 1);
		return false;
	}
	vcpu->exits++;
	atomic_fetch_add_explicit(&vcpu->runstate.exits_by_reason[run->exit_reason < 64 ?
				  run->exit_reason : 63], 1, memory_order_relaxed);
	set_state(vcpu, VCPU_SERVICE);
	uint64_t io_before = iothread_thread_wait_ns(), lock_before = global_lock_thread_wait_ns();
	bool go_on = vcpu_handle_exit(vcpu);

	account_service(vcpu, io_before, lock_before);
	return go_on;
}

/* A halted vCPU resumes on an interrupt it can take, or on an NMI. */
static void halt_wait(struct vcpu *vcpu, uint32_t seen)
{
	if (irq_pending(vcpu) >= 0 && vcpu->run->if_flag) {
		set_state(vcpu, VCPU_RUNNING);
		return;
	}
	wait_events(vcpu, seen);
}

static void vcpu_loop(struct vcpu *vcpu)
{
	for (;;) {
		uint32_t seen = atomic_load(&vcpu->events);
		uint32_t ev = take_events(vcpu);

		if (handle_events(vcpu, ev))
			break;
		seen &= ~VCPU_EV_MASK;
		switch (atomic_load(&vcpu->state)) {
		case VCPU_PARKED:
			wait_events(vcpu, seen);
			break;
		case VCPU_HALTED:
			halt_wait(vcpu, seen);
			break;
		default:
			if (!run_guest(vcpu))
				return;
		}
	}
}

static void pin_thread(struct vcpu *vcpu)
{
	cpu_set_t set;

	if (vcpu->host_cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(vcpu->host_cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		pr_warn("vCPU %u: cannot pin to host CPU %d", vcpu->id, vcpu->host_cpu);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	vcpu->tid = (pid_t)syscall(SYS_gettid);
	current = vcpu;
	bus_current_vcpu = (int)vcpu->id;
	bus_thread_enter();
	pin_thread(vcpu);
	pr_info("vCPU %u: thread %d on host CPU %d%s", vcpu->id, vcpu->tid, vcpu->host_cpu,
		vcpu->host_cpu < 0 ? " (not pinned)" : "");
	vcpu->runstate_since = clock_ns();
	vcpu_loop(vcpu);
	set_state(vcpu, VCPU_STOPPED);
	/* A finished vCPU counts as quiet for good: a pause need not wait for it. */
	atomic_fetch_add(&vcpu->vm->pause.quiet, 1);
	futex_wake_all(&vcpu->vm->pause.quiet);
	bus_thread_exit();
	current = NULL;
	return NULL;
}

struct vcpu *vcpu_create(struct vm *vm, unsigned id)
{
	struct vcpu *vcpu = calloc(1, sizeof(*vcpu));
	int size;

	if (!vcpu)
		return NULL;
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->host_cpu = -1;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);
	size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu->fd < 0 || size <= 0)
		goto fail;
	vcpu->run_size = (size_t)size;
	vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		goto fail;
	}
	vcpu->bus = bus_create("cpu", sizeof(struct msg_cpu));
	if (!vcpu->bus || kvm_vcpu_set_cpuid(vcpu) < 0)
		goto fail;
	set_state(vcpu, id == 0 ? VCPU_RUNNING : VCPU_PARKED);
	install_kick_handler();
	return vcpu;
fail:
	pr_err("cannot create vCPU %u: %s", id, strerror(errno));
	vcpu_destroy(vcpu);
	return NULL;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (!vcpu)
		return;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	bus_destroy(vcpu->bus);
	free(vcpu);
}

int vcpu_start(struct vcpu *vcpu, int host_cpu)
{
	int err;

	vcpu->host_cpu = host_cpu;
	err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
	vcpu->started = !err;
	return -err;
}

void vcpu_join(struct vcpu *vcpu)
{
	if (vcpu->started)
		pthread_join(vcpu->thread, NULL);
	vcpu->started = false;
}
