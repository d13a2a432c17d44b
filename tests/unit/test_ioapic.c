/*
 * The IOAPIC, driven as a guest and the devices would drive it: MMIO
 * through vm.bus.mmio, lines through vm.bus.irq, EOIs through vm.bus.eoi.
 * A recording receiver on vm.bus.apic stands in for the LAPICs.  Every
 * test runs twice: behind the global lock and behind the I/O thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "devices/ioapic.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "restore_trip.h"

#define BASE IOAPIC_BASE
#define MAX_SEEN 64

/* Entry bits, restated from the datasheet rather than taken from the header. */
#define E_LOGICAL   (1u << 11)
#define E_STATUS    (1u << 12)
#define E_LOW       (1u << 13)
#define E_RIRR      (1u << 14)
#define E_LEVEL     (1u << 15)
#define E_MASK      (1u << 16)
#define E_MODE(m)   ((uint32_t)(m) << 8)

struct fixture {
	struct vm vm;
	struct ioapic *io;
	/* Written by the recorder on the I/O thread, read after a sync send. */
	struct msg_apic seen[MAX_SEEN];
	unsigned nseen;
	bool accept;
};

static struct fixture *fx;

static bool record(void *dev, void *m)
{
	struct fixture *f = dev;
	struct msg_apic *msg = m;

	if (f->nseen < MAX_SEEN)
		f->seen[f->nseen] = *msg;
	f->nseen++;
	if (f->accept)
		msg->accepted++;
	return f->accept;
}

static int setup(void **state, enum io_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	f->io = ioapic_create(&f->vm, BASE);
	assert_non_null(f->io);
	f->accept = true;
	/* Claimed, like the LAPICs: runs on whatever thread the IOAPIC runs on. */
	assert_int_equal(bus_attach(f->vm.bus.apic, record, bus_claim_always, f), 0);
	fx = f;
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup(state, IO_MODE_LOCK); }
static int setup_thread(void **state) { return setup(state, IO_MODE_THREAD); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	bus_detach(f->vm.bus.apic, record, f);
	ioapic_destroy(f->io);
	vm_run_exit_hooks(&f->vm);
	vm_fini_buses(&f->vm);
	free(f);
	return 0;
}

static void mmio_write(unsigned off, unsigned size, uint32_t v)
{
	struct msg_mmio m = { .addr = BASE + off, .size = size, .write = true, .value = v };

	assert_true(range_bus_send(fx->vm.bus.mmio, BASE + off, &m));
}

static uint32_t mmio_read(unsigned off, unsigned size)
{
	struct msg_mmio m = { .addr = BASE + off, .size = size, .value = 0xdeadbeefdeadbeefull };

	assert_true(range_bus_send(fx->vm.bus.mmio, BASE + off, &m));
	return (uint32_t)m.value;
}

static uint32_t reg_read(uint8_t reg)
{
	mmio_write(0x00, 4, reg);
	return mmio_read(0x10, 4);
}

static void reg_write(uint8_t reg, uint32_t v)
{
	mmio_write(0x00, 4, reg);
	mmio_write(0x10, 4, v);
}

/* Program @pin: high half first, then the low half, as Linux does. */
static void program(unsigned pin, uint32_t low, uint8_t dest)
{
	reg_write(0x10 + 2 * pin + 1, (uint32_t)dest << 24);
	reg_write(0x10 + 2 * pin, low);
}

static uint32_t entry_low(unsigned pin)
{
	return reg_read(0x10 + 2 * pin);
}

static void line(unsigned l, enum irq_action a)
{
	struct msg_irq m = { .line = (uint8_t)l, .action = (uint8_t)a };

	bus_send(fx->vm.bus.irq, &m, BUS_FIFO);
}

static void eoi(uint8_t vector)
{
	struct msg_eoi m = { .vector = vector };

	bus_send(fx->vm.bus.eoi, &m, BUS_FIFO);
}

