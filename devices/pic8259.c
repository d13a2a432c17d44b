/*
 * pic: the 8259A pair of a PC (master 0x20/0x21, slave 0xA0/0xA1, ELCR
 * 0x4D0/0x4D1), without a lock.
 *
 * State: stable.
 * Features: ICW1-4 (ICW4 optional, single or cascade, vector base, 8086
 *   mode, auto-EOI); OCW1 (IMR); OCW2 (non-specific, specific EOI, rotate
 *   on either EOI, rotate in auto-EOI set/clear, set priority); OCW3 (read
 *   IRR/ISR, poll, special mask mode); edge and level triggering per line
 *   through the ELCR; spurious IRQ 7/15 when a request vanished before
 *   INTA; the slave's output on master IRQ 2.  The master's INT output is
 *   sent as LEGACY_INTR / LEGACY_DEASSERT_INTR on the legacy bus (virtual
 *   wire to the BSP's LINT0); LEGACY_INTA there returns the vector.
 * Missing: 8080 mode (ICW4 bit 0 clear) behaves as 8086 mode; ICW1 LTIM
 *   (level mode for the whole chip) is recorded but the ELCR decides, as on
 *   every PC chipset; ICW3 and buffered mode are accepted and ignored (the
 *   slave is always on master IRQ 2); special fully nested mode only stops
 *   the master's ISR bit 2 from blocking further slave interrupts.  A poll
 *   of the slave acknowledges on the slave only, so the master's IRR 2 stays
 *   set, as on real hardware.  Rotation in auto-EOI mode is applied just
 *   after the acknowledge, not atomically with it (doc/lockfree-pic.md).
 * Spec: Intel 8259A datasheet (231468-003); ELCR as in the Intel PIIX4 /
 *   ICH datasheets (bits 0-2 of the master and 0 and 5 of the slave are
 *   reserved and read as 0).
 *
 * Snapshot: section "pic8259" (see "Snapshots" below): both chips and the
 *   level last sent on LINT0; no message on load, the LAPIC keeps its side.
 *
 * Concurrency: every receiver is claimed.  The hot state of both chips is
 * one 64-bit word changed by compare-and-swap; the programming state is a
 * second word; the output message is sent by whichever thread holds the
 * delivery token in a third word.  See doc/lockfree-pic.md for the
 * argument; the comments below say where each part of it is used.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "devices/pic8259.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

enum { MASTER, SLAVE };

/* What the interrupt lines, INTA and EOIs change: one word, one CAS. */
union pic_hot {
	uint64_t word;
	struct {
		uint8_t irr;   /* requests latched (edge) or present (level) */
		uint8_t isr;   /* in service */
		uint8_t imr;
		uint8_t lvl;   /* input levels; master bit 2: the slave's INT */
	} chip[2];
};

/* What only port writes change (and the rotation of auto-EOI). */
union pic_cfg {
	uint64_t word;
	struct {
		uint8_t elcr;
		uint8_t base;          /* vector of IRQ 0, low 3 bits clear */
		uint8_t prio : 3;      /* the IRQ with the highest priority */
		uint8_t step : 2;      /* next odd-port byte: enum icw_step */
		uint8_t ic4 : 1;       /* ICW4 will follow */
		uint8_t single : 1;    /* no cascade */
		uint8_t aeoi : 1;
		uint8_t rotate_aeoi : 1;
		uint8_t read_isr : 1;  /* even-port reads show ISR, else IRR */
		uint8_t poll : 1;      /* next even-port read is a poll */
		uint8_t smm : 1;       /* special mask mode */
		uint8_t sfnm : 1;      /* special fully nested mode */
		uint8_t ltim : 1;      /* ICW1 level mode (recorded only) */
		uint8_t spare : 2;
	} chip[2];
};
_Static_assert(sizeof(union pic_hot) == 8, "hot state must fit one word");
_Static_assert(sizeof(union pic_cfg) == 8, "programming state must fit one word");

enum icw_step { STEP_READY, STEP_ICW2, STEP_ICW3, STEP_ICW4 };

/* Delivery word: a token, the level last sent, and a message count. */
enum { DELIV_BUSY = 1u, DELIV_SENT = 2u, DELIV_GEN = 4u };

/* Reserved ELCR bits: IRQ 0, 1, 2, 8 and 13 are always edge-triggered. */
static const uint8_t elcr_writable[2] = { 0xf8, 0xde };

struct pic {
	_Atomic uint64_t hot;
	_Atomic uint64_t cfg;
	_Atomic uint32_t deliv;
	struct vm *vm;
	_Atomic uint64_t acks, spurious;   /* statistics, relaxed */
	_Atomic uint64_t deferred;         /* deliveries left to a token holder */
	_Atomic bool warned_8080;
};


