/*
 * The PIT's IRQ 0 through the 8259 pair and through the I/O APIC, EOI
 * handling, and level-triggered retrigger with the UART's IRQ 4.
 *
 * 1. The I/O APIC's registers: version 0x20 with 24 entries, every entry
 *    masked at reset, the writable bits of an entry read back.
 * 2. PIT channel 0 at 1 kHz through the PIC (vectors 0x30/0x38) and the
 *    BSP's LINT0 in ExtINT mode: ticks over 100 ms, no more than 1 kHz
 *    allows, and no stream of spurious IRQ 7s.  A
 *    handler that skips its EOI blocks IRQ 0 (ISR bit 0 stays, the next
 *    edge waits in IRR) until the EOI, which lets the waiting one in.
 *    Specific EOI and auto-EOI mode; the IMR stops the ticks.
 * 3. The same through I/O APIC pin 2 (the ISA override), the PIC masked:
 *    ticks, the LAPIC's ISR/IRR while an EOI is outstanding, then (with
 *    two CPUs or more) routed to CPU 1 only, and lowest priority to all.
 * 4. Level retrigger: the UART raises IRQ 4 while its THR-empty interrupt
 *    is enabled (IER bit 1) and OUT2 is set.  With a level-triggered entry
 *    every EOI without clearing the source brings the interrupt back; the
 *    handler clears IER at the Nth one, so exactly N must arrive.  Remote
 *    IRR is set in the handler and clear afterwards, the TMR bit is set.
 *    With an edge-triggered entry the held line gives exactly one.  A
 *    level held while the entry is masked arrives at the unmask.
 * 5. The same level retrigger through the PIC (ELCR bit 4), and the edge
 *    case through it.
 *
 * Command line: retrigger=N (50).
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"
#include "watchdog.h"

#define PIC_BASE      0x30          /* IRQ n -> 0x30 + n, slave 0x38 + n */
#define VEC_PIC_PIT   (PIC_BASE + 0)
#define VEC_PIC_UART  (PIC_BASE + 4)
#define VEC_IO_PIT    0x62
#define VEC_IO_UART   0x64
#define PIT_1KHZ      1193          /* 1000.15 Hz */
#define WINDOW_MS     100

#define UART_IER      (COM1_PORT + 1)
#define UART_MCR      (COM1_PORT + 4)
#define IER_THRI      0x02
#define MCR_OUT2      0x08

static unsigned ncpus;
static uint32_t n_retrigger = 50;

static volatile uint32_t pit_ticks[SMP_MAX_CPUS];
static volatile uint32_t skip_eoi, eoi_mode;     /* 0 none-spec, 1 specific, 2 none (AEOI) */
static volatile uint32_t uart_irqs, uart_limit, uart_remote_irr, uart_tmr, spurious;

static void report(void)
{
	printf("PIT ticks CPU 0: %u, UART interrupts %u (limit %u), spurious %u\n",
	       pit_ticks[0], uart_irqs, uart_limit, spurious);
	printf("PIC IMR 0x%x ISR 0x%x IRR 0x%x, RTE2 0x%llx RTE4 0x%llx\n", pic_imr(), pic_isr(),
	       pic_irr(), (unsigned long long)ioapic_rte(2), (unsigned long long)ioapic_rte(4));
}

/* ---- Handlers ---- */

static void pic_pit_handler(struct irq_frame *f)
{
	(void)f;
	pit_ticks[smp_cpu_id()]++;
	if (skip_eoi) {
		skip_eoi = 0;
		return;
	}
	if (eoi_mode == 0)
		pic_eoi(0);
	else if (eoi_mode == 1)
		outb(PIC_MASTER_CMD, PIC_EOI_SPECIFIC | 0);
}

static void io_pit_handler(struct irq_frame *f)
{
	(void)f;
	pit_ticks[smp_cpu_id()]++;
	if (skip_eoi) {
		skip_eoi = 0;
		return;
	}
	apic_eoi();
}

