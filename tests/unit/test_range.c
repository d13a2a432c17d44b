/*
 * The range bus: registration rules (overlaps, empty and wrapping ranges,
 * a range ending at 2^64 - 1), lookups at the edges, remove and move (a BAR
 * remap), a thousand ranges, claimed versus serialized ranges, and table
 * updates racing senders.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bus/range.h"
#include "vmm/iothread.h"

struct msg {
	uint64_t value;
};

struct dev {
	uint64_t base, last;    /* where the test believes it is mapped */
	unsigned calls;
	uint64_t last_addr;
	pthread_t thread;
	bool on_iothread;
	bool write_back;        /* store the address into the message */
};

static struct range_bus *rb;

static bool recv(void *opaque, uint64_t addr, void *m)
{
	struct dev *d = opaque;
	struct msg *msg = m;

	d->calls++;
	d->last_addr = addr;
	d->thread = pthread_self();
	d->on_iothread = iothread_is_current();
	if (d->write_back)
		msg->value = addr;
	return true;
}

/* Which device (if any) answers at @addr. */
static struct dev *who(uint64_t addr, struct dev *devs, unsigned n)
{
	struct msg m = { 0 };
	unsigned before[n];

	for (unsigned i = 0; i < n; i++)
		before[i] = devs[i].calls;
	if (!range_bus_send(rb, addr, &m))
		return NULL;
	for (unsigned i = 0; i < n; i++)
		if (devs[i].calls != before[i]) {
			assert_int_equal(devs[i].last_addr, addr);
			return &devs[i];
		}
	fail_msg("handled at %#llx by no known device", (unsigned long long)addr);
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	rb = range_bus_create("test", sizeof(struct msg));
	assert_non_null(rb);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	range_bus_destroy(rb);
	rb = NULL;
	return 0;
}

static void test_add_lookup_at_edges(void **state)
{
	struct dev d[2] = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x100, 0x100, recv, false, &d[0]), 0);
	assert_int_equal(range_bus_add(rb, 0x0, 0x10, recv, false, &d[1]), 0);
	assert_int_equal(range_bus_count(rb), 2);
	assert_ptr_equal(who(0x100, d, 2), &d[0]);
	assert_ptr_equal(who(0x1ff, d, 2), &d[0]);
	assert_ptr_equal(who(0x180, d, 2), &d[0]);
	assert_null(who(0xff, d, 2));
	assert_null(who(0x200, d, 2));
	assert_ptr_equal(who(0x0, d, 2), &d[1]);
	assert_ptr_equal(who(0xf, d, 2), &d[1]);
	assert_null(who(0x10, d, 2));
	assert_null(who(UINT64_MAX, d, 2));
}

static void test_sync_reply_and_absolute_address(void **state)
{
	struct dev d = { .write_back = true };
	struct msg m = { .value = 1 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x3f8, 8, recv, false, &d), 0);
	assert_true(range_bus_send(rb, 0x3fd, &m));
	assert_int_equal(m.value, 0x3fd);
	assert_int_equal(d.last_addr, 0x3fd);
}

static void test_overlaps_rejected_adjacent_allowed(void **state)
{
	struct dev d = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x100, 0x100, recv, false, &d), 0);
	assert_int_equal(range_bus_add(rb, 0x100, 0x100, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0x1ff, 1, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0x1ff, 0x10, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0xff, 2, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0x150, 4, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0x0, 0x1000, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0x0, UINT64_MAX, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_count(rb), 1);
	/* Touching edges on both sides are fine. */
	assert_int_equal(range_bus_add(rb, 0x200, 0x10, recv, false, &d), 0);
	assert_int_equal(range_bus_add(rb, 0xf0, 0x10, recv, false, &d), 0);
	/* Now a one-byte hole is left at 0xef and none between the three. */
	assert_int_equal(range_bus_add(rb, 0xef, 2, recv, false, &d), -EEXIST);
	assert_int_equal(range_bus_add(rb, 0xef, 1, recv, false, &d), 0);
	assert_int_equal(range_bus_count(rb), 4);
}

