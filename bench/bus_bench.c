/*
 * bus_bench: the cost of a bus message on each path a device access can
 * take, without KVM: 1, 2, 4, 8 sender threads (standing in for vCPUs)
 * send port-I/O messages to a testdev, and every send is timed with the
 * TSC.
 *
 *   empty          the timing loop alone (subtract it from the others)
 *   claimed        a read of a claimed testdev: runs on the sender
 *   iothread-sync  a read through the I/O thread (spin budget as the VMM
 *                  chooses it: 2000 pauses while a core is free, else 0)
 *   iothread-sync-nospin   the same, sleeping at once
 *   iothread-async a posted write through the I/O thread
 *   lock-sync      a read under the global lock, on the sender
 *   lock-async     a posted write under the global lock (runs inline)
 *   classic-sync   a read through the classic I/O thread (mutex queue,
 *                  counting semaphore, one semaphore per caller)
 *   classic-async  a posted write through it
 *   iothread-async-slow, lock-async-slow, classic-async-slow
 *                  posted writes to a device that works SLOW_NS per access
 *                  (a busy loop: a stand-in for real emulation work): the
 *                  device time is serialized either way, the question is
 *                  who waits for it
 *
 * Throughput counts messages the device handled: asynchronous cells end
 * with a synchronous read that queues behind every posted write (both
 * queues are FIFO), so the time until it returns includes the drain, and
 * the testdev's write counter must equal the number of writes sent.
 *
 * Output, one line per figure: "R bus <case> <threads> <metric> <value>",
 * metrics p50_ns, p99_ns, mps (messages per second); "ERROR ..." lines
 * for wrong answers (and exit status 1).
 *
 * Usage: bus_bench [--duration-ms N] [--threads 1,2,4,8] [--cases a,b,...]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bench/classic_iothread.h"
#include "bench/hist.h"
#include "bus/call.h"
#include "bus/completion.h"
#include "bus/message.h"
#include "vmm/device.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/vm.h"

#define MAX_THREADS  64
#define SERIAL_PORT  0xe0      /* testdev behind the serializer */
#define CLAIMED_PORT 0x2e0     /* testdev that claims its messages */
#define REG_SCRATCH  0x0
#define REG_ID       0x4
#define REG_WCOUNT   0xc
#define TESTDEV_ID   0x56454454u
#define SLOW_PORT    0x300     /* the slow device, behind the serializer */
#define SLOW_NS      1000

enum path { PATH_NONE, PATH_CLAIMED, PATH_IOTHREAD, PATH_LOCK, PATH_CLASSIC };
enum spin { SPIN_NONE, SPIN_VMM };

struct bench_case {
	const char *name;
	enum path path;
	bool async;
	enum spin spin;
	bool slow;
};

