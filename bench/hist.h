/*
 * Latency histograms for the benchmarks: log-linear buckets (32 per power
 * of two, so a percentile is within 3% of the true value), cheap enough to
 * update on every operation, mergeable across threads.  Values are TSC
 * cycles; tsc_ns() converts with the rate measured by tsc_calibrate().
 */
#pragma once
#include <stdint.h>

#define HIST_SUB     32
#define HIST_BUCKETS (60 * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t bucket[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < HIST_SUB)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	return (msb - 4) * HIST_SUB + (unsigned)((v >> (msb - 5)) & (HIST_SUB - 1));
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->bucket[hist_index(v)]++;
	h->count++;
}

static inline uint64_t rdtsc_now(void)
{
	return __builtin_ia32_rdtsc();
}

void hist_merge(struct hist *into, const struct hist *from);
/* The value at percentile @pct (0..100): the middle of its bucket. */
uint64_t hist_percentile(const struct hist *h, double pct);

/* Measure the TSC against CLOCK_MONOTONIC; returns cycles per ns. */
double tsc_calibrate(void);
double tsc_ns(uint64_t cycles);
