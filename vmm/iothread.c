/*
 * The I/O thread.
 *
 * Queue: liburcu's wfcqueue.  Producers (any thread) enqueue wait-free;
 * the I/O thread is the only consumer and splices the whole queue out at
 * once, so it takes no lock.
 *
 * Sleeping: the thread publishes SLEEPING, re-checks the queue, then waits
 * on the futex.  A producer enqueues (a full barrier: xchg), then reads the
 * state and wakes the thread only if it flips SLEEPING to AWAKE.  Either the
 * consumer's re-check sees the new node or the producer sees SLEEPING: no
 * lost wake-up, and no futex call while the thread is busy.
 *
 * ThreadSanitizer cannot see the queue's own synchronisation (liburcu is
 * not instrumented), so a producer releases and the consumer acquires each
 * call record explicitly.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <urcu/wfcqueue.h>
#include "bus/call.h"
#include "bus/posted.h"
#include "bus/rcu.h"
#include "vmm/iothread.h"

enum { IOTHREAD_AWAKE, IOTHREAD_SLEEPING };

struct iothread {
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;
	_Atomic uint32_t state;
	_Atomic unsigned long depth;
	_Atomic bool stopping;
	pthread_t thread;
	struct bus_serializer serializer;
};

static __thread bool on_iothread;
static __thread uint64_t thread_wait_ns;

uint64_t iothread_thread_wait_ns(void)
{
	return thread_wait_ns;
}

bool iothread_is_current(void)
{
	return on_iothread;
}

unsigned long iothread_queue_depth(struct iothread *it)
{
	return atomic_load_explicit(&it->depth, memory_order_relaxed);
}

static void wake(struct iothread *it)
{
	uint32_t sleeping = IOTHREAD_SLEEPING;

	if (atomic_load(&it->state) == IOTHREAD_SLEEPING &&
	    atomic_compare_exchange_strong(&it->state, &sleeping, IOTHREAD_AWAKE))
		syscall(SYS_futex, &it->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static bool submit(void *ctx, struct bus_call *call)
{
	struct iothread *it = ctx;
	struct bus_completion *done = call->done;
	bool sync = call->sync;
	unsigned long depth;

	if (on_iothread)
		return bus_call_run(call);
	if (!sync)
		bus_posted_begin(call);   /* the sender's later claimed accesses wait for it */
	call->submitted_ns = clock_ns();
	depth = atomic_fetch_add_explicit(&it->depth, 1, memory_order_relaxed) + 1;
	bus_stats_depth(call->stats, depth);
	cds_wfcq_node_init(&call->node);
	rcu_tsan_release(call);
	/* After this, an asynchronous call belongs to the I/O thread. */
	cds_wfcq_enqueue(&it->head, &it->tail, &call->node);
	atomic_thread_fence(memory_order_seq_cst);
	wake(it);
	if (!sync)
		return true;
	uint64_t t0 = clock_ns();
	bool handled = completion_wait(done);

	thread_wait_ns += clock_ns() - t0;
	return handled;
}

static bool barrier_dispatch(struct bus_call *call)
{
	(void)call;
	return true;
}

void iothread_barrier(struct iothread *it)
{
	static struct bus_stats barrier_stats;
	struct bus_completion done;
	struct bus_call call = { .dispatch = barrier_dispatch, .sync = true,
				 .vcpu = -1, .stats = &barrier_stats, .done = &done };

	completion_init(&done);
	submit(it, &call);
}

static void run_batch(struct iothread *it, struct __cds_wfcq_head *head,
		      struct cds_wfcq_tail *tail)
{
	struct cds_wfcq_node *node, *next;

	__cds_wfcq_for_each_blocking_safe(head, tail, node, next) {
		struct bus_call *call = caa_container_of(node, struct bus_call, node);

		rcu_tsan_acquire(call);
		atomic_fetch_sub_explicit(&it->depth, 1, memory_order_relaxed);
		bus_call_run(call);
	}
}

static void sleep_if_idle(struct iothread *it)
{
	atomic_store(&it->state, IOTHREAD_SLEEPING);
	if (cds_wfcq_empty(&it->head, &it->tail) && !atomic_load(&it->stopping))
		syscall(SYS_futex, &it->state, FUTEX_WAIT_PRIVATE, IOTHREAD_SLEEPING,
			NULL, NULL, 0);
	atomic_store(&it->state, IOTHREAD_AWAKE);
}

static void *iothread_main(void *arg)
{
	struct iothread *it = arg;
	struct __cds_wfcq_head batch_head;
	struct cds_wfcq_tail batch_tail;

	pthread_setname_np(pthread_self(), "vmm-io");
	on_iothread = true;
	bus_thread_enter();
	for (;;) {
		__cds_wfcq_init(&batch_head, &batch_tail);
		__cds_wfcq_splice_blocking(&batch_head, &batch_tail, &it->head, &it->tail);
		if (!cds_wfcq_empty(&batch_head, &batch_tail)) {
			run_batch(it, &batch_head, &batch_tail);
			continue;
		}
		if (atomic_load(&it->stopping))
			break;
		sleep_if_idle(it);
	}
	bus_thread_exit();
	return NULL;
}

struct iothread *iothread_start(void)
{
	struct iothread *it = calloc(1, sizeof(*it));

	if (!it)
		return NULL;
	__cds_wfcq_init(&it->head, &it->tail);
	it->serializer = (struct bus_serializer){ .name = "iothread", .submit = submit, .ctx = it };
	if (pthread_create(&it->thread, NULL, iothread_main, it)) {
		free(it);
		return NULL;
	}
	return it;
}

int iothread_pin(struct iothread *it, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(it->thread, sizeof(set), &set);
}

void iothread_stop(struct iothread *it)
{
	if (!it)
		return;
	atomic_store(&it->stopping, true);
	atomic_store(&it->state, IOTHREAD_SLEEPING);
	wake(it);
	pthread_join(it->thread, NULL);
	free(it);
}

const struct bus_serializer *iothread_serializer(struct iothread *it)
{
	return &it->serializer;
}
