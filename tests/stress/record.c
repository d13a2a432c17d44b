/*
 * What the harness keeps: latency histograms, per-thread trace rings and
 * the first invariant violation.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "tests/stress/irqstress.h"

/* ---- Latency: bucket i < 16 is i ns; then 16 buckets per power of two. ---- */

static unsigned bucket_of(uint64_t ns)
{
	unsigned e, idx;

	if (ns < LAT_SUB)
		return (unsigned)ns;
	e = 63 - (unsigned)__builtin_clzll(ns);          /* >= 4 */
	idx = LAT_SUB + (e - 4) * LAT_SUB + (unsigned)((ns >> (e - 4)) & (LAT_SUB - 1));
	return idx < LAT_BUCKETS ? idx : LAT_BUCKETS - 1;
}

/* The middle of bucket @i. */
static uint64_t bucket_value(unsigned i)
{
	unsigned e, sub;
	uint64_t lo;

	if (i < LAT_SUB)
		return i;
	e = (i - LAT_SUB) / LAT_SUB + 4;
	sub = (i - LAT_SUB) % LAT_SUB;
	lo = (1ull << e) + ((uint64_t)sub << (e - 4));
	return lo + (1ull << (e - 4)) / 2;
}

void latency_add(struct latency *l, uint64_t ns)
{
	l->count++;
	l->sum += ns;
	if (ns > l->max)
		l->max = ns;
	l->bucket[bucket_of(ns)]++;
}

void latency_merge(struct latency *into, const struct latency *from)
{
	into->count += from->count;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
}

uint64_t latency_percentile(const struct latency *l, double pct)
{
	uint64_t want, seen = 0;

	if (!l->count)
		return 0;
	want = (uint64_t)((double)l->count * pct / 100.0);
	if (want >= l->count)
		return l->max;
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		seen += l->bucket[i];
		if (seen > want) {
			uint64_t v = bucket_value(i);

			return v < l->max ? v : l->max;
		}
	}
	return l->max;
}

void counts_add(struct counts *into, const struct counts *from)
{
	for (unsigned k = 0; k < K_KINDS; k++) {
		into->raised[k] += from->raised[k];
		into->acked[k] += from->acked[k];
		latency_merge(&into->lat[k], &from->lat[k]);
	}
	latency_merge(&into->all, &from->all);
	into->level_asserts += from->level_asserts;
	into->level_acks += from->level_acks;
	into->redelivered += from->redelivered;
	into->multicast += from->multicast;
	into->broadcast += from->broadcast;
	into->nested += from->nested;
	into->spurious += from->spurious;
	into->busy += from->busy;
	into->lapic_acks += from->lapic_acks;
	into->lapic_eois += from->lapic_eois;
	into->intas += from->intas;
	into->timer_oneshot += from->timer_oneshot;
	into->timer_deadline += from->timer_deadline;
}

/* ---- Trace rings. ---- */

__thread struct trace_ring *trace_self;

void trace_ring_init(struct trace_ring *r, unsigned size, const char *name)
{
	r->ev = size ? calloc(size, sizeof(*r->ev)) : NULL;
	r->size = r->ev ? size : 0;
	r->head = 0;
	r->total = 0;
	snprintf(r->name, sizeof(r->name), "%s", name);
}

void trace_ring_free(struct trace_ring *r)
{
	free(r->ev);
	r->ev = NULL;
	r->size = 0;
}

static const char *const trace_names[] = {
	[TR_IPI] = "ipi", [TR_TIMER_REQ] = "timer-req", [TR_PIN_EDGE] = "pin-edge",
	[TR_PIN_ASSERT] = "pin-assert", [TR_PIC_PULSE] = "pic-pulse", [TR_KICK] = "kick",
	[TR_PENDING] = "pending", [TR_ACK] = "ack", [TR_INTA] = "inta", [TR_EOI] = "eoi",
	[TR_PIC_EOI] = "pic-eoi", [TR_DEASSERT] = "pin-deassert", [TR_TIMER_ARM] = "timer-arm",
	[TR_SPURIOUS] = "spurious", [TR_VIOLATION] = "VIOLATION",
};

