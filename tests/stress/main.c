/*
 * irqstress: options, one run per mode, the summary.  See doc/stress.md.
 */
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tests/stress/irqstress.h"

static const char *const kind_names[K_KINDS] = { "ipi", "timer", "ioapic", "pic" };
static const char *const mode_names[2] = { "lockfree", "lock" };

static void usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s [options]\n"
"Stress the LAPIC, 8259 and IOAPIC models without KVM: sender threads raise\n"
"interrupts, one vCPU thread per LAPIC takes them (pending, acknowledge, EOI),\n"
"and every interrupt is checked.  Exit status 0 when every invariant held,\n"
"1 after a violation (the message, a trace of the last events and the model\n"
"state are printed), 2 for bad options.\n"
"\n"
"Sources (--mix weights):\n"
"  ipi     fixed IPIs (lapic_deliver) to one CPU, a logical flat group, or all\n"
"  timer   LAPIC timer expiries: the vCPU arms its timer (one-shot count or\n"
"          TSC deadline), the VMM's timer service fires it\n"
"  ioapic  IOAPIC pins 16-19 edge, 20-23 level (held asserted for 1-4 deliveries,\n"
"          lowered by the handler before its last EOI), fixed or lowest priority\n"
"  pic     8259 lines pulsed; CPU 0 takes them as ExtINT through INTA (LINT0)\n"
"\n"
"Invariants: every edge interrupt is taken exactly once (each source raises\n"
"again only after the previous one was acknowledged, so nothing may coalesce);\n"
"a level pin is re-delivered exactly once per EOI while asserted and never after\n"
"deassert+EOI; an acknowledged vector has nothing higher in IRR and beats the\n"
"class of the one it nests in, and INTA answers the 8259's best request; at the\n"
"end no IRR/ISR bit, 8259 request or IOAPIC Remote IRR is left and the models'\n"
"own counters agree with the harness.\n"
"\n"
"Options:\n"
"  --threads N        sender threads (default 2, at most %d)\n"
"  --cpus N           vCPUs, one LAPIC each (default 4, at most %d)\n"
"  --duration SEC     send for SEC seconds (default 5 unless --events)\n"
"  --events N         stop after raising N interrupts (an IPI to k CPUs counts k,\n"
"                     a level episode its deliveries)\n"
"  --mix LIST         weights, e.g. ipi=40,timer=10,ioapic=30,pic=20 (the default);\n"
"                     kinds left out get 0\n"
"  --mode M           lockfree: the models as they are (lock-free LAPIC and 8259);\n"
"                     lock: every model call behind one global lock;\n"
"                     both (default): one run each, and the ratio\n"
"  --io thread|lock   how the IOAPIC is serialized in lockfree mode: the VMM's\n"
"                     I/O thread, or its global lock (default lock)\n"
"  --pin on|off       pin each thread to a host CPU, round robin (default off)\n"
"  --seed N           random seed (default: from the clock; printed)\n"
"  --trace N          events shown on a violation (default 64)\n"
"  --window N         interrupts one sender may have in flight (default 16)\n"
"  --nest PCT         chance a handler looks for a higher interrupt (default 25)\n"
"  --timer oneshot|deadline|both   LAPIC timer mode (default both)\n"
"  --timer-ns MIN[-MAX]  timer counts in ns (default 1000-20000)\n"
"  --drain-timeout SEC   fail when interrupts stay outstanding for SEC\n"
"                     seconds without any progress (default 10)\n"
"  --verbose          per-source figures\n"
"  --help\n",
		prog, MAX_SENDERS, MAX_CPUS);
}

