/*
 * The MP tables as a guest's scan finds them: the floating pointer on a
 * 16-byte boundary in 0xF0000-0xFFFFF, the configuration table it points
 * at, every entry parsed by the MP 1.4 layouts, for 1, 2, 4 and 64 CPUs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vmm/acpi.h"
#include "vmm/memory.h"
#include "vmm/mptable.h"
#include "tests/unit/table_walk.h"

#define MiB (1ull << 20)
#define FILL 0x5A

static const unsigned cpu_counts[] = { 1, 2, 4, 64 };
#define NCOUNTS (sizeof(cpu_counts) / sizeof(cpu_counts[0]))

static int setup(void **state)
{
	struct guest_memory *mem = calloc(1, sizeof(*mem));

	assert_non_null(mem);
	table_mem_init(mem, 2 * MiB, FILL);
	*state = mem;
	return 0;
}

static int teardown(void **state)
{
	guest_memory_free(*state);
	free(*state);
	return 0;
}

/* Scan the BIOS area as Linux does; the configuration table's address. */
static uint64_t scan(const struct guest_memory *mem)
{
	for (uint64_t a = 0xF0000; a < 0x100000; a += 16) {
		const uint8_t *p = at(mem, a, 16);

		if (memcmp(p, "_MP_", 4))
			continue;
		assert_int_equal(p[8], 1);                /* 16 bytes */
		assert_int_equal(sum(p, 16), 0);
		assert_int_equal(p[9], 4);                /* spec 1.4 */
		assert_int_equal(p[11], 0);               /* no default configuration */
		assert_int_equal(p[12] & 0x80, 0);        /* no IMCR: virtual wire */
		return le(p + 4, 4);
	}
	fail_msg("no floating pointer");
	return 0;
}

struct counts {
	unsigned cpu, bus, ioapic, intsrc, lint;
};

static struct counts check_table(const struct guest_memory *mem, unsigned ncpus)
{
	uint64_t gpa = scan(mem);
	const uint8_t *h = at(mem, gpa, 44), *e;
	uint16_t len = (uint16_t)le(h + 4, 2), count;
	struct counts n = { 0 };
	bool irq_seen[16] = { false };
	unsigned last_type = 0, ioapic_id = 0xff;

	assert_memory_equal(h, "PCMP", 4);
	assert_int_equal(h[6], 4);                        /* spec 1.4 */
	assert_true(gpa + len <= MPTABLE_AREA_END);
	h = at(mem, gpa, len);
	assert_int_equal(sum(h, len), 0);
	assert_int_equal(le(h + 36, 4), 0xFEE00000);      /* LAPIC */
	assert_int_equal(le(h + 40, 2), 0);               /* no extended table */
	count = (uint16_t)le(h + 34, 2);

	e = h + 44;
	for (unsigned i = 0; i < count; i++) {
		assert_true(e[0] >= last_type);               /* sorted by type */
		last_type = e[0];
		switch (e[0]) {
		case 0:
			assert_true(e + 20 <= h + len);
			assert_int_equal(e[1], n.cpu);            /* APIC ID */
			assert_int_equal(e[2], 0x14);             /* LAPIC version */
			assert_int_equal(e[3], n.cpu == 0 ? 3 : 1); /* enabled, BSP */
			n.cpu++;
			e += 20;
			continue;
		case 1:
			assert_memory_equal(e + 2, "ISA   ", 6);
			assert_int_equal(e[1], 0);
			n.bus++;
			break;
		case 2:
			ioapic_id = e[1];
			assert_int_equal(e[1], MPTABLE_IOAPIC_ID);
			assert_int_equal(e[2], 0x20);             /* version */
			assert_int_equal(e[3], 1);                /* usable */
			assert_int_equal(le(e + 4, 4), 0xFEC00000);
			n.ioapic++;
			break;
		case 3:
			assert_int_equal(e[1], 0);                /* INT */
			assert_int_equal(le(e + 2, 2), 0);        /* conforms to ISA */
			assert_int_equal(e[4], 0);                /* the ISA bus */
			assert_true(e[5] < 16 && !irq_seen[e[5]]);
			irq_seen[e[5]] = true;
			assert_int_equal(e[6], ioapic_id);
			assert_int_equal(e[7], e[5] == 0 ? 2 : e[5]);
			n.intsrc++;
			break;
		case 4:
			if (e[1] == 3) {                          /* ExtINT */
				assert_int_equal(e[6], 0);        /* the BSP */
				assert_int_equal(e[7], 0);        /* LINT0 */
			} else {
				assert_int_equal(e[1], 1);        /* NMI */
				assert_int_equal(e[6], 0xff);     /* every LAPIC */
				assert_int_equal(e[7], 1);        /* LINT1 */
			}
			n.lint++;
			break;
		default:
			fail_msg("entry type %u", e[0]);
		}
		assert_true(e + 8 <= h + len);
		e += 8;
	}
	assert_ptr_equal(e, h + len);                     /* count and length agree */
	assert_int_equal(n.cpu, ncpus);
	assert_false(irq_seen[2]);                        /* the cascade: no pin */
	return n;
}

