/*
 * 8254 programmable interval timer and the PC's port 0x61.
 *
 * State:    stable.
 * Features: three channels at 1.193182 MHz; modes 0-5 (6 and 7 alias 2
 *           and 3); binary and BCD counting; LSB, MSB and LSB-then-MSB
 *           access with independent read and write byte toggles; the
 *           counter latch command; read-back (count and/or status of any
 *           set of channels); status byte (OUT, null count, RW, mode,
 *           BCD); gates: channels 0 and 1 tied high, channel 2 from port
 *           0x61 bit 0; OUT2 in port 0x61 bit 5; the refresh toggle in bit
 *           4 flips on every read (so polling loops always progress).
 *           Channel 0's OUT raises ISA IRQ 0 (an IRQ_EDGE on vm->bus.irq)
 *           at each rising edge, from a timer of the timer service armed
 *           for the next edge.  Channel 1 counts, but its OUT goes nowhere.
 * Time:     nothing ticks.  Every counter is a function of the tick
 *           (VM time in units of 1/1193182 s): loading a count records the
 *           tick and the value, and reads compute the current value from
 *           them.  As on the chip, a count written at tick k is loaded into
 *           the counting element at tick k + 1; in mode 0 OUT therefore
 *           rises at tick k + 1 + N, which is what a guest polling OUT2 to
 *           calibrate its TSC measures.
 * IRQ 0:    if the host fell behind by several periods, one interrupt is
 *           delivered and the timer moves on to the next edge in the
 *           future; the missed ones count as coalesced.  An edge made by
 *           reprogramming (a control word that sets OUT high) raises IRQ 0
 *           too, as the chip's output would.
 * Missing:  the speaker makes no sound (bit 1 is stored only); a count
 *           written during counting in mode 3 takes effect at the end of
 *           the period rather than of the half period; a count of 1 in
 *           modes 2 and 3 (illegal on the chip) acts as 2; invalid BCD
 *           digits count as their binary value; OUT in the one clock
 *           between a (re)trigger and the load is already the loaded
 *           state's; ports 0x61 bits 2, 3 are stored but check nothing, and
 *           bits 6, 7 (NMI sources) read 0.
 * Spec:     Intel 8254 Programmable Interval Timer datasheet (order number
 *           231164-005, 1993); IBM PC/AT Technical Reference for port 0x61.
 *
 * Snapshot: section "pit" instance 0: every channel field, port 0x61 and
 *           the IRQ 0 mark, all in ticks of the VM clock, which the snapshot
 *           restores before the devices load; so counters and the next edge
 *           carry on at the same phase, and the timer is re-armed for the
 *           next edge after the mark (one interrupt for any edges missed,
 *           as always).  IRQ 0 is an edge: there is no line to re-send.
 *
 * Serialized: the ports and the timer receiver are unclaimed; plain state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "devices/pit8254.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/timer.h"
#include "vmm/vm.h"

#define NS_PER_S 1000000000u

uint64_t pit_ns_to_tick(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * PIT_HZ / NS_PER_S);
}

uint64_t pit_tick_to_ns(uint64_t tick)
{
	unsigned __int128 ns;

	if (tick == PIT_NEVER)
		return PIT_NEVER;
	ns = ((unsigned __int128)tick * NS_PER_S + PIT_HZ - 1) / PIT_HZ;
	return ns > PIT_NEVER ? PIT_NEVER : (uint64_t)ns;
}

/* ---- The counting element as a function of the tick ---- */

static unsigned ch_mode(const struct pit_channel *ch)
{
	return ch->mode_bits & 2 ? ch->mode_bits & 3u : ch->mode_bits;
}

static uint32_t modulus(const struct pit_channel *ch)
{
	return ch->bcd ? 10000 : 65536;
}

