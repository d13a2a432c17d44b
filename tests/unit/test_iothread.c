/*
 * The two I/O modes under load.  Eight producer threads send sync and
 * async messages to an unclaimed receiver that records (producer, seq):
 * every message must be handled exactly once, in each producer's order,
 * on the I/O thread (IO_MODE_THREAD) or on the producer's own thread with
 * no two receivers at once (IO_MODE_LOCK), and every synchronous reply
 * must reach the caller that asked.  Both the plain bus and the port bus
 * are driven, since each has its own send path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bus/message.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/vm.h"

#define PRODUCERS 8
#define PER_PRODUCER 2000
#define DRAIN PRODUCERS          /* the main thread's producer index */
#define PORT0 0x100

struct pmsg {
	uint32_t producer;
	uint32_t seq;
	uint64_t reply;
};

static struct vm vm;
static struct bus *bus;          /* struct pmsg, the VM's serializer */

/* Written by receivers only, which never run two at once. */
static struct {
	uint32_t next;               /* the seq expected next */
	unsigned seen;
} track[PRODUCERS + 1];
static pthread_t producer_tid[PRODUCERS + 1];
static _Atomic unsigned wrong_thread, out_of_order, wrong_reply, overlap, inside;

static uint64_t reply_for(uint32_t producer, uint32_t seq)
{
	return ((uint64_t)producer << 32 | seq) * 0x9e3779b97f4a7c15ull;
}

/* Checks common to both buses; returns the reply to write back. */
static uint64_t record(uint32_t p, uint32_t seq)
{
	if (atomic_fetch_add(&inside, 1) != 0)
		atomic_fetch_add(&overlap, 1);
	if (vm.io_mode == IO_MODE_THREAD ? !iothread_is_current()
	    : !pthread_equal(pthread_self(), producer_tid[p]) || !global_lock_held())
		atomic_fetch_add(&wrong_thread, 1);
	if (p > DRAIN || seq != track[p].next) {
		atomic_fetch_add(&out_of_order, 1);
	} else {
		track[p].next = seq + 1;
		track[p].seen++;
	}
	for (volatile int i = 0; i < 50; i++)   /* widen the overlap window */
		;
	atomic_fetch_sub(&inside, 1);
	return reply_for(p, seq);
}

static bool recv_plain(void *dev, void *m)
{
	struct pmsg *msg = m;

	(void)dev;
	msg->reply = record(msg->producer, msg->seq);
	return true;
}

static bool recv_port(void *dev, uint64_t port, void *m)
{
	struct msg_pio *msg = m;

	(void)dev;
	msg->value = (uint32_t)record((uint32_t)(port - PORT0), msg->value);
	return true;
}

static bool send_one(bool pio, uint32_t p, uint32_t seq, bool sync)
{
	if (pio) {
		struct msg_pio m = { .port = (uint16_t)(PORT0 + p), .size = 4, .value = seq };

		if (!sync)
			return range_bus_send_async(vm.bus.pio, m.port, &m);
		if (!range_bus_send(vm.bus.pio, m.port, &m))
			return false;
		if (m.value != (uint32_t)reply_for(p, seq))
			atomic_fetch_add(&wrong_reply, 1);
		return true;
	} else {
		struct pmsg m = { .producer = p, .seq = seq };

		if (!sync)
			return bus_send_async(bus, &m, BUS_FIFO);
		if (!bus_send(bus, &m, BUS_FIFO))
			return false;
		if (m.reply != reply_for(p, seq))
			atomic_fetch_add(&wrong_reply, 1);
		return true;
	}
}

struct producer {
	uint32_t id;
	bool pio;
	unsigned failed;
};

static void *producer_main(void *arg)
{
	struct producer *pr = arg;

	bus_thread_enter();
	producer_tid[pr->id] = pthread_self();
	for (uint32_t seq = 0; seq < PER_PRODUCER; seq++)
		/* Runs of sync and async sends, so async ones queue up. */
		if (!send_one(pr->pio, pr->id, seq, (seq / 16) % 2 == 0))
			pr->failed++;
	bus_thread_exit();
	return NULL;
}

