/*
 * Per-bus counters, updated with relaxed atomics from any thread.  The
 * latency histogram has power-of-two nanosecond buckets: bucket i counts
 * latencies in [2^i, 2^(i+1)) ns.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BUS_STATS_BUCKETS 40

struct bus_stats {
	_Atomic uint64_t sent;       /* every send */
	_Atomic uint64_t claimed;    /* handled on the sending thread */
	_Atomic uint64_t sync;       /* serialized, caller waited */
	_Atomic uint64_t async;      /* serialized, caller did not wait */
	_Atomic uint64_t unhandled;  /* nobody handled it */
	_Atomic uint64_t max_depth;  /* deepest I/O thread queue seen at enqueue */
	_Atomic uint64_t latency[BUS_STATS_BUCKETS];
};

void bus_stats_latency(struct bus_stats *s, uint64_t ns);
void bus_stats_depth(struct bus_stats *s, uint64_t depth);
/* Latency percentile (0..100) from the histogram: upper bound of the bucket. */
uint64_t bus_stats_percentile(const struct bus_stats *s, double pct);
/* One line: name, counts, queue depth, p50/p99; nothing if unused. */
void bus_stats_print(FILE *out, const char *name, const struct bus_stats *s);

static inline void bus_stats_add(_Atomic uint64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

uint64_t clock_ns(void);