/* ---- Priority logic: pure functions of one snapshot of both words. ---- */

/* The IRQ of highest priority in @bits when @prio leads, or -1. */
static int prio_first(uint8_t bits, unsigned prio)
{
	unsigned rot;

	if (!bits)
		return -1;
	rot = ((bits >> prio) | (bits << (8 - prio))) & 0xff;
	return (int)((__builtin_ctz(rot) + prio) & 7);
}

static unsigned prio_rank(int irq, unsigned prio)
{
	return ((unsigned)irq - prio) & 7;
}

/*
 * The request chip @i would raise INT for: the highest-priority unmasked
 * IRR bit above the highest in-service level.  In special mask mode a
 * masked ISR bit does not block (the handler masked its own level to let
 * lower ones in); in special fully nested mode the master's ISR 2 does not
 * block further slave interrupts.
 */
static int chip_request(const union pic_hot *h, const union pic_cfg *c, int i)
{
	unsigned prio = c->chip[i].prio;
	uint8_t inservice = h->chip[i].isr;
	int irq = prio_first(h->chip[i].irr & ~h->chip[i].imr, prio);
	int cur;

	if (irq < 0)
		return -1;
	if (c->chip[i].smm)
		inservice &= ~h->chip[i].imr;
	if (i == MASTER && c->chip[i].sfnm)
		inservice &= ~(1u << 2);
	cur = prio_first(inservice, prio);
	if (cur >= 0 && prio_rank(irq, prio) >= prio_rank(cur, prio))
		return -1;
	return irq;
}

static bool output_of(const union pic_hot *h, const union pic_cfg *c)
{
	return chip_request(h, c, MASTER) >= 0;
}

/* An input line changes level: edge lines latch a rising edge only. */
static void chip_input(union pic_hot *h, const union pic_cfg *c, int i,
		       unsigned bit, bool level)
{
	uint8_t m = 1u << bit;
	bool edge = !(c->chip[i].elcr & m);

	if (level) {
		if (!edge || !(h->chip[i].lvl & m))
			h->chip[i].irr |= m;
		h->chip[i].lvl |= m;
	} else {
		h->chip[i].lvl &= ~m;
		if (!edge)
			h->chip[i].irr &= ~m;
	}
}

/*
 * The slave's INT drives master IRQ 2.  The master latches IRR 2 whenever
 * the slave has a deliverable request (a pulse per transition, as KVM's
 * i8259 does), not only on a rising edge: after an INTA in auto-EOI mode
 * the slave's INT may stay high for its next request, and a pure edge
 * would lose that one.  IRR 2 stays latched if the slave's request then
 * vanishes: the INTA finds the slave empty and returns spurious IRQ 15.
 */
static void cascade(union pic_hot *h, const union pic_cfg *c)
{
	if (c->chip[MASTER].single)
		return;
	if (chip_request(h, c, SLAVE) >= 0) {
		h->chip[MASTER].irr |= 1u << 2;
		h->chip[MASTER].lvl |= 1u << 2;
	} else {
		h->chip[MASTER].lvl &= ~(1u << 2);
	}
}

/* IRR -> ISR for @irq (or nothing in auto-EOI); level IRR stays set. */
static void chip_ack(union pic_hot *h, const union pic_cfg *c, int i, int irq)
{
	uint8_t m = 1u << irq;

	if (!c->chip[i].aeoi)
		h->chip[i].isr |= m;
	if (!(c->chip[i].elcr & m))
		h->chip[i].irr &= ~m;
}

/* ---- Output delivery. ---- */

static bool current_output(const struct pic *pic)
{
	union pic_hot h = { .word = atomic_load(&pic->hot) };
	union pic_cfg c = { .word = atomic_load(&pic->cfg) };

	return output_of(&h, &c);
}

static void send_output(struct pic *pic, bool level, uint32_t gen)
{
	struct msg_legacy m = {
		.type = level ? LEGACY_INTR : LEGACY_DEASSERT_INTR,
		.cpu = 0,
		.value = gen,
	};

	bus_send_async(pic->vm->bus.legacy, &m, BUS_LIFO);
}

/*
 * Bring the level last sent in line with the current output.  Only the
 * holder of DELIV_BUSY sends, so messages leave in order and alternate;
 * it loops until what it sent matches the state it reads, and re-checks
 * after giving the token back.  A thread that finds the token taken just
 * leaves: its change to hot/cfg (seq_cst) precedes its load of deliv,
 * which precedes the holder's release (seq_cst), which precedes the
 * holder's re-check, so the holder sees the change.  Nobody waits.
 */
