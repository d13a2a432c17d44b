/*
 * bench_timer: the LAPIC timer as a guest sees it, measured with the TSC
 * (calibrated against the PIT by the test library).
 *
 * 1. The timer's clock: TMCCT against the TSC over 20 ms, divide by 1.
 * 2. Interrupt rate: the periodic timer at 1000, 100 and 20 us for
 *    WINDOW ms each, the CPU halting between ticks; a late VMM merges
 *    ticks, so ticks delivered per second fall below the programmed rate.
 * 3. One-shot latency: SHOTS one-shots of 100 us, each from the TMICT
 *    write to the handler's first instruction, minus the 100 us (the MMIO
 *    exit of the write is included, as it is in any guest's timer path).
 *
 * Output: "BENCH timer_hz hz=N", "BENCH timer_periodic period_us=P
 * ticks=N us=U", "BENCH timer_oneshot shots=N min=A p50=B p99=C max=D"
 * (cycles beyond the programmed delay; negative if early).
 *
 * Command line: window_ms=N (200) shots=N (50).
 */
#include "apic.h"
#include "cpu.h"
#include "guest.h"
#include "idt.h"
#include "pc.h"
#include "smp.h"
#include "time.h"

#define VEC_TIMER  0x40
#define MAX_SHOTS  500
#define ONESHOT_US 100
#define TDCR_DIV1  0xb

static uint32_t window_ms = 200, shots = 50;
static uint32_t timer_hz;
static volatile uint32_t ticks;
static volatile uint64_t tick_tsc;
static int32_t late[MAX_SHOTS];

static void timer_handler(struct irq_frame *f)
{
	(void)f;
	tick_tsc = rdtsc();
	ticks++;
	apic_eoi();
}

static uint32_t measure_hz(void)
{
	uint32_t c0, c1;
	uint64_t t0, t1;

	apic_write(APIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
	apic_write(APIC_TDCR, TDCR_DIV1);
	apic_write(APIC_TMICT, 0xffffffff);
	c0 = apic_read(APIC_TMCCT);
	t0 = rdtsc();
	udelay(20000);
	c1 = apic_read(APIC_TMCCT);
	t1 = rdtsc();
	apic_write(APIC_TMICT, 0);
	if (c1 >= c0)
		test_fail("TMCCT does not count down: 0x%x then 0x%x", c0, c1);
	return (uint32_t)muldiv64(c0 - c1, 1000000, (uint32_t)tsc_to_us(t1 - t0));
}

static uint32_t count_for_us(uint32_t us)
{
	return (uint32_t)muldiv64(timer_hz, us, 1000000);
}

static void periodic(uint32_t period_us)
{
	uint64_t t0, end;

	ticks = 0;
	apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_TIMER);
	irq_disable();
	t0 = rdtsc();
	apic_write(APIC_TMICT, count_for_us(period_us));
	end = t0 + tsc_from_us((uint64_t)window_ms * 1000);
	while ((int64_t)(rdtsc() - end) < 0)
		irq_wait_disabled();
	apic_write(APIC_TMICT, 0);
	printf("BENCH timer_periodic period_us=%u ticks=%u us=%u\n", period_us, ticks,
	       (unsigned)tsc_to_us(rdtsc() - t0));
	irq_enable();
}

static void sort(int32_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j && v[j - 1] > v[j]; j--) {
			int32_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static void oneshot(void)
{
	uint64_t period = tsc_from_us(ONESHOT_US);

	apic_write(APIC_LVT_TIMER, LVT_TIMER_ONESHOT | VEC_TIMER);
	for (uint32_t i = 0; i < shots; i++) {
		uint32_t before = ticks;
		uint64_t t0, deadline = deadline_ms(5000);

		irq_disable();
		t0 = rdtsc();
		apic_write(APIC_TMICT, count_for_us(ONESHOT_US));
		while (ticks == before && !deadline_passed(deadline))
			irq_wait_disabled();
		irq_enable();
		if (ticks == before)
			test_fail("one-shot %u of %u us: no interrupt after 5 s", i, ONESHOT_US);
		late[i] = (int32_t)(int64_t)(tick_tsc - t0 - period);
	}
	sort(late, shots);
	printf("BENCH timer_oneshot shots=%u delay_us=%u min=%d p50=%d p99=%d max=%d\n", shots,
	       ONESHOT_US, late[0], late[shots / 2],
	       late[(uint32_t)div64((uint64_t)shots * 99, 100)], late[shots - 1]);
}

int main(uint32_t magic, const struct mb_info *mbi)
{
	const char *args = guest_start("bench_timer", magic, mbi);

	cmdline_uint(args, "window_ms", &window_ms);
	cmdline_uint(args, "shots", &shots);
	if (!shots || shots > MAX_SHOTS || !window_ms)
		test_fail("shots=%u (1-%u) window_ms=%u", shots, MAX_SHOTS, window_ms);
	smp_init();
	pic_mask_all();
	idt_set_handler(VEC_TIMER, timer_handler);
	timer_hz = measure_hz();
	printf("BENCH timer_hz hz=%u\n", timer_hz);
	irq_enable();
	periodic(1000);
	periodic(100);
	periodic(20);
	oneshot();
	irq_disable();
	test_pass();
}
