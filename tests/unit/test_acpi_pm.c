/*
 * The ACPI PM block at 0x600, driven through the VM's port bus: PM1
 * status/enable/control and the PM timer, mostly on a made-up clock so the
 * timer's values and its bit-23 status are exact; the rate is checked on
 * the real clock against the host time measured around the reads.  Bit
 * positions and the frequency are restated from the ACPI specification.
 * Every test runs behind the global lock and behind the I/O thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/pio_access.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "bus/message.h"
#include "devices/acpi_pm.h"
#include "vmm/device.h"
#include "vmm/timer.h"
#include "vmm/vm.h"
#include "restore_trip.h"

#define BASE     0x600
#define PM1_STS  (BASE + 0)
#define PM1_EN   (BASE + 2)
#define PM1_CNT  (BASE + 4)
#define PM_TMR   (BASE + 8)
#define HZ       3579545ull
#define NS       1000000000ull

struct fixture {
	struct vm vm;
	struct acpi_pm *pm;
	_Atomic uint64_t now;           /* made-up VM time, ns */
};

static struct fixture *f;

static uint64_t fake_clock(void *ctx)
{
	struct fixture *fx = ctx;

	return atomic_load(&fx->now);
}

/* The first nanosecond at which the timer has counted @ticks. */
static uint64_t tick_ns(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * NS + HZ - 1) / HZ);
}

static void set_ticks(uint64_t ticks)
{
	atomic_store(&f->now, tick_ns(ticks));
}

static int setup(void **state, enum io_mode mode)
{
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	f->pm = acpi_pm_create(&f->vm, BASE);
	assert_non_null(f->pm);
	acpi_pm_set_clock(f->pm, fake_clock, f);
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup(state, IO_MODE_LOCK); }
static int setup_thread(void **state) { return setup(state, IO_MODE_THREAD); }

static int teardown(void **state)
{
	(void)state;
	acpi_pm_destroy(f->pm);
	vm_run_exit_hooks(&f->vm);
	vm_fini_buses(&f->vm);
	free(f);
	f = NULL;
	return 0;
}

static uint32_t in_n(uint16_t port, unsigned size)
{
	return vm_pio_in(&f->vm, port, size);
}

static void out_n(uint16_t port, unsigned size, uint32_t v)
{
	vm_pio_out(&f->vm, port, size, v);
}

static void test_timer_function(void **state)
{
	(void)state;
	assert_int_equal(acpi_pm_timer_at(0), 0);
	assert_int_equal(acpi_pm_timer_at(NS), HZ);
	assert_int_equal(acpi_pm_timer_at(tick_ns(1) - 1), 0);
	assert_int_equal(acpi_pm_timer_at(tick_ns(1)), 1);
	assert_int_equal(acpi_pm_timer_at(tick_ns(0xffffff)), 0xffffff);
	assert_int_equal(acpi_pm_timer_at(tick_ns(0x1000000) - 1), 0xffffff);
	assert_int_equal(acpi_pm_timer_at(tick_ns(0x1000000)), 0);     /* 24-bit wrap */
	assert_int_equal(acpi_pm_timer_at(tick_ns(0x1000005)), 5);
	assert_int_equal(acpi_pm_timer_at(tick_ns(77ull << 24 | 0x123456)), 0x123456);
}

/* 1, 2 and 4-byte reads of one value; bits 24-31 read 0; writes ignored. */
static void test_timer_reads(void **state)
{
	(void)state;
	set_ticks(3ull << 24 | 0xabcdef);
	assert_int_equal(in_n(PM_TMR, 4), 0x00abcdef);
	assert_int_equal(in_n(PM_TMR, 2), 0xcdef);
	assert_int_equal(in_n(PM_TMR + 2, 2), 0x00ab);
	assert_int_equal(in_n(PM_TMR, 1), 0xef);
	assert_int_equal(in_n(PM_TMR + 1, 1), 0xcd);
	assert_int_equal(in_n(PM_TMR + 2, 1), 0xab);
	assert_int_equal(in_n(PM_TMR + 3, 1), 0x00);
	out_n(PM_TMR, 4, 0);
	assert_int_equal(in_n(PM_TMR, 4), 0x00abcdef);
}

