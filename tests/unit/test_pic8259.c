/*
 * The 8259A pair: register-level semantics through the port bus, the IRQ
 * lines and INTA as the other models drive them, the output messages on
 * the legacy bus, and the lock-free paths under concurrent senders.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "bus/message.h"
#include "devices/pic8259.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "restore_trip.h"

#define MAX_MSGS 4096

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* What arrives on the legacy bus from the PIC's output. */
struct recorder {
	_Atomic bool level;
	_Atomic uint32_t count;
	_Atomic uint32_t bad_order;   /* a message that does not alternate */
	_Atomic uint32_t nudges;      /* unordered INTR reminders (generation 0) */
	_Atomic unsigned spin;        /* a slow CPU: widens the sender's window */
	uint8_t type[MAX_MSGS];
	uint32_t gen[MAX_MSGS];
};

struct fixture {
	struct vm vm;
	struct pic *pic;
	struct recorder rec;
};

/*
 * Claimed, so it runs on the sender's thread.  The PIC sends one message
 * at a time (its delivery token orders them), so plain array writes are
 * ordered by the PIC's own atomics.
 */
static bool recorder_receive(void *dev, void *msg)
{
	struct recorder *r = dev;
	const struct msg_legacy *m = msg;
	uint32_t n;
	bool level;

	if (m->type != LEGACY_INTR && m->type != LEGACY_DEASSERT_INTR)
		return false;
	level = m->type == LEGACY_INTR;
	if (level && m->value == 0) {
		/* A nudge from a thread that found the delivery token taken. */
		atomic_fetch_add(&r->nudges, 1);
		return true;
	}
	n = atomic_load_explicit(&r->count, memory_order_relaxed);
	if (level == atomic_load_explicit(&r->level, memory_order_relaxed) || m->value != n + 1)
		atomic_fetch_add(&r->bad_order, 1);
	for (unsigned i = atomic_load_explicit(&r->spin, memory_order_relaxed); i; i--)
		cpu_relax();
	if (n < MAX_MSGS) {
		r->type[n] = m->type;
		r->gen[n] = m->value;
	}
	atomic_store_explicit(&r->count, n + 1, memory_order_relaxed);
	atomic_store_explicit(&r->level, level, memory_order_release);
	return true;
}

static int setup_mode(void **state, enum io_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	f->pic = pic_create(&f->vm);
	assert_non_null(f->pic);
	assert_int_equal(bus_attach(f->vm.bus.legacy, recorder_receive, bus_claim_always,
				    &f->rec), 0);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_mode(state, IO_MODE_LOCK); }
/* With an I/O thread: everything the PIC does must still be claimed. */
static int setup_thread(void **state) { return setup_mode(state, IO_MODE_THREAD); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	bus_detach(f->vm.bus.legacy, recorder_receive, &f->rec);
	pic_destroy(f->pic);
	vm_fini_buses(&f->vm);
	free(f);
	return 0;
}

/* Guest-style port access through the port bus. */
static void outb(struct fixture *f, uint16_t port, uint8_t v)
{
	struct msg_pio m = { .port = port, .size = 1, .write = true, .value = v };

	assert_true(range_bus_send(f->vm.bus.pio, port, &m));
}

static uint8_t inb(struct fixture *f, uint16_t port)
{
	struct msg_pio m = { .port = port, .size = 1, .value = 0xdeadbeef };

	assert_true(range_bus_send(f->vm.bus.pio, port, &m));
	assert_true(m.value <= 0xff);
	return (uint8_t)m.value;
}

static void line(struct fixture *f, uint8_t irq, enum irq_action a)
{
	struct msg_irq m = { .line = irq, .action = a };

	assert_true(bus_send(f->vm.bus.irq, &m, BUS_LIFO));
}

static int inta(struct fixture *f)
{
	struct msg_legacy m = { .type = LEGACY_INTA, .value = 0xffff };

	assert_true(bus_send(f->vm.bus.legacy, &m, BUS_EARLY_OUT));
	return (int)m.value;
}

static uint8_t irr(struct fixture *f, uint16_t cmd)
{
	outb(f, cmd, 0x0a);
	return inb(f, cmd);
}

static uint8_t isr(struct fixture *f, uint16_t cmd)
{
	outb(f, cmd, 0x0b);
	return inb(f, cmd);
}

/* ICW1-4 on both chips: cascade, ICW4 with @icw4, bases 0x20 and 0x28. */
static void init_pair(struct fixture *f, uint8_t icw4)
{
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x20);
	outb(f, 0x21, 0x04);
	outb(f, 0x21, icw4);
	outb(f, 0xa0, 0x11);
	outb(f, 0xa1, 0x28);
	outb(f, 0xa1, 0x02);
	outb(f, 0xa1, icw4);
	outb(f, 0x21, 0x00);
	outb(f, 0xa1, 0x00);
}

static bool out_level(struct fixture *f)
{
	bool level = atomic_load(&f->rec.level);

	/* The messages must always agree with the state (single thread). */
	assert_int_equal(level, pic_output(f->pic));
	return level;
}

static void test_bios_init(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;

	assert_ptr_equal(pic_find(&f->vm), f->pic);
	pic_bios_init(f->pic);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.vector_base[0], 0x08);
	assert_int_equal(s.vector_base[1], 0x70);
	assert_int_equal(inb(f, 0x21), 0xb8);
	assert_int_equal(inb(f, 0xa1), 0x8e);
	assert_false(out_level(f));
	/* Timer and RTC are open, and reach the CPU with the BIOS vectors. */
	line(f, 0, IRQ_EDGE);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x08);
	pic_eoi(f->pic, 0);
	line(f, 8, IRQ_EDGE);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x70);
	pic_eoi(f->pic, 8);
	/* COM1 (IRQ 4) is masked. */
	line(f, 4, IRQ_EDGE);
	assert_false(out_level(f));
	assert_int_equal(irr(f, 0x20), 0x10);
}

