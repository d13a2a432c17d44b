/*
 * Assembling and tearing down a whole VM on KVM: RAM, buses, vCPUs.
 * Devices are created afterwards from the device list.
 */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include "vmm/vm.h"

int machine_create(struct vm *vm, unsigned ncpus, uint64_t mem, enum io_mode io);
/* Stop every vCPU thread and the service threads; devices stay. */
void machine_stop(struct vm *vm);
/* Free everything (safe on a partly created machine). */
void machine_destroy(struct vm *vm);
void machine_print_stats(struct vm *vm, FILE *out);
