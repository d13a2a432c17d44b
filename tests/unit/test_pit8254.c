/*
 * The 8254 and port 0x61.  Most tests drive the chip layer with made-up
 * times (tick k happens at pit_tick_to_ns(k)) and check counts and OUT
 * clock by clock against tables written from the datasheet's mode
 * descriptions.  The last tests run the device on a VM's buses with the
 * real VM clock and wait (with a generous timeout) for IRQ 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bus/message.h"
#include "devices/ioapic.h"
#include "devices/pit8254.h"
#include "vmm/device.h"
#include "vmm/timer.h"
#include "vmm/vm.h"
#include "restore_trip.h"

/* Control words: SC (7-6), RW (5-4), mode (3-1), BCD (0). */
#define CW(ch, rw, mode, bcd) ((uint8_t)((ch) << 6 | (rw) << 4 | (mode) << 1 | (bcd)))
#define RW_LATCH 0
#define RW_LSB   1
#define RW_MSB   2
#define RW_BOTH  3
#define READBACK(count, status, sel) \
	((uint8_t)(0xc0 | ((count) ? 0 : 0x20) | ((status) ? 0 : 0x10) | (sel) << 1))

static struct pit_chip chip;

static uint64_t T(uint64_t tick)
{
	return pit_tick_to_ns(tick);
}

static void out8(uint64_t tick, uint16_t port, uint8_t v)
{
	pit_chip_write(&chip, T(tick), port, v);
}

static uint8_t in8(uint64_t tick, uint16_t port)
{
	return pit_chip_read(&chip, T(tick), port);
}

/* Program channel @ch (LSB then MSB) at @tick. */
static void program(unsigned ch, unsigned mode, bool bcd, uint16_t count, uint64_t tick)
{
	out8(tick, PIT_PORT_CTRL, CW(ch, RW_BOTH, mode, bcd));
	out8(tick, (uint16_t)(PIT_PORT_CH0 + ch), count & 0xff);
	out8(tick, (uint16_t)(PIT_PORT_CH0 + ch), count >> 8);
}

/* Counter latch command, then both bytes (the channel uses RW_BOTH). */
static uint16_t latched(unsigned ch, uint64_t tick)
{
	uint8_t lo, hi;

	out8(tick, PIT_PORT_CTRL, CW(ch, RW_LATCH, 0, 0));
	lo = in8(tick, (uint16_t)(PIT_PORT_CH0 + ch));
	hi = in8(tick, (uint16_t)(PIT_PORT_CH0 + ch));
	return (uint16_t)(hi << 8 | lo);
}

static uint8_t status(unsigned ch, uint64_t tick)
{
	out8(tick, PIT_PORT_CTRL, READBACK(false, true, 1u << ch));
	return in8(tick, (uint16_t)(PIT_PORT_CH0 + ch));
}

static bool out_of(unsigned ch, uint64_t tick)
{
	bool out = status(ch, tick) >> 7;

	assert_int_equal(out, pit_chip_out(&chip, ch, T(tick)));
	return out;
}

/* Count and OUT of @ch at ticks @from, @from + 1, ... against the tables. */
static void expect_run(unsigned ch, uint64_t from, const uint16_t *count, const bool *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t tick = from + i;

		if (latched(ch, tick) != count[i] || out_of(ch, tick) != out[i])
			fail_msg("ch%u tick %llu (+%u): count %#x out %u, want %#x out %u", ch,
				 (unsigned long long)tick, i, latched(ch, tick), out_of(ch, tick),
				 count[i], out[i]);
	}
}

static int reset(void **state)
{
	(void)state;
	pit_chip_reset(&chip);
	return 0;
}

static void test_clock(void **state)
{
	static const uint64_t ticks[] = { 1, 2, 1193181, 1193182, 1193183, 123456789,
					  1000000000000ull, 17000000000000000ull };

	(void)state;
	assert_int_equal(pit_ns_to_tick(1000000000), PIT_HZ);
	assert_int_equal(pit_tick_to_ns(PIT_HZ), 1000000000);
	assert_int_equal(pit_ns_to_tick(0), 0);
	assert_int_equal(pit_tick_to_ns(0), 0);
	assert_int_equal(pit_ns_to_tick(838), 0);       /* a tick is 838.1 ns */
	assert_int_equal(pit_ns_to_tick(839), 1);
	assert_int_equal(pit_tick_to_ns(1), 839);
	for (unsigned i = 0; i < sizeof(ticks) / sizeof(ticks[0]); i++) {
		uint64_t ns = pit_tick_to_ns(ticks[i]);

		assert_int_equal(pit_ns_to_tick(ns), ticks[i]);
		assert_int_equal(pit_ns_to_tick(ns - 1), ticks[i] - 1);
	}
	assert_int_equal(pit_tick_to_ns(PIT_NEVER), PIT_NEVER);
}

static void test_mode0(void **state)
{
	static const uint16_t count[] = { 5, 4, 3, 2, 1, 0, 0xffff, 0xfffe };
	static const bool out[] = { 0, 0, 0, 0, 0, 1, 1, 1 };

	(void)state;
	out8(100, PIT_PORT_CTRL, CW(0, RW_BOTH, 0, 0));
	/* The control word: OUT low, null count set. */
	assert_int_equal(status(0, 100), 0x40 | 0x30);
	out8(100, PIT_PORT_CH0, 5);
	out8(100, PIT_PORT_CH0, 0);
	/* Written at tick 100, loaded at 101: null count until then. */
	assert_true(status(0, 100) & 0x40);
	assert_int_equal(status(0, 101), 0x30);
	expect_run(0, 101, count, out, 8);
	/* One rising edge: the terminal count at 101 + 5. */
	assert_int_equal(pit_chip_next_edge(&chip, 0, 100), 106);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 105), 106);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 106), PIT_NEVER);
	assert_int_equal(status(0, 106), 0x80 | 0x30);
	/* Count 0 is 65536. */
	program(1, 0, false, 0, 1000);
	assert_int_equal(latched(1, 1001), 0);
	assert_int_equal(latched(1, 1002), 0xffff);
	assert_false(out_of(1, 1000 + 65536));
	assert_true(out_of(1, 1001 + 65536));
}