static void pic_notify(struct pic *pic)
{
	for (;;) {
		uint32_t d = atomic_load(&pic->deliv);
		bool out;

		if (d & DELIV_BUSY) {
			atomic_fetch_add_explicit(&pic->deferred, 1, memory_order_relaxed);
			/*
			 * A rise while the holder may still think "high was sent":
			 * it might send nothing, so nudge the LAPIC now (an extra
			 * INTR with generation 0, outside the ordered ones;
			 * the LAPIC checks the real level with
			 * LEGACY_INTR_LEVEL before it acknowledges).
			 */
			if (current_output(pic))
				send_output(pic, true, 0);
			return;
		}
		out = current_output(pic);
		if (out == !!(d & DELIV_SENT))
			return;
		if (!atomic_compare_exchange_weak(&pic->deliv, &d, d | DELIV_BUSY))
			continue;
		while ((out = current_output(pic)) != !!(d & DELIV_SENT)) {
			d = (d ^ DELIV_SENT) + DELIV_GEN;
			send_output(pic, out, d / DELIV_GEN);
		}
		atomic_store(&pic->deliv, d & ~DELIV_BUSY);
	}
}

/* ---- Transitions. ---- */

typedef void (*hot_fn)(union pic_hot *h, const union pic_cfg *c, void *arg);

/*
 * Apply @fn (NULL: only recompute the cascade) to the hot word as one CAS,
 * then deliver the output.  @fn may run several times and must derive its
 * results from the state it is given.  If the programming state changed
 * while we computed, the cascade may have been computed from the old one:
 * settle again.  A port write that changes cfg settles after its own CAS,
 * so between the two of us somebody recomputes with the new cfg (both
 * sides seq_cst: the store-load pattern of doc/lockfree-pic.md).
 */
static void hot_update(struct pic *pic, hot_fn fn, void *arg)
{
	for (;;) {
		union pic_cfg c = { .word = atomic_load(&pic->cfg) };
		union pic_hot old = { .word = atomic_load(&pic->hot) }, new;

		do {
			new = old;
			if (fn)
				fn(&new, &c, arg);
			cascade(&new, &c);
			if (new.word == old.word)
				break;
		} while (!atomic_compare_exchange_weak(&pic->hot, &old.word, new.word));
		if (atomic_load(&pic->cfg) == c.word)
			break;
		fn = NULL;
	}
	pic_notify(pic);
}

typedef bool (*cfg_fn)(union pic_cfg *c, int chip, void *arg);

/*
 * Change chip @chip's programming state as one CAS (two vCPUs may program
 * the two chips at once), then settle the hot word under the new state.
 */
static void cfg_update(struct pic *pic, int chip, cfg_fn fn, void *arg)
{
	union pic_cfg old = { .word = atomic_load(&pic->cfg) }, new;

	do {
		new = old;
		if (!fn(&new, chip, arg))
			return;
	} while (!atomic_compare_exchange_weak(&pic->cfg, &old.word, new.word));
	hot_update(pic, NULL, NULL);
}

/* Input lines. */
struct line_arg {
	int chip;
	unsigned bit;
	int action;
};

static void line_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	const struct line_arg *a = arg;

	switch (a->action) {
	case IRQ_ASSERT:
		chip_input(h, c, a->chip, a->bit, true);
		break;
	case IRQ_DEASSERT:
		chip_input(h, c, a->chip, a->bit, false);
		break;
	default:
		/* A pulse: the level before and after it is the same. */
		if (!(h->chip[a->chip].lvl & (1u << a->bit))) {
			chip_input(h, c, a->chip, a->bit, true);
			chip_input(h, c, a->chip, a->bit, false);
		}
		break;
	}
}

static bool pic_line(struct pic *pic, unsigned irq, int action)
{
	struct line_arg a = { .chip = irq >= 8, .bit = irq & 7, .action = action };

	if (irq >= 16 || irq == 2)   /* IRQ 2 is the cascade */
		return false;
	hot_update(pic, line_fn, &a);
	return true;
}

void pic_raise(struct pic *pic, unsigned irq) { pic_line(pic, irq, IRQ_ASSERT); }
void pic_lower(struct pic *pic, unsigned irq) { pic_line(pic, irq, IRQ_DEASSERT); }
void pic_pulse(struct pic *pic, unsigned irq) { pic_line(pic, irq, IRQ_EDGE); }

