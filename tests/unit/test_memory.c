/*
 * Guest RAM layout and the bounds checks every guest-physical access goes
 * through: inside, at the end, one byte past, huge lengths, gpa + len
 * overflowing, the PCI hole at [3 GiB, 4 GiB) and RAM above 4 GiB.  Also
 * parse_size(), which --mem relies on.  The big VMs cost nothing: guest RAM
 * is mapped MAP_NORESERVE and only the pages touched here are populated.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include "vmm/memory.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static struct guest_memory mem;

static int teardown(void **state)
{
	(void)state;
	guest_memory_free(&mem);
	return 0;
}

/* Is every byte of [gpa, gpa+len) accepted by all three accessors? */
static bool accessible(uint64_t gpa, uint64_t len)
{
	uint8_t buf[64] = { 0 };
	bool ptr = gpa_ptr(&mem, gpa, len) != NULL;

	if (len <= sizeof(buf)) {
		assert_int_equal(gpa_read(&mem, gpa, buf, len), ptr ? 0 : -EFAULT);
		assert_int_equal(gpa_write(&mem, gpa, buf, len), ptr ? 0 : -EFAULT);
	}
	return ptr;
}

static void test_init_rejects_bad_sizes(void **state)
{
	(void)state;
	assert_int_equal(guest_memory_init(&mem, 0), -EINVAL);
	assert_int_equal(guest_memory_init(&mem, 4096), -EINVAL);
	assert_int_equal(guest_memory_init(&mem, 64 * MiB + 1), -EINVAL);
	assert_int_equal(guest_memory_init(&mem, 64 * MiB + 2048), -EINVAL);
}

static void test_small_vm_bounds(void **state)
{
	const uint64_t size = 64 * MiB;

	(void)state;
	assert_int_equal(guest_memory_init(&mem, size), 0);
	assert_int_equal(mem.size, size);
	assert_int_equal(mem.count, 1);
	assert_int_equal(guest_low_ram_end(&mem), size);

	assert_true(accessible(0, 1));
	assert_true(accessible(0, 64));
	assert_true(accessible(0x1234, 8));
	assert_true(accessible(size - 1, 1));
	assert_true(accessible(size - 8, 8));
	assert_true(gpa_ptr(&mem, 0, size) != NULL);
	/* One byte past, straddling the end, and beyond. */
	assert_false(accessible(size, 1));
	assert_false(accessible(size - 7, 8));
	assert_false(gpa_ptr(&mem, 0, size + 1) != NULL);
	assert_false(accessible(size + 4096, 4));
	assert_false(accessible(GUEST_HIGH_RAM_START, 1));
	/* Lengths and addresses that overflow 64 bits. */
	assert_false(gpa_ptr(&mem, 0, UINT64_MAX) != NULL);
	assert_false(gpa_ptr(&mem, 16, UINT64_MAX - 8) != NULL);
	assert_false(gpa_ptr(&mem, 1, UINT64_MAX) != NULL);
	assert_false(accessible(UINT64_MAX, 1));
	assert_false(accessible(UINT64_MAX - 1, 2));
	assert_false(accessible(UINT64_MAX - 3, 16));
	assert_false(gpa_ptr(&mem, UINT64_MAX - 0xfff, 0x2000) != NULL);
}

static void test_reads_see_writes(void **state)
{
	const uint64_t size = 16 * MiB;
	uint8_t out[32], in[32];
	uint8_t *host;

	(void)state;
	assert_int_equal(guest_memory_init(&mem, size), 0);
	for (unsigned i = 0; i < sizeof(out); i++)
		out[i] = (uint8_t)(i * 7 + 1);
	assert_int_equal(gpa_write(&mem, size - sizeof(out), out, sizeof(out)), 0);
	memset(in, 0, sizeof(in));
	assert_int_equal(gpa_read(&mem, size - sizeof(out), in, sizeof(in)), 0);
	assert_memory_equal(in, out, sizeof(out));
	host = gpa_ptr(&mem, size - sizeof(out), sizeof(out));
	assert_non_null(host);
	assert_memory_equal(host, out, sizeof(out));
	/* The pointer is linear within the region. */
	assert_ptr_equal(gpa_ptr(&mem, 0x1000, 1), (uint8_t *)gpa_ptr(&mem, 0, 1) + 0x1000);
	/* A refused write writes nothing. */
	memset(in, 0xee, sizeof(in));
	assert_int_equal(gpa_write(&mem, size - 16, in, sizeof(in)), -EFAULT);
	assert_memory_equal(host, out, sizeof(out));
}

