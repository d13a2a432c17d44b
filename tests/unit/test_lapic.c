/*
 * The local APIC: register semantics, the interrupt cycle, every delivery
 * mode and destination form, the timer on the real timer service, the
 * base MSR and ExtINT, and the lock-free posting path under concurrent
 * senders.  The CPUs are fakes that count kicks; the 8259 and the IOAPIC's
 * EOI receiver are fake receivers on their buses.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "bus/bus.h"
#include "bus/call.h"
#include "bus/message.h"
#include "devices/lapic.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define NCPU 4
#define WAIT_NS (30ull * 1000000000ull)   /* generous: only a hang fails */

struct fake_cpu {
	_Atomic uint32_t events;      /* VCPU_EV_* posted and not yet taken */
	_Atomic unsigned irq, nmi, init, sipi;
	_Atomic int sipi_vector;
};

static struct vm vm;
static struct lapic_group *group;
static struct lapic *apic[NCPU];
static struct fake_cpu cpu[NCPU];
static _Atomic unsigned eoi_count;
static _Atomic int eoi_vector;
static _Atomic unsigned inta_count;
static const uint8_t pic_vector = 0x28;

static void fake_kick(void *ctx, uint32_t ev)
{
	struct fake_cpu *c = ctx;

	atomic_fetch_or(&c->events, ev);
	if (ev & VCPU_EV_IRQ)
		atomic_fetch_add(&c->irq, 1);
	if (ev & VCPU_EV_NMI)
		atomic_fetch_add(&c->nmi, 1);
	if (ev & VCPU_EV_INIT)
		atomic_fetch_add(&c->init, 1);
}

static void fake_sipi(void *ctx, uint8_t vector)
{
	struct fake_cpu *c = ctx;

	atomic_store(&c->sipi_vector, vector);
	atomic_fetch_add(&c->sipi, 1);
}

static const struct lapic_cpu_ops fake_ops = { .kick = fake_kick, .sipi = fake_sipi };

/* The IOAPIC's side of the EOI broadcast. */
static bool fake_eoi(void *dev, void *msg)
{
	(void)dev;
	atomic_store(&eoi_vector, ((struct msg_eoi *)msg)->vector);
	atomic_fetch_add(&eoi_count, 1);
	return true;
}

/* The 8259's output level as the fake reports it to LEGACY_INTR_LEVEL. */
static _Atomic bool fake_pic_level = true;

/* The 8259's side of INTA. */
static bool fake_pic(void *dev, void *msg)
{
	struct msg_legacy *m = msg;

	(void)dev;
	if (m->type == LEGACY_INTR_LEVEL) {
		m->level = atomic_load(&fake_pic_level);
		return true;
	}
	if (m->type != LEGACY_INTA)
		return false;
	m->value = pic_vector;
	atomic_fetch_add(&inta_count, 1);
	return true;
}

static int setup(void **state)
{
	(void)state;
	memset(&vm, 0, sizeof(vm));
	memset(cpu, 0, sizeof(cpu));
	atomic_store(&eoi_count, 0);
	atomic_store(&eoi_vector, -1);
	atomic_store(&inta_count, 0);
	vm.ncpus = NCPU;
	assert_int_equal(vm_init_buses(&vm, IO_MODE_LOCK), 0);
	group = lapic_group_create(&vm);
	assert_non_null(group);
	for (unsigned i = 0; i < NCPU; i++) {
		apic[i] = lapic_create(group, i, &fake_ops, &cpu[i]);
		assert_non_null(apic[i]);
	}
	assert_null(lapic_create(group, 1, &fake_ops, &cpu[1]));
	assert_int_equal(bus_attach(vm.bus.eoi, fake_eoi, bus_claim_always, NULL), 0);
	assert_int_equal(bus_attach(vm.bus.legacy, fake_pic, bus_claim_always, NULL), 0);
	bus_current_vcpu = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bus_current_vcpu = -1;
	lapic_group_destroy(group);
	vm_fini_buses(&vm);
	return 0;
}

/* ---- Helpers ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void enable(struct lapic *a)
{
	lapic_write(a, LAPIC_SVR, LAPIC_SVR_ENABLE | 0xff);
}

static void enable_all(void)
{
	for (unsigned i = 0; i < NCPU; i++)
		enable(apic[i]);
}

static unsigned send(uint8_t vector, uint8_t dm, uint8_t sh, bool logical, bool level,
		     uint32_t dest, uint32_t source)
{
	struct msg_apic m = {
		.vector = vector, .delivery = dm, .shorthand = sh, .logical = logical,
		.level = level, .dest = dest, .source = source,
	};

	bus_send(vm.bus.apic, &m, BUS_LIFO);
	return m.accepted;
}

static unsigned fixed(uint8_t vector, uint32_t dest)
{
	return send(vector, APIC_DM_FIXED, APIC_SH_NONE, false, false, dest, UINT32_MAX);
}

static void icr(struct lapic *a, uint8_t dest, uint32_t lo)
{
	lapic_write(a, LAPIC_ICR_HI, (uint32_t)dest << 24);
	lapic_write(a, LAPIC_ICR_LO, lo);
}

/* Fold what was posted (as the vCPU does before entry) and test IRR. */
static bool in_irr(struct lapic *a, unsigned v)
{
	(void)lapic_pending(a);
	return lapic_read(a, LAPIC_IRR + (v / 32) * 16) >> (v % 32) & 1;
}

static bool in_isr(struct lapic *a, unsigned v)
{
	return lapic_read(a, LAPIC_ISR + (v / 32) * 16) >> (v % 32) & 1;
}

static bool in_tmr(struct lapic *a, unsigned v)
{
	(void)lapic_pending(a);
	return lapic_read(a, LAPIC_TMR + (v / 32) * 16) >> (v % 32) & 1;
}

static int irr_count(struct lapic *a)
{
	int n = 0;

	(void)lapic_pending(a);
	for (unsigned i = 0; i < 8; i++)
		n += __builtin_popcount(lapic_read(a, LAPIC_IRR + i * 16));
	return n;
}

/* Acknowledge what is pending and EOI it; returns the vector or -1. */
static int take(struct lapic *a)
{
	int t = lapic_pending(a), v;

	if (t < 0)
		return -1;
	v = lapic_acknowledge(a, t);
	lapic_eoi(a);
	return v;
}

/* Poll until lapic_pending() gives @want; only a hang makes it fail. */
static int wait_pending(struct lapic *a, int want)
{
	uint64_t end = now_ns() + WAIT_NS;
	int t;

	while ((t = lapic_pending(a)) != want && now_ns() < end)
		usleep(50);
	return t;
}

static uint64_t msr_rw(struct lapic *a, bool write, uint32_t index, uint64_t value, bool *fault)
{
	struct msg_cpu m = { .type = write ? CPU_MSG_WRMSR : CPU_MSG_RDMSR,
			     .index = index, .value = value };

	assert_true(lapic_msr(a, &m));
	if (fault)
		*fault = m.fault;
	else
		assert_false(m.fault);
	return m.value;
}

static uint64_t mmio_read(int vcpu, unsigned off, unsigned size, bool *handled)
{
	struct msg_mmio m = { .addr = LAPIC_BASE + off, .size = size };

	bus_current_vcpu = vcpu;
	*handled = range_bus_send(vm.bus.mmio, m.addr, &m);
	bus_current_vcpu = 0;
	return m.value;
}

