/*
 * TSC calibration against PIT channel 2, robust against a host that
 * deschedules the vCPU at any moment.
 *
 * Channel 2 (gate on through port 0x61 bit 0, speaker off) counts down
 * from 0xffff in mode 0.  A sample is a TSC read, a latched read of the
 * count, and a second TSC read: its "bracket" (the two TSC reads apart)
 * is small unless the vCPU was preempted inside it.  The best of five
 * samples at the start and at the end of about 30 ms of counting give
 * TSC ticks per PIT tick; a preemption anywhere else costs nothing, unless
 * it outlasts the 55 ms the counter needs to wrap: OUT2 tells, and such a
 * run is discarded.  The median of three good runs is the answer.
 * (Timing the rise of OUT2 instead, as a bare-metal kernel can, counts a
 * preemption during the poll as time.)
 */
#include "guest.h"
#include "pc.h"
#include "time.h"

#define CAL_PIT_TICKS 35795u    /* 30 ms */
#define SAMPLES       5

uint32_t tsc_khz;

struct sample {
	uint64_t tsc;       /* midpoint of the bracket */
	uint64_t bracket;
	uint16_t count;
};

static uint16_t ch2_read(void)
{
	uint8_t lo;

	outb(PIT_CMD, 0x80);                 /* latch channel 2 */
	lo = inb(PIT_CH2);
	return lo | (uint16_t)inb(PIT_CH2) << 8;
}

static struct sample best_sample(void)
{
	struct sample best = { .bracket = ~0ull };

	for (int i = 0; i < SAMPLES; i++) {
		uint64_t t0 = rdtsc();
		uint16_t c = ch2_read();
		uint64_t t1 = rdtsc();

		if (t1 - t0 < best.bracket)
			best = (struct sample){ .tsc = t0 + (t1 - t0) / 2, .bracket = t1 - t0,
						.count = c };
	}
	return best;
}

/* TSC ticks per second from one run, or 0 if the PIT gave nonsense. */
static uint64_t calibrate_once(void)
{
	struct sample a, b;
	unsigned polls = 0;

	outb(PORT_61, (inb(PORT_61) & ~0x02) | 0x01);
	outb(PIT_CMD, 0xb0);                 /* channel 2, LSB then MSB, mode 0 */
	outb(PIT_CH2, 0xff);
	outb(PIT_CH2, 0xff);
	a = best_sample();
	while ((uint16_t)(a.count - ch2_read()) < CAL_PIT_TICKS)
		if (++polls > 1000000)
			return 0;
	b = best_sample();
	/*
	 * OUT2 rises at the terminal count and stays up in mode 0: if it is
	 * up, the vCPU was away long enough for the counter to wrap, and the
	 * difference of the counts means nothing.
	 */
	if (inb(PORT_61) & 0x20)
		return 0;
	if (a.count <= b.count || (unsigned)(a.count - b.count) < CAL_PIT_TICKS / 2)
		return 0;
	return muldiv64(b.tsc - a.tsc, PIT_HZ, a.count - b.count);
}

uint32_t tsc_calibrate(void)
{
	uint64_t hz[3];
	int n = 0;

	if (tsc_khz)
		return tsc_khz;
	if (inb(PORT_61) == 0xff) {
		tsc_khz = 1000000;
		printf("time: no PIT at port 0x61, assuming a 1 GHz TSC\n");
		return tsc_khz;
	}
	for (int i = 0; i < 12 && n < 3; i++) {
		uint64_t r = calibrate_once();

		if (r)
			hz[n++] = r;
	}
	if (!n) {
		tsc_khz = 1000000;
		printf("time: PIT channel 2 gave no usable answer, assuming a 1 GHz TSC\n");
		return tsc_khz;
	}
	/* The median of what we have (a sample is only off if both ends were). */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (hz[j] < hz[i]) {
				uint64_t t = hz[i];

				hz[i] = hz[j];
				hz[j] = t;
			}
	tsc_khz = (uint32_t)div64(hz[n / 2], 1000);
	printf("time: TSC at %u kHz (against PIT channel 2)\n", tsc_khz);
	return tsc_khz;
}

void udelay(uint64_t us)
{
	uint64_t end = rdtsc() + tsc_from_us(us);

	while ((int64_t)(rdtsc() - end) < 0)
		cpu_relax();
}