/* The initial count a written CR stands for: 0 is the largest. */
static uint32_t decode(const struct pit_channel *ch, uint16_t raw)
{
	uint32_t n = raw;

	if (ch->bcd)
		n = ((raw >> 12 & 0xfu) * 1000 + (raw >> 8 & 0xfu) * 100 +
		     (raw >> 4 & 0xfu) * 10 + (raw & 0xfu)) % 10000;
	return n ? n : modulus(ch);
}

static uint16_t encode(const struct pit_channel *ch, uint32_t v)
{
	if (!ch->bcd)
		return (uint16_t)v;
	return (uint16_t)((v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10);
}

/* Count 1 is illegal in modes 2 and 3. */
static uint32_t periodic(uint32_t n)
{
	return n < 2 ? 2 : n;
}

/* The channel as it stands at @tick: a reload that is due has happened. */
static struct pit_channel at(const struct pit_channel *ch, uint64_t tick)
{
	struct pit_channel c = *ch;

	if (c.run == PIT_RUNNING && c.reload_at != PIT_NEVER && tick >= c.reload_at) {
		c.base = c.reload_at;
		c.period = c.ce = c.reload;
		c.reload_at = PIT_NEVER;
	}
	return c;
}

static uint64_t elapsed(const struct pit_channel *c, uint64_t tick)
{
	return tick > c->base ? tick - c->base : 0;
}

/*
 * Mode 3 counts by two: an even N from N, an odd N from N - 1 (and one
 * clock more in the high half), reloading at each half.
 */
static uint32_t square_value(uint32_t n, uint64_t phase)
{
	uint32_t high = (n + 1) / 2;
	uint32_t start = n & ~1u;

	if (phase >= high)
		phase -= high;
	return start - 2 * (uint32_t)phase;
}

/* The counting element now, 0..modulus-1. */
static uint32_t ce_value(const struct pit_channel *ch, uint64_t tick)
{
	struct pit_channel c = at(ch, tick);
	uint32_t m = modulus(&c);
	uint64_t e;

	if (c.run != PIT_RUNNING)
		return c.ce % m;
	e = elapsed(&c, tick);
	switch (ch_mode(&c)) {
	case 2:
		return (uint32_t)(c.period - e % c.period) % m;
	case 3:
		return square_value(c.period, e % c.period) % m;
	default:  /* counts down through zero and wraps, as the chip does */
		return (uint32_t)((c.ce + m - e % m) % m);
	}
}

static bool ch_out(const struct pit_channel *ch, uint64_t tick)
{
	struct pit_channel c = at(ch, tick);
	unsigned mode = ch_mode(&c);
	uint64_t e;

	switch (c.run) {
	case PIT_IDLE:
		return mode != 0;        /* a control word sets OUT low in mode 0 only */
	case PIT_ARMED:
		return true;
	case PIT_HELD:
		return mode == 0 ? c.done : true;
	}
	e = elapsed(&c, tick);
	switch (mode) {
	case 0:
	case 1:
		return c.done || e >= c.ce;
	case 4:
	case 5:
		return c.done || e != c.ce;     /* low for the one clock at zero */
	case 2:
		return e % c.period != c.period - 1;
	default:
		return e % c.period < (c.period + 1) / 2;
	}
}

static uint64_t next_edge(const struct pit_channel *ch, uint64_t tick)
{
	struct pit_channel c = at(ch, tick);
	uint64_t t;

	if (c.run != PIT_RUNNING)
		return PIT_NEVER;
	switch (ch_mode(&c)) {
	case 0:
	case 1:
		t = c.base + c.ce;
		break;
	case 4:
	case 5:
		t = c.base + c.ce + 1;
		break;
	default:  /* the reload at the end of each period */
		return c.base + (tick >= c.base ? (tick - c.base) / c.period + 1 : 1) * c.period;
	}
	return !c.done && t > tick ? t : PIT_NEVER;
}

static bool null_count(const struct pit_channel *ch, uint64_t tick)
{
	return tick < at(ch, tick).null_until;
}

/* ---- State changes ---- */

/* Gate low in modes 0 and 4: keep what is left (or that zero went by). */
static void hold(struct pit_channel *ch, uint64_t tick)
{
	unsigned mode = ch_mode(ch);
	uint64_t e = elapsed(ch, tick);
	bool past = mode == 0 ? e >= ch->ce : e > ch->ce;

	if (mode == 2 || mode == 3 || ch->done || past) {
		ch->ce = ce_value(ch, tick);
		ch->done = ch->done || (mode != 2 && mode != 3);
	} else {
		ch->ce -= (uint32_t)e;
	}
	ch->reload_at = PIT_NEVER;
	ch->run = PIT_HELD;
}

/* Load CR into the counting element on the next clock. */
static void start(struct pit_channel *ch, uint64_t tick, uint32_t n)
{
	ch->ce = n;
	ch->base = tick + 1;
	ch->done = false;
	ch->reload_at = PIT_NEVER;
	ch->null_until = tick + 1;
	ch->run = ch->gate ? PIT_RUNNING : PIT_HELD;
}

/* A complete count was written. */
static void load(struct pit_channel *ch, uint64_t tick)
{
	uint32_t n = decode(ch, ch->cr);

	switch (ch_mode(ch)) {
	case 1:
	case 5:
		/* Used by the next trigger; a running one-shot finishes first. */
		if (ch->run == PIT_IDLE)
			ch->run = PIT_ARMED;
		ch->null_until = PIT_NEVER;
		return;
	case 2:
	case 3:
		if (ch->run == PIT_RUNNING) {
			/* The current period ends first. */
			ch->reload_at = next_edge(ch, tick);
			ch->reload = periodic(n);
			ch->null_until = ch->reload_at;
			return;
		}
		ch->period = periodic(n);
		start(ch, tick, ch->period);
		return;
	default:
		start(ch, tick, n);
	}
}

static void set_gate(struct pit_channel *ch, uint64_t tick, bool level)
{
	unsigned mode = ch_mode(ch);

	*ch = at(ch, tick);
	if (level == ch->gate)
		return;
	ch->gate = level;
	if (!level) {
		if (ch->run == PIT_RUNNING && mode != 1 && mode != 5)
			hold(ch, tick);
		return;
	}
	if ((mode == 1 || mode == 5) && ch->run != PIT_IDLE) {
		/* The trigger: (re)load CR and count from the next clock. */
		start(ch, tick, decode(ch, ch->cr));
	} else if (ch->run == PIT_HELD && (mode == 2 || mode == 3)) {
		ch->period = periodic(decode(ch, ch->cr));
		start(ch, tick, ch->period);
	} else if (ch->run == PIT_HELD) {
		ch->base = tick + 1;      /* modes 0, 4: carry on from the held count */
		ch->run = PIT_RUNNING;
	}
}

static void control(struct pit_channel *ch, uint64_t tick, uint8_t cw)
{
	uint32_t frozen = ce_value(ch, tick);

	ch->mode_bits = cw >> 1 & 7;
	ch->access = cw >> 4 & 3;
	ch->bcd = cw & 1;
	ch->write_msb_next = ch->read_msb_next = false;
	ch->latched_bytes = 0;
	ch->status_latched = false;
	ch->run = PIT_IDLE;
	ch->done = false;
	ch->ce = frozen % modulus(ch);
	ch->reload_at = PIT_NEVER;
	ch->null_until = PIT_NEVER;
}

static void latch_count(struct pit_channel *ch, uint64_t tick)
{
	if (ch->latched_bytes)
		return;   /* a second latch before the read is ignored */
	ch->latch = encode(ch, ce_value(ch, tick));
	ch->latched_bytes = ch->access == 3 ? 2 : 1;
}

static void latch_status(struct pit_channel *ch, uint64_t tick)
{
	if (ch->status_latched)
		return;
	ch->status = (uint8_t)(ch_out(ch, tick) << 7 | null_count(ch, tick) << 6 |
			       ch->access << 4 | ch->mode_bits << 1 | ch->bcd);
	ch->status_latched = true;
}

static void ch_write(struct pit_channel *ch, uint64_t tick, uint8_t v)
{
	*ch = at(ch, tick);
	switch (ch->access) {
	case 1:
		ch->cr = v;
		break;
	case 2:
		ch->cr = (uint16_t)(v << 8);
		break;
	default:
		if (!ch->write_msb_next) {
			ch->cr_lsb = v;
			ch->write_msb_next = true;
			if (ch_mode(ch) == 0) {
				/* Mode 0: the first byte stops counting, OUT goes low. */
				ch->ce = ce_value(ch, tick);
				ch->run = PIT_IDLE;
				ch->done = false;
			}
			return;
		}
		ch->cr = (uint16_t)(ch->cr_lsb | v << 8);
		ch->write_msb_next = false;
	}
	load(ch, tick);
}

static uint8_t ch_read(struct pit_channel *ch, uint64_t tick)
{
	uint16_t v;
	bool msb;

	if (ch->status_latched) {
		ch->status_latched = false;
		return ch->status;
	}
	if (ch->latched_bytes) {
		v = ch->latch;
		msb = ch->access == 2 || (ch->access == 3 && ch->latched_bytes == 1);
		ch->latched_bytes--;
		if (ch->access != 3)
			ch->latched_bytes = 0;
	} else {
		v = encode(ch, ce_value(ch, tick));
		msb = ch->access == 2 || (ch->access == 3 && ch->read_msb_next);
		if (ch->access == 3)
			ch->read_msb_next = !ch->read_msb_next;
	}
	return msb ? v >> 8 : v & 0xff;
}

static void ctrl_write(struct pit_chip *c, uint64_t tick, uint8_t v)
{
	unsigned sc = v >> 6;

	if (sc == 3) {
		/* Read-back: bit 5 clear latches counts, bit 4 clear statuses. */
		for (unsigned i = 0; i < 3; i++) {
			if (!(v & 2u << i))
				continue;
			if (!(v & 0x20))
				latch_count(&c->ch[i], tick);
			if (!(v & 0x10))
				latch_status(&c->ch[i], tick);
		}
	} else if (!(v & 0x30)) {
		latch_count(&c->ch[sc], tick);
	} else {
		control(&c->ch[sc], tick, v);
	}
}

/* ---- The chip ---- */

void pit_chip_reset(struct pit_chip *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < 3; i++) {
		struct pit_channel *ch = &c->ch[i];

		/* Mode 3 idle: OUT high, so the BIOS set-up makes no edge. */
		ch->mode_bits = 3;
		ch->access = 3;
		ch->run = PIT_IDLE;
		ch->gate = i != 2;
		ch->reload_at = PIT_NEVER;
		ch->null_until = PIT_NEVER;
	}
}

