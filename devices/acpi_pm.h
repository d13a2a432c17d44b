/*
 * ACPI fixed-hardware registers of a PIIX4-style PM block (the ports the
 * FADT announces: vmm/acpi.h): PM1 event (status, enable), PM1 control
 * (SCI_EN, sleep type and enable) and the 24-bit PM timer.  "acpipm[:base]"
 * creates one through the device registry; the tests use the calls below.
 */
#pragma once
#include <stdint.h>

struct vm;
struct acpi_pm;

/* The VM time the block reads, in ns; vm_clock_ns() unless a test swaps it. */
typedef uint64_t (*acpi_pm_clock_fn)(void *ctx);

/* The timer value (24 bits) at VM time @ns: 3.579545 MHz ticks since 0. */
uint32_t acpi_pm_timer_at(uint64_t ns);

/* NULL if a port of the block is taken or memory runs out. */
struct acpi_pm *acpi_pm_create(struct vm *vm, uint16_t base);
void acpi_pm_destroy(struct acpi_pm *pm);
/*
 * Replace the clock (tests).  Call it before the guest or a test touches
 * the block: the timer is read unserialized on any thread.
 */
void acpi_pm_set_clock(struct acpi_pm *pm, acpi_pm_clock_fn fn, void *ctx);