static void mmio_write(int vcpu, unsigned off, unsigned size, uint64_t value)
{
	struct msg_mmio m = { .addr = LAPIC_BASE + off, .size = size, .write = true, .value = value };

	bus_current_vcpu = vcpu;
	assert_true(range_bus_send(vm.bus.mmio, m.addr, &m));
	bus_current_vcpu = 0;
}

static uint32_t esr(struct lapic *a)
{
	lapic_write(a, LAPIC_ESR, 0);
	return lapic_read(a, LAPIC_ESR);
}

/* ---- Registers ---- */

static void test_reset_values(void **state)
{
	(void)state;
	for (unsigned i = 0; i < NCPU; i++) {
		struct lapic *a = apic[i];

		assert_int_equal(lapic_read(a, LAPIC_ID), i << 24);
		assert_int_equal(lapic_read(a, LAPIC_VER), 0x00050014);
		assert_int_equal(lapic_read(a, LAPIC_TPR), 0);
		assert_int_equal(lapic_read(a, LAPIC_APR), 0);
		assert_int_equal(lapic_read(a, LAPIC_PPR), 0);
		assert_int_equal(lapic_read(a, LAPIC_LDR), 0);
		assert_int_equal(lapic_read(a, LAPIC_DFR), 0xffffffff);
		assert_int_equal(lapic_read(a, LAPIC_SVR), 0xff);
		for (unsigned w = 0; w < 8; w++) {
			assert_int_equal(lapic_read(a, LAPIC_ISR + w * 16), 0);
			assert_int_equal(lapic_read(a, LAPIC_TMR + w * 16), 0);
			assert_int_equal(lapic_read(a, LAPIC_IRR + w * 16), 0);
		}
		assert_int_equal(lapic_read(a, LAPIC_ESR), 0);
		assert_int_equal(lapic_read(a, LAPIC_ICR_LO), 0);
		assert_int_equal(lapic_read(a, LAPIC_ICR_HI), 0);
		for (unsigned off = LAPIC_LVT_TIMER; off <= LAPIC_LVT_ERROR; off += 16)
			assert_int_equal(lapic_read(a, off), LAPIC_LVT_MASKED);
		assert_int_equal(lapic_read(a, LAPIC_TMICT), 0);
		assert_int_equal(lapic_read(a, LAPIC_TMCCT), 0);
		assert_int_equal(lapic_read(a, LAPIC_TDCR), 0);
		assert_int_equal(msr_rw(a, false, MSR_IA32_APIC_BASE, 0, NULL),
				 0xfee00000u | 0x800 | (i == 0 ? 0x100 : 0));
		assert_int_equal(lapic_pending(a), -1);
	}
}

static void test_write_masks(void **state)
{
	static const struct { unsigned off; uint32_t after_ones, after_zero; } regs[] = {
		{ LAPIC_ID, 0xff000000, 0 },
		{ LAPIC_VER, 0x00050014, 0x00050014 },
		{ LAPIC_TPR, 0xff, 0 },
		{ LAPIC_LDR, 0xff000000, 0 },
		{ LAPIC_DFR, 0xffffffff, 0x0fffffff },
		{ LAPIC_ICR_HI, 0xff000000, 0 },
		{ LAPIC_LVT_THERMAL, 0x000107ff, 0 },
		{ LAPIC_LVT_PERF, 0x000107ff, 0 },
		{ LAPIC_LVT_LINT0, 0x0001a7ff, 0 },
		{ LAPIC_LVT_LINT1, 0x0001a7ff, 0 },
		{ LAPIC_LVT_ERROR, 0x000100ff, 0 },
		{ LAPIC_LVT_TIMER, 0x000700ff, 0 },
		{ LAPIC_TDCR, 0xb, 0 },
		{ LAPIC_TMCCT, 0, 0 },
		{ LAPIC_PPR, 0, 0 },
		{ LAPIC_APR, 0, 0 },
		{ LAPIC_IRR + 0x30, 0, 0 },
	};
	struct lapic *a = apic[1];

	(void)state;
	enable(a);
	assert_int_equal(lapic_read(a, LAPIC_SVR), 0x1ff);
	lapic_write(a, LAPIC_SVR, 0xffffffff);
	assert_int_equal(lapic_read(a, LAPIC_SVR), 0x3ff);
	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		lapic_write(a, regs[i].off, 0xffffffff);
		assert_int_equal(lapic_read(a, regs[i].off), regs[i].after_ones);
		lapic_write(a, regs[i].off, 0);
		assert_int_equal(lapic_read(a, regs[i].off), regs[i].after_zero);
	}
	/* An unmasked error LVT with vector 0 would add "receive illegal vector" below. */
	lapic_write(a, LAPIC_LVT_ERROR, LAPIC_LVT_MASKED);
	/* ICR: delivery status and the reserved bits read 0; mode 7 sends nothing. */
	lapic_write(a, LAPIC_ICR_LO, 0xffffffff);
	assert_int_equal(lapic_read(a, LAPIC_ICR_LO), 0x000ccfff);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(irr_count(apic[i]), 0);
	/* EOI reads 0; reserved registers read 0 and flag an illegal register. */
	assert_int_equal(lapic_read(a, LAPIC_EOI), 0);
	assert_int_equal(esr(a), 0);
	assert_int_equal(lapic_read(a, 0x040), 0);
	assert_int_equal(esr(a), LAPIC_ESR_ILLEGAL_REG);
	lapic_write(a, 0x3f0, 1);
	assert_int_equal(esr(a), LAPIC_ESR_ILLEGAL_REG);
	assert_int_equal(esr(a), 0);
}

static void test_mmio_sizes(void **state)
{
	bool handled;

	(void)state;
	/* Narrow reads see their bytes of the register; bytes 4..15 read 0. */
	assert_int_equal(mmio_read(2, LAPIC_VER, 4, &handled), 0x00050014);
	assert_true(handled);
	assert_int_equal(mmio_read(2, LAPIC_VER, 1, &handled), 0x14);
	assert_int_equal(mmio_read(2, LAPIC_VER + 2, 1, &handled), 0x05);
	assert_int_equal(mmio_read(2, LAPIC_VER + 2, 2, &handled), 0x0005);
	assert_int_equal(mmio_read(2, LAPIC_VER, 8, &handled), 0x00050014);
	assert_int_equal(mmio_read(2, LAPIC_VER + 4, 4, &handled), 0);
	/* Each vCPU sees its own LAPIC. */
	assert_int_equal(mmio_read(2, LAPIC_ID, 4, &handled), 2u << 24);
	assert_int_equal(mmio_read(3, LAPIC_ID + 3, 1, &handled), 3);
	/* Not from a vCPU thread: not ours. */
	mmio_read(-1, LAPIC_ID, 4, &handled);
	assert_false(handled);
	/* Only aligned 32-bit writes count. */
	mmio_write(2, LAPIC_TPR, 1, 0x55);
	mmio_write(2, LAPIC_TPR + 4, 4, 0x55);
	mmio_write(2, LAPIC_TPR, 8, 0x55);
	assert_int_equal(lapic_read(apic[2], LAPIC_TPR), 0);
	mmio_write(2, LAPIC_TPR, 4, 0x55);
	assert_int_equal(lapic_read(apic[2], LAPIC_TPR), 0x55);
	assert_int_equal(lapic_read(apic[1], LAPIC_TPR), 0);
}

