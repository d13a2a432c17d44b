/*
 * Architectural register state of a vCPU: the start states the VMM sets
 * (32-bit flat protected mode for multiboot, real mode at a SIPI vector)
 * and human-readable dumps for errors.
 */
#pragma once
#include <stdint.h>
#include <stdio.h>

struct vcpu;

int cpu_state_protected_flat(struct vcpu *vcpu, uint32_t eip, uint32_t eax, uint32_t ebx);
int cpu_state_real_mode(struct vcpu *vcpu, uint16_t cs, uint16_t ip);
/* Registers, control/segment registers and the instruction bytes at RIP. */
void cpu_state_dump(struct vcpu *vcpu, FILE *out);