void pit_chip_write(struct pit_chip *c, uint64_t now_ns, uint16_t port, uint8_t value)
{
	uint64_t tick = pit_ns_to_tick(now_ns);

	switch (port) {
	case PIT_PORT_CH0:
	case PIT_PORT_CH1:
	case PIT_PORT_CH2:
		ch_write(&c->ch[port - PIT_PORT_CH0], tick, value);
		break;
	case PIT_PORT_CTRL:
		ctrl_write(c, tick, value);
		break;
	case PIT_PORT_61:
		c->port61 = value & 0x0f;
		set_gate(&c->ch[2], tick, value & PORT61_GATE2);
		break;
	}
}

uint8_t pit_chip_read(struct pit_chip *c, uint64_t now_ns, uint16_t port)
{
	uint64_t tick = pit_ns_to_tick(now_ns);

	switch (port) {
	case PIT_PORT_CH0:
	case PIT_PORT_CH1:
	case PIT_PORT_CH2:
		return ch_read(&c->ch[port - PIT_PORT_CH0], tick);
	case PIT_PORT_61:
		c->refresh = !c->refresh;
		return (uint8_t)(c->port61 | (c->refresh ? PORT61_REFRESH : 0) |
				 (ch_out(&c->ch[2], tick) ? PORT61_OUT2 : 0));
	}
	return 0xff;   /* the control word register cannot be read */
}