static void test_empty_and_wrapping_rejected(void **state)
{
	struct dev d = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x100, 0, recv, false, &d), -EINVAL);
	assert_int_equal(range_bus_add(rb, UINT64_MAX, 2, recv, false, &d), -EINVAL);
	assert_int_equal(range_bus_add(rb, 2, UINT64_MAX, recv, false, &d), -EINVAL);
	assert_int_equal(range_bus_add(rb, UINT64_MAX - 0xf, 0x11, recv, false, &d), -EINVAL);
	assert_int_equal(range_bus_count(rb), 0);
}

static void test_range_ending_at_top_of_address_space(void **state)
{
	struct dev d[2] = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, UINT64_MAX - 0xf, 0x10, recv, false, &d[0]), 0);
	assert_ptr_equal(who(UINT64_MAX, d, 2), &d[0]);
	assert_ptr_equal(who(UINT64_MAX - 0xf, d, 2), &d[0]);
	assert_null(who(UINT64_MAX - 0x10, d, 2));
	assert_int_equal(range_bus_add(rb, UINT64_MAX, 1, recv, false, &d[1]), -EEXIST);
	/* [1, 2^64 - 1] is the largest range there is. */
	assert_int_equal(range_bus_remove(rb, UINT64_MAX - 0xf), 0);
	assert_int_equal(range_bus_add(rb, 1, UINT64_MAX, recv, false, &d[1]), 0);
	assert_ptr_equal(who(UINT64_MAX, d, 2), &d[1]);
	assert_ptr_equal(who(1, d, 2), &d[1]);
	assert_null(who(0, d, 2));
}

static void test_remove(void **state)
{
	struct dev d[2] = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x1000, 0x100, recv, false, &d[0]), 0);
	assert_int_equal(range_bus_add(rb, 0x2000, 0x100, recv, false, &d[1]), 0);
	assert_int_equal(range_bus_remove(rb, 0x1080), -ENOENT);  /* not a base */
	assert_int_equal(range_bus_remove(rb, 0x3000), -ENOENT);
	assert_int_equal(range_bus_remove(rb, 0x1000), 0);
	assert_int_equal(range_bus_remove(rb, 0x1000), -ENOENT);
	assert_int_equal(range_bus_count(rb), 1);
	assert_null(who(0x1000, d, 2));
	assert_ptr_equal(who(0x2000, d, 2), &d[1]);
	/* The space is free again. */
	assert_int_equal(range_bus_add(rb, 0x1000, 0x1000, recv, false, &d[0]), 0);
	assert_ptr_equal(who(0x1fff, d, 2), &d[0]);
}

static void test_move(void **state)
{
	struct dev d[2] = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x1000, 0x100, recv, false, &d[0]), 0);
	assert_int_equal(range_bus_add(rb, 0x2000, 0x100, recv, false, &d[1]), 0);
	assert_int_equal(range_bus_move(rb, 0x1000, 0x5000), 0);
	assert_null(who(0x1000, d, 2));
	assert_ptr_equal(who(0x5000, d, 2), &d[0]);
	assert_ptr_equal(who(0x50ff, d, 2), &d[0]);
	assert_null(who(0x5100, d, 2));
	assert_int_equal(range_bus_count(rb), 2);
	/* Onto its own old place, shifted by one: only others count. */
	assert_int_equal(range_bus_move(rb, 0x5000, 0x5001), 0);
	assert_null(who(0x5000, d, 2));
	assert_ptr_equal(who(0x5100, d, 2), &d[0]);
	/* A failed move leaves the old mapping working. */
	assert_int_equal(range_bus_move(rb, 0x5001, 0x1f01), -EEXIST);
	assert_int_equal(range_bus_move(rb, 0x5001, 0x20ff), -EEXIST);
	assert_int_equal(range_bus_move(rb, 0x5001, UINT64_MAX - 0x10), -EINVAL);
	assert_int_equal(range_bus_move(rb, 0x5000, 0x9000), -ENOENT);
	assert_ptr_equal(who(0x5001, d, 2), &d[0]);
	assert_ptr_equal(who(0x5100, d, 2), &d[0]);
	assert_ptr_equal(who(0x2000, d, 2), &d[1]);
	assert_int_equal(range_bus_count(rb), 2);
	/* Adjacent is fine, and so is the very top. */
	assert_int_equal(range_bus_move(rb, 0x5001, 0x1f00), 0);
	assert_ptr_equal(who(0x1fff, d, 2), &d[0]);
	assert_int_equal(range_bus_move(rb, 0x1f00, UINT64_MAX - 0xff), 0);
	assert_ptr_equal(who(UINT64_MAX, d, 2), &d[0]);
}