static void test_id_write_moves_physical_destination(void **state)
{
	(void)state;
	enable_all();
	lapic_write(apic[3], LAPIC_ID, 0x07000000);
	assert_int_equal(lapic_read(apic[3], LAPIC_ID), 0x07000000);
	assert_int_equal(fixed(0x50, 3), 0);
	assert_int_equal(fixed(0x50, 7), 1);
	assert_true(in_irr(apic[3], 0x50));
	/* INIT keeps the ID. */
	lapic_reset(apic[3]);
	assert_int_equal(lapic_read(apic[3], LAPIC_ID), 0x07000000);
	assert_false(in_irr(apic[3], 0x50));
}

/* ---- Priorities and the interrupt cycle ---- */

static void test_tpr_ppr_apr(void **state)
{
	struct lapic *a = apic[0];

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_TPR, 0x45);
	assert_int_equal(lapic_read(a, LAPIC_PPR), 0x45);
	assert_int_equal(lapic_read(a, LAPIC_APR), 0x45);
	fixed(0x61, 0);
	assert_int_equal(lapic_pending(a), 0x61);
	/* An IRR class above TPR raises APR to that class. */
	assert_int_equal(lapic_read(a, LAPIC_APR), 0x60);
	assert_int_equal(lapic_acknowledge(a, 0x61), 0x61);
	/* ISR class above TPR: PPR is the ISR class. */
	assert_int_equal(lapic_read(a, LAPIC_PPR), 0x60);
	assert_int_equal(lapic_read(a, LAPIC_APR), 0x60);
	lapic_write(a, LAPIC_TPR, 0x72);
	assert_int_equal(lapic_read(a, LAPIC_PPR), 0x72);
	assert_int_equal(lapic_read(a, LAPIC_APR), 0x72);
	lapic_eoi(a);
	lapic_write(a, LAPIC_TPR, 0);
	assert_int_equal(lapic_read(a, LAPIC_PPR), 0);
}

static void test_priority_order(void **state)
{
	struct lapic *a = apic[0];

	(void)state;
	enable(a);
	fixed(0x41, 0);
	fixed(0x90, 0);
	fixed(0x55, 0);
	assert_true(atomic_load(&cpu[0].irq) >= 1);
	assert_int_equal(lapic_pending(a), 0x90);
	assert_int_equal(lapic_acknowledge(a, 0x90), 0x90);
	assert_true(in_isr(a, 0x90));
	assert_false(in_irr(a, 0x90));
	/* Lower classes wait behind the one in service. */
	assert_int_equal(lapic_pending(a), -1);
	/* A higher class nests. */
	fixed(0xa3, 0);
	assert_int_equal(lapic_pending(a), 0xa3);
	assert_int_equal(lapic_acknowledge(a, 0xa3), 0xa3);
	/* EOI retires the highest in service first. */
	lapic_eoi(a);
	assert_false(in_isr(a, 0xa3));
	assert_true(in_isr(a, 0x90));
	assert_int_equal(lapic_pending(a), -1);
	lapic_eoi(a);
	assert_int_equal(lapic_pending(a), 0x55);
	assert_int_equal(lapic_acknowledge(a, 0x55), 0x55);
	/* Same class as the one in service: blocked. */
	fixed(0x5f, 0);
	assert_int_equal(lapic_pending(a), -1);
	lapic_eoi(a);
	assert_int_equal(take(a), 0x5f);
	/* TPR blocks its class and below. */
	lapic_write(a, LAPIC_TPR, 0x50);
	fixed(0x51, 0);
	assert_int_equal(lapic_pending(a), -1);
	fixed(0x60, 0);
	assert_int_equal(take(a), 0x60);
	lapic_write(a, LAPIC_TPR, 0x4f);
	assert_int_equal(take(a), 0x51);
	assert_int_equal(lapic_pending(a), -1);
	lapic_write(a, LAPIC_TPR, 0);
	assert_int_equal(take(a), 0x41);
	assert_int_equal(take(a), -1);
	/* A stale token is refused. */
	assert_int_equal(lapic_acknowledge(a, 0x41), -1);
	/* EOI with nothing in service does nothing. */
	lapic_eoi(a);
}

static void test_eoi_broadcast_level_only(void **state)
{
	struct lapic *a = apic[1];

	(void)state;
	enable(a);
	assert_int_equal(send(0x70, APIC_DM_FIXED, APIC_SH_NONE, false, true, 1, UINT32_MAX), 1);
	assert_true(in_irr(a, 0x70));
	assert_true(in_tmr(a, 0x70));
	assert_int_equal(lapic_acknowledge(a, lapic_pending(a)), 0x70);
	mmio_write(1, LAPIC_EOI, 4, 0);
	assert_int_equal(atomic_load(&eoi_count), 1);
	assert_int_equal(atomic_load(&eoi_vector), 0x70);
	/* Edge: TMR clear, no broadcast. */
	fixed(0x71, 1);
	assert_false(in_tmr(a, 0x71));
	assert_int_equal(take(a), 0x71);
	assert_int_equal(atomic_load(&eoi_count), 1);
	/* The same vector delivered edge later clears its TMR bit. */
	send(0x70, APIC_DM_FIXED, APIC_SH_NONE, false, false, 1, UINT32_MAX);
	assert_false(in_tmr(a, 0x70));
	assert_int_equal(take(a), 0x70);
	assert_int_equal(atomic_load(&eoi_count), 1);
}

static void test_svr_disable(void **state)
{
	struct lapic *a = apic[2];

	(void)state;
	/* Software-disabled after reset: LVTs cannot be unmasked, fixed is refused. */
	lapic_write(a, LAPIC_LVT_LINT0, 0x700);
	assert_int_equal(lapic_read(a, LAPIC_LVT_LINT0), LAPIC_LVT_MASKED | 0x700);
	assert_int_equal(fixed(0x50, 2), 0);
	assert_false(in_irr(a, 0x50));
	assert_int_equal(send(0, APIC_DM_NMI, APIC_SH_NONE, false, false, 2, UINT32_MAX), 1);
	assert_int_equal(atomic_load(&cpu[2].nmi), 1);
	assert_int_equal(send(0, APIC_DM_INIT, APIC_SH_NONE, false, false, 2, UINT32_MAX), 1);
	assert_int_equal(send(0x12, APIC_DM_SIPI, APIC_SH_NONE, false, false, 2, UINT32_MAX), 1);
	assert_int_equal(atomic_load(&cpu[2].init), 1);
	assert_int_equal(atomic_load(&cpu[2].sipi), 1);

	enable(a);
	for (unsigned off = LAPIC_LVT_TIMER; off <= LAPIC_LVT_ERROR; off += 16) {
		lapic_write(a, off, 0x40);
		assert_int_equal(lapic_read(a, off), 0x40);
	}
	assert_int_equal(fixed(0x50, 2), 1);
	assert_true(in_irr(a, 0x50));
	/* Disable: every LVT gets masked, IRR is held and still delivered. */
	lapic_write(a, LAPIC_SVR, 0xff);
	for (unsigned off = LAPIC_LVT_TIMER; off <= LAPIC_LVT_ERROR; off += 16)
		assert_int_equal(lapic_read(a, off), LAPIC_LVT_MASKED | 0x40);
	lapic_write(a, LAPIC_LVT_ERROR, 0x41);
	assert_int_equal(lapic_read(a, LAPIC_LVT_ERROR), LAPIC_LVT_MASKED | 0x41);
	assert_int_equal(fixed(0x60, 2), 0);
	assert_int_equal(take(a), 0x50);
	assert_int_equal(take(a), -1);
}