static int setup_mode(enum io_mode mode)
{
	memset(&vm, 0, sizeof(vm));
	memset(track, 0, sizeof(track));
	atomic_store(&wrong_thread, 0);
	atomic_store(&out_of_order, 0);
	atomic_store(&wrong_reply, 0);
	atomic_store(&overlap, 0);
	atomic_store(&inside, 0);
	assert_int_equal(vm_init_buses(&vm, mode), 0);
	bus = bus_create("pmsg", sizeof(struct pmsg));
	assert_non_null(bus);
	bus_set_serializer(bus, mode == IO_MODE_THREAD ? iothread_serializer(vm.iothread)
			   : global_lock_serializer());
	producer_tid[DRAIN] = pthread_self();
	return 0;
}

static int setup_thread(void **state) { (void)state; return setup_mode(IO_MODE_THREAD); }
static int setup_lock(void **state) { (void)state; return setup_mode(IO_MODE_LOCK); }

static int teardown(void **state)
{
	(void)state;
	vm_fini_buses(&vm);      /* stops the I/O thread before the bus goes */
	bus_destroy(bus);
	bus = NULL;
	return 0;
}

static void run_producers(bool pio)
{
	struct producer pr[PRODUCERS];
	pthread_t t[PRODUCERS];
	struct bus_stats *s = pio ? range_bus_stats(vm.bus.pio) : bus_stats(bus);
	uint64_t nsync = 0;

	if (pio)
		for (uint32_t p = 0; p <= DRAIN; p++)
			assert_int_equal(range_bus_add(vm.bus.pio, PORT0 + p, 1, recv_port,
						       false, NULL), 0);
	else
		assert_int_equal(bus_attach(bus, recv_plain, NULL, NULL), 0);
	for (uint32_t p = 0; p < PRODUCERS; p++) {
		pr[p] = (struct producer){ .id = p, .pio = pio };
		assert_int_equal(pthread_create(&t[p], NULL, producer_main, &pr[p]), 0);
	}
	for (uint32_t p = 0; p < PRODUCERS; p++) {
		pthread_join(t[p], NULL);
		assert_int_equal(pr[p].failed, 0);
	}
	/* A synchronous send queues behind everything sent before it. */
	assert_true(send_one(pio, DRAIN, 0, true));

	for (uint32_t p = 0; p < PRODUCERS; p++) {
		assert_int_equal(track[p].seen, PER_PRODUCER);
		assert_int_equal(track[p].next, PER_PRODUCER);
	}
	assert_int_equal(track[DRAIN].seen, 1);
	assert_int_equal(atomic_load(&out_of_order), 0);
	assert_int_equal(atomic_load(&wrong_thread), 0);
	assert_int_equal(atomic_load(&wrong_reply), 0);
	assert_int_equal(atomic_load(&overlap), 0);

	for (uint32_t seq = 0; seq < PER_PRODUCER; seq++)
		nsync += (seq / 16) % 2 == 0;
	nsync = nsync * PRODUCERS + 1;
	assert_int_equal(atomic_load(&s->sent), PRODUCERS * PER_PRODUCER + 1);
	assert_int_equal(atomic_load(&s->sync), nsync);
	assert_int_equal(atomic_load(&s->async), PRODUCERS * PER_PRODUCER + 1 - nsync);
	assert_int_equal(atomic_load(&s->claimed), 0);
	assert_int_equal(atomic_load(&s->unhandled), 0);
	if (vm.io_mode == IO_MODE_THREAD) {
		assert_true(atomic_load(&s->max_depth) >= 1);
		assert_int_equal(iothread_queue_depth(vm.iothread), 0);
	}
}


/* ---- A receiver that sends: inline on the serializing thread ----------- */

static struct bus *inner;
static _Atomic unsigned inner_calls;
static bool inner_ok;