/* UART through the I/O APIC: count, clear the source at the limit, EOI. */
static void io_uart_handler(struct irq_frame *f)
{
	uint32_t n = ++uart_irqs;

	if (ioapic_rte(4) & RTE_REMOTE_IRR)
		uart_remote_irr++;
	if (apic_vector_bit(APIC_TMR, f->vector))
		uart_tmr++;
	if (n >= uart_limit)
		outb(UART_IER, 0);
	apic_eoi();
}

static void pic_uart_handler(struct irq_frame *f)
{
	(void)f;
	if (++uart_irqs >= uart_limit)
		outb(UART_IER, 0);
	pic_eoi(4);
}

static void spurious_handler(struct irq_frame *f)
{
	(void)f;
	spurious++;   /* IRQ 7 / 15 with nothing in ISR: no EOI */
}

/* ---- Helpers ---- */

static uint32_t total_ticks(void)
{
	uint32_t t = 0;

	for (unsigned c = 0; c < ncpus; c++)
		t += atomic_read(&pit_ticks[c]);
	return t;
}

/* Halt for @ms with interrupts on (the ticks and the watchdog wake us). */
static void sleep_ms(unsigned ms)
{
	uint64_t end = deadline_ms(ms);

	irq_disable();
	while (!deadline_passed(end))
		irq_wait_disabled();
	irq_enable();
}

/*
 * Count ticks over WINDOW_MS: at least 2 (it ticks), at most what 1 kHz
 * allows (a starved vCPU sees fewer, merged, but never more).  Spurious
 * IRQ 7s are a PIC whose INTR message outlived the request: a few may
 * race, a stream of them is a bug.
 */
static void count_window(const char *what)
{
	uint32_t before = total_ticks(), sp = spurious, got, want;
	uint64_t t0 = rdtsc(), us;

	sleep_ms(WINDOW_MS);
	got = total_ticks() - before;
	sp = spurious - sp;
	us = tsc_to_us(rdtsc() - t0);
	want = (uint32_t)div64(us, 1000);
	printf("%s: %u ticks in %u us (%u spurious)\n", what, got, (unsigned)us, sp);
	if (got < 2 || got * 10 > want * 11 + 20)
		test_fail("%s: %u ticks in %u us, want 2 to %u", what, got, (unsigned)us,
			  (want * 11 + 20) / 10);
	if (sp > 5 + got / 4)
		test_fail("%s: %u spurious IRQ 7 for %u ticks", what, sp, got);
}

/* Wait (up to 5 s) for @p to reach @want. */
static void wait_for(volatile uint32_t *p, uint32_t want, const char *what)
{
	uint64_t end = deadline_ms(5000);

	while (atomic_read(p) < want)
		if (deadline_passed(end))
			test_fail("%s: count %u, want %u after 5 s", what, *p, want);
}

static bool pic_irr_bit0(void)
{
	return pic_irr() & 1;
}

static bool lapic_irr_pit(void)
{
	return apic_vector_bit(APIC_IRR, VEC_IO_PIT);
}

/* Spin (up to 5 s) until @cond holds. */
static void wait_bit(bool (*cond)(void), const char *what)
{
	uint64_t end = deadline_ms(5000);

	while (!cond())
		if (deadline_passed(end))
			test_fail("no %s after 5 s", what);
}

/* ---- 1. I/O APIC registers ---- */

static void check_ioapic_regs(void)
{
	uint32_t ver = ioapic_read(IOAPIC_REG_VER);
	uint64_t pattern = RTE_DEST(0xa5) | RTE_MASKED | RTE_LEVEL | RTE_ACTIVE_LOW |
			   RTE_LOGICAL | APIC_DM_LOWEST | 0x9c;

	printf("I/O APIC: ID 0x%x, version 0x%x\n", ioapic_read(IOAPIC_REG_ID), ver);
	if ((ver & 0xff) != 0x20 || ((ver >> 16) & 0xff) != 23)
		test_fail("I/O APIC version register 0x%x, want 0x00170020", ver);
	for (unsigned pin = 0; pin < 24; pin++)
		if (!(ioapic_rte(pin) & RTE_MASKED))
			test_fail("I/O APIC pin %u not masked at reset: 0x%llx", pin,
				  (unsigned long long)ioapic_rte(pin));
	ioapic_set_rte(10, pattern);
	if (ioapic_rte(10) != pattern)
		test_fail("I/O APIC entry 10 reads 0x%llx after writing 0x%llx",
			  (unsigned long long)ioapic_rte(10), (unsigned long long)pattern);
	ioapic_set_rte(10, RTE_MASKED);
}