/* ---- ICR and destinations ---- */

static void test_icr_delivery_modes(void **state)
{
	struct lapic *a = apic[0];

	(void)state;
	enable_all();
	/* Fixed, physical. */
	icr(a, 2, 0x000 | 0x51);
	assert_true(in_irr(apic[2], 0x51));
	assert_false(in_irr(apic[1], 0x51));
	assert_false(in_tmr(apic[2], 0x51));
	/* A level-triggered fixed IPI is still edge: no TMR, no EOI broadcast. */
	icr(a, 2, 0xc000 | 0x52);
	assert_true(in_irr(apic[2], 0x52));
	assert_false(in_tmr(apic[2], 0x52));
	/* NMI. */
	icr(a, 3, 0x400);
	assert_int_equal(atomic_load(&cpu[3].nmi), 1);
	assert_int_equal(atomic_load(&cpu[3].events) & VCPU_EV_NMI, VCPU_EV_NMI);
	/* INIT assert; INIT level de-assert is ignored. */
	icr(a, 1, 0x4500);
	assert_int_equal(atomic_load(&cpu[1].init), 1);
	icr(a, 1, 0x8500);
	assert_int_equal(atomic_load(&cpu[1].init), 1);
	/* SIPI carries its vector. */
	icr(a, 1, 0x4600 | 0x9a);
	assert_int_equal(atomic_load(&cpu[1].sipi), 1);
	assert_int_equal(atomic_load(&cpu[1].sipi_vector), 0x9a);
	/* SMI and the reserved modes deliver nothing. */
	icr(a, 1, 0x200 | 0x40);
	icr(a, 1, 0x300 | 0x40);
	icr(a, 1, 0x700 | 0x40);
	assert_int_equal(irr_count(apic[1]), 0);
	assert_int_equal(atomic_load(&cpu[1].nmi) + atomic_load(&cpu[1].sipi), 1);
	/* Lowest priority from the ICR: exactly one CPU. */
	icr(a, 0xff, 0x100 | 0x66);
	assert_int_equal(in_irr(apic[0], 0x66) + in_irr(apic[1], 0x66) +
			 in_irr(apic[2], 0x66) + in_irr(apic[3], 0x66), 1);
	/* Every kick of an IRQ was one 0 -> 1 flip of the notification flag. */
	assert_true(atomic_load(&cpu[2].irq) >= 1);
}

static void test_shorthands(void **state)
{
	struct lapic *a = apic[1];

	(void)state;
	enable_all();
	icr(a, 3, 0x40000 | 0x41);        /* self: the destination is ignored */
	assert_true(in_irr(apic[1], 0x41));
	assert_false(in_irr(apic[3], 0x41));
	icr(a, 0, 0x80000 | 0x42);        /* all including self */
	for (unsigned i = 0; i < NCPU; i++)
		assert_true(in_irr(apic[i], 0x42));
	icr(a, 1, 0xc0000 | 0x43);        /* all but self */
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(in_irr(apic[i], 0x43), i != 1);
	icr(a, 0, 0xc0000 | 0x400);       /* NMI to all but self */
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(atomic_load(&cpu[i].nmi), i != 1);
	/* Physical broadcast. */
	assert_int_equal(fixed(0x44, 0xff), NCPU);
	for (unsigned i = 0; i < NCPU; i++)
		assert_true(in_irr(apic[i], 0x44));
}

static void test_logical_flat_and_cluster(void **state)
{
	(void)state;
	enable_all();
	/* Flat: one bit per CPU. */
	for (unsigned i = 0; i < NCPU; i++)
		lapic_write(apic[i], LAPIC_LDR, (1u << i) << 24);
	assert_int_equal(send(0x50, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0x06, UINT32_MAX), 2);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(in_irr(apic[i], 0x50), i == 1 || i == 2);
	assert_int_equal(send(0x51, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0x30, UINT32_MAX), 0);
	assert_int_equal(send(0x52, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0xff, UINT32_MAX), NCPU);
	/* Cluster: high nibble cluster, low nibble members. */
	static const uint8_t ldr[NCPU] = { 0x11, 0x12, 0x21, 0x22 };
	for (unsigned i = 0; i < NCPU; i++) {
		lapic_write(apic[i], LAPIC_DFR, 0x0fffffff);
		lapic_write(apic[i], LAPIC_LDR, (uint32_t)ldr[i] << 24);
	}
	assert_int_equal(send(0x53, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0x13, UINT32_MAX), 2);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(in_irr(apic[i], 0x53), i == 0 || i == 1);
	assert_int_equal(send(0x54, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0x21, UINT32_MAX), 1);
	assert_true(in_irr(apic[2], 0x54));
	assert_int_equal(send(0x55, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0x31, UINT32_MAX), 0);
	assert_int_equal(send(0x56, APIC_DM_FIXED, APIC_SH_NONE, true, false, 0xff, UINT32_MAX), NCPU);
	/* The same destination through the ICR, logical mode. */
	icr(apic[0], 0x22, 0x800 | 0x57);
	assert_true(in_irr(apic[3], 0x57));
	assert_false(in_irr(apic[2], 0x57));
	/* Physical ID 1 is not logical cluster 0 member 1. */
	assert_int_equal(fixed(0x58, 1), 1);
	assert_true(in_irr(apic[1], 0x58));
}

static void test_lowest_priority(void **state)
{
	static const uint32_t tpr[NCPU] = { 0x30, 0x10, 0x20, 0x00 };
	unsigned hits[NCPU] = { 0 };

	(void)state;
	enable_all();
	for (unsigned i = 0; i < NCPU; i++) {
		lapic_write(apic[i], LAPIC_TPR, tpr[i]);
		lapic_write(apic[i], LAPIC_LDR, (1u << i) << 24);
	}
	/* CPU 3 has the lowest priority but is not addressed. */
	assert_int_equal(send(0x60, APIC_DM_LOWEST, APIC_SH_NONE, true, false, 0x07, UINT32_MAX), 1);
	assert_true(in_irr(apic[1], 0x60));
	assert_false(in_irr(apic[0], 0x60) || in_irr(apic[2], 0x60) || in_irr(apic[3], 0x60));
	/* A software-disabled LAPIC does not take part. */
	lapic_write(apic[1], LAPIC_SVR, 0xff);
	assert_int_equal(send(0x61, APIC_DM_LOWEST, APIC_SH_NONE, true, false, 0x07, UINT32_MAX), 1);
	assert_true(in_irr(apic[2], 0x61));
	/* Pending interrupts count: CPU 2 with 0x61 in IRR (APR 0x60) loses to CPU 0. */
	assert_int_equal(send(0x63, APIC_DM_LOWEST, APIC_SH_NONE, true, false, 0x05, UINT32_MAX), 1);
	assert_true(in_irr(apic[0], 0x63));
	assert_int_equal(take(apic[0]), 0x63);
	assert_int_equal(take(apic[2]), 0x61);
	/* Interrupts in service count: CPU 3 busy with class 9 loses to CPU 2. */
	fixed(0x90, 3);
	assert_int_equal(lapic_acknowledge(apic[3], lapic_pending(apic[3])), 0x90);
	assert_int_equal(send(0x62, APIC_DM_LOWEST, APIC_SH_NONE, false, false, 0xff, UINT32_MAX), 1);
	assert_true(in_irr(apic[2], 0x62));
	/* Ties rotate: equal priorities share the interrupts. */
	enable(apic[1]);
	lapic_eoi(apic[3]);
	for (unsigned i = 0; i < NCPU; i++) {
		lapic_write(apic[i], LAPIC_TPR, 0);
		while (take(apic[i]) >= 0)
			;
	}
	for (unsigned n = 0; n < 4 * NCPU; n++) {
		assert_int_equal(send(0x70, APIC_DM_LOWEST, APIC_SH_NONE, false, false, 0xff,
				      UINT32_MAX), 1);
		for (unsigned i = 0; i < NCPU; i++)
			if (take(apic[i]) == 0x70)
				hits[i]++;
	}
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(hits[i], 4);
}

