/*
 * KVM dirty log per memslot (vmm/dirty_log.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/dirty_log.h"
#include "vmm/kvm.h"
#include "vmm/log.h"
#include "vmm/vm.h"

/* Manual protection lets a sync clear only what it read; worth having, not required. */
static bool enable_manual(struct vm *vm)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
	};

	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0)
		return false;
	return ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

int dirty_log_start(struct dirty_log *dl, struct vm *vm, bool kvm_log, char *err, size_t errlen)
{
	memset(dl, 0, sizeof(*dl));
	dl->vm = vm;
	for (unsigned i = 0; i < vm->mem.count; i++) {
		dl->npages[i] = vm->mem.region[i].size / 4096;
		dl->bitmap[i] = calloc((dl->npages[i] + 63) / 64, sizeof(uint64_t));
		if (!dl->bitmap[i]) {
			dirty_log_stop(dl);
			return report_error(err, errlen, -ENOMEM, "out of memory for the dirty bitmap");
		}
	}
	if (!kvm_log)
		return 0;
	dl->manual = enable_manual(vm);
	if (kvm_set_dirty_logging(vm, true, err, errlen) < 0) {
		dirty_log_stop(dl);
		return -EIO;
	}
	dl->on = true;
	pr_info("migration: dirty log on (%s)", dl->manual ? "manual protect, KVM_CLEAR_DIRTY_LOG"
							   : "clear on read");
	return 0;
}

static int64_t count_bits(const uint64_t *map, uint64_t npages)
{
	int64_t n = 0;

	for (uint64_t w = 0; w < (npages + 63) / 64; w++)
		n += __builtin_popcountll(map[w]);
	return n;
}

static int sync_slot(struct dirty_log *dl, unsigned slot, char *err, size_t errlen)
{
	struct kvm_dirty_log get = { .slot = slot, .dirty_bitmap = dl->bitmap[slot] };
	struct kvm_clear_dirty_log clear = {
		.slot = slot, .first_page = 0, .num_pages = (uint32_t)dl->npages[slot],
		.dirty_bitmap = dl->bitmap[slot],
	};

	if (ioctl(dl->vm->vm_fd, KVM_GET_DIRTY_LOG, &get) < 0)
		return report_error(err, errlen, -errno, "KVM_GET_DIRTY_LOG: %s", strerror(errno));
	/* Clear (and write-protect again) before anybody copies the pages. */
	if (dl->manual && ioctl(dl->vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
		return report_error(err, errlen, -errno, "KVM_CLEAR_DIRTY_LOG: %s", strerror(errno));
	return 0;
}

int64_t dirty_log_sync(struct dirty_log *dl, char *err, size_t errlen)
{
	int64_t n = 0;

	for (unsigned i = 0; i < dl->vm->mem.count; i++) {
		int e = sync_slot(dl, i, err, errlen);

		if (e)
			return e;
		n += count_bits(dl->bitmap[i], dl->npages[i]);
	}
	return n;
}

void dirty_log_stop(struct dirty_log *dl)
{
	char err[128];

	if (dl->on && kvm_set_dirty_logging(dl->vm, false, err, sizeof(err)) < 0)
		pr_warn("migration: cannot turn the dirty log off: %s", err);
	dl->on = false;
	for (unsigned i = 0; i < GUEST_MAX_REGIONS; i++) {
		free(dl->bitmap[i]);
		dl->bitmap[i] = NULL;
	}
}
