/*
 * The vCPU threads: one per LAPIC, each the LAPIC's owner.  A vCPU sleeps
 * until its LAPIC kicks it, then takes interrupts the way the VMM's vCPU
 * loop does (pending, acknowledge, handler, EOI) and checks every one
 * against what the senders recorded before raising it.
 *
 * A vCPU asks its LAPIC for interrupts only after a kick, never on a
 * timeout: a kick the LAPIC forgets to send leaves the interrupt stuck and
 * the drain reports it.  (The VMM also looks at every VM exit, which
 * would hide such a bug.)
 */
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "bus/call.h"
#include "devices/lapic.h"
#include "devices/pic8259.h"
#include "tests/stress/irqstress.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"

#define SPIN_YIELDS 20
#define SLEEP_NS    100000000   /* re-check the stop flag this often */

static void futex_wake(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t val)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = SLEEP_NS };

	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

/*
 * Wake protocol: a waker bumps @wake then reads @sleeping; the vCPU sets
 * @sleeping then re-reads @wake before the futex wait (which re-checks
 * the value itself).  All seq_cst: of the two store-load pairs at least
 * one sees the other, so a wake-up is never lost.
 */
void cpu_request(struct cpu *c)
{
	atomic_fetch_add(&c->wake, 1);
	if (atomic_load(&c->sleeping))
		futex_wake(&c->wake);
}

/* lapic_cpu_ops.kick: any thread (senders, the timer thread, the I/O thread). */
static void stress_kick(void *ctx, uint32_t events)
{
	struct cpu *c = ctx;

	if (events & ~VCPU_EV_IRQ)
		violation("cpu %u: unexpected CPU event %#x (no NMI or INIT is ever sent)",
			  c->index, events);
	/* Release: a vCPU that sees the kick count sees that we kicked. */
	atomic_fetch_add_explicit(&c->kicks, 1, memory_order_release);
	cpu_request(c);
	trace(TR_KICK, c->index, -1, events);
}

static void stress_sipi(void *ctx, uint8_t vector)
{
	violation("cpu %u: unexpected SIPI %#x", ((struct cpu *)ctx)->index, vector);
}

const struct lapic_cpu_ops stress_cpu_ops = { .kick = stress_kick, .sipi = stress_sipi };

