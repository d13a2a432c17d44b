/*
 * The timer service through vm_init_buses: an armed timer fires once as a
 * struct msg_timer on vm.bus.timer with its id; cancelled or re-armed ones
 * do not fire at their old deadline; a receiver may re-arm from inside the
 * callback; due timers fire in deadline order.
 *
 * Nothing here depends on how fast the host is.  Where a test needs timers
 * to be due "at the same time", it first parks the timer thread inside a
 * receiver (a blocker timer), arms the others with deadlines already past,
 * then lets it go: what fires next is decided by the deadlines alone.
 * Waits for a timer to fire give up only after 30 seconds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "bus/message.h"
#include "vmm/iothread.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

#define MS 1000000ull
#define MAX_LOG 256

struct fired {
	unsigned timer;
	uint64_t now;
	pthread_t thread;
	bool on_iothread;
};

static struct vm vm;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;
static struct fired log_[MAX_LOG];
static unsigned nlog;

/* The blocker: parks the timer thread until released. */
static unsigned blocker = ~0u;
static bool blocker_entered, blocker_released;

/* The periodic timer re-arms itself this many times, period_ns apart. */
static unsigned periodic = ~0u, periodic_left;
static const uint64_t period_ns = 1 * MS;

static bool recv_timer(void *dev, void *m)
{
	const struct msg_timer *msg = m;

	(void)dev;
	pthread_mutex_lock(&log_lock);
	if (msg->timer == blocker) {
		blocker_entered = true;
		pthread_cond_broadcast(&log_cond);
		while (!blocker_released)
			pthread_cond_wait(&log_cond, &log_lock);
	}
	if (nlog < MAX_LOG)
		log_[nlog++] = (struct fired){ .timer = msg->timer, .now = msg->now,
					       .thread = pthread_self(),
					       .on_iothread = iothread_is_current() };
	if (msg->timer == periodic && periodic_left) {
		periodic_left--;
		timer_arm(&vm, periodic, msg->now + period_ns);
	}
	pthread_cond_broadcast(&log_cond);
	pthread_mutex_unlock(&log_lock);
	return true;
}

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	nlog = 0;
	blocker = periodic = ~0u;
	blocker_entered = blocker_released = false;
	assert_int_equal(vm_init_buses(&vm, IO_MODE_THREAD), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	vm_fini_buses(&vm);
	return 0;
}

static unsigned count_locked(unsigned timer)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nlog; i++)
		n += log_[i].timer == timer;
	return n;
}

/* Wait until @timer fired @n times in all; false after 30 s. */
static bool wait_fired(unsigned timer, unsigned n)
{
	struct timespec until;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&log_lock);
	while (ok && count_locked(timer) < n)
		ok = pthread_cond_timedwait(&log_cond, &log_lock, &until) == 0;
	ok = count_locked(timer) >= n;
	pthread_mutex_unlock(&log_lock);
	return ok;
}

static unsigned fired_count(unsigned timer)
{
	unsigned n;

	pthread_mutex_lock(&log_lock);
	n = count_locked(timer);
	pthread_mutex_unlock(&log_lock);
	return n;
}

static const struct fired *first_of(unsigned timer)
{
	for (unsigned i = 0; i < nlog; i++)
		if (log_[i].timer == timer)
			return &log_[i];
	return NULL;
}

/* Park the timer thread in the receiver; the caller then arms at will. */
static void park_timer_thread(void)
{
	pthread_mutex_lock(&log_lock);
	blocker = timer_alloc(&vm);
	timer_arm(&vm, blocker, vm_clock_ns(&vm));
	while (!blocker_entered)
		pthread_cond_wait(&log_cond, &log_lock);
	pthread_mutex_unlock(&log_lock);
}

static void release_timer_thread(void)
{
	pthread_mutex_lock(&log_lock);
	blocker_released = true;
	pthread_cond_broadcast(&log_cond);
	pthread_mutex_unlock(&log_lock);
}

static void test_fires_once_with_its_id(void **state)
{
	unsigned a, b;
	uint64_t deadline;

	(void)state;
	assert_int_equal(bus_attach(vm.bus.timer, recv_timer, bus_claim_always, NULL), 0);
	a = timer_alloc(&vm);
	b = timer_alloc(&vm);
	assert_int_not_equal(a, b);
	deadline = vm_clock_ns(&vm) + 5 * MS;
	timer_arm(&vm, a, deadline);
	assert_true(wait_fired(a, 1));
	/* b fires later; by then a has had every chance to fire again. */
	timer_arm(&vm, b, vm_clock_ns(&vm) + 5 * MS);
	assert_true(wait_fired(b, 1));
	pthread_mutex_lock(&log_lock);
	assert_int_equal(count_locked(a), 1);
	assert_int_equal(count_locked(b), 1);
	assert_int_equal(nlog, 2);
	assert_int_equal(log_[0].timer, a);
	assert_true(log_[0].now >= deadline);
	/* Claimed: on the timer thread, not the I/O thread or this one. */
	assert_false(log_[0].on_iothread);
	assert_false(pthread_equal(log_[0].thread, pthread_self()));
	pthread_mutex_unlock(&log_lock);
}