static void test_mode0_rewrite(void **state)
{
	(void)state;
	program(0, 0, false, 3, 0);
	assert_true(out_of(0, 10));
	/* The first byte stops counting and drops OUT at once. */
	out8(10, PIT_PORT_CH0, 8);
	assert_false(out_of(0, 10));
	assert_int_equal(latched(0, 10), latched(0, 30));
	assert_int_equal(pit_chip_next_edge(&chip, 0, 10), PIT_NEVER);
	/* The second byte loads the new count on the next clock. */
	out8(30, PIT_PORT_CH0, 0);
	assert_int_equal(latched(0, 31), 8);
	assert_false(out_of(0, 38));
	assert_true(out_of(0, 39));
	/* LSB-only access: each write is a whole new count. */
	out8(50, PIT_PORT_CTRL, CW(0, RW_LSB, 0, 0));
	out8(50, PIT_PORT_CH0, 4);
	assert_false(out_of(0, 54));
	assert_true(out_of(0, 55));
	out8(56, PIT_PORT_CH0, 2);
	assert_false(out_of(0, 56));
	assert_false(out_of(0, 58));
	assert_true(out_of(0, 59));
}

static void test_mode1(void **state)
{
	static const uint16_t count[] = { 3, 2, 1, 0, 0xffff };
	static const bool out[] = { 0, 0, 0, 1, 1 };

	(void)state;
	program(2, 1, false, 3, 100);
	/* No trigger yet: OUT high, nothing counts, null count stays. */
	assert_true(out_of(2, 150));
	assert_true(status(2, 150) & 0x40);
	assert_int_equal(pit_chip_next_edge(&chip, 2, 150), PIT_NEVER);
	/* Gate 2 rises at 200 (port 0x61 bit 0): count from 201. */
	out8(200, PIT_PORT_61, PORT61_GATE2);
	assert_int_equal(pit_chip_next_edge(&chip, 2, 200), 204);
	expect_run(2, 201, count, out, 5);
	assert_false(status(2, 201) & 0x40);
	/* The gate level does not matter, only its rising edge. */
	out8(206, PIT_PORT_61, 0);
	assert_true(out_of(2, 207));
	/* Retrigger at 210, and again at 212 before the end: restarts. */
	out8(210, PIT_PORT_61, PORT61_GATE2);
	assert_false(out_of(2, 211));
	out8(211, PIT_PORT_61, 0);
	out8(212, PIT_PORT_61, PORT61_GATE2);
	assert_int_equal(latched(2, 213), 3);
	assert_false(out_of(2, 215));
	assert_true(out_of(2, 216));
	/* Channels 0 and 1 have their gates tied high: mode 1 never fires. */
	program(0, 1, false, 3, 300);
	assert_true(out_of(0, 400));
	assert_int_equal(pit_chip_next_edge(&chip, 0, 300), PIT_NEVER);
}

static void test_mode2(void **state)
{
	static const uint16_t count[] = { 4, 3, 2, 1, 4, 3, 2, 1, 4 };
	static const bool out[] = { 1, 1, 1, 0, 1, 1, 1, 0, 1 };
	static const uint16_t count2[] = { 2, 1, 2, 1, 2 };
	static const bool out2[] = { 1, 0, 1, 0, 1 };

	(void)state;
	program(0, 2, false, 4, 50);
	assert_true(out_of(0, 50));
	expect_run(0, 51, count, out, 9);
	/* OUT rises when the count reloads: every 4 clocks from 51. */
	assert_int_equal(pit_chip_next_edge(&chip, 0, 50), 55);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 55), 59);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 57), 59);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 1000), 1003);
	/* A new count waits for the end of the period (null count until then). */
	reset(NULL);
	program(0, 2, false, 4, 50);
	out8(56, PIT_PORT_CH0, 2);
	out8(56, PIT_PORT_CH0, 0);
	assert_true(status(0, 56) & 0x40);
	assert_int_equal(latched(0, 57), 2);
	assert_int_equal(latched(0, 58), 1);
	assert_false(status(0, 59) & 0x40);
	expect_run(0, 59, count2, out2, 5);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 56), 59);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 59), 61);
	/* Modes 6 and 7 are 2 and 3; the status shows the bits as written. */
	out8(100, PIT_PORT_CTRL, CW(1, RW_BOTH, 6, 0));
	out8(100, PIT_PORT_CH1, 3);
	out8(100, PIT_PORT_CH1, 0);
	assert_int_equal(status(1, 101) & 0x3f, 0x30 | 6 << 1);
	assert_false(out_of(1, 103));
	assert_true(out_of(1, 104));
	assert_false(out_of(1, 106));
}

