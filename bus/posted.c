#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "bus/call.h"
#include "bus/posted.h"

/* The calling thread's writes in flight; the serializer decrements it. */
static __thread _Atomic uint32_t in_flight;

void bus_posted_begin(struct bus_call *call)
{
	if (bus_current_vcpu < 0)
		return;
	call->posted = &in_flight;
	atomic_fetch_add_explicit(&in_flight, 1, memory_order_relaxed);
}

void bus_posted_end(struct bus_call *call)
{
	_Atomic uint32_t *counter = call->posted;

	/* Release: the fenced thread sees the device's new state. */
	if (counter && atomic_fetch_sub_explicit(counter, 1, memory_order_release) == 1)
		syscall(SYS_futex, counter, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void bus_posted_fence(void)
{
	uint32_t n;

	while ((n = atomic_load_explicit(&in_flight, memory_order_acquire)) != 0)
		syscall(SYS_futex, &in_flight, FUTEX_WAIT_PRIVATE, n, NULL, NULL, 0);
}
