/*
 * The MC146818 RTC and CMOS RAM, driven through ports 0x70/0x71 on a VM's
 * port bus, with a made-up time source so every register value is exact.
 * Expected values are restated from the datasheet and the PC CMOS map.
 * The last tests run on the real clock and wait (with a generous
 * timeout) for the periodic interrupt.  Every test runs behind the global
 * lock and behind the I/O thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/pio_access.h"
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bus/message.h"
#include "devices/rtc_cmos.h"
#include "vmm/device.h"
#include "vmm/timer.h"
#include "vmm/vm.h"
#include "restore_trip.h"

#define NS       1000000000ll
#define MIB      (1024ull * 1024)
#define GIB      (1024 * MIB)

/* 2024-02-29 13:45:07 UTC, a Thursday; 1999-12-31 23:59:58 UTC. */
#define LEAP_DAY 1709214307ll
#define Y2K_EVE  946684798ll

/* Register B bits, restated: SET, PIE, AIE, UIE, DM (binary), 24/12. */
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_BIN 0x04
#define B_24H 0x02

struct fixture {
	struct vm vm;
	struct rtc *rtc;
	_Atomic int64_t now;            /* the made-up UTC time, ns */
	_Atomic unsigned edges[16];     /* IRQ_EDGE messages per line */
	_Atomic unsigned bad_irq;       /* anything but an edge */
};

static struct fixture *f;

static int64_t fake_clock(void *ctx)
{
	struct fixture *fx = ctx;

	return atomic_load(&fx->now);
}

static bool capture_irq(void *dev, void *m)
{
	struct fixture *fx = dev;
	const struct msg_irq *msg = m;

	if (msg->action != IRQ_EDGE || msg->line >= 16)
		atomic_fetch_add(&fx->bad_irq, 1);
	else
		atomic_fetch_add(&fx->edges[msg->line], 1);
	return true;
}

static int setup(void **state, enum io_mode mode)
{
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->vm.mem.size = 64 * MIB;
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	assert_int_equal(bus_attach(f->vm.bus.irq, capture_irq, bus_claim_always, f), 0);
	f->rtc = rtc_create(&f->vm);
	assert_non_null(f->rtc);
	atomic_store(&f->now, LEAP_DAY * NS + NS / 2);
	rtc_set_clock(f->rtc, fake_clock, f);
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup(state, IO_MODE_LOCK); }
static int setup_thread(void **state) { return setup(state, IO_MODE_THREAD); }

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(atomic_load(&f->bad_irq), 0);
	rtc_destroy(f->rtc);
	bus_detach(f->vm.bus.irq, capture_irq, f);
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

static uint8_t cmos_read(uint8_t idx)
{
	out_n(0x70, 1, idx);
	return (uint8_t)in_n(0x71, 1);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	out_n(0x70, 1, idx);
	out_n(0x71, 1, v);
}

static void set_time(int64_t ns)
{
	atomic_store(&f->now, ns);
}

static void advance(int64_t ns)
{
	atomic_fetch_add(&f->now, ns);
}

/* Seconds, minutes, hours, day of week, day of month, month, year, century. */
static void expect_time(const uint8_t want[8])
{
	static const uint8_t idx[8] = { 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32 };

	for (unsigned i = 0; i < 8; i++) {
		uint8_t got = cmos_read(idx[i]);

		if (got != want[i])
			fail_msg("register %#x: %#x, want %#x", idx[i], got, want[i]);
	}
}

static void test_bcd_24h(void **state)
{
	static const uint8_t want[8] = { 0x07, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20 };

	(void)state;
	assert_int_equal(cmos_read(0x0b), B_24H);   /* power-on: BCD, 24 hours */
	expect_time(want);
}

static void test_binary_24h(void **state)
{
	static const uint8_t want[8] = { 7, 45, 13, 5, 29, 2, 24, 20 };

	(void)state;
	cmos_write(0x0b, B_BIN | B_24H);
	expect_time(want);
}

