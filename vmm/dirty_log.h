/*
 * KVM's dirty page log over the VM's memslots (one per RAM region), for
 * live migration.  With KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 a sync reads
 * the log and clears exactly the bits it read (KVM_CLEAR_DIRTY_LOG,
 * which write-protects those pages again); without it KVM_GET_DIRTY_LOG
 * clears on read.  Either way a page written after a sync is in the next.
 *
 * For one control thread (the migration thread); KVM does the locking
 * against the vCPUs.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/memory.h"

struct vm;

struct dirty_log {
	struct vm *vm;
	bool manual;                             /* MANUAL_PROTECT2 in use */
	bool on;
	uint64_t npages[GUEST_MAX_REGIONS];
	uint64_t *bitmap[GUEST_MAX_REGIONS];     /* the last sync, one bit per page */
};

/*
 * Allocate the bitmaps and (@kvm_log) turn logging on for every region;
 * without @kvm_log the bitmaps are for another tracker (vmm/dirty_hash.h).
 * 0, or -errno with @err set.
 */
int dirty_log_start(struct dirty_log *dl, struct vm *vm, bool kvm_log, char *err, size_t errlen);
/* Fetch and clear the pages written since the last sync: their count, or -errno. */
int64_t dirty_log_sync(struct dirty_log *dl, char *err, size_t errlen);
/* Logging off, bitmaps freed (safe to call twice). */
void dirty_log_stop(struct dirty_log *dl);

static inline bool dirty_log_test(const struct dirty_log *dl, unsigned region, uint64_t page)
{
	return dl->bitmap[region][page / 64] >> (page % 64) & 1;
}