static void test_icw_sequence(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;

	/* Cascade with ICW4: three data bytes, then the fourth is the IMR. */
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x47);           /* base: low three bits dropped */
	outb(f, 0x21, 0x04);
	outb(f, 0x21, 0x01);
	assert_int_equal(inb(f, 0x21), 0x00);   /* ICW1 cleared the IMR */
	outb(f, 0x21, 0xfe);
	assert_int_equal(inb(f, 0x21), 0xfe);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.vector_base[0], 0x40);

	/* Single, no ICW4: only ICW2. */
	outb(f, 0xa0, 0x12);
	outb(f, 0xa1, 0x90);
	outb(f, 0xa1, 0x55);
	assert_int_equal(inb(f, 0xa1), 0x55);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.vector_base[1], 0x90);

	/* Cascade without ICW4: ICW2, ICW3. */
	outb(f, 0xa0, 0x10);
	outb(f, 0xa1, 0x70);
	outb(f, 0xa1, 0x02);
	outb(f, 0xa1, 0x33);
	assert_int_equal(inb(f, 0xa1), 0x33);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.vector_base[1], 0x70);
	assert_false(s.auto_eoi[1]);

	/* Vectors come from the bases. */
	outb(f, 0x21, 0x00);
	outb(f, 0xa1, 0x00);
	line(f, 5, IRQ_EDGE);
	assert_int_equal(inta(f), 0x45);
	line(f, 11, IRQ_EDGE);
	pic_eoi(f->pic, 5);
	assert_int_equal(inta(f), 0x73);
}

/* ICW1 resets ISR, IMR and latched edges; level requests survive. */
static void test_icw1_resets(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	outb(f, 0x4d0, 0x20);          /* IRQ 5 level */
	line(f, 3, IRQ_EDGE);
	line(f, 6, IRQ_ASSERT);
	line(f, 5, IRQ_ASSERT);
	assert_int_equal(inta(f), 0x23);
	outb(f, 0x21, 0x80);
	assert_int_equal(isr(f, 0x20), 0x08);
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x20);
	outb(f, 0x21, 0x04);
	outb(f, 0x21, 0x01);
	assert_int_equal(inb(f, 0x21), 0x00);
	assert_int_equal(isr(f, 0x20), 0x00);
	/* Edge IRQ 6 is still high but needs a new rising edge; 5 is level. */
	assert_int_equal(irr(f, 0x20), 0x20);
	line(f, 6, IRQ_DEASSERT);
	line(f, 6, IRQ_ASSERT);
	assert_int_equal(irr(f, 0x20), 0x60);
}

static void test_imr(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	outb(f, 0x21, 0x08);
	line(f, 3, IRQ_EDGE);
	assert_int_equal(irr(f, 0x20), 0x08);
	assert_false(out_level(f));
	assert_int_equal(inta(f), 0x27);        /* nothing deliverable */
	outb(f, 0x21, 0x00);
	assert_true(out_level(f));
	outb(f, 0x21, 0xff);
	assert_false(out_level(f));
	outb(f, 0x21, 0x00);
	assert_int_equal(inta(f), 0x23);
	assert_false(out_level(f));
	/* The slave's mask and the cascade's mask both gate slave lines. */
	outb(f, 0xa1, 0x01);
	line(f, 8, IRQ_EDGE);
	assert_false(out_level(f));
	outb(f, 0x21, 0x04);
	outb(f, 0xa1, 0x00);
	assert_false(out_level(f));
	outb(f, 0x21, 0x00);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x28);
}

static void test_priority_nesting(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	line(f, 3, IRQ_EDGE);
	line(f, 5, IRQ_EDGE);
	assert_int_equal(inta(f), 0x23);
	assert_false(out_level(f));             /* 5 waits behind 3 */
	line(f, 1, IRQ_EDGE);
	assert_true(out_level(f));              /* 1 preempts 3 */
	assert_int_equal(inta(f), 0x21);
	assert_int_equal(isr(f, 0x20), 0x0a);
	outb(f, 0x20, 0x20);                    /* non-specific: clears 1 */
	assert_int_equal(isr(f, 0x20), 0x08);
	assert_false(out_level(f));
	outb(f, 0x20, 0x20);
	assert_int_equal(isr(f, 0x20), 0x00);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x25);
}

static void test_eoi_kinds(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	line(f, 3, IRQ_EDGE);
	assert_int_equal(inta(f), 0x23);
	line(f, 1, IRQ_EDGE);
	assert_int_equal(inta(f), 0x21);
	outb(f, 0x20, 0x40);                    /* no operation */
	assert_int_equal(isr(f, 0x20), 0x0a);
	outb(f, 0x20, 0x63);                    /* specific EOI 3 */
	assert_int_equal(isr(f, 0x20), 0x02);
	outb(f, 0x20, 0x63);                    /* not in service: no effect */
	assert_int_equal(isr(f, 0x20), 0x02);
	outb(f, 0x20, 0x20);
	assert_int_equal(isr(f, 0x20), 0x00);
	outb(f, 0x20, 0x20);                    /* nothing in service */
	assert_int_equal(isr(f, 0x20), 0x00);
}

