/*
 * ACPI tables for a legacy-PC guest: RSDP, RSDT, XSDT, FADT, FACS, MADT
 * and a small DSDT, written into guest RAM at [ACPI_AREA_START,
 * ACPI_AREA_END) with the RSDP first, where the BIOS-area scan finds it.
 * doc/firmware-tables.md says what each table holds and why.
 *
 * The fixed-hardware registers the FADT and DSDT announce are below: the
 * platform device models (PM1 event/control, PM timer, reset) must sit at
 * exactly these ports and raise the SCI on exactly this IRQ.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vmm/memory.h"

#define ACPI_AREA_START   0xE0000ull
#define ACPI_AREA_END     0xF0000ull
#define ACPI_RSDP_ADDR    ACPI_AREA_START
#define ACPI_MAX_CPUS     64

#define ACPI_OEM_ID       "VMMVMM"          /* 6 characters */

/* Defaults of struct acpi_config (acpi_config_pc). */
#define ACPI_LAPIC_ADDR   0xFEE00000u
#define ACPI_IOAPIC_ADDR  0xFEC00000ull
#define ACPI_IOAPIC_ID    0                 /* the IOAPIC model's reset ID */
#define ACPI_SCI_IRQ      9                 /* ISA IRQ = GSI, level, active high */
#define ACPI_PM_BASE      0x600

/* The PM register block, as offsets from pm_base. */
#define ACPI_PM1_STS      0x0   /* 16 bits, write 1 to clear */
#define ACPI_PM1_EN       0x2   /* 16 bits */
#define ACPI_PM1_CNT      0x4   /* 16 bits */
#define ACPI_PM_TMR       0x8   /* 32-bit read, 24-bit counter at 3.579545 MHz */
#define ACPI_PM_SIZE      0xC   /* ports the block occupies */
#define ACPI_PM_TMR_HZ    3579545

/* PM1 status / enable bits. */
#define ACPI_PM1_TMR      (1u << 0)     /* timer bit 23 toggled */
#define ACPI_PM1_GBL      (1u << 5)
#define ACPI_PM1_PWRBTN   (1u << 8)
#define ACPI_PM1_SLPBTN   (1u << 9)
#define ACPI_PM1_RTC      (1u << 10)
#define ACPI_PM1_WAK      (1u << 15)    /* status only */

/* PM1 control bits.  No SMI_CMD: SCI_EN always reads 1. */
#define ACPI_PM1_SCI_EN   (1u << 0)
#define ACPI_SLP_TYP_SHIFT 10
#define ACPI_SLP_TYP_MASK (7u << ACPI_SLP_TYP_SHIFT)
#define ACPI_SLP_EN       (1u << 13)    /* write-only, reads 0 */
#define ACPI_SLP_TYP_S5   5             /* \_S5 = { 5, 5, 0, 0 }: SLP_TYP 5 + SLP_EN = power off */

/* FADT RESET_REG: a byte write of this value to this port resets the machine. */
#define ACPI_RESET_PORT   0xCF9
#define ACPI_RESET_VALUE  0x06

struct acpi_config {
	unsigned ncpus;           /* 1..ACPI_MAX_CPUS; APIC ID = ACPI UID = index */
	uint64_t ioapic_addr;     /* below 4 GiB */
	unsigned sci_irq;         /* ISA IRQ 1..15 but 2; identity-mapped to its GSI */
	uint16_t pm_base;         /* the PM block: ACPI_PM_SIZE ports */
	bool rtc;                 /* a CMOS RTC at 0x70/0x71, IRQ 8 */
	bool i8042;               /* an 8042 keyboard controller at 0x60/0x64 */
};

/* The PC defaults above for @ncpus, with an RTC and an 8042. */
struct acpi_config acpi_config_pc(unsigned ncpus);

/*
 * Build every table and write them into guest RAM in one piece; the RSDP
 * lands at ACPI_RSDP_ADDR, returned in @rsdp_gpa (for a boot protocol
 * that passes it, e.g. boot_params.acpi_rsdp_addr).  -EINVAL for a bad
 * config, -EFAULT if the area is not all RAM (nothing is written then).
 */
int acpi_build(struct guest_memory *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa);

/*
 * Follow the tables from the RSDP at @rsdp_gpa and write each one to
 * @dir (created if missing; its parent must exist) as SIG.dat, raw bytes:
 * RSDP, RSDT, XSDT, every table the XSDT lists (FACP, APIC), the FADT's
 * DSDT and FACS.  The names acpixtract gives, so iasl -d reads each file.
 * 0, or -errno (-EINVAL for a table that does not parse).
 */
int acpi_dump(const struct guest_memory *mem, uint64_t rsdp_gpa, const char *dir);