/* ---- 2. PIT through the PIC ---- */

static void pit_via_pic(void)
{
	uint32_t t;

	pic_init(PIC_BASE, PIC_BASE + 8, false);
	apic_write(APIC_LVT_LINT0, APIC_DM_EXTINT);
	pit_ch0_start(2, PIT_1KHZ);
	pic_set_imr(0xffff & ~0x01);
	watchdog_phase("PIT through the PIC");
	count_window("PIC, non-specific EOI");

	/* A missing EOI holds IRQ 0 back; the next edge waits in IRR. */
	watchdog_phase("PIC EOI handling");
	irq_disable();
	skip_eoi = 1;
	t = pit_ticks[0];
	irq_enable();
	wait_for(&pit_ticks[0], t + 1, "PIC tick without EOI");
	wait_bit(pic_irr_bit0, "the next edge in the PIC's IRR");
	udelay(5000);
	if (pit_ticks[0] != t + 1 || !(pic_isr() & 1) || !(pic_irr() & 1))
		test_fail("PIC without EOI: %u more ticks (want 1), ISR 0x%x IRR 0x%x",
			  pit_ticks[0] - t, pic_isr(), pic_irr());
	pic_eoi(0);
	wait_for(&pit_ticks[0], t + 2, "PIC tick after the late EOI");
	printf("PIC: no EOI holds IRQ 0 in ISR, the next edge waits in IRR until the EOI\n");

	eoi_mode = 1;
	count_window("PIC, specific EOI");
	eoi_mode = 2;
	irq_disable();
	pic_init(PIC_BASE, PIC_BASE + 8, true);
	pic_set_imr(0xffff & ~0x01);
	irq_enable();
	count_window("PIC, auto-EOI");
	if (pic_isr())
		test_fail("PIC auto-EOI: ISR 0x%x", pic_isr());
	eoi_mode = 0;
	irq_disable();
	pic_init(PIC_BASE, PIC_BASE + 8, false);    /* all masked */
	irq_enable();
	sleep_ms(5);
	t = pit_ticks[0];
	sleep_ms(30);
	if (pit_ticks[0] != t)
		test_fail("PIC: %u ticks with IRQ 0 masked", pit_ticks[0] - t);
	apic_write(APIC_LVT_LINT0, LVT_MASKED | APIC_DM_EXTINT);
}

/* ---- 3. PIT through the I/O APIC ---- */

