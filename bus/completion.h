/*
 * A one-shot completion owned by the waiting thread.  A synchronous sender
 * keeps it on its own stack (it blocks until completion, so the storage
 * outlives every use); the I/O thread stores the result and then the done
 * state with release order, and wakes the waiter only if it went to sleep.
 *
 * Spinning first pays off only while another core is free to run the
 * completer (measured here: spin 0.4 us vs futex 13 us round trip), so the
 * spin budget is a run-time setting: 0 on an overcommitted host.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { COMPLETION_PENDING = 0, COMPLETION_SLEEPING = 1, COMPLETION_DONE = 2 };

struct bus_completion {
	_Atomic uint32_t state;
	bool result;
};

extern unsigned completion_spin_budget;

static inline void completion_init(struct bus_completion *c)
{
	atomic_store_explicit(&c->state, COMPLETION_PENDING, memory_order_relaxed);
	c->result = false;
}

void completion_signal(struct bus_completion *c, bool result);
bool completion_wait(struct bus_completion *c);
