/*
 * Sender threads: raise interrupts of every kind the mix asks for.
 *
 * Exactly-once needs every interrupt to be distinguishable from the next
 * one with the same vector, so a source raises again only after the vCPU
 * took the previous one: an IPI vector belongs to one sender and has a
 * slot per CPU, an IOAPIC pin and an 8259 line have one slot each.  A
 * sender records the time and its index in the slot before raising (the
 * vCPU empties it on acknowledge), so two raises never meet in IRR and the
 * LAPIC's coalescing counter must stay at 0.  A sender with no free slot
 * moves on (and yields), it never waits for one.
 */
#include <sched.h>
#include "devices/lapic.h"
#include "devices/pic8259.h"
#include "tests/stress/irqstress.h"

/* The 8259 lines the senders pulse: all but the cascade and the spurious IRQ 7/15. */
static const uint8_t pic_lines[] = { 0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14 };
#define NPIC_LINES (sizeof(pic_lines) / sizeof(pic_lines[0]))
#define TRIES      4

static bool room(struct sender *s, unsigned n)
{
	int in = atomic_load_explicit(&s->inflight, memory_order_relaxed);

	return in == 0 || in + (int)n <= (int)s->rig->opt->window;
}

/* A fixed IPI to one CPU, a logical flat group, or all (broadcast or shorthand). */
static unsigned raise_ipi(struct sender *s)
{
	struct rig *r = s->rig;
	unsigned ncpu = r->opt->cpus, form = rng_below(&s->rng, 100), n = 0;
	uint32_t mask;
	struct msg_apic msg = { .delivery = APIC_DM_FIXED, .source = UINT32_MAX };
	uint64_t stamp;
	unsigned accepted;

	if (form < 70 || ncpu == 1) {
		unsigned cpu = rng_below(&s->rng, ncpu);

		mask = 1u << cpu;
		msg.dest = cpu;
	} else if (form < 85 && ncpu <= FLAT_CPUS) {
		mask = (uint32_t)(rng_next(&s->rng) >> 40) & ((1u << ncpu) - 1);
		if (!mask)
			mask = 1;
		msg.logical = true;
		msg.dest = mask;
	} else {
		mask = ncpu == 32 ? ~0u : (1u << ncpu) - 1;
		if (form & 1)
			msg.shorthand = APIC_SH_ALL;
		else
			msg.dest = 0xff;
	}
	n = (unsigned)__builtin_popcount(mask);
	if (!room(s, n))
		return 0;
	for (unsigned t = 0; t < TRIES && !msg.vector; t++) {
		uint8_t v = s->vectors[rng_below(&s->rng, s->nvectors)];
		bool free = true;

		/* Only this sender fills these slots: free now means free when we raise. */
		for (unsigned c = 0; c < ncpu && free; c++)
			free = !(mask >> c & 1) || !atomic_load(&r->ipi_slot[c][v]);
		if (free)
			msg.vector = v;
	}
	if (!msg.vector)
		return 0;
	stamp = stamp_make(r, s->index);
	atomic_fetch_add_explicit(&s->inflight, (int)n, memory_order_relaxed);
	for (unsigned c = 0; c < ncpu; c++)
		if (mask >> c & 1)
			atomic_store(&r->ipi_slot[c][msg.vector], stamp);
	trace(TR_IPI, msg.dest, msg.vector, mask);
	model_lock(r);
	accepted = lapic_deliver(r->group, &msg);
	model_unlock(r);
	if (accepted != n)
		violation("IPI vector %#x to %#x (%s): %u CPUs accepted, %u addressed", msg.vector,
			  msg.dest, msg.logical ? "logical" : "physical", accepted, n);
	s->c.raised[K_IPI] += n;
	if (n > 1 && n == ncpu)
		s->c.broadcast++;
	else if (n > 1)
		s->c.multicast++;
	return n;
}