static void test_rotation(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;

	init_pair(f, 0x01);
	/* Rotate on non-specific EOI: the level served becomes lowest. */
	line(f, 0, IRQ_EDGE);
	assert_int_equal(inta(f), 0x20);
	outb(f, 0x20, 0xa0);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 1);
	line(f, 0, IRQ_EDGE);
	line(f, 7, IRQ_EDGE);
	assert_int_equal(inta(f), 0x27);        /* 7 now beats 0 */
	/* ... and a lower level cannot preempt the one in service. */
	assert_false(out_level(f));
	outb(f, 0x20, 0x20);
	assert_int_equal(inta(f), 0x20);
	outb(f, 0x20, 0x20);

	/* Set priority: 4 lowest, so 5 leads; 6 beats 3. */
	outb(f, 0x20, 0xc4);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 5);
	line(f, 3, IRQ_EDGE);
	line(f, 6, IRQ_EDGE);
	assert_int_equal(inta(f), 0x26);
	/* Rotate on specific EOI of 6: 7 leads, 6 is lowest. */
	outb(f, 0x20, 0xe6);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 7);
	assert_int_equal(isr(f, 0x20), 0x00);
	line(f, 6, IRQ_EDGE);
	assert_int_equal(inta(f), 0x23);        /* 3 beats 6 now */
	outb(f, 0x20, 0x63);
	assert_int_equal(inta(f), 0x26);
	outb(f, 0x20, 0x66);

	/* A rotating non-specific EOI with nothing in service leaves it. */
	outb(f, 0x20, 0xa0);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 7);
}

static void test_auto_eoi(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;

	init_pair(f, 0x03);
	pic_snapshot(f->pic, &s);
	assert_true(s.auto_eoi[0] && s.auto_eoi[1]);
	line(f, 4, IRQ_EDGE);
	assert_int_equal(inta(f), 0x24);
	assert_int_equal(isr(f, 0x20), 0x00);
	line(f, 4, IRQ_EDGE);
	assert_true(out_level(f));              /* no EOI needed */
	assert_int_equal(inta(f), 0x24);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 0);     /* no rotation yet */

	/* Rotate in auto-EOI mode. */
	outb(f, 0x20, 0x80);
	line(f, 4, IRQ_EDGE);
	assert_int_equal(inta(f), 0x24);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 5);
	line(f, 2 + 1, IRQ_EDGE);
	line(f, 6, IRQ_EDGE);
	assert_int_equal(inta(f), 0x26);        /* 6 ranks above 3 now */
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 7);
	outb(f, 0x20, 0x00);                    /* clear rotate in AEOI */
	assert_int_equal(inta(f), 0x23);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.priority[0], 7);

	/* Cascaded in AEOI: neither chip keeps an ISR bit. */
	line(f, 9, IRQ_EDGE);
	assert_int_equal(inta(f), 0x29);
	assert_int_equal(isr(f, 0x20), 0x00);
	assert_int_equal(isr(f, 0xa0), 0x00);
	/* Two slave requests in a row: the second still reaches the master. */
	line(f, 9, IRQ_EDGE);
	line(f, 10, IRQ_EDGE);
	assert_int_equal(inta(f), 0x29);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x2a);
	assert_false(out_level(f));
}

static void test_special_mask_mode(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;

	init_pair(f, 0x01);
	line(f, 3, IRQ_EDGE);
	assert_int_equal(inta(f), 0x23);
	line(f, 5, IRQ_EDGE);
	assert_false(out_level(f));
	/* The handler masks its own level and enters special mask mode. */
	outb(f, 0x21, 0x08);
	outb(f, 0x20, 0x68);
	pic_snapshot(f->pic, &s);
	assert_true(s.special_mask[0]);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x25);
	assert_int_equal(isr(f, 0x20), 0x28);
	outb(f, 0x20, 0x65);
	/* Leaving it: 3 blocks again (unmasked, in service). */
	outb(f, 0x20, 0x48);
	outb(f, 0x21, 0x00);
	line(f, 6, IRQ_EDGE);
	assert_false(out_level(f));
	outb(f, 0x20, 0x63);
	assert_int_equal(inta(f), 0x26);
}

static void test_poll(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	outb(f, 0x20, 0x0c);
	assert_int_equal(inb(f, 0x20), 0x00);   /* nothing pending */
	line(f, 6, IRQ_EDGE);
	line(f, 4, IRQ_EDGE);
	outb(f, 0x20, 0x0c);
	assert_int_equal(inb(f, 0x20), 0x84);
	/* The poll acknowledged: 4 in service, one-shot: next read is IRR. */
	assert_int_equal(inb(f, 0x20), 0x40);
	assert_int_equal(isr(f, 0x20), 0x10);
	assert_false(out_level(f));
	outb(f, 0x20, 0x20);
	outb(f, 0x20, 0x0c);
	assert_int_equal(inb(f, 0x20), 0x86);
	outb(f, 0x20, 0x20);
	/* The slave polls on its own. */
	line(f, 13, IRQ_EDGE);
	outb(f, 0xa0, 0x0c);
	assert_int_equal(inb(f, 0xa0), 0x85);
	assert_int_equal(isr(f, 0xa0), 0x20);
}

static void test_read_irr_isr(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	line(f, 1, IRQ_EDGE);
	line(f, 6, IRQ_EDGE);
	assert_int_equal(inb(f, 0x20), 0x42);   /* IRR after ICW1 */
	assert_int_equal(inta(f), 0x21);
	outb(f, 0x20, 0x0b);
	assert_int_equal(inb(f, 0x20), 0x02);
	assert_int_equal(inb(f, 0x20), 0x02);   /* the selection sticks */
	outb(f, 0x20, 0x08);                    /* OCW3 without RR: no change */
	assert_int_equal(inb(f, 0x20), 0x02);
	outb(f, 0x20, 0x0a);
	assert_int_equal(inb(f, 0x20), 0x40);
}