static void defaults(struct options *o)
{
	memset(o, 0, sizeof(*o));
	o->senders = 2;
	o->cpus = 4;
	o->mix[K_IPI] = 40;
	o->mix[K_TIMER] = 10;
	o->mix[K_IOAPIC] = 30;
	o->mix[K_PIC] = 20;
	o->mode[MODE_LOCKFREE] = o->mode[MODE_LOCK] = true;
	o->io = IO_MODE_LOCK;
	o->seed = clock_ns() ^ (uint64_t)getpid() << 32;
	o->trace = 64;
	o->window = 16;
	o->nest_pct = 25;
	o->drain_timeout = 10;
	o->timer_min = 1000;
	o->timer_max = 20000;
	o->timer = TIMER_BOTH;
}

static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	*out = strtoull(s, &end, 0);
	return !*end && *out <= max;
}

static bool parse_mix(const char *s, unsigned *mix)
{
	char buf[256], *save = NULL, *item;
	unsigned total = 0;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	memset(mix, 0, K_KINDS * sizeof(*mix));
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		unsigned long long v;
		unsigned k;

		if (!eq)
			return false;
		*eq = 0;
		for (k = 0; k < K_KINDS && strcmp(item, kind_names[k]); k++)
			;
		if (k == K_KINDS || !parse_uint(eq + 1, 1000, &v))
			return false;
		mix[k] = (unsigned)v;
		total += (unsigned)v;
	}
	return total > 0;
}

enum { OPT_THREADS = 256, OPT_CPUS, OPT_DURATION, OPT_EVENTS, OPT_MIX, OPT_MODE, OPT_IO,
       OPT_PIN, OPT_SEED, OPT_TRACE, OPT_WINDOW, OPT_NEST, OPT_TIMER, OPT_TIMER_NS,
       OPT_DRAIN, OPT_VERBOSE, OPT_HELP };

static const struct option long_options[] = {
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "events", required_argument, NULL, OPT_EVENTS },
	{ "mix", required_argument, NULL, OPT_MIX },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "io", required_argument, NULL, OPT_IO },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "window", required_argument, NULL, OPT_WINDOW },
	{ "nest", required_argument, NULL, OPT_NEST },
	{ "timer", required_argument, NULL, OPT_TIMER },
	{ "timer-ns", required_argument, NULL, OPT_TIMER_NS },
	{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

static bool parse_seconds(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return *s && !*end && *out > 0 && *out < 1e6;
}

static bool parse_timer_ns(const char *s, struct options *o)
{
	unsigned long long lo, hi;
	char buf[64], *dash;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = 0;
	if (!parse_uint(buf, 100000000, &lo) || !lo)
		return false;
	hi = lo;
	if (dash && !parse_uint(dash + 1, 100000000, &hi))
		return false;
	if (hi < lo)
		return false;
	o->timer_min = (unsigned)lo;
	o->timer_max = (unsigned)hi;
	return true;
}

/* 0: go on, 1: --help done, -1: bad option (message printed). */
static int parse(int argc, char **argv, struct options *o)
{
	bool events_only = false, duration_set = false;
	int c, idx = -1;

	defaults(o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_options, &idx)) != -1) {
		unsigned long long v;
		bool ok = true;

		switch (c) {
		case OPT_THREADS:
			ok = parse_uint(optarg, MAX_SENDERS, &v) && v;
			o->senders = (unsigned)v;
			break;
		case OPT_CPUS:
			ok = parse_uint(optarg, MAX_CPUS, &v) && v;
			o->cpus = (unsigned)v;
			break;
		case OPT_DURATION:
			ok = parse_seconds(optarg, &o->duration);
			duration_set = true;
			break;
		case OPT_EVENTS:
			ok = parse_uint(optarg, UINT64_MAX >> 2, &v) && v;
			o->events = v;
			events_only = true;
			break;
		case OPT_MIX:
			ok = parse_mix(optarg, o->mix);
			break;
		case OPT_MODE:
			o->mode[MODE_LOCKFREE] = !strcmp(optarg, "lockfree") || !strcmp(optarg, "both");
			o->mode[MODE_LOCK] = !strcmp(optarg, "lock") || !strcmp(optarg, "both");
			ok = o->mode[MODE_LOCKFREE] || o->mode[MODE_LOCK];
			break;
		case OPT_IO:
			ok = !strcmp(optarg, "thread") || !strcmp(optarg, "lock");
			o->io = !strcmp(optarg, "thread") ? IO_MODE_THREAD : IO_MODE_LOCK;
			break;
		case OPT_PIN:
			ok = !strcmp(optarg, "on") || !strcmp(optarg, "off");
			o->pin = !strcmp(optarg, "on");
			break;
		case OPT_SEED:
			ok = parse_uint(optarg, UINT64_MAX, &v);
			o->seed = v;
			break;
		case OPT_TRACE:
			ok = parse_uint(optarg, 1000000, &v);
			o->trace = (unsigned)v;
			break;
		case OPT_WINDOW:
			ok = parse_uint(optarg, 1000000, &v) && v;
			o->window = (unsigned)v;
			break;
		case OPT_NEST:
			ok = parse_uint(optarg, 100, &v);
			o->nest_pct = (unsigned)v;
			break;
		case OPT_TIMER:
			ok = !strcmp(optarg, "oneshot") || !strcmp(optarg, "deadline") ||
			     !strcmp(optarg, "both");
			o->timer = !strcmp(optarg, "oneshot") ? TIMER_ONESHOT_ONLY :
				   !strcmp(optarg, "deadline") ? TIMER_DEADLINE_ONLY : TIMER_BOTH;
			break;
		case OPT_TIMER_NS:
			ok = parse_timer_ns(optarg, o);
			break;
		case OPT_DRAIN:
			ok = parse_seconds(optarg, &o->drain_timeout);
			break;
		case OPT_VERBOSE:
			o->verbose = true;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout, argv[0]);
			return 1;
		default:
			fprintf(stderr, "%s: unknown option or missing argument: %s\n", argv[0],
				argv[optind - 1]);
			fprintf(stderr, "Try '%s --help'.\n", argv[0]);
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "%s: bad value for --%s: '%s'\n", argv[0],
				long_options[idx].name, optarg);
			fprintf(stderr, "Try '%s --help'.\n", argv[0]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return -1;
	}
	if (!duration_set && !events_only)
		o->duration = 5;
	return 0;
}

