/*
 * Intel MultiProcessor Specification 1.4 tables: the floating pointer at
 * MPTABLE_ADDR (inside the 0xF0000 BIOS area a guest scans) and the
 * configuration table right behind it.  Guests that boot without ACPI
 * (acpi=off, older kernels, small OSes) find the CPUs and the IOAPIC here.
 * doc/firmware-tables.md describes the entries.
 */
#pragma once
#include <stdint.h>
#include "vmm/memory.h"

#define MPTABLE_ADDR       0xF0000ull
#define MPTABLE_AREA_END   0xF1000ull
#define MPTABLE_MAX_CPUS   64
#define MPTABLE_IOAPIC_ID  0          /* as the MADT: the IOAPIC model's reset ID */

/*
 * Write the floating pointer and the configuration table for @ncpus
 * processors (APIC ID = index, CPU 0 the BSP) and one IOAPIC at
 * @ioapic_addr.  -EINVAL for 0 or more than MPTABLE_MAX_CPUS CPUs or an
 * IOAPIC above 4 GiB, -EFAULT if the area is not all RAM (nothing is
 * written then).
 */
int mptable_build(struct guest_memory *mem, unsigned ncpus, uint64_t ioapic_addr);
