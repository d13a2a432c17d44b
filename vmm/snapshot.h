/*
 * Checkpoint and restore of a whole VM into one file (format in
 * doc/snapshot.md, sections in vmm/stream.h): a header (vCPU count, RAM
 * layout, VM clock, kvmclock), guest RAM (zero pages skipped), every vCPU
 * (KVM state plus our run state) and every device, which saves and loads
 * itself through the restore bus (struct msg_restore).
 *
 * Both are for a control thread (QMP, start-up), never a vCPU: they pause
 * the VM themselves.  Restoring verifies the whole file first (checksums,
 * sizes, vCPU count, RAM layout, the device list against this machine's);
 * a failure after that (a device refusing its state) requests a VM exit,
 * so nothing half-loaded ever runs.  A save writes a new file and renames
 * it over @path when complete; a restore maps RAM from the file, which
 * must not be modified in place while the VM runs (doc/snapshot.md).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct vm;

int vm_snapshot_save(struct vm *vm, const char *path, bool stay_stopped,
		     char *err, size_t errlen);
int vm_snapshot_restore(struct vm *vm, const char *path, char *err, size_t errlen);

/*
 * The same on a stream the caller opened (vmm/stream.h: a file, a memfd, a
 * buffer received from a migration source), for a VM the caller paused.
 * @parts picks what goes in besides the header: a migration sends RAM
 * separately.  Loading verifies everything but the devices' own checks
 * of their sections (the device list included, with DEVICES) before it
 * applies anything; *@applied says whether it got that far, in
 * which case a failure leaves a half-loaded VM that must never run.
 */
enum vm_state_parts {
	VM_STATE_RAM = 1,
	VM_STATE_CPUS = 2,
	VM_STATE_DEVICES = 4,
	VM_STATE_ALL = 7,
	/* With DEVICES: a machine reset, battery-backed state stays (msg_restore). */
	VM_STATE_RESET = 8,
};
struct stream;
int vm_state_save(struct vm *vm, struct stream *s, unsigned parts);
int vm_state_load(struct vm *vm, struct stream *s, unsigned parts, bool *applied);

/*
 * Debugging and tests: when the environment names VMM_SNAPSHOT_ON_SIGUSR2
 * a file, SIGUSR2 saves the VM there (and it runs on).
 */
void snapshot_signal_init(struct vm *vm);