static void test_unclaimed_receiver_runs_on_iothread(void **state)
{
	unsigned a;

	(void)state;
	assert_int_equal(bus_attach(vm.bus.timer, recv_timer, NULL, NULL), 0);
	a = timer_alloc(&vm);
	timer_arm(&vm, a, vm_clock_ns(&vm) + 1 * MS);
	assert_true(wait_fired(a, 1));
	pthread_mutex_lock(&log_lock);
	assert_true(first_of(a)->on_iothread);
	pthread_mutex_unlock(&log_lock);
}

static void test_cancelled_timer_does_not_fire(void **state)
{
	unsigned a, b;

	(void)state;
	assert_int_equal(bus_attach(vm.bus.timer, recv_timer, bus_claim_always, NULL), 0);
	a = timer_alloc(&vm);
	b = timer_alloc(&vm);
	park_timer_thread();
	timer_arm(&vm, a, vm_clock_ns(&vm));          /* due now */
	timer_cancel(&vm, a);
	timer_arm(&vm, b, vm_clock_ns(&vm) + 1);      /* due after a would be */
	release_timer_thread();
	assert_true(wait_fired(b, 1));
	assert_int_equal(fired_count(a), 0);
	/* Cancelling an idle timer is harmless; arming it again works. */
	timer_cancel(&vm, a);
	timer_arm(&vm, a, vm_clock_ns(&vm));
	assert_true(wait_fired(a, 1));
}

static void test_rearm_replaces_deadline(void **state)
{
	unsigned a, b;
	uint64_t now;

	(void)state;
	assert_int_equal(bus_attach(vm.bus.timer, recv_timer, bus_claim_always, NULL), 0);
	a = timer_alloc(&vm);
	b = timer_alloc(&vm);
	park_timer_thread();
	now = vm_clock_ns(&vm);
	timer_arm(&vm, a, now);                       /* due now... */
	timer_arm(&vm, a, now + 3600 * 1000 * MS);    /* ...no: in an hour */
	timer_arm(&vm, b, now + 1);
	release_timer_thread();
	assert_true(wait_fired(b, 1));
	assert_int_equal(fired_count(a), 0);
	/* And from an hour back to now. */
	timer_arm(&vm, a, vm_clock_ns(&vm));
	assert_true(wait_fired(a, 1));
	assert_int_equal(fired_count(a), 1);
}

static void test_receiver_rearms_periodic(void **state)
{
	const unsigned times = 5;
	uint64_t deadline, prev;
	unsigned seen = 0;

	(void)state;
	assert_int_equal(bus_attach(vm.bus.timer, recv_timer, bus_claim_always, NULL), 0);
	pthread_mutex_lock(&log_lock);
	periodic = timer_alloc(&vm);
	periodic_left = times - 1;
	pthread_mutex_unlock(&log_lock);
	deadline = vm_clock_ns(&vm) + period_ns;
	timer_arm(&vm, periodic, deadline);
	assert_true(wait_fired(periodic, times));
	pthread_mutex_lock(&log_lock);
	prev = 0;
	for (unsigned i = 0; i < nlog; i++) {
		if (log_[i].timer != periodic)
			continue;
		/* Each expiry is at or after the deadline the previous one set. */
		assert_true(log_[i].now >= (seen ? prev + period_ns : deadline));
		prev = log_[i].now;
		seen++;
	}
	assert_int_equal(seen, times);
	assert_int_equal(periodic_left, 0);
	pthread_mutex_unlock(&log_lock);
}

static void test_due_timers_fire_in_deadline_order(void **state)
{
	enum { N = 16 };
	unsigned id[N], shuffled[N];
	uint64_t base;

	(void)state;
	assert_int_equal(bus_attach(vm.bus.timer, recv_timer, bus_claim_always, NULL), 0);
	for (unsigned i = 0; i < N; i++) {
		id[i] = timer_alloc(&vm);
		shuffled[i] = (i * 7 + 3) % N;   /* 7 is prime to 16: a permutation */
	}
	park_timer_thread();
	base = vm_clock_ns(&vm);
	/* Timer id[k] is due at base - (N - k): all past, id[0] the earliest. */
	for (unsigned i = 0; i < N; i++) {
		unsigned k = shuffled[i];

		timer_arm(&vm, id[k], base - (N - k) * 1000);
	}
	release_timer_thread();
	assert_true(wait_fired(id[N - 1], 1));
	pthread_mutex_lock(&log_lock);
	assert_int_equal(nlog, N + 1);
	assert_int_equal(log_[0].timer, blocker);
	for (unsigned k = 0; k < N; k++)
		assert_int_equal(log_[1 + k].timer, id[k]);
	pthread_mutex_unlock(&log_lock);
}

static void test_vm_clock_is_monotonic(void **state)
{
	uint64_t prev = vm_clock_ns(&vm);

	(void)state;
	for (unsigned i = 0; i < 100000; i++) {
		uint64_t now = vm_clock_ns(&vm);

		assert_true(now >= prev);
		prev = now;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fires_once_with_its_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclaimed_receiver_runs_on_iothread,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_timer_does_not_fire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rearm_replaces_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receiver_rearms_periodic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_due_timers_fire_in_deadline_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_clock_is_monotonic, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