/* 3.5 GiB: 3 GiB below the PCI hole, 512 MiB from 4 GiB up. */
static void test_pci_hole_and_high_ram(void **state)
{
	const uint64_t size = 3 * GiB + 512 * MiB;
	const uint64_t hole = GUEST_PCI_HOLE_START, high = GUEST_HIGH_RAM_START;
	const uint64_t high_end = high + 512 * MiB;
	uint32_t v = 0x11223344, r = 0;

	(void)state;
	assert_int_equal(hole, 3 * GiB);
	assert_int_equal(guest_memory_init(&mem, size), 0);
	assert_int_equal(mem.size, size);
	assert_int_equal(mem.count, 2);
	assert_int_equal(guest_low_ram_end(&mem), hole);

	assert_true(accessible(hole - 1, 1));
	assert_true(accessible(hole - 4, 4));
	assert_false(accessible(hole - 1, 2));        /* runs into the hole */
	assert_false(accessible(hole, 1));
	assert_false(accessible(hole + 0x1000, 4));
	assert_false(accessible(high - 1, 1));
	assert_false(accessible(high - 1, 2));        /* hole to high RAM */
	assert_false(gpa_ptr(&mem, hole - 4096, 8192) != NULL);
	assert_false(gpa_ptr(&mem, 0, size) != NULL); /* RAM is not contiguous */

	assert_true(accessible(high, 1));
	assert_true(accessible(high, 64));
	assert_true(accessible(high_end - 1, 1));
	assert_true(gpa_ptr(&mem, high, 512 * MiB) != NULL);
	assert_false(accessible(high_end, 1));
	assert_false(accessible(high_end - 1, 2));
	assert_false(gpa_ptr(&mem, high, 512 * MiB + 1) != NULL);
	assert_false(gpa_ptr(&mem, high, UINT64_MAX) != NULL);

	/* High and low RAM are distinct memory. */
	assert_int_equal(gpa_write(&mem, high, &v, sizeof(v)), 0);
	assert_int_equal(gpa_read(&mem, 0, &r, sizeof(r)), 0);
	assert_int_equal(r, 0);
	assert_int_equal(gpa_read(&mem, high, &r, sizeof(r)), 0);
	assert_int_equal(r, v);
	assert_int_equal(gpa_write(&mem, hole - 4, &v, sizeof(v)), 0);
	assert_int_equal(gpa_read(&mem, hole - 4, &r, sizeof(r)), 0);
	assert_int_equal(r, v);
}

static void test_exactly_three_gib_has_no_high_ram(void **state)
{
	(void)state;
	assert_int_equal(guest_memory_init(&mem, 3 * GiB), 0);
	assert_int_equal(mem.count, 1);
	assert_true(accessible(3 * GiB - 1, 1));
	assert_false(accessible(3 * GiB, 1));
	assert_false(accessible(GUEST_HIGH_RAM_START, 1));
}

static void test_parse_size_suffixes(void **state)
{
	(void)state;
	assert_int_equal(parse_size("1048576"), MiB);
	assert_int_equal(parse_size("4096"), 4096);
	assert_int_equal(parse_size("65536K"), 64 * MiB);
	assert_int_equal(parse_size("512M"), 512 * MiB);
	assert_int_equal(parse_size("512m"), 512 * MiB);
	assert_int_equal(parse_size("2G"), 2 * GiB);
	assert_int_equal(parse_size("3g"), 3 * GiB);
	assert_int_equal(parse_size("1T"), 1024 * GiB);
	assert_int_equal(parse_size("4KB"), 4096);
	assert_int_equal(parse_size("16777215T"), 16777215ull << 40);
	assert_int_equal(parse_size("18446744073709551615"), UINT64_MAX);
}

static void test_parse_size_rejects_garbage_and_overflow(void **state)
{
	static const char *const bad[] = {
		"", "M", "abc", "-1", "-1M", " 5M", "1.5G", "12X", "5MM", "5 M", "5M ",
		"16E", "1B", "0xZ",
		"16777216T",                 /* 2^64 */
		"16777217T",                 /* 2^64 + 2^40: wraps to 2^40 */
		"17179869185G",              /* wraps to 2^30 */
		"18446744073709551615K",     /* wraps to -1024 */
		"18446744073709551616",      /* 2^64 */
		"99999999999999999999999",
	};

	(void)state;
	assert_int_equal(parse_size(NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_size(bad[i]) != 0)
			fail_msg("parse_size(\"%s\") = %llu, want 0 (rejected)", bad[i],
				 (unsigned long long)parse_size(bad[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_init_rejects_bad_sizes, teardown),
		cmocka_unit_test_teardown(test_small_vm_bounds, teardown),
		cmocka_unit_test_teardown(test_reads_see_writes, teardown),
		cmocka_unit_test_teardown(test_pci_hole_and_high_ram, teardown),
		cmocka_unit_test_teardown(test_exactly_three_gib_has_no_high_ram, teardown),
		cmocka_unit_test(test_parse_size_suffixes),
		cmocka_unit_test(test_parse_size_rejects_garbage_and_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