bool pit_chip_out(const struct pit_chip *c, unsigned ch, uint64_t now_ns)
{
	return ch_out(&c->ch[ch], pit_ns_to_tick(now_ns));
}

uint32_t pit_chip_count(const struct pit_chip *c, unsigned ch, uint64_t now_ns)
{
	return ce_value(&c->ch[ch], pit_ns_to_tick(now_ns));
}

uint64_t pit_chip_next_edge(const struct pit_chip *c, unsigned ch, uint64_t tick)
{
	return next_edge(&c->ch[ch], tick);
}

static const char *const run_names[] = { "idle", "armed", "running", "held" };

void pit_chip_dump(const struct pit_chip *c, uint64_t now_ns, FILE *f)
{
	uint64_t tick = pit_ns_to_tick(now_ns);

	fprintf(f, "pit: tick %llu, port61 %#x (gate2 %u, speaker %u)\n",
		(unsigned long long)tick, c->port61, c->port61 & 1, c->port61 >> 1 & 1);
	for (unsigned i = 0; i < 3; i++) {
		const struct pit_channel *ch = &c->ch[i];

		uint64_t edge = next_edge(ch, tick);

		fprintf(f, "  ch%u: mode %u rw %u %s %-7s gate %u out %u count %u cr 0x%04x "
			"null %u latched %u%s next edge ",
			i, ch_mode(ch), ch->access, ch->bcd ? "bcd" : "bin", run_names[ch->run & 3],
			ch->gate, ch_out(ch, tick), ce_value(ch, tick), ch->cr,
			null_count(ch, tick), ch->latched_bytes,
			ch->status_latched ? " +status" : "");
		if (edge == PIT_NEVER)
			fprintf(f, "none\n");
		else
			fprintf(f, "+%llu\n", (unsigned long long)(edge - tick));
	}
}