static void test_mode3(void **state)
{
	static const uint16_t even[] = { 6, 4, 2, 6, 4, 2, 6 };
	static const bool even_out[] = { 1, 1, 1, 0, 0, 0, 1 };
	static const uint16_t odd[] = { 4, 2, 0, 4, 2, 4, 2 };
	static const bool odd_out[] = { 1, 1, 1, 0, 0, 1, 1 };

	(void)state;
	program(0, 3, false, 6, 10);
	expect_run(0, 11, even, even_out, 7);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 10), 17);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 17), 23);
	/* Odd: high one clock longer than low, counting from N - 1. */
	program(1, 3, false, 5, 10);
	expect_run(1, 11, odd, odd_out, 7);
	assert_int_equal(pit_chip_next_edge(&chip, 1, 11), 16);
	assert_int_equal(pit_chip_next_edge(&chip, 1, 16), 21);
	/* Count 0 (65536): 32768 clocks high, 32768 low. */
	program(2, 3, false, 0, 0);
	out8(0, PIT_PORT_61, PORT61_GATE2);
	out8(0, PIT_PORT_61, 0);
	out8(0, PIT_PORT_61, PORT61_GATE2);      /* gate rise reloads at tick 1 */
	assert_true(out_of(2, 1 + 32767));
	assert_false(out_of(2, 1 + 32768));
	assert_false(out_of(2, 1 + 65535));
	assert_true(out_of(2, 1 + 65536));
}

static void test_mode4(void **state)
{
	static const uint16_t count[] = { 3, 2, 1, 0, 0xffff, 0xfffe };
	static const bool out[] = { 1, 1, 1, 0, 1, 1 };

	(void)state;
	program(0, 4, false, 3, 0);
	expect_run(0, 1, count, out, 6);
	/* Rising at the end of the strobe, once. */
	assert_int_equal(pit_chip_next_edge(&chip, 0, 0), 5);
	assert_int_equal(pit_chip_next_edge(&chip, 0, 5), PIT_NEVER);
	/* A new count retriggers. */
	program(0, 4, false, 2, 10);
	assert_true(out_of(0, 12));
	assert_false(out_of(0, 13));
	assert_true(out_of(0, 14));
	assert_int_equal(pit_chip_next_edge(&chip, 0, 10), 14);
}

static void test_mode5(void **state)
{
	static const uint16_t count[] = { 2, 1, 0, 0xffff };
	static const bool out[] = { 1, 1, 0, 1 };

	(void)state;
	program(2, 5, false, 2, 0);
	assert_true(out_of(2, 20));
	assert_int_equal(pit_chip_next_edge(&chip, 2, 0), PIT_NEVER);
	out8(20, PIT_PORT_61, PORT61_GATE2);
	expect_run(2, 21, count, out, 4);
	assert_int_equal(pit_chip_next_edge(&chip, 2, 20), 24);
	assert_int_equal(pit_chip_next_edge(&chip, 2, 24), PIT_NEVER);
	/* Retriggerable. */
	out8(30, PIT_PORT_61, 0);
	out8(31, PIT_PORT_61, PORT61_GATE2);
	assert_int_equal(latched(2, 32), 2);
	assert_false(out_of(2, 34));
	assert_true(out_of(2, 35));
}

static void test_gate_holds(void **state)
{
	(void)state;
	/* Mode 0 on channel 2: the gate suspends counting, OUT unchanged. */
	out8(0, PIT_PORT_61, PORT61_GATE2);
	program(2, 0, false, 10, 0);             /* loaded at 1, OUT at 11 */
	assert_int_equal(latched(2, 4), 7);
	out8(4, PIT_PORT_61, 0);
	assert_int_equal(latched(2, 50), 7);
	assert_false(out_of(2, 50));
	assert_int_equal(pit_chip_next_edge(&chip, 2, 50), PIT_NEVER);
	out8(104, PIT_PORT_61, PORT61_GATE2);      /* resumes at 105 with 7 */
	assert_int_equal(latched(2, 105), 7);
	assert_false(out_of(2, 111));
	assert_true(out_of(2, 112));
	assert_int_equal(pit_chip_next_edge(&chip, 2, 104), 112);

	/* Mode 2: gate low forces OUT high; the rise reloads the count. */
	program(2, 2, false, 5, 200);
	assert_false(out_of(2, 205));
	out8(205, PIT_PORT_61, 0);
	assert_true(out_of(2, 205));
	assert_int_equal(latched(2, 300), 1);
	out8(300, PIT_PORT_61, PORT61_GATE2);
	assert_int_equal(latched(2, 301), 5);
	assert_false(out_of(2, 305));
	assert_int_equal(pit_chip_next_edge(&chip, 2, 300), 306);

	/* A count written while the gate is low waits for the gate. */
	out8(400, PIT_PORT_61, 0);
	program(2, 0, false, 3, 400);
	assert_int_equal(latched(2, 450), 3);
	assert_false(out_of(2, 450));
	out8(450, PIT_PORT_61, PORT61_GATE2);
	assert_false(out_of(2, 453));
	assert_true(out_of(2, 454));
}

