/*
 * Address-range buses: a sorted, non-overlapping table searched in
 * O(log n) under RCU, copied and republished on every change.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "bus/call.h"
#include "bus/posted.h"
#include "bus/range.h"
#include "bus/rcu.h"

struct range {
	uint64_t base;
	uint64_t last;    /* inclusive, so a range may end at 2^64 - 1 */
	range_receive_fn fn;
	bool claimed;
	void *dev;
};

struct range_table {
	struct rcu_head rcu;    /* first: rcu_free_later() frees from it */
	unsigned count;
	struct range r[];
};

struct range_bus {
	const char *name;
	size_t msg_size;
	struct range_table *_Atomic table;
	const struct bus_serializer *_Atomic serializer;
	pthread_mutex_t update_lock;
	struct bus_stats stats;
};

struct range_bus *range_bus_create(const char *name, size_t msg_size)
{
	struct range_bus *rb = calloc(1, sizeof(*rb));

	if (!rb)
		return NULL;
	rb->name = name;
	rb->msg_size = msg_size;
	pthread_mutex_init(&rb->update_lock, NULL);
	rb->table = calloc(1, sizeof(struct range_table));
	if (!rb->table) {
		free(rb);
		return NULL;
	}
	return rb;
}

void range_bus_destroy(struct range_bus *rb)
{
	if (!rb)
		return;
	rcu_free_later(&atomic_load(&rb->table)->rcu);
	pthread_mutex_destroy(&rb->update_lock);
	free(rb);
}

const char *range_bus_name(const struct range_bus *rb) { return rb->name; }
struct bus_stats *range_bus_stats(struct range_bus *rb) { return &rb->stats; }

void range_bus_set_serializer(struct range_bus *rb, const struct bus_serializer *ser)
{
	atomic_store_explicit(&rb->serializer, ser, memory_order_release);
}

