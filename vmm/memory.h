/*
 * Guest RAM: anonymous mappings registered as KVM memslots.  Below 4 GiB
 * RAM stops at the PCI hole (3 GiB); the rest lives above 4 GiB.
 *
 * Every guest-physical access from the VMM goes through these helpers,
 * which check that the whole range lies inside one RAM region: a guest
 * address can never make the VMM touch host memory outside guest RAM.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PCI_HOLE_START 0xC0000000ull
#define GUEST_HIGH_RAM_START 0x100000000ull
#define GUEST_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_memory {
	uint64_t size;                 /* total RAM */
	unsigned count;
	struct mem_region region[GUEST_MAX_REGIONS];
};

/* Map @size bytes of RAM (no KVM involved; see vm_create for the slots). */
int guest_memory_init(struct guest_memory *mem, uint64_t size);
void guest_memory_free(struct guest_memory *mem);

/* Host pointer for [gpa, gpa+len) if it is all RAM, else NULL. */
void *gpa_ptr(const struct guest_memory *mem, uint64_t gpa, uint64_t len);
/* 0, or -EFAULT if any byte of the range is not RAM. */
int gpa_read(const struct guest_memory *mem, uint64_t gpa, void *buf, uint64_t len);
int gpa_write(const struct guest_memory *mem, uint64_t gpa, const void *buf, uint64_t len);
/* RAM top below 4 GiB (end of region 0). */
uint64_t guest_low_ram_end(const struct guest_memory *mem);

/* Parse "512M", "2G", "65536K", "1048576": bytes, or 0 on a bad string. */
uint64_t parse_size(const char *s);