void pin_thread(unsigned slot)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(slot % (unsigned)(n > 0 ? n : 1), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return (x ^ (x >> 31)) | 1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	nanosleep(&ts, NULL);
}

struct result {
	bool ran, ok;
	double seconds;
	struct counts total;
};

static void print_us(FILE *out, const char *label, uint64_t ns)
{
	if (ns < 10000)
		fprintf(out, " %s %.2f us", label, (double)ns / 1e3);
	else if (ns < 10000000)
		fprintf(out, " %s %.0f us", label, (double)ns / 1e3);
	else
		fprintf(out, " %s %.1f ms", label, (double)ns / 1e6);
}

static void print_latency(FILE *out, const struct latency *l)
{
	print_us(out, "p50", latency_percentile(l, 50));
	print_us(out, "p90", latency_percentile(l, 90));
	print_us(out, "p99", latency_percentile(l, 99));
	print_us(out, "max", l->max);
}

static void print_result(FILE *out, const struct options *o, enum stress_mode m,
			 const struct result *res)
{
	const struct counts *t = &res->total;
	uint64_t n = t->all.count;

	fprintf(out, "%s: %llu interrupts in %.2f s = %.0f/s; latency", mode_names[m],
		(unsigned long long)n, res->seconds, res->seconds > 0 ? (double)n / res->seconds : 0);
	print_latency(out, &t->all);
	fprintf(out, "; invariants %s\n", res->ok ? "hold" : "VIOLATED");
	if (!o->verbose)
		return;
	for (unsigned k = 0; k < K_KINDS; k++) {
		fprintf(out, "  %-7s %10llu", kind_names[k], (unsigned long long)t->acked[k]);
		print_latency(out, &t->lat[k]);
		fputc('\n', out);
	}
	fprintf(out, "  IPIs to several CPUs %llu, to all %llu; timer one-shot %llu, deadline %llu\n",
		(unsigned long long)t->multicast, (unsigned long long)t->broadcast,
		(unsigned long long)t->timer_oneshot, (unsigned long long)t->timer_deadline);
	fprintf(out, "  level episodes %llu, re-delivered after EOI %llu; 8259 INTA %llu"
		" (spurious %llu); nested %llu; no free source %llu times\n",
		(unsigned long long)t->level_asserts, (unsigned long long)t->redelivered,
		(unsigned long long)t->intas, (unsigned long long)t->spurious,
		(unsigned long long)t->nested, (unsigned long long)t->busy);
}