/* Owner-side set-up, before any traffic: enabled, flat logical ID, timer at 1 GHz. */
void vcpu_setup(struct cpu *c)
{
	struct rig *r = c->rig;

	model_lock(r);
	lapic_write(c->apic, LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
	if (c->index < FLAT_CPUS)
		lapic_write(c->apic, LAPIC_LDR, (1u << c->index) << 24);
	lapic_write(c->apic, LAPIC_TDCR, 0xb);   /* divide by 1 */
	lapic_write(c->apic, LAPIC_LVT_TIMER, r->timer_vector);
	if (c->index == 0)
		lapic_write(c->apic, LAPIC_LVT_LINT0, APIC_DM_EXTINT << 8);   /* virtual wire */
	model_unlock(r);
}

static int top_bit(struct lapic *a, unsigned base)
{
	for (int i = 7; i >= 0; i--) {
		uint32_t w = lapic_read(a, base + 0x10 * (unsigned)i);

		if (w)
			return i * 32 + 31 - __builtin_clz(w);
	}
	return -1;
}

static bool tmr_bit(struct lapic *a, unsigned v)
{
	return lapic_read(a, LAPIC_TMR + 0x10 * (v / 32)) >> (v % 32) & 1;
}

static void record(struct cpu *c, enum kind k, uint64_t from, uint64_t now)
{
	uint64_t ns = now > from ? now - from : 0;

	c->c.acked[k]++;
	latency_add(&c->c.lat[k], ns);
	latency_add(&c->c.all, ns);
	atomic_fetch_add_explicit(&c->rig->progress, 1, memory_order_relaxed);
}

static void sender_done(struct rig *r, uint64_t stamp)
{
	atomic_fetch_sub_explicit(&r->sender[stamp_who(stamp)].inflight, 1, memory_order_relaxed);
}

/* ---- The LAPIC timer: armed by its owner, fired by the timer service. ---- */

static void timer_arm_own(struct cpu *c)
{
	struct rig *r = c->rig;
	const struct options *o = r->opt;
	bool deadline = o->timer == TIMER_DEADLINE_ONLY ||
			(o->timer == TIMER_BOTH && (rng_next(&c->rng) & 1));
	uint32_t count = o->timer_min + rng_below(&c->rng, o->timer_max - o->timer_min + 1);
	uint32_t lvt = r->timer_vector | (deadline ? LAPIC_TIMER_TSC : LAPIC_TIMER_ONESHOT);
	uint64_t now;

	model_lock(r);
	if (lapic_read(c->apic, LAPIC_LVT_TIMER) != lvt)
		lapic_write(c->apic, LAPIC_LVT_TIMER, lvt);
	/* The LAPIC reads the VM clock after this: its deadline is no earlier. */
	now = vm_clock_ns(&r->vm);
	if (deadline) {
		/* Without a tsc_to_ns hook the guest TSC counts VM-clock ns. */
		struct msg_cpu m = { .type = CPU_MSG_WRMSR, .index = MSR_IA32_TSC_DEADLINE,
				     .value = now + count };

		lapic_msr(c->apic, &m);
		c->c.timer_deadline++;
	} else {
		lapic_write(c->apic, LAPIC_TMICT, count);
		c->c.timer_oneshot++;
	}
	model_unlock(r);
	c->timer_out = true;
	c->timer_due = now + count;
	atomic_fetch_add(&c->timer_armed, 1);
	trace(TR_TIMER_ARM, c->index, r->timer_vector, count);
}

static void timer_work(struct cpu *c)
{
	if (!c->timer_out && atomic_load(&c->timer_req) > atomic_load(&c->timer_armed))
		timer_arm_own(c);
}

static void take_timer(struct cpu *c, uint64_t now)
{
	if (!c->timer_out) {
		violation("exactly once: cpu %u took a timer interrupt with no timer armed"
			  " (an expiry delivered twice?)", c->index);
		return;
	}
	/* VM clock and clock_ns() agree: the VM is never paused here. */
	if (now < c->timer_due)
		violation("cpu %u: timer interrupt taken %llu ns before its deadline", c->index,
			  (unsigned long long)(c->timer_due - now));
	c->timer_out = false;
	record(c, K_TIMER, c->timer_due, now);
	atomic_fetch_add(&c->timer_done, 1);
}

/* ---- The handlers, one per source. ---- */

static void take_ipi(struct cpu *c, unsigned v, uint64_t now)
{
	struct rig *r = c->rig;
	uint64_t s = atomic_exchange(&r->ipi_slot[c->index][v], 0);

	if (!s) {
		violation("exactly once: cpu %u took IPI vector %#x that sender %u did not send"
			  " (or took it twice)", c->index, v, r->owner[v].index);
		return;
	}
	record(c, K_IPI, stamp_time(r, s), now);
	sender_done(r, s);
}

static void take_edge_pin(struct cpu *c, struct pin *p, uint64_t now)
{
	struct rig *r = c->rig;
	uint64_t s = atomic_exchange(&p->stamp, 0);

	if (!s) {
		violation("exactly once: cpu %u took edge IOAPIC vector %#x with no edge raised"
			  " (or took it twice)", c->index, p->vector);
		return;
	}
	record(c, K_IOAPIC, stamp_time(r, s), now);
	sender_done(r, s);
}

/*
 * A level interrupt while its line is asserted: exactly one delivery was
 * due.  Returns how many more the sender asked for (-1 after a violation).
 */
static int take_level_pin(struct cpu *c, struct pin *p, uint64_t now, uint64_t *stamp)
{
	struct rig *r = c->rig;
	uint64_t s = atomic_exchange(&p->stamp, 0);
	int left;

	if (!s) {
		violation("level: cpu %u took vector %#x of IOAPIC pin %u while no delivery was due"
			  " (re-delivered after deassert+EOI, or twice per EOI)", c->index,
			  p->vector, FIRST_PIN + (unsigned)(p - r->pin));
		return -1;
	}
	record(c, K_IOAPIC, stamp_time(r, s), now);
	c->c.level_acks++;
	*stamp = s;
	left = atomic_fetch_sub(&p->remaining, 1) - 1;
	if (left < 0)
		violation("level: IOAPIC pin %u delivered more often than its episode asked for",
			  FIRST_PIN + (unsigned)(p - r->pin));
	return left;
}

/*
 * The handler "services the device" before its EOI: after the last
 * delivery the sender asked for it lowers the line, otherwise the line
 * stays asserted and the EOI must bring the interrupt back.
 */
static void level_before_eoi(struct cpu *c, struct pin *p, int left, uint64_t stamp)
{
	struct rig *r = c->rig;
	unsigned k = (unsigned)(p - r->pin);

	if (left > 0) {
		/* Before the EOI: the re-delivery may reach another CPU at once. */
		atomic_store(&p->stamp, stamp_make(r, stamp_who(stamp)));
		return;
	}
	rig_line(r, k, IRQ_DEASSERT);
	trace(TR_DEASSERT, c->index, p->vector, FIRST_PIN + k);
}

/* ---- The 8259 through INTA. ---- */

/* Fully nested priority of the pair: master 0, 1, then the slave's 8..15, then 3..7. */
static unsigned pic_rank(unsigned irq)
{
	return irq < 2 ? irq : irq < 8 ? irq + 7 : irq - 6;
}

/*
 * The request INTA must answer at least as well as, from a snapshot taken
 * before it: senders only add requests, and only this vCPU acknowledges.
 */
static int pic_best(const struct pic_snapshot *s)
{
	unsigned blocked = 16;
	int best = -1;

	for (unsigned irq = 0; irq < 16; irq++) {
		unsigned chip = irq >= 8, bit = irq & 7;

		if (irq == 2)
			continue;
		if (s->isr[chip] >> bit & 1 && pic_rank(irq) < blocked)
			blocked = pic_rank(irq);
	}
	if (s->isr[0] & 4 && pic_rank(8) < blocked)
		blocked = pic_rank(8);   /* the slave in service blocks the whole slave */
	for (unsigned irq = 0; irq < 16; irq++) {
		unsigned chip = irq >= 8, bit = irq & 7;
		bool masked = s->imr[chip] >> bit & 1 || (chip && s->imr[0] & 4);

		if (irq == 2 || !(s->irr[chip] >> bit & 1) || masked || pic_rank(irq) >= blocked)
			continue;
		if (best < 0 || pic_rank(irq) < pic_rank((unsigned)best))
			best = (int)irq;
	}
	return best;
}

static void take(struct cpu *c, int token, unsigned depth);

static void maybe_nest(struct cpu *c, unsigned depth)
{
	struct rig *r = c->rig;
	int t;

	if (depth >= MAX_NEST || rng_below(&c->rng, 100) >= r->opt->nest_pct)
		return;
	model_lock(r);
	t = lapic_pending(c->apic);
	model_unlock(r);
	trace(TR_PENDING, c->index, t, depth);
	if (t >= 0) {
		c->c.nested++;
		take(c, t, depth + 1);
	}
}

static void take_extint(struct cpu *c, unsigned depth)
{
	struct rig *r = c->rig;
	struct pic_snapshot before;
	int v, irq, best;
	uint64_t s, now;

	model_lock(r);
	pic_snapshot(r->pic, &before);
	v = lapic_acknowledge(c->apic, LAPIC_TOKEN_EXTINT);
	model_unlock(r);
	now = clock_ns();
	c->c.intas++;
	trace(TR_INTA, c->index, v, depth);
	if (v >= r->pic_base[0] && v < r->pic_base[0] + 8)
		irq = v - r->pic_base[0];
	else if (v >= r->pic_base[1] && v < r->pic_base[1] + 8)
		irq = 8 + v - r->pic_base[1];
	else {
		violation("cpu %u: INTA returned vector %d, not the 8259's", c->index, v);
		return;
	}
	best = pic_best(&before);
	if (irq == 7 || irq == 15) {
		/* IRQ 7 and 15 are masked: their vector means "spurious". */
		if (best >= 0)
			violation("8259: spurious INTA (vector %#x) while IRQ %d was requested",
				  v, best);
		c->c.spurious++;
		trace(TR_SPURIOUS, c->index, v, irq);
		if (irq == 15) {   /* the master did take the cascade */
			model_lock(r);
			pic_port_write(r->pic, 0x20, 0x62);
			model_unlock(r);
		}
		return;
	}
	if (best >= 0 && pic_rank((unsigned)irq) > pic_rank((unsigned)best))
		violation("priority: 8259 answered INTA with IRQ %d while IRQ %d (higher) was"
			  " requested", irq, best);
	s = atomic_exchange(&r->pic_slot[irq], 0);
	if (!s) {
		violation("exactly once: 8259 IRQ %d taken without a pulse (or twice)", irq);
		return;
	}
	record(c, K_PIC, stamp_time(r, s), now);
	sender_done(r, s);
	maybe_nest(c, depth);
	model_lock(r);
	pic_eoi(r->pic, (unsigned)irq);
	model_unlock(r);
	trace(TR_PIC_EOI, c->index, v, irq);
}

/* ---- A fixed interrupt through IRR and ISR. ---- */

static void take(struct cpu *c, int token, unsigned depth)
{
	struct rig *r = c->rig;
	const struct owner *o;
	int v, irr, isr, isr_after, outer = c->depth ? c->stack[c->depth - 1] : -1;
	bool tmr;
	int level_left = -1;
	uint64_t now, level_stamp = 0;
	struct pin *level = NULL;

	if (token == LAPIC_TOKEN_EXTINT) {
		take_extint(c, depth);
		return;
	}
	if (outer >= 0 && (token & 0xf0) <= (outer & 0xf0))
		violation("priority: cpu %u offered vector %#x inside the handler of %#x"
			  " (same or lower class)", c->index, token, outer);
	model_lock(r);
	v = lapic_acknowledge(c->apic, token);
	irr = top_bit(c->apic, LAPIC_IRR);
	isr = top_bit(c->apic, LAPIC_ISR);
	tmr = v >= 0 && tmr_bit(c->apic, (unsigned)v);
	model_unlock(r);
	now = clock_ns();
	c->c.lapic_acks++;
	trace(TR_ACK, c->index, v, depth);
	if (v != token) {
		violation("cpu %u: pending() offered %#x, acknowledge() returned %d", c->index,
			  token, v);
		return;
	}
	/* Highest first: after the acknowledge nothing above it may be waiting in IRR. */
	if (irr > v)
		violation("priority: cpu %u acknowledged %#x while %#x was pending in IRR",
			  c->index, v, irr);
	if (isr != v)
		violation("cpu %u: after acknowledging %#x the top of ISR is %#x", c->index, v, isr);
	c->stack[c->depth++] = v;
	o = &r->owner[v];
	if (tmr != (o->kind == K_IOAPIC && r->pin[o->index].level))
		violation("cpu %u: vector %#x has TMR %d, its source is %s-triggered", c->index, v,
			  tmr, tmr ? "edge" : "level");
	switch (o->kind) {
	case K_IPI:
		take_ipi(c, (unsigned)v, now);
		break;
	case K_TIMER:
		take_timer(c, now);
		break;
	case K_IOAPIC:
		if (r->pin[o->index].level) {
			level = &r->pin[o->index];
			level_left = take_level_pin(c, level, now, &level_stamp);
		} else {
			take_edge_pin(c, &r->pin[o->index], now);
		}
		break;
	default:
		violation("cpu %u: vector %#x was never raised by anybody", c->index, v);
		break;
	}
	maybe_nest(c, depth);
	if (level && level_left >= 0)
		level_before_eoi(c, level, level_left, level_stamp);
	model_lock(r);
	lapic_eoi(c->apic);
	isr_after = top_bit(c->apic, LAPIC_ISR);
	model_unlock(r);
	c->c.lapic_eois++;
	c->depth--;
	trace(TR_EOI, c->index, v, depth);
	if (isr_after != (c->depth ? c->stack[c->depth - 1] : -1))
		violation("cpu %u: EOI of %#x left ISR top %#x", c->index, v, isr_after);
	if (level && level_left == 0) {
		/* The episode is over once its last EOI went out: the pin is free again. */
		atomic_store(&level->busy, false);
		sender_done(r, level_stamp);
	}
}

/* After a kick: take interrupts until the LAPIC has none for us. */
static void service(struct cpu *c)
{
	struct rig *r = c->rig;

	while (!atomic_load_explicit(&stress_failed, memory_order_relaxed)) {
		int t, irr = -1;
		uint32_t ppr = 0;

		model_lock(r);
		t = lapic_pending(c->apic);
		if (t < 0) {
			irr = top_bit(c->apic, LAPIC_IRR);
			ppr = lapic_read(c->apic, LAPIC_PPR);
		}
		model_unlock(r);
		trace(TR_PENDING, c->index, t, 0);
		if (t < 0) {
			if (irr >= 0 && (unsigned)(irr & 0xf0) > (ppr & 0xf0))
				violation("cpu %u: pending() found nothing while IRR holds %#x above"
					  " PPR %#x", c->index, irr, ppr);
			return;
		}
		take(c, t, 0);
	}
}

static void idle(struct cpu *c, uint32_t seen)
{
	for (unsigned i = 0; i < SPIN_YIELDS; i++) {
		if (atomic_load(&c->wake) != seen)
			return;
		sched_yield();
	}
	atomic_store(&c->sleeping, true);
	if (atomic_load(&c->wake) == seen && !atomic_load(&c->rig->stop_cpus))
		futex_wait(&c->wake, seen);
	atomic_store(&c->sleeping, false);
}

void *vcpu_main(void *arg)
{
	struct cpu *c = arg;
	struct rig *r = c->rig;

	trace_self = &c->ring;
	bus_current_vcpu = (int)c->index;
	bus_thread_enter();
	if (r->opt->pin)
		pin_thread(c->index);
	while (!atomic_load(&stress_failed)) {
		uint32_t seen = atomic_load(&c->wake);
		uint32_t k = atomic_load_explicit(&c->kicks, memory_order_acquire);

		if (k != c->kicks_seen) {
			c->kicks_seen = k;
			service(c);
			continue;
		}
		timer_work(c);
		if (atomic_load(&r->stop_cpus))
			break;
		if (atomic_load(&c->wake) == seen)
			idle(c, seen);
	}
	bus_thread_exit();
	trace_self = NULL;
	return NULL;
}
