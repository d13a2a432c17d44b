/*
 * The guest's physical memory map as a PC BIOS reports it (INT 15h
 * E820h): what the Linux zero page and the PVH start info hand to the
 * kernel.  Built from struct guest_memory alone, so every loader reports
 * the same map.
 *
 *   0 .. 0x9fc00         RAM (conventional memory)
 *   0x9fc00 .. 0xa0000   reserved: the EBDA
 *   0xe0000 .. 0x100000  reserved: ACPI tables, MP table, BIOS stub
 *   1 MiB .. low end     RAM (low end: RAM size, at most 3 GiB)
 *   4 GiB ..             RAM, when guest RAM exceeds 3 GiB
 *
 * The VGA hole 0xa0000-0xe0000 and the PCI hole 3-4 GiB are left out of
 * the map, as on real machines: absent means "not RAM".
 */
#pragma once
#include <stdint.h>
#include "vmm/memory.h"

#define E820_RAM        1
#define E820_RESERVED   2

#define E820_EBDA_START 0x9fc00ull
#define E820_ROM_START  0xe0000ull
#define E820_HIGH_START 0x100000ull      /* 1 MiB */
/* Enough for the fixed entries above plus every RAM region. */
#define E820_MAX_ENTRIES (4 + GUEST_MAX_REGIONS)

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Fill @map (E820_MAX_ENTRIES long), sorted by address; returns the count. */
unsigned e820_build(const struct guest_memory *mem, struct e820_entry *map);
