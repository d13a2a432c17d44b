/*
 * The stage: a VM without KVM (buses, timer service, serializer), the
 * LAPICs, the 8259 pair and the IOAPIC, the vector plan, the lock of lock
 * mode, and the checks that the models are idle at the end.
 *
 * Lock mode puts every model call behind the VMM's global lock
 * (vmm/global_lock.h: one mutex, re-entrant per thread), including the
 * calls the models make into each other and the timer thread's expiries.
 * The IOAPIC is serialized in both modes, as in the VMM: its lines are
 * raised through vm.bus.irq, its EOIs arrive on vm.bus.eoi and its window
 * is read through vm.bus.mmio, all of which go through the serializer of
 * the VM's I/O mode (--io in lock-free mode; the global lock in lock mode).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bus/bus.h"
#include "bus/message.h"
#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic8259.h"
#include "tests/stress/irqstress.h"
#include "vmm/global_lock.h"
#include "vmm/vm.h"

void model_lock(const struct rig *r)
{
	if (r->locked)
		global_lock_acquire();
}

void model_unlock(const struct rig *r)
{
	if (r->locked)
		global_lock_release();
}

/*
 * The timer thread enters the LAPICs through their claimed receiver on
 * vm.bus.timer, which would bypass the lock of lock mode.  So the LAPIC
 * group attaches to a private bus, and vm.bus.timer carries this one
 * receiver that takes the model lock and passes the expiry on (in both
 * modes, so both pay the same extra hop).
 */
static bool timer_forward(void *dev, void *msg)
{
	struct rig *r = dev;
	bool handled;

	model_lock(r);
	handled = bus_send(r->lapic_timer_bus, msg, BUS_EARLY_OUT);
	model_unlock(r);
	return handled;
}

static void ioapic_write(struct rig *r, unsigned off, uint32_t v)
{
	struct msg_mmio m = { .addr = IOAPIC_BASE + off, .size = 4, .write = true, .value = v };

	range_bus_send(r->vm.bus.mmio, m.addr, &m);
}

static uint32_t ioapic_read(struct rig *r, unsigned off)
{
	struct msg_mmio m = { .addr = IOAPIC_BASE + off, .size = 4 };

	range_bus_send(r->vm.bus.mmio, m.addr, &m);
	return (uint32_t)m.value;
}

static uint32_t ioapic_reg(struct rig *r, uint8_t reg)
{
	ioapic_write(r, IOAPIC_REGSEL, reg);
	return ioapic_read(r, IOAPIC_WINDOW);
}

static void ioapic_set_reg(struct rig *r, uint8_t reg, uint32_t v)
{
	ioapic_write(r, IOAPIC_REGSEL, reg);
	ioapic_write(r, IOAPIC_WINDOW, v);
}

/*
 * Vectors: one for every LAPIC timer, one per IOAPIC pin spread over the
 * priority classes, the rest of 0x20..0xfe dealt out to the senders in
 * turn so that each sender owns vectors in every class.
 */
static void plan_vectors(struct rig *r)
{
	unsigned n = r->opt->senders, next = 0;

	for (unsigned v = 0; v < 256; v++)
		r->owner[v].kind = K_KINDS;
	r->timer_vector = 0xec;
	r->owner[r->timer_vector].kind = K_TIMER;
	for (unsigned k = 0; k < NPINS; k++) {
		struct pin *p = &r->pin[k];

		p->vector = (uint8_t)(0x38 + 0x18 * k);
		p->level = k >= NPINS - NLEVEL_PINS;
		/* Odd pins: lowest priority among all CPUs, when flat logical mode can name them. */
		p->dest = (k & 1) && r->opt->cpus <= FLAT_CPUS ? -1 : (int)(k % r->opt->cpus);
		r->owner[p->vector] = (struct owner){ .kind = K_IOAPIC, .index = (uint8_t)k };
	}
	for (unsigned v = 0x20; v < 0xff; v++) {
		struct sender *s;

		if (r->owner[v].kind != K_KINDS)
			continue;
		s = &r->sender[next % n];
		s->vectors[s->nvectors++] = (uint8_t)v;
		r->owner[v] = (struct owner){ .kind = K_IPI, .index = (uint8_t)(next % n) };
		next++;
	}
}