static void test_12h(void **state)
{
	(void)state;
	cmos_write(0x0b, 0);                       /* BCD, 12 hours */
	assert_int_equal(cmos_read(0x04), 0x81);   /* 1 PM */
	cmos_write(0x0b, B_BIN);
	assert_int_equal(cmos_read(0x04), 0x81);
	set_time((LEAP_DAY - 13 * 3600) * NS);     /* 00:45: 12 AM */
	assert_int_equal(cmos_read(0x04), 12);
	cmos_write(0x0b, 0);
	assert_int_equal(cmos_read(0x04), 0x12);
	set_time((LEAP_DAY - 3600) * NS);          /* 12:45: 12 PM */
	assert_int_equal(cmos_read(0x04), 0x92);
	cmos_write(0x0b, B_BIN);
	assert_int_equal(cmos_read(0x04), 0x8c);
}

static void test_time_advances(void **state)
{
	(void)state;
	assert_int_equal(cmos_read(0x00), 0x07);
	advance(NS / 2 - 1);
	assert_int_equal(cmos_read(0x00), 0x07);
	advance(1);
	assert_int_equal(cmos_read(0x00), 0x08);
	advance(3 * 24 * 3600 * NS);               /* past the leap day into March */
	assert_int_equal(cmos_read(0x07), 0x03);
	assert_int_equal(cmos_read(0x08), 0x03);
	assert_int_equal(cmos_read(0x06), 0x01);   /* Sunday */
}

/* SET freezes the registers; clearing it runs the clock from what they hold. */
/* Stop the RTC at 1999-12-31 23:59:58 (SET stays on), through the registers. */
static void set_eve(void)
{
	cmos_write(0x0b, B_SET | B_24H);
	cmos_write(0x00, 0x58);
	cmos_write(0x02, 0x59);
	cmos_write(0x04, 0x23);
	cmos_write(0x07, 0x31);
	cmos_write(0x08, 0x12);
	cmos_write(0x09, 0x99);
	cmos_write(0x32, 0x19);
}

static void test_set_time(void **state)
{
	static const uint8_t frozen[8] = { 0x07, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20 };
	static const uint8_t eve[8] = { 0x58, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19 };
	static const uint8_t y2k[8] = { 0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20 };

	(void)state;
	cmos_write(0x0b, B_SET | B_24H);
	advance(5 * NS);
	expect_time(frozen);
	assert_int_equal(cmos_read(0x0a) & 0x80, 0);   /* no update while SET */
	set_eve();
	cmos_write(0x0b, B_24H);
	expect_time(eve);
	advance(2 * NS);
	expect_time(y2k);
}

static void test_set_clears_uie(void **state)
{
	(void)state;
	cmos_write(0x0b, B_UIE | B_24H);
	assert_int_equal(cmos_read(0x0b), B_UIE | B_24H);
	cmos_write(0x0b, B_SET | B_UIE | B_24H);
	assert_int_equal(cmos_read(0x0b), B_SET | B_24H);
}

/* A time write while the clock runs takes effect at once and keeps running. */
static void test_write_running(void **state)
{
	(void)state;
	cmos_write(0x02, 0x10);
	assert_int_equal(cmos_read(0x02), 0x10);
	assert_int_equal(cmos_read(0x04), 0x13);
	assert_int_equal(cmos_read(0x00), 0x07);
	advance(NS);
	assert_int_equal(cmos_read(0x00), 0x08);
	assert_int_equal(cmos_read(0x02), 0x10);
}

/* UIP: the last 244 us before each second, never while SET. */
static void test_uip(void **state)
{
	(void)state;
	assert_int_equal(cmos_read(0x0a), 0x26);
	set_time(LEAP_DAY * NS + NS - 244000 - 1);
	assert_int_equal(cmos_read(0x0a), 0x26);
	set_time(LEAP_DAY * NS + NS - 244000);
	assert_int_equal(cmos_read(0x0a), 0xa6);
	set_time(LEAP_DAY * NS + NS - 1);
	assert_int_equal(cmos_read(0x0a), 0xa6);
	cmos_write(0x0b, B_SET | B_24H);
	assert_int_equal(cmos_read(0x0a), 0x26);
	cmos_write(0x0b, B_24H);
	set_time((LEAP_DAY + 1) * NS);
	assert_int_equal(cmos_read(0x0a), 0x26);
}

static void test_regs_a_c_d(void **state)
{
	(void)state;
	cmos_write(0x0a, 0xff);
	assert_int_equal(cmos_read(0x0a), 0x7f);   /* UIP is read-only */
	cmos_write(0x0a, 0x26);
	assert_int_equal(cmos_read(0x0d), 0x80);   /* VRT */
	cmos_write(0x0d, 0x00);
	assert_int_equal(cmos_read(0x0d), 0x80);
	(void)cmos_read(0x0c);
	cmos_write(0x0c, 0xff);
	assert_int_equal(cmos_read(0x0c), 0x00);
}

