/*
 * A watchdog on the BSP's LAPIC timer: a test that waits for interrupts
 * (often in HLT) gets woken periodically, and fails with the name of the
 * phase it was stuck in, instead of hanging until the harness kills it.
 * Limits are generous: they catch lost interrupts, not slow hosts.
 *
 * Uses the BSP's LVT timer (periodic, VEC_WATCHDOG), so a test of the
 * LAPIC timer itself cannot use it.
 */
#pragma once

#define VEC_WATCHDOG 0x21   /* lowest priority class in use */

/* Arm on the BSP (IDT loaded, LAPIC enabled): fail after @ms in a phase. */
void watchdog_start(unsigned ms, void (*report)(void));
/* Enter phase @what: restarts the limit. */
void watchdog_phase(const char *what);
void watchdog_stop(void);