static const struct msg_apic *last(void)
{
	assert_true(fx->nseen > 0 && fx->nseen <= MAX_SEEN);
	return &fx->seen[fx->nseen - 1];
}

static void test_registers(void **state)
{
	(void)state;
	/* Version 0x20, maximum redirection entry 23 in bits 16-23. */
	assert_int_equal(reg_read(0x01), 0x00170020);
	/* Only the four ID bits stick; the arbitration ID follows the ID. */
	assert_int_equal(reg_read(0x00), 0);
	reg_write(0x00, 0xffffffff);
	assert_int_equal(reg_read(0x00), 0x0f000000);
	assert_int_equal(reg_read(0x02), 0x0f000000);
	reg_write(0x02, 0);                       /* read-only */
	assert_int_equal(reg_read(0x02), 0x0f000000);
	reg_write(0x01, 0);                       /* read-only */
	assert_int_equal(reg_read(0x01), 0x00170020);
	/* IOREGSEL reads back; a byte read returns that byte of a register. */
	mmio_write(0x00, 1, 0x01);
	assert_int_equal(mmio_read(0x00, 4), 0x01);
	assert_int_equal(mmio_read(0x12, 1), 0x17);
	assert_int_equal(mmio_read(0x10, 2), 0x0020);
	/* Unknown indirect registers, the write-only EOI register: zero. */
	assert_int_equal(reg_read(0x03), 0);
	assert_int_equal(reg_read(0x40), 0);
	assert_int_equal(mmio_read(0x40, 4), 0);
	/* Reset: every entry masked, everything else zero. */
	for (unsigned pin = 0; pin < 24; pin++) {
		assert_int_equal(entry_low(pin), E_MASK);
		assert_int_equal(reg_read(0x10 + 2 * pin + 1), 0);
	}
	/* All writable bits stick, delivery status and Remote IRR do not. */
	reg_write(0x10 + 2 * 7, 0xffffffff);
	reg_write(0x10 + 2 * 7 + 1, 0xffffffff);
	assert_int_equal(entry_low(7), 0xff | E_MODE(7) | E_LOGICAL | E_LOW | E_LEVEL | E_MASK);
	assert_int_equal(reg_read(0x10 + 2 * 7 + 1), 0xff000000);
	assert_int_equal(ioapic_entry(fx->io, 7) >> 56, 0xff);
	/* Halves are independent. */
	reg_write(0x10 + 2 * 7, 0x00010031);
	assert_int_equal(reg_read(0x10 + 2 * 7 + 1), 0xff000000);
	assert_int_equal(fx->nseen, 0);
}

static void test_edge_and_mask(void **state)
{
	(void)state;
	program(5, 0x31, 1);                      /* fixed, physical, edge, high */
	line(5, IRQ_EDGE);
	assert_int_equal(fx->nseen, 1);
	assert_int_equal(last()->vector, 0x31);
	assert_int_equal(last()->delivery, APIC_DM_FIXED);
	assert_false(last()->logical);
	assert_false(last()->level);
	assert_int_equal(last()->dest, 1);
	assert_int_equal(last()->shorthand, APIC_SH_NONE);
	assert_int_equal(entry_low(5) & (E_RIRR | E_STATUS), 0);

	/* Rising edges only. */
	line(5, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 2);
	line(5, IRQ_ASSERT);
	line(5, IRQ_EDGE);                        /* held high: no edge */
	assert_int_equal(fx->nseen, 2);
	line(5, IRQ_DEASSERT);
	assert_int_equal(fx->nseen, 2);
	line(5, IRQ_ASSERT);
	line(5, IRQ_DEASSERT);
	assert_int_equal(fx->nseen, 3);

	/* An edge that meets the mask is lost, and unmasking does not revive it. */
	program(5, 0x31 | E_MASK, 1);
	line(5, IRQ_EDGE);
	assert_int_equal(fx->nseen, 3);
	assert_int_equal(ioapic_stats(fx->io).masked, 1);
	program(5, 0x31, 1);
	assert_int_equal(fx->nseen, 3);
	line(5, IRQ_EDGE);
	assert_int_equal(fx->nseen, 4);
	assert_int_equal(ioapic_stats(fx->io).delivered, 4);
	/* Other pins stay quiet. */
	line(6, IRQ_EDGE);
	assert_int_equal(fx->nseen, 4);
}