static void program_ioapic(struct rig *r)
{
	for (unsigned k = 0; k < NPINS; k++) {
		const struct pin *p = &r->pin[k];
		unsigned reg = IOAPIC_REG_REDTBL + 2 * (FIRST_PIN + k);
		uint32_t low = p->vector;
		uint32_t dest;

		if (p->dest < 0) {
			low |= APIC_DM_LOWEST << 8 | IOAPIC_RTE_LOGICAL;
			dest = (1u << r->opt->cpus) - 1;
		} else {
			dest = (uint32_t)p->dest;
		}
		if (p->level)
			low |= IOAPIC_RTE_LEVEL;
		ioapic_set_reg(r, (uint8_t)(reg + 1), dest << 24);
		ioapic_set_reg(r, (uint8_t)reg, low);
	}
}

/*
 * The 8259 pair as a BIOS leaves it (bases 0x08 and 0x70), every line the
 * senders pulse unmasked; IRQ 7 and 15 stay masked so that their vectors
 * can only mean a spurious INTA.
 */
static void program_pic(struct rig *r)
{
	pic_bios_init(r->pic);
	pic_port_write(r->pic, 0x21, 0x80);
	pic_port_write(r->pic, 0xa1, 0x80);
	r->pic_base[0] = 0x08;
	r->pic_base[1] = 0x70;
}

int rig_create(struct rig *r, const struct options *opt, enum stress_mode mode)
{
	struct bus *timer_bus;

	r->opt = opt;
	r->mode = mode;
	r->locked = mode == MODE_LOCK;
	r->t0 = clock_ns();
	r->ipi_slot = calloc(opt->cpus, sizeof(*r->ipi_slot));
	if (!r->ipi_slot)
		return -ENOMEM;
	for (unsigned s = 0; s < opt->senders; s++) {
		r->sender[s].rig = r;
		r->sender[s].index = s;
		r->sender[s].vectors = calloc(256, 1);
		if (!r->sender[s].vectors)
			return -ENOMEM;
	}
	plan_vectors(r);

	r->vm.ncpus = opt->cpus;
	if (vm_init_buses(&r->vm, r->locked ? IO_MODE_LOCK : opt->io))
		return -ENOMEM;
	r->lapic_timer_bus = bus_create("lapic-timer", sizeof(struct msg_timer));
	if (!r->lapic_timer_bus)
		return -ENOMEM;
	/* No timer is armed yet, so the timer thread cannot be reading this. */
	timer_bus = r->vm.bus.timer;
	r->vm.bus.timer = r->lapic_timer_bus;
	r->group = lapic_group_create(&r->vm);
	r->vm.bus.timer = timer_bus;
	if (!r->group || bus_attach(timer_bus, timer_forward, bus_claim_always, r))
		return -ENOMEM;
	for (unsigned i = 0; i < opt->cpus; i++) {
		struct cpu *c = &r->cpu[i];

		c->rig = r;
		c->index = i;
		c->apic = lapic_create(r->group, i, &stress_cpu_ops, c);
		if (!c->apic)
			return -ENOMEM;
	}
	r->pic = pic_create(&r->vm);
	r->io = ioapic_create(&r->vm, IOAPIC_BASE);
	if (!r->pic || !r->io)
		return -ENOMEM;
	program_pic(r);
	program_ioapic(r);
	return 0;
}

void rig_destroy(struct rig *r)
{
	if (r->vm.bus.timer)
		bus_detach(r->vm.bus.timer, timer_forward, r);
	/* Its timer-bus detach finds nothing on vm.bus.timer; the private bus goes below. */
	lapic_group_destroy(r->group);
	pic_destroy(r->pic);
	ioapic_destroy(r->io);
	if (r->vm.bus.timer)
		vm_fini_buses(&r->vm);
	bus_destroy(r->lapic_timer_bus);
	for (unsigned s = 0; s < MAX_SENDERS; s++)
		free(r->sender[s].vectors);
	free(r->ipi_slot);
}

