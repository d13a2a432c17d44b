/*
 * testdev and debugexit, driven through the VM's range buses as a vCPU
 * would drive them.  The register layout is restated here on purpose: the
 * reference model below is written from the spec in devices/testdev.c, not
 * from its code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "bus/range.h"
#include "vmm/device.h"
#include "vmm/vm.h"
#include "restore_trip.h"

#define PORT      0xe0
#define MMIO      0xfebf0000ull
#define PIO_LEN   16
#define MMIO_LEN  4096
#define ID        0x56454454u
#define R_SCRATCH0 0x0
#define R_ID       0x4
#define R_INVERT   0x8
#define R_WCOUNT   0xc
#define R_BANK     0x10

struct fixture {
	struct vm vm;
	enum io_mode mode;
	const char *spec;
};

static struct vm *cur;

static bool pio_send(uint16_t port, unsigned size, bool write, uint32_t *val)
{
	struct msg_pio m = { .port = port, .size = size, .write = write,
			     .value = write ? *val : 0x5a5a5a5a };
	bool handled = range_bus_send(cur->bus.pio, port, &m);

	if (!write)
		*val = m.value;
	return handled;
}

static uint32_t pin(uint16_t port, unsigned size)
{
	uint32_t v;

	assert_true(pio_send(port, size, false, &v));
	return v;
}

static void pout(uint16_t port, unsigned size, uint32_t v)
{
	assert_true(pio_send(port, size, true, &v));
}

static bool mmio_send(uint64_t addr, unsigned size, bool write, uint64_t *val)
{
	struct msg_mmio m = { .addr = addr, .size = size, .write = write,
			      .value = write ? *val : 0x5a5a5a5a5a5a5a5aull };
	bool handled = range_bus_send(cur->bus.mmio, addr, &m);

	if (!write)
		*val = m.value;
	return handled;
}

static uint64_t mread(uint64_t off, unsigned size)
{
	uint64_t v;

	assert_true(mmio_send(MMIO + off, size, false, &v));
	return v;
}

static void mwrite(uint64_t off, unsigned size, uint64_t v)
{
	assert_true(mmio_send(MMIO + off, size, true, &v));
}

static int setup_with(void **state, enum io_mode mode, const char *spec)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mode = mode;
	f->spec = spec;
	assert_int_equal(vm_init_buses(&f->vm, mode), 0);
	if (spec)
		assert_int_equal(device_create(&f->vm, spec), 0);
	cur = &f->vm;
	*state = f;
	return 0;
}

static int setup_lock(void **state) { return setup_with(state, IO_MODE_LOCK, "testdev"); }
static int setup_thread(void **state) { return setup_with(state, IO_MODE_THREAD, "testdev"); }
static int setup_claimed(void **state)
{
	return setup_with(state, IO_MODE_THREAD, "testdev:0xe0,0xfebf0000,claimed");
}
static int setup_bare(void **state) { return setup_with(state, IO_MODE_LOCK, NULL); }

static int teardown(void **state)
{
	struct fixture *f = *state;

	vm_run_exit_hooks(&f->vm);
	vm_fini_buses(&f->vm);
	free(f);
	cur = NULL;
	return 0;
}

static void test_id_every_width_and_offset(void **state)
{
	(void)state;
	assert_int_equal(pin(PORT + R_ID, 4), ID);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(pin(PORT + R_ID + i, 1), (ID >> (8 * i)) & 0xff);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(pin(PORT + R_ID + i, 2), (ID >> (8 * i)) & 0xffff);
	assert_int_equal(mread(R_ID, 4), ID);
	assert_int_equal(mread(R_SCRATCH0, 8), (uint64_t)ID << 32);
	/* Writes do not change it (but they are write accesses). */
	pout(PORT + R_ID, 4, 0);
	mwrite(R_ID + 1, 2, 0);
	assert_int_equal(pin(PORT + R_ID, 4), ID);
}