static void test_edge_vs_level(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	outb(f, 0x4d0, 0x20);                   /* IRQ 5 level, 4 edge */

	/* Edge: one request per rising edge, none while held high. */
	line(f, 4, IRQ_ASSERT);
	assert_int_equal(inta(f), 0x24);
	assert_int_equal(irr(f, 0x20), 0x00);
	outb(f, 0x20, 0x20);
	assert_false(out_level(f));
	line(f, 4, IRQ_ASSERT);                 /* still high: no edge */
	assert_false(out_level(f));
	line(f, 4, IRQ_DEASSERT);
	line(f, 4, IRQ_ASSERT);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x24);
	outb(f, 0x20, 0x20);
	line(f, 4, IRQ_DEASSERT);
	/* An edge latched and then lowered is still delivered. */
	line(f, 4, IRQ_EDGE);
	assert_int_equal(irr(f, 0x20), 0x10);
	assert_int_equal(inta(f), 0x24);
	outb(f, 0x20, 0x20);

	/* Level: IRR follows the input and retriggers after EOI. */
	line(f, 5, IRQ_ASSERT);
	assert_int_equal(inta(f), 0x25);
	assert_int_equal(irr(f, 0x20), 0x20);   /* still asserted */
	assert_false(out_level(f));             /* in service */
	outb(f, 0x20, 0x20);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x25);
	line(f, 5, IRQ_DEASSERT);
	assert_int_equal(irr(f, 0x20), 0x00);
	outb(f, 0x20, 0x20);
	assert_false(out_level(f));
	/* A pulse on a level line leaves nothing behind. */
	line(f, 5, IRQ_EDGE);
	assert_int_equal(irr(f, 0x20), 0x00);
}

static void test_spurious(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;

	init_pair(f, 0x01);
	outb(f, 0x4d0, 0x20);
	outb(f, 0x4d1, 0x04);                   /* IRQ 10 level */
	/* The level request vanishes before INTA: IRQ 7, nothing in service. */
	line(f, 5, IRQ_ASSERT);
	assert_true(out_level(f));
	line(f, 5, IRQ_DEASSERT);
	assert_false(out_level(f));
	assert_int_equal(inta(f), 0x27);
	assert_int_equal(isr(f, 0x20), 0x00);

	/*
	 * On the slave: the master latched IRQ 2, so INTA goes to the slave,
	 * which has nothing: IRQ 15, master ISR 2 set (the guest EOIs it).
	 */
	line(f, 10, IRQ_ASSERT);
	line(f, 10, IRQ_DEASSERT);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x2f);
	assert_int_equal(isr(f, 0xa0), 0x00);
	assert_int_equal(isr(f, 0x20), 0x04);
	outb(f, 0x20, 0x62);
	assert_false(out_level(f));

	/* A real IRQ 15 is in service on the slave. */
	line(f, 15, IRQ_EDGE);
	assert_int_equal(inta(f), 0x2f);
	assert_int_equal(isr(f, 0xa0), 0x80);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.isr[1], 0x80);
}

static void test_cascade(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	line(f, 12, IRQ_EDGE);
	assert_int_equal(irr(f, 0x20), 0x04);
	assert_int_equal(irr(f, 0xa0), 0x10);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x2c);
	assert_int_equal(isr(f, 0x20), 0x04);
	assert_int_equal(isr(f, 0xa0), 0x10);
	assert_int_equal(irr(f, 0x20), 0x00);
	assert_false(out_level(f));
	/* While the cascade is in service: 3 waits, 1 preempts. */
	line(f, 3, IRQ_EDGE);
	assert_false(out_level(f));
	line(f, 1, IRQ_EDGE);
	assert_int_equal(inta(f), 0x21);
	outb(f, 0x20, 0x20);
	/* Another slave request of higher priority waits for the master EOI. */
	line(f, 9, IRQ_EDGE);
	assert_false(out_level(f));
	pic_eoi(f->pic, 12);
	assert_int_equal(isr(f, 0xa0), 0x00);
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x29);        /* 9 ranks above 3 (via 2) */
	pic_eoi(f->pic, 9);
	assert_int_equal(inta(f), 0x23);
	outb(f, 0x20, 0x20);
	assert_false(out_level(f));
	assert_int_equal(isr(f, 0x20), 0x00);
}

static void test_special_fully_nested(void **state)
{
	struct fixture *f = *state;

	init_pair(f, 0x01);
	outb(f, 0x20, 0x11);
	outb(f, 0x21, 0x20);
	outb(f, 0x21, 0x04);
	outb(f, 0x21, 0x11);                    /* master: SFNM */
	line(f, 12, IRQ_EDGE);
	assert_int_equal(inta(f), 0x2c);
	line(f, 9, IRQ_EDGE);                   /* higher slave level */
	assert_true(out_level(f));
	assert_int_equal(inta(f), 0x29);
	assert_int_equal(isr(f, 0xa0), 0x12);
	line(f, 13, IRQ_EDGE);                  /* lower slave level: waits */
	assert_false(out_level(f));
}

static void test_elcr(void **state)
{
	struct fixture *f = *state;
	struct msg_pio m = { .port = 0x4d0, .size = 2 };

	outb(f, 0x4d0, 0xff);
	outb(f, 0x4d1, 0xff);
	assert_int_equal(inb(f, 0x4d0), 0xf8);  /* IRQ 0-2 always edge */
	assert_int_equal(inb(f, 0x4d1), 0xde);  /* IRQ 8 and 13 always edge */
	assert_true(range_bus_send(f->vm.bus.pio, 0x4d0, &m));
	assert_int_equal(m.value, 0xdef8);
	m = (struct msg_pio){ .port = 0x4d0, .size = 2, .write = true, .value = 0x0800 };
	assert_true(range_bus_send(f->vm.bus.pio, 0x4d0, &m));
	assert_int_equal(inb(f, 0x4d0), 0x00);
	assert_int_equal(inb(f, 0x4d1), 0x08);

	/* Switching an asserted line to level makes it request again. */
	outb(f, 0x4d1, 0x00);
	init_pair(f, 0x01);
	line(f, 5, IRQ_ASSERT);
	assert_int_equal(inta(f), 0x25);
	outb(f, 0x20, 0x20);
	assert_false(out_level(f));              /* edge: served once */
	outb(f, 0x4d0, 0x20);
	assert_true(out_level(f));
	line(f, 5, IRQ_DEASSERT);
	assert_false(out_level(f));
}

