/*
 * RCU for read-mostly tables (liburcu, memb flavour), plus what
 * ThreadSanitizer needs to see it: urcu's grace periods are invisible to
 * TSan, so a reader "releases" the table it read before leaving its
 * read-side section and the updater "acquires" the old table after the
 * grace period, before freeing it.  The table pointer itself is a C11
 * atomic (release on publish, acquire on read), which is what
 * rcu_assign_pointer/rcu_dereference do on x86 anyway.
 */
#pragma once
#include <stdlib.h>
#include <urcu/urcu-memb.h>

#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define rcu_tsan_release(p) __tsan_release(p)
#define rcu_tsan_acquire(p) __tsan_acquire(p)
#else
#define rcu_tsan_release(p) ((void)(p))
#define rcu_tsan_acquire(p) ((void)(p))
#endif

static inline void rcu_free_cb(struct rcu_head *head)
{
	rcu_tsan_acquire(head);
	free(head);
}

/*
 * Free a table (which starts with its struct rcu_head) once every reader
 * that may still see it is done.  This never waits: updates come from
 * device callbacks too (a config write moving a BAR), inside a read-side
 * section, where synchronize_rcu() would wait for itself.
 */
static inline void rcu_free_later(struct rcu_head *head)
{
	if (!head)
		return;
	rcu_tsan_release(head);   /* the updater's writes, for the freeing thread */
	urcu_memb_call_rcu(head, rcu_free_cb);
}
