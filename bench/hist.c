#include <time.h>
#include "bench/hist.h"

static double cycles_per_ns = 1.0;

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
}

static uint64_t bucket_mid(unsigned idx)
{
	unsigned msb, sub;

	if (idx < HIST_SUB)
		return idx;
	msb = idx / HIST_SUB + 4;
	sub = idx % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub) << (msb - 5)) + ((1ull << (msb - 5)) >> 1);
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	uint64_t rank = (uint64_t)(pct / 100.0 * (double)h->count + 0.999999), seen = 0;

	if (!h->count)
		return 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			return bucket_mid(i);
	}
	return bucket_mid(HIST_BUCKETS - 1);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double tsc_calibrate(void)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	uint64_t n0 = mono_ns(), c0 = rdtsc_now(), n1, c1;

	nanosleep(&pause, NULL);
	n1 = mono_ns();
	c1 = rdtsc_now();
	cycles_per_ns = (double)(c1 - c0) / (double)(n1 - n0);
	return cycles_per_ns;
}

double tsc_ns(uint64_t cycles)
{
	return (double)cycles / cycles_per_ns;
}
