/*
 * The typed message bus: receiver tables published with RCU, the four send
 * modes, the per-receiver claim and the serializer hand-off.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "bus/bus.h"
#include "bus/call.h"
#include "bus/posted.h"
#include "bus/rcu.h"

struct receiver {
	bus_receive_fn fn;
	bus_claim_fn claim;
	void *dev;
};

struct bus_table {
	struct rcu_head rcu;           /* first: rcu_free_later() frees from it */
	unsigned count;
	struct receiver r[];
};

struct bus {
	const char *name;
	size_t msg_size;
	struct bus_table *_Atomic table;
	const struct bus_serializer *_Atomic serializer;
	pthread_mutex_t update_lock;   /* serializes writers only */
	struct bus_stats stats;
};

__thread int bus_current_vcpu = -1;

bool bus_claim_always(void *dev, const void *msg)
{
	(void)dev;
	(void)msg;
	return true;
}

struct bus *bus_create(const char *name, size_t msg_size)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return NULL;
	bus->name = name;
	bus->msg_size = msg_size;
	pthread_mutex_init(&bus->update_lock, NULL);
	bus->table = calloc(1, sizeof(struct bus_table));
	if (!bus->table) {
		free(bus);
		return NULL;
	}
	return bus;
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	rcu_free_later(&atomic_load(&bus->table)->rcu);
	pthread_mutex_destroy(&bus->update_lock);
	free(bus);
}

const char *bus_name(const struct bus *bus) { return bus->name; }
size_t bus_msg_size(const struct bus *bus) { return bus->msg_size; }
struct bus_stats *bus_stats(struct bus *bus) { return &bus->stats; }

static struct bus_table *table_copy(const struct bus_table *old, unsigned extra)
{
	size_t bytes = sizeof(*old) + (old->count + extra) * sizeof(old->r[0]);
	struct bus_table *t = malloc(bytes);

	if (t)
		memcpy(t, old, sizeof(*old) + old->count * sizeof(old->r[0]));
	return t;
}

static void table_publish(struct bus *bus, struct bus_table *t)
{
	struct bus_table *old = atomic_exchange_explicit(&bus->table, t, memory_order_acq_rel);

	rcu_free_later(&old->rcu);
}

int bus_attach(struct bus *bus, bus_receive_fn fn, bus_claim_fn claim, void *dev)
{
	struct bus_table *t;

	pthread_mutex_lock(&bus->update_lock);
	t = table_copy(atomic_load(&bus->table), 1);
	if (!t) {
		pthread_mutex_unlock(&bus->update_lock);
		return -ENOMEM;
	}
	t->r[t->count++] = (struct receiver){ .fn = fn, .claim = claim, .dev = dev };
	table_publish(bus, t);
	pthread_mutex_unlock(&bus->update_lock);
	return 0;
}

int bus_detach(struct bus *bus, bus_receive_fn fn, void *dev)
{
	struct bus_table *t;
	unsigned i;

	pthread_mutex_lock(&bus->update_lock);
	t = table_copy(atomic_load(&bus->table), 0);
	if (!t) {
		pthread_mutex_unlock(&bus->update_lock);
		return -ENOMEM;
	}
	for (i = 0; i < t->count; i++)
		if (t->r[i].fn == fn && t->r[i].dev == dev)
			break;
	if (i == t->count) {
		pthread_mutex_unlock(&bus->update_lock);
		free(t);
		return -ENOENT;
	}
	memmove(&t->r[i], &t->r[i + 1], (t->count - i - 1) * sizeof(t->r[0]));
	t->count--;
	table_publish(bus, t);
	pthread_mutex_unlock(&bus->update_lock);
	return 0;
}

unsigned bus_receiver_count(struct bus *bus)
{
	unsigned n;

	urcu_memb_read_lock();
	n = atomic_load_explicit(&bus->table, memory_order_acquire)->count;
	urcu_memb_read_unlock();
	return n;
}

void bus_set_serializer(struct bus *bus, const struct bus_serializer *ser)
{
	atomic_store_explicit(&bus->serializer, ser, memory_order_release);
}

/* The i-th receiver index of a walk in @mode over @n receivers. */
static unsigned walk_index(int mode, unsigned n, unsigned start, unsigned i)
{
	switch (mode) {
	case BUS_FIFO:
		return i;
	case BUS_RR:
		return (start + i) % n;
	default:
		return n - 1 - i;
	}
}

static bool walk_stops_at_first(int mode)
{
	return mode == BUS_EARLY_OUT || mode == BUS_RR;
}

static bool is_claimed(const struct receiver *r, const void *msg)
{
	return r->claim && r->claim(r->dev, msg);
}

/*
 * Walk the receivers in send order, calling either the claimed ones (on
 * the sending thread) or the unclaimed ones (serialized).  Returns whether
 * any called receiver handled the message; *stopped says an early-out or
 * round-robin walk found its receiver; *skipped counts receivers left for
 * the other kind of walk.
 */