static void test_level_remote_irr_eoi(void **state)
{
	(void)state;
	program(17, 0x40 | E_LEVEL, 2);
	line(17, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 1);
	assert_true(last()->level);
	assert_int_equal(last()->vector, 0x40);
	assert_true(entry_low(17) & E_RIRR);

	/* Remote IRR holds further interrupts back. */
	line(17, IRQ_DEASSERT);
	line(17, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 1);

	/* An EOI for another vector changes nothing. */
	eoi(0x41);
	assert_true(entry_low(17) & E_RIRR);
	assert_int_equal(fx->nseen, 1);

	/* Remote IRR is read-only: a write of the entry keeps it. */
	program(17, 0x40 | E_LEVEL, 2);
	assert_true(entry_low(17) & E_RIRR);
	assert_int_equal(fx->nseen, 1);

	/* EOI while still asserted: delivered again (level retrigger). */
	eoi(0x40);
	assert_int_equal(fx->nseen, 2);
	assert_true(entry_low(17) & E_RIRR);

	/* EOI after the line dropped: Remote IRR clears, nothing new. */
	line(17, IRQ_DEASSERT);
	eoi(0x40);
	assert_int_equal(fx->nseen, 2);
	assert_int_equal(entry_low(17) & E_RIRR, 0);

	/* A pulse on a level pin is one interrupt. */
	line(17, IRQ_EDGE);
	assert_int_equal(fx->nseen, 3);
	eoi(0x40);
	assert_int_equal(fx->nseen, 3);

	/* Switching the entry to edge clears Remote IRR. */
	line(17, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 4);
	assert_true(entry_low(17) & E_RIRR);
	program(17, 0x40, 2);
	assert_int_equal(entry_low(17) & E_RIRR, 0);
	assert_int_equal(fx->nseen, 4);
}

static void test_level_masked_then_unmasked(void **state)
{
	(void)state;
	program(10, 0x50 | E_LEVEL | E_MASK, 0);
	line(10, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 0);
	assert_int_equal(ioapic_stats(fx->io).masked, 1);
	assert_true(ioapic_pin_asserted(fx->io, 10));
	/* Unmasking while the line is asserted delivers it. */
	program(10, 0x50 | E_LEVEL, 0);
	assert_int_equal(fx->nseen, 1);
	assert_int_equal(last()->vector, 0x50);
	/* Masked with Remote IRR set, EOI while asserted: held back by the mask ... */
	program(10, 0x50 | E_LEVEL | E_MASK, 0);
	eoi(0x50);
	assert_int_equal(fx->nseen, 1);
	assert_int_equal(entry_low(10) & E_RIRR, 0);
	/* ... and delivered on unmask. */
	program(10, 0x50 | E_LEVEL, 0);
	assert_int_equal(fx->nseen, 2);
	/* Dropped before the unmask: nothing. */
	program(10, 0x50 | E_LEVEL | E_MASK, 0);
	line(10, IRQ_DEASSERT);
	eoi(0x50);
	program(10, 0x50 | E_LEVEL, 0);
	assert_int_equal(fx->nseen, 2);
}