/* Flags without their enables: set, no IRQF, no interrupt, cleared by reading. */
static void test_flags_polled(void **state)
{
	(void)state;
	(void)cmos_read(0x0c);
	advance(1000000);                          /* 1 ms: a 1024 Hz tick went by */
	assert_int_equal(cmos_read(0x0c), 0x40);
	assert_int_equal(cmos_read(0x0c), 0x00);
	advance(NS / 2);                           /* the next second starts */
	assert_int_equal(cmos_read(0x0c), 0x50);   /* PF, UF */
	cmos_write(0x0a, 0x20);                    /* no periodic rate */
	advance(NS);
	assert_int_equal(cmos_read(0x0c), 0x10);
	assert_int_equal(atomic_load(&f->edges[8]), 0);
}

/*
 * Periodic rates (register A RS): 32768 Hz / 2^(RS-1), with RS 1 and 2
 * repeating rates 8 and 9.  PF comes exactly one period after a boundary.
 */
static void test_periodic_rates(void **state)
{
	static const struct { uint8_t a; int64_t period_ceil_ns; } rates[] = {
		{ 0x21, 3906250 }, { 0x22, 7812500 }, { 0x23, 122071 },
		{ 0x26, 976563 }, { 0x2f, 500000000 },
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		cmos_write(0x0a, rates[i].a);
		set_time((LEAP_DAY + 10 + (int64_t)i) * NS);   /* on a boundary of every rate */
		(void)cmos_read(0x0c);
		advance(rates[i].period_ceil_ns - 1);
		if (cmos_read(0x0c) & 0x40)
			fail_msg("A %#x: PF before one period", rates[i].a);
		advance(1);
		if (!(cmos_read(0x0c) & 0x40))
			fail_msg("A %#x: no PF after one period", rates[i].a);
	}
}

static void test_alarm(void **state)
{
	(void)state;
	cmos_write(0x0a, 0x20);
	cmos_write(0x01, 0x09);                    /* 13:45:09 */
	cmos_write(0x03, 0x45);
	cmos_write(0x05, 0x13);
	(void)cmos_read(0x0c);
	advance(NS);                               /* 13:45:08 */
	assert_int_equal(cmos_read(0x0c), 0x10);
	advance(NS);                               /* 13:45:09 */
	assert_int_equal(cmos_read(0x0c), 0x30);
	advance(3600 * NS);                        /* 14:45:09: the hour differs */
	assert_int_equal(cmos_read(0x0c), 0x10);
	cmos_write(0x05, 0xff);                    /* any hour */
	advance(3600 * NS - NS);                   /* 15:45:08 */
	assert_int_equal(cmos_read(0x0c), 0x10);
	advance(2 * NS);                           /* 15:45:10, past :09 */
	assert_int_equal(cmos_read(0x0c), 0x30);
	advance(23 * 3600 * NS);                   /* a whole day: it matched */
	assert_int_equal(cmos_read(0x0c), 0x30);
}

/* An enabled flag sets IRQF and raises one edge until C is read. */
static void test_irq_update(void **state)
{
	(void)state;
	cmos_write(0x0a, 0x20);
	(void)cmos_read(0x0c);
	cmos_write(0x0b, B_UIE | B_24H);
	assert_int_equal(atomic_load(&f->edges[8]), 0);
	advance(NS);
	(void)cmos_read(0x0a);                     /* any access sees the update */
	assert_int_equal(atomic_load(&f->edges[8]), 1);
	advance(NS);
	(void)cmos_read(0x0a);
	assert_int_equal(atomic_load(&f->edges[8]), 1);
	assert_int_equal(cmos_read(0x0c), 0x90);
	advance(NS);
	(void)cmos_read(0x0a);
	assert_int_equal(atomic_load(&f->edges[8]), 2);
	assert_int_equal(cmos_read(0x0c), 0x90);
	/* Enabling an interrupt whose flag is already up raises it too. */
	cmos_write(0x0b, B_24H);
	advance(NS);
	cmos_write(0x0b, B_UIE | B_24H);
	assert_int_equal(atomic_load(&f->edges[8]), 3);
}