static void test_scratch_is_byte_granular(void **state)
{
	(void)state;
	pout(PORT, 4, 0x11223344);
	assert_int_equal(pin(PORT, 4), 0x11223344);
	pout(PORT + 1, 1, 0xaa);
	assert_int_equal(pin(PORT, 4), 0x1122aa44);
	pout(PORT + 2, 2, 0xccbb);
	assert_int_equal(pin(PORT, 4), 0xccbbaa44);
	pout(PORT + 1, 2, 0x9988);              /* unaligned, inside the register */
	assert_int_equal(pin(PORT, 4), 0xcc998844u);
	assert_int_equal(pin(PORT + 1, 2), 0x9988);
	/* Straddling SCRATCH0 byte 3 and ID byte 0: only the scratch byte moves. */
	pout(PORT + 3, 2, 0x7766);
	assert_int_equal(pin(PORT, 4), 0x66998844);
	assert_int_equal(pin(PORT + 3, 2), ((ID & 0xff) << 8) | 0x66);

	/* A 64-bit bank register, and accesses crossing two of them. */
	mwrite(R_BANK, 8, 0x0123456789abcdefull);
	mwrite(R_BANK + 3, 1, 0x5a);
	assert_int_equal(mread(R_BANK, 8), 0x012345675aabcdefull);
	mwrite(R_BANK + 6, 4, 0xfeedf00d);
	assert_int_equal(mread(R_BANK, 8), 0xf00d45675aabcdefull);
	assert_int_equal(mread(R_BANK + 8, 2), 0xfeed);
	assert_int_equal(mread(R_BANK + 5, 8), 0x000000feedf00d45ull);
}

static void test_invert_stores_the_complement(void **state)
{
	(void)state;
	pout(PORT + R_INVERT, 4, 0x12345678);
	assert_int_equal(pin(PORT + R_INVERT, 4), 0xedcba987);
	mwrite(R_INVERT + 1, 1, 0x0f);
	assert_int_equal(pin(PORT + R_INVERT, 4), 0xedcbf087);
	pout(PORT + R_INVERT + 2, 2, 0xffff);
	assert_int_equal(mread(R_INVERT, 4), 0x0000f087);
}

static void test_wcount_counts_write_accesses(void **state)
{
	(void)state;
	assert_int_equal(pin(PORT + R_WCOUNT, 4), 0);
	pout(PORT, 1, 1);
	pout(PORT + R_ID, 4, 1);                /* ignored, still counted */
	mwrite(R_BANK + 0x100, 8, 1);
	mwrite(MMIO_LEN - 1, 1, 1);
	(void)pin(PORT, 4);                     /* reads are not counted */
	(void)mread(R_BANK, 8);
	assert_int_equal(pin(PORT + R_WCOUNT, 4), 4);
	assert_int_equal(mread(R_WCOUNT, 4), 4);
	assert_int_equal(pin(PORT + R_WCOUNT + 1, 2), 0);
	/* A write touching WCOUNT resets it and is not counted... */
	pout(PORT + R_WCOUNT + 3, 1, 0xff);
	assert_int_equal(pin(PORT + R_WCOUNT, 4), 0);
	/* ...also when it straddles into it from INVERT. */
	pout(PORT, 2, 0);
	pout(PORT + R_INVERT + 3, 2, 0x0000);
	assert_int_equal(pin(PORT + R_WCOUNT, 4), 0);
	assert_int_equal(pin(PORT + R_INVERT + 3, 1), 0xff);
}

static void test_windows_share_one_register_file(void **state)
{
	(void)state;
	pout(PORT, 4, 0xcafe0001);
	assert_int_equal(mread(0, 4), 0xcafe0001);
	mwrite(2, 2, 0xbeef);
	assert_int_equal(pin(PORT, 4), 0xbeef0001);
	pout(PORT + R_INVERT, 4, 0x0f0f0f0f);
	assert_int_equal(mread(R_INVERT, 8), 0xf0f0f0f0u | (uint64_t)3 << 32);
}

