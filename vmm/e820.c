/*
 * The e820 memory map of the guest (see vmm/e820.h for its layout).
 *
 * Spec: ACPI 6.5 chapter 15 "System Address Map Interfaces" (the E820h
 * types); the areas follow doc/memory-map.md.
 */
#include "vmm/e820.h"

static void add(struct e820_entry *map, unsigned *n, uint64_t start, uint64_t end, uint32_t type)
{
	if (end > start)
		map[(*n)++] = (struct e820_entry){ .addr = start, .size = end - start, .type = type };
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

unsigned e820_build(const struct guest_memory *mem, struct e820_entry *map)
{
	uint64_t low = guest_low_ram_end(mem);
	unsigned n = 0;

	add(map, &n, 0, min_u64(low, E820_EBDA_START), E820_RAM);
	add(map, &n, E820_EBDA_START, 0xa0000, E820_RESERVED);
	add(map, &n, E820_ROM_START, E820_HIGH_START, E820_RESERVED);
	add(map, &n, E820_HIGH_START, low, E820_RAM);
	/* Region 0 is the low RAM above; the others are above the PCI hole. */
	for (unsigned i = 1; i < mem->count; i++)
		add(map, &n, mem->region[i].gpa, mem->region[i].gpa + mem->region[i].size, E820_RAM);
	return n;
}