static void test_unhandled_address_returns_false(void **state)
{
	struct dev d = { 0 };
	struct msg m = { 0 };

	(void)state;
	assert_false(range_bus_send(rb, 0x10, &m));
	assert_false(range_bus_send_async(rb, 0x10, &m));
	assert_int_equal(range_bus_add(rb, 0x20, 1, recv, true, &d), 0);
	assert_false(range_bus_send(rb, 0x21, &m));
	assert_true(range_bus_send(rb, 0x20, &m));
	assert_int_equal(atomic_load(&range_bus_stats(rb)->sent), 4);
	assert_int_equal(atomic_load(&range_bus_stats(rb)->unhandled), 3);
}

/* A thousand ranges in shuffled order; every edge and every gap checked. */
#define MANY 1000

static void test_many_ranges(void **state)
{
	static struct dev d[MANY];
	unsigned order[MANY];
	uint32_t seed = 12345;

	(void)state;
	memset(d, 0, sizeof(d));
	for (unsigned i = 0; i < MANY; i++)
		order[i] = i;
	for (unsigned i = MANY - 1; i > 0; i--) {
		unsigned j, t;

		seed = seed * 1103515245u + 12345u;
		j = (seed >> 8) % (i + 1);
		t = order[i], order[i] = order[j], order[j] = t;
	}
	/* Range i: [i * 64, i * 64 + 31] + 1 MiB, with a 32-byte gap after it. */
	for (unsigned k = 0; k < MANY; k++) {
		unsigned i = order[k];

		assert_int_equal(range_bus_add(rb, 0x100000 + i * 64ull, 32, recv, false, &d[i]), 0);
	}
	assert_int_equal(range_bus_count(rb), MANY);
	for (unsigned i = 0; i < MANY; i++) {
		uint64_t base = 0x100000 + i * 64ull;
		struct msg m = { 0 };

		d[i].calls = 0;
		assert_true(range_bus_send(rb, base, &m));
		assert_true(range_bus_send(rb, base + 31, &m));
		assert_false(range_bus_send(rb, base + 32, &m));
		assert_false(range_bus_send(rb, base + 63, &m));
		assert_int_equal(d[i].calls, 2);
		assert_int_equal(d[i].last_addr, base + 31);
	}
	assert_false(range_bus_send(rb, 0xfffff, &(struct msg){ 0 }));
	/* Remove the odd ones: the even ones still answer, the odd ones not. */
	for (unsigned i = 1; i < MANY; i += 2)
		assert_int_equal(range_bus_remove(rb, 0x100000 + i * 64ull), 0);
	assert_int_equal(range_bus_count(rb), MANY / 2);
	for (unsigned i = 0; i < MANY; i++) {
		struct msg m = { 0 };

		assert_int_equal(range_bus_send(rb, 0x100000 + i * 64ull + 16, &m), i % 2 == 0);
	}
}

/* ---- Claimed and serialized ranges ------------------------------------- */

static void test_no_serializer_runs_inline(void **state)
{
	struct dev d = { 0 };
	struct msg m = { 0 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x60, 1, recv, false, &d), 0);
	assert_true(range_bus_send(rb, 0x60, &m));
	assert_true(range_bus_send_async(rb, 0x60, &m));
	assert_int_equal(d.calls, 2);
	assert_true(pthread_equal(d.thread, pthread_self()));
}

