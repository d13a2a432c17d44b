/*
 * irqstress: the interrupt controllers (LAPIC, 8259 pair, IOAPIC) driven
 * by many threads without KVM.  doc/stress.md describes what it checks.
 *
 * Threads: senders raise interrupts; one vCPU thread per LAPIC takes them
 * (pending, acknowledge, EOI) and checks each against what the senders
 * recorded; the main thread runs the clock, the drain and the final checks.
 *
 * Shared state is either a C11 atomic or handed over by thread join: a
 * thread's own counters, latency histograms and trace ring are plain and
 * read only after it was joined.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "vmm/vm.h"

#define MAX_CPUS      32
#define MAX_SENDERS   64
#define FLAT_CPUS     8            /* logical flat destinations: one bit per CPU */
#define FIRST_PIN     16           /* IOAPIC pins 16..23: GSIs no 8259 line shares */
#define NPINS         8
#define NLEVEL_PINS   4            /* the upper four are level-triggered */
#define MAX_NEST      4            /* interrupts a vCPU takes inside a handler */

enum kind { K_IPI, K_TIMER, K_IOAPIC, K_PIC, K_KINDS };
enum stress_mode { MODE_LOCKFREE, MODE_LOCK };
enum timer_style { TIMER_ONESHOT_ONLY, TIMER_DEADLINE_ONLY, TIMER_BOTH };

struct options {
	unsigned senders, cpus;
	double duration;               /* seconds of sending, 0: until @events */
	uint64_t events;               /* raise this many, 0: until @duration */
	unsigned mix[K_KINDS];         /* weights */
	bool mode[2];                  /* which of enum stress_mode to run */
	bool pin;
	uint64_t seed;
	unsigned trace;                /* events shown on a violation */
	enum io_mode io;               /* IOAPIC serializer in lock-free mode */
	unsigned window;               /* interrupts a sender may have in flight */
	unsigned nest_pct;             /* chance to look for a nested interrupt */
	double drain_timeout;          /* seconds without progress that fail the drain */
	unsigned timer_min, timer_max; /* LAPIC timer counts (ns) */
	enum timer_style timer;
	bool verbose;
};

/* ---- Latency histograms: 16 buckets per power of two of nanoseconds. ---- */

#define LAT_SUB     16
#define LAT_BUCKETS (LAT_SUB + 60 * LAT_SUB)

struct latency {
	uint64_t count, max, sum;
	uint32_t bucket[LAT_BUCKETS];
};

void latency_add(struct latency *l, uint64_t ns);
void latency_merge(struct latency *into, const struct latency *from);
/* @pct of 0..100; an estimate within 1/16 of the value. */
uint64_t latency_percentile(const struct latency *l, double pct);

/* ---- The trace: a ring per thread, merged by time on a violation. ---- */

enum trace_type {
	TR_IPI, TR_TIMER_REQ, TR_PIN_EDGE, TR_PIN_ASSERT, TR_PIC_PULSE,
	TR_KICK, TR_PENDING, TR_ACK, TR_INTA, TR_EOI, TR_PIC_EOI, TR_DEASSERT,
	TR_TIMER_ARM, TR_SPURIOUS, TR_VIOLATION,
};

struct trace_event {
	uint64_t t;                    /* clock_ns() */
	uint16_t thread;               /* index into the name table */
	uint8_t type;                  /* enum trace_type */
	uint8_t cpu;
	int32_t vector;
	uint64_t arg;
};

struct trace_ring {
	struct trace_event *ev;
	unsigned size, head;
	uint64_t total;
	char name[16];
};

/* The calling thread's ring (NULL on threads that are not the harness's). */
extern __thread struct trace_ring *trace_self;

void trace_ring_init(struct trace_ring *r, unsigned size, const char *name);
void trace_ring_free(struct trace_ring *r);
/* The last @n events of all @rings, oldest first (threads joined). */
void trace_dump(FILE *out, struct trace_ring *const *rings, unsigned nrings, unsigned n,
		uint64_t t0);

static inline void trace(enum trace_type type, unsigned cpu, int vector, uint64_t arg)
{
	struct trace_ring *r = trace_self;
	struct trace_event *e;

	if (!r || !r->size)
		return;
	e = &r->ev[r->head];
	r->head = r->head + 1 == r->size ? 0 : r->head + 1;
	r->total++;
	*e = (struct trace_event){ .t = clock_ns(), .type = (uint8_t)type, .cpu = (uint8_t)cpu,
				   .vector = vector, .arg = arg };
}

/* ---- Invariant violations. ---- */

extern _Atomic bool stress_failed;
/* Record the first violation (later ones are counted) and stop the run. */
void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *violation_message(void);
unsigned violation_count(void);

/* ---- Per-thread counters, summed after join. ---- */

struct counts {
	uint64_t raised[K_KINDS];      /* interrupts the senders raised (per target CPU) */
	uint64_t acked[K_KINDS];       /* interrupts the vCPUs took */
	uint64_t level_asserts, level_acks, redelivered;
	uint64_t multicast, broadcast; /* IPIs to several CPUs */
	uint64_t nested, spurious, busy;
	uint64_t lapic_acks, lapic_eois, intas;
	uint64_t timer_oneshot, timer_deadline;
	struct latency lat[K_KINDS];
	struct latency all;
};