static void test_timer_wrap(void **state)
{
	(void)state;
	set_ticks(0xfffffe);
	assert_int_equal(in_n(PM_TMR, 4), 0xfffffe);
	set_ticks(0xffffff);
	assert_int_equal(in_n(PM_TMR, 4), 0xffffff);
	set_ticks(0x1000000);
	assert_int_equal(in_n(PM_TMR, 4), 0);
	set_ticks(0x1000001);
	assert_int_equal(in_n(PM_TMR, 4), 1);
}

/* The timer runs on the sender's thread: claimed, never serialized. */
static void test_timer_claimed(void **state)
{
	struct bus_stats *s = range_bus_stats(f->vm.bus.pio);
	uint64_t claimed = atomic_load(&s->claimed), sync = atomic_load(&s->sync);

	(void)state;
	for (int i = 0; i < 10; i++)
		(void)in_n(PM_TMR, 4);
	assert_int_equal(atomic_load(&s->claimed) - claimed, 10);
	assert_int_equal(atomic_load(&s->sync), sync);
	(void)in_n(PM1_STS, 2);          /* PM1 is serialized */
	assert_int_equal(atomic_load(&s->claimed) - claimed, 10);
}

static uint64_t host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/*
 * On the VM clock: the ticks between two reads 50 ms apart lie between
 * what the host time between the reads (at least) and around them (at
 * most) give at 3.579545 MHz.
 */
static void test_timer_rate(void **state)
{
	uint64_t t0, t1, t2, t3, ticks;
	uint32_t a, b;

	(void)state;
	acpi_pm_set_clock(f->pm, NULL, NULL);
	t0 = host_ns();
	a = in_n(PM_TMR, 4);
	t1 = host_ns();
	usleep(50000);
	t2 = host_ns();
	b = in_n(PM_TMR, 4);
	t3 = host_ns();
	if (t3 - t0 > 4 * NS)
		skip();                          /* the 24-bit counter may have wrapped */
	ticks = (b - a) & 0xffffff;
	assert_true(ticks + 1 >= (t2 - t1) * HZ / NS);
	assert_true(ticks <= (t3 - t0) * HZ / NS + 1);
	assert_true(ticks >= 179000 / 2);        /* 50 ms is about 179k ticks */
}

struct reader {
	struct fixture *f;
	unsigned backwards;
};

/* No cmocka asserts off the main thread: failures are counted instead. */
static uint32_t read_tmr(struct reader *r)
{
	struct msg_pio m = { .port = PM_TMR, .size = 4 };

	if (!range_bus_send(r->f->vm.bus.pio, PM_TMR, &m))
		r->backwards++;
	return m.value;
}

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	uint32_t prev, v;

	bus_thread_enter();
	prev = read_tmr(r);
	for (int i = 0; i < 20000; i++) {
		v = read_tmr(r);
		/* Modulo 2^24, a later read is never behind an earlier one. */
		if (((v - prev) & 0xffffff) >= 0x800000)
			r->backwards++;
		prev = v;
	}
	bus_thread_exit();
	return NULL;
}

/* Several threads reading the real clock at once: each sees it go forward. */
static void test_timer_monotonic(void **state)
{
	pthread_t t[4];
	struct reader r[4] = { { 0 } };

	(void)state;
	acpi_pm_set_clock(f->pm, NULL, NULL);
	for (int i = 0; i < 4; i++) {
		r[i].f = f;
		assert_int_equal(pthread_create(&t[i], NULL, read_loop, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].backwards, 0);
	}
}

/* TMR_STS: set each time bit 23 of the counter flips; write 1 to clear. */
static void test_tmr_sts(void **state)
{
	(void)state;
	set_ticks(0);
	acpi_pm_set_clock(f->pm, fake_clock, f);   /* start from a clear status */
	assert_int_equal(in_n(PM1_STS, 2), 0);
	set_ticks(0x7fffff);
	assert_int_equal(in_n(PM1_STS, 2), 0);
	set_ticks(0x800000);
	assert_int_equal(in_n(PM1_STS, 2), 0x0001);
	assert_int_equal(in_n(PM1_STS, 1), 0x01);
	out_n(PM1_STS, 2, 0xfffe);                 /* other bits: status stays */
	assert_int_equal(in_n(PM1_STS, 2), 0x0001);
	out_n(PM1_STS, 2, 0x0001);
	assert_int_equal(in_n(PM1_STS, 2), 0);
	set_ticks(0xffffff);
	assert_int_equal(in_n(PM1_STS, 2), 0);
	set_ticks(0x1000000);                      /* bit 23 falls: flips again */
	assert_int_equal(in_n(PM1_STS, 2), 0x0001);
	out_n(PM1_STS, 1, 0x01);                   /* a byte write clears too */
	assert_int_equal(in_n(PM1_STS, 2), 0);
	/* A dword at PM1_STS covers PM1_EN: status in the low half. */
	set_ticks(0x1800000);
	out_n(PM1_EN, 2, 0x0100);
	assert_int_equal(in_n(PM1_STS, 4), 0x01000001);
}