static void test_polarity(void **state)
{
	(void)state;
	/* Active low, level: the idle line reads as asserted. */
	program(9, 0x60 | E_LEVEL | E_LOW, 0);
	assert_true(ioapic_pin_asserted(fx->io, 9));
	assert_int_equal(fx->nseen, 1);
	assert_int_equal(last()->vector, 0x60);
	/* The device asserts: the pin goes inactive, EOI brings nothing. */
	line(9, IRQ_ASSERT);
	assert_false(ioapic_pin_asserted(fx->io, 9));
	eoi(0x60);
	assert_int_equal(fx->nseen, 1);
	/* Released: active again. */
	line(9, IRQ_DEASSERT);
	assert_int_equal(fx->nseen, 2);
	eoi(0x60);
	assert_int_equal(fx->nseen, 3);             /* still active: retrigger */
	line(9, IRQ_ASSERT);
	eoi(0x60);
	assert_int_equal(fx->nseen, 3);

	/* Active low, edge: the falling line is the edge. */
	program(11, 0x61 | E_LOW, 0);
	line(11, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 3);
	line(11, IRQ_DEASSERT);
	assert_int_equal(fx->nseen, 4);
	assert_int_equal(last()->vector, 0x61);
	/* Active high for comparison: the rising line is the edge. */
	program(12, 0x62, 0);
	line(12, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 5);
	line(12, IRQ_DEASSERT);
	assert_int_equal(fx->nseen, 5);
}

static void test_isa_override(void **state)
{
	(void)state;
	assert_int_equal(ioapic_line_to_pin(0), 2);
	assert_int_equal(ioapic_line_to_pin(1), 1);
	assert_int_equal(ioapic_line_to_pin(2), -1);
	assert_int_equal(ioapic_line_to_pin(15), 15);
	assert_int_equal(ioapic_line_to_pin(23), 23);
	assert_int_equal(ioapic_line_to_pin(24), -1);

	program(0, 0x70, 0);
	program(2, 0x72, 0);
	line(0, IRQ_EDGE);                        /* the PIT */
	assert_int_equal(fx->nseen, 1);
	assert_int_equal(last()->vector, 0x72);
	line(2, IRQ_EDGE);                        /* the cascade: no pin */
	line(24, IRQ_EDGE);
	assert_int_equal(fx->nseen, 1);
	/* Pin 0 never fires, pin 2 only for IRQ 0. */
	for (unsigned l = 1; l < 24; l++)
		line(l, IRQ_EDGE);
	assert_int_equal(fx->nseen, 1);
}

static void check_mode(unsigned pin, unsigned mode, bool level_entry)
{
	unsigned before = fx->nseen;

	program(pin, (0x80 + pin) | E_MODE(mode) | (level_entry ? E_LEVEL : 0), 3);
	line(pin, IRQ_ASSERT);
	assert_int_equal(fx->nseen, before + 1);
	assert_int_equal(last()->delivery, mode);
	assert_int_equal(last()->vector, 0x80 + pin);
	/* Only fixed and lowest priority interrupts are level triggered. */
	bool level = level_entry && (mode == APIC_DM_FIXED || mode == APIC_DM_LOWEST);
	assert_int_equal(last()->level, level);
	assert_int_equal(!!(entry_low(pin) & E_RIRR), level);
	line(pin, IRQ_DEASSERT);
}

static void test_delivery_modes(void **state)
{
	static const unsigned modes[] = {
		APIC_DM_FIXED, APIC_DM_LOWEST, APIC_DM_SMI, APIC_DM_NMI,
		APIC_DM_INIT, APIC_DM_EXTINT,
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		check_mode(16 + i, modes[i], false);
		check_mode(3 + i, modes[i], true);
	}
	/* Reserved modes send nothing. */
	unsigned before = fx->nseen;
	program(22, 0x90 | E_MODE(3), 0);
	program(23, 0x91 | E_MODE(6), 0);
	line(22, IRQ_EDGE);
	line(23, IRQ_EDGE);
	assert_int_equal(fx->nseen, before);
	assert_int_equal(ioapic_stats(fx->io).bad_mode, 2);
}