void rig_line(struct rig *r, unsigned pin, int action)
{
	struct msg_irq m = { .line = (uint8_t)(FIRST_PIN + pin), .action = (uint8_t)action };

	model_lock(r);
	bus_send(r->vm.bus.irq, &m, BUS_FIFO);
	model_unlock(r);
}

/* Interrupts raised (or timer expiries asked for) and not taken yet. */
uint64_t rig_outstanding(struct rig *r)
{
	uint64_t n = 0;

	for (unsigned c = 0; c < r->opt->cpus; c++) {
		n += atomic_load(&r->cpu[c].timer_req) - atomic_load(&r->cpu[c].timer_done);
		for (unsigned v = 0; v < 256; v++)
			n += atomic_load_explicit(&r->ipi_slot[c][v], memory_order_relaxed) != 0;
	}
	for (unsigned k = 0; k < NPINS; k++)
		n += atomic_load(&r->pin[k].stamp) || atomic_load(&r->pin[k].busy);
	for (unsigned l = 0; l < 16; l++)
		n += atomic_load(&r->pic_slot[l]) != 0;
	return n;
}

static bool vector_bit(struct lapic *a, unsigned base, unsigned v)
{
	return lapic_read(a, base + 0x10 * (v / 32)) >> (v % 32) & 1;
}

static int bitmap_top(struct lapic *a, unsigned base)
{
	for (int i = 7; i >= 0; i--) {
		uint32_t w = lapic_read(a, base + 0x10 * (unsigned)i);

		if (w)
			return i * 32 + 31 - __builtin_clz(w);
	}
	return -1;
}

static void check_lapic(struct cpu *c)
{
	struct lapic_stats s;
	int t, irr, isr;

	/* The vCPU threads are joined: this thread is the owner now. */
	t = lapic_pending(c->apic);
	irr = bitmap_top(c->apic, LAPIC_IRR);
	isr = bitmap_top(c->apic, LAPIC_ISR);
	if (t >= 0 || irr >= 0 || isr >= 0)
		violation("nothing pending at the end: cpu %u has pending() %d, IRR top %#x,"
			  " ISR top %#x", c->index, t, irr, isr);
	lapic_get_stats(c->apic, &s);
	if (s.coalesced)
		violation("cpu %u: %llu interrupts coalesced in IRR although every vector had"
			  " one source that waited for the acknowledge", c->index,
			  (unsigned long long)s.coalesced);
	if (s.acked != c->c.lapic_acks || s.posted != c->c.lapic_acks)
		violation("cpu %u: the LAPIC counted %llu posted and %llu acknowledged, the vCPU"
			  " took %llu", c->index, (unsigned long long)s.posted,
			  (unsigned long long)s.acked, (unsigned long long)c->c.lapic_acks);
	if (s.eois != c->c.lapic_eois)
		violation("cpu %u: the LAPIC counted %llu EOIs, the vCPU wrote %llu", c->index,
			  (unsigned long long)s.eois, (unsigned long long)c->c.lapic_eois);
	if (s.timer_fired != c->c.acked[K_TIMER])
		violation("cpu %u: the LAPIC timer fired %llu times, the vCPU took %llu expiries",
			  c->index, (unsigned long long)s.timer_fired,
			  (unsigned long long)c->c.acked[K_TIMER]);
	if (s.extint != c->c.intas)
		violation("cpu %u: the LAPIC did %llu INTA cycles, the vCPU asked for %llu",
			  c->index, (unsigned long long)s.extint, (unsigned long long)c->c.intas);
}

static void check_pic(struct rig *r)
{
	struct pic_snapshot s;

	pic_snapshot(r->pic, &s);
	if (s.irr[0] || s.irr[1] || s.isr[0] || s.isr[1] || s.output)
		violation("nothing pending at the end: 8259 IRR %02x/%02x ISR %02x/%02x INT %s",
			  s.irr[0], s.irr[1], s.isr[0], s.isr[1], s.output ? "high" : "low");
}