static void test_pm1_en(void **state)
{
	(void)state;
	assert_int_equal(in_n(PM1_EN, 2), 0);
	out_n(PM1_EN, 2, 0xffff);
	/* TMR_EN 0, GBL_EN 5, PWRBTN_EN 8, SLPBTN_EN 9, RTC_EN 10. */
	assert_int_equal(in_n(PM1_EN, 2), 0x0721);
	out_n(PM1_EN + 1, 1, 0x00);
	assert_int_equal(in_n(PM1_EN, 2), 0x0021);
	assert_int_equal(in_n(PM1_EN, 1), 0x21);
	assert_false(atomic_load(&f->vm.exiting));
}

static void test_pm1_cnt(void **state)
{
	(void)state;
	assert_int_equal(in_n(PM1_CNT, 2), 0x0001);     /* SCI_EN */
	out_n(PM1_CNT, 2, 0x0000);
	assert_int_equal(in_n(PM1_CNT, 2), 0x0001);
	out_n(PM1_CNT, 2, 3u << 10 | 0x0004);          /* SLP_TYP 3, GBL_RLS */
	assert_int_equal(in_n(PM1_CNT, 2), 3u << 10 | 0x0001);
	out_n(PM1_CNT, 2, 0x0002);                     /* BM_RLS */
	assert_int_equal(in_n(PM1_CNT, 2), 0x0003);
	assert_false(atomic_load(&f->vm.exiting));
}

/* SLP_TYP 5 with SLP_EN (the DSDT's \_S5): the VMM exits with status 0. */
static void test_s5(void **state)
{
	(void)state;
	out_n(PM1_CNT, 2, 5u << 10);                   /* type first, as ACPICA does */
	assert_false(atomic_load(&f->vm.exiting));
	out_n(PM1_CNT, 2, 5u << 10 | 1u << 13);
	assert_true(atomic_load(&f->vm.exiting));
	assert_int_equal(f->vm.exit_status, 0);
	assert_int_equal(in_n(PM1_CNT, 2) & (1u << 13), 0);   /* SLP_EN is write-only */
}

static void test_s5_byte(void **state)
{
	(void)state;
	out_n(PM1_CNT + 1, 1, (5u << 10 | 1u << 13) >> 8);
	assert_true(atomic_load(&f->vm.exiting));
	assert_int_equal(f->vm.exit_status, 0);
}

static void test_other_sleep(void **state)
{
	(void)state;
	for (unsigned typ = 0; typ < 8; typ++)
		if (typ != 5)
			out_n(PM1_CNT, 2, typ << 10 | 1u << 13);
	assert_false(atomic_load(&f->vm.exiting));
}

static void test_ports(void **state)
{
	struct msg_pio m = { .port = BASE + 6, .size = 1 };

	(void)state;
	assert_false(range_bus_send(f->vm.bus.pio, BASE + 6, &m));   /* a gap */
	assert_int_equal(in_n(PM1_CNT, 4), 0xffff0001);   /* past PM1_CNT: empty */
	acpi_pm_destroy(f->pm);
	f->pm = NULL;
	assert_false(range_bus_send(f->vm.bus.pio, PM_TMR, &m));
	assert_int_equal(device_create(&f->vm, "acpipm:zz"), -EINVAL);
	assert_int_equal(device_create(&f->vm, "acpipm:0x700"), 0);
	assert_int_equal(in_n(0x704, 2), 0x0001);
	assert_int_equal(device_create(&f->vm, "acpipm"), 0);
	assert_int_equal(in_n(PM1_CNT, 2), 0x0001);
	assert_int_equal(device_create(&f->vm, "acpipm"), -EEXIST);
}

/* PM1 registers of fixtures @a and @b read the same. */
static void expect_same(struct fixture *a, struct fixture *b)
{
	static const uint16_t ports[] = { PM1_STS, PM1_EN, PM1_CNT, PM_TMR };

	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(vm_pio_in(&a->vm, ports[i], 4), vm_pio_in(&b->vm, ports[i], 4));
}

