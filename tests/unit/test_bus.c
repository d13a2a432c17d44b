/*
 * The typed bus: the four send modes, per-receiver claims, the serializer
 * hand-off, asynchronous copies, posted completions, counters, and
 * attach/detach racing senders.
 *
 * Seoul's DBus had two bugs this design must not repeat: its FIFO send
 * returned 0 whatever happened, and its round robin called receiver i's
 * function with device i+start.  Every receiver here has its own callback
 * and its own device, and the log records both, so a mispairing shows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bus/bus.h"
#include "bus/call.h"
#include "bus/completion.h"
#include "vmm/iothread.h"

struct msg {
	uint32_t value;
	uint32_t reply;
};

#define NRECV 4

struct dev {
	int id;
	bool handles;          /* what the callback returns */
	uint32_t claim_mask;   /* claims messages whose value has one of these bits */
	bool writes_reply;     /* stores value + id into msg->reply */
	pthread_t last_thread;
	bool last_on_iothread;
	bool last_serialized;
	uint32_t last_value;
	unsigned calls;
};

struct entry {
	int fn;                /* which callback ran */
	int dev;               /* with which device */
	bool serialized;       /* inside the test serializer */
};

static struct dev devs[NRECV];
static struct entry log_[64];
static unsigned nlog;
static __thread bool in_serializer;

static bool log_call(int fn, void *opaque, void *m)
{
	struct dev *d = opaque;
	struct msg *msg = m;

	if (nlog < sizeof(log_) / sizeof(log_[0]))
		log_[nlog++] = (struct entry){ .fn = fn, .dev = d->id, .serialized = in_serializer };
	d->calls++;
	d->last_thread = pthread_self();
	d->last_on_iothread = iothread_is_current();
	d->last_serialized = in_serializer;
	d->last_value = msg->value;
	if (d->writes_reply)
		msg->reply = msg->value + (uint32_t)d->id;
	return d->handles;
}

#define RECEIVER(n) \
	static bool recv##n(void *dev, void *msg) { return log_call(n, dev, msg); }
RECEIVER(0)
RECEIVER(1)
RECEIVER(2)
RECEIVER(3)
static const bus_receive_fn recv_fn[NRECV] = { recv0, recv1, recv2, recv3 };

static bool claim_by_mask(void *opaque, const void *m)
{
	const struct dev *d = opaque;
	const struct msg *msg = m;

	return (msg->value & d->claim_mask) != 0;
}

static struct bus *bus;

static int setup(void **state)
{
	(void)state;
	memset(devs, 0, sizeof(devs));
	for (int i = 0; i < NRECV; i++)
		devs[i].id = 100 + i;     /* never equal to a callback index */
	nlog = 0;
	bus = bus_create("test", sizeof(struct msg));
	assert_non_null(bus);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bus_destroy(bus);
	bus = NULL;
	return 0;
}

/* Attach receivers 0..n-1 in order, callback i with device i. */
static void attach_n(unsigned n, bus_claim_fn claim)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(bus_attach(bus, recv_fn[i], claim, &devs[i]), 0);
	assert_int_equal(bus_receiver_count(bus), n);
}

/* The log must name exactly these receivers, each callback with its device. */
static void expect_log(const int *order, unsigned n)
{
	assert_int_equal(nlog, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(log_[i].fn, order[i]);
		assert_int_equal(log_[i].dev, devs[order[i]].id);
	}
	nlog = 0;
}

static bool send_mode(enum bus_mode mode)
{
	struct msg m = { .value = 1 };

	return bus_send(bus, &m, mode);
}

/* ---- Send modes, no serializer ---------------------------------------- */

static void test_lifo_calls_all_newest_first(void **state)
{
	static const int order[] = { 3, 2, 1, 0 };

	(void)state;
	attach_n(4, NULL);
	assert_false(send_mode(BUS_LIFO));
	expect_log(order, 4);

	devs[2].handles = true;      /* a handler in the middle stops nothing */
	assert_true(send_mode(BUS_LIFO));
	expect_log(order, 4);

	devs[2].handles = false;
	devs[0].handles = true;      /* the last one called decides too */
	assert_true(send_mode(BUS_LIFO));
	expect_log(order, 4);
}