static void test_bytes_past_the_window_are_open_bus(void **state)
{
	(void)state;
	pout(PORT + R_INVERT, 4, 0);            /* INVERT = ffffffff */
	pout(PORT + R_WCOUNT, 4, 0);
	pout(PORT + 0xd, 4, 0x12345678);        /* WCOUNT bytes 1-3, then nothing */
	assert_int_equal(pin(PORT + 0xe, 4), 0xffff0000);
	assert_int_equal(pin(PORT + 0xf, 2), 0xff00);
	mwrite(MMIO_LEN - 4, 4, 0xa1b2c3d4);
	assert_int_equal(mread(MMIO_LEN - 4, 8), 0xffffffffa1b2c3d4ull);
	mwrite(MMIO_LEN - 2, 8, 0x1122334455667788ull);
	assert_int_equal(mread(MMIO_LEN - 4, 4), 0x7788c3d4);
}

/* Reference model, byte by byte, from the spec. */
static uint8_t ref[MMIO_LEN];
static uint32_t ref_count;

static void ref_reset(void)
{
	memset(ref, 0, sizeof(ref));
	for (unsigned i = 0; i < 4; i++)
		ref[R_ID + i] = ID >> (8 * i);
	ref_count = 0;
}

static uint64_t ref_access(unsigned off, unsigned len, unsigned size, bool write, uint64_t v)
{
	bool hit = false;
	uint64_t r = 0;

	for (unsigned i = 0; i < size; i++) {
		unsigned o = off + i;
		uint8_t b = v >> (8 * i), got;

		if (o >= len) {
			got = 0xff;
		} else if (o >= R_WCOUNT && o < R_WCOUNT + 4) {
			hit = true;
			got = ref_count >> (8 * (o - R_WCOUNT));
		} else {
			got = ref[o];
		}
		r |= (uint64_t)got << (8 * i);
		if (!write || o >= len)
			continue;
		if (o >= R_INVERT && o < R_INVERT + 4)
			ref[o] = ~b;
		else if (o < R_ID || o >= R_ID + 4)
			if (o < R_WCOUNT || o >= R_WCOUNT + 4)
				ref[o] = b;
	}
	if (write)
		ref_count = hit ? 0 : ref_count + 1;
	return r;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_random_accesses_match_the_model(void **state)
{
	(void)state;
	ref_reset();
	for (unsigned i = 0; i < 20000; i++) {
		uint64_t r = next_rand(), v = next_rand();
		bool port = r & 1, write = r & 2;
		unsigned size = 1u << ((r >> 2) % (port ? 3 : 4));
		unsigned len = port ? PIO_LEN : MMIO_LEN;
		/* Mostly the low registers, sometimes anywhere in the window. */
		unsigned off = (r >> 8) % ((r & 0x80) ? len : 20);
		uint64_t want, got;

		if (off >= len)
			off = len - 1;
		if (port)
			v &= 0xffffffffu;
		want = ref_access(off, len, size, write, v);
		if (port) {
			uint32_t pv = v;

			assert_true(pio_send(PORT + off, size, write, &pv));
			got = pv;
		} else {
			assert_true(mmio_send(MMIO + off, size, write, &v));
			got = v;
		}
		if (!write && got != want)
			fail_msg("op %u: %s read size %u at %#x: got %#llx want %#llx", i,
				 port ? "port" : "mmio", size, off,
				 (unsigned long long)got, (unsigned long long)want);
	}
	for (unsigned off = 0; off < MMIO_LEN; off += 8)
		assert_int_equal(mread(off, 8), ref_access(off, MMIO_LEN, 8, false, 0));
}

static void test_unmapped_is_not_handled(void **state)
{
	uint32_t v;
	uint64_t m;

	(void)state;
	assert_false(pio_send(PORT - 1, 1, false, &v));
	assert_false(pio_send(PORT + PIO_LEN, 4, false, &v));
	assert_false(mmio_send(MMIO + MMIO_LEN, 4, false, &m));
	assert_false(mmio_send(MMIO - 1, 1, false, &m));
}

/* Concurrency: threads hammering one device, each owning bytes of it. */
#define THREADS 4
#define ROUNDS  20000

struct worker {
	unsigned id;
	bool torn;
	bool lost;
	bool unhandled;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	bus_thread_enter();
	for (unsigned i = 1; i <= ROUNDS; i++) {
		uint8_t b = (uint8_t)(i * 7 + w->id);
		uint64_t word = 0x0101010101010101ull * b, seen;

		uint32_t v = b;
		bool ok;

		/* No cmocka asserts off the main thread: record, check later. */
		/* Byte w->id of SCRATCH0 is this thread's; others write theirs. */
		ok = pio_send(PORT + w->id, 1, true, &v);
		ok &= pio_send(PORT + w->id, 1, false, &v);
		if (v != b)
			w->lost = true;
		/* A whole aligned bank word: readers must never see a mix. */
		ok &= mmio_send(MMIO + R_BANK + 8 * w->id, 8, true, &word);
		ok &= mmio_send(MMIO + R_BANK + 8 * ((w->id + 1) % THREADS), 8, false, &seen);
		if (seen != 0x0101010101010101ull * (uint8_t)seen)
			w->torn = true;
		w->unhandled |= !ok;
	}
	bus_thread_exit();
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct bus_stats *st = range_bus_stats(f->vm.bus.pio);
	uint64_t claimed0 = atomic_load(&st->claimed);
	struct worker w[THREADS];
	pthread_t t[THREADS];

	pout(PORT + R_WCOUNT, 4, 0);
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_false(w[i].unhandled);
		assert_false(w[i].lost);
		assert_false(w[i].torn);
	}
	/* Every write access counted exactly once. */
	assert_int_equal(pin(PORT + R_WCOUNT, 4), 2u * THREADS * ROUNDS);
	for (unsigned i = 0; i < THREADS; i++)
		assert_int_equal(pin(PORT + i, 1), (uint8_t)(ROUNDS * 7 + i));
	/* The spec's claim flag reached the bus. */
	if (f->spec && strstr(f->spec, "claimed"))
		assert_true(atomic_load(&st->claimed) > claimed0);
	else
		assert_int_equal(atomic_load(&st->claimed), claimed0);
}