static const struct bench_case cases[] = {
	{ "empty", PATH_NONE, false, SPIN_NONE, false },
	{ "claimed", PATH_CLAIMED, false, SPIN_NONE, false },
	{ "iothread-sync", PATH_IOTHREAD, false, SPIN_VMM, false },
	{ "iothread-sync-nospin", PATH_IOTHREAD, false, SPIN_NONE, false },
	{ "iothread-async", PATH_IOTHREAD, true, SPIN_NONE, false },
	{ "lock-sync", PATH_LOCK, false, SPIN_NONE, false },
	{ "lock-async", PATH_LOCK, true, SPIN_NONE, false },
	{ "classic-sync", PATH_CLASSIC, false, SPIN_NONE, false },
	{ "classic-async", PATH_CLASSIC, true, SPIN_NONE, false },
	{ "iothread-async-slow", PATH_IOTHREAD, true, SPIN_NONE, true },
	{ "lock-async-slow", PATH_LOCK, true, SPIN_NONE, true },
	{ "classic-async-slow", PATH_CLASSIC, true, SPIN_NONE, true },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/*
 * The slow device: every access busy-waits SLOW_NS; a read answers how
 * many writes it took since the last read.  Serialized, so plain state
 * would do; the atomic keeps the benchmark honest if that ever changes.
 */
struct slowdev {
	uint64_t cycles;
	_Atomic uint32_t writes;
};

struct bench {
	struct vm vm;
	struct slowdev slow;
	struct classic_iothread *classic;
	unsigned duration_ms;
	long cores;
	int errors;
};

struct sender {
	const struct bench_case *bc;
	struct bench *b;
	unsigned index;
	pthread_barrier_t *start;
	_Atomic bool *stop;
	uint64_t ops, wrong;
	struct hist hist;
	pthread_t thread;
};

static bool slowdev_pio(void *dev, uint64_t addr, void *msg)
{
	struct slowdev *d = dev;
	struct msg_pio *m = msg;
	uint64_t t0 = rdtsc_now();

	(void)addr;
	while (rdtsc_now() - t0 < d->cycles)
		__builtin_ia32_pause();
	if (m->write)
		atomic_fetch_add_explicit(&d->writes, 1, memory_order_relaxed);
	else
		m->value = atomic_exchange_explicit(&d->writes, 0, memory_order_relaxed);
	return true;
}

static bool pio(struct bench *b, uint16_t port, bool write, uint32_t *value, bool async)
{
	struct msg_pio m = { .port = port, .size = 4, .write = write, .value = *value };
	bool ok;

	if (async)
		return range_bus_send_async(b->vm.bus.pio, port, &m);
	ok = range_bus_send(b->vm.bus.pio, port, &m);
	*value = m.value;
	return ok;
}

/* One message of the case; false if the answer was wrong. */
static bool one_op(struct sender *s, uint32_t i)
{
	const struct bench_case *bc = s->bc;
	uint16_t base = bc->path == PATH_CLAIMED ? CLAIMED_PORT : SERIAL_PORT;
	uint32_t v = i;

	if (bc->path == PATH_NONE)
		return true;
	if (bc->slow)
		return pio(s->b, SLOW_PORT, true, &v, true);
	if (bc->async)
		return pio(s->b, base + REG_SCRATCH, true, &v, true);
	return pio(s->b, base + REG_ID, false, &v, false) && v == TESTDEV_ID;
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint32_t i = 0;

	bus_thread_enter();
	bus_current_vcpu = (int)s->index;
	pthread_barrier_wait(s->start);
	while (!atomic_load_explicit(s->stop, memory_order_relaxed)) {
		uint64_t t0 = rdtsc_now();
		bool ok = one_op(s, i++);

		hist_add(&s->hist, rdtsc_now() - t0);
		s->wrong += !ok;
	}
	s->ops = i;
	bus_thread_exit();
	return NULL;
}

static const struct bus_serializer *serializer_of(struct bench *b, enum path p)
{
	switch (p) {
	case PATH_LOCK:
		return global_lock_serializer();
	case PATH_CLASSIC:
		return classic_iothread_serializer(b->classic);
	default:
		return iothread_serializer(b->vm.iothread);
	}
}

static uint64_t now_ns(void)
{
	return clock_ns();
}

static void report(const char *bc, unsigned n, const char *metric, double v)
{
	printf("R bus %s %u %s %.1f\n", bc, n, metric, v);
}

static void error(struct bench *b, const char *bc, unsigned n, const char *what,
		  unsigned long long got, unsigned long long want)
{
	printf("ERROR bus %s %u: %s: got %llu, want %llu\n", bc, n, what, got, want);
	b->errors++;
}

static void run_cell(struct bench *b, const struct bench_case *bc, unsigned n)
{
	static struct sender senders[MAX_THREADS];
	pthread_barrier_t start;
	_Atomic bool stop = false;
	struct timespec d = { b->duration_ms / 1000, (long)(b->duration_ms % 1000) * 1000000 };
	struct hist *all = calloc(1, sizeof(*all));
	uint64_t t0, t1, ops = 0, wrong = 0;
	uint32_t count = 0;
	uint16_t count_port = bc->slow ? SLOW_PORT : SERIAL_PORT + REG_WCOUNT;

	range_bus_set_serializer(b->vm.bus.pio, serializer_of(b, bc->path));
	completion_spin_budget = bc->spin == SPIN_VMM && (long)n + 1 <= b->cores ? 2000 : 0;
	if (bc->async)   /* zero the write counter: a write to WCOUNT, a read of slowdev */
		pio(b, count_port, !bc->slow, &count, false);
	pthread_barrier_init(&start, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		senders[i] = (struct sender){ .bc = bc, .b = b, .index = i, .start = &start,
					      .stop = &stop };
		pthread_create(&senders[i].thread, NULL, sender_main, &senders[i]);
	}
	pthread_barrier_wait(&start);
	t0 = now_ns();
	nanosleep(&d, NULL);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(senders[i].thread, NULL);
		hist_merge(all, &senders[i].hist);
		ops += senders[i].ops;
		wrong += senders[i].wrong;
	}
	if (bc->async)   /* queued behind every posted write: the drain */
		pio(b, count_port, false, &count, false);
	t1 = now_ns();
	pthread_barrier_destroy(&start);

	report(bc->name, n, "p50_ns", tsc_ns(hist_percentile(all, 50)));
	report(bc->name, n, "p99_ns", tsc_ns(hist_percentile(all, 99)));
	report(bc->name, n, "mps", (double)ops * 1e9 / (double)(t1 - t0));
	if (wrong)
		error(b, bc->name, n, "wrong answers or unhandled sends", wrong, 0);
	if (bc->async && count != (uint32_t)ops)
		error(b, bc->name, n, "writes the device counted", count, (uint32_t)ops);
	fflush(stdout);
	free(all);
}