static void check_ioapic(struct rig *r)
{
	struct ioapic_stats st;

	for (unsigned k = 0; k < NPINS; k++) {
		uint32_t low = ioapic_reg(r, (uint8_t)(IOAPIC_REG_REDTBL + 2 * (FIRST_PIN + k)));

		if (low & IOAPIC_RTE_REMOTE_IRR)
			violation("nothing pending at the end: IOAPIC pin %u still has Remote IRR"
				  " (entry %#x)", FIRST_PIN + k, low);
	}
	/* After the serialized reads above: the IOAPIC has nothing queued. */
	global_lock_acquire();
	st = ioapic_stats(r->io);
	for (unsigned k = 0; k < NPINS; k++)
		if (ioapic_pin_asserted(r->io, FIRST_PIN + k))
			violation("IOAPIC pin %u is still asserted at the end", FIRST_PIN + k);
	global_lock_release();
	if (st.undelivered || st.masked || st.bad_mode)
		violation("IOAPIC: %llu messages no LAPIC accepted, %llu met a mask, %llu bad mode",
			  (unsigned long long)st.undelivered, (unsigned long long)st.masked,
			  (unsigned long long)st.bad_mode);
}

void rig_check_idle(struct rig *r, const struct counts *t)
{
	static const char *const names[K_KINDS] = { "IPI", "timer", "IOAPIC", "8259" };

	for (unsigned c = 0; c < r->opt->cpus; c++)
		check_lapic(&r->cpu[c]);
	check_pic(r);
	check_ioapic(r);
	for (unsigned k = 0; k < K_KINDS; k++)
		if (t->raised[k] != t->acked[k])
			violation("exactly once: %s raised %llu, taken %llu", names[k],
				  (unsigned long long)t->raised[k], (unsigned long long)t->acked[k]);
}

/* Where vector @v of CPU @c is: bit 0 ISR, 1 IRR, 2 posted (found by the fold). */
struct where {
	uint64_t isr[4], irr[4], posted[4];
};

static void locate(struct rig *r, struct where *w)
{
	for (unsigned c = 0; c < r->opt->cpus; c++) {
		struct lapic *a = r->cpu[c].apic;

		memset(&w[c], 0, sizeof(w[c]));
		for (unsigned v = 16; v < 256; v++) {
			if (vector_bit(a, LAPIC_ISR, v))
				w[c].isr[v / 64] |= 1ull << (v % 64);
			if (vector_bit(a, LAPIC_IRR, v))
				w[c].irr[v / 64] |= 1ull << (v % 64);
		}
		/* The fold moves what senders posted into IRR: that is what never got a kick. */
		lapic_pending(a);
		for (unsigned v = 16; v < 256; v++)
			if (vector_bit(a, LAPIC_IRR, v) && !(w[c].irr[v / 64] >> (v % 64) & 1))
				w[c].posted[v / 64] |= 1ull << (v % 64);
	}
}

static bool anywhere(const struct where *w, unsigned v)
{
	uint64_t bit = 1ull << (v % 64);

	return (w->isr[v / 64] | w->irr[v / 64] | w->posted[v / 64]) & bit;
}

static const char *where_is(const struct where *w, unsigned v)
{
	uint64_t bit = 1ull << (v % 64);

	if (w->isr[v / 64] & bit)
		return "in ISR: taken but its EOI did not clear it";
	if (w->irr[v / 64] & bit)
		return "in IRR: the LAPIC never offered it";
	if (w->posted[v / 64] & bit)
		return "posted, but the vCPU was never kicked to fold it (lost kick)";
	return "not in the LAPIC (the post was lost)";
}

/*
 * After the vCPU threads were joined, this thread owns the LAPICs: say
 * where each interrupt still outstanding got stuck.  Folds the LAPICs'
 * pending bitmaps, so dump the models before.
 */