/* The output messages: one per change, alternating, numbered. */
static void test_output_messages(void **state)
{
	struct fixture *f = *state;
	struct pic_snapshot s;
	uint32_t n;

	init_pair(f, 0x01);
	n = atomic_load(&f->rec.count);
	line(f, 3, IRQ_EDGE);
	line(f, 4, IRQ_EDGE);                   /* already high: no message */
	assert_int_equal(atomic_load(&f->rec.count), n + 1);
	assert_int_equal(f->rec.type[n], LEGACY_INTR);
	assert_int_equal(inta(f), 0x23);
	assert_int_equal(atomic_load(&f->rec.count), n + 2);
	assert_int_equal(f->rec.type[n + 1], LEGACY_DEASSERT_INTR);
	outb(f, 0x20, 0x20);
	assert_int_equal(atomic_load(&f->rec.count), n + 3);
	assert_int_equal(f->rec.type[n + 2], LEGACY_INTR);
	outb(f, 0x21, 0xff);
	assert_int_equal(atomic_load(&f->rec.count), n + 4);
	outb(f, 0x21, 0xff);                    /* no change, no message */
	assert_int_equal(atomic_load(&f->rec.count), n + 4);
	assert_int_equal(f->rec.gen[n + 3], n + 4);
	assert_int_equal(atomic_load(&f->rec.bad_order), 0);
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.messages, n + 4);
	assert_false(s.output);
}

/* The bus receivers: line numbers the PIC does not own are left alone. */
static void test_bus_receivers(void **state)
{
	struct fixture *f = *state;
	struct msg_irq m2 = { .line = 2, .action = IRQ_EDGE };
	struct msg_irq m16 = { .line = 16, .action = IRQ_ASSERT };
	struct msg_legacy nmi = { .type = LEGACY_NMI };
	struct msg_pio w = { .port = 0x20, .size = 2, .write = true, .value = 0xff11 };
	char buf[2048];
	FILE *mf;

	init_pair(f, 0x01);
	assert_false(bus_send(f->vm.bus.irq, &m2, BUS_LIFO));
	assert_false(bus_send(f->vm.bus.irq, &m16, BUS_LIFO));
	assert_false(bus_send(f->vm.bus.legacy, &nmi, BUS_LIFO));
	assert_int_equal(irr(f, 0x20), 0x00);
	/* A word write is two byte writes: ICW1 on 0x20, ICW2 on 0x21. */
	assert_true(range_bus_send(f->vm.bus.pio, 0x20, &w));
	outb(f, 0x21, 0x04);
	outb(f, 0x21, 0x01);
	outb(f, 0x21, 0x00);
	line(f, 1, IRQ_EDGE);
	assert_int_equal(inta(f), 0xf9);

	mf = fmemopen(buf, sizeof(buf), "w");
	assert_non_null(mf);
	pic_dump(f->pic, mf);
	fclose(mf);
	assert_non_null(strstr(buf, "master"));
	assert_non_null(strstr(buf, "ISR 02"));
}

static void test_device_model(void **state)
{
	struct fixture *f = *state;

	assert_non_null(device_model_find("pic"));
	/* One pair per VM: the fixture's holds the ports. */
	assert_int_not_equal(device_create(&f->vm, "pic"), 0);
	assert_int_not_equal(device_create(&f->vm, "pic:x"), 0);
	assert_ptr_equal(pic_find(&f->vm), f->pic);
	assert_null(pic_find(NULL));
}

/*
 * A CPU that acknowledges inside the INTR message, on the sending thread:
 * the nested transition finds the delivery token taken and leaves the
 * DEASSERT to the sender, which must still send it, after the INTR.
 */
struct eager_cpu {
	struct pic *pic;
	int vectors[4];
	int n;
};

static bool eager_receive(void *dev, void *msg)
{
	struct eager_cpu *cpu = dev;
	const struct msg_legacy *m = msg;

	if (m->type != LEGACY_INTR)
		return false;
	if (cpu->n < 4)
		cpu->vectors[cpu->n++] = pic_intack(cpu->pic);
	return true;
}

static void test_ack_inside_delivery(void **state)
{
	struct fixture *f = *state;
	struct eager_cpu cpu = { .pic = f->pic };
	uint32_t n;

	init_pair(f, 0x01);
	assert_int_equal(bus_attach(f->vm.bus.legacy, eager_receive, bus_claim_always, &cpu), 0);
	n = atomic_load(&f->rec.count);
	line(f, 6, IRQ_EDGE);
	assert_int_equal(cpu.n, 1);
	assert_int_equal(cpu.vectors[0], 0x26);
	assert_int_equal(atomic_load(&f->rec.count), n + 2);
	assert_int_equal(f->rec.type[n], LEGACY_INTR);
	assert_int_equal(f->rec.type[n + 1], LEGACY_DEASSERT_INTR);
	assert_false(out_level(f));
	/* The EOI lets the next one in, acknowledged the same way. */
	line(f, 7, IRQ_EDGE);
	assert_int_equal(cpu.n, 1);
	outb(f, 0x20, 0x20);
	assert_int_equal(cpu.n, 2);
	assert_int_equal(cpu.vectors[1], 0x27);
	assert_int_equal(isr(f, 0x20), 0x80);
	assert_false(out_level(f));
	assert_int_equal(atomic_load(&f->rec.bad_order), 0);
	bus_detach(f->vm.bus.legacy, eager_receive, &cpu);
}