static void test_fifo_calls_all_oldest_first_and_reports_result(void **state)
{
	static const int order[] = { 0, 1, 2, 3 };

	(void)state;
	attach_n(4, NULL);
	assert_false(send_mode(BUS_FIFO));
	expect_log(order, 4);

	/* Seoul's send_fifo returned 0 here. */
	devs[3].handles = true;
	assert_true(send_mode(BUS_FIFO));
	expect_log(order, 4);

	devs[3].handles = false;
	devs[0].handles = true;
	assert_true(send_mode(BUS_FIFO));
	expect_log(order, 4);
}

static void test_early_out_stops_at_first_handler_in_lifo_order(void **state)
{
	static const int stop_at_2[] = { 3, 2 };
	static const int all[] = { 3, 2, 1, 0 };
	static const int stop_at_3[] = { 3 };

	(void)state;
	attach_n(4, NULL);
	devs[1].handles = true;
	devs[2].handles = true;
	assert_true(send_mode(BUS_EARLY_OUT));
	expect_log(stop_at_2, 2);

	devs[3].handles = true;
	assert_true(send_mode(BUS_EARLY_OUT));
	expect_log(stop_at_3, 1);

	for (int i = 0; i < NRECV; i++)      /* nobody: everyone is asked */
		devs[i].handles = false;
	assert_false(send_mode(BUS_EARLY_OUT));
	expect_log(all, 4);
}

static bool send_rr(unsigned *cursor)
{
	struct msg m = { .value = 7 };

	return bus_send_rr(bus, &m, cursor);
}

static void test_rr_starts_after_cursor_stops_and_moves_it(void **state)
{
	static const int first[] = { 0, 1 };
	static const int second[] = { 2, 3 };
	static const int wrapped[] = { 0, 1 };
	unsigned cursor = 3;

	(void)state;
	attach_n(4, NULL);
	devs[1].handles = true;
	devs[3].handles = true;

	assert_true(send_rr(&cursor));      /* after 3 comes 0 */
	expect_log(first, 2);
	assert_int_equal(cursor, 1);
	assert_true(send_rr(&cursor));
	expect_log(second, 2);
	assert_int_equal(cursor, 3);
	assert_true(send_rr(&cursor));      /* wraps round */
	expect_log(wrapped, 2);
	assert_int_equal(cursor, 1);
}

static void test_rr_wraps_and_pairs_callback_with_its_device(void **state)
{
	static const int from_2[] = { 3, 0, 1 };
	static const int nobody[] = { 2, 3, 0, 1 };
	unsigned cursor = 1;

	(void)state;
	attach_n(4, NULL);
	devs[1].handles = true;
	cursor = 2;
	assert_true(send_rr(&cursor));
	expect_log(from_2, 3);
	assert_int_equal(cursor, 1);

	/* Nobody handles it: all four asked once, cursor left alone. */
	devs[1].handles = false;
	assert_false(send_rr(&cursor));
	expect_log(nobody, 4);
	assert_int_equal(cursor, 1);
}

static void test_rr_distributes_over_handlers(void **state)
{
	unsigned cursor = 0;

	(void)state;
	attach_n(4, NULL);
	for (int i = 0; i < NRECV; i++)
		devs[i].handles = true;
	for (unsigned n = 0; n < 40; n++) {
		nlog = 0;
		assert_true(send_rr(&cursor));
		assert_int_equal(nlog, 1);
		assert_int_equal(log_[0].fn, (int)((n + 1) % 4));
		assert_int_equal(log_[0].dev, devs[(n + 1) % 4].id);
	}
	for (int i = 0; i < NRECV; i++)
		assert_int_equal(devs[i].calls, 10);
}