static int parse_list(const char *s, unsigned *out, unsigned max)
{
	unsigned n = 0;
	char *end;

	while (*s && n < max) {
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || !v || v > MAX_THREADS)
			return -1;
		out[n++] = (unsigned)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			return -1;
	}
	return n ? (int)n : -1;
}

static bool case_wanted(const char *list, const char *name)
{
	size_t len = strlen(name);

	if (!list)
		return true;
	for (const char *p = list; (p = strstr(p, name)); p += len)
		if ((p == list || p[-1] == ',') && (p[len] == ',' || !p[len]))
			return true;
	return false;
}

static int setup(struct bench *b)
{
	if (vm_init_buses(&b->vm, IO_MODE_THREAD) ||
	    device_create(&b->vm, "testdev:0xe0,0xfebf0000") ||
	    device_create(&b->vm, "testdev:0x2e0,0xfebe0000,claimed"))
		return -1;
	b->slow.cycles = (uint64_t)(SLOW_NS * tsc_calibrate());
	if (range_bus_add(b->vm.bus.pio, SLOW_PORT, 4, slowdev_pio, false, &b->slow))
		return -1;
	b->classic = classic_iothread_start();
	return b->classic ? 0 : -1;
}

static void teardown(struct bench *b)
{
	range_bus_set_serializer(b->vm.bus.pio, iothread_serializer(b->vm.iothread));
	classic_iothread_stop(b->classic);
	vm_run_exit_hooks(&b->vm);
	vm_fini_buses(&b->vm);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "cases", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct bench b;
	unsigned threads[16] = { 1, 2, 4, 8 }, nthreads = 4;
	const char *only = NULL;
	int c, n;

	b.duration_ms = 200;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			b.duration_ms = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 't':
			n = parse_list(optarg, threads, 16);
			if (n < 0) {
				fprintf(stderr, "bus_bench: bad --threads '%s'\n", optarg);
				return 2;
			}
			nthreads = (unsigned)n;
			break;
		case 'c':
			only = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [--duration-ms N] [--threads 1,2,4,8] "
				"[--cases name,...]\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	b.cores = sysconf(_SC_NPROCESSORS_ONLN);
	printf("R bus - 0 tsc_ghz %.3f\n", tsc_calibrate());
	fflush(stdout);
	if (setup(&b)) {
		printf("ERROR bus: cannot set up the buses and testdevs\n");
		return 1;
	}
	/* Thread counts outside, cases inside: drift hits every case alike. */
	for (unsigned t = 0; t < nthreads; t++)
		for (unsigned i = 0; i < NCASES; i++)
			if (case_wanted(only, cases[i].name))
				run_cell(&b, &cases[i], threads[t]);
	teardown(&b);
	return b.errors ? 1 : 0;
}