void rig_diagnose(struct rig *r, FILE *out)
{
	struct where *w = calloc(r->opt->cpus, sizeof(*w));
	unsigned shown = 0;

	if (!w)
		return;
	locate(r, w);
	for (unsigned c = 0; c < r->opt->cpus; c++) {
		uint64_t req = atomic_load(&r->cpu[c].timer_req);
		uint64_t armed = atomic_load(&r->cpu[c].timer_armed);
		uint64_t done = atomic_load(&r->cpu[c].timer_done);

		for (unsigned v = 0; v < 256; v++) {
			uint64_t s = atomic_load(&r->ipi_slot[c][v]);

			if (s && ++shown <= 16)
				fprintf(out, "  IPI %#x to cpu %u from sender %u, raised at +%.3f ms: %s\n",
					v, c, stamp_who(s), (double)(stamp_time(r, s) - r->t0) / 1e6,
					where_is(&w[c], v));
		}
		if (req != done && ++shown <= 16)
			fprintf(out, "  cpu %u timer: %llu requested, %llu armed, %llu expiries taken;"
				" vector %#x %s; LVT %#x TMICT %u TMCCT %u\n", c,
				(unsigned long long)req, (unsigned long long)armed,
				(unsigned long long)done, r->timer_vector,
				anywhere(&w[c], r->timer_vector) ? where_is(&w[c], r->timer_vector) :
					"not in the LAPIC: the expiry never fired",
				lapic_read(r->cpu[c].apic, LAPIC_LVT_TIMER),
				lapic_read(r->cpu[c].apic, LAPIC_TMICT),
				lapic_read(r->cpu[c].apic, LAPIC_TMCCT));
	}
	for (unsigned k = 0; k < NPINS; k++) {
		struct pin *p = &r->pin[k];
		uint64_t s = atomic_load(&p->stamp);
		uint32_t low;
		bool asserted;

		if (!s && !atomic_load(&p->busy))
			continue;
		if (++shown > 16)
			continue;
		low = ioapic_reg(r, (uint8_t)(IOAPIC_REG_REDTBL + 2 * (FIRST_PIN + k)));
		global_lock_acquire();   /* after the serialized read: the IOAPIC is idle */
		asserted = ioapic_pin_asserted(r->io, FIRST_PIN + k);
		global_lock_release();
		fprintf(out, "  IOAPIC pin %u (%s, vector %#x): %d deliveries due, line %s,"
			" Remote IRR %d;", FIRST_PIN + k, p->level ? "level" : "edge", p->vector,
			atomic_load(&p->remaining), asserted ? "asserted" : "low",
			!!(low & IOAPIC_RTE_REMOTE_IRR));
		if (p->dest >= 0) {
			fprintf(out, " cpu %d: %s\n", p->dest, where_is(&w[p->dest], p->vector));
			continue;
		}
		for (unsigned c = 0; c < r->opt->cpus; c++)
			if (anywhere(&w[c], p->vector)) {
				fprintf(out, " cpu %u: %s", c, where_is(&w[c], p->vector));
				break;
			} else if (c + 1 == r->opt->cpus) {
				fprintf(out, " in no LAPIC (the delivery was lost)");
			}
		fputc('\n', out);
	}
	for (unsigned l = 0; l < 16; l++) {
		uint64_t s = atomic_load(&r->pic_slot[l]);
		struct pic_snapshot ps;

		if (!s || ++shown > 16)
			continue;
		pic_snapshot(r->pic, &ps);
		fprintf(out, "  8259 IRQ %u, pulsed at +%.3f ms: IRR %d ISR %d, INT output %s"
			" (a vCPU that sees INT high takes it: was INTR lost?)\n", l,
			(double)(stamp_time(r, s) - r->t0) / 1e6, ps.irr[l / 8] >> (l % 8) & 1,
			ps.isr[l / 8] >> (l % 8) & 1, ps.output ? "high" : "low");
	}
	if (shown > 16)
		fprintf(out, "  (%u more)\n", shown - 16);
	free(w);
}

void rig_dump(struct rig *r, FILE *out)
{
	fprintf(out, "model state:\n");
	lapic_group_dump(r->group, out);
	pic_dump(r->pic, out);
	ioapic_reg(r, IOAPIC_REG_VER);   /* a serialized call: the IOAPIC is idle after it */
	global_lock_acquire();
	ioapic_dump(r->io, out);
	global_lock_release();
}
