/*
 * The global lock.  A device callback that sends another message (the PIT
 * raising IRQ 0 at the IOAPIC) re-enters the serializer on the same
 * thread: the per-thread depth lets it run inline instead of deadlocking.
 */
#include <pthread.h>
#include <stdatomic.h>
#include "bus/call.h"
#include "vmm/global_lock.h"

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread unsigned depth;
static _Atomic uint64_t wait_ns;
static __thread uint64_t thread_wait_ns;

uint64_t global_lock_thread_wait_ns(void)
{
	return thread_wait_ns;
}

void global_lock_acquire(void)
{
	if (depth++ == 0) {
		uint64_t t0 = clock_ns();

		uint64_t waited;

		pthread_mutex_lock(&global_lock);
		waited = clock_ns() - t0;
		thread_wait_ns += waited;
		atomic_fetch_add_explicit(&wait_ns, waited, memory_order_relaxed);
	}
}

void global_lock_release(void)
{
	if (--depth == 0)
		pthread_mutex_unlock(&global_lock);
}

bool global_lock_held(void)
{
	return depth > 0;
}

uint64_t global_lock_wait_ns(void)
{
	return atomic_load_explicit(&wait_ns, memory_order_relaxed);
}

static bool submit(void *ctx, struct bus_call *call)
{
	bool handled;

	(void)ctx;
	call->submitted_ns = clock_ns();
	global_lock_acquire();
	handled = bus_call_run(call);
	global_lock_release();
	return handled;
}

static const struct bus_serializer serializer = { .name = "global-lock", .submit = submit };

const struct bus_serializer *global_lock_serializer(void)
{
	return &serializer;
}
