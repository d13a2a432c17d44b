/*
 * Time for the test kernels: the TSC, calibrated once against the PIT's
 * channel 2 (gate and OUT through port 0x61, as Linux does it).
 *
 * Timeouts built on it are generous bounds for "something is stuck", not
 * measurements: a test must not fail because the host is slow.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "cpu.h"

/* TSC ticks per millisecond; set by tsc_calibrate(). */
extern uint32_t tsc_khz;

/*
 * Measure the TSC against PIT channel 2 (about 100 ms).  Without
 * a PIT (port 0x61 floats), assumes 1 GHz and says so.  Idempotent.
 */
uint32_t tsc_calibrate(void);

static inline uint64_t tsc_from_us(uint64_t us)
{
	return muldiv64(us, tsc_khz, 1000);
}

static inline uint64_t tsc_to_us(uint64_t ticks)
{
	return muldiv64(ticks, 1000, tsc_khz);
}

/* Busy-wait @us microseconds (interrupts are taken if enabled). */
void udelay(uint64_t us);

/* A deadline @ms from now, and whether it passed. */
static inline uint64_t deadline_ms(uint32_t ms)
{
	return rdtsc() + tsc_from_us((uint64_t)ms * 1000);
}

static inline bool deadline_passed(uint64_t deadline)
{
	return (int64_t)(rdtsc() - deadline) > 0;
}