static void start_threads(struct rig *r)
{
	const struct options *o = r->opt;

	for (unsigned i = 0; i < o->cpus; i++) {
		struct cpu *c = &r->cpu[i];
		char name[16];

		snprintf(name, sizeof(name), "cpu%u", i);
		trace_ring_init(&c->ring, o->trace, name);
		c->rng = splitmix(o->seed ^ (0x100 + i));
		vcpu_setup(c);
	}
	for (unsigned s = 0; s < o->senders; s++) {
		char name[16];

		snprintf(name, sizeof(name), "send%u", s);
		trace_ring_init(&r->sender[s].ring, o->trace, name);
		r->sender[s].rng = splitmix(o->seed ^ (0x200 + s));
	}
	for (unsigned i = 0; i < o->cpus; i++)
		if (pthread_create(&r->cpu[i].thread, NULL, vcpu_main, &r->cpu[i]))
			abort();
	for (unsigned s = 0; s < o->senders; s++)
		if (pthread_create(&r->sender[s].thread, NULL, sender_main, &r->sender[s]))
			abort();
}

/* Wait until nothing is outstanding; fail only when progress stops. */
static void drain(struct rig *r)
{
	uint64_t last = atomic_load(&r->progress), since = clock_ns();
	uint64_t limit = (uint64_t)(r->opt->drain_timeout * 1e9);

	while (!atomic_load(&stress_failed) && rig_outstanding(r)) {
		uint64_t p = atomic_load(&r->progress), now = clock_ns();

		if (p != last) {
			last = p;
			since = now;
		} else if (now - since > limit) {
			uint64_t n = rig_outstanding(r);

			violation("lost interrupts: %llu raised but never taken, no progress for"
				  " %.1f s after the senders stopped", (unsigned long long)n,
				  r->opt->drain_timeout);
			r->drain_failed = true;
			break;
		}
		sleep_ns(1000000);
	}
}

/* Threads joined: the message, where lost interrupts are, the trace, the models. */
static void report_failure(struct rig *r)
{
	struct trace_ring *rings[MAX_CPUS + MAX_SENDERS];
	unsigned n = 0, more = violation_count() - 1;
	char *dump = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&dump, &len);

	/* Before the diagnosis folds the LAPICs' pending bitmaps. */
	if (mem) {
		rig_dump(r, mem);
		fclose(mem);
	}
	printf("INVARIANT VIOLATED: %s\n", violation_message());
	if (more)
		printf("(and %u more violations after it)\n", more);
	/* After other violations the vCPUs stopped early: outstanding means nothing then. */
	if (r->drain_failed) {
		printf("raised and never taken:\n");
		rig_diagnose(r, stdout);
	}
	for (unsigned i = 0; i < r->opt->cpus; i++)
		rings[n++] = &r->cpu[i].ring;
	for (unsigned s = 0; s < r->opt->senders; s++)
		rings[n++] = &r->sender[s].ring;
	trace_dump(stdout, rings, n, r->opt->trace, r->t0);
	if (dump)
		fputs(dump, stdout);
	free(dump);
}