static void test_bad_specs_are_refused(void **state)
{
	(void)state;
	assert_int_equal(device_create(cur, "testdev:zz"), -EINVAL);
	assert_int_equal(device_create(cur, "testdev:0xe0,0xfebf0001"), -EINVAL);
	assert_int_equal(device_create(cur, "testdev:0xe0,0xfebf0000,bogus"), -EINVAL);
	assert_int_equal(device_create(cur, "testdev:0xfff8"), -EINVAL);
	assert_int_equal(device_create(cur, "debugexit:0xf4,3"), -EINVAL);
	assert_int_equal(device_create(cur, "debugexit:0xf4x"), -EINVAL);
	assert_int_equal(range_bus_count(cur->bus.pio), 0);
	assert_int_equal(range_bus_count(cur->bus.mmio), 0);
}

static void test_placement_and_overlap(void **state)
{
	(void)state;
	assert_int_equal(device_create(cur, "testdev:0x300,0xfe000000"), 0);
	assert_int_equal(pin(0x300 + R_ID, 4), ID);
	assert_int_equal(mread(0xfe000000ull - MMIO + R_ID, 4), ID);
	assert_false(pio_send(PORT + R_ID, 4, false, &(uint32_t){0}));
	/* Same ports again: refused, and the MMIO part is not left behind. */
	assert_true(device_create(cur, "testdev:0x300,0xfeb00000") < 0);
	assert_false(mmio_send(0xfeb00000ull + R_ID, 4, false, &(uint64_t){0}));
	/* Same MMIO, other ports: refused, and the ports are given back. */
	assert_true(device_create(cur, "testdev:0x310,0xfe000000") < 0);
	assert_false(pio_send(0x310 + R_ID, 4, false, &(uint32_t){0}));
	assert_int_equal(range_bus_count(cur->bus.pio), 1);
	assert_int_equal(range_bus_count(cur->bus.mmio), 1);
	/* Empty fields keep their defaults. */
	assert_int_equal(device_create(cur, "testdev:,0xfe001000"), 0);
	assert_int_equal(pin(PORT + R_ID, 4), ID);
}