/* ---- Concurrency. ---- */

static const uint8_t stress_lines[] = { 0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14 };
#define NLINES (sizeof(stress_lines) / sizeof(stress_lines[0]))
#define NPULSERS 4
#define PULSES_PER_LINE 10000
#define NOISE_LINE 15       /* level-triggered, toggled freely */
#define NOISE_TOGGLES 200000
#define STUCK_SECONDS 30    /* no progress at all for this long: a bug */

struct stress {
	struct fixture *f;
	_Atomic bool outstanding[16];   /* pulsed, not yet acknowledged */
	_Atomic uint32_t pulsed[16], delivered[16];
	_Atomic uint32_t double_delivery, unexpected;
	_Atomic uint32_t spurious, noise_acks;
	_Atomic int pulsers_left;
	_Atomic bool noise_stop;
	_Atomic bool stuck;             /* the acknowledger gave up */
	_Atomic uint64_t progress;
	pthread_barrier_t start;
};

static uint64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static void *pulser(void *arg)
{
	struct stress *st = arg;
	static _Atomic int next_id;
	int id = atomic_fetch_add(&next_id, 1) % NPULSERS;
	bool busy = true;

	bus_thread_enter();
	pthread_barrier_wait(&st->start);
	while (busy) {
		bool did = false;

		busy = false;
		for (unsigned k = id; k < NLINES; k += NPULSERS) {
			unsigned irq = stress_lines[k];

			if (atomic_load(&st->pulsed[irq]) == PULSES_PER_LINE ||
			    atomic_load(&st->stuck))
				continue;
			busy = true;
			if (atomic_load(&st->outstanding[irq]))
				continue;
			/* Set before the pulse: the vector may come back at once. */
			atomic_store(&st->outstanding[irq], true);
			atomic_fetch_add(&st->pulsed[irq], 1);
			did = true;
			if (irq & 1)
				pic_pulse(st->f->pic, irq);
			else {
				struct msg_irq m = { .line = irq, .action = IRQ_EDGE };

				bus_send(st->f->vm.bus.irq, &m, BUS_LIFO);
			}
		}
		(void)did;
		sched_yield();
	}
	atomic_fetch_sub(&st->pulsers_left, 1);
	bus_thread_exit();
	return NULL;
}

static void *noise(void *arg)
{
	struct stress *st = arg;

	bus_thread_enter();
	pthread_barrier_wait(&st->start);
	for (int i = 0; i < NOISE_TOGGLES && !atomic_load(&st->noise_stop); i++) {
		/*
		 * Up briefly: served (and retriggered) while up, or gone before
		 * the INTA (spurious IRQ 15).
		 */
		pic_raise(st->f->pic, NOISE_LINE);
		for (int k = 0; k < 100; k++)
			cpu_relax();
		pic_lower(st->f->pic, NOISE_LINE);
		sched_yield();
	}
	bus_thread_exit();
	return NULL;
}

static bool all_delivered(struct stress *st)
{
	for (unsigned k = 0; k < NLINES; k++)
		if (atomic_load(&st->outstanding[stress_lines[k]]))
			return false;
	return true;
}

/* The CPU's side: INTA when the wire says so, then EOI as Linux does. */
static void acknowledge_one(struct stress *st, int vector)
{
	struct pic_snapshot s;
	int irq = vector < 0x28 ? vector - 0x20 : vector - 0x28 + 8;

	if (vector == 0x27) {                   /* line 7 is never pulsed */
		atomic_fetch_add(&st->spurious, 1);
		return;
	}
	if (irq == NOISE_LINE) {
		pic_snapshot(st->f->pic, &s);   /* ISR changes on this thread only */
		if (!(s.isr[1] & 0x80)) {
			atomic_fetch_add(&st->spurious, 1);
			pic_port_write(st->f->pic, 0x20, 0x62);
		} else {
			atomic_fetch_add(&st->noise_acks, 1);
			pic_eoi(st->f->pic, irq);
		}
		return;
	}
	if (vector < 0x20 || vector > 0x2f || irq == 2) {
		atomic_fetch_add(&st->unexpected, 1);
		return;
	}
	if (!atomic_load(&st->outstanding[irq]))
		atomic_fetch_add(&st->double_delivery, 1);
	atomic_fetch_add(&st->delivered[irq], 1);
	/* Cleared after INTA, before EOI: a new pulse now latches in IRR. */
	atomic_store(&st->outstanding[irq], false);
	pic_eoi(st->f->pic, irq);
}

static void *acknowledger(void *arg)
{
	struct stress *st = arg;
	struct fixture *f = st->f;
	uint64_t last = now_s(), seen = 0;

	bus_thread_enter();
	pthread_barrier_wait(&st->start);
	while (atomic_load(&st->pulsers_left) || !all_delivered(st)) {
		if (atomic_load_explicit(&f->rec.level, memory_order_acquire)) {
			struct msg_legacy m = { .type = LEGACY_INTA };

			bus_send(f->vm.bus.legacy, &m, BUS_EARLY_OUT);
			acknowledge_one(st, (int)m.value);
			atomic_fetch_add(&st->progress, 1);
			continue;
		}
		if (atomic_load(&st->progress) != seen) {
			seen = atomic_load(&st->progress);
			last = now_s();
		} else if (now_s() - last > STUCK_SECONDS) {
			/* A lost INTR: report it from the test's own thread. */
			pic_dump(f->pic, stderr);
			atomic_store(&st->stuck, true);
			break;
		}
		sched_yield();
	}
	bus_thread_exit();
	return NULL;
}