static void test_nmi_mask(void **state)
{
	(void)state;
	assert_ptr_equal(rtc_find(&f->vm), f->rtc);
	assert_false(rtc_nmi_masked(&f->vm));
	cmos_write(0x4f, 0xa5);
	out_n(0x70, 1, 0x80 | 0x4f);
	assert_true(rtc_nmi_masked(&f->vm));
	assert_int_equal(in_n(0x71, 1), 0xa5);     /* bit 7 is not part of the index */
	out_n(0x70, 1, 0x0f);
	assert_false(rtc_nmi_masked(&f->vm));
	assert_int_equal(in_n(0x70, 1), 0xff);     /* write-only */
}

static void test_cmos_ram(void **state)
{
	(void)state;
	for (unsigned i = 0x40; i < 0x80; i++)
		cmos_write((uint8_t)i, (uint8_t)(i * 7));
	for (unsigned i = 0x40; i < 0x80; i++)
		assert_int_equal(cmos_read((uint8_t)i), (uint8_t)(i * 7));
	assert_int_equal(cmos_read(0x0f), 0);
	cmos_write(0x0f, 0x0a);                    /* shutdown status: stored */
	assert_int_equal(cmos_read(0x0f), 0x0a);
	out_n(0x70, 2, 0x3e << 8 | 0x4e);          /* a word: index, then data */
	assert_int_equal(cmos_read(0x4e), 0x3e);
}

static uint16_t cmos16(uint8_t idx)
{
	return (uint16_t)(cmos_read(idx) | cmos_read((uint8_t)(idx + 1)) << 8);
}

static uint32_t cmos24(uint8_t idx)
{
	return cmos16(idx) | (uint32_t)cmos_read((uint8_t)(idx + 2)) << 16;
}

/* Memory bytes for @size of RAM, on a fresh RTC. */
static void check_memory(uint64_t size, uint16_t ext_kib, uint16_t above16, uint32_t above4g)
{
	rtc_destroy(f->rtc);
	f->vm.mem.size = size;
	f->rtc = rtc_create(&f->vm);
	assert_non_null(f->rtc);
	assert_int_equal(cmos16(0x15), 640);
	assert_int_equal(cmos16(0x17), ext_kib);
	assert_int_equal(cmos16(0x30), ext_kib);
	assert_int_equal(cmos16(0x34), above16);
	assert_int_equal(cmos24(0x5b), above4g);
}

static void test_memory_bytes(void **state)
{
	(void)state;
	assert_int_equal(cmos_read(0x10), 0x00);   /* no floppy */
	assert_int_equal(cmos_read(0x14) & 0x03, 0x02);  /* FPU, no floppy */
	/* Extended KiB above 1 MiB (max 0xFFFF); 64 KiB units above 16 MiB; above 4 GiB. */
	check_memory(64 * MIB, 63 * 1024, 48 * 16, 0);
	check_memory(1 * GIB, 0xffff, (1024 - 16) * 16, 0);
	/* 5 GiB: 3 GiB below the PCI hole, 2 GiB above 4 GiB. */
	check_memory(5 * GIB, 0xffff, (3072 - 16) * 16, 2 * 1024 * 16);
	check_memory(8 * MIB, 7 * 1024, 0, 0);
}

static void test_checksum(void **state)
{
	unsigned sum = 0;

	(void)state;
	for (unsigned i = 0x10; i <= 0x2d; i++)
		sum += cmos_read((uint8_t)i);
	assert_int_equal(sum, cmos_read(0x2e) << 8 | cmos_read(0x2f));
	assert_int_not_equal(sum, 0);
}

static int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

/* Host time plus VM time: within a minute of time(NULL). */
static void test_default_clock(void **state)
{
	struct tm tm = { 0 };
	time_t host, rtc;
	uint8_t sec;

	(void)state;
	rtc_set_clock(f->rtc, NULL, NULL);
	do {
		sec = cmos_read(0x00);
		tm.tm_min = bcd(cmos_read(0x02));
		tm.tm_hour = bcd(cmos_read(0x04));
		tm.tm_mday = bcd(cmos_read(0x07));
		tm.tm_mon = bcd(cmos_read(0x08)) - 1;
		tm.tm_year = bcd(cmos_read(0x32)) * 100 + bcd(cmos_read(0x09)) - 1900;
	} while (cmos_read(0x00) != sec);
	tm.tm_sec = bcd(sec);
	rtc = timegm(&tm);
	host = time(NULL);
	assert_true(rtc > host - 60 && rtc < host + 60);
}

