/*
 * Machine reset: the whole VM back to its power-on state by loading a
 * checkpoint of that state.
 *
 * At start-up, once the machine is built and the kernel, initrd and
 * firmware tables are in RAM but before any vCPU ran, machine_reset_init()
 * saves the whole VM (vmm/snapshot.h: RAM runs of non-zero pages, every
 * vCPU, every device) into a memfd.  A reset pauses the VM, loads that
 * checkpoint and resumes it: RAM, vCPUs (the BSP at the kernel's entry,
 * the APs parked waiting for INIT-SIPI), devices and guest time (VM clock,
 * TSC, kvmclock) are as at power-on.  Nothing needs a reset function of
 * its own: the restore path is the reset path.
 *
 * Threads: requests come from anywhere (the I/O thread running 0xCF9 or
 * the 8042, a vCPU thread, QMP), but vm_pause() waits for all of those to
 * go quiet, so a request only posts the work to the reset thread and
 * returns.  Until the reset is done, no vCPU enters the guest again
 * (machine_reset_pending), as RESET stops a real CPU at once.
 *
 * One VM per process: the state here is a set of statics.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

enum machine_reset_cause {
	MACHINE_RESET_GUEST,        /* 0xCF9, the 8042, the FADT reset register */
	MACHINE_RESET_HOST_QMP,     /* QMP system_reset */
};

/*
 * Start-up, after the kernel is loaded and before any vCPU starts (and
 * before a --restore is applied): checkpoint the power-on state and start
 * the reset thread (stopped at VM teardown).  0 or -errno, with a message.
 */
int machine_reset_init(struct vm *vm);

/*
 * Any thread: reset the machine soon, and return at once.  A request made
 * while one is pending joins it (one reset; the first cause is reported).
 * -ENOTSUP before machine_reset_init().
 */
int machine_reset_request(struct vm *vm, enum machine_reset_cause cause);

/* vCPU threads, before each entry: a reset is on its way, do not run. */
bool machine_reset_pending(struct vm *vm);

/*
 * Called on the reset thread once the machine is back at power-on, before
 * it runs again (QMP's RESET event).  Set before machine_reset_init or
 * while no reset can run.
 */
void machine_reset_set_hook(void (*fn)(enum machine_reset_cause cause));

/* Resets done since start-up, and the checkpoint's size (tests, stats). */
uint64_t machine_reset_count(void);
uint64_t machine_reset_image_bytes(void);
