/*
 * Stopping a running VM at a consistent point, and letting it go again.
 *
 * vm_pause() returns when: every vCPU thread is out of KVM_RUN at its pause
 * point, with any in-flight port or MMIO access completed (KVM re-entered
 * once with immediate_exit); parked and halted vCPUs stay parked/halted;
 * the VM clock is stopped (timers do not fire; the LAPIC timers, PIT, PM
 * timer and RTC read frozen time); and no device callback is running and
 * the I/O thread's queue is empty.  vm_resume() undoes it: the VM clock and
 * the guest TSC continue from where they stopped.
 *
 * Both are for a control thread (QMP, signal handling), never a vCPU.
 * Pauses nest: the VM runs again after as many resumes as pauses.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct vm;

int vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* Called by vm_request_exit: paused vCPUs must see the exit. */
void vm_pause_release_for_exit(struct vm *vm);