static void pit_via_ioapic(void)
{
	uint32_t t;

	ioapic_set_rte(2, RTE_DEST(0) | APIC_DM_FIXED | VEC_IO_PIT);
	watchdog_phase("PIT through the I/O APIC");
	count_window("I/O APIC pin 2 to CPU 0");

	watchdog_phase("I/O APIC EOI handling");
	irq_disable();
	skip_eoi = 1;
	t = pit_ticks[0];
	irq_enable();
	wait_for(&pit_ticks[0], t + 1, "I/O APIC tick without EOI");
	/* No HLT from here: with the EOI outstanding nothing would wake us. */
	wait_bit(lapic_irr_pit, "the next edge in the LAPIC's IRR");
	udelay(5000);
	irq_disable();
	if (pit_ticks[0] != t + 1 || !apic_vector_bit(APIC_ISR, VEC_IO_PIT) ||
	    !apic_vector_bit(APIC_IRR, VEC_IO_PIT))
		test_fail("LAPIC without EOI: %u more ticks (want 1), ISR %u IRR %u",
			  pit_ticks[0] - t, apic_vector_bit(APIC_ISR, VEC_IO_PIT),
			  apic_vector_bit(APIC_IRR, VEC_IO_PIT));
	apic_eoi();
	irq_enable();
	wait_for(&pit_ticks[0], t + 2, "I/O APIC tick after the late EOI");
	printf("LAPIC: no EOI holds the vector in ISR, the next edge waits in IRR\n");

	if (ncpus > 1) {
		uint32_t on0, on1;

		ioapic_set_rte(2, RTE_DEST(1) | APIC_DM_FIXED | VEC_IO_PIT);
		sleep_ms(5);
		on0 = pit_ticks[0];
		on1 = pit_ticks[1];
		count_window("I/O APIC pin 2 to CPU 1");
		if (pit_ticks[0] != on0 || pit_ticks[1] == on1)
			test_fail("pin 2 routed to CPU 1: CPU 0 got %u, CPU 1 %u",
				  pit_ticks[0] - on0, pit_ticks[1] - on1);
		/* Logical flat (set_logical), lowest priority over every CPU. */
		ioapic_set_rte(2, RTE_DEST((1u << ncpus) - 1) | RTE_LOGICAL | APIC_DM_LOWEST |
			       VEC_IO_PIT);
		count_window("I/O APIC pin 2, lowest priority to all");
	}
	ioapic_set_rte(2, RTE_MASKED | VEC_IO_PIT);
	sleep_ms(5);
	t = total_ticks();
	sleep_ms(30);
	if (total_ticks() != t)
		test_fail("I/O APIC: %u ticks with pin 2 masked", total_ticks() - t);
	pit_ch0_quiet();
}

static void set_logical(void *arg)
{
	(void)arg;
	apic_write(APIC_DFR, 0xffffffff);
	apic_write(APIC_LDR, (1u << smp_cpu_id()) << 24);
}

/* ---- 4. Level retrigger through the I/O APIC ---- */

/* Raise the UART's THRE interrupt until the handler clears it at @limit. */
static void uart_fire(uint32_t limit)
{
	uart_irqs = 0;
	uart_limit = limit;
	outb(UART_MCR, 0x03 | MCR_OUT2);
	outb(UART_IER, IER_THRI);
}

static void uart_quiet(void)
{
	outb(UART_IER, 0);
	outb(UART_MCR, 0x03);
}

static void level_via_ioapic(void)
{
	uint32_t got, rirr, tmr;

	watchdog_phase("UART level retrigger through the I/O APIC");
	uart_remote_irr = uart_tmr = 0;
	ioapic_set_rte(4, RTE_MASKED | RTE_LEVEL | RTE_DEST(0) | APIC_DM_FIXED | VEC_IO_UART);
	uart_fire(n_retrigger);
	ioapic_set_rte(4, RTE_LEVEL | RTE_DEST(0) | APIC_DM_FIXED | VEC_IO_UART);
	wait_for(&uart_irqs, n_retrigger, "level retrigger through the I/O APIC");
	sleep_ms(20);
	got = uart_irqs;
	rirr = uart_remote_irr;
	tmr = uart_tmr;
	uart_quiet();
	if (got != n_retrigger)
		test_fail("I/O APIC level retrigger: %u interrupts, want exactly %u", got,
			  n_retrigger);
	if (rirr != got || tmr != got)
		test_fail("I/O APIC level: Remote IRR set in %u, TMR bit in %u of %u handlers",
			  rirr, tmr, got);
	if (ioapic_rte(4) & RTE_REMOTE_IRR)
		test_fail("I/O APIC level: Remote IRR still set after the last EOI");
	printf("I/O APIC level: %u retriggers exactly, Remote IRR and TMR right\n", got);

	/* Edge: the held line gives one interrupt. */
	ioapic_set_rte(4, RTE_DEST(0) | APIC_DM_FIXED | VEC_IO_UART);
	uart_fire(1000);
	wait_for(&uart_irqs, 1, "edge-triggered UART interrupt");
	sleep_ms(20);
	got = uart_irqs;
	uart_quiet();
	if (got != 1)
		test_fail("I/O APIC edge with the line held: %u interrupts, want 1", got);

	/* A level held back by the mask comes at the unmask. */
	ioapic_set_rte(4, RTE_MASKED | RTE_LEVEL | RTE_DEST(0) | APIC_DM_FIXED | VEC_IO_UART);
	uart_fire(1);
	sleep_ms(10);
	if (uart_irqs)
		test_fail("I/O APIC: masked level entry delivered %u interrupts", uart_irqs);
	ioapic_set_rte(4, RTE_LEVEL | RTE_DEST(0) | APIC_DM_FIXED | VEC_IO_UART);
	wait_for(&uart_irqs, 1, "masked level interrupt after the unmask");
	sleep_ms(10);
	got = uart_irqs;
	uart_quiet();
	ioapic_set_rte(4, RTE_MASKED | VEC_IO_UART);
	if (got != 1)
		test_fail("I/O APIC: unmasked level entry: %u interrupts, want 1", got);
	printf("I/O APIC edge: one interrupt for a held line; masked level comes at unmask\n");
}