static void test_illegal_vectors(void **state)
{
	struct lapic *a = apic[0];

	(void)state;
	enable_all();
	/* Sending a vector below 16 fails at the sender. */
	icr(a, 1, 0x05);
	assert_int_equal(irr_count(apic[1]), 0);
	assert_int_equal(esr(a), LAPIC_ESR_SEND_ILLEGAL);
	assert_int_equal(esr(apic[1]), 0);
	/* ... NMI carries no vector, so 0 is fine there. */
	icr(a, 1, 0x400);
	assert_int_equal(esr(a), 0);
	/* Receiving one (IOAPIC, MSI) fails at the receiver, and raises the error LVT. */
	lapic_write(apic[1], LAPIC_LVT_ERROR, 0xee);
	assert_int_equal(fixed(0x03, 1), 0);
	assert_int_equal(lapic_pending(apic[1]), 0xee);
	assert_int_equal(esr(apic[1]), LAPIC_ESR_RECV_ILLEGAL);
	/* ESR: write latches and clears, reads repeat the latch. */
	assert_int_equal(esr(apic[1]), 0);
	/* A local vector below 16 is a receive error too. */
	lapic_write(apic[2], LAPIC_LVT_ERROR, 0x02);
	icr(apic[2], 1, 0x07);
	lapic_write(apic[2], LAPIC_ESR, 0);
	assert_int_equal(lapic_read(apic[2], LAPIC_ESR),
			 LAPIC_ESR_SEND_ILLEGAL | LAPIC_ESR_RECV_ILLEGAL);
	assert_int_equal(lapic_read(apic[2], LAPIC_ESR),
			 LAPIC_ESR_SEND_ILLEGAL | LAPIC_ESR_RECV_ILLEGAL);
	assert_int_equal(irr_count(apic[2]), 0);
}

/* ---- The timer ---- */

static void test_timer_oneshot(void **state)
{
	struct lapic *a = apic[0];
	struct lapic_stats s;
	uint32_t c1, c2;
	uint64_t end;

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_ONESHOT | 0x40);
	lapic_write(a, LAPIC_TDCR, 0xb);                 /* divide by 1 */
	lapic_write(a, LAPIC_TMICT, 20000000);           /* 20 ms */
	c1 = lapic_read(a, LAPIC_TMCCT);
	assert_true(c1 <= 20000000 && c1 > 0);
	end = now_ns() + WAIT_NS;
	while ((c2 = lapic_read(a, LAPIC_TMCCT)) == c1 && now_ns() < end)
		;
	assert_true(c2 < c1);
	assert_int_equal(wait_pending(a, 0x40), 0x40);
	assert_int_equal(lapic_read(a, LAPIC_TMCCT), 0);
	assert_int_equal(take(a), 0x40);
	/* One shot only. */
	usleep(30000);
	assert_int_equal(lapic_pending(a), -1);
	lapic_get_stats(a, &s);
	assert_int_equal(s.timer_fired, 1);
	/* A masked timer counts but does not interrupt. */
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | 0x40);
	lapic_write(a, LAPIC_TMICT, 100000);
	end = now_ns() + WAIT_NS;
	do
		lapic_get_stats(a, &s);
	while (s.timer_fired < 2 && now_ns() < end);
	assert_int_equal(s.timer_fired, 2);
	assert_int_equal(lapic_pending(a), -1);
	/* Writing 0 stops a running count. */
	lapic_write(a, LAPIC_LVT_TIMER, 0x40);
	lapic_write(a, LAPIC_TMICT, 50000000);
	lapic_write(a, LAPIC_TMICT, 0);
	assert_int_equal(lapic_read(a, LAPIC_TMCCT), 0);
}

static void test_timer_periodic(void **state)
{
	struct lapic *a = apic[1];
	struct lapic_stats s;
	uint64_t stopped;

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | 0x41);
	lapic_write(a, LAPIC_TDCR, 0x3);                 /* divide by 16 */
	lapic_write(a, LAPIC_TMICT, 125000);             /* 2 ms */
	for (unsigned n = 0; n < 5; n++) {
		assert_int_equal(wait_pending(a, 0x41), 0x41);
		assert_int_equal(take(a), 0x41);
		/* The count reloads: never 0 while periodic. */
		assert_true(lapic_read(a, LAPIC_TMCCT) > 0);
		assert_true(lapic_read(a, LAPIC_TMCCT) <= 125000);
	}
	lapic_write(a, LAPIC_TMICT, 0);
	lapic_get_stats(a, &s);
	stopped = s.timer_fired;
	assert_true(stopped >= 5);
	usleep(20000);
	lapic_get_stats(a, &s);
	/* An expiry the timer thread had taken before the stop may still land. */
	assert_true(s.timer_fired <= stopped + 1);
	/* A mode change disarms. */
	lapic_write(a, LAPIC_TMICT, 125000);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_ONESHOT | 0x41);
	assert_int_equal(lapic_read(a, LAPIC_TMICT), 0);
	assert_int_equal(lapic_read(a, LAPIC_TMCCT), 0);
}

/* The count falls at 1 GHz / divisor: bracketed by clock reads, not timed. */
static void check_divider(struct lapic *a, uint32_t tdcr, uint64_t div)
{
	uint64_t t0, t1, t2, t3;
	uint32_t c1, c2;

	lapic_write(a, LAPIC_TDCR, tdcr);
	lapic_write(a, LAPIC_TMICT, 0xffffffff);
	t0 = vm_clock_ns(&vm);
	c1 = lapic_read(a, LAPIC_TMCCT);
	t1 = vm_clock_ns(&vm);
	usleep(3000);
	t2 = vm_clock_ns(&vm);
	c2 = lapic_read(a, LAPIC_TMCCT);
	t3 = vm_clock_ns(&vm);
	assert_true(c2 > 0);
	assert_true((uint64_t)(c1 - c2) + 1 >= (t2 - t1) / div);
	assert_true((uint64_t)(c1 - c2) <= (t3 - t0) / div + 1);
}

