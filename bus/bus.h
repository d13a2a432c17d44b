/*
 * A typed message bus in the style of Seoul's DBus<M>.
 *
 * One bus carries one message type.  Devices attach receivers (a callback
 * plus an opaque device pointer); a send walks the receivers in the
 * requested order and reports whether anybody handled the message.
 *
 * Claimed receivers run first (in send order among themselves), then the
 * serialized ones: a bus that mixes both for one message must not depend
 * on their relative order.
 *
 * Two hooks decide on which thread a receiver runs:
 *  - a receiver's claim hook says "this message is mine and I am safe to call
 *    from any thread": it then runs on the sending thread, bypassing the
 *    I/O thread and the global lock.  The claim is per receiver and per
 *    message: receivers that do not claim still go through serialization.
 *  - the bus's serializer (installed by the VMM's I/O mode) runs every
 *    unclaimed receiver: the I/O thread takes the call over (its enqueue
 *    hook), or the global lock is held around it.  Without a serializer
 *    unclaimed receivers run inline.
 *
 * Thread safety: bus_send() may be called from any thread.  The receiver
 * table is published with RCU: sends never take a lock, and attach/detach
 * never block senders.  Every thread that sends must be registered with
 * urcu (bus_thread_enter()).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bus/stats.h"

enum bus_mode {
	BUS_LIFO,      /* last attached first; every receiver is called */
	BUS_FIFO,      /* first attached first; every receiver is called */
	BUS_EARLY_OUT, /* LIFO order, stop at the first receiver that handles it */
	BUS_RR,        /* round robin: start after the cursor, stop at the first
	                  receiver that handles it, move the cursor to it */
};

typedef bool (*bus_receive_fn)(void *dev, void *msg);
/* Return true if this receiver handles @msg on the sending thread. */
typedef bool (*bus_claim_fn)(void *dev, const void *msg);

/* A claim hook for receivers that are safe to call from any thread. */
bool bus_claim_always(void *dev, const void *msg);

struct bus;
struct bus_call;

/*
 * A serializer takes over the unclaimed part of a send.  It must run
 * bus_call_dispatch(call) exactly once, on whatever thread it chooses, and
 * for a synchronous call return only when that has happened.  It returns
 * the dispatch result for synchronous calls; for asynchronous calls it
 * returns whether the call was accepted.
 */
struct bus_serializer {
	const char *name;
	bool (*submit)(void *ctx, struct bus_call *call);
	void *ctx;
};

struct bus *bus_create(const char *name, size_t msg_size);
void bus_destroy(struct bus *bus);
const char *bus_name(const struct bus *bus);
size_t bus_msg_size(const struct bus *bus);

int bus_attach(struct bus *bus, bus_receive_fn fn, bus_claim_fn claim, void *dev);
int bus_detach(struct bus *bus, bus_receive_fn fn, void *dev);
unsigned bus_receiver_count(struct bus *bus);

void bus_set_serializer(struct bus *bus, const struct bus_serializer *ser);

/*
 * Send @msg.  Synchronous sends return once every receiver ran; @msg holds
 * what the receivers wrote back.  Asynchronous sends copy @msg when it has
 * to travel to another thread and return at once; their result is whether
 * some receiver handled it (claimed receivers) or will see it (queued).
 */
bool bus_send(struct bus *bus, void *msg, enum bus_mode mode);
bool bus_send_async(struct bus *bus, const void *msg, enum bus_mode mode);
/*
 * An asynchronous send whose caller wants to learn later whether anybody
 * handled it: @done (owned by the caller, initialised with
 * completion_init) is signalled with the real result once the receivers ran.
 */
struct bus_completion;
bool bus_send_posted(struct bus *bus, const void *msg, enum bus_mode mode,
		     struct bus_completion *done);
/* Round robin with a caller-owned cursor (the index last served). */
bool bus_send_rr(struct bus *bus, void *msg, unsigned *cursor);

struct bus_stats *bus_stats(struct bus *bus);

/* Every thread that sends or receives calls enter first; calls nest. */
void bus_thread_enter(void);
void bus_thread_exit(void);
