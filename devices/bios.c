/*
 * bios: leaves the machine as a PC BIOS would before it jumps to a kernel.
 *
 * State: stable.
 * Features: a real-mode interrupt table whose 256 vectors point at an
 *   `iret` stub (so real-mode `sti; hlt` wakes up as on hardware), the BIOS
 *   data area's COM1 base and EBDA segment, the 8259 pair programmed with
 *   vector bases 0x08/0x70, the PIT's channel 0 running at 18.2 Hz, and the
 *   ACPI and Intel MP tables describing the CPUs and interrupt routing.
 * Missing: BIOS services (int 10h/13h/15h...): there is no BIOS code, only
 *   the stub; kernels are loaded by the VMM.
 * Spec: the PC/AT conventions; ACPI 6; Intel MP 1.4 (vmm/acpi.c, mptable.c).
 * Args: none.  Create it after the other devices: it initialises them.
 */
#include <errno.h>
#include "devices/pic8259.h"
#include "devices/pit8254.h"
#include "vmm/acpi.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/mptable.h"
#include "vmm/vm.h"

#define BIOS_STUB_ADDR   0xfff00u        /* F000:FF00 */
#define BDA_COM1         0x400u
#define BDA_EBDA_SEGMENT 0x40eu
#define EBDA_SEGMENT     (0x9fc00u >> 4)

static int write_ivt(struct vm *vm)
{
	static const uint8_t iret = 0xcf;
	uint32_t vector = (0xf000u << 16) | (BIOS_STUB_ADDR & 0xffff);
	uint16_t com1 = 0x3f8, ebda = EBDA_SEGMENT;
	int err = gpa_write(&vm->mem, BIOS_STUB_ADDR, &iret, 1);

	for (unsigned i = 0; i < 256 && !err; i++)
		err = gpa_write(&vm->mem, i * 4u, &vector, 4);
	if (!err)
		err = gpa_write(&vm->mem, BDA_COM1, &com1, 2);
	if (!err)
		err = gpa_write(&vm->mem, BDA_EBDA_SEGMENT, &ebda, 2);
	return err;
}

static int write_tables(struct vm *vm)
{
	struct acpi_config cfg = acpi_config_pc(vm->ncpus);
	uint64_t rsdp;
	int err = acpi_build(&vm->mem, &cfg, &rsdp);

	if (err) {
		pr_err("bios: cannot build the ACPI tables: %d", err);
		return err;
	}
	err = mptable_build(&vm->mem, vm->ncpus, ACPI_IOAPIC_ADDR);
	if (err)
		pr_err("bios: cannot build the MP table: %d", err);
	return err;
}

static int bios_create(struct vm *vm, const char *args)
{
	struct pic *pic = pic_find(vm);
	struct pit *pit = pit_find(vm);
	int err;

	if (args && *args) {
		pr_err("bios: takes no arguments");
		return -EINVAL;
	}
	err = write_ivt(vm);
	if (err) {
		pr_err("bios: guest RAM does not cover the low 1 MiB");
		return err;
	}
	err = write_tables(vm);
	if (err)
		return err;
	if (pic)
		pic_bios_init(pic);
	if (pit)
		pit_bios_init(pit);
	return 0;
}

DEVICE_MODEL(bios_model,
	.name = "bios",
	.help = "bios  interrupt table stub, PIC/PIT as a BIOS leaves them, ACPI and MP tables",
	.create = bios_create)