/* ---- IRQ 0 bookkeeping ---- */

void pit_irq_track_init(struct pit_irq_track *t, const struct pit_chip *c, uint64_t now_ns)
{
	*t = (struct pit_irq_track){ .checked = pit_ns_to_tick(now_ns) };
	t->out = ch_out(&c->ch[0], t->checked);
}

bool pit_irq_due(const struct pit_chip *c, struct pit_irq_track *t, uint64_t now_ns)
{
	const struct pit_channel *ch = &c->ch[0];
	uint64_t tick = pit_ns_to_tick(now_ns);
	uint64_t edge;
	bool out, due;

	if (tick < t->checked)
		tick = t->checked;
	edge = next_edge(ch, t->checked);
	out = ch_out(ch, tick);
	/* Counting made an edge, or reprogramming took OUT from low to high. */
	due = edge <= tick || (!t->out && out);
	if (edge <= tick && next_edge(ch, edge) <= tick)
		t->coalesced++;
	t->checked = tick;
	t->out = out;
	t->fired += due;
	return due;
}

uint64_t pit_irq_next_ns(const struct pit_chip *c, const struct pit_irq_track *t)
{
	return pit_tick_to_ns(next_edge(&c->ch[0], t->checked));
}

/* ---- The device ---- */

struct pit {
	struct vm *vm;
	struct pit_chip chip;
	struct pit_irq_track irq;
	unsigned timer;
};


static void irq0_update(struct pit *pit, uint64_t now)
{
	struct msg_irq msg = { .line = 0, .action = IRQ_EDGE };

	if (pit_irq_due(&pit->chip, &pit->irq, now))
		bus_send(pit->vm->bus.irq, &msg, BUS_FIFO);
}