static void test_claimed_and_serialized_threads(void **state)
{
	struct iothread *it = iothread_start();
	struct dev claimed = { .write_back = true }, serialized = { .write_back = true };
	struct msg m = { 0 };

	(void)state;
	assert_non_null(it);
	range_bus_set_serializer(rb, iothread_serializer(it));
	assert_int_equal(range_bus_add(rb, 0x70, 2, recv, true, &claimed), 0);
	assert_int_equal(range_bus_add(rb, 0x72, 2, recv, false, &serialized), 0);

	assert_true(range_bus_send(rb, 0x71, &m));
	assert_int_equal(m.value, 0x71);
	assert_true(pthread_equal(claimed.thread, pthread_self()));
	assert_false(claimed.on_iothread);

	assert_true(range_bus_send(rb, 0x73, &m));
	assert_int_equal(m.value, 0x73);
	assert_true(serialized.on_iothread);
	assert_false(pthread_equal(serialized.thread, pthread_self()));

	range_bus_set_serializer(rb, NULL);
	iothread_stop(it);
	assert_int_equal(atomic_load(&range_bus_stats(rb)->claimed), 1);
	assert_int_equal(atomic_load(&range_bus_stats(rb)->sync), 1);
}

/* The caller may reuse its buffer at once; the receiver sees the original. */
static _Atomic uint64_t seen_value;
static bool recv_blocking_value(void *opaque, uint64_t addr, void *m)
{
	(void)addr;
	/* First message: hold the I/O thread until the caller overwrote its buffer. */
	while (opaque && !atomic_load((_Atomic bool *)opaque))
		;
	atomic_store(&seen_value, ((struct msg *)m)->value);
	return true;
}

static void test_async_copies_message_for_iothread(void **state)
{
	struct iothread *it = iothread_start();
	_Atomic bool overwritten = false;
	struct msg m = { .value = 42 };

	(void)state;
	assert_non_null(it);
	range_bus_set_serializer(rb, iothread_serializer(it));
	assert_int_equal(range_bus_add(rb, 0x80, 1, recv_blocking_value, false, &overwritten), 0);
	assert_true(range_bus_send_async(rb, 0x80, &m));
	m.value = 7;
	atomic_store(&overwritten, true);
	range_bus_set_serializer(rb, NULL);
	iothread_stop(it);       /* runs what is queued */
	assert_int_equal(atomic_load(&seen_value), 42);
}

/*
 * An asynchronous send takes a const message: receivers write results into
 * the message they get, so they must get a copy, whoever runs them.
 */
static void test_async_never_writes_callers_message(void **state)
{
	struct dev claimed = { .write_back = true }, plain = { .write_back = true };
	struct msg m = { .value = 5 };

	(void)state;
	assert_int_equal(range_bus_add(rb, 0x90, 1, recv, true, &claimed), 0);
	assert_int_equal(range_bus_add(rb, 0x91, 1, recv, false, &plain), 0);
	assert_true(range_bus_send_async(rb, 0x90, &m));
	assert_int_equal(claimed.calls, 1);
	assert_int_equal(m.value, 5);
	assert_true(range_bus_send_async(rb, 0x91, &m));
	assert_int_equal(plain.calls, 1);
	assert_int_equal(m.value, 5);
}

/* ---- Updates racing senders -------------------------------------------- */

#define READERS 3
#define STABLE 8
#define MOBILE_LEN 0x10

static struct dev stable[STABLE];
static struct dev mobile;
static _Atomic unsigned misrouted, sends_done;
static _Atomic bool updating;

/* Where the mobile range may be: 0x10000 + k * 0x100, k in 0..3. */
static bool mobile_may_answer(uint64_t addr)
{
	return addr >= 0x10000 && addr < 0x10400 && (addr & 0xff) < MOBILE_LEN;
}

static bool recv_checked(void *opaque, uint64_t addr, void *m)
{
	struct dev *d = opaque;

	(void)m;
	if (d == &mobile ? !mobile_may_answer(addr) : (addr < d->base || addr > d->last))
		atomic_fetch_add(&misrouted, 1);
	return true;
}

