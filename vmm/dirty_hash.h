/*
 * Dirty tracking without KVM: remember a 64-bit hash of every page as it
 * was sent, and call a page dirty when its hash now differs.  It sees
 * every change, whoever made it (a vCPU, KVM's emulator, the VMM), and
 * it is what migration uses on hosts whose KVM dirty log misses guest
 * writes (doc/migration.md: KVM on PVM does, for ring-0 guest code).
 *
 * Cost: one hash of every resident page per sync.  A page that is not
 * resident (mincore) was never written, or was dropped to zero, so it is
 * the zero page; with swap in use that does not hold and every page is
 * hashed.  The hash is not cryptographic: a guest could craft a change
 * that is missed, which harms only that guest; x-verify checks with CRCs.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vmm/memory.h"

struct dirty_hash {
	uint64_t npages[GUEST_MAX_REGIONS];
	uint64_t *sent[GUEST_MAX_REGIONS];    /* hash of what the destination holds */
	unsigned char *resident;              /* mincore scratch, largest region */
	bool all_resident;                    /* swap on: hash every page */
};

uint64_t page_hash(const void *page);
int dirty_hash_init(struct dirty_hash *dh, const struct guest_memory *mem);
/* Page @page of @region went out with contents @data (NULL: zeros). */
void dirty_hash_sent(struct dirty_hash *dh, unsigned region, uint64_t page, const void *data);
/* Set in @bitmap (cleared first) the pages that differ from what was sent; their count. */
int64_t dirty_hash_sync(struct dirty_hash *dh, const struct guest_memory *mem,
			uint64_t *const bitmap[]);
void dirty_hash_free(struct dirty_hash *dh);