static void test_no_receivers_is_unhandled_in_every_mode(void **state)
{
	struct msg m = { 0 };
	unsigned cursor = 0;
	struct bus_completion done;

	(void)state;
	assert_false(bus_send(bus, &m, BUS_LIFO));
	assert_false(bus_send(bus, &m, BUS_FIFO));
	assert_false(bus_send(bus, &m, BUS_EARLY_OUT));
	assert_false(bus_send_rr(bus, &m, &cursor));
	assert_false(bus_send_async(bus, &m, BUS_LIFO));
	completion_init(&done);
	assert_false(bus_send_posted(bus, &m, BUS_FIFO, &done));
	assert_false(completion_wait(&done));
	assert_int_equal(atomic_load(&bus_stats(bus)->sent), 6);
	assert_int_equal(atomic_load(&bus_stats(bus)->unhandled), 6);
}

static void test_attach_detach(void **state)
{
	static const int after[] = { 2, 0 };

	(void)state;
	attach_n(3, NULL);
	assert_int_equal(bus_detach(bus, recv1, &devs[1]), 0);
	assert_int_equal(bus_detach(bus, recv1, &devs[1]), -ENOENT);
	assert_int_equal(bus_detach(bus, recv0, &devs[2]), -ENOENT);  /* wrong pair */
	assert_int_equal(bus_receiver_count(bus), 2);
	assert_false(send_mode(BUS_LIFO));
	expect_log(after, 2);
	assert_int_equal(devs[1].calls, 0);
}

static void test_sync_reply_reaches_sender(void **state)
{
	struct msg m = { .value = 40 };

	(void)state;
	attach_n(1, NULL);
	devs[0].handles = true;
	devs[0].writes_reply = true;
	assert_true(bus_send(bus, &m, BUS_EARLY_OUT));
	assert_int_equal(m.reply, 40 + devs[0].id);
}

/* ---- No serializer: everything on the sending thread ------------------- */

struct sender_args {
	bool async;
	bool result;
	pthread_t self;
};

static void *sender_thread(void *arg)
{
	struct sender_args *a = arg;
	struct msg m = { .value = 5 };

	bus_thread_enter();
	a->self = pthread_self();
	a->result = a->async ? bus_send_async(bus, &m, BUS_FIFO) : bus_send(bus, &m, BUS_FIFO);
	bus_thread_exit();
	return NULL;
}

static void check_inline(bool async)
{
	struct sender_args a = { .async = async };
	pthread_t t;

	devs[0].calls = devs[1].calls = 0;
	assert_int_equal(pthread_create(&t, NULL, sender_thread, &a), 0);
	pthread_join(t, NULL);
	assert_true(a.result);    /* async without serializer: the real result */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(devs[i].calls, 1);
		assert_true(pthread_equal(devs[i].last_thread, a.self));
	}
}

static void test_no_serializer_runs_inline_on_sender(void **state)
{
	(void)state;
	attach_n(2, NULL);
	devs[1].handles = true;
	check_inline(false);
	check_inline(true);
}

/* ---- A test serializer --------------------------------------------------
 * Runs synchronous calls at once (marking them), and keeps asynchronous
 * ones until the test runs them: that is where a missing copy shows.
 */
static struct bus_call *deferred[16];
static unsigned ndeferred, nsubmitted;

static bool test_submit(void *ctx, struct bus_call *call)
{
	bool handled;

	(void)ctx;
	nsubmitted++;
	if (!call->sync) {
		assert_true(ndeferred < 16);
		deferred[ndeferred++] = call;
		return true;
	}
	in_serializer = true;
	handled = bus_call_run(call);
	in_serializer = false;
	return handled;
}

static void run_deferred(void)
{
	in_serializer = true;
	for (unsigned i = 0; i < ndeferred; i++)
		bus_call_run(deferred[i]);
	in_serializer = false;
	ndeferred = 0;
}

static const struct bus_serializer test_serializer = { .name = "test", .submit = test_submit };

static int setup_serialized(void **state)
{
	setup(state);
	ndeferred = nsubmitted = 0;
	bus_set_serializer(bus, &test_serializer);
	return 0;
}

static int teardown_serialized(void **state)
{
	run_deferred();    /* frees what a failed test left */
	return teardown(state);
}

