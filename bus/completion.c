#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "bus/completion.h"

unsigned completion_spin_budget;

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void completion_signal(struct bus_completion *c, bool result)
{
	c->result = result;
	/* The result is published by the release; wake only a sleeper. */
	if (atomic_exchange_explicit(&c->state, COMPLETION_DONE, memory_order_acq_rel) ==
	    COMPLETION_SLEEPING)
		futex_wake(&c->state);
}

bool completion_wait(struct bus_completion *c)
{
	uint32_t s;

	for (unsigned i = 0; i < completion_spin_budget; i++) {
		if (atomic_load_explicit(&c->state, memory_order_acquire) == COMPLETION_DONE)
			return c->result;
		__builtin_ia32_pause();
	}
	s = COMPLETION_PENDING;
	if (atomic_compare_exchange_strong_explicit(&c->state, &s, COMPLETION_SLEEPING,
						    memory_order_acq_rel, memory_order_acquire)) {
		while (atomic_load_explicit(&c->state, memory_order_acquire) != COMPLETION_DONE)
			futex_wait(&c->state, COMPLETION_SLEEPING);
	}
	return c->result;
}
