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

/* Wait for every reader of @old to finish, then free it. */
static inline void rcu_free_after_grace(void *old)
{
	if (!old)
		return;
	urcu_memb_synchronize_rcu();
	rcu_tsan_acquire(old);
	free(old);
}