static void *reader(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	bus_thread_enter();
	for (unsigned i = 0; atomic_load(&updating); i++) {
		unsigned s = (i + id) % STABLE;
		struct msg m = { 0 };

		/* A stable range answers always, and only its own device. */
		if (!range_bus_send(rb, stable[s].base + i % 0x20, &m))
			atomic_fetch_add(&misrouted, 1);
		/* The mobile one answers or not, but only where it may be. */
		range_bus_send(rb, 0x10000 + (i % 4) * 0x100 + i % MOBILE_LEN, &m);
		atomic_fetch_add(&sends_done, 1);
	}
	bus_thread_exit();
	return NULL;
}

static void churn_ranges(unsigned rounds)
{
	for (unsigned i = 0; i < rounds; i++) {
		uint64_t at = 0x10000 + (i % 4) * 0x100, next = 0x10000 + ((i + 1) % 4) * 0x100;
		unsigned n;

		assert_int_equal(range_bus_add(rb, at, MOBILE_LEN, recv_checked, true, &mobile), 0);
		assert_int_equal(range_bus_move(rb, at, next), 0);
		/* Moving onto a stable range fails and changes nothing. */
		assert_int_equal(range_bus_move(rb, next, stable[i % STABLE].base + 4), -EEXIST);
		n = range_bus_count(rb);
		assert_int_equal(n, STABLE + 1);
		assert_int_equal(range_bus_remove(rb, next), 0);
	}
}

static void test_updates_while_sending(void **state)
{
	pthread_t t[READERS];

	(void)state;
	atomic_store(&misrouted, 0);
	atomic_store(&sends_done, 0);
	atomic_store(&updating, true);
	for (unsigned s = 0; s < STABLE; s++) {
		stable[s] = (struct dev){ .base = 0x1000 + s * 0x1000, .last = 0x1000 + s * 0x1000 + 0x1f };
		assert_int_equal(range_bus_add(rb, stable[s].base, 0x20, recv_checked, true, &stable[s]), 0);
	}
	for (unsigned i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, (void *)(uintptr_t)i), 0);
	/* Churn until the readers have made real progress, at least 2000 rounds. */
	churn_ranges(2000);
	while (atomic_load(&sends_done) < 20000)
		churn_ranges(10);
	atomic_store(&updating, false);
	for (unsigned i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&misrouted), 0);
	assert_int_equal(range_bus_count(rb), STABLE);
}

/* ---- A BAR remap from inside a device callback --------------------------
 * A PCI config write lands in a port receiver, which moves an MMIO range.
 * The move must not wait for the read-side section it is called from.  Run
 * in a child so that a deadlock fails the test instead of hanging it.
 */
static struct range_bus *mmio;

static bool recv_remaps(void *opaque, uint64_t addr, void *m)
{
	(void)opaque;
	(void)addr;
	return range_bus_move(mmio, 0xe0000000, ((struct msg *)m)->value) == 0;
}

static void test_move_from_inside_receiver(void **state)
{
	struct dev bar = { 0 };
	pid_t pid;
	int status;

	(void)state;
	mmio = range_bus_create("mmio", sizeof(struct msg));
	assert_non_null(mmio);
	assert_int_equal(range_bus_add(mmio, 0xe0000000, 0x1000, recv, false, &bar), 0);
	assert_int_equal(range_bus_add(rb, 0xcfc, 4, recv_remaps, false, NULL), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct msg m = { .value = 0xf0000000 };

		alarm(20);
		_exit(range_bus_send(rb, 0xcfc, &m) &&
		      range_bus_send(mmio, 0xf0000010, &m) ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("range_bus_move() from a receiver: child killed by signal %d "
			 "(SIGALRM = deadlock)", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	range_bus_destroy(mmio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_lookup_at_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_reply_and_absolute_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overlaps_rejected_adjacent_allowed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_wrapping_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_ending_at_top_of_address_space,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unhandled_address_returns_false, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_serializer_runs_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claimed_and_serialized_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_copies_message_for_iothread,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_never_writes_callers_message,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_updates_while_sending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_from_inside_receiver, setup, teardown),
	};
	int failed;

	bus_thread_enter();
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	bus_thread_exit();
	return failed;
}
