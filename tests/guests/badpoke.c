/*
 * A bad guest: every CPU writes pseudo-random values to pseudo-random
 * ports and MMIO addresses (the PCI hole, beyond RAM, the LAPIC and I/O
 * APIC pages) and reads from others.  The point is that the VMM survives
 * and keeps working: afterwards the test device, fw_cfg, the console and
 * IPIs to every CPU must still answer.
 *
 * Spared, because the guest itself would stop, not the VMM: the debug-exit
 * port (0xf0-0xf7) and COM1 (0x3f0-0x3ff, our console), reset ports (0x64,
 * 0x92, 0xcf9), our own RAM, the LAPIC's ICR (an INIT to ourselves would
 * park us for good), and anything that could route a device interrupt as
 * INIT or NMI: LVT writes are forced masked, only the BSP touches the I/O
 * APIC, with whole-register accesses that keep every entry masked.
 * Interrupts stay disabled while poking; what the pokes raised anyway
 * (a timer, the PIC) is counted and EOIed afterwards.
 *
 * Command line: rounds=N per CPU (1500), seed=N.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"
#include "watchdog.h"

#define TESTDEV_PORT 0xe0
#define TESTDEV_ID   0x56454454u

static uint32_t rounds = 1500, seed = 12345;
static unsigned ncpus;
static uint64_t ram_size;
static volatile uint32_t n_port[SMP_MAX_CPUS], n_mmio[SMP_MAX_CPUS], stray_irqs;
static volatile uint32_t answered[SMP_MAX_CPUS];

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void stray_handler(struct irq_frame *f)
{
	(void)f;
	atomic_inc(&stray_irqs);
	apic_eoi();
}

static bool port_spared(unsigned port, unsigned size)
{
	unsigned end = port + size - 1;

	return (end >= 0xf0 && port <= 0xf7) || (end >= 0x3f0 && port <= 0x3ff) ||
	       (port <= 0x64 && end >= 0x64) || (port <= 0x92 && end >= 0x92) ||
	       (port <= 0xcf9 && end >= 0xcf9) || end > 0xffff;
}

static void poke_port(uint32_t *s)
{
	unsigned size = 1u << (rnd(s) % 3), port = rnd(s) & 0xffff;
	uint32_t v = rnd(s);

	/* Half the time somewhere a device sits. */
	if (rnd(s) & 1) {
		static const uint16_t busy[] = { 0x20, 0x40, 0x60, 0x70, 0xa0, 0xe0, 0x4d0, 0x510 };

		port = busy[rnd(s) % 8] + rnd(s) % 4;
	}
	if (port_spared(port, size))
		return;
	n_port[smp_cpu_id()]++;
	if (rnd(s) % 3 == 0) {
		switch (size) {
		case 1: (void)inb(port); break;
		case 2: (void)inw(port); break;
		default: (void)inl(port); break;
		}
		return;
	}
	switch (size) {
	case 1: outb(port, v); break;
	case 2: outw(port, v); break;
	default: outl(port, v); break;
	}
}

static void mmio_access(uintptr_t a, unsigned size, bool write, uint32_t v)
{
	n_mmio[smp_cpu_id()]++;
	if (write) {
		switch (size) {
		case 1: mmio_write8(a, v); break;
		case 2: mmio_write16(a, v); break;
		default: mmio_write32(a, v); break;
		}
		return;
	}
	switch (size) {
	case 1: (void)mmio_read8(a); break;
	case 2: (void)mmio_read16(a); break;
	default: (void)mmio_read32(a); break;
	}
}

static bool lvt_reg(unsigned off)
{
	return off >= APIC_LVT_TIMER && off <= APIC_LVT_ERROR + 0xf;
}

/* The LAPIC page, anything but the ICR; LVT entries stay masked. */
static void poke_lapic(uint32_t *s)
{
	unsigned size = 1u << (rnd(s) % 3);
	unsigned off = (rnd(s) % 0x1000) & ~(size - 1);
	bool write = rnd(s) & 1;
	uint32_t v = rnd(s);

	if ((off & ~0xfu) == APIC_ICR_LO)
		return;
	if (lvt_reg(off & ~0xfu)) {
		if (!write) {
			mmio_access(APIC_BASE + off, size, false, 0);
			return;
		}
		/* Whole-register writes only, masked. */
		size = 4;
		off &= ~0xfu;
		v |= LVT_MASKED;
	}
	mmio_access(APIC_BASE + off, size, write, v);
}

/* The I/O APIC (BSP only): registers through the window, entries masked. */
static void poke_ioapic(uint32_t *s)
{
	unsigned reg = rnd(s) & 0xff;
	uint32_t v = rnd(s);

	switch (rnd(s) % 4) {
	case 0:
		/* Low halves of redirection entries keep the mask bit. */
		if (reg >= 0x10 && reg < 0x10 + 2 * 24 && !(reg & 1))
			v |= (uint32_t)RTE_MASKED;
		n_mmio[0] += 2;
		ioapic_write(reg, v);
		break;
	case 1:
		n_mmio[0] += 2;
		(void)ioapic_read(reg);
		break;
	case 2:
		mmio_access(IOAPIC_BASE + IOAPIC_EOIR, 4, true, v & 0xff);
		break;
	default: {
		/* Elsewhere in the page: nothing there. */
		unsigned size = 1u << (rnd(s) % 3);
		unsigned off = 0x44 + rnd(s) % (0x1000 - 0x48);

		mmio_access(IOAPIC_BASE + (off & ~(size - 1)), size, rnd(s) & 1, v);
		break;
	}
	}
}

