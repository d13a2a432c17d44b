/*
 * Checkpoint/restore test guest (driven by tests/snapshot/run.sh).
 *
 * CPU 0 and CPU 1 play IPI ping-pong for ROUNDS rounds while CPU 0's
 * LAPIC timer ticks periodically; the tick handler masks the timer at
 * exactly TICKS ticks.  Progress lines let the host save a snapshot in the
 * middle; whether the run was restored or not, the final counts must be
 * exact: ROUNDS pings and pongs, TICKS ticks.
 * Output: "progress N" every ROUNDS/8 rounds, "final: ..." and PASS/FAIL.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "smp.h"

#define ROUNDS   4000
#define TICKS    1500
#define VEC_PING 0x40
#define VEC_PONG 0x41
#define VEC_TICK 0x50

static volatile uint32_t pings, pongs, ticks;

static volatile uint32_t *apic_reg(unsigned off)
{
	return (volatile uint32_t *)(uintptr_t)(APIC_BASE + off);
}

static void eoi(void) { *apic_reg(0xb0) = 0; }

static void ping_handler(struct irq_frame *f)
{
	(void)f;
	pings++;
	eoi();
	apic_icr(0, APIC_DM_FIXED | VEC_PONG);
}

static void pong_handler(struct irq_frame *f)
{
	(void)f;
	pongs++;
	eoi();
}

static void tick_handler(struct irq_frame *f)
{
	(void)f;
	if (++ticks == TICKS)
		*apic_reg(0x320) = (1u << 16) | VEC_TICK;   /* masked: exactly TICKS */
	eoi();
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	guest_start("snap_counter", magic, mbi);
	smp_init();
	idt_set_handler(VEC_PING, ping_handler);
	idt_set_handler(VEC_PONG, pong_handler);
	idt_set_handler(VEC_TICK, tick_handler);
	if (smp_boot(2) != 2)
		test_fail("CPU 1 did not come up");
	*apic_reg(0x3e0) = 0xb;                          /* divide by 1 */
	*apic_reg(0x320) = (1u << 17) | VEC_TICK;        /* periodic */
	*apic_reg(0x380) = 2000000;                      /* 2 ms */
	asm volatile("sti");
	for (uint32_t i = 1; i <= ROUNDS; i++) {
		apic_icr(1, APIC_DM_FIXED | VEC_PING);
		while (pongs != i)
			asm volatile("pause");
		if (i % (ROUNDS / 8) == 0)
			printf("progress %u ticks %u\n", i, ticks);
	}
	while (ticks < TICKS)
		asm volatile("hlt");
	printf("final: pings %u pongs %u ticks %u\n", pings, pongs, ticks);
	if (pings != ROUNDS || pongs != ROUNDS || ticks != TICKS)
		test_fail("counts %u/%u/%u, expected %u/%u/%u", pings, pongs, ticks,
			  ROUNDS, ROUNDS, TICKS);
	test_pass();
}
