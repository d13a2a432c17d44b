/*
 * The watchdog: a periodic LAPIC timer interrupt on the BSP whose handler
 * compares the TSC with the current phase's deadline.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "time.h"
#include "watchdog.h"

static const char *volatile phase = "start";
static volatile uint64_t deadline;
static unsigned limit_ms;
static void (*report_fn)(void);

static void watchdog_handler(struct irq_frame *f)
{
	if (deadline_passed(deadline)) {
		printf("watchdog: no progress for %u ms in \"%s\" (eip 0x%x)\n",
		       limit_ms, phase, f->eip);
		if (report_fn)
			report_fn();
		test_fail("stuck in \"%s\"", phase);
	}
	apic_eoi();
}

void watchdog_start(unsigned ms, void (*report)(void))
{
	limit_ms = ms;
	report_fn = report;
	deadline = deadline_ms(ms);
	idt_set_handler(VEC_WATCHDOG, watchdog_handler);
	apic_write(APIC_TDCR, 0x3);                 /* divide by 16 */
	apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_WATCHDOG);
	/* 2^21 * 16 bus clocks: about 34 ms at the VMM's 1 GHz. */
	apic_write(APIC_TMICT, 1u << 21);
}

void watchdog_phase(const char *what)
{
	bool on = irq_enabled();

	/* The handler must not see half of the 64-bit deadline. */
	irq_disable();
	phase = what;
	deadline = deadline_ms(limit_ms);
	if (on)
		irq_enable();
}

void watchdog_stop(void)
{
	apic_write(APIC_TMICT, 0);
	apic_write(APIC_LVT_TIMER, LVT_MASKED | VEC_WATCHDOG);
}