static bool walk(struct bus *bus, void *msg, const void *as_sent, int mode,
		 unsigned *cursor, bool claimed_pass, bool *stopped, unsigned *skipped)
{
	struct bus_table *t;
	bool handled = false;
	unsigned start = 0;

	*stopped = false;
	*skipped = 0;
	urcu_memb_read_lock();
	t = atomic_load_explicit(&bus->table, memory_order_acquire);
	if (mode == BUS_RR && cursor && t->count)
		start = (*cursor + 1) % t->count;
	for (unsigned i = 0; i < t->count; i++) {
		unsigned idx = walk_index(mode, t->count, start, i);
		const struct receiver *r = &t->r[idx];

		if (is_claimed(r, as_sent) != claimed_pass) {
			(*skipped)++;
			continue;
		}
		if (!r->fn(r->dev, msg))
			continue;
		handled = true;
		if (walk_stops_at_first(mode)) {
			if (cursor)
				*cursor = idx;
			*stopped = true;
			break;
		}
	}
	rcu_tsan_release(t);
	urcu_memb_read_unlock();
	return handled;
}

static bool dispatch_unclaimed(struct bus_call *call)
{
	bool stopped;
	unsigned skipped;
	bool handled = walk(call->target, call->msg, call->as_sent, call->mode,
			    call->cursor, false, &stopped, &skipped);

	/* The claimed receivers that ran on the sender count too. */
	handled = handled || call->claimed_handled;
	if (!handled)
		bus_stats_add(&call->stats->unhandled);
	return handled;
}

/* Hand the unclaimed receivers to the serializer, or run them here. */
static bool send_unclaimed(struct bus *bus, void *msg, const void *as_sent, int mode,
			   unsigned *cursor, bool sync, bool claimed_handled,
			   struct bus_completion *posted)
{
	const struct bus_serializer *ser =
		atomic_load_explicit(&bus->serializer, memory_order_acquire);
	struct bus_completion done;
	struct bus_call stack_call, *call = &stack_call;

	if (!ser) {
		struct bus_call inline_call = { .target = bus, .msg = msg, .as_sent = as_sent,
						.mode = mode, .cursor = cursor,
						.claimed_handled = claimed_handled,
						.stats = &bus->stats };
		bool handled = dispatch_unclaimed(&inline_call);

		if (posted)
			completion_signal(posted, handled);
		return handled;
	}
	if (!sync) {
		call = malloc(sizeof(*call) + 2 * bus->msg_size);
		if (!call) {
			if (posted)
				completion_signal(posted, claimed_handled);
			return false;
		}
	}
	*call = (struct bus_call){
		.dispatch = dispatch_unclaimed, .target = bus, .msg = msg,
		.as_sent = as_sent, .mode = mode, .cursor = cursor,
		.vcpu = bus_current_vcpu, .sync = sync,
		.claimed_handled = claimed_handled, .stats = &bus->stats,
		.done = sync ? &done : posted,
	};
	if (!sync) {
		/* After the assignment: it may write padding over copy[]. */
		memcpy(call->copy, msg, bus->msg_size);
		memcpy(call->copy + bus->msg_size, as_sent, bus->msg_size);
		call->msg = call->copy;
		call->as_sent = call->copy + bus->msg_size;
	}
	if (sync)
		completion_init(&done);
	return ser->submit(ser->ctx, call);
}

static bool send(struct bus *bus, void *msg, int mode, unsigned *cursor, bool sync,
		 struct bus_completion *posted)
{
	bool stopped;
	unsigned unclaimed;
	bool handled;
	unsigned char as_sent[bus->msg_size];   /* claims decide on this */

	memcpy(as_sent, msg, bus->msg_size);
	bus_stats_add(&bus->stats.sent);
	bus_posted_fence();
	handled = walk(bus, msg, as_sent, mode, cursor, true, &stopped, &unclaimed);
	if (handled)
		bus_stats_add(&bus->stats.claimed);
	if (stopped || !unclaimed) {
		if (!handled)
			bus_stats_add(&bus->stats.unhandled);
		if (posted)
			completion_signal(posted, handled);
		return handled;
	}
	return send_unclaimed(bus, msg, as_sent, mode, cursor, sync, handled, posted) || handled;
}

bool bus_send(struct bus *bus, void *msg, enum bus_mode mode)
{
	return send(bus, msg, mode, NULL, true, NULL);
}

bool bus_send_rr(struct bus *bus, void *msg, unsigned *cursor)
{
	return send(bus, msg, BUS_RR, cursor, true, NULL);
}

/* Receivers may write into the message: asynchronous senders keep theirs. */
bool bus_send_posted(struct bus *bus, const void *msg, enum bus_mode mode,
		     struct bus_completion *done)
{
	unsigned char copy[bus->msg_size];

	memcpy(copy, msg, bus->msg_size);
	return send(bus, copy, mode, NULL, false, done);
}

bool bus_send_async(struct bus *bus, const void *msg, enum bus_mode mode)
{
	return bus_send_posted(bus, msg, mode, NULL);
}

/* Registration nests, so set-up code may call enter from a registered thread. */
static __thread unsigned thread_registered;

void bus_thread_enter(void)
{
	if (thread_registered++ == 0)
		urcu_memb_register_thread();
}

void bus_thread_exit(void)
{
	bus_posted_fence();   /* the serializer still points at our counter */
	if (thread_registered && --thread_registered == 0)
		urcu_memb_unregister_thread();
}

bool bus_call_run(struct bus_call *call)
{
	bool handled = call->dispatch(call);
	struct bus_stats *stats = call->stats;

	bus_stats_add(call->sync ? &stats->sync : &stats->async);
	if (call->submitted_ns)
		bus_stats_latency(stats, clock_ns() - call->submitted_ns);
	if (call->sync) {
		completion_signal(call->done, handled);
		return handled;
	}
	if (call->done)
		completion_signal(call->done, handled);
	bus_posted_end(call);
	free(call);
	return handled;
}
