/*
 * Machine reset by reloading the power-on checkpoint (vmm/machine_reset.h).
 *
 * Who does what:
 *  - a requester (I/O thread, vCPU thread, QMP) sets @pending under the
 *    lock and signals the reset thread; a request finding one pending
 *    joins it.  It never waits: vm_pause() below waits for the I/O thread
 *    and every vCPU, one of which may be the requester.
 *  - vCPU threads see @pending before each entry and stay out of the
 *    guest (vmm/vcpu.c) until the reset thread's pause collects them.
 *  - the reset thread pauses the VM, loads the checkpoint (RAM, vCPU run
 *    states with their pending events, devices, VM clock), clears
 *    @pending, tells the hook (QMP's RESET) and resumes.  A VM stopped by
 *    QMP stays stopped: pauses nest.
 *
 * Time: the checkpoint's VM clock, kvmclock and guest TSC come back with
 * it, as a power cycle restarts them; device timers saved in that clock's
 * terms stay consistent.  Host time (QMP timestamps, statistics) goes on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bus/bus.h"
#include "bus/stats.h"
#include "vmm/log.h"
#include "vmm/machine_reset.h"
#include "vmm/pause.h"
#include "vmm/snapshot.h"
#include "vmm/stream.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

static struct {
	int fd;                            /* the power-on checkpoint (a memfd) */
	uint64_t bytes;
	pthread_t thread;
	_Atomic bool ready;                /* the checkpoint and the thread exist */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;                         /* under @lock: teardown */
	enum machine_reset_cause cause;    /* under @lock: of the pending reset */
	_Atomic bool pending;
	_Atomic uint64_t done;
	void (*hook)(enum machine_reset_cause cause);
} mr = { .fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static const char *const cause_names[] = {
	[MACHINE_RESET_GUEST] = "guest request",
	[MACHINE_RESET_HOST_QMP] = "QMP system_reset",
};

bool machine_reset_pending(struct vm *vm)
{
	(void)vm;
	return atomic_load(&mr.pending);
}

uint64_t machine_reset_count(void)
{
	return atomic_load(&mr.done);
}

uint64_t machine_reset_image_bytes(void)
{
	return mr.bytes;
}

void machine_reset_set_hook(void (*fn)(enum machine_reset_cause cause))
{
	mr.hook = fn;
}

int machine_reset_request(struct vm *vm, enum machine_reset_cause cause)
{
	(void)vm;
	if (!atomic_load(&mr.ready))
		return -ENOTSUP;
	pthread_mutex_lock(&mr.lock);
	if (!atomic_load(&mr.pending)) {
		mr.cause = cause;
		atomic_store(&mr.pending, true);
		pthread_cond_signal(&mr.cond);
	}
	pthread_mutex_unlock(&mr.lock);
	return 0;
}

static void clear_pending(void)
{
	pthread_mutex_lock(&mr.lock);
	atomic_store(&mr.pending, false);
	pthread_mutex_unlock(&mr.lock);
}

/* Load the checkpoint into the paused VM; a failure ends the VM. */
static int load_power_on(struct vm *vm)
{
	struct stream s;
	bool applied = false;
	int err = stream_open_read_fd(&s, mr.fd, "the power-on checkpoint");

	if (!err)
		err = vm_state_load(vm, &s, VM_STATE_ALL | VM_STATE_RESET, &applied);
	if (err) {
		/* Even untouched, the guest asked to stop running as it was. */
		pr_err("reset: cannot load the power-on state: %s", stream_why(&s));
		vm_request_exit(vm, 1);
	}
	stream_close(&s);
	return err;
}

static void reset_once(struct vm *vm, enum machine_reset_cause cause)
{
	uint64_t start = clock_ns();
	int err = -ESHUTDOWN;

	vm_pause(vm);
	if (!atomic_load(&vm->exiting))
		err = load_power_on(vm);
	if (!err)
		atomic_fetch_add(&mr.done, 1);
	clear_pending();
	if (!err && mr.hook)
		mr.hook(cause);
	vm_resume(vm);
	if (!err)
		fprintf(stderr, "vmm: reset (%s): back at power-on in %.1f ms (checkpoint "
			"%llu KiB)\n", cause_names[cause], (double)(clock_ns() - start) / 1e6,
			(unsigned long long)(mr.bytes >> 10));
}

static void *reset_thread(void *arg)
{
	struct vm *vm = arg;

	bus_thread_enter();
	pthread_mutex_lock(&mr.lock);
	for (;;) {
		enum machine_reset_cause cause;

		while (!mr.stop && !atomic_load(&mr.pending))
			pthread_cond_wait(&mr.cond, &mr.lock);
		if (mr.stop)
			break;
		cause = mr.cause;
		pthread_mutex_unlock(&mr.lock);
		reset_once(vm, cause);
		pthread_mutex_lock(&mr.lock);
	}
	pthread_mutex_unlock(&mr.lock);
	bus_thread_exit();
	return NULL;
}

static void reset_teardown(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&mr.lock);
	mr.stop = true;
	pthread_cond_signal(&mr.cond);
	pthread_mutex_unlock(&mr.lock);
	pthread_join(mr.thread, NULL);
	atomic_store(&mr.ready, false);
	atomic_store(&mr.pending, false);
	close(mr.fd);
	mr.fd = -1;
}

/* The whole VM, paused (no vCPU ran yet: nothing to wait for), into @fd. */
static int save_power_on(struct vm *vm, int fd)
{
	struct stream s;
	struct stat st;
	int err = vm_pause(vm);

	if (err)
		return err;
	if (stream_open_write_fd(&s, fd) == 0)
		vm_state_save(vm, &s, VM_STATE_ALL);
	err = stream_close(&s);
	vm_resume(vm);
	if (err) {
		pr_err("reset: cannot checkpoint the power-on state: %s", stream_why(&s));
		return err;
	}
	if (fstat(fd, &st) == 0)
		mr.bytes = (uint64_t)st.st_size;
	return 0;
}

int machine_reset_init(struct vm *vm)
{
	int fd = memfd_create("vmm-power-on", MFD_CLOEXEC);
	uint64_t start = clock_ns();
	int err;

	if (fd < 0) {
		err = -errno;
		pr_err("reset: memfd_create: %s", strerror(errno));
		return err;
	}
	err = save_power_on(vm, fd);
	if (err) {
		close(fd);
		return err;
	}
	mr.fd = fd;
	mr.stop = false;
	err = -pthread_create(&mr.thread, NULL, reset_thread, vm);
	if (err) {
		pr_err("reset: cannot start the reset thread: %s", strerror(-err));
		close(fd);
		mr.fd = -1;
		return err;
	}
	pthread_setname_np(mr.thread, "reset");
	vm_at_exit(vm, reset_teardown, NULL);
	atomic_store(&mr.ready, true);
	pr_info("power-on checkpoint for resets: %llu KiB in %.1f ms",
		(unsigned long long)(mr.bytes >> 10), (double)(clock_ns() - start) / 1e6);
	return 0;
}