static bool recv_inner(void *dev, void *m)
{
	struct pmsg *msg = m;

	(void)dev;
	atomic_fetch_add(&inner_calls, 1);
	msg->reply = msg->seq + 1;
	return vm.io_mode == IO_MODE_THREAD ? iothread_is_current() : global_lock_held();
}

static bool recv_outer(void *dev, void *m)
{
	struct pmsg *msg = m, sub = { .seq = msg->seq };
	unsigned before = atomic_load(&inner_calls);

	(void)dev;
	/* Synchronous: must not wait for the thread it runs on. */
	inner_ok = bus_send(inner, &sub, BUS_EARLY_OUT) && sub.reply == msg->seq + 1;
	/* Asynchronous: runs before the send returns, the queue is not ours. */
	inner_ok &= bus_send_async(inner, &sub, BUS_EARLY_OUT);
	inner_ok &= atomic_load(&inner_calls) == before + 2;
	msg->reply = 1;
	return true;
}

static void test_nested_send_runs_inline(void **state)
{
	const struct bus_serializer *ser = vm.io_mode == IO_MODE_THREAD ?
		iothread_serializer(vm.iothread) : global_lock_serializer();

	(void)state;
	atomic_store(&inner_calls, 0);
	inner = bus_create("inner", sizeof(struct pmsg));
	assert_non_null(inner);
	bus_set_serializer(inner, ser);
	assert_int_equal(bus_attach(inner, recv_inner, NULL, NULL), 0);
	assert_int_equal(bus_attach(bus, recv_outer, NULL, NULL), 0);
	for (uint32_t i = 0; i < 10; i++) {
		struct pmsg m = { .seq = i };

		inner_ok = false;
		assert_true(bus_send(bus, &m, BUS_LIFO));
		assert_int_equal(m.reply, 1);
		assert_true(inner_ok);
	}
	/* The async one from the outer receiver also ran, and synchronously. */
	assert_int_equal(atomic_load(&inner_calls), 20);
	bus_destroy(inner);
}

/* ---- Queue depth and stopping with work queued ------------------------- */

#define QUEUED 32

static _Atomic bool gate_entered, gate_open, stop_called;
static unsigned after_gate;
static uint32_t last_seq;
static bool gate_order_ok;

/* seq 0 holds the I/O thread until the test opens the gate. */
static bool recv_gated(void *dev, void *m)
{
	struct pmsg *msg = m;

	(void)dev;
	if (msg->seq == 0) {
		atomic_store(&gate_entered, true);
		while (!atomic_load(&gate_open))
			sched_yield();
		return true;
	}
	if (msg->seq != last_seq + 1)
		gate_order_ok = false;
	last_seq = msg->seq;
	after_gate++;
	return true;
}

static struct iothread *hold_iothread(struct bus *b)
{
	struct iothread *it = iothread_start();
	struct pmsg gate = { .seq = 0 };

	assert_non_null(it);
	atomic_store(&gate_entered, false);
	atomic_store(&gate_open, false);
	atomic_store(&stop_called, false);
	after_gate = last_seq = 0;
	gate_order_ok = true;
	bus_set_serializer(b, iothread_serializer(it));
	assert_int_equal(bus_attach(b, recv_gated, NULL, NULL), 0);
	assert_true(bus_send_async(b, &gate, BUS_LIFO));
	while (!atomic_load(&gate_entered))
		sched_yield();
	for (uint32_t i = 1; i <= QUEUED; i++) {
		struct pmsg m = { .seq = i };

		assert_true(bus_send_async(b, &m, BUS_LIFO));
	}
	return it;
}

