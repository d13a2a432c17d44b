/*
 * The VM clock and the timer service thread.
 *
 * Timers are few (one per LAPIC plus a handful), so a flat array scanned
 * for the earliest deadline is simpler than a heap and fast enough.  The
 * mutex guards only the deadline array; expiries are sent with it dropped,
 * so a receiver may re-arm its timer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include "bus/message.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

#define TIMER_IDLE UINT64_MAX

struct timer_service {
	struct vm *vm;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t *deadline;       /* VM time, TIMER_IDLE when not armed */
	unsigned count, capacity;
	bool stopping;
	bool paused;
	_Atomic uint64_t offset;  /* host monotonic minus VM time (paused time) */
	_Atomic uint64_t frozen;  /* VM time while paused, else 0 */
};

uint64_t vm_clock_ns(struct vm *vm)
{
	struct timer_service *ts = vm->timers;
	uint64_t frozen;

	if (!ts)
		return clock_ns();
	frozen = atomic_load_explicit(&ts->frozen, memory_order_acquire);
	if (frozen)
		return frozen;
	return clock_ns() - atomic_load_explicit(&ts->offset, memory_order_acquire);
}

void timer_service_pause(struct timer_service *ts)
{
	pthread_mutex_lock(&ts->lock);
	if (!ts->paused) {
		ts->paused = true;
		atomic_store_explicit(&ts->frozen, vm_clock_ns(ts->vm) | 1, memory_order_release);
	}
	pthread_mutex_unlock(&ts->lock);
}

void timer_service_set_clock(struct timer_service *ts, uint64_t vm_ns)
{
	pthread_mutex_lock(&ts->lock);
	if (ts->paused)
		atomic_store_explicit(&ts->frozen, vm_ns | 1, memory_order_release);
	pthread_mutex_unlock(&ts->lock);
}

/* The time spent paused goes into the offset: VM time resumes where it stopped. */
void timer_service_resume(struct timer_service *ts)
{
	pthread_mutex_lock(&ts->lock);
	if (ts->paused) {
		uint64_t frozen = atomic_load(&ts->frozen);

		atomic_store_explicit(&ts->offset, clock_ns() - frozen, memory_order_release);
		atomic_store_explicit(&ts->frozen, 0, memory_order_release);
		ts->paused = false;
		pthread_cond_signal(&ts->cond);
	}
	pthread_mutex_unlock(&ts->lock);
}

unsigned timer_alloc(struct vm *vm)
{
	struct timer_service *ts = vm->timers;
	unsigned id;

	pthread_mutex_lock(&ts->lock);
	if (ts->count == ts->capacity) {
		unsigned cap = ts->capacity ? ts->capacity * 2 : 16;
		uint64_t *d = realloc(ts->deadline, cap * sizeof(*d));

		if (!d)
			abort();
		ts->deadline = d;
		ts->capacity = cap;
	}
	id = ts->count++;
	ts->deadline[id] = TIMER_IDLE;
	pthread_mutex_unlock(&ts->lock);
	return id;
}

void timer_arm(struct vm *vm, unsigned timer, uint64_t deadline_ns)
{
	struct timer_service *ts = vm->timers;

	pthread_mutex_lock(&ts->lock);
	if (timer < ts->count) {
		ts->deadline[timer] = deadline_ns;
		pthread_cond_signal(&ts->cond);
	}
	pthread_mutex_unlock(&ts->lock);
}

void timer_cancel(struct vm *vm, unsigned timer)
{
	struct timer_service *ts = vm->timers;

	pthread_mutex_lock(&ts->lock);
	if (timer < ts->count)
		ts->deadline[timer] = TIMER_IDLE;
	pthread_mutex_unlock(&ts->lock);
}

static unsigned earliest(const struct timer_service *ts)
{
	unsigned best = 0;

	for (unsigned i = 1; i < ts->count; i++)
		if (ts->deadline[i] < ts->deadline[best])
			best = i;
	return best;
}

static struct timespec host_time(const struct timer_service *ts, uint64_t vm_ns)
{
	uint64_t offset = atomic_load(&ts->offset);
	uint64_t host = vm_ns > UINT64_MAX - offset ? UINT64_MAX / 2 : vm_ns + offset;

	return (struct timespec){ .tv_sec = (time_t)(host / 1000000000u),
				  .tv_nsec = (long)(host % 1000000000u) };
}

static void *timer_main(void *arg)
{
	struct timer_service *ts = arg;

	pthread_setname_np(pthread_self(), "vmm-timer");
	bus_thread_enter();
	pthread_mutex_lock(&ts->lock);
	while (!ts->stopping) {
		unsigned id = earliest(ts);
		uint64_t now = vm_clock_ns(ts->vm);

		if (ts->paused || !ts->count || ts->deadline[id] == TIMER_IDLE) {
			pthread_cond_wait(&ts->cond, &ts->lock);
		} else if (ts->deadline[id] > now) {
			struct timespec until = host_time(ts, ts->deadline[id]);

			pthread_cond_timedwait(&ts->cond, &ts->lock, &until);
		} else {
			struct msg_timer msg = { .timer = id, .now = now };

			ts->deadline[id] = TIMER_IDLE;
			pthread_mutex_unlock(&ts->lock);
			bus_send_async(ts->vm->bus.timer, &msg, BUS_EARLY_OUT);
			pthread_mutex_lock(&ts->lock);
		}
	}
	pthread_mutex_unlock(&ts->lock);
	bus_thread_exit();
	return NULL;
}

struct timer_service *timer_service_start(struct vm *vm)
{
	struct timer_service *ts = calloc(1, sizeof(*ts));
	pthread_condattr_t attr;

	if (!ts)
		return NULL;
	ts->vm = vm;
	pthread_mutex_init(&ts->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ts->cond, &attr);
	pthread_condattr_destroy(&attr);
	vm->timers = ts;
	if (pthread_create(&ts->thread, NULL, timer_main, ts)) {
		vm->timers = NULL;
		free(ts);
		return NULL;
	}
	return ts;
}

void timer_service_stop(struct timer_service *ts)
{
	if (!ts)
		return;
	pthread_mutex_lock(&ts->lock);
	ts->stopping = true;
	pthread_cond_signal(&ts->cond);
	pthread_mutex_unlock(&ts->lock);
	pthread_join(ts->thread, NULL);
	ts->vm->timers = NULL;
	pthread_cond_destroy(&ts->cond);
	pthread_mutex_destroy(&ts->lock);
	free(ts->deadline);
	free(ts);
}