/*
 * TMR_STS pending, enables and a sleep type: the loaded block reads the
 * same, and its status flips at the same timer value after a clear.
 */
static void test_save_load(void **state)
{
	struct fixture *a = f, *b;
	int fa;

	set_ticks(0x100);
	acpi_pm_set_clock(f->pm, fake_clock, f);
	set_ticks(0x800010);
	out_n(PM1_EN, 2, 0x0121);
	out_n(PM1_CNT, 2, 3u << 10 | 0x0002);
	fa = trip_save(&a->vm);

	setup(state, IO_MODE_LOCK);
	b = f;
	f = a;
	*state = a;
	atomic_store(&b->now, atomic_load(&a->now));
	trip_reload(&b->vm, fa);
	assert_int_equal(vm_pio_in(&b->vm, PM1_STS, 2), 0x0001);
	expect_same(a, b);
	vm_pio_out(&a->vm, PM1_STS, 2, 0x0001);
	vm_pio_out(&b->vm, PM1_STS, 2, 0x0001);
	atomic_store(&a->now, tick_ns(0xffffff));
	atomic_store(&b->now, tick_ns(0xffffff));
	expect_same(a, b);
	assert_int_equal(vm_pio_in(&b->vm, PM1_STS, 2), 0);
	atomic_store(&a->now, tick_ns(0x1000000));
	atomic_store(&b->now, tick_ns(0x1000000));
	expect_same(a, b);
	assert_int_equal(vm_pio_in(&b->vm, PM1_STS, 2), 0x0001);
	close(fa);
	f = b;
	teardown(NULL);
	f = a;
}

/* On the VM clock: a second VM set to the first one's time reads the same timer. */
static void test_save_load_vm_clock(void **state)
{
	struct fixture *a = f, *b;
	uint64_t t;
	int fa;

	acpi_pm_set_clock(a->pm, NULL, NULL);
	usleep(1000);
	timer_service_pause(a->vm.timers);
	t = vm_clock_ns(&a->vm);
	fa = trip_save(&a->vm);
	setup(state, IO_MODE_LOCK);
	b = f;
	f = a;
	*state = a;
	acpi_pm_set_clock(b->pm, NULL, NULL);
	timer_service_pause(b->vm.timers);
	timer_service_set_clock(b->vm.timers, t);
	assert_int_equal(trip_load(&b->vm, fa), 0);
	expect_same(a, b);
	assert_int_equal(vm_pio_in(&b->vm, PM_TMR, 4), acpi_pm_timer_at(t));
	timer_service_resume(a->vm.timers);
	timer_service_resume(b->vm.timers);
	close(fa);
	f = b;
	teardown(NULL);
	f = a;
}

static void test_load_refuses(void **state)
{
	uint32_t tmr = 0x0001, en = 0x0002, cnt = 0x2000;
	uint64_t half = 1ull << 40;
	int fa;

	(void)state;
	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "acpipm", BASE, 0, &tmr, 4, "STS 0x1");
	trip_assert_patched_refused(&f->vm, fa, "acpipm", BASE, 4, &en, 4, "EN 0x2");
	trip_assert_patched_refused(&f->vm, fa, "acpipm", BASE, 8, &cnt, 4, "CNT 0x2000");
	trip_assert_patched_refused(&f->vm, fa, "acpipm", BASE, 12, &half, 8, "after the VM clock");
	trip_assert_patched_refused(&f->vm, fa, "acpipm", BASE, 30, NULL, 0, "left unread");
	close(fa);
}

#define BOTH(fn) \
	cmocka_unit_test_setup_teardown(fn, setup_lock, teardown), \
	cmocka_unit_test_setup_teardown(fn, setup_thread, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_function),
		BOTH(test_timer_reads),
		BOTH(test_timer_wrap),
		BOTH(test_timer_claimed),
		BOTH(test_timer_rate),
		BOTH(test_timer_monotonic),
		BOTH(test_tmr_sts),
		BOTH(test_pm1_en),
		BOTH(test_pm1_cnt),
		BOTH(test_s5),
		BOTH(test_s5_byte),
		BOTH(test_other_sleep),
		BOTH(test_ports),
		BOTH(test_save_load),
		BOTH(test_save_load_vm_clock),
		BOTH(test_load_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