static void test_access_modes(void **state)
{
	(void)state;
	/* LSB only: the count is the byte; reads give one byte. */
	out8(0, PIT_PORT_CTRL, CW(0, RW_LSB, 2, 0));
	out8(0, PIT_PORT_CH0, 0x34);
	out8(1, PIT_PORT_CTRL, CW(0, RW_LATCH, 0, 0));
	assert_int_equal(in8(1, PIT_PORT_CH0), 0x34);
	assert_int_equal(in8(2, PIT_PORT_CH0), 0x33);   /* live, LSB again */
	/* MSB only: the count is byte << 8; reads give the MSB. */
	out8(10, PIT_PORT_CTRL, CW(1, RW_MSB, 2, 0));
	out8(10, PIT_PORT_CH1, 0x12);
	assert_int_equal(in8(11, PIT_PORT_CH1), 0x12);
	assert_int_equal(in8(12, PIT_PORT_CH1), 0x11);   /* 0x11ff */
	assert_int_equal(status(1, 12) & 0x30, 0x20);
	/* LSB then MSB: live reads alternate. */
	program(2, 2, false, 0x1234, 20);
	out8(20, PIT_PORT_61, PORT61_GATE2);      /* reload at 21 */
	assert_int_equal(in8(21, PIT_PORT_CH2), 0x34);
	assert_int_equal(in8(21, PIT_PORT_CH2), 0x12);
	assert_int_equal(in8(22, PIT_PORT_CH2), 0x33);
	/* A control word resets the toggle. */
	assert_int_equal(in8(22, PIT_PORT_CH2), 0x12);
	(void)in8(22, PIT_PORT_CH2);
	out8(30, PIT_PORT_CTRL, CW(2, RW_BOTH, 2, 0));
	out8(30, PIT_PORT_CH2, 0x78);
	out8(30, PIT_PORT_CH2, 0x56);
	assert_int_equal(in8(31, PIT_PORT_CH2), 0x78);
	assert_int_equal(in8(31, PIT_PORT_CH2), 0x56);
	/* The control port reads as nothing. */
	assert_int_equal(in8(31, PIT_PORT_CTRL), 0xff);
}

static void test_latch(void **state)
{
	(void)state;
	program(0, 2, false, 1000, 0);
	out8(101, PIT_PORT_CTRL, CW(0, RW_LATCH, 0, 0));      /* 1000 - 100 = 900 */
	out8(150, PIT_PORT_CTRL, CW(0, RW_LATCH, 0, 0));      /* ignored: still latched */
	assert_int_equal(in8(200, PIT_PORT_CH0), 900 & 0xff);
	assert_int_equal(in8(300, PIT_PORT_CH0), 900 >> 8);
	/* Released: the next latch takes the new value. */
	assert_int_equal(latched(0, 401), 600);
	/* Latched bytes first; live reads then start again with the LSB. */
	out8(501, PIT_PORT_CTRL, CW(0, RW_LATCH, 0, 0));
	assert_int_equal(in8(501, PIT_PORT_CH0), 500 & 0xff);
	assert_int_equal(in8(700, PIT_PORT_CH0), 500 >> 8);
	assert_int_equal(in8(701, PIT_PORT_CH0), 300 & 0xff);
	assert_int_equal(in8(701, PIT_PORT_CH0), 300 >> 8);
	/* Reprogramming drops a latch nobody read. */
	out8(800, PIT_PORT_CTRL, CW(0, RW_LATCH, 0, 0));
	program(0, 2, false, 50, 800);
	assert_int_equal(latched(0, 801), 50);
}

static void test_readback(void **state)
{
	(void)state;
	program(0, 2, false, 100, 0);
	program(2, 0, false, 10, 0);             /* gate 2 low: held */
	program(1, 3, true, 0x50, 0);
	/* Count and status of channels 0 and 2 at once. */
	out8(11, PIT_PORT_CTRL, READBACK(true, true, 1 | 4));
	/* Status first: OUT, null count, RW, mode, BCD; then the count. */
	assert_int_equal(in8(11, PIT_PORT_CH0), 0x80 | 0x30 | 2 << 1);
	assert_int_equal(in8(20, PIT_PORT_CH0), 90);
	assert_int_equal(in8(20, PIT_PORT_CH0), 0);
	assert_int_equal(in8(20, PIT_PORT_CH2), 0x30);      /* OUT low, loaded */
	assert_int_equal(in8(20, PIT_PORT_CH2), 10);
	assert_int_equal(in8(20, PIT_PORT_CH2), 0);
	/* Nothing latched any more: live reads. */
	assert_int_equal(in8(21, PIT_PORT_CH0), 80);
	/* Count only, channel 1 (BCD, status bits not latched). */
	out8(12, PIT_PORT_CTRL, READBACK(true, false, 2));
	assert_int_equal(in8(40, PIT_PORT_CH1), 0x28);      /* mode 3 by twos: 50 - 2 * 11 */
	assert_int_equal(in8(40, PIT_PORT_CH1), 0x00);
	/* Status only.  A control word drops a latched status nobody read. */
	out8(41, PIT_PORT_CTRL, READBACK(false, true, 2));
	out8(42, PIT_PORT_CTRL, CW(1, RW_BOTH, 0, 0));
	out8(43, PIT_PORT_CTRL, READBACK(false, true, 2));
	out8(43, PIT_PORT_CH1, 7);
	out8(43, PIT_PORT_CH1, 0);
	/* A second status latch before the read is ignored. */
	out8(46, PIT_PORT_CTRL, READBACK(false, true, 2));
	assert_int_equal(in8(46, PIT_PORT_CH1), 0x40 | 0x30); /* tick 43: null, OUT low */
	assert_int_equal(status(1, 46), 0x30);                /* loaded at 44 */
	/* Null count: set from the control word until the count is loaded. */
	out8(50, PIT_PORT_CTRL, CW(1, RW_BOTH, 0, 0));
	assert_true(status(1, 50) & 0x40);
	out8(50, PIT_PORT_CH1, 7);
	assert_true(status(1, 50) & 0x40);
	out8(50, PIT_PORT_CH1, 0);
	assert_true(status(1, 50) & 0x40);
	assert_false(status(1, 51) & 0x40);
}

