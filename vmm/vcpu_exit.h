#pragma once
#include <stdbool.h>
#include <stdint.h>

struct vcpu;

/* Exit status of the VMM when the guest crashed (triple fault, emulation failure). */
#define EXIT_GUEST_CRASH 4   /* even: debug-exit statuses are odd */

/* Turn the exit in vcpu->run into bus messages; false ends the vCPU loop. */
bool vcpu_handle_exit(struct vcpu *vcpu);
/* Accesses nobody answered (reads gave all ones), over all vCPUs. */
uint64_t vcpu_unhandled_pio(void);
uint64_t vcpu_unhandled_mmio(void);
