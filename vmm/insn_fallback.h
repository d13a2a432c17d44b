/*
 * The VMM's fallback for ring-0 instructions a host's KVM refuses to
 * emulate (INT3, FWAIT): see insn_fallback.c.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct vcpu;

/*
 * After KVM_EXIT_INTERNAL_ERROR: perform the failed instruction if it is
 * one we know, and return true (the vCPU re-enters the guest); false
 * leaves it an emulation failure.  vCPU thread only.
 */
bool insn_fallback(struct vcpu *vcpu);
/* Instructions performed so far, all vCPUs (for --stats and tests). */
uint64_t insn_fallback_count(void);