/* ---- 5. Level retrigger through the PIC ---- */

static void level_via_pic(void)
{
	uint32_t got;

	watchdog_phase("UART level retrigger through the PIC");
	pic_init(PIC_BASE, PIC_BASE + 8, false);
	pic_set_elcr(1u << 4);
	if (!(pic_elcr() & (1u << 4)))
		test_fail("ELCR bit 4 does not stick: 0x%x", pic_elcr());
	apic_write(APIC_LVT_LINT0, APIC_DM_EXTINT);
	pic_set_imr(0xffff & ~(1u << 4));
	uart_fire(n_retrigger);
	wait_for(&uart_irqs, n_retrigger, "level retrigger through the PIC");
	sleep_ms(20);
	got = uart_irqs;
	uart_quiet();
	if (got != n_retrigger)
		test_fail("PIC level retrigger: %u interrupts, want exactly %u", got, n_retrigger);

	pic_set_elcr(0);
	uart_fire(1000);
	wait_for(&uart_irqs, 1, "edge-triggered UART interrupt through the PIC");
	sleep_ms(20);
	got = uart_irqs;
	uart_quiet();
	if (got != 1)
		test_fail("PIC edge with the line held: %u interrupts, want 1", got);
	pic_mask_all();
	apic_write(APIC_LVT_LINT0, LVT_MASKED | APIC_DM_EXTINT);
	printf("PIC: %u level retriggers exactly (ELCR), one interrupt for edge\n", n_retrigger);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("pit_irq", magic, mbi);

	cmdline_uint(args, "retrigger", &n_retrigger);
	smp_init();
	/* What the firmware left: informational. */
	printf("at start: PIC IMR 0x%x ELCR 0x%x, LVT LINT0 0x%x\n", pic_imr(), pic_elcr(),
	       apic_read(APIC_LVT_LINT0));
	pic_mask_all();
	ncpus = fw_cfg_cpus();
	idt_set_handler(VEC_PIC_PIT, pic_pit_handler);
	idt_set_handler(VEC_PIC_UART, pic_uart_handler);
	idt_set_handler(PIC_BASE + 7, spurious_handler);
	idt_set_handler(PIC_BASE + 15, spurious_handler);
	idt_set_handler(VEC_IO_PIT, io_pit_handler);
	idt_set_handler(VEC_IO_UART, io_uart_handler);
	if (smp_boot(ncpus) != ncpus)
		test_fail("%u CPUs online, want %u", smp_online, ncpus);
	smp_call_all(set_logical, NULL);
	check_ioapic_regs();
	watchdog_start(30000, report);
	irq_enable();
	pit_via_pic();
	pit_via_ioapic();
	level_via_ioapic();
	level_via_pic();
	watchdog_stop();
	irq_disable();
	if (spurious)
		printf("%u spurious PIC interrupts\n", spurious);
	test_pass();
}