/* What the fields mean per type, for the reader of a failure. */
static void trace_print(FILE *out, const struct trace_event *e, const char *thread, uint64_t t0)
{
	fprintf(out, "  %+12.3f us  %-7s %-12s cpu %-3u", (double)(int64_t)(e->t - t0) / 1e3,
		thread, trace_names[e->type], e->cpu);
	if (e->vector >= 0)
		fprintf(out, " vec %#04x", (unsigned)e->vector);
	else
		fprintf(out, " vec %4d", e->vector);
	switch (e->type) {
	case TR_IPI:
		fprintf(out, "  targets %#llx", (unsigned long long)e->arg);
		break;
	case TR_PIN_EDGE: case TR_PIN_ASSERT: case TR_DEASSERT:
		fprintf(out, "  pin %llu", (unsigned long long)e->arg);
		break;
	case TR_PIC_PULSE: case TR_PIC_EOI: case TR_SPURIOUS:
		fprintf(out, "  irq %llu", (unsigned long long)e->arg);
		break;
	case TR_TIMER_ARM:
		fprintf(out, "  count %llu ns", (unsigned long long)e->arg);
		break;
	case TR_PENDING: case TR_ACK: case TR_INTA: case TR_EOI:
		fprintf(out, "  depth %llu", (unsigned long long)e->arg);
		break;
	default:
		break;
	}
	fputc('\n', out);
}

struct tagged {
	struct trace_event ev;
	const char *thread;
};

static int by_time(const void *a, const void *b)
{
	const struct tagged *x = a, *y = b;

	return x->ev.t < y->ev.t ? -1 : x->ev.t > y->ev.t;
}

void trace_dump(FILE *out, struct trace_ring *const *rings, unsigned nrings, unsigned n,
		uint64_t t0)
{
	size_t total = 0, k = 0;
	struct tagged *all;

	for (unsigned i = 0; i < nrings; i++)
		total += rings[i]->total < rings[i]->size ? rings[i]->total : rings[i]->size;
	all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		return;
	for (unsigned i = 0; i < nrings; i++) {
		const struct trace_ring *r = rings[i];
		unsigned have = r->total < r->size ? (unsigned)r->total : r->size;

		for (unsigned j = 0; j < have; j++)
			all[k++] = (struct tagged){ .ev = r->ev[j], .thread = r->name };
	}
	qsort(all, total, sizeof(*all), by_time);
	if (!n || !total) {
		free(all);
		return;
	}
	fprintf(out, "last %zu of the events (time from the start of the run):\n",
		total < n ? total : (size_t)n);
	for (size_t i = total > n ? total - n : 0; i < total; i++)
		trace_print(out, &all[i].ev, all[i].thread, t0);
	free(all);
}

/* ---- Violations: the first one is the report, the rest are counted. ---- */

_Atomic bool stress_failed;
static pthread_mutex_t violation_lock = PTHREAD_MUTEX_INITIALIZER;
static char first[512];
static unsigned nviolations;

void violation(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&violation_lock);
	if (!nviolations++) {
		va_start(ap, fmt);
		vsnprintf(first, sizeof(first), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&violation_lock);
	trace(TR_VIOLATION, 0, -1, 0);
	atomic_store(&stress_failed, true);
}

/* The lock orders us after the writer: the text never changes once written. */
const char *violation_message(void)
{
	pthread_mutex_lock(&violation_lock);
	pthread_mutex_unlock(&violation_lock);
	return first;
}

unsigned violation_count(void)
{
	unsigned n;

	pthread_mutex_lock(&violation_lock);
	n = nviolations;
	pthread_mutex_unlock(&violation_lock);
	return n;
}