/* Rotation in auto-EOI mode: @irq becomes the lowest priority. */
static bool rotate_fn(union pic_cfg *c, int chip, void *arg)
{
	int irq = *(int *)arg;

	if (c->chip[chip].prio == ((irq + 1) & 7))
		return false;
	c->chip[chip].prio = (irq + 1) & 7;
	return true;
}

static void rotate_after_ack(struct pic *pic, int chip, int irq)
{
	union pic_cfg c = { .word = atomic_load(&pic->cfg) };

	if (irq >= 0 && c.chip[chip].aeoi && c.chip[chip].rotate_aeoi)
		cfg_update(pic, chip, rotate_fn, &irq);
}

/* INTA on the pair. */
struct ack_arg {
	int vector;
	int irq[2];   /* acknowledged per chip, -1 if none */
};

static void intack_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	struct ack_arg *a = arg;
	int irq = chip_request(h, c, MASTER), sirq;

	a->irq[MASTER] = a->irq[SLAVE] = -1;
	if (irq < 0) {
		a->vector = c->chip[MASTER].base + 7;
		return;
	}
	chip_ack(h, c, MASTER, irq);
	a->irq[MASTER] = irq;
	a->vector = c->chip[MASTER].base + irq;
	if (irq != 2 || c->chip[MASTER].single)
		return;
	sirq = chip_request(h, c, SLAVE);
	if (sirq < 0) {
		a->vector = c->chip[SLAVE].base + 7;
		return;
	}
	chip_ack(h, c, SLAVE, sirq);
	a->irq[SLAVE] = sirq;
	a->vector = c->chip[SLAVE].base + sirq;
}

int pic_intack(struct pic *pic)
{
	struct ack_arg a;

	hot_update(pic, intack_fn, &a);
	atomic_fetch_add_explicit(&pic->acks, 1, memory_order_relaxed);
	if (a.irq[MASTER] < 0 || (a.irq[MASTER] == 2 && a.irq[SLAVE] < 0))
		atomic_fetch_add_explicit(&pic->spurious, 1, memory_order_relaxed);
	rotate_after_ack(pic, MASTER, a.irq[MASTER]);
	rotate_after_ack(pic, SLAVE, a.irq[SLAVE]);
	return a.vector;
}

bool pic_output(const struct pic *pic)
{
	return current_output(pic);
}

/* ---- Port writes. ---- */

struct eoi_arg {
	int chip;
	int irq;      /* specific EOI level, or -1 */
	int cleared;  /* out: the level cleared, or -1 */
};

static void eoi_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	struct eoi_arg *a = arg;
	int irq = a->irq;

	if (irq < 0)
		irq = prio_first(h->chip[a->chip].isr, c->chip[a->chip].prio);
	a->cleared = irq;
	if (irq >= 0)
		h->chip[a->chip].isr &= ~(1u << irq);
}

static void pic_eoi_cmd(struct pic *pic, int chip, int irq, bool rotate)
{
	struct eoi_arg a = { .chip = chip, .irq = irq };

	hot_update(pic, eoi_fn, &a);
	if (rotate && a.cleared >= 0)
		cfg_update(pic, chip, rotate_fn, &a.cleared);
}

static void icw1_hot_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	int i = *(int *)arg;

	/* Edge lines must see a new rising edge; level lines stay requested. */
	h->chip[i].imr = 0;
	h->chip[i].isr = 0;
	h->chip[i].irr = h->chip[i].lvl & c->chip[i].elcr;
}

static bool icw1_fn(union pic_cfg *c, int i, void *arg)
{
	uint8_t v = *(uint8_t *)arg;

	c->chip[i].ic4 = v & 1;
	c->chip[i].single = (v >> 1) & 1;
	c->chip[i].ltim = (v >> 3) & 1;
	c->chip[i].step = STEP_ICW2;
	/* Without ICW4 all its functions are zero. */
	c->chip[i].aeoi = c->chip[i].sfnm = 0;
	c->chip[i].prio = 0;
	c->chip[i].rotate_aeoi = c->chip[i].read_isr = 0;
	c->chip[i].poll = c->chip[i].smm = 0;
	return true;
}

static bool ocw2_cfg_fn(union pic_cfg *c, int i, void *arg)
{
	uint8_t v = *(uint8_t *)arg;

	switch (v >> 5) {
	case 0:
		c->chip[i].rotate_aeoi = 0;
		break;
	case 4:
		c->chip[i].rotate_aeoi = 1;
		break;
	case 6:
		c->chip[i].prio = (v + 1) & 7;
		break;
	}
	return true;
}