static void test_tables(void **state)
{
	struct guest_memory *mem = *state;

	for (unsigned c = 0; c < NCOUNTS; c++) {
		struct counts n;

		assert_int_equal(mptable_build(mem, cpu_counts[c], 0xFEC00000), 0);
		n = check_table(mem, cpu_counts[c]);
		assert_int_equal(n.bus, 1);
		assert_int_equal(n.ioapic, 1);
		assert_int_equal(n.intsrc, 15);
		assert_int_equal(n.lint, 2);
	}
}

static void test_floating_pointer_at_f0000(void **state)
{
	struct guest_memory *mem = *state;
	const uint8_t *p;

	assert_int_equal(mptable_build(mem, 2, 0xFEC00000), 0);
	p = at(mem, MPTABLE_ADDR, 16);
	assert_memory_equal(p, "_MP_", 4);
	assert_int_equal(le(p + 4, 4), MPTABLE_ADDR + 16);
}

static void test_shrink_after_grow(void **state)
{
	struct guest_memory *mem = *state;

	assert_int_equal(mptable_build(mem, 64, 0xFEC00000), 0);
	assert_int_equal(mptable_build(mem, 1, 0xFEC00000), 0);
	check_table(mem, 1);
}

static void test_bad_arguments(void **state)
{
	struct guest_memory *mem = *state;

	assert_int_equal(mptable_build(mem, 0, 0xFEC00000), -EINVAL);
	assert_int_equal(mptable_build(mem, 65, 0xFEC00000), -EINVAL);
	assert_int_equal(mptable_build(mem, 2, 0), -EINVAL);
	assert_int_equal(mptable_build(mem, 2, 0x100000000ull), -EINVAL);
	assert_untouched(mem->region[0].host, mem->region[0].size, FILL);
}

static void test_small_memory(void **state)
{
	static const uint64_t sizes[] = { 0xF0800, 0xF0000, 0x80000 };
	uint8_t *host = malloc(MiB);

	(void)state;
	assert_non_null(host);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct guest_memory mem = table_mem_over(host, sizes[i]);

		memset(host, FILL, MiB);
		assert_int_equal(mptable_build(&mem, 4, 0xFEC00000), -EFAULT);
		assert_untouched(host, MiB, FILL);
	}
	free(host);
}

/* Both firmware areas built, in either order: neither clobbers the other. */
static void test_with_acpi(void **state)
{
	struct guest_memory *mem = *state;
	struct acpi_config cfg = acpi_config_pc(64);
	const uint8_t *rsdp;

	for (int order = 0; order < 2; order++) {
		if (order == 0) {
			assert_int_equal(acpi_build(mem, &cfg, NULL), 0);
			assert_int_equal(mptable_build(mem, 64, 0xFEC00000), 0);
		} else {
			assert_int_equal(mptable_build(mem, 64, 0xFEC00000), 0);
			assert_int_equal(acpi_build(mem, &cfg, NULL), 0);
		}
		check_table(mem, 64);
		rsdp = at(mem, ACPI_RSDP_ADDR, 36);
		assert_memory_equal(rsdp, "RSD PTR ", 8);
		assert_int_equal(sum(rsdp, 36), 0);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tables),
		T(test_floating_pointer_at_f0000),
		T(test_shrink_after_grow),
		T(test_bad_arguments),
		cmocka_unit_test(test_small_memory),
		T(test_with_acpi),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