static int run_mode(const struct options *o, enum stress_mode m, struct result *res)
{
	struct rig *r = calloc(1, sizeof(*r));
	uint64_t start, end;

	if (!r || rig_create(r, o, m)) {
		fprintf(stderr, "irqstress: cannot set up the models\n");
		if (r)
			rig_destroy(r);
		free(r);
		return -1;
	}
	atomic_store(&r->budget, (int64_t)o->events);
	start = clock_ns();
	start_threads(r);
	while (!atomic_load(&stress_failed)) {
		if (o->duration > 0 && clock_ns() - start >= (uint64_t)(o->duration * 1e9))
			break;
		if (o->events && atomic_load(&r->budget) <= 0)
			break;
		sleep_ns(5000000);
	}
	atomic_store(&r->stop_senders, true);
	for (unsigned s = 0; s < o->senders; s++)
		pthread_join(r->sender[s].thread, NULL);
	drain(r);
	end = clock_ns();
	atomic_store(&r->stop_cpus, true);
	for (unsigned i = 0; i < o->cpus; i++)
		cpu_request(&r->cpu[i]);
	for (unsigned i = 0; i < o->cpus; i++)
		pthread_join(r->cpu[i].thread, NULL);

	memset(&res->total, 0, sizeof(res->total));
	for (unsigned s = 0; s < o->senders; s++)
		counts_add(&res->total, &r->sender[s].c);
	for (unsigned i = 0; i < o->cpus; i++)
		counts_add(&res->total, &r->cpu[i].c);
	res->total.redelivered = res->total.level_acks - res->total.level_asserts;
	if (!atomic_load(&stress_failed))
		rig_check_idle(r, &res->total);
	res->ran = true;
	res->ok = !atomic_load(&stress_failed);
	res->seconds = (double)(end - start) / 1e9;
	if (!res->ok)
		report_failure(r);
	print_result(stdout, o, m, res);
	fflush(stdout);
	for (unsigned i = 0; i < o->cpus; i++)
		trace_ring_free(&r->cpu[i].ring);
	for (unsigned s = 0; s < o->senders; s++)
		trace_ring_free(&r->sender[s].ring);
	rig_destroy(r);
	free(r);
	return res->ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct options o;
	struct result res[2] = { { 0 } };
	int rc = parse(argc, argv, &o);

	if (rc)
		return rc > 0 ? 0 : 2;
	printf("irqstress: %u senders, %u vCPUs, mix ipi=%u timer=%u ioapic=%u pic=%u, ",
	       o.senders, o.cpus, o.mix[K_IPI], o.mix[K_TIMER], o.mix[K_IOAPIC], o.mix[K_PIC]);
	if (o.events)
		printf("%llu events", (unsigned long long)o.events);
	else
		printf("%.1f s", o.duration);
	printf(", IOAPIC behind the %s in lockfree mode, seed %llu\n",
	       o.io == IO_MODE_THREAD ? "I/O thread" : "global lock", (unsigned long long)o.seed);
	fflush(stdout);
	for (unsigned m = 0; m < 2; m++) {
		if (!o.mode[m])
			continue;
		rc = run_mode(&o, (enum stress_mode)m, &res[m]);
		if (rc)
			return 1;
	}
	if (res[MODE_LOCKFREE].ran && res[MODE_LOCK].ran) {
		const struct result *f = &res[MODE_LOCKFREE], *l = &res[MODE_LOCK];
		double rf = (double)f->total.all.count / f->seconds;
		double rl = (double)l->total.all.count / l->seconds;

		printf("lockfree/lock: %.2fx the interrupts per second; latency p50 %.2fx,"
		       " p99 %.2fx\n", rl > 0 ? rf / rl : 0,
		       (double)latency_percentile(&f->total.all, 50) /
		       (double)(latency_percentile(&l->total.all, 50) | 1),
		       (double)latency_percentile(&f->total.all, 99) /
		       (double)(latency_percentile(&l->total.all, 99) | 1));
	}
	return 0;
}