static void test_concurrent_pulses(void **state)
{
	struct fixture *f = *state;
	struct stress *st = calloc(1, sizeof(*st));
	pthread_t p[NPULSERS], a, n;
	struct pic_snapshot s;

	assert_non_null(st);
	st->f = f;
	init_pair(f, 0x01);
	outb(f, 0x4d1, 0x80);                   /* the noise line is level */
	st->pulsers_left = NPULSERS;
	atomic_store(&f->rec.spin, 50);
	pthread_barrier_init(&st->start, NULL, NPULSERS + 2);
	assert_int_equal(pthread_create(&a, NULL, acknowledger, st), 0);
	assert_int_equal(pthread_create(&n, NULL, noise, st), 0);
	for (int i = 0; i < NPULSERS; i++)
		assert_int_equal(pthread_create(&p[i], NULL, pulser, st), 0);
	for (int i = 0; i < NPULSERS; i++)
		pthread_join(p[i], NULL);
	pthread_join(a, NULL);
	atomic_store(&st->noise_stop, true);
	pthread_join(n, NULL);
	if (atomic_load(&st->stuck))
		fail_msg("no INTR for %d s with requests outstanding", STUCK_SECONDS);

	for (unsigned k = 0; k < NLINES; k++) {
		unsigned irq = stress_lines[k];

		assert_int_equal(atomic_load(&st->pulsed[irq]), PULSES_PER_LINE);
		assert_int_equal(atomic_load(&st->delivered[irq]), PULSES_PER_LINE);
	}
	assert_int_equal(atomic_load(&st->double_delivery), 0);
	assert_int_equal(atomic_load(&st->unexpected), 0);
	assert_int_equal(atomic_load(&f->rec.bad_order), 0);

	/* Quiet now: drain the noise line, then the wire must match. */
	pic_lower(f->pic, NOISE_LINE);
	while (pic_output(f->pic)) {
		int v = pic_intack(f->pic);

		assert_int_equal(v, 0x2f);
		pic_eoi(f->pic, 15);
	}
	pic_snapshot(f->pic, &s);
	assert_int_equal(s.isr[0] | s.isr[1], 0);
	assert_false(s.output);
	assert_false(atomic_load(&f->rec.level));
	assert_int_equal(s.messages, atomic_load(&f->rec.count));
	print_message("%u INTAs, %u spurious, %u noise, %u messages, %llu deferred\n",
		      (unsigned)(NLINES * PULSES_PER_LINE), atomic_load(&st->spurious),
		      atomic_load(&st->noise_acks), s.messages,
		      (unsigned long long)s.deferred);
	pthread_barrier_destroy(&st->start);
	free(st);
}

/*
 * Threads drive their own level lines (and one rewrites the slave's IMR)
 * as fast as they can: no transition may be lost (each line ends as its
 * owner left it), the messages alternate, and once everybody stops the
 * last message sent matches the state.
 */
#define NCHURN 4
#define CHURN_OPS 200000

struct churn {
	struct fixture *f;
	pthread_barrier_t *start;
	int id;
	bool final[2];   /* last level left on the master and the slave line */
	unsigned lost;   /* times our own line did not read back as we left it */
};

static void *churner(void *arg)
{
	struct churn *c = arg;
	unsigned seed = (unsigned)c->id * 7919u + 1;
	unsigned irq[2] = { 3 + (unsigned)c->id, 9 + (unsigned)c->id };
	struct pic_snapshot s;

	bus_thread_enter();
	pthread_barrier_wait(c->start);
	for (int i = 0; i < CHURN_OPS; i++) {
		unsigned which, up;

		seed = seed * 1103515245u + 12345u;
		which = seed >> 28 & 1;
		up = seed >> 29 & 1;
		if (up)
			pic_raise(c->f->pic, irq[which]);
		else
			pic_lower(c->f->pic, irq[which]);
		c->final[which] = up;
		/* Only this thread moves these lines: a lost update shows here. */
		pic_snapshot(c->f->pic, &s);
		for (int k = 0; k < 2; k++) {
			uint8_t m = 1u << (irq[k] & 7);

			if (!!(s.level[k] & m) != c->final[k] || !!(s.irr[k] & m) != c->final[k])
				c->lost++;
		}
		if (c->id == 0 && !(i & 63))
			pic_port_write(c->f->pic, 0xa1, (uint8_t)(seed >> 8));
	}
	bus_thread_exit();
	return NULL;
}

