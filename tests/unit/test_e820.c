/*
 * The e820 map for guest RAM sizes on both sides of the PCI hole: the map
 * must be sorted, non-overlapping, keep the EBDA and BIOS area reserved,
 * leave the VGA and PCI holes out, and count exactly the guest's RAM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include "vmm/e820.h"
#include "vmm/memory.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

struct want {
	uint64_t addr, size;
	uint32_t type;
};

/* Below 1 MiB the map is the same for every size: RAM, the EBDA, the BIOS area. */
#define LOW_MAP \
	{ 0, 0x9fc00, E820_RAM }, \
	{ 0x9fc00, 0x400, E820_RESERVED }, \
	{ 0xe0000, 0x20000, E820_RESERVED }

static void check_map(uint64_t ram, const struct want *want, unsigned nwant)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_memory mem;
	uint64_t ram_sum = 0;
	unsigned n;

	assert_int_equal(guest_memory_init(&mem, ram), 0);
	n = e820_build(&mem, map);
	assert_int_equal(n, nwant);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(map[i].addr, want[i].addr);
		assert_int_equal(map[i].size, want[i].size);
		assert_int_equal(map[i].type, want[i].type);
		if (i)
			assert_true(map[i - 1].addr + map[i - 1].size <= map[i].addr);
		if (map[i].type == E820_RAM) {
			ram_sum += map[i].size;
			/* Every byte called RAM really is guest RAM. */
			assert_non_null(gpa_ptr(&mem, map[i].addr, map[i].size));
		}
	}
	/* All RAM but the EBDA and the 0xa0000-0x100000 window. */
	assert_int_equal(ram_sum, ram - (0x100000 - 0x9fc00));
	guest_memory_free(&mem);
}

static void test_16m(void **state)
{
	const struct want w[] = {
		LOW_MAP,
		{ 0x100000, 15 * MiB, E820_RAM },
	};

	(void)state;
	check_map(16 * MiB, w, 4);
}

static void test_3g_exactly(void **state)
{
	const struct want w[] = {
		LOW_MAP,
		{ 0x100000, 3 * GiB - MiB, E820_RAM },
	};

	(void)state;
	check_map(3 * GiB, w, 4);
}

static void test_3_5g(void **state)
{
	const struct want w[] = {
		LOW_MAP,
		{ 0x100000, 3 * GiB - MiB, E820_RAM },
		{ 4 * GiB, GiB / 2, E820_RAM },
	};

	(void)state;
	check_map(3 * GiB + GiB / 2, w, 5);
}

static void test_8g(void **state)
{
	const struct want w[] = {
		LOW_MAP,
		{ 0x100000, 3 * GiB - MiB, E820_RAM },
		{ 4 * GiB, 5 * GiB, E820_RAM },
	};

	(void)state;
	check_map(8 * GiB, w, 5);
}

/* Nothing in the map touches the VGA window or the PCI hole. */
static void test_holes_absent(void **state)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_memory mem;
	unsigned n;

	(void)state;
	assert_int_equal(guest_memory_init(&mem, 8 * GiB), 0);
	n = e820_build(&mem, map);
	for (unsigned i = 0; i < n; i++) {
		uint64_t end = map[i].addr + map[i].size;

		assert_false(map[i].addr < 0xe0000 && end > 0xa0000);
		assert_false(map[i].addr < 4 * GiB && end > GUEST_PCI_HOLE_START);
	}
	guest_memory_free(&mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_16m),
		cmocka_unit_test(test_3g_exactly),
		cmocka_unit_test(test_3_5g),
		cmocka_unit_test(test_8g),
		cmocka_unit_test(test_holes_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