static bool wait_edges(unsigned n)
{
	for (int i = 0; i < 10000 && atomic_load(&f->edges[8]) < n; i++)
		usleep(1000);
	return atomic_load(&f->edges[8]) >= n;
}

/* The periodic interrupt from the timer service, on the real clock. */
static void test_periodic_irq(void **state)
{
	(void)state;
	rtc_set_clock(f->rtc, NULL, NULL);
	cmos_write(0x0a, 0x26);                    /* 1024 Hz */
	(void)cmos_read(0x0c);
	cmos_write(0x0b, B_PIE | B_24H);
	assert_true(wait_edges(1));
	usleep(20000);                             /* 20 periods: still one edge */
	assert_int_equal(atomic_load(&f->edges[8]), 1);
	assert_int_equal(cmos_read(0x0c) & 0xc0, 0xc0);
	assert_true(wait_edges(2));
	cmos_write(0x0b, B_24H);                   /* off: no more after C is read */
	(void)cmos_read(0x0c);
	usleep(20000);
	assert_true(atomic_load(&f->edges[8]) <= 3);
	assert_int_equal(cmos_read(0x0c) & 0x80, 0);
}

static void test_model(void **state)
{
	(void)state;
	assert_int_equal(device_create(&f->vm, "rtc"), -EEXIST);   /* one per VM */
	rtc_destroy(f->rtc);
	f->rtc = NULL;
	assert_int_equal(device_create(&f->vm, "rtc:1"), -EINVAL);
	assert_int_equal(device_create(&f->vm, "rtc"), 0);
	f->rtc = rtc_find(&f->vm);
	assert_non_null(f->rtc);
	rtc_set_clock(f->rtc, fake_clock, f);
	assert_int_equal(cmos_read(0x00), 0x07);
	vm_run_exit_hooks(&f->vm);                 /* destroys it */
	assert_null(rtc_find(&f->vm));
	f->rtc = NULL;
}


/* Both fixtures' time registers, register A's rate and C's flags agree. */
static void expect_same(struct fixture *a, struct fixture *b)
{
	static const uint8_t idx[] = { 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32, 0x0b,
				       0x0c, 0x0e, 0x3f, 0x7f };
	struct fixture *keep = f;

	for (unsigned i = 0; i < sizeof(idx); i++) {
		uint8_t va, vb;

		f = a;
		va = cmos_read(idx[i]);
		f = b;
		vb = cmos_read(idx[i]);
		if (va != vb)
			fail_msg("register %#x: %#x before, %#x after the load", idx[i], va, vb);
	}
	f = keep;
}

/*
 * A set time, an alarm, CMOS bytes and pending flags, on the test clock:
 * the loaded RTC reads the same now and after time goes on.
 */
static void test_save_load(void **state)
{
	struct fixture *a = f, *b;
	int fa;

	set_eve();
	cmos_write(0x0b, B_AIE | B_24H);
	cmos_write(0x01, 0x00);                    /* alarm at 00:00:00 */
	cmos_write(0x03, 0x00);
	cmos_write(0x05, 0x00);
	cmos_write(0x3f, 0xa5);
	advance(NS);                               /* UF, no interrupt */
	out_n(0x70, 1, 0x80 | 0x0e);               /* NMI masked, index 0x0e */
	fa = trip_save(&a->vm);

	setup(state, IO_MODE_LOCK);
	b = f;
	f = a;
	*state = a;
	atomic_store(&b->now, atomic_load(&a->now));
	trip_reload(&b->vm, fa);
	assert_true(rtc_nmi_masked(&b->vm));
	assert_int_equal(vm_pio_in(&b->vm, 0x71, 1), 0);   /* index 0x0e kept */
	expect_same(a, b);
	/* Midnight: the alarm fires on both. */
	advance(NS);
	f = b;
	advance(NS);
	expect_same(a, b);
	assert_int_equal(atomic_load(&b->edges[8]), atomic_load(&a->edges[8]));
	assert_int_equal(atomic_load(&b->edges[8]), 1);
	close(fa);
	teardown(NULL);
	f = a;
}

