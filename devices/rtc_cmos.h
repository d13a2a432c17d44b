/*
 * The PC's real-time clock and CMOS RAM (MC146818A at ports 0x70/0x71,
 * IRQ 8).  "rtc" creates one through the device registry; the VMM and the
 * tests use the calls below.
 *
 * Time: the clock reads host UTC as it was when the RTC was created plus
 * the VM time elapsed since (vm_clock_ns), so it stops while the VM is
 * paused.  Tests swap the time source for a made-up one.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vm;
struct rtc;

#define RTC_PORT_INDEX 0x70
#define RTC_PORT_DATA  0x71
#define RTC_IRQ        8

/* Register indexes. */
enum {
	RTC_SECONDS = 0x00, RTC_SECONDS_ALARM = 0x01, RTC_MINUTES = 0x02,
	RTC_MINUTES_ALARM = 0x03, RTC_HOURS = 0x04, RTC_HOURS_ALARM = 0x05,
	RTC_DAY_OF_WEEK = 0x06, RTC_DAY_OF_MONTH = 0x07, RTC_MONTH = 0x08,
	RTC_YEAR = 0x09, RTC_REG_A = 0x0A, RTC_REG_B = 0x0B, RTC_REG_C = 0x0C,
	RTC_REG_D = 0x0D, RTC_SHUTDOWN = 0x0F, RTC_CENTURY = 0x32,
};

/* Register A, B, C, D bits. */
#define RTC_A_UIP   0x80
#define RTC_A_DV    0x70      /* divider: 010 is the 32.768 kHz time base */
#define RTC_A_RS    0x0f      /* periodic rate select */
#define RTC_B_SET   0x80
#define RTC_B_PIE   0x40
#define RTC_B_AIE   0x20
#define RTC_B_UIE   0x10
#define RTC_B_SQWE  0x08
#define RTC_B_DM    0x04      /* 1: binary, 0: BCD */
#define RTC_B_24H   0x02
#define RTC_B_DSE   0x01
#define RTC_C_IRQF  0x80
#define RTC_C_PF    0x40
#define RTC_C_AF    0x20
#define RTC_C_UF    0x10
#define RTC_D_VRT   0x80

/* The RTC's time source: UTC nanoseconds since 1970. */
typedef int64_t (*rtc_clock_fn)(void *ctx);

/*
 * The device, its CMOS memory-size bytes filled from vm->mem.size.  NULL
 * on failure (ports taken, no timer service, an RTC already on @vm).
 */
struct rtc *rtc_create(struct vm *vm);
/* Detach, stop the timer and free; no callback runs afterwards. */
void rtc_destroy(struct rtc *rtc);
/* The RTC created on @vm, or NULL. */
struct rtc *rtc_find(struct vm *vm);
/*
 * Replace the time source (NULL: back to host time plus VM time).  For
 * tests: call it serialized (before sending, or from a device callback).
 */
void rtc_set_clock(struct rtc *rtc, rtc_clock_fn fn, void *ctx);

/* Bit 7 of the last index written to port 0x70 (any thread). */
bool rtc_nmi_masked(struct vm *vm);

void rtc_dump(const struct rtc *rtc, FILE *f);