static void test_timer_divide(void **state)
{
	static const struct { uint32_t tdcr; uint64_t div; } d[] = {
		{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
		{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
	};
	struct lapic *a = apic[2];
	uint32_t before, after;

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED);
	for (unsigned i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		check_divider(a, d[i].tdcr, d[i].div);
	/* A new divider continues from the current count. */
	lapic_write(a, LAPIC_TDCR, 0xa);
	lapic_write(a, LAPIC_TMICT, 1000000);
	before = lapic_read(a, LAPIC_TMCCT);
	lapic_write(a, LAPIC_TDCR, 0x9);
	after = lapic_read(a, LAPIC_TMCCT);
	assert_true(after <= before && after + 1000 > before);
}

static void test_timer_tsc_deadline(void **state)
{
	struct lapic *a = apic[3];
	uint64_t deadline;

	(void)state;
	enable(a);
	/* Outside TSC-deadline mode the MSR reads 0 and ignores writes. */
	msr_rw(a, true, MSR_IA32_TSC_DEADLINE, vm_clock_ns(&vm) + 1000, NULL);
	assert_int_equal(msr_rw(a, false, MSR_IA32_TSC_DEADLINE, 0, NULL), 0);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_TSC | 0x42);
	assert_int_equal(lapic_read(a, LAPIC_LVT_TIMER), LAPIC_TIMER_TSC | 0x42);
	/* Without a tsc_to_ns hook the TSC counts VM nanoseconds. */
	deadline = vm_clock_ns(&vm) + 5000000;
	msr_rw(a, true, MSR_IA32_TSC_DEADLINE, deadline, NULL);
	assert_int_equal(msr_rw(a, false, MSR_IA32_TSC_DEADLINE, 0, NULL), deadline);
	/* TMICT is ignored, the count reads 0. */
	lapic_write(a, LAPIC_TMICT, 1000);
	assert_int_equal(lapic_read(a, LAPIC_TMICT), 0);
	assert_int_equal(lapic_read(a, LAPIC_TMCCT), 0);
	assert_int_equal(wait_pending(a, 0x42), 0x42);
	assert_true(vm_clock_ns(&vm) >= deadline);
	/* Fired: the MSR reads 0 again. */
	assert_int_equal(msr_rw(a, false, MSR_IA32_TSC_DEADLINE, 0, NULL), 0);
	assert_int_equal(take(a), 0x42);
	/* A deadline in the past fires at once; 0 disarms. */
	msr_rw(a, true, MSR_IA32_TSC_DEADLINE, 1, NULL);
	assert_int_equal(wait_pending(a, 0x42), 0x42);
	assert_int_equal(take(a), 0x42);
	msr_rw(a, true, MSR_IA32_TSC_DEADLINE, vm_clock_ns(&vm) + 5000000, NULL);
	msr_rw(a, true, MSR_IA32_TSC_DEADLINE, 0, NULL);
	assert_int_equal(msr_rw(a, false, MSR_IA32_TSC_DEADLINE, 0, NULL), 0);
	usleep(10000);
	assert_int_equal(lapic_pending(a), -1);
}

/*
 * The owner reprograms a fast periodic timer while the timer thread fires
 * it: no expiry may go missing for good, nothing may fire after the stop
 * settles (and TSan watches the hand-off).
 */
static void test_timer_reprogram_race(void **state)
{
	struct lapic *a = apic[0];
	struct lapic_stats s;
	uint64_t stopped;

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | 0x43);
	lapic_write(a, LAPIC_TDCR, 0xb);
	for (unsigned n = 0; n < 2000; n++) {
		lapic_write(a, LAPIC_TMICT, 100000 + (n % 7) * 10000);
		if (n % 3 == 0)
			lapic_write(a, LAPIC_TDCR, n % 2 ? 0xb : 0x0);
		while (take(a) >= 0)
			;
		if (n % 50 == 0)
			usleep(200);
	}
	/* Still running after all that. */
	assert_int_equal(wait_pending(a, 0x43), 0x43);
	assert_int_equal(take(a), 0x43);
	lapic_write(a, LAPIC_TMICT, 0);
	lapic_get_stats(a, &s);
	stopped = s.timer_fired;
	usleep(20000);
	lapic_get_stats(a, &s);
	assert_true(s.timer_fired <= stopped + 1);
}

/* Holds the timer thread inside an expiry, before it reaches the LAPIC. */
enum { STALL_OFF, STALL_ARMED, STALL_HELD, STALL_RELEASE };
static _Atomic int stall;

static bool stall_timer(void *dev, void *msg)
{
	int armed = STALL_ARMED;

	(void)dev;
	(void)msg;
	if (atomic_compare_exchange_strong(&stall, &armed, STALL_HELD))
		while (atomic_load(&stall) != STALL_RELEASE)
			sched_yield();
	return false;
}

/*
 * An expiry that passed while the timer thread was late is delivered by
 * the owner's next reprogramming, and the late timer thread then neither
 * delivers it again nor loses the new arming.
 */
static void test_timer_handoff(void **state)
{
	struct lapic *a = apic[0];
	struct lapic_stats s;
	uint64_t end = now_ns() + WAIT_NS;
	int before, took;
	bool held;

	(void)state;
	atomic_store(&stall, STALL_ARMED);
	assert_int_equal(bus_attach(vm.bus.timer, stall_timer, bus_claim_always, NULL), 0);
	enable(a);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_ONESHOT | 0x45);
	lapic_write(a, LAPIC_TDCR, 0xb);
	lapic_write(a, LAPIC_TMICT, 1000000);
	while (atomic_load(&stall) != STALL_HELD && now_ns() < end)
		usleep(50);
	held = atomic_load(&stall) == STALL_HELD;
	before = lapic_pending(a);
	lapic_write(a, LAPIC_TMICT, 5000000);
	lapic_get_stats(a, &s);
	took = take(a);
	/* Let the timer thread go before asserting: teardown waits for it. */
	atomic_store(&stall, STALL_RELEASE);
	assert_true(held);
	assert_int_equal(before, -1);
	assert_int_equal(s.timer_fired, 1);
	assert_int_equal(took, 0x45);
	/* The second count still expires, once. */
	assert_int_equal(wait_pending(a, 0x45), 0x45);
	assert_int_equal(take(a), 0x45);
	usleep(10000);
	assert_int_equal(lapic_pending(a), -1);
	lapic_get_stats(a, &s);
	assert_int_equal(s.timer_fired, 2);
	assert_int_equal(bus_detach(vm.bus.timer, stall_timer, NULL), 0);
}

/* ---- The base MSR, global disable, ExtINT ---- */

static void legacy(uint8_t type)
{
	struct msg_legacy m = { .type = type };

	bus_send(vm.bus.legacy, &m, BUS_LIFO);
}

