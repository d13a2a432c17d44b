/*
 * Per-vCPU run-state accounting: where each vCPU's time goes.  Written by
 * the vCPU thread with relaxed atomics, read by anyone.
 */
#pragma once
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

enum vcpu_time {
	VCPU_TIME_GUEST,        /* inside KVM_RUN */
	VCPU_TIME_BLOCKED,      /* halted, or a parked AP */
	VCPU_TIME_INLINE,       /* servicing an exit on its own thread */
	VCPU_TIME_IOTHREAD,     /* waiting for the I/O thread */
	VCPU_TIME_LOCK,         /* waiting for the global lock */
	VCPU_TIME_PAUSED,       /* stopped by vm_pause */
	VCPU_TIME_COUNT,
};

extern const char *const vcpu_time_names[VCPU_TIME_COUNT];

struct vcpu_runstate {
	_Atomic uint64_t ns[VCPU_TIME_COUNT];
	_Atomic uint64_t exits_by_reason[64];
};

struct vcpu;
/* Snapshot of @vcpu's counters (consistent enough for statistics). */
void vcpu_runstate_read(struct vcpu *vcpu, uint64_t ns[VCPU_TIME_COUNT]);