static void test_bcd(void **state)
{
	(void)state;
	program(0, 0, true, 0x0100, 0);          /* 100 decimal */
	assert_int_equal(status(0, 1) & 1, 1);
	assert_int_equal(latched(0, 1), 0x0100);
	assert_int_equal(latched(0, 2), 0x0099);
	assert_int_equal(latched(0, 91), 0x0010);
	assert_false(out_of(0, 100));
	assert_true(out_of(0, 101));
	assert_int_equal(latched(0, 101), 0x0000);
	assert_int_equal(latched(0, 102), 0x9999);
	/* BCD count 0 is 10000. */
	program(1, 2, true, 0, 0);
	assert_int_equal(pit_chip_next_edge(&chip, 1, 0), 10001);
	assert_int_equal(latched(1, 1), 0x0000);
	assert_int_equal(latched(1, 2), 0x9999);
}

static void test_port61(void **state)
{
	uint8_t a, b;

	(void)state;
	/* Refresh toggles on every read: polling loops always see it move. */
	a = in8(0, PIT_PORT_61);
	b = in8(0, PIT_PORT_61);
	assert_int_equal((a ^ b) & PORT61_REFRESH, PORT61_REFRESH);
	assert_int_equal(a & 0xc0, 0);
	/* Bits 0-3 are stored, the rest are not writable. */
	out8(0, PIT_PORT_61, 0xff);
	assert_int_equal(in8(0, PIT_PORT_61) & 0xcf, 0x0f);
	out8(0, PIT_PORT_61, PORT61_SPEAKER);
	assert_int_equal(in8(0, PIT_PORT_61) & 0x0f, PORT61_SPEAKER);
	/* Bit 5 is OUT2: square wave on channel 2 with the gate open. */
	out8(0, PIT_PORT_61, PORT61_GATE2 | PORT61_SPEAKER);
	program(2, 3, false, 4, 0);
	assert_true(in8(1, PIT_PORT_61) & PORT61_OUT2);
	assert_true(in8(2, PIT_PORT_61) & PORT61_OUT2);
	assert_false(in8(3, PIT_PORT_61) & PORT61_OUT2);
	assert_false(in8(4, PIT_PORT_61) & PORT61_OUT2);
	assert_true(in8(5, PIT_PORT_61) & PORT61_OUT2);
	/* Gate closed: channel 2 stops (mode 3 holds OUT high). */
	out8(6, PIT_PORT_61, PORT61_SPEAKER);
	for (uint64_t t = 6; t < 20; t++)
		assert_true(in8(t, PIT_PORT_61) & PORT61_OUT2);
	assert_int_equal(pit_chip_next_edge(&chip, 2, 6), PIT_NEVER);
}

/* Linux's pit_calibrate_tsc(): mode 0 on channel 2, poll port 0x61 bit 5. */
static void test_tsc_calibration(void **state)
{
	const uint16_t latch = 11932;            /* PIT_TICK_RATE / (1000 / 10) */
	const uint64_t write_ns = 123456789;
	uint64_t w = pit_ns_to_tick(write_ns), edge_ns, lo, hi;

	(void)state;
	pit_chip_write(&chip, write_ns, PIT_PORT_61,
		       (pit_chip_read(&chip, write_ns, PIT_PORT_61) & ~PORT61_SPEAKER) | PORT61_GATE2);
	pit_chip_write(&chip, write_ns, PIT_PORT_CTRL, 0xb0);
	pit_chip_write(&chip, write_ns, PIT_PORT_CH2, latch & 0xff);
	pit_chip_write(&chip, write_ns, PIT_PORT_CH2, latch >> 8);
	edge_ns = pit_tick_to_ns(w + 1 + latch);
	assert_false(pit_chip_read(&chip, write_ns, PIT_PORT_61) & PORT61_OUT2);
	assert_false(pit_chip_read(&chip, edge_ns - 1, PIT_PORT_61) & PORT61_OUT2);
	assert_true(pit_chip_read(&chip, edge_ns, PIT_PORT_61) & PORT61_OUT2);
	assert_true(pit_chip_read(&chip, edge_ns + 50000000, PIT_PORT_61) & PORT61_OUT2);
	/* What the guest measures is latch clocks, give or take one. */
	lo = (uint64_t)latch * 1000000000 / PIT_HZ;
	hi = (uint64_t)(latch + 2) * 1000000000 / PIT_HZ + 1;
	assert_in_range(edge_ns - write_ns, lo, hi);

	/* quick_pit_calibrate(): count 0xffff, the MSB read as it falls. */
	pit_chip_write(&chip, write_ns, PIT_PORT_CTRL, 0xb0);
	pit_chip_write(&chip, write_ns, PIT_PORT_CH2, 0xff);
	pit_chip_write(&chip, write_ns, PIT_PORT_CH2, 0xff);
	for (unsigned i = 1; i < 200; i++) {
		uint64_t ns = pit_tick_to_ns(w + 1 + 256 * i);

		(void)pit_chip_read(&chip, ns, PIT_PORT_CH2);
		assert_int_equal(pit_chip_read(&chip, ns, PIT_PORT_CH2), 0xff - i);
	}
}