static void test_apic_base_msr(void **state)
{
	struct lapic *a = apic[0];
	bool fault, handled;

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_TPR, 0x20);
	/* Reserved bits and x2APIC enable fault. */
	msr_rw(a, true, MSR_IA32_APIC_BASE, 0xfee00900 | 0x400, &fault);
	assert_true(fault);
	msr_rw(a, true, MSR_IA32_APIC_BASE, 0xfee00900 | 0x1, &fault);
	assert_true(fault);
	/* BSP is read-only here. */
	msr_rw(a, true, MSR_IA32_APIC_BASE, 0xfee00800, NULL);
	assert_int_equal(msr_rw(a, false, MSR_IA32_APIC_BASE, 0, NULL), 0xfee00900);
	/* Global disable: the page reads all ones and ignores writes. */
	msr_rw(a, true, MSR_IA32_APIC_BASE, 0xfee00100, NULL);
	assert_int_equal(msr_rw(a, false, MSR_IA32_APIC_BASE, 0, NULL), 0xfee00100);
	assert_int_equal(mmio_read(0, LAPIC_VER, 4, &handled), 0xffffffff);
	assert_int_equal(mmio_read(0, LAPIC_TPR, 1, &handled), 0xff);
	mmio_write(0, LAPIC_SVR, 4, 0x1ff);
	/* ... and takes no interrupts, not even NMIs. */
	assert_int_equal(fixed(0x50, 0), 0);
	assert_int_equal(send(0, APIC_DM_NMI, APIC_SH_NONE, false, false, 0, UINT32_MAX), 0);
	assert_int_equal(atomic_load(&cpu[0].nmi), 0);
	/* The 8259's INTR goes straight to the CPU. */
	assert_int_equal(lapic_pending(a), -1);
	legacy(LEGACY_INTR);
	assert_true(atomic_load(&cpu[0].irq) >= 1);
	assert_int_equal(lapic_pending(a), LAPIC_TOKEN_EXTINT);
	assert_int_equal(lapic_acknowledge(a, LAPIC_TOKEN_EXTINT), pic_vector);
	assert_int_equal(atomic_load(&inta_count), 1);
	legacy(LEGACY_DEASSERT_INTR);
	assert_int_equal(lapic_pending(a), -1);
	/* Re-enabled: back in the power-up state. */
	msr_rw(a, true, MSR_IA32_APIC_BASE, 0xfee00900, NULL);
	assert_int_equal(mmio_read(0, LAPIC_SVR, 4, &handled), 0xff);
	assert_int_equal(lapic_read(a, LAPIC_TPR), 0);
	assert_int_equal(lapic_read(a, LAPIC_VER), 0x00050014);
	/* INTR is no longer wired through: LINT0 is masked now. */
	legacy(LEGACY_INTR);
	assert_int_equal(lapic_pending(a), -1);
	legacy(LEGACY_DEASSERT_INTR);
	/* An AP's base has no BSP flag. */
	assert_int_equal(msr_rw(apic[1], false, MSR_IA32_APIC_BASE, 0, NULL), 0xfee00800);
	/* Other MSRs are not ours. */
	struct msg_cpu m = { .type = CPU_MSG_RDMSR, .index = 0x10 };
	assert_false(lapic_msr(a, &m));
}

static void test_extint_lint0(void **state)
{
	struct lapic *a = apic[0];
	unsigned kicks;

	(void)state;
	enable_all();
	/* Virtual wire: LINT0 in ExtINT mode. */
	lapic_write(a, LAPIC_LVT_LINT0, 0x700);
	kicks = atomic_load(&cpu[0].irq);
	legacy(LEGACY_INTR);
	assert_int_equal(atomic_load(&cpu[0].irq), kicks + 1);
	/* ExtINT ignores TPR. */
	lapic_write(a, LAPIC_TPR, 0xf0);
	assert_int_equal(lapic_pending(a), LAPIC_TOKEN_EXTINT);
	assert_int_equal(lapic_acknowledge(a, LAPIC_TOKEN_EXTINT), pic_vector);
	/* INTR still high: still pending. */
	assert_int_equal(lapic_pending(a), LAPIC_TOKEN_EXTINT);
	legacy(LEGACY_DEASSERT_INTR);
	assert_int_equal(lapic_pending(a), -1);
	/*
	 * A stale high INTR (its de-assert still on its way) is checked with
	 * the PIC: no spurious ExtINT while the PIC's output is low.
	 */
	legacy(LEGACY_INTR);
	atomic_store(&fake_pic_level, false);
	assert_int_equal(lapic_pending(a), -1);
	atomic_store(&fake_pic_level, true);
	assert_int_equal(lapic_pending(a), LAPIC_TOKEN_EXTINT);
	legacy(LEGACY_DEASSERT_INTR);
	/* A nudge (INTR while already high) notifies again in ExtINT mode. */
	legacy(LEGACY_INTR);
	assert_int_equal(lapic_pending(a), LAPIC_TOKEN_EXTINT);   /* the owner looked */
	kicks = atomic_load(&cpu[0].irq);
	legacy(LEGACY_INTR);
	assert_int_equal(atomic_load(&cpu[0].irq), kicks + 1);
	legacy(LEGACY_DEASSERT_INTR);
	lapic_write(a, LAPIC_TPR, 0);
	/* Masked LINT0: INTR is not seen. */
	lapic_write(a, LAPIC_LVT_LINT0, LAPIC_LVT_MASKED | 0x700);
	legacy(LEGACY_INTR);
	assert_int_equal(lapic_pending(a), -1);
	legacy(LEGACY_DEASSERT_INTR);
	/* LINT0 in fixed mode: INTR's rising edge posts the vector. */
	lapic_write(a, LAPIC_LVT_LINT0, 0x35);
	legacy(LEGACY_INTR);
	legacy(LEGACY_INTR);
	assert_int_equal(take(a), 0x35);
	assert_int_equal(take(a), -1);
	legacy(LEGACY_DEASSERT_INTR);
	/* LINT0 in NMI mode. */
	lapic_write(a, LAPIC_LVT_LINT0, 0x400);
	legacy(LEGACY_INTR);
	assert_int_equal(atomic_load(&cpu[0].nmi), 1);
	legacy(LEGACY_DEASSERT_INTR);
	/* Only the BSP's LINT0 is wired. */
	lapic_write(apic[1], LAPIC_LVT_LINT0, 0x700);
	legacy(LEGACY_INTR);
	assert_int_equal(lapic_pending(apic[1]), -1);
	legacy(LEGACY_DEASSERT_INTR);
	/* An ExtINT delivery (an IOAPIC pin in ExtINT mode) to an AP. */
	assert_int_equal(send(0, APIC_DM_EXTINT, APIC_SH_NONE, false, false, 2, UINT32_MAX), 1);
	assert_int_equal(lapic_pending(apic[2]), LAPIC_TOKEN_EXTINT);
	assert_int_equal(lapic_acknowledge(apic[2], LAPIC_TOKEN_EXTINT), pic_vector);
	assert_int_equal(lapic_pending(apic[2]), -1);
	assert_int_equal(atomic_load(&inta_count), 2);
}

