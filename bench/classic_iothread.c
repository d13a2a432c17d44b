/*
 * The classic I/O thread (see classic_iothread.h).
 *
 * Queue: a growable ring of records held by value, as std::queue held
 * them, protected by one mutex.  Every enqueue posts the worker's
 * counting semaphore, and the worker takes one record per wait: one
 * semaphore operation per message on each side, where vmm/iothread.c
 * splices whole batches and sleeps only when the queue is empty.
 *
 * Synchronous callers wait on their own semaphore (one per thread, made
 * on first use; the original kept them in an unlocked table, a bug we do
 * not copy).  The worker stores the result, then posts it.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include "bench/classic_iothread.h"
#include "bus/call.h"

struct classic_req {
	struct bus_call *call;     /* NULL: stop */
	sem_t *wake;               /* synchronous callers only */
	bool *result;
};

struct classic_iothread {
	pthread_mutex_t lock;
	sem_t work;
	struct classic_req *ring;
	size_t cap, head, count;
	pthread_t thread;
	struct bus_serializer serializer;
};

static __thread bool on_worker;
static __thread bool caller_sem_ready;
static __thread sem_t caller_sem;

static void sem_wait_intr(sem_t *s)
{
	while (sem_wait(s) && errno == EINTR)
		;
}

/* Called with the lock held: double the ring when full. */
static int ring_push(struct classic_iothread *ct, struct classic_req req)
{
	if (ct->count == ct->cap) {
		size_t cap = ct->cap ? 2 * ct->cap : 1024;
		struct classic_req *ring = malloc(cap * sizeof(*ring));

		if (!ring)
			return -ENOMEM;
		for (size_t i = 0; i < ct->count; i++)
			ring[i] = ct->ring[(ct->head + i) % ct->cap];
		free(ct->ring);
		ct->ring = ring;
		ct->cap = cap;
		ct->head = 0;
	}
	ct->ring[(ct->head + ct->count++) % ct->cap] = req;
	return 0;
}

static int enqueue(struct classic_iothread *ct, struct classic_req req)
{
	int err;

	pthread_mutex_lock(&ct->lock);
	err = ring_push(ct, req);
	if (!err)
		sem_post(&ct->work);     /* inside the lock, as the original did */
	pthread_mutex_unlock(&ct->lock);
	return err;
}

static bool submit(void *ctx, struct bus_call *call)
{
	struct classic_iothread *ct = ctx;
	struct classic_req req = { .call = call };
	bool sync = call->sync, result = false;

	if (on_worker)
		return bus_call_run(call);
	call->submitted_ns = clock_ns();
	if (sync) {
		if (!caller_sem_ready) {
			sem_init(&caller_sem, 0, 0);
			caller_sem_ready = true;
		}
		req.wake = &caller_sem;
		req.result = &result;
	}
	/* After the enqueue an asynchronous call belongs to the worker. */
	if (enqueue(ct, req))
		return false;
	if (sync)
		sem_wait_intr(&caller_sem);
	return sync ? result : true;
}

static void *worker_main(void *arg)
{
	struct classic_iothread *ct = arg;

	on_worker = true;
	bus_thread_enter();
	for (;;) {
		struct classic_req req;
		bool handled;

		sem_wait_intr(&ct->work);
		pthread_mutex_lock(&ct->lock);
		req = ct->ring[ct->head];
		ct->head = (ct->head + 1) % ct->cap;
		ct->count--;
		pthread_mutex_unlock(&ct->lock);
		if (!req.call)
			break;
		/* A synchronous call lives on its caller's stack until the post. */
		handled = bus_call_run(req.call);
		if (req.wake) {
			*req.result = handled;
			sem_post(req.wake);
		}
	}
	bus_thread_exit();
	return NULL;
}

struct classic_iothread *classic_iothread_start(void)
{
	struct classic_iothread *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return NULL;
	pthread_mutex_init(&ct->lock, NULL);
	sem_init(&ct->work, 0, 0);
	ct->serializer = (struct bus_serializer){ .name = "classic", .submit = submit, .ctx = ct };
	if (pthread_create(&ct->thread, NULL, worker_main, ct)) {
		free(ct);
		return NULL;
	}
	return ct;
}

void classic_iothread_stop(struct classic_iothread *ct)
{
	if (!ct)
		return;
	/* FIFO: the stop record comes after everything already queued. */
	if (enqueue(ct, (struct classic_req){ 0 }) == 0)
		pthread_join(ct->thread, NULL);
	sem_destroy(&ct->work);
	pthread_mutex_destroy(&ct->lock);
	free(ct->ring);
	free(ct);
}

const struct bus_serializer *classic_iothread_serializer(struct classic_iothread *ct)
{
	return &ct->serializer;
}
