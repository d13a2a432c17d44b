/*
 * Checkpoint/restore test guest (driven by tests/snapshot/run.sh).
 *
 * CPU 0 and CPU 1 play IPI ping-pong for ROUNDS rounds (IPIs in flight
 * both ways) while CPU 0's LAPIC timer ticks periodically and the PIT's
 * IRQ 0 reaches CPU 1 through I/O APIC pin 2; each handler masks its
 * source at exactly TICKS (LAPIC) or PIT_TICKS (PIT) ticks.  Progress
 * lines let the host save a snapshot in the middle; whether the run was
 * restored or not, the final counts must be exact: ROUNDS pings and
 * pongs, TICKS ticks, PIT_TICKS PIT ticks.  A 256 KiB buffer filled
 * at the start and bumped in every round (a long run of non-zero pages
 * the restore maps from the file, then written: copy-on-write) must sum
 * to what was put in.
 * Output: "progress N" every ROUNDS/8 rounds, "final: ..." and PASS/FAIL.
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"

#define ROUNDS   4000
#define TICKS    1500
#define VEC_PING 0x40
#define VEC_PONG 0x41
#define VEC_TICK 0x50
#define VEC_PIT  0x51
#define PIT_TICKS 300
#define PIT_COUNT 5966      /* 200 Hz */
#define PIT_RTE  (RTE_DEST(1) | APIC_DM_FIXED | VEC_PIT)

static volatile uint32_t pings, pongs, ticks, pit_ticks;
#define BUF_WORDS (256 * 1024 / 4)
static volatile uint32_t buf[BUF_WORDS] __attribute__((aligned(4096)));

static uint32_t pattern(uint32_t i)
{
	return i * 2654435761u | 1;
}

static uint32_t buf_sum(void)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < BUF_WORDS; i++)
		sum += buf[i];
	return sum;
}

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

/* On CPU 1, between pings. */
static void pit_handler(struct irq_frame *f)
{
	(void)f;
	if (++pit_ticks == PIT_TICKS)
		ioapic_set_rte(2, PIT_RTE | RTE_MASKED);    /* edges now dropped: exact */
	eoi();
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	guest_start("snap_counter", magic, mbi);
	smp_init();
	idt_set_handler(VEC_PING, ping_handler);
	idt_set_handler(VEC_PONG, pong_handler);
	idt_set_handler(VEC_TICK, tick_handler);
	idt_set_handler(VEC_PIT, pit_handler);
	if (smp_boot(2) != 2)
		test_fail("CPU 1 did not come up");
	for (uint32_t i = 0; i < BUF_WORDS; i++)
		buf[i] = pattern(i);
	uint32_t want = buf_sum() + ROUNDS;
	*apic_reg(0x3e0) = 0xb;                          /* divide by 1 */
	*apic_reg(0x320) = (1u << 17) | VEC_TICK;        /* periodic */
	*apic_reg(0x380) = 2000000;                      /* 2 ms */
	pit_ch0_start(2, PIT_COUNT);                     /* 8259 pair masked by smp_init */
	ioapic_set_rte(2, PIT_RTE);
	asm volatile("sti");
	for (uint32_t i = 1; i <= ROUNDS; i++) {
		apic_icr(1, APIC_DM_FIXED | VEC_PING);
		buf[(i * 1031) % BUF_WORDS]++;
		while (pongs != i)
			asm volatile("pause");
		if (i % (ROUNDS / 8) == 0)
			printf("progress %u ticks %u pit %u\n", i, ticks, pit_ticks);
	}
	while (ticks < TICKS || pit_ticks < PIT_TICKS)
		asm volatile("hlt");
	if (buf_sum() != want)
		test_fail("the buffer sums to %u, expected %u", buf_sum(), want);
	printf("final: pings %u pongs %u ticks %u pit %u\n", pings, pongs, ticks, pit_ticks);
	if (pings != ROUNDS || pongs != ROUNDS || ticks != TICKS || pit_ticks != PIT_TICKS)
		test_fail("counts %u/%u/%u/%u, expected %u/%u/%u/%u", pings, pongs, ticks,
			  pit_ticks, ROUNDS, ROUNDS, TICKS, PIT_TICKS);
	test_pass();
}