static void test_init_reset(void **state)
{
	struct lapic *a = apic[1];
	struct lapic_stats s;

	(void)state;
	enable(a);
	lapic_write(a, LAPIC_LDR, 0x04000000);
	lapic_write(a, LAPIC_TPR, 0x10);
	lapic_write(a, LAPIC_LVT_TIMER, LAPIC_TIMER_PERIODIC | 0x44);
	lapic_write(a, LAPIC_TMICT, 1000000);
	fixed(0x80, 1);
	fixed(0x90, 1);
	assert_int_equal(lapic_acknowledge(a, lapic_pending(a)), 0x90);
	lapic_reset(a);
	assert_int_equal(lapic_read(a, LAPIC_ID), 1u << 24);
	assert_int_equal(lapic_read(a, LAPIC_LDR), 0);
	assert_int_equal(lapic_read(a, LAPIC_TPR), 0);
	assert_int_equal(lapic_read(a, LAPIC_SVR), 0xff);
	assert_int_equal(lapic_read(a, LAPIC_LVT_TIMER), LAPIC_LVT_MASKED);
	assert_int_equal(lapic_read(a, LAPIC_TMICT), 0);
	assert_false(in_isr(a, 0x90));
	assert_false(in_irr(a, 0x80));
	assert_int_equal(lapic_pending(a), -1);
	assert_int_equal(msr_rw(a, false, MSR_IA32_APIC_BASE, 0, NULL), 0xfee00800);
	lapic_get_stats(a, &s);
	usleep(5000);
	assert_int_equal(lapic_pending(a), -1);
	lapic_dump(a, stderr);
}

/* ---- Concurrent senders ---- */

#define SENDERS 4
#define SENDS 4000
#define VECS_PER_SENDER 4

struct race {
	_Atomic unsigned acked[256];
	_Atomic bool failed;
	_Atomic unsigned ready, done;
	bool wait_for_ack;
};

static uint8_t race_vector(unsigned sender, unsigned k)
{
	/* All in one 64-bit pending word: the senders fight over its cache line. */
	return (uint8_t)(0x40 + sender * VECS_PER_SENDER + k);
}

static void *race_sender(void *arg)
{
	struct race *r = arg;
	unsigned id = atomic_fetch_add(&r->ready, 1), sent[VECS_PER_SENDER] = { 0 };
	uint64_t end = now_ns() + WAIT_NS;

	bus_thread_enter();
	for (unsigned i = 0; i < SENDS && !atomic_load(&r->failed); i++) {
		unsigned k = i % VECS_PER_SENDER;
		uint8_t v = race_vector(id, k);

		/* Wait for our previous send of @v to be acknowledged. */
		while (r->wait_for_ack && atomic_load(&r->acked[v]) != sent[k]) {
			if (now_ns() > end) {
				atomic_store(&r->failed, true);
				break;
			}
			sched_yield();
		}
		send(v, APIC_DM_FIXED, APIC_SH_NONE, false, false, 0, UINT32_MAX);
		sent[k]++;
	}
	atomic_fetch_add(&r->done, 1);
	bus_thread_exit();
	return NULL;
}

/*
 * The owner does what the vCPU loop does: take the kick, fold and inject
 * what is pending, EOI it.  It sleeps only on kicks, so a lost kick hangs
 * it until the deadline and fails the test.
 */
static unsigned race_owner(struct race *r, struct lapic *a, struct fake_cpu *c, unsigned expect)
{
	uint64_t end = now_ns() + WAIT_NS;
	unsigned total = 0;

	while (total < expect && now_ns() < end) {
		int t = lapic_pending(a), v;

		if (t < 0) {
			while (!(atomic_exchange(&c->events, 0) & VCPU_EV_IRQ) && now_ns() < end)
				sched_yield();
			continue;
		}
		v = lapic_acknowledge(a, t);
		assert_true(v >= 0);
		atomic_fetch_add(&r->acked[v], 1);
		total++;
		lapic_eoi(a);
	}
	return total;
}

static void test_concurrent_senders_exactly_once(void **state)
{
	static struct race r;
	pthread_t th[SENDERS];
	struct lapic_stats s;
	unsigned total;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.wait_for_ack = true;
	enable(apic[0]);
	for (unsigned i = 0; i < SENDERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_sender, &r), 0);
	total = race_owner(&r, apic[0], &cpu[0], SENDERS * SENDS);
	for (unsigned i = 0; i < SENDERS; i++)
		pthread_join(th[i], NULL);
	assert_false(atomic_load(&r.failed));
	assert_int_equal(total, SENDERS * SENDS);
	for (unsigned v = 0; v < 256; v++) {
		bool ours = v >= 0x40 && v < 0x40 + SENDERS * VECS_PER_SENDER;

		assert_int_equal(atomic_load(&r.acked[v]), ours ? SENDS / VECS_PER_SENDER : 0);
	}
	lapic_get_stats(apic[0], &s);
	assert_int_equal(s.posted, SENDERS * SENDS);
	assert_int_equal(s.coalesced, 0);
	assert_int_equal(s.acked, SENDERS * SENDS);
	assert_int_equal(lapic_pending(apic[0]), -1);
	/* One kick per 0 -> 1 flip of the notification flag: at most one per send. */
	assert_true(atomic_load(&cpu[0].irq) <= SENDERS * SENDS);
}

/*
 * Senders do not wait: two sends of a vector before the owner folds it
 * coalesce into one IRR bit, as on hardware.  Every send must be either
 * acknowledged or counted as coalesced (by the atomic that found the bit
 * already set), never lost.
 */
static void test_concurrent_senders_coalescing(void **state)
{
	static struct race r;
	pthread_t th[SENDERS];
	struct lapic_stats s;
	unsigned total = 0;
	uint64_t end = now_ns() + WAIT_NS;
	int v;

	(void)state;
	memset(&r, 0, sizeof(r));
	enable(apic[0]);
	for (unsigned i = 0; i < SENDERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, race_sender, &r), 0);
	while (atomic_load(&r.done) < SENDERS && now_ns() < end) {
		if ((v = take(apic[0])) >= 0) {
			atomic_fetch_add(&r.acked[v], 1);
			total++;
		} else {
			sched_yield();
		}
	}
	for (unsigned i = 0; i < SENDERS; i++)
		pthread_join(th[i], NULL);
	/* Every post happened before its sender counted itself done. */
	while ((v = take(apic[0])) >= 0) {
		atomic_fetch_add(&r.acked[v], 1);
		total++;
	}
	lapic_get_stats(apic[0], &s);
	assert_int_equal(total + s.coalesced, SENDERS * SENDS);
	assert_int_equal(s.acked, total);
	for (unsigned i = 0; i < SENDERS; i++)
		for (unsigned k = 0; k < VECS_PER_SENDER; k++)
			assert_true(atomic_load(&r.acked[race_vector(i, k)]) >= 1);
	assert_int_equal(lapic_pending(apic[0]), -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reset_values),
		T(test_write_masks),
		T(test_mmio_sizes),
		T(test_id_write_moves_physical_destination),
		T(test_tpr_ppr_apr),
		T(test_priority_order),
		T(test_eoi_broadcast_level_only),
		T(test_svr_disable),
		T(test_icr_delivery_modes),
		T(test_shorthands),
		T(test_logical_flat_and_cluster),
		T(test_lowest_priority),
		T(test_illegal_vectors),
		T(test_timer_oneshot),
		T(test_timer_periodic),
		T(test_timer_divide),
		T(test_timer_tsc_deadline),
		T(test_timer_reprogram_race),
		T(test_timer_handoff),
		T(test_apic_base_msr),
		T(test_extint_lint0),
		T(test_init_reset),
		T(test_concurrent_senders_exactly_once),
		T(test_concurrent_senders_coalescing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