static void irq0_rearm(struct pit *pit)
{
	uint64_t next = pit_irq_next_ns(&pit->chip, &pit->irq);

	if (next == PIT_NEVER)
		timer_cancel(pit->vm, pit->timer);
	else
		timer_arm(pit->vm, pit->timer, next);
}

void pit_port_write(struct pit *pit, uint16_t port, uint8_t value)
{
	uint64_t now = vm_clock_ns(pit->vm);

	if (port != PIT_PORT_CH0 && port != PIT_PORT_CTRL) {
		pit_chip_write(&pit->chip, now, port, value);
		return;
	}
	/* Edges of the old programming first, then any the write made. */
	irq0_update(pit, now);
	pit_chip_write(&pit->chip, now, port, value);
	irq0_update(pit, now);
	irq0_rearm(pit);
}

uint8_t pit_port_read(struct pit *pit, uint16_t port)
{
	return pit_chip_read(&pit->chip, vm_clock_ns(pit->vm), port);
}

static bool pit_port(uint16_t port)
{
	return (port >= PIT_PORT_CH0 && port <= PIT_PORT_CTRL) || port == PIT_PORT_61;
}

/* Wider accesses are byte accesses to consecutive ports. */
static bool pit_pio(void *dev, uint64_t addr, void *m)
{
	struct pit *pit = dev;
	struct msg_pio *msg = m;
	uint32_t value = 0;

	for (unsigned i = 0; i < msg->size && i < 4; i++) {
		uint16_t port = (uint16_t)(addr + i);

		if (msg->write) {
			if (pit_port(port))
				pit_port_write(pit, port, (uint8_t)(msg->value >> (8 * i)));
		} else {
			value |= (uint32_t)(pit_port(port) ? pit_port_read(pit, port) : 0xff) << (8 * i);
		}
	}
	if (!msg->write)
		msg->value = value;
	return true;
}

static bool pit_timer(void *dev, void *m)
{
	struct pit *pit = dev;
	const struct msg_timer *msg = m;

	if (msg->timer != pit->timer)
		return false;
	irq0_update(pit, vm_clock_ns(pit->vm));
	irq0_rearm(pit);
	return true;
}

/* ---- Snapshots ---- */

#define PIT_STATE_VERSION 1

static void channel_save(const struct pit_channel *ch, struct stream *s)
{
	uint8_t b[] = { ch->mode_bits, ch->access, ch->bcd, ch->cr_lsb, ch->write_msb_next,
			ch->read_msb_next, ch->latched_bytes, ch->status_latched, ch->status,
			ch->gate, ch->run, ch->done };

	stream_put(s, b, sizeof(b));
	stream_put_u32(s, ch->cr);
	stream_put_u32(s, ch->latch);
	stream_put_u32(s, ch->ce);
	stream_put_u32(s, ch->period);
	stream_put_u32(s, ch->reload);
	stream_put_u64(s, ch->base);
	stream_put_u64(s, ch->reload_at);
	stream_put_u64(s, ch->null_until);
}

static void channel_get(struct pit_channel *ch, struct stream *s)
{
	uint8_t b[12];

	stream_get(s, b, sizeof(b));
	*ch = (struct pit_channel){
		.mode_bits = b[0], .access = b[1], .bcd = b[2], .cr_lsb = b[3],
		.write_msb_next = b[4], .read_msb_next = b[5], .latched_bytes = b[6],
		.status_latched = b[7], .status = b[8], .gate = b[9], .run = b[10], .done = b[11],
	};
	/* Flags wider than a bool would be squashed: keep them visible to the check. */
	if ((b[2] | b[4] | b[5] | b[7] | b[9] | b[11]) > 1)
		ch->run = 0xff;
	ch->cr = (uint16_t)stream_get_u32(s);
	ch->latch = (uint16_t)stream_get_u32(s);
	ch->ce = stream_get_u32(s);
	ch->period = stream_get_u32(s);
	ch->reload = stream_get_u32(s);
	ch->base = stream_get_u64(s);
	ch->reload_at = stream_get_u64(s);
	ch->null_until = stream_get_u64(s);
}