static void pic_ocw2(struct pic *pic, int chip, uint8_t v)
{
	switch (v >> 5) {
	case 1:
		pic_eoi_cmd(pic, chip, -1, false);
		break;
	case 3:
		pic_eoi_cmd(pic, chip, v & 7, false);
		break;
	case 5:
		pic_eoi_cmd(pic, chip, -1, true);
		break;
	case 7:
		pic_eoi_cmd(pic, chip, v & 7, true);
		break;
	case 2:   /* no operation */
		break;
	default:
		cfg_update(pic, chip, ocw2_cfg_fn, &v);
	}
}

static bool ocw3_fn(union pic_cfg *c, int i, void *arg)
{
	uint8_t v = *(uint8_t *)arg;

	if (v & 0x04)
		c->chip[i].poll = 1;
	if (v & 0x02)
		c->chip[i].read_isr = v & 1;
	if (v & 0x40)
		c->chip[i].smm = (v >> 5) & 1;
	return true;
}

static void pic_even_write(struct pic *pic, int chip, uint8_t v)
{
	if (v & 0x10) {
		cfg_update(pic, chip, icw1_fn, &v);
		hot_update(pic, icw1_hot_fn, &chip);
	} else if (v & 0x08) {
		cfg_update(pic, chip, ocw3_fn, &v);
	} else {
		pic_ocw2(pic, chip, v);
	}
}

/* ICW2-4 in sequence; @imr on return says the byte is an OCW1. */
struct odd_arg {
	int chip;
	uint8_t value;
	bool imr;
};

static bool icw_fn(union pic_cfg *c, int i, void *arg)
{
	struct odd_arg *a = arg;

	a->imr = false;
	switch (c->chip[i].step) {
	case STEP_ICW2:
		c->chip[i].base = a->value & 0xf8;
		c->chip[i].step = !c->chip[i].single ? STEP_ICW3 :
				  c->chip[i].ic4 ? STEP_ICW4 : STEP_READY;
		return true;
	case STEP_ICW3:
		c->chip[i].step = c->chip[i].ic4 ? STEP_ICW4 : STEP_READY;
		return true;
	case STEP_ICW4:
		c->chip[i].aeoi = (a->value >> 1) & 1;
		c->chip[i].sfnm = (a->value >> 4) & 1;
		c->chip[i].step = STEP_READY;
		return true;
	default:
		a->imr = true;
		return false;
	}
}

static void imr_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	const struct odd_arg *a = arg;

	(void)c;
	h->chip[a->chip].imr = a->value;
}

static void pic_odd_write(struct pic *pic, int chip, uint8_t v)
{
	struct odd_arg a = { .chip = chip, .value = v };
	union pic_cfg c = { .word = atomic_load(&pic->cfg) };

	if (c.chip[chip].step == STEP_ICW4 && !(v & 1) &&
	    !atomic_exchange_explicit(&pic->warned_8080, true, memory_order_relaxed))
		pr_warn("pic: 8080 mode requested, running in 8086 mode");
	cfg_update(pic, chip, icw_fn, &a);
	if (a.imr)
		hot_update(pic, imr_fn, &a);
}

static bool elcr_fn(union pic_cfg *c, int i, void *arg)
{
	c->chip[i].elcr = *(uint8_t *)arg & elcr_writable[i];
	return true;
}

/* Lines that became level-triggered now request exactly while asserted. */
static void elcr_hot_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		uint8_t lv = c->chip[i].elcr;

		h->chip[i].irr = (h->chip[i].irr & ~lv) | (h->chip[i].lvl & lv);
	}
}

void pic_port_write(struct pic *pic, uint16_t port, uint8_t value)
{
	switch (port) {
	case 0x20:
	case 0xa0:
		pic_even_write(pic, port == 0xa0, value);
		break;
	case 0x21:
	case 0xa1:
		pic_odd_write(pic, port == 0xa1, value);
		break;
	case 0x4d0:
	case 0x4d1:
		cfg_update(pic, port & 1, elcr_fn, &value);
		hot_update(pic, elcr_hot_fn, NULL);
		break;
	}
}

/* ---- Port reads. ---- */

static bool poll_fn(union pic_cfg *c, int i, void *arg)
{
	bool *was = arg;

	*was = c->chip[i].poll;
	c->chip[i].poll = 0;
	return *was;
}

struct poll_arg {
	int chip;
	int irq;
};

static void poll_ack_fn(union pic_hot *h, const union pic_cfg *c, void *arg)
{
	struct poll_arg *a = arg;

	a->irq = chip_request(h, c, a->chip);
	if (a->irq >= 0)
		chip_ack(h, c, a->chip, a->irq);
}