void counts_add(struct counts *into, const struct counts *from);

/* ---- The shared stage. ---- */

struct lapic;
struct lapic_group;
struct pic;
struct ioapic;
struct rig;

/* One LAPIC's CPU: the vCPU thread and how others wake it. */
struct cpu {
	struct rig *rig;
	unsigned index;
	pthread_t thread;
	struct lapic *apic;
	/* Kick protocol: see vcpu.c. */
	_Alignas(64) _Atomic uint32_t wake;     /* futex word: kicks and requests */
	_Atomic uint32_t kicks;                 /* kicks from the LAPIC only */
	_Atomic bool sleeping;
	/* Timer requests from senders, and what the vCPU armed so far. */
	_Alignas(64) _Atomic uint64_t timer_req;
	_Atomic uint64_t timer_armed, timer_done;
	/* The vCPU's own. */
	_Alignas(64) struct counts c;
	struct trace_ring ring;
	uint64_t rng;
	bool timer_out;                         /* an expiry is due */
	uint64_t timer_due;                     /* its deadline, clock_ns() */
	int stack[MAX_NEST + 1];                /* vectors in service, innermost last */
	unsigned depth;
	uint32_t kicks_seen;
};

/* An IOAPIC pin the senders drive and the vCPUs serve. */
struct pin {
	uint8_t vector;
	bool level;
	int dest;                               /* CPU, or -1: lowest priority to all */
	_Atomic uint64_t stamp;                 /* a delivery is due: since when, who */
	_Atomic bool busy;                      /* a level episode is running */
	_Atomic int remaining;                  /* deliveries still due while asserted */
};

struct sender {
	struct rig *rig;
	unsigned index;
	pthread_t thread;
	_Alignas(64) _Atomic int inflight;
	_Alignas(64) struct counts c;
	struct trace_ring ring;
	uint64_t rng;
	uint8_t *vectors;                       /* the IPI vectors this sender owns */
	unsigned nvectors;
};

/* What owns a LAPIC vector: every vector has one source, so nothing coalesces. */
struct owner {
	uint8_t kind;                           /* enum kind, or K_KINDS: unused */
	uint8_t index;                          /* sender or pin */
};

struct rig {
	const struct options *opt;
	enum stress_mode mode;
	bool locked;                            /* every model call under the global lock */
	struct vm vm;
	struct bus *lapic_timer_bus;            /* what the LAPICs see as vm.bus.timer */
	struct lapic_group *group;
	struct pic *pic;
	struct ioapic *io;
	uint64_t t0;

	struct owner owner[256];
	uint8_t timer_vector;
	uint8_t pic_base[2];
	struct pin pin[NPINS];
	_Atomic uint64_t pic_slot[16];
	_Atomic uint64_t (*ipi_slot)[256];      /* [cpu][vector] */

	struct cpu cpu[MAX_CPUS];
	struct sender sender[MAX_SENDERS];
	_Atomic bool stop_senders, stop_cpus;
	_Atomic int64_t budget;                 /* --events left to raise */
	_Atomic uint64_t progress;              /* bumped on every acknowledge */
	bool drain_failed;                      /* main thread: interrupts were lost */
};

/* A slot value: who raised it (sender or CPU index) and when (ns since t0, never 0). */
static inline uint64_t stamp_make(const struct rig *r, unsigned who)
{
	return ((clock_ns() - r->t0 + 1) << 8) | (who & 0xff);
}
static inline uint64_t stamp_time(const struct rig *r, uint64_t s) { return (s >> 8) - 1 + r->t0; }
static inline unsigned stamp_who(uint64_t s) { return s & 0xff; }

/* rig.c: the VM, the models, the lock of lock mode, the final checks. */
int rig_create(struct rig *r, const struct options *opt, enum stress_mode mode);
void rig_destroy(struct rig *r);
void model_lock(const struct rig *r);
void model_unlock(const struct rig *r);
/* Raise or change an IOAPIC input line (through vm.bus.irq and its serializer). */
void rig_line(struct rig *r, unsigned pin, int action);
/* Outstanding interrupts the harness still waits for. */
uint64_t rig_outstanding(struct rig *r);
/* After every thread was joined: the models must be idle and consistent. */
void rig_check_idle(struct rig *r, const struct counts *total);
void rig_dump(struct rig *r, FILE *out);
void rig_diagnose(struct rig *r, FILE *out);

/* vcpu.c */
void *vcpu_main(void *arg);
void cpu_request(struct cpu *c);            /* wake it: a kick, or other work */
void vcpu_setup(struct cpu *c);             /* owner-side register set-up */
extern const struct lapic_cpu_ops stress_cpu_ops;

/* sender.c */
void *sender_main(void *arg);

/* main.c */
void pin_thread(unsigned slot);

static inline uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: enough for choosing events, and reproducible per thread. */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static inline unsigned rng_below(uint64_t *s, unsigned n)
{
	return n ? (unsigned)((rng_next(s) >> 32) % n) : 0;
}