/* What the counting functions rely on: no division by zero, no mode 8. */
static const char *channel_check(const struct pit_channel *ch)
{
	uint32_t m = modulus(ch);
	unsigned mode = ch_mode(ch);

	if (ch->mode_bits > 7)
		return "mode";
	if (ch->access < 1 || ch->access > 3 || ch->latched_bytes > 2)
		return "access";
	if (ch->run > PIT_HELD)
		return "run state or flag";
	if (ch->ce > m || ch->period > m || ch->reload > m)
		return "count";
	if ((mode == 2 || mode == 3) && ch->run == PIT_RUNNING &&
	    (ch->period < 2 || (ch->reload_at != PIT_NEVER && ch->reload < 2)))
		return "period";
	return NULL;
}

static void pit_save(struct pit *pit, struct stream *s)
{
	stream_section_begin(s, "pit", 0, PIT_STATE_VERSION);
	for (unsigned i = 0; i < 3; i++)
		channel_save(&pit->chip.ch[i], s);
	stream_put_u8(s, pit->chip.port61);
	stream_put_u8(s, pit->chip.refresh);
	stream_put_u64(s, pit->irq.checked);
	stream_put_u8(s, pit->irq.out);
	stream_put_u64(s, pit->irq.fired);
	stream_put_u64(s, pit->irq.coalesced);
	stream_section_end(s);
}

static int pit_load(struct pit *pit, struct stream *s)
{
	struct pit_chip chip;
	struct pit_irq_track irq;
	uint8_t refresh, out;
	uint64_t now = pit_ns_to_tick(vm_clock_ns(pit->vm));

	if (stream_section_open(s, "pit", 0, PIT_STATE_VERSION, NULL))
		return stream_error(s);
	for (unsigned i = 0; i < 3; i++)
		channel_get(&chip.ch[i], s);
	chip.port61 = stream_get_u8(s);
	refresh = stream_get_u8(s);
	irq.checked = stream_get_u64(s);
	out = stream_get_u8(s);
	irq.fired = stream_get_u64(s);
	irq.coalesced = stream_get_u64(s);
	if (stream_section_close(s))
		return stream_error(s);
	for (unsigned i = 0; i < 3; i++) {
		const char *bad = channel_check(&chip.ch[i]);

		if (bad)
			return stream_fail(s, -EINVAL, "pit: channel %u has a bad %s (mode %u, "
					   "access %u, run %u, count %u, period %u)", i, bad,
					   chip.ch[i].mode_bits, chip.ch[i].access, chip.ch[i].run,
					   chip.ch[i].ce, chip.ch[i].period);
	}
	if (chip.port61 > 0x0f || refresh > 1 || out > 1 || !chip.ch[0].gate ||
	    !chip.ch[1].gate || chip.ch[2].gate != (chip.port61 & PORT61_GATE2))
		return stream_fail(s, -EINVAL, "pit: bad port 0x61 %#x or gates", chip.port61);
	if (irq.checked > now + 1)
		return stream_fail(s, -EINVAL, "pit: IRQ 0 accounted up to tick %llu, after "
				   "the VM clock (tick %llu)", (unsigned long long)irq.checked,
				   (unsigned long long)now);
	chip.refresh = refresh;
	irq.out = out;
	pit->chip = chip;
	pit->irq = irq;
	/* The VM clock was restored first: the next edge comes at the saved phase. */
	irq0_rearm(pit);
	return 0;
}

RESTORE_RECEIVER(pit_restore_receive, struct pit, pit_save, pit_load)

const struct pit_chip *pit_chip(const struct pit *pit)
{
	return &pit->chip;
}

const struct pit_irq_track *pit_irq_stats(const struct pit *pit)
{
	return &pit->irq;
}