static void test_concurrent_levels_output(void **state)
{
	struct fixture *f = *state;
	struct churn c[NCHURN];
	pthread_t t[NCHURN];
	pthread_barrier_t start;
	struct pic_snapshot s;

	init_pair(f, 0x01);
	outb(f, 0x4d0, 0x78);                   /* IRQ 3-6 level */
	outb(f, 0x4d1, 0x1e);                   /* IRQ 9-12 level */
	outb(f, 0x21, 0x04);                    /* the output follows IRQ 3-6 */
	atomic_store(&f->rec.spin, 200);
	pthread_barrier_init(&start, NULL, NCHURN);
	for (int i = 0; i < NCHURN; i++) {
		c[i] = (struct churn){ .f = f, .start = &start, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, churner, &c[i]), 0);
	}
	for (int i = 0; i < NCHURN; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);

	pic_snapshot(f->pic, &s);
	for (int i = 0; i < NCHURN; i++)
		assert_int_equal(c[i].lost, 0);
	for (int i = 0; i < NCHURN; i++) {
		uint8_t mm = 1u << (3 + i), sm = 1u << (1 + i);

		assert_int_equal(!!(s.level[0] & mm), c[i].final[0]);
		assert_int_equal(!!(s.irr[0] & mm), c[i].final[0]);
		assert_int_equal(!!(s.level[1] & sm), c[i].final[1]);
		assert_int_equal(!!(s.irr[1] & sm), c[i].final[1]);
	}
	assert_int_equal(atomic_load(&f->rec.bad_order), 0);
	assert_int_equal(atomic_load(&f->rec.level), s.output);
	assert_int_equal(atomic_load(&f->rec.count), s.messages);
	/* Nobody acknowledged: close the master to bring the wire down. */
	outb(f, 0x21, 0xff);
	assert_false(pic_output(f->pic));
	assert_false(atomic_load(&f->rec.level));
	print_message("%u messages, %llu deferred\n", s.messages,
		      (unsigned long long)s.deferred);
}

/*
 * Save a PIC in the middle of things (one IRQ in service, a level line
 * and an edge pending behind it, read-ISR mode, a mask), load it into a
 * fresh PIC on a second VM: it must answer and acknowledge the same way,
 * send nothing on load (the LAPIC's saved LINT0 state covers the line),
 * and save to the same bytes.
 */
static void test_save_load(void **state)
{
	struct fixture *f = *state, *g;
	struct pic_snapshot a, b;
	int fa;

	init_pair(f, 0x01);
	outb(f, 0x4d1, 0x04);            /* IRQ 10 level */
	outb(f, 0x21, 0x20);             /* mask IRQ 5 */
	line(f, 3, IRQ_EDGE);
	assert_int_equal(inta(f), 0x23);
	line(f, 4, IRQ_EDGE);
	line(f, 5, IRQ_EDGE);
	line(f, 10, IRQ_ASSERT);
	outb(f, 0x20, 0x0b);             /* read ISR */
	fa = trip_save(&f->vm);

	setup(state);
	g = *state;
	*state = f;
	trip_reload(&g->vm, fa);
	assert_int_equal(atomic_load(&g->rec.count), 0);
	pic_snapshot(f->pic, &a);
	pic_snapshot(g->pic, &b);
	assert_memory_equal(a.irr, b.irr, 2);
	assert_memory_equal(a.isr, b.isr, 2);
	assert_memory_equal(a.imr, b.imr, 2);
	assert_memory_equal(a.level, b.level, 2);
	assert_memory_equal(a.elcr, b.elcr, 2);
	assert_true(b.output);
	assert_int_equal(a.messages, b.messages);
	assert_int_equal(inb(g, 0x20), 0x08);        /* read-ISR mode survived */
	assert_int_equal(inb(g, 0xa1), 0x00);
	assert_int_equal(inb(g, 0x21), 0x20);
	/* The same acknowledge sequence on both. */
	for (int i = 0; i < 4; i++) {
		int va = inta(f), vb = inta(g);

		assert_int_equal(va, vb);
		if (va >= 0x28) {
			outb(f, 0xa0, 0x20);
			outb(g, 0xa0, 0x20);
			line(f, 10, IRQ_DEASSERT);
			line(g, 10, IRQ_DEASSERT);
		}
		outb(f, 0x20, 0x20);
		outb(g, 0x20, 0x20);
	}
	assert_int_equal(pic_output(f->pic), pic_output(g->pic));
	close(fa);
	teardown((void **)&g);
}

/* Hostile streams: bad values, a short section, bytes left over. */
static void test_load_refuses(void **state)
{
	struct fixture *f = *state;
	uint8_t base = 0x21, elcr = 0x01, step = 7;
	uint32_t busy = 1;
	int fa;

	init_pair(f, 0x01);
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "pic8259", 0, 5, &base, 1, "base 0x21");
	trip_assert_patched_refused(&f->vm, fa, "pic8259", 0, 10 + 4, &elcr, 1, "ELCR 0x1");
	trip_assert_patched_refused(&f->vm, fa, "pic8259", 0, 7, &step, 1, "ICW step 7");
	trip_assert_patched_refused(&f->vm, fa, "pic8259", 0, 20, &busy, 4, "while sending");
	trip_assert_patched_refused(&f->vm, fa, "pic8259", 0, 12, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "pic8259", 0, 99, NULL, 0, "left unread");
	close(fa);
	fa = trip_stream_of("other", 0, 1, "", 0);
	trip_assert_patched_refused(&f->vm, fa, "other", 0, 0, NULL, 0, "no section 'pic8259'");
	close(fa);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T_THREAD(fn) cmocka_unit_test_setup_teardown(fn, setup_thread, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_bios_init),
		T(test_icw_sequence),
		T(test_icw1_resets),
		T(test_imr),
		T(test_priority_nesting),
		T(test_eoi_kinds),
		T(test_rotation),
		T(test_auto_eoi),
		T(test_special_mask_mode),
		T(test_poll),
		T(test_read_irr_isr),
		T(test_edge_vs_level),
		T(test_spurious),
		T(test_cascade),
		T(test_special_fully_nested),
		T(test_elcr),
		T(test_output_messages),
		T(test_bus_receivers),
		T(test_device_model),
		T(test_ack_inside_delivery),
		T(test_concurrent_pulses),
		T(test_concurrent_levels_output),
		T(test_save_load),
		T(test_load_refuses),
		T_THREAD(test_save_load),
		T_THREAD(test_bios_init),
		T_THREAD(test_cascade),
		T_THREAD(test_output_messages),
		T_THREAD(test_bus_receivers),
		T_THREAD(test_concurrent_pulses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