/*
 * On the real clock: the second VM's clock is set to the first's, as a
 * restore does; its RTC reads the first one's time (not its own host
 * base), and the periodic interrupt pending at the checkpoint comes.
 */
static void test_save_load_vm_clock(void **state)
{
	struct fixture *a = f, *b;
	uint64_t t;
	int fa;

	rtc_set_clock(a->rtc, NULL, NULL);
	set_eve();
	cmos_write(0x0b, B_24H);
	cmos_write(0x0a, 0x2f);                    /* 2 Hz */
	(void)cmos_read(0x0c);
	cmos_write(0x0b, B_PIE | B_24H);
	timer_service_pause(a->vm.timers);
	t = vm_clock_ns(&a->vm);
	fa = trip_save(&a->vm);

	setup(state, IO_MODE_LOCK);
	b = f;
	*state = a;
	rtc_set_clock(b->rtc, NULL, NULL);
	timer_service_pause(b->vm.timers);
	timer_service_set_clock(b->vm.timers, t);
	trip_reload(&b->vm, fa);
	expect_same(a, b);
	f = b;
	assert_int_equal(cmos_read(0x09), 0x99);
	timer_service_resume(b->vm.timers);
	assert_true(wait_edges(1));
	assert_int_equal(cmos_read(0x0c) & 0xc0, 0xc0);
	timer_service_resume(a->vm.timers);
	close(fa);
	teardown(NULL);
	f = a;
}

/*
 * A machine reset loads the power-on checkpoint, but the RTC is
 * battery-backed: it keeps the CMOS bytes and the time set since, where a
 * snapshot load takes the checkpoint's.
 */
static void test_reset_keeps_battery_state(void **state)
{
	char why[256];
	int fa;

	(void)state;
	set_eve();
	cmos_write(0x0b, B_24H);
	cmos_write(0x3f, 0x11);
	fa = trip_save(&f->vm);                    /* the power-on checkpoint */
	cmos_write(0x3f, 0x22);
	cmos_write(0x0b, B_SET | B_24H);
	cmos_write(0x09, 0x42);                    /* a guest sets another year */
	cmos_write(0x0b, B_24H);
	assert_int_equal(trip_load_mode(&f->vm, fa, true, why, sizeof(why)), 0);
	assert_int_equal(cmos_read(0x3f), 0x22);
	assert_int_equal(cmos_read(0x09), 0x42);
	assert_int_equal(trip_load_mode(&f->vm, fa, false, why, sizeof(why)), 0);
	assert_int_equal(cmos_read(0x3f), 0x11);
	assert_int_equal(cmos_read(0x09), 0x99);
	close(fa);
}

static void test_load_refuses(void **state)
{
	uint8_t index = 0x80, flags = 0x01, a_uip = 0xa6;
	int64_t base = INT64_MAX - 5, deadline;
	int fa;

	(void)state;
	cmos_write(0x0b, B_UIE | B_24H);
	fa = trip_save(&f->vm);
	deadline = atomic_load(&f->now) + 5 * NS;
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 0, &index, 1, "bad index 0x80");
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 2, &flags, 1, "register C 0x1");
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 3 + 0x0a, &a_uip, 1, "A 0xa6");
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 131, &base, 8, "out of range");
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 155, &deadline, 8, "does not fit");
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 150, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "rtc", 0, 200, NULL, 0, "left unread");
	close(fa);
}

#define BOTH(fn) \
	cmocka_unit_test_setup_teardown(fn, setup_lock, teardown), \
	cmocka_unit_test_setup_teardown(fn, setup_thread, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_bcd_24h),
		BOTH(test_binary_24h),
		BOTH(test_12h),
		BOTH(test_time_advances),
		BOTH(test_set_time),
		BOTH(test_set_clears_uie),
		BOTH(test_write_running),
		BOTH(test_uip),
		BOTH(test_regs_a_c_d),
		BOTH(test_flags_polled),
		BOTH(test_periodic_rates),
		BOTH(test_alarm),
		BOTH(test_irq_update),
		BOTH(test_nmi_mask),
		BOTH(test_cmos_ram),
		BOTH(test_memory_bytes),
		BOTH(test_checksum),
		BOTH(test_default_clock),
		BOTH(test_periodic_irq),
		BOTH(test_model),
		BOTH(test_save_load),
		BOTH(test_save_load_vm_clock),
		BOTH(test_reset_keeps_battery_state),
		BOTH(test_load_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