/* The poll word: bit 7 "interrupt", bits 2:0 its level; an INTA too. */
static uint8_t pic_poll(struct pic *pic, int chip)
{
	struct poll_arg a = { .chip = chip };

	hot_update(pic, poll_ack_fn, &a);
	if (a.irq < 0)
		return 0;
	rotate_after_ack(pic, chip, a.irq);
	return 0x80 | a.irq;
}

uint8_t pic_port_read(struct pic *pic, uint16_t port)
{
	int chip = port >> 7 & 1;   /* 0x2x master, 0xax slave */
	union pic_hot h;
	union pic_cfg c;
	bool poll = false;

	switch (port) {
	case 0x20:
	case 0xa0:
		cfg_update(pic, chip, poll_fn, &poll);
		if (poll)
			return pic_poll(pic, chip);
		h.word = atomic_load(&pic->hot);
		c.word = atomic_load(&pic->cfg);
		return c.chip[chip].read_isr ? h.chip[chip].isr : h.chip[chip].irr;
	case 0x21:
	case 0xa1:
		h.word = atomic_load(&pic->hot);
		return h.chip[chip].imr;
	case 0x4d0:
	case 0x4d1:
		c.word = atomic_load(&pic->cfg);
		return c.chip[port & 1].elcr;
	default:
		return 0xff;
	}
}

void pic_eoi(struct pic *pic, unsigned irq)
{
	if (irq >= 8) {
		pic_port_write(pic, 0xa0, 0x60 | (irq & 7));
		irq = 2;
	}
	pic_port_write(pic, 0x20, 0x60 | (irq & 7));
}

/* ---- Bus receivers. ---- */

static bool pic_has_port(uint16_t port)
{
	switch (port) {
	case 0x20: case 0x21: case 0xa0: case 0xa1: case 0x4d0: case 0x4d1:
		return true;
	}
	return false;
}

/* Wider accesses are taken apart into byte accesses, low byte first. */
static bool pic_pio(void *dev, uint64_t addr, void *msg)
{
	struct pic *pic = dev;
	struct msg_pio *m = msg;
	uint32_t value = 0;

	for (unsigned k = 0; k < m->size && k < 4; k++) {
		uint16_t port = (uint16_t)(addr + k);

		if (m->write) {
			if (pic_has_port(port))
				pic_port_write(pic, port, (uint8_t)(m->value >> (8 * k)));
		} else {
			uint32_t b = pic_has_port(port) ? pic_port_read(pic, port) : 0xff;

			value |= b << (8 * k);
		}
	}
	if (!m->write)
		m->value = value;
	return true;
}

static bool pic_irq_receive(void *dev, void *msg)
{
	const struct msg_irq *m = msg;

	return pic_line(dev, m->line, m->action);
}

static bool pic_legacy_receive(void *dev, void *msg)
{
	struct msg_legacy *m = msg;

	switch (m->type) {
	case LEGACY_INTA:
		m->value = (uint32_t)pic_intack(dev);
		return true;
	case LEGACY_INTR_LEVEL:
		/*
		 * The output now: a de-assert may be held up behind another
		 * thread's delivery token, and the LAPIC must not acknowledge
		 * a spurious IRQ 7 on every entry meanwhile.
		 */
		m->level = pic_output(dev);
		return true;
	default:
		return false;
	}
}

/*
 * ---- Snapshots: section "pic8259" instance 0, every field of both words
 * spelled out (not the raw words: their bitfield layout is the compiler's).
 * The restore bus runs only while the VM is paused: no vCPU, timer or
 * device callback touches the words, so plain loads and stores of them
 * are safe here.  The output line: the level last sent (DELIV_SENT) is
 * saved with the rest, and the LAPIC saves its own view of LINT0, so a
 * consistent checkpoint needs no message; pic_notify() after the load
 * only sends if a stream disagrees with itself.
 */
#define PIC_STATE_VERSION 1

static uint8_t cfg_flags(const union pic_cfg *c, int i)
{
	return (uint8_t)(c->chip[i].ic4 | c->chip[i].single << 1 | c->chip[i].aeoi << 2 |
			 c->chip[i].rotate_aeoi << 3 | c->chip[i].read_isr << 4 |
			 c->chip[i].poll << 5 | c->chip[i].smm << 6 | c->chip[i].sfnm << 7);
}

static void cfg_set_flags(union pic_cfg *c, int i, uint8_t f)
{
	c->chip[i].ic4 = f & 1;
	c->chip[i].single = f >> 1 & 1;
	c->chip[i].aeoi = f >> 2 & 1;
	c->chip[i].rotate_aeoi = f >> 3 & 1;
	c->chip[i].read_isr = f >> 4 & 1;
	c->chip[i].poll = f >> 5 & 1;
	c->chip[i].smm = f >> 6 & 1;
	c->chip[i].sfnm = f >> 7 & 1;
}