/* Index of the first range whose base is above @addr. */
static unsigned upper_bound(const struct range_table *t, uint64_t addr)
{
	unsigned lo = 0, hi = t->count;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (t->r[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct range *lookup(const struct range_table *t, uint64_t addr)
{
	unsigned i = upper_bound(t, addr);

	if (i == 0 || t->r[i - 1].last < addr)
		return NULL;
	return &t->r[i - 1];
}

static bool overlaps(const struct range_table *t, uint64_t base, uint64_t last)
{
	unsigned i = upper_bound(t, last);   /* ranges starting at or before last */

	return i > 0 && t->r[i - 1].last >= base;
}

/* Build a copy of @old without entry @skip (or all of it if skip >= count). */
static struct range_table *table_without(const struct range_table *old, unsigned skip)
{
	struct range_table *t = malloc(sizeof(*t) + (old->count + 1) * sizeof(old->r[0]));
	unsigned n = 0;

	if (!t)
		return NULL;
	for (unsigned i = 0; i < old->count; i++)
		if (i != skip)
			t->r[n++] = old->r[i];
	t->count = n;
	return t;
}

static void table_insert(struct range_table *t, const struct range *r)
{
	unsigned i = upper_bound(t, r->base);

	memmove(&t->r[i + 1], &t->r[i], (t->count - i) * sizeof(t->r[0]));
	t->r[i] = *r;
	t->count++;
}

static void table_publish(struct range_bus *rb, struct range_table *t)
{
	rcu_free_later(&atomic_exchange_explicit(&rb->table, t, memory_order_acq_rel)->rcu);
}

static int find_base(const struct range_table *t, uint64_t base)
{
	for (unsigned i = 0; i < t->count; i++)
		if (t->r[i].base == base)
			return (int)i;
	return -1;
}

int range_bus_add(struct range_bus *rb, uint64_t base, uint64_t len,
		  range_receive_fn fn, bool claimed, void *dev)
{
	struct range r = { .base = base, .last = base + len - 1, .fn = fn,
			   .claimed = claimed, .dev = dev };
	struct range_table *old, *t;
	int err = 0;

	if (!len || r.last < base || !fn)
		return -EINVAL;
	pthread_mutex_lock(&rb->update_lock);
	old = atomic_load(&rb->table);
	if (overlaps(old, r.base, r.last)) {
		err = -EEXIST;
	} else if (!(t = table_without(old, old->count))) {
		err = -ENOMEM;
	} else {
		table_insert(t, &r);
		table_publish(rb, t);
	}
	pthread_mutex_unlock(&rb->update_lock);
	return err;
}

int range_bus_remove(struct range_bus *rb, uint64_t base)
{
	struct range_table *old, *t;
	int idx, err = 0;

	pthread_mutex_lock(&rb->update_lock);
	old = atomic_load(&rb->table);
	idx = find_base(old, base);
	if (idx < 0)
		err = -ENOENT;
	else if (!(t = table_without(old, (unsigned)idx)))
		err = -ENOMEM;
	else
		table_publish(rb, t);
	pthread_mutex_unlock(&rb->update_lock);
	return err;
}

int range_bus_move(struct range_bus *rb, uint64_t old_base, uint64_t new_base)
{
	struct range_table *old, *t;
	struct range r;
	int idx, err = 0;

	pthread_mutex_lock(&rb->update_lock);
	old = atomic_load(&rb->table);
	idx = find_base(old, old_base);
	if (idx < 0) {
		err = -ENOENT;
		goto out;
	}
	r = old->r[idx];
	r.last = new_base + (r.last - r.base);
	r.base = new_base;
	if (r.last < r.base) {
		err = -EINVAL;
		goto out;
	}
	t = table_without(old, (unsigned)idx);
	if (!t) {
		err = -ENOMEM;
	} else if (overlaps(t, r.base, r.last)) {
		free(t);
		err = -EEXIST;
	} else {
		table_insert(t, &r);
		table_publish(rb, t);
	}
out:
	pthread_mutex_unlock(&rb->update_lock);
	return err;
}

unsigned range_bus_count(struct range_bus *rb)
{
	unsigned n;

	urcu_memb_read_lock();
	n = atomic_load_explicit(&rb->table, memory_order_acquire)->count;
	urcu_memb_read_unlock();
	return n;
}

/*
 * The receiver and its device are looked up again on the serializing
 * thread: the range may have moved in between, and then the access goes
 * where the table says at the time it is carried out.
 */
static bool dispatch_range(struct bus_call *call)
{
	struct range_bus *rb = call->target;
	uint64_t addr = call->addr;
	const struct range_table *t;
	const struct range *r;
	bool handled = false;

	urcu_memb_read_lock();
	t = atomic_load_explicit(&rb->table, memory_order_acquire);
	r = lookup(t, addr);
	if (r)
		handled = r->fn(r->dev, addr, call->msg);
	rcu_tsan_release((void *)t);
	urcu_memb_read_unlock();
	if (!handled)
		bus_stats_add(&rb->stats.unhandled);
	return handled;
}

static bool send(struct range_bus *rb, uint64_t addr, void *msg, bool sync)
{
	const struct bus_serializer *ser;
	const struct range_table *t;
	const struct range *r;
	bool handled = false, claimed = false, found;
	struct bus_completion done;
	struct bus_call stack_call, *call = &stack_call;

	bus_stats_add(&rb->stats.sent);
	urcu_memb_read_lock();
	t = atomic_load_explicit(&rb->table, memory_order_acquire);
	r = lookup(t, addr);
	found = r != NULL;
	if (r && r->claimed) {
		claimed = true;
		bus_posted_fence();
		handled = r->fn(r->dev, addr, msg);
	}
	rcu_tsan_release((void *)t);
	urcu_memb_read_unlock();
	if (!found || claimed) {
		if (claimed)
			bus_stats_add(&rb->stats.claimed);
		if (!handled)
			bus_stats_add(&rb->stats.unhandled);
		return handled;
	}
	ser = atomic_load_explicit(&rb->serializer, memory_order_acquire);
	*call = (struct bus_call){
		.dispatch = dispatch_range, .target = rb, .msg = msg,
		.addr = addr, .vcpu = bus_current_vcpu,
		.sync = sync, .stats = &rb->stats, .done = sync ? &done : NULL,
	};
	if (!ser)
		return dispatch_range(call);
	if (!sync) {
		call = malloc(sizeof(*call) + rb->msg_size);
		if (!call)
			return false;
		*call = stack_call;
		memcpy(call->copy, msg, rb->msg_size);
		call->msg = call->copy;
	} else {
		completion_init(&done);
	}
	return ser->submit(ser->ctx, call);
}

bool range_bus_send(struct range_bus *rb, uint64_t addr, void *msg)
{
	return send(rb, addr, msg, true);
}

/* Receivers write into the message: an asynchronous sender keeps its own. */
bool range_bus_send_async(struct range_bus *rb, uint64_t addr, const void *msg)
{
	unsigned char copy[rb->msg_size];

	memcpy(copy, msg, rb->msg_size);
	return send(rb, addr, copy, false);
}