static void test_queue_depth(void **state)
{
	struct bus *b = bus_create("gated", sizeof(struct pmsg));
	struct iothread *it = hold_iothread(b);
	struct pmsg m = { .seq = QUEUED + 1 };

	(void)state;
	assert_int_equal(iothread_queue_depth(it), QUEUED);
	assert_int_equal(atomic_load(&bus_stats(b)->max_depth), QUEUED);
	atomic_store(&gate_open, true);
	assert_true(bus_send(b, &m, BUS_LIFO));    /* behind all of them */
	assert_int_equal(iothread_queue_depth(it), 0);
	assert_int_equal(after_gate, QUEUED + 1);
	assert_true(gate_order_ok);
	bus_set_serializer(b, NULL);
	iothread_stop(it);
	bus_destroy(b);
}

static void *stopper(void *arg)
{
	atomic_store(&stop_called, true);
	iothread_stop(arg);
	return NULL;
}

static void test_stop_runs_what_is_queued(void **state)
{
	struct bus *b = bus_create("gated", sizeof(struct pmsg));
	struct iothread *it = hold_iothread(b);
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, stopper, it), 0);
	while (!atomic_load(&stop_called))
		sched_yield();
	usleep(10000);   /* likely inside iothread_stop by now; either way is correct */
	atomic_store(&gate_open, true);
	pthread_join(t, NULL);
	assert_int_equal(after_gate, QUEUED);
	assert_true(gate_order_ok);
	bus_set_serializer(b, NULL);
	bus_destroy(b);
}

/* ---- A fresh VM on the same thread ------------------------------------- */

/*
 * Unit tests and a VMM restarting its machine call vm_init_buses more than
 * once on one thread, sometimes on a thread already registered for its own
 * sends; liburcu aborts on a second registration of a thread, so the
 * registration must nest.  (A regression kills this binary.)
 */
static void test_vm_init_twice_on_one_thread(void **state)
{
	static struct vm a, b;
	struct pmsg m = { 0 };
	struct bus *plain = bus_create("plain", sizeof(struct pmsg));

	(void)state;
	assert_int_equal(vm_init_buses(&a, IO_MODE_THREAD), 0);
	vm_fini_buses(&a);
	assert_int_equal(vm_init_buses(&b, IO_MODE_LOCK), 0);
	vm_fini_buses(&b);
	bus_thread_enter();
	assert_int_equal(vm_init_buses(&a, IO_MODE_THREAD), 0);
	vm_fini_buses(&a);
	/* Still registered: a send here must work. */
	assert_false(bus_send(plain, &m, BUS_LIFO));
	bus_thread_exit();
	bus_destroy(plain);
}

/* The gated tests run their own I/O thread, outside any VM. */
static int setup_plain(void **state) { (void)state; bus_thread_enter(); return 0; }
static int teardown_plain(void **state) { (void)state; bus_thread_exit(); return 0; }

static void test_thread_mode_plain_bus(void **state) { (void)state; run_producers(false); }
static void test_thread_mode_port_bus(void **state) { (void)state; run_producers(true); }
static void test_lock_mode_plain_bus(void **state) { (void)state; run_producers(false); }
static void test_lock_mode_port_bus(void **state) { (void)state; run_producers(true); }
static void test_thread_mode_nested_send(void **state) { test_nested_send_runs_inline(state); }
static void test_lock_mode_nested_send(void **state) { test_nested_send_runs_inline(state); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_thread_mode_plain_bus, setup_thread, teardown),
		cmocka_unit_test_setup_teardown(test_thread_mode_port_bus, setup_thread, teardown),
		cmocka_unit_test_setup_teardown(test_lock_mode_plain_bus, setup_lock, teardown),
		cmocka_unit_test_setup_teardown(test_lock_mode_port_bus, setup_lock, teardown),
		cmocka_unit_test_setup_teardown(test_thread_mode_nested_send, setup_thread, teardown),
		cmocka_unit_test_setup_teardown(test_lock_mode_nested_send, setup_lock, teardown),
		cmocka_unit_test_setup_teardown(test_queue_depth, setup_plain, teardown_plain),
		cmocka_unit_test_setup_teardown(test_stop_runs_what_is_queued,
						setup_plain, teardown_plain),
		cmocka_unit_test(test_vm_init_twice_on_one_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