static void test_irq_track(void **state)
{
	struct pit_irq_track t;

	(void)state;
	pit_irq_track_init(&t, &chip, T(1000));
	program(0, 2, false, 100, 1000);         /* edges at 1101, 1201, ... */
	assert_false(pit_irq_due(&chip, &t, T(1000)));
	assert_int_equal(pit_irq_next_ns(&chip, &t), T(1101));
	assert_false(pit_irq_due(&chip, &t, T(1101) - 1));
	assert_true(pit_irq_due(&chip, &t, T(1101)));
	assert_false(pit_irq_due(&chip, &t, T(1101)));
	assert_int_equal(pit_irq_next_ns(&chip, &t), T(1201));
	assert_true(pit_irq_due(&chip, &t, T(1250)));
	assert_int_equal(t.coalesced, 0);
	/* Fifty periods late: one interrupt, then the next edge in the future. */
	assert_true(pit_irq_due(&chip, &t, T(6230)));
	assert_false(pit_irq_due(&chip, &t, T(6230)));
	assert_int_equal(t.coalesced, 1);
	assert_int_equal(t.fired, 3);
	assert_int_equal(pit_irq_next_ns(&chip, &t), T(6301));

	/* Mode 0: one edge, then nothing to wait for. */
	program(0, 0, false, 10, 7000);
	assert_false(pit_irq_due(&chip, &t, T(7000)));   /* OUT went low */
	assert_int_equal(pit_irq_next_ns(&chip, &t), T(7011));
	assert_true(pit_irq_due(&chip, &t, T(9000)));
	assert_int_equal(pit_irq_next_ns(&chip, &t), PIT_NEVER);

	/* Reprogramming that takes OUT from low to high is an edge too. */
	program(0, 0, false, 1000, 10000);
	assert_false(pit_irq_due(&chip, &t, T(10000)));
	out8(10500, PIT_PORT_CTRL, CW(0, RW_BOTH, 2, 0));
	assert_true(pit_irq_due(&chip, &t, T(10500)));
	assert_false(pit_irq_due(&chip, &t, T(10500)));
}

static void test_chip_dump(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	program(0, 2, false, 100, 0);
	pit_chip_dump(&chip, T(10), f);
	fclose(f);
	assert_non_null(strstr(buf, "ch0: mode 2"));
	assert_non_null(strstr(buf, "count 91"));
	free(buf);
}

/* ---- The device on a VM, with the real clock ---- */

struct fixture {
	struct vm vm;
	struct pit *pit;
};

static _Atomic unsigned irq0_edges, other_irqs;

static bool count_irq(void *dev, void *m)
{
	const struct msg_irq *msg = m;

	(void)dev;
	if (msg->line == 0 && msg->action == IRQ_EDGE)
		atomic_fetch_add(&irq0_edges, 1);
	else
		atomic_fetch_add(&other_irqs, 1);
	return true;
}

static int setup_vm(void **state, enum io_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	assert_int_equal(device_create(&f->vm, "pit"), 0);
	f->pit = pit_find(&f->vm);
	assert_non_null(f->pit);
	/* Claimed like the PIC: runs on whichever thread the PIT sends from. */
	assert_int_equal(bus_attach(f->vm.bus.irq, count_irq, bus_claim_always, NULL), 0);
	atomic_store(&irq0_edges, 0);
	atomic_store(&other_irqs, 0);
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup_vm(state, IO_MODE_LOCK); }
static int setup_thread(void **state) { return setup_vm(state, IO_MODE_THREAD); }

static int teardown_vm(void **state)
{
	struct fixture *f = *state;

	bus_detach(f->vm.bus.irq, count_irq, NULL);
	vm_run_exit_hooks(&f->vm);
	assert_null(pit_find(&f->vm));
	vm_fini_buses(&f->vm);
	free(f);
	return 0;
}

static void pio_write(struct vm *vm, uint16_t port, uint8_t v)
{
	struct msg_pio m = { .port = port, .size = 1, .write = true, .value = v };

	assert_true(range_bus_send(vm->bus.pio, port, &m));
}

static uint32_t pio_read(struct vm *vm, uint16_t port, uint8_t size)
{
	struct msg_pio m = { .port = port, .size = size, .value = 0x5a5a5a5a };

	assert_true(range_bus_send(vm->bus.pio, port, &m));
	return m.value;
}