/* Ask a CPU to arm its LAPIC timer (only its owner may write the registers). */
static unsigned raise_timer(struct sender *s)
{
	struct rig *r = s->rig;
	struct cpu *c = &r->cpu[rng_below(&s->rng, r->opt->cpus)];

	/* One expiry in flight and one queued per CPU is enough to keep it busy. */
	if (atomic_load(&c->timer_req) - atomic_load(&c->timer_armed) >= 2)
		return 0;
	atomic_fetch_add(&c->timer_req, 1);
	trace(TR_TIMER_REQ, c->index, r->timer_vector, 0);
	cpu_request(c);
	s->c.raised[K_TIMER]++;
	return 1;
}

/* An edge on pins 16..19; a level episode of 1..4 deliveries on pins 20..23. */
static unsigned raise_pin(struct sender *s)
{
	struct rig *r = s->rig;

	if (!room(s, 1))
		return 0;
	for (unsigned t = 0; t < TRIES; t++) {
		unsigned k = rng_below(&s->rng, NPINS);
		struct pin *p = &r->pin[k];
		uint64_t none = 0, stamp = stamp_make(r, s->index);
		bool idle = false;

		if (!p->level) {
			if (!atomic_compare_exchange_strong(&p->stamp, &none, stamp))
				continue;
			atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
			trace(TR_PIN_EDGE, p->dest < 0 ? 0xff : (unsigned)p->dest, p->vector,
			      FIRST_PIN + k);
			rig_line(r, k, IRQ_EDGE);
			s->c.raised[K_IOAPIC]++;
			return 1;
		}
		if (!atomic_compare_exchange_strong(&p->busy, &idle, true))
			continue;
		int want = 1 + (int)rng_below(&s->rng, 4);

		atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
		atomic_store(&p->remaining, want);
		atomic_store(&p->stamp, stamp);
		trace(TR_PIN_ASSERT, p->dest < 0 ? 0xff : (unsigned)p->dest, p->vector,
		      FIRST_PIN + k);
		rig_line(r, k, IRQ_ASSERT);
		s->c.raised[K_IOAPIC] += (uint64_t)want;
		s->c.level_asserts++;
		return (unsigned)want;
	}
	return 0;
}

/* A pulse on an 8259 line: INTR at CPU 0's LINT0, the vector comes from INTA. */
static unsigned raise_pic(struct sender *s)
{
	struct rig *r = s->rig;

	if (!room(s, 1))
		return 0;
	for (unsigned t = 0; t < TRIES; t++) {
		unsigned line = pic_lines[rng_below(&s->rng, NPIC_LINES)];
		uint64_t none = 0;

		if (!atomic_compare_exchange_strong(&r->pic_slot[line], &none,
						    stamp_make(r, s->index)))
			continue;
		atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed);
		trace(TR_PIC_PULSE, 0, -1, line);
		model_lock(r);
		pic_pulse(r->pic, line);
		model_unlock(r);
		s->c.raised[K_PIC]++;
		return 1;
	}
	return 0;
}

static enum kind pick(struct sender *s)
{
	const unsigned *mix = s->rig->opt->mix;
	unsigned total = 0, x;

	for (unsigned k = 0; k < K_KINDS; k++)
		total += mix[k];
	x = rng_below(&s->rng, total);
	for (unsigned k = 0; k < K_KINDS; k++) {
		if (x < mix[k])
			return (enum kind)k;
		x -= mix[k];
	}
	return K_IPI;
}

void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct rig *r = s->rig;
	bool counted = r->opt->events != 0;

	trace_self = &s->ring;
	bus_thread_enter();
	if (r->opt->pin)
		pin_thread(r->opt->cpus + s->index);
	while (!atomic_load_explicit(&r->stop_senders, memory_order_relaxed) &&
	       !atomic_load_explicit(&stress_failed, memory_order_relaxed)) {
		unsigned n = 0;

		if (counted && atomic_load(&r->budget) <= 0)
			break;
		switch (pick(s)) {
		case K_IPI: n = raise_ipi(s); break;
		case K_TIMER: n = raise_timer(s); break;
		case K_IOAPIC: n = raise_pin(s); break;
		case K_PIC: n = raise_pic(s); break;
		default: break;
		}
		if (n && counted)
			atomic_fetch_sub(&r->budget, (int64_t)n);
		if (!n) {
			s->c.busy++;
			sched_yield();
		}
	}
	bus_thread_exit();
	trace_self = NULL;
	return NULL;
}
