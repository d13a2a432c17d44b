/*
 * What a serializer (the I/O thread or the global lock) gets to finish a
 * send on the caller's behalf, exactly as the caller would have done it.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <urcu/wfcqueue.h>
#include "bus/completion.h"

struct bus_stats;

struct bus_call {
	struct cds_wfcq_node node;       /* I/O thread queue link */
	bool (*dispatch)(struct bus_call *call);
	void *target;                    /* the bus or range bus */
	void *msg;                       /* the caller's message, or the copy below */
	const void *as_sent;             /* the message before any receiver wrote to it */
	int mode;                        /* enum bus_mode for plain buses */
	unsigned *cursor;                /* round robin cursor, or NULL */
	uint64_t addr;                   /* range buses: the address */
	int vcpu;                        /* sending vCPU, -1 for other threads */
	bool sync;                       /* the caller waits on @done */
	bool claimed_handled;            /* a claimed receiver handled it already */
	uint64_t submitted_ns;
	struct bus_stats *stats;
	struct bus_completion *done;     /* synchronous calls only */
	_Atomic uint32_t *posted;        /* the sending vCPU's writes in flight */
	unsigned char copy[];            /* asynchronous calls own their message */
};

/*
 * Run the unclaimed receivers of @call now, on this thread, account for it
 * and finish it: wake a synchronous caller, or free an asynchronous copy.
 * @call must not be touched afterwards (a synchronous one lives on the
 * caller's stack).
 */
bool bus_call_run(struct bus_call *call);

/* Which vCPU the current thread runs, -1 if none: recorded in every call. */
extern __thread int bus_current_vcpu;