struct pit *pit_find(struct vm *vm)
{
	return vm_device_find(vm, "pit");
}

struct pit *pit_create(struct vm *vm)
{
	struct pit *pit;

	if (!vm->timers)
		return NULL;
	pit = calloc(1, sizeof(*pit));
	if (!pit)
		return NULL;
	pit->vm = vm;
	pit_chip_reset(&pit->chip);
	pit_irq_track_init(&pit->irq, &pit->chip, vm_clock_ns(vm));
	if (vm_device_claim(vm, "pit", pit)) {
		free(pit);
		return NULL;
	}
	pit->timer = timer_alloc(vm);
	if (range_bus_add(vm->bus.pio, PIT_PORT_CH0, 4, pit_pio, false, pit))
		goto fail_registry;
	if (range_bus_add(vm->bus.pio, PIT_PORT_61, 1, pit_pio, false, pit))
		goto fail_ch;
	if (bus_attach(vm->bus.timer, pit_timer, NULL, pit))
		goto fail_61;
	if (bus_attach(vm->bus.restore, pit_restore_receive, NULL, pit))
		goto fail_timer;
	return pit;
fail_timer:
	bus_detach(vm->bus.timer, pit_timer, pit);
fail_61:
	range_bus_remove(vm->bus.pio, PIT_PORT_61);
fail_ch:
	range_bus_remove(vm->bus.pio, PIT_PORT_CH0);
fail_registry:
	vm_device_release(pit->vm, "pit", pit);
	free(pit);
	return NULL;
}

void pit_destroy(struct pit *pit)
{
	if (!pit)
		return;
	/* Detaching waits out RCU readers: no callback can re-arm after this. */
	bus_detach(pit->vm->bus.restore, pit_restore_receive, pit);
	bus_detach(pit->vm->bus.timer, pit_timer, pit);
	range_bus_remove(pit->vm->bus.pio, PIT_PORT_61);
	range_bus_remove(pit->vm->bus.pio, PIT_PORT_CH0);
	if (pit->vm->timers)
		timer_cancel(pit->vm, pit->timer);
	vm_device_release(pit->vm, "pit", pit);
	free(pit);
}

static void pio_out(struct vm *vm, uint16_t port, uint8_t value)
{
	struct msg_pio msg = { .port = port, .size = 1, .write = true, .value = value };

	range_bus_send(vm->bus.pio, port, &msg);
}

void pit_bios_init(struct pit *pit)
{
	pio_out(pit->vm, PIT_PORT_CTRL, 0x36);   /* channel 0, LSB then MSB, mode 3 */
	pio_out(pit->vm, PIT_PORT_CH0, 0);
	pio_out(pit->vm, PIT_PORT_CH0, 0);
}

void pit_dump(const struct pit *pit, FILE *f)
{
	pit_chip_dump(&pit->chip, vm_clock_ns(pit->vm), f);
	fprintf(f, "  irq0: %llu raised, %llu coalesced, checked up to tick %llu\n",
		(unsigned long long)pit->irq.fired, (unsigned long long)pit->irq.coalesced,
		(unsigned long long)pit->irq.checked);
}

static void pit_destroy_hook(void *ctx)
{
	pit_destroy(ctx);
}

static int pit_model_create(struct vm *vm, const char *args)
{
	struct pit *pit;

	if (*args) {
		pr_err("pit: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	pit = pit_create(vm);
	if (!pit) {
		pr_err("pit: cannot create (ports 0x40-0x43 or 0x61 taken, a PIT already there, "
		       "or no timer service)");
		return -EEXIST;
	}
	vm_at_exit(vm, pit_destroy_hook, pit);
	return 0;
}

DEVICE_MODEL(pit_model,
	.name = "pit",
	.help = "pit  8254 timer at 0x40-0x43 (channel 0 on IRQ 0) and port 0x61",
	.create = pit_model_create);
