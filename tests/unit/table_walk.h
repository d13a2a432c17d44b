/*
 * Firmware tables (ACPI, MP) read back out of guest RAM the way a guest
 * reads them: by byte offset, little-endian, checksummed, never through
 * the builder's own structs.  Include after <cmocka.h>.
 */
#pragma once
#include <stdint.h>
#include <string.h>
#include "vmm/memory.h"

/* @len bytes at @gpa, which must all be RAM. */
static inline const uint8_t *at(const struct guest_memory *mem, uint64_t gpa, uint64_t len)
{
	const uint8_t *p = gpa_ptr(mem, gpa, len);

	assert_non_null(p);
	return p;
}

static inline uint64_t le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = bytes; i--;)
		v = v << 8 | p[i];
	return v;
}

/* The byte sum: 0 over a whole table whose checksum is right. */
static inline uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* @size bytes of RAM, every one @fill, so that a stray write shows. */
static inline void table_mem_init(struct guest_memory *mem, uint64_t size, uint8_t fill)
{
	assert_int_equal(guest_memory_init(mem, size), 0);
	memset(mem->region[0].host, fill, mem->region[0].size);
}

/* RAM of @size bytes at 0 backed by @host: to build into too little RAM. */
static inline struct guest_memory table_mem_over(uint8_t *host, uint64_t size)
{
	return (struct guest_memory){
		.size = size, .count = 1,
		.region[0] = { .gpa = 0, .size = size, .host = host },
	};
}

/* Fails unless every byte of @p is still @fill. */
static inline void assert_untouched(const uint8_t *p, size_t len, uint8_t fill)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != fill)
			fail_msg("byte %#zx written", i);
}