static void pic_save(struct pic *pic, struct stream *s)
{
	union pic_hot h = { .word = atomic_load(&pic->hot) };
	union pic_cfg c = { .word = atomic_load(&pic->cfg) };

	stream_section_begin(s, "pic8259", 0, PIC_STATE_VERSION);
	for (int i = 0; i < 2; i++) {
		uint8_t b[] = { h.chip[i].irr, h.chip[i].isr, h.chip[i].imr, h.chip[i].lvl,
				c.chip[i].elcr, c.chip[i].base, c.chip[i].prio, c.chip[i].step,
				cfg_flags(&c, i), c.chip[i].ltim };

		stream_put(s, b, sizeof(b));
	}
	stream_put_u32(s, atomic_load(&pic->deliv) & ~DELIV_BUSY);
	stream_section_end(s);
}

static int pic_load(struct pic *pic, struct stream *s)
{
	union pic_hot h = { .word = 0 };
	union pic_cfg c = { .word = 0 };
	uint8_t b[2][10];
	uint32_t deliv;

	if (stream_section_open(s, "pic8259", 0, PIC_STATE_VERSION, NULL))
		return stream_error(s);
	stream_get(s, b, sizeof(b));
	deliv = stream_get_u32(s);
	if (stream_section_close(s))
		return stream_error(s);
	for (int i = 0; i < 2; i++) {
		if (b[i][5] & 7 || b[i][4] & ~elcr_writable[i] || b[i][6] > 7 ||
		    b[i][7] > STEP_ICW4 || b[i][9] > 1)
			return stream_fail(s, -EINVAL, "pic8259: bad %s state (base %#x, ELCR "
					   "%#x, priority %u, ICW step %u, LTIM %u)",
					   i ? "slave" : "master", b[i][5], b[i][4], b[i][6],
					   b[i][7], b[i][9]);
		h.chip[i].irr = b[i][0];
		h.chip[i].isr = b[i][1];
		h.chip[i].imr = b[i][2];
		h.chip[i].lvl = b[i][3];
		c.chip[i].elcr = b[i][4];
		c.chip[i].base = b[i][5];
		c.chip[i].prio = b[i][6] & 7;
		c.chip[i].step = b[i][7] & 3;
		cfg_set_flags(&c, i, b[i][8]);
		c.chip[i].ltim = b[i][9] & 1;
	}
	if (deliv & DELIV_BUSY)
		return stream_fail(s, -EINVAL, "pic8259: saved while sending (%#x)", deliv);
	atomic_store(&pic->hot, h.word);
	atomic_store(&pic->cfg, c.word);
	atomic_store(&pic->deliv, deliv);
	pic_notify(pic);
	return 0;
}

RESTORE_RECEIVER(pic_restore_receive, struct pic, pic_save, pic_load)

/* ---- Life cycle. ---- */

static const uint16_t pic_port_bases[] = { 0x20, 0xa0, 0x4d0 };

struct pic *pic_find(struct vm *vm)
{
	return vm_device_find(vm, "pic");
}

static void pic_detach(struct pic *pic, unsigned nports, bool irq, bool legacy)
{
	if (legacy)
		bus_detach(pic->vm->bus.restore, pic_restore_receive, pic);
	if (legacy)
		bus_detach(pic->vm->bus.legacy, pic_legacy_receive, pic);
	if (irq)
		bus_detach(pic->vm->bus.irq, pic_irq_receive, pic);
	while (nports--)
		range_bus_remove(pic->vm->bus.pio, pic_port_bases[nports]);
}

struct pic *pic_create(struct vm *vm)
{
	struct pic *pic;
	unsigned n;

	pic = calloc(1, sizeof(*pic));
	if (!pic)
		return NULL;
	if (vm_device_claim(vm, "pic", pic)) {
		free(pic);
		return NULL;
	}
	pic->vm = vm;
	for (n = 0; n < 3; n++)
		if (range_bus_add(vm->bus.pio, pic_port_bases[n], 2, pic_pio, true, pic))
			goto fail;
	if (bus_attach(vm->bus.irq, pic_irq_receive, bus_claim_always, pic))
		goto fail;
	if (bus_attach(vm->bus.legacy, pic_legacy_receive, bus_claim_always, pic)) {
		pic_detach(pic, n, true, false);
		goto release;
	}
	if (bus_attach(vm->bus.restore, pic_restore_receive, NULL, pic)) {
		bus_detach(vm->bus.legacy, pic_legacy_receive, pic);
		pic_detach(pic, n, true, false);
		goto release;
	}
	return pic;
fail:
	pic_detach(pic, n, false, false);
release:
	vm_device_release(vm, "pic", pic);
	free(pic);
	return NULL;
}