static void test_serializer_runs_every_unclaimed_receiver(void **state)
{
	static const int order[] = { 3, 2, 1, 0 };

	(void)state;
	attach_n(4, NULL);
	devs[0].handles = true;
	assert_true(send_mode(BUS_LIFO));
	assert_int_equal(nsubmitted, 1);
	for (unsigned i = 0; i < 4; i++)
		assert_true(log_[i].serialized);
	expect_log(order, 4);

	devs[0].handles = false;
	assert_false(send_mode(BUS_FIFO));
	assert_int_equal(nsubmitted, 2);
}

static void test_claimed_receiver_skips_serializer_others_do_not(void **state)
{
	struct msg m = { .value = 1 };

	(void)state;
	assert_int_equal(bus_attach(bus, recv0, bus_claim_always, &devs[0]), 0);
	assert_int_equal(bus_attach(bus, recv1, NULL, &devs[1]), 0);
	assert_int_equal(bus_attach(bus, recv2, bus_claim_always, &devs[2]), 0);
	assert_false(bus_send(bus, &m, BUS_FIFO));
	assert_int_equal(nsubmitted, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(devs[i].calls, 1);
	assert_false(devs[0].last_serialized);
	assert_true(devs[1].last_serialized);
	assert_false(devs[2].last_serialized);
}

static void test_all_claimed_never_reaches_serializer(void **state)
{
	struct msg m = { .value = 1 };

	(void)state;
	attach_n(3, bus_claim_always);
	devs[1].handles = true;
	assert_true(bus_send(bus, &m, BUS_LIFO));
	assert_true(bus_send_async(bus, &m, BUS_FIFO));
	assert_int_equal(nsubmitted, 0);
	assert_int_equal(ndeferred, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(devs[i].calls, 2);
}

static void test_claimed_handler_stops_early_out_before_serializer(void **state)
{
	struct msg m = { .value = 1 };

	(void)state;
	assert_int_equal(bus_attach(bus, recv0, NULL, &devs[0]), 0);
	assert_int_equal(bus_attach(bus, recv1, bus_claim_always, &devs[1]), 0);
	devs[0].handles = true;
	devs[1].handles = true;
	assert_true(bus_send(bus, &m, BUS_EARLY_OUT));
	assert_int_equal(devs[1].calls, 1);
	assert_int_equal(devs[0].calls, 0);
	assert_int_equal(nsubmitted, 0);
}

/* The claim is per message: the same receiver claims odd values only. */
static void test_claim_is_per_message(void **state)
{
	struct msg odd = { .value = 1 }, even = { .value = 2 };

	(void)state;
	devs[0].claim_mask = 1;
	assert_int_equal(bus_attach(bus, recv0, claim_by_mask, &devs[0]), 0);
	assert_int_equal(bus_attach(bus, recv1, NULL, &devs[1]), 0);

	bus_send(bus, &odd, BUS_FIFO);
	assert_false(devs[0].last_serialized);
	assert_true(devs[1].last_serialized);
	bus_send(bus, &even, BUS_FIFO);
	assert_true(devs[0].last_serialized);
	assert_true(devs[1].last_serialized);
	bus_send(bus, &odd, BUS_FIFO);
	assert_false(devs[0].last_serialized);
	assert_int_equal(devs[0].calls, 3);
	assert_int_equal(devs[1].calls, 3);
	assert_int_equal(nsubmitted, 3);
}

/*
 * Receivers write results into the message.  A claim decided on the
 * message as sent must not be decided again on what a receiver wrote back:
 * receiver 0 claims value 1 and answers by writing value 2.  It must run
 * exactly once; receiver 1 (never claims) once, serialized.
 */
static bool recv_rewrites(void *opaque, void *m)
{
	struct msg *msg = m;

	log_call(0, opaque, m);
	msg->value = 2;
	return true;
}

static void test_claim_is_decided_once_per_receiver(void **state)
{
	struct msg m = { .value = 1 };

	(void)state;
	devs[0].claim_mask = 1;
	assert_int_equal(bus_attach(bus, recv_rewrites, claim_by_mask, &devs[0]), 0);
	assert_int_equal(bus_attach(bus, recv1, NULL, &devs[1]), 0);
	assert_true(bus_send(bus, &m, BUS_FIFO));
	assert_int_equal(devs[1].calls, 1);
	assert_true(devs[1].last_serialized);
	assert_int_equal(devs[0].calls, 1);
	assert_false(devs[0].last_serialized);
}

static void test_async_send_copies_message(void **state)
{
	struct msg m = { .value = 11 };

	(void)state;
	attach_n(2, NULL);
	devs[0].handles = true;
	devs[1].writes_reply = true;
	assert_true(bus_send_async(bus, &m, BUS_FIFO));
	assert_int_equal(ndeferred, 1);
	assert_ptr_not_equal(deferred[0]->msg, &m);
	assert_false(deferred[0]->sync);
	m.value = 99;                         /* the caller reuses its buffer */
	assert_true(bus_send_async(bus, &m, BUS_FIFO));
	m.value = 1234;
	assert_int_equal(devs[0].calls, 0);   /* nothing ran yet */
	run_deferred();
	assert_int_equal(devs[0].calls, 2);
	assert_int_equal(devs[1].calls, 2);
	assert_int_equal(log_[0].fn, 0);
	assert_int_equal(log_[1].fn, 1);
	assert_int_equal(log_[2].fn, 0);
	assert_int_equal(devs[1].last_value, 99);
	assert_int_equal(m.reply, 0);         /* async: receivers never write back */
	assert_int_equal(m.value, 1234);
}

static void test_async_claimed_receiver_does_not_write_back(void **state)
{
	struct msg m = { .value = 3 };

	(void)state;
	attach_n(1, bus_claim_always);
	devs[0].handles = true;
	devs[0].writes_reply = true;
	assert_true(bus_send_async(bus, &m, BUS_LIFO));
	assert_int_equal(devs[0].calls, 1);
	assert_int_equal(m.reply, 0);
}

static void test_posted_reports_handled(void **state)
{
	struct msg m = { .value = 1 };
	struct bus_completion done;

	(void)state;
	attach_n(2, NULL);
	devs[0].handles = true;
	completion_init(&done);
	assert_true(bus_send_posted(bus, &m, BUS_FIFO, &done));
	assert_int_equal(atomic_load(&done.state), COMPLETION_PENDING);
	run_deferred();
	assert_true(completion_wait(&done));
}

static void test_posted_reports_nobody_handled(void **state)
{
	struct msg m = { .value = 1 };
	struct bus_completion done;

	(void)state;
	attach_n(2, NULL);
	completion_init(&done);
	/* Accepted by the serializer... */
	assert_true(bus_send_posted(bus, &m, BUS_EARLY_OUT, &done));
	run_deferred();
	/* ...but the completion tells the truth. */
	assert_false(completion_wait(&done));
	assert_int_equal(devs[0].calls, 1);
	assert_int_equal(devs[1].calls, 1);
}

static void test_posted_claimed_only(void **state)
{
	struct msg m = { .value = 1 };
	struct bus_completion done;

	(void)state;
	attach_n(1, bus_claim_always);
	completion_init(&done);
	assert_false(bus_send_posted(bus, &m, BUS_LIFO, &done));
	assert_false(completion_wait(&done));
	devs[0].handles = true;
	completion_init(&done);
	assert_true(bus_send_posted(bus, &m, BUS_LIFO, &done));
	assert_true(completion_wait(&done));
	assert_int_equal(nsubmitted, 0);
}

/*
 * A claimed receiver handled it, the serialized one did not: somebody
 * handled the message, and the completion and the counters must say so.
 */
static void test_posted_counts_claimed_handler(void **state)
{
	struct msg m = { .value = 1 };
	struct bus_completion done;

	(void)state;
	assert_int_equal(bus_attach(bus, recv0, bus_claim_always, &devs[0]), 0);
	assert_int_equal(bus_attach(bus, recv1, NULL, &devs[1]), 0);
	devs[0].handles = true;
	completion_init(&done);
	assert_true(bus_send_posted(bus, &m, BUS_LIFO, &done));
	run_deferred();
	assert_int_equal(devs[0].calls, 1);
	assert_int_equal(devs[1].calls, 1);
	assert_true(completion_wait(&done));
	assert_int_equal(atomic_load(&bus_stats(bus)->unhandled), 0);
}

static void test_posted_without_serializer(void **state)
{
	struct msg m = { .value = 1 };
	struct bus_completion done;

	(void)state;
	bus_set_serializer(bus, NULL);
	attach_n(2, NULL);
	completion_init(&done);
	assert_false(bus_send_posted(bus, &m, BUS_FIFO, &done));
	assert_false(completion_wait(&done));
	devs[1].handles = true;
	completion_init(&done);
	assert_true(bus_send_posted(bus, &m, BUS_FIFO, &done));
	assert_true(completion_wait(&done));
}

static void test_rr_through_serializer_moves_cursor(void **state)
{
	unsigned cursor = 0;

	(void)state;
	attach_n(3, NULL);
	devs[0].handles = true;
	assert_true(send_rr(&cursor));   /* 1, 2, then 0 */
	assert_int_equal(cursor, 0);
	assert_int_equal(nlog, 3);
	assert_true(log_[2].serialized);
	assert_int_equal(log_[2].fn, 0);
	assert_int_equal(log_[2].dev, devs[0].id);
}

static void test_stats_count_each_path(void **state)
{
	struct bus_stats *s = bus_stats(bus);
	struct msg m = { .value = 2 };

	(void)state;
	devs[0].claim_mask = 1;                       /* claims odd values */
	assert_int_equal(bus_attach(bus, recv0, claim_by_mask, &devs[0]), 0);
	devs[0].handles = true;

	bus_send(bus, &m, BUS_LIFO);                  /* serialized, sync */
	bus_send_async(bus, &m, BUS_LIFO);            /* serialized, async */
	m.value = 1;
	bus_send(bus, &m, BUS_LIFO);                  /* claimed */
	bus_send_async(bus, &m, BUS_LIFO);            /* claimed */
	run_deferred();
	devs[0].handles = false;
	m.value = 2;
	bus_send(bus, &m, BUS_LIFO);                  /* serialized, unhandled */
	m.value = 1;
	bus_send(bus, &m, BUS_LIFO);                  /* claimed, unhandled */

	assert_int_equal(atomic_load(&s->sent), 6);
	assert_int_equal(atomic_load(&s->claimed), 2);
	assert_int_equal(atomic_load(&s->sync), 2);
	assert_int_equal(atomic_load(&s->async), 1);
	assert_int_equal(atomic_load(&s->unhandled), 2);
}

/* ---- The real I/O thread as serializer --------------------------------- */

static void test_claim_runs_on_sender_others_on_iothread(void **state)
{
	struct iothread *it = iothread_start();
	struct msg odd = { .value = 1 }, even = { .value = 2 };

	(void)state;
	assert_non_null(it);
	bus_set_serializer(bus, iothread_serializer(it));
	devs[0].claim_mask = 1;
	assert_int_equal(bus_attach(bus, recv0, claim_by_mask, &devs[0]), 0);
	assert_int_equal(bus_attach(bus, recv1, NULL, &devs[1]), 0);
	devs[1].handles = true;
	devs[1].writes_reply = true;

	assert_true(bus_send(bus, &odd, BUS_FIFO));
	assert_true(pthread_equal(devs[0].last_thread, pthread_self()));
	assert_false(devs[0].last_on_iothread);
	assert_true(devs[1].last_on_iothread);
	assert_int_equal(odd.reply, 1 + devs[1].id);

	assert_true(bus_send(bus, &even, BUS_FIFO));
	assert_true(devs[0].last_on_iothread);
	assert_true(devs[1].last_on_iothread);
	assert_int_equal(even.reply, 2 + devs[1].id);

	bus_set_serializer(bus, NULL);
	iothread_stop(it);
}

/* ---- Attach and detach while other threads send ------------------------ */

#define SENDERS 4
#define SENDS 20000

static _Atomic unsigned stable_calls, bad_calls, senders_done;

static bool recv_stable(void *dev, void *msg)
{
	(void)msg;
	if (dev != &stable_calls)
		atomic_fetch_add(&bad_calls, 1);
	atomic_fetch_add(&stable_calls, 1);
	return true;
}

static bool recv_transient(void *dev, void *msg)
{
	(void)msg;
	if (*(int *)dev < 0)     /* a torn or freed receiver table */
		atomic_fetch_add(&bad_calls, 1);
	return false;
}

static void *churn_sender(void *arg)
{
	unsigned *handled = arg;

	bus_thread_enter();
	for (unsigned i = 0; i < SENDS; i++) {
		struct msg m = { .value = i };

		/* LIFO, FIFO and EARLY_OUT all reach the stable receiver. */
		if (bus_send(bus, &m, (enum bus_mode)(i % 3)))
			(*handled)++;
	}
	bus_thread_exit();
	atomic_fetch_add(&senders_done, 1);
	return NULL;
}

static void test_attach_detach_while_sending(void **state)
{
	static int tokens[8];
	pthread_t t[SENDERS];
	unsigned handled[SENDERS] = { 0 };
	unsigned total = 0, rounds = 0;

	(void)state;
	atomic_store(&stable_calls, 0);
	atomic_store(&bad_calls, 0);
	atomic_store(&senders_done, 0);
	assert_int_equal(bus_attach(bus, recv_stable, NULL, &stable_calls), 0);
	for (int i = 0; i < SENDERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn_sender, &handled[i]), 0);
	while (atomic_load(&senders_done) < SENDERS) {
		int *tok = &tokens[rounds++ % 8];

		assert_int_equal(bus_attach(bus, recv_transient, NULL, tok), 0);
		assert_int_equal(bus_detach(bus, recv_transient, tok), 0);
	}
	for (int i = 0; i < SENDERS; i++) {
		pthread_join(t[i], NULL);
		total += handled[i];
	}
	assert_int_equal(total, SENDERS * SENDS);
	assert_int_equal(atomic_load(&stable_calls), SENDERS * SENDS);
	assert_int_equal(atomic_load(&bad_calls), 0);
	assert_int_equal(bus_receiver_count(bus), 1);
}

/* ---- Updating a bus from inside a receiver ------------------------------
 * A device may attach or detach receivers while handling a message (a
 * config write enabling a function).  The attach must not wait for the
 * read-side section it is called from.  Run in a child so that a deadlock
 * fails this test instead of hanging the suite.
 */
static struct bus *other;

static bool recv_attaching(void *dev, void *msg)
{
	(void)msg;
	return bus_attach(other, recv0, NULL, dev) == 0;
}

static void test_attach_from_inside_receiver(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	other = bus_create("other", sizeof(struct msg));
	assert_non_null(other);
	assert_int_equal(bus_attach(bus, recv_attaching, NULL, &devs[0]), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct msg m = { 0 };

		alarm(20);
		_exit(bus_send(bus, &m, BUS_LIFO) && bus_receiver_count(other) == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("bus_attach() from a receiver: child killed by signal %d "
			 "(SIGALRM = deadlock)", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	bus_destroy(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lifo_calls_all_newest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_calls_all_oldest_first_and_reports_result,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_early_out_stops_at_first_handler_in_lifo_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rr_starts_after_cursor_stops_and_moves_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rr_wraps_and_pairs_callback_with_its_device,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rr_distributes_over_handlers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_receivers_is_unhandled_in_every_mode,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_reply_reaches_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_serializer_runs_inline_on_sender,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_serializer_runs_every_unclaimed_receiver,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_claimed_receiver_skips_serializer_others_do_not,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_all_claimed_never_reaches_serializer,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_claimed_handler_stops_early_out_before_serializer,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_claim_is_per_message,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_claim_is_decided_once_per_receiver,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_async_send_copies_message,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_async_claimed_receiver_does_not_write_back,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_posted_reports_handled,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_posted_reports_nobody_handled,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_posted_claimed_only,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_posted_counts_claimed_handler,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_posted_without_serializer,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_rr_through_serializer_moves_cursor,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_stats_count_each_path,
						setup_serialized, teardown_serialized),
		cmocka_unit_test_setup_teardown(test_claim_runs_on_sender_others_on_iothread,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_detach_while_sending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_from_inside_receiver, setup, teardown),
	};
	int failed;

	bus_thread_enter();
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	bus_thread_exit();
	return failed;
}