static void test_destinations(void **state)
{
	(void)state;
	program(4, 0xa0 | E_LOGICAL, 0xa5);
	line(4, IRQ_EDGE);
	assert_int_equal(fx->nseen, 1);
	assert_true(last()->logical);
	assert_int_equal(last()->dest, 0xa5);
	program(4, 0xa0, 0xff);
	line(4, IRQ_EDGE);
	assert_int_equal(fx->nseen, 2);
	assert_false(last()->logical);
	assert_int_equal(last()->dest, 0xff);
	program(4, 0xa1 | E_LOGICAL | E_MODE(APIC_DM_LOWEST), 0x0f);
	line(4, IRQ_EDGE);
	assert_int_equal(fx->nseen, 3);
	assert_true(last()->logical);
	assert_int_equal(last()->delivery, APIC_DM_LOWEST);
	assert_int_equal(last()->dest, 0x0f);
	assert_int_equal(last()->vector, 0xa1);
}

static void test_nobody_accepts(void **state)
{
	(void)state;
	fx->accept = false;
	program(18, 0xb0 | E_LEVEL, 7);
	line(18, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 1);
	assert_int_equal(ioapic_stats(fx->io).undelivered, 1);
	assert_int_equal(ioapic_stats(fx->io).delivered, 0);
	/* No Remote IRR without an acceptor: it would wait for an EOI forever. */
	assert_int_equal(entry_low(18) & E_RIRR, 0);
	fx->accept = true;
	program(18, 0xb0 | E_LEVEL, 7);           /* re-evaluated: now taken */
	assert_int_equal(fx->nseen, 2);
	assert_true(entry_low(18) & E_RIRR);
	assert_int_equal(ioapic_stats(fx->io).delivered, 1);
}

static void test_eoi_register(void **state)
{
	(void)state;
	program(19, 0xc0 | E_LEVEL, 0);
	program(20, 0xc0 | E_LEVEL, 0);           /* two pins share the vector */
	line(19, IRQ_ASSERT);
	line(20, IRQ_ASSERT);
	assert_int_equal(fx->nseen, 2);
	line(20, IRQ_DEASSERT);
	mmio_write(0x40, 4, 0xc1);
	assert_true(entry_low(19) & E_RIRR);
	mmio_write(0x40, 4, 0xc0);
	/* Pin 19 is still asserted: again; pin 20 is clear. */
	assert_int_equal(fx->nseen, 3);
	assert_true(entry_low(19) & E_RIRR);
	assert_int_equal(entry_low(20) & E_RIRR, 0);
}

static void test_device_model(void **state)
{
	struct fixture *f = *state;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	/* One IOAPIC per VM. */
	assert_ptr_equal(ioapic_find(&f->vm), f->io);
	assert_true(device_create(&f->vm, "ioapic") < 0);
	assert_null(ioapic_create(&f->vm, 0xfec10000));
	ioapic_destroy(f->io);
	f->io = NULL;
	assert_null(ioapic_find(&f->vm));
	assert_true(device_create(&f->vm, "ioapic:0x1234") < 0);   /* unaligned */
	assert_true(device_create(&f->vm, "ioapic:zz") < 0);
	assert_int_equal(device_create(&f->vm, "ioapic:0xfec01000"), 0);
	f->io = ioapic_find(&f->vm);
	assert_non_null(f->io);
	/* The window moved: the default address is free, the new one answers. */
	{
		struct msg_mmio m = { .addr = BASE, .size = 4 };

		assert_false(range_bus_send(f->vm.bus.mmio, BASE, &m));
		m = (struct msg_mmio){ .addr = 0xfec01000, .size = 4, .write = true, .value = 1 };
		assert_true(range_bus_send(f->vm.bus.mmio, 0xfec01000, &m));
		m = (struct msg_mmio){ .addr = 0xfec01010, .size = 4 };
		assert_true(range_bus_send(f->vm.bus.mmio, 0xfec01010, &m));
		assert_int_equal(m.value, 0x00170020);
	}
	out = open_memstream(&buf, &len);
	ioapic_dump(f->io, out);
	fclose(out);
	assert_non_null(strstr(buf, "version 0x20"));
	assert_non_null(strstr(buf, "pin 23"));
	free(buf);
	/* The exit hook destroys it; teardown must not do it again. */
	vm_run_exit_hooks(&f->vm);
	assert_null(ioapic_find(&f->vm));
	f->io = NULL;
}