static void test_debugexit_status(void **state)
{
	uint32_t v;

	(void)state;
	assert_int_equal(device_create(cur, "debugexit"), 0);
	assert_false(atomic_load(&cur->exiting));
	assert_false(pio_send(0xf4, 1, false, &v));   /* reads are not decoded */
	assert_false(atomic_load(&cur->exiting));
	pout(0xf4, 1, 0x121);                          /* only the written byte */
	assert_true(atomic_load(&cur->exiting));
	assert_int_equal(vm_wait_exit(cur), (0x21 << 1) | 1);
}

static void test_debugexit_wide(void **state)
{
	(void)state;
	assert_int_equal(device_create(cur, "debugexit:0x501,2"), 0);
	assert_false(pio_send(0xf4, 1, true, &(uint32_t){0}));
	pout(0x502, 2, 0x1234);
	assert_int_equal(vm_wait_exit(cur), 0x2469);
}

static void test_debugexit_pass_is_one(void **state)
{
	(void)state;
	assert_int_equal(device_create(cur, "debugexit:,4"), 0);
	pout(0xf4, 4, 0);
	assert_int_equal(vm_wait_exit(cur), 1);
}

/* Random writes, then the whole file and WCOUNT on a loaded second device. */
static void test_save_load(void **state)
{
	struct fixture *f = *state, *g;
	uint64_t a[MMIO_LEN / 8];
	int fa;

	for (int i = 0; i < 300; i++) {
		uint64_t r = next_rand();

		mwrite((r >> 8) % (MMIO_LEN / 8) * 8, 8, next_rand());
	}
	pout(PORT + R_INVERT, 4, 0x12345678);
	for (unsigned w = 0; w < MMIO_LEN / 8; w++)
		a[w] = mread(w * 8, 8);
	fa = trip_save(&f->vm);
	setup_with((void **)&g, f->mode, f->spec);
	trip_reload(&g->vm, fa);
	for (unsigned w = 0; w < MMIO_LEN / 8; w++)
		assert_int_equal(mread(w * 8, 8), a[w]);
	assert_int_equal(pin(PORT + R_WCOUNT, 4), 301);
	assert_int_equal(pin(PORT + R_INVERT, 4), ~0x12345678u);
	close(fa);
	teardown((void **)&g);
	cur = &f->vm;
}

static void test_load_refuses(void **state)
{
	struct fixture *f = *state;
	uint8_t bad = 0x55;
	int fa;

	fa = trip_save(&f->vm);
	trip_assert_patched_refused(&f->vm, fa, "testdev", PORT, 4, &bad, 1,
				    "read-only bytes of word 0 changed");
	trip_assert_patched_refused(&f->vm, fa, "testdev", PORT, 13, &bad, 1,
				    "read-only bytes of word 0x8 changed");
	trip_assert_patched_refused(&f->vm, fa, "testdev", PORT, 100, NULL, 0, "past its end");
	trip_assert_patched_refused(&f->vm, fa, "testdev", PORT, MMIO_LEN + 9, NULL, 0,
				    "left unread");
	assert_int_equal(pin(PORT + R_ID, 4), ID);
	close(fa);
}

#define EVERY_MODE(fn) cmocka_unit_test_setup_teardown(fn, setup_lock, teardown), \
		 cmocka_unit_test_setup_teardown(fn, setup_thread, teardown), \
		 cmocka_unit_test_setup_teardown(fn, setup_claimed, teardown)
#define BARE(fn) cmocka_unit_test_setup_teardown(fn, setup_bare, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		EVERY_MODE(test_id_every_width_and_offset),
		EVERY_MODE(test_scratch_is_byte_granular),
		EVERY_MODE(test_invert_stores_the_complement),
		EVERY_MODE(test_wcount_counts_write_accesses),
		EVERY_MODE(test_windows_share_one_register_file),
		EVERY_MODE(test_bytes_past_the_window_are_open_bus),
		EVERY_MODE(test_random_accesses_match_the_model),
		EVERY_MODE(test_unmapped_is_not_handled),
		EVERY_MODE(test_concurrent_writers),
		EVERY_MODE(test_save_load),
		EVERY_MODE(test_load_refuses),
		BARE(test_bad_specs_are_refused),
		BARE(test_placement_and_overlap),
		BARE(test_debugexit_status),
		BARE(test_debugexit_wide),
		BARE(test_debugexit_pass_is_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
