/*
 * Hash-based dirty tracking (vmm/dirty_hash.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "vmm/dirty_hash.h"

#define PAGE 4096u
#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t rotl(uint64_t v, unsigned r)
{
	return (v << r) | (v >> (64 - r));
}

/* Four independent lanes (the multiply latency overlaps), each an xxh64-style round. */
uint64_t page_hash(const void *page)
{
	const uint64_t *q = page;
	uint64_t a = P1, b = P2, c = 0, d = P1 ^ P2;

	for (unsigned i = 0; i < PAGE / 8; i += 4) {
		a = rotl(a + q[i] * P2, 31) * P1;
		b = rotl(b + q[i + 1] * P2, 31) * P1;
		c = rotl(c + q[i + 2] * P2, 31) * P1;
		d = rotl(d + q[i + 3] * P2, 31) * P1;
	}
	uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);

	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	return h;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;
	uint64_t acc = 0;

	for (unsigned i = 0; i < PAGE / 8; i += 8) {
		acc |= q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7];
		if (acc)
			return false;
	}
	return true;
}

static uint64_t zero_hash(void)
{
	static const uint64_t zero[PAGE / 8];

	return page_hash(zero);
}

/* Swapped-out pages look like absent ones to mincore. */
static bool swap_in_use(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	int lines = 0;

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		lines++;
	fclose(f);
	return lines > 1;
}

int dirty_hash_init(struct dirty_hash *dh, const struct guest_memory *mem)
{
	uint64_t z = zero_hash(), most = 0;

	memset(dh, 0, sizeof(*dh));
	dh->all_resident = swap_in_use();
	for (unsigned r = 0; r < mem->count; r++) {
		dh->npages[r] = mem->region[r].size / PAGE;
		dh->sent[r] = malloc(dh->npages[r] * sizeof(uint64_t));
		if (!dh->sent[r])
			goto nomem;
		for (uint64_t p = 0; p < dh->npages[r]; p++)
			dh->sent[r][p] = z;
		if (dh->npages[r] > most)
			most = dh->npages[r];
	}
	dh->resident = malloc(most);
	if (dh->resident)
		return 0;
nomem:
	dirty_hash_free(dh);
	return -ENOMEM;
}

void dirty_hash_sent(struct dirty_hash *dh, unsigned region, uint64_t page, const void *data)
{
	static uint64_t z;

	if (!z)
		z = zero_hash();
	dh->sent[region][page] = data ? page_hash(data) : z;
}

static int64_t sync_region(struct dirty_hash *dh, const struct mem_region *r, unsigned idx,
			   uint64_t *bitmap, uint64_t z)
{
	bool all = dh->all_resident || mincore(r->host, r->size, dh->resident) < 0;
	int64_t n = 0;

	memset(bitmap, 0, (dh->npages[idx] + 63) / 64 * 8);
	for (uint64_t p = 0; p < dh->npages[idx]; p++) {
		const uint8_t *page = r->host + p * PAGE;
		uint64_t h;

		/*
		 * A zero page that was sent as zero is the common case in a big
		 * guest (read once, mapped to the host's zero page, which stays
		 * in cache): a zero test is several times cheaper than the hash.
		 */
		if (!all && !(dh->resident[p] & 1))
			h = z;
		else if (dh->sent[idx][p] == z && page_is_zero(page))
			continue;
		else
			h = page_hash(page);

		if (h != dh->sent[idx][p]) {
			bitmap[p / 64] |= 1ull << (p % 64);
			n++;
		}
	}
	return n;
}

int64_t dirty_hash_sync(struct dirty_hash *dh, const struct guest_memory *mem,
			uint64_t *const bitmap[])
{
	uint64_t z = zero_hash();
	int64_t n = 0;

	for (unsigned r = 0; r < mem->count; r++)
		n += sync_region(dh, &mem->region[r], r, bitmap[r], z);
	return n;
}

void dirty_hash_free(struct dirty_hash *dh)
{
	for (unsigned r = 0; r < GUEST_MAX_REGIONS; r++) {
		free(dh->sent[r]);
		dh->sent[r] = NULL;
	}
	free(dh->resident);
	dh->resident = NULL;
}