/*
 * A level pin waiting for its EOI, a masked asserted level pin, an ID and
 * IOREGSEL: a fresh IOAPIC loaded from them sends nothing on load, then
 * retriggers on the EOI and delivers on unmask like the original.
 */
static void test_save_load(void **state)
{
	struct fixture *f = *state, *g;
	int fa;

	reg_write(0x00, 0x5u << 24);
	program(17, 0x40 | E_LEVEL, 2);
	program(9, 0x51 | E_LEVEL | E_LOW | E_MASK, 3);
	program(4, 0x33 | E_LOGICAL, 0x80);
	line(17, IRQ_ASSERT);
	line(9, IRQ_DEASSERT);       /* active low: asserted */
	mmio_write(0x00, 4, 0x19);   /* pin 4, high half */
	assert_int_equal(f->nseen, 1);
	fa = trip_save(&f->vm);

	setup(state, IO_MODE_LOCK);
	g = *state;
	*state = f;
	trip_reload(&g->vm, fa);
	assert_int_equal(g->nseen, 0);
	assert_int_equal(mmio_read(0x00, 4), 0x19);
	assert_int_equal(mmio_read(0x10, 4), 0x80u << 24);
	assert_int_equal(reg_read(0x00), 0x5u << 24);
	assert_true(entry_low(17) & E_RIRR);
	assert_true(ioapic_pin_asserted(g->io, 9));
	eoi(0x40);                    /* still asserted: again */
	assert_int_equal(g->nseen, 1);
	assert_int_equal(last()->vector, 0x40);
	reg_write(0x10 + 18, 0x51 | E_LEVEL | E_LOW);   /* unmask pin 9 */
	assert_int_equal(g->nseen, 2);
	assert_int_equal(last()->vector, 0x51);
	line(4, IRQ_EDGE);
	assert_int_equal(g->nseen, 3);
	assert_int_equal(last()->dest, 0x80);
	assert_true(last()->logical);
	close(fa);
	teardown((void **)&g);
	fx = f;
}

static void test_load_refuses(void **state)
{
	struct fixture *f = *state;
	uint8_t id = 0x10;
	uint32_t level = 1u << 24;
	uint64_t rirr_edge = E_RIRR | 0x40, status = E_STATUS | E_MASK;
	int fa;

	(void)state;
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "ioapic", 0, 0, &id, 1, "bad ID 16");
	trip_assert_patched_refused(&f->vm, fa, "ioapic", 0, 2, &level, 4, "levels 0x1000000");
	trip_assert_patched_refused(&f->vm, fa, "ioapic", 0, 6 + 8 * 3, &rirr_edge, 8,
				    "entry 3");
	trip_assert_patched_refused(&f->vm, fa, "ioapic", 0, 6 + 8 * 23, &status, 8,
				    "entry 23");
	trip_assert_patched_refused(&f->vm, fa, "ioapic", 0, 6 + 8 * 24, NULL, 0, "left unread");
	trip_assert_patched_refused(&f->vm, fa, "ioapic", 0, 100, NULL, 0, "past its end");
	/* Nothing of a refused stream was applied. */
	assert_int_equal(entry_low(3), E_MASK);
	close(fa);
}

#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_lock, teardown), \
		cmocka_unit_test_setup_teardown(t, setup_thread, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_registers),
		BOTH(test_edge_and_mask),
		BOTH(test_level_remote_irr_eoi),
		BOTH(test_level_masked_then_unmasked),
		BOTH(test_polarity),
		BOTH(test_isa_override),
		BOTH(test_delivery_modes),
		BOTH(test_destinations),
		BOTH(test_nobody_accepts),
		BOTH(test_eoi_register),
		BOTH(test_device_model),
		BOTH(test_save_load),
		BOTH(test_load_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