static void poke_mmio(uint32_t *s)
{
	unsigned size = 1u << (rnd(s) % 3);
	uint32_t r = rnd(s), v = rnd(s);
	uintptr_t a;

	switch (r % 5) {
	case 0:   /* the PCI hole, outside the APIC pages */
		a = 0xc0000000u + (rnd(s) % 0x3ec00000u);
		break;
	case 1:   /* just below the LAPIC and around the I/O APIC */
		a = 0xfe000000u + rnd(s) % 0xe00000u;
		break;
	case 2:   /* beyond RAM */
		if (ram_size >= 0xc0000000u)
			return;
		a = (uintptr_t)ram_size + rnd(s) % (0xc0000000u - (uint32_t)ram_size);
		break;
	case 3:
		poke_lapic(s);
		return;
	default:
		if (smp_cpu_id() == 0)
			poke_ioapic(s);
		else
			poke_lapic(s);
		return;
	}
	a &= ~(uintptr_t)(size - 1);
	if ((a & ~0xfffu) == APIC_BASE || (a & ~0xfffu) == IOAPIC_BASE)
		return;
	mmio_access(a, size, (r >> 8) & 1, v);
}

/* Put this CPU's LAPIC back the way the tests need it. */
static void lapic_restore(unsigned cpu)
{
	apic_write(APIC_ID, cpu << 24);     /* writable, and the pokes may have */
	apic_write(APIC_TMICT, 0);
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_LVT_LINT0, LVT_MASKED);
	apic_write(APIC_LVT_LINT1, LVT_MASKED);
	apic_write(APIC_LVT_ERROR, LVT_MASKED);
	apic_write(APIC_LVT_THERMAL, LVT_MASKED);
	apic_write(APIC_LVT_PERF, LVT_MASKED);
	apic_write(APIC_TPR, 0);
	apic_write(APIC_DFR, 0xffffffff);
	apic_write(APIC_LDR, 0);
	apic_sw_enable();
	(void)apic_esr();
}

static void poke_run(void *arg)
{
	unsigned cpu = smp_cpu_id();
	uint32_t s = seed * 2654435761u + cpu * 40503u + 1;

	(void)arg;
	irq_disable();
	for (uint32_t i = 0; i < rounds; i++) {
		if (rnd(&s) % 5 < 2)
			poke_port(&s);
		else
			poke_mmio(&s);
	}
	lapic_restore(cpu);
	irq_enable();
}

static void answer(void *arg)
{
	(void)arg;
	answered[smp_cpu_id()] = apic_id() + 1;
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("badpoke", magic, mbi);
	uint32_t id, ports = 0, mmios = 0;

	cmdline_uint(args, "rounds", &rounds);
	cmdline_uint(args, "seed", &seed);
	smp_init();
	ncpus = fw_cfg_cpus();
	ram_size = fw_cfg_ram_size();
	for (unsigned v = 0x20; v < 0x100; v++)
		if (v != VEC_WAKE && v != VEC_WATCHDOG)
			idt_set_handler(v, stray_handler);
	if (smp_boot(ncpus) != ncpus)
		test_fail("%u CPUs online, want %u", smp_online, ncpus);
	printf("%u CPUs, %llu MiB of RAM, %u pokes per CPU, seed %u\n", ncpus,
	       (unsigned long long)(ram_size >> 20), rounds, seed);

	smp_call_all(poke_run, NULL);
	irq_disable();
	/* Quiet the legacy devices again; every I/O APIC entry masked. */
	pic_init(0x20, 0x28, false);
	pit_ch0_quiet();
	outb(PORT_61, 0);
	for (unsigned pin = 0; pin < 24; pin++)
		ioapic_set_rte(pin, RTE_MASKED);
	for (unsigned c = 0; c < ncpus; c++) {
		ports += n_port[c];
		mmios += n_mmio[c];
	}
	printf("done: %u port and %u MMIO accesses\n", ports, mmios);

	/* Still alive?  (The watchdog turns a hang into a verdict.) */
	watchdog_start(30000, NULL);
	watchdog_phase("checking the devices and CPUs after the pokes");
	irq_enable();
	udelay(20000);
	id = inl(TESTDEV_PORT + 4);
	if (id != TESTDEV_ID)
		test_fail("test device ID reads 0x%x after the pokes, want 0x%x", id, TESTDEV_ID);
	if (!fw_cfg_present() || fw_cfg_cpus() != ncpus)
		test_fail("fw_cfg does not answer after the pokes");
	for (unsigned c = 1; c < ncpus; c++) {
		smp_call(c, answer, NULL);
		if (answered[c] != c + 1)
			test_fail("CPU %u answered %d", c, (int)answered[c] - 1);
	}
	watchdog_stop();
	irq_disable();
	printf("test device, fw_cfg and every CPU still answer (%u stray interrupts)\n",
	       stray_irqs);
	test_pass();
}
