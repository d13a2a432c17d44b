#include <time.h>
#include "bus/stats.h"

uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bus_stats_latency(struct bus_stats *s, uint64_t ns)
{
	unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;

	if (b >= BUS_STATS_BUCKETS)
		b = BUS_STATS_BUCKETS - 1;
	bus_stats_add(&s->latency[b]);
}

void bus_stats_depth(struct bus_stats *s, uint64_t depth)
{
	uint64_t cur = atomic_load_explicit(&s->max_depth, memory_order_relaxed);

	while (depth > cur &&
	       !atomic_compare_exchange_weak_explicit(&s->max_depth, &cur, depth,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

uint64_t bus_stats_percentile(const struct bus_stats *s, double pct)
{
	uint64_t total = 0, seen = 0;

	for (unsigned i = 0; i < BUS_STATS_BUCKETS; i++)
		total += atomic_load_explicit(&s->latency[i], memory_order_relaxed);
	if (!total)
		return 0;
	for (unsigned i = 0; i < BUS_STATS_BUCKETS; i++) {
		seen += atomic_load_explicit(&s->latency[i], memory_order_relaxed);
		if ((double)seen * 100.0 >= pct * (double)total)
			return (2ull << i) - 1;
	}
	return UINT64_MAX;
}

void bus_stats_print(FILE *out, const char *name, const struct bus_stats *s)
{
	uint64_t sent = atomic_load(&s->sent);

	if (!sent)
		return;
	fprintf(out, "  %-10s %10llu sent %10llu claimed %10llu sync %10llu async "
		"%8llu unhandled  depth<=%llu  p50<=%lluns p99<=%lluns\n", name,
		(unsigned long long)sent, (unsigned long long)atomic_load(&s->claimed),
		(unsigned long long)atomic_load(&s->sync),
		(unsigned long long)atomic_load(&s->async),
		(unsigned long long)atomic_load(&s->unhandled),
		(unsigned long long)atomic_load(&s->max_depth),
		(unsigned long long)bus_stats_percentile(s, 50),
		(unsigned long long)bus_stats_percentile(s, 99));
}