/* Wait up to 20 s for @n IRQ 0 edges: a timeout, not a timing check. */
static bool wait_irqs(unsigned n)
{
	for (unsigned i = 0; i < 20000; i++) {
		if (atomic_load(&irq0_edges) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_device_periodic_irq0(void **state)
{
	struct fixture *f = *state;

	/* Mode 2, count 1193: about 1 kHz. */
	pio_write(&f->vm, PIT_PORT_CTRL, 0x34);
	pio_write(&f->vm, PIT_PORT_CH0, 1193 & 0xff);
	pio_write(&f->vm, PIT_PORT_CH0, 1193 >> 8);
	assert_true(wait_irqs(5));
	assert_int_equal(atomic_load(&other_irqs), 0);
	/* Stop it: a control word without a count leaves channel 0 idle. */
	pio_write(&f->vm, PIT_PORT_CTRL, 0x30);
	unsigned seen = atomic_load(&irq0_edges);
	usleep(20000);
	assert_int_equal(atomic_load(&irq0_edges), seen);
}

static void test_device_oneshot_irq0(void **state)
{
	struct fixture *f = *state;

	/* Mode 0, count 2000 (about 1.7 ms): exactly one interrupt. */
	pio_write(&f->vm, PIT_PORT_CTRL, 0x30);
	pio_write(&f->vm, PIT_PORT_CH0, 2000 & 0xff);
	pio_write(&f->vm, PIT_PORT_CH0, 2000 >> 8);
	assert_true(wait_irqs(1));
	usleep(20000);
	assert_int_equal(atomic_load(&irq0_edges), 1);
	/* OUT is high now, as the status says. */
	pio_write(&f->vm, PIT_PORT_CTRL, READBACK(false, true, 1));
	assert_int_equal(pio_read(&f->vm, PIT_PORT_CH0, 1), 0x80 | 0x30);
}

static void test_device_bios_init(void **state)
{
	struct fixture *f = *state;
	uint8_t st;

	pit_bios_init(f->pit);
	pio_write(&f->vm, PIT_PORT_CTRL, READBACK(false, true, 1));
	st = (uint8_t)pio_read(&f->vm, PIT_PORT_CH0, 1);
	assert_int_equal(st & 0x3f, 0x36);       /* LSB then MSB, mode 3, binary */
	/* 18.2 Hz: two interrupts well within the timeout. */
	assert_true(wait_irqs(2));
}

static void test_device_ports(void **state)
{
	struct fixture *f = *state;
	uint32_t v;
	char *buf = NULL;
	size_t len = 0;
	FILE *out;

	/* Port 0x61 through the bus, refresh toggling. */
	v = pio_read(&f->vm, PIT_PORT_61, 1);
	assert_int_equal((v ^ pio_read(&f->vm, PIT_PORT_61, 1)) & PORT61_REFRESH, PORT61_REFRESH);
	pio_write(&f->vm, PIT_PORT_61, PORT61_GATE2);
	assert_int_equal(pio_read(&f->vm, PIT_PORT_61, 1) & 0x0f, PORT61_GATE2);
	/* A word read at 0x40 is channel 0's byte then channel 1's. */
	pio_write(&f->vm, PIT_PORT_CTRL, CW(0, RW_LATCH, 0, 0));
	pio_write(&f->vm, PIT_PORT_CTRL, CW(1, RW_LATCH, 0, 0));
	pio_write(&f->vm, PIT_PORT_CTRL, READBACK(false, true, 3));
	v = pio_read(&f->vm, PIT_PORT_CH0, 2);
	assert_int_equal(v, 0xf6f6);             /* both statuses: idle mode 3, OUT high, null */
	/* One PIT per VM; no arguments. */
	assert_true(device_create(&f->vm, "pit") < 0);
	assert_null(pit_create(&f->vm));
	out = open_memstream(&buf, &len);
	pit_dump(f->pit, out);
	fclose(out);
	assert_non_null(strstr(buf, "ch2: mode 3"));
	assert_non_null(strstr(buf, "irq0:"));
	free(buf);
}

static _Atomic unsigned apic_msgs, apic_vector;

static bool record_apic(void *dev, void *m)
{
	struct msg_apic *msg = m;

	(void)dev;
	atomic_store(&apic_vector, msg->vector);
	atomic_fetch_add(&apic_msgs, 1);
	msg->accepted++;
	return true;
}

static void mmio_write(struct vm *vm, uint64_t addr, uint32_t v)
{
	struct msg_mmio m = { .addr = addr, .size = 4, .write = true, .value = v };

	assert_true(range_bus_send(vm->bus.mmio, addr, &m));
}

/* IRQ 0 from the PIT reaches IOAPIC pin 2 (the ISA override). */
static void test_device_irq0_to_ioapic(void **state)
{
	struct fixture *f = *state;

	atomic_store(&apic_msgs, 0);
	assert_int_equal(device_create(&f->vm, "ioapic"), 0);
	assert_int_equal(bus_attach(f->vm.bus.apic, record_apic, bus_claim_always, NULL), 0);
	mmio_write(&f->vm, IOAPIC_BASE, 0x10 + 2 * 2);
	mmio_write(&f->vm, IOAPIC_BASE + 0x10, 0x30);      /* vector 0x30, unmasked, edge */
	pio_write(&f->vm, PIT_PORT_CTRL, 0x30);
	pio_write(&f->vm, PIT_PORT_CH0, 100);
	pio_write(&f->vm, PIT_PORT_CH0, 0);
	assert_true(wait_irqs(1));
	/* The IOAPIC runs after the claimed counter of the same send. */
	for (unsigned i = 0; i < 20000 && !atomic_load(&apic_msgs); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&apic_msgs), 1);
	assert_int_equal(atomic_load(&apic_vector), 0x30);
	bus_detach(f->vm.bus.apic, record_apic, NULL);
}

static void test_device_bad_args(void **state)
{
	struct fixture *f = *state;

	assert_true(device_create(&f->vm, "pit:1") < 0);
}

/* Channel 0 at 100 Hz (mode 2), channel 2 counting in mode 0, a latch half read. */
static void program_busy(struct vm *vm)
{
	pio_write(vm, PIT_PORT_CTRL, 0x34);
	pio_write(vm, PIT_PORT_CH0, 11932 & 0xff);
	pio_write(vm, PIT_PORT_CH0, 11932 >> 8);
	pio_write(vm, PIT_PORT_61, PORT61_GATE2 | PORT61_SPEAKER);
	pio_write(vm, PIT_PORT_CTRL, CW(2, RW_BOTH, 0, 0));
	pio_write(vm, PIT_PORT_CH2, 0x50);
	pio_write(vm, PIT_PORT_CH2, 0xc3);
	pio_write(vm, PIT_PORT_CTRL, CW(1, RW_BOTH, 3, 1));
	pio_write(vm, PIT_PORT_CH1, 0x00);
	pio_write(vm, PIT_PORT_CH1, 0x50);
	pio_write(vm, PIT_PORT_CTRL, CW(1, RW_LATCH, 0, 0));
	pio_read(vm, PIT_PORT_CH1, 1);
}

/*
 * Save with the VM clock stopped at T, load on a second VM whose clock is
 * set to T (as vm_snapshot_restore does): the same counts, statuses and
 * next IRQ 0 edge; once its clock runs, IRQ 0 comes at that edge and no
 * burst of interrupts makes up for the time the first VM ran.
 */
static void test_device_save_load(void **state)
{
	struct fixture *f = *state, *g;
	uint64_t t, next, fired;
	int fa;

	program_busy(&f->vm);
	assert_true(wait_irqs(2));
	timer_service_pause(f->vm.timers);
	t = vm_clock_ns(&f->vm);
	fa = trip_save(&f->vm);
	next = pit_irq_next_ns(pit_chip(f->pit), pit_irq_stats(f->pit));
	fired = pit_irq_stats(f->pit)->fired;
	assert_true(next > t && next != PIT_NEVER);

	setup_lock(state);
	g = *state;
	*state = f;
	timer_service_pause(g->vm.timers);
	timer_service_set_clock(g->vm.timers, t);
	trip_reload(&g->vm, fa);
	assert_int_equal(pit_irq_next_ns(pit_chip(g->pit), pit_irq_stats(g->pit)), next);
	for (unsigned ch = 0; ch < 3; ch++) {
		assert_int_equal(pit_chip_count(pit_chip(g->pit), ch, t),
				 pit_chip_count(pit_chip(f->pit), ch, t));
		assert_int_equal(pit_chip_out(pit_chip(g->pit), ch, t),
				 pit_chip_out(pit_chip(f->pit), ch, t));
	}
	/* The other half of channel 1's latch, then statuses and port 0x61. */
	assert_int_equal(pio_read(&g->vm, PIT_PORT_CH1, 1), pio_read(&f->vm, PIT_PORT_CH1, 1));
	for (unsigned ch = 0; ch < 3; ch++) {
		pio_write(&f->vm, PIT_PORT_CTRL, READBACK(true, false, 1u << ch));
		pio_write(&g->vm, PIT_PORT_CTRL, READBACK(true, false, 1u << ch));
		for (int i = 0; i < 3; i++)
			assert_int_equal(pio_read(&g->vm, (uint16_t)(PIT_PORT_CH0 + ch), 1),
					 pio_read(&f->vm, (uint16_t)(PIT_PORT_CH0 + ch), 1));
	}
	assert_int_equal(pio_read(&g->vm, PIT_PORT_61, 1), pio_read(&f->vm, PIT_PORT_61, 1));

	atomic_store(&irq0_edges, 0);
	timer_service_resume(g->vm.timers);
	assert_true(wait_irqs(1));
	timer_service_pause(g->vm.timers);
	/* Fired at the saved edge or later, at most once per period since T. */
	assert_true(pit_irq_stats(g->pit)->checked >= pit_ns_to_tick(next));
	assert_true(pit_irq_stats(g->pit)->fired - fired <=
		    (vm_clock_ns(&g->vm) - t) / pit_tick_to_ns(11932) + 1);
	timer_service_resume(g->vm.timers);
	timer_service_resume(f->vm.timers);
	close(fa);
	teardown_vm((void **)&g);
}

static void test_device_load_refuses(void **state)
{
	struct fixture *f = *state;
	enum { CH = 56, TAIL = 3 * CH };
	uint8_t mode = 8, access = 0, port61 = 0x10;
	uint32_t zero = 0, big = 65537;
	uint64_t future = UINT64_MAX / 2;
	int fa;

	program_busy(&f->vm);
	timer_service_pause(f->vm.timers);
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, 0, &mode, 1, "bad mode");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, CH + 1, &access, 1, "bad access");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, 11, &mode, 1, "run state or flag");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, 12 + 12, &zero, 4, "bad period");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, 2 * CH + 12 + 8, &big, 4,
				    "channel 2 has a bad count");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, TAIL, &port61, 1, "port 0x61");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, TAIL + 2, &future, 8, "after the VM clock");
	trip_assert_patched_refused(&f->vm, fa, "pit", 0, TAIL + 27, NULL, 0, "left unread");
	/* Nothing of those was applied: channel 0 still runs in mode 2. */
	assert_int_equal(pit_chip(f->pit)->ch[0].mode_bits, 2);
	assert_int_equal(pit_chip(f->pit)->ch[0].period, 11932);
	timer_service_resume(f->vm.timers);
	close(fa);
}

#define CHIP(t) cmocka_unit_test_setup(t, reset)
#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_lock, teardown_vm), \
		cmocka_unit_test_setup_teardown(t, setup_thread, teardown_vm)

int main(void)
{
	const struct CMUnitTest tests[] = {
		CHIP(test_clock),
		CHIP(test_mode0),
		CHIP(test_mode0_rewrite),
		CHIP(test_mode1),
		CHIP(test_mode2),
		CHIP(test_mode3),
		CHIP(test_mode4),
		CHIP(test_mode5),
		CHIP(test_gate_holds),
		CHIP(test_access_modes),
		CHIP(test_latch),
		CHIP(test_readback),
		CHIP(test_bcd),
		CHIP(test_port61),
		CHIP(test_tsc_calibration),
		CHIP(test_irq_track),
		CHIP(test_chip_dump),
		BOTH(test_device_periodic_irq0),
		BOTH(test_device_oneshot_irq0),
		BOTH(test_device_bios_init),
		BOTH(test_device_ports),
		BOTH(test_device_irq0_to_ioapic),
		BOTH(test_device_save_load),
		BOTH(test_device_load_refuses),
		BOTH(test_device_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