void pic_destroy(struct pic *pic)
{
	if (!pic)
		return;
	vm_device_release(pic->vm, "pic", pic);
	pic_detach(pic, 3, true, true);
	free(pic);
}

/* At VM teardown the buses go away with everything on them. */
static void pic_release(void *ctx)
{
	struct pic *pic = ctx;

	vm_device_release(pic->vm, "pic", pic);
	free(pic);
}

void pic_bios_init(struct pic *pic)
{
	static const uint16_t seq[][2] = {
		{ 0x20, 0x11 }, { 0x21, 0x08 }, { 0x21, 0x04 }, { 0x21, 0x01 },
		{ 0xa0, 0x11 }, { 0xa1, 0x70 }, { 0xa1, 0x02 }, { 0xa1, 0x01 },
		{ 0x21, 0xb8 }, { 0xa1, 0x8e },
	};

	for (unsigned i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		pic_port_write(pic, seq[i][0], seq[i][1]);
}

/* ---- Inspection. ---- */

void pic_snapshot(const struct pic *pic, struct pic_snapshot *s)
{
	union pic_hot h = { .word = atomic_load(&pic->hot) };
	union pic_cfg c = { .word = atomic_load(&pic->cfg) };

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 2; i++) {
		s->irr[i] = h.chip[i].irr;
		s->isr[i] = h.chip[i].isr;
		s->imr[i] = h.chip[i].imr;
		s->level[i] = h.chip[i].lvl;
		s->elcr[i] = c.chip[i].elcr;
		s->vector_base[i] = c.chip[i].base;
		s->priority[i] = c.chip[i].prio;
		s->auto_eoi[i] = c.chip[i].aeoi;
		s->special_mask[i] = c.chip[i].smm;
	}
	s->output = output_of(&h, &c);
	s->messages = atomic_load(&pic->deliv) / DELIV_GEN;
	s->deferred = atomic_load_explicit(&pic->deferred, memory_order_relaxed);
}

void pic_dump(const struct pic *pic, FILE *f)
{
	union pic_hot h = { .word = atomic_load(&pic->hot) };
	union pic_cfg c = { .word = atomic_load(&pic->cfg) };
	uint32_t d = atomic_load(&pic->deliv);
	static const char *const name[2] = { "master", "slave" };

	fprintf(f, "pic: INT %s (last sent %s, %u messages, %llu deferred%s), "
		"%llu INTA, %llu spurious\n",
		output_of(&h, &c) ? "high" : "low", d & DELIV_SENT ? "high" : "low",
		d / DELIV_GEN,
		(unsigned long long)atomic_load_explicit(&pic->deferred, memory_order_relaxed),
		d & DELIV_BUSY ? ", sending" : "",
		(unsigned long long)atomic_load_explicit(&pic->acks, memory_order_relaxed),
		(unsigned long long)atomic_load_explicit(&pic->spurious, memory_order_relaxed));
	for (int i = 0; i < 2; i++)
		fprintf(f, "pic: %-6s IRR %02x ISR %02x IMR %02x lines %02x ELCR %02x "
			"base %#04x prio %u%s%s%s%s%s%s request %d\n", name[i],
			h.chip[i].irr, h.chip[i].isr, h.chip[i].imr, h.chip[i].lvl,
			c.chip[i].elcr, c.chip[i].base, c.chip[i].prio,
			c.chip[i].step ? " (initialising)" : "",
			c.chip[i].aeoi ? " aeoi" : "",
			c.chip[i].rotate_aeoi ? " rotate-aeoi" : "",
			c.chip[i].smm ? " special-mask" : "",
			c.chip[i].sfnm ? " sfnm" : "",
			c.chip[i].read_isr ? " read-isr" : "",
			chip_request(&h, &c, i));
}

static int pic_model_create(struct vm *vm, const char *args)
{
	struct pic *pic;

	if (args && *args) {
		pr_err("pic: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	pic = pic_create(vm);
	if (!pic) {
		pr_err("pic: ports 0x20, 0xa0 or 0x4d0 taken, or out of memory");
		return -EEXIST;
	}
	vm_at_exit(vm, pic_release, pic);
	return 0;
}

DEVICE_MODEL(pic_model,
	.name = "pic",
	.help = "pic  8259A master/slave pair at 0x20/0xa0 with ELCR 0x4d0 (lock-free)",
	.create = pic_model_create)
