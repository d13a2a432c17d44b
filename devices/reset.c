/*
 * The Reset Control Register at port 0xCF9 and the reset policy.
 *
 * State:    stable.
 * Features: byte writes to 0xCF9 with RST_CPU (bit 2) set reset the machine
 *           (0x06 is the FADT's RESET_VALUE, 0x0E a full reset; Linux's
 *           reboot=pci writes 0x02 then 0x06); SYS_RST and FULL_RST (bits 1
 *           and 3) are stored and read back, RST_CPU reads 0.  Every reset
 *           source (this port, the 8042's pulse and output port) calls
 *           vm_reset_request(), which applies the --on-reboot policy:
 *           exit with status 0, or hand the reset to the restart handler
 *           (the frontend's: vmm/machine_reset.h reloads the power-on
 *           checkpoint on a thread of its own).
 * Missing:  Soft (SYS_RST = 0) and hard resets are not told apart.  The
 *           RCR keeps its SYS_RST/FULL_RST bits across a reset (it has no
 *           snapshot section; the PIIX clears them).
 *           Word and dword accesses starting at 0xCF9 are ignored (the
 *           RCR is a byte register).
 * Spec:     Intel 82371AB PIIX4 datasheet, Reset Control Register (I/O
 *           0xCF9); Intel ICH/PCH datasheets, same register; ACPI 6.4
 *           section 4.8.3.6 (reset register).
 *
 * Ports:    0xCF9 alone.  The PCI host bridge (pci_host.c) owns 0xCF8 and
 *           0xCFA-0xCFF around it: the port bus routes an access by its
 *           first port, so a dword at 0xCF8 (CONFIG_ADDRESS) never reaches
 *           this register and a byte at 0xCF9 never reaches the bridge, as
 *           on the PIIX.
 *
 * One VM per process: the policy, the restart handler and the device
 * pointer are statics.  The policy lives apart from the device so the
 * frontend may set it before or after creating devices.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/reset.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

struct reset_dev {
	struct vm *vm;
	uint8_t rcr;                  /* SYS_RST | FULL_RST as written (serialized) */
};

static _Atomic int action = REBOOT_EXIT;
static _Atomic(reset_restart_fn) restart_fn;
static _Atomic uint64_t requests;
static _Atomic(struct reset_dev *) the_dev;

void reset_set_action(struct vm *vm, enum reboot_action a)
{
	(void)vm;
	atomic_store(&action, a);
}

enum reboot_action reset_action(void)
{
	return atomic_load(&action);
}

void reset_set_restart_handler(reset_restart_fn fn)
{
	atomic_store(&restart_fn, fn);
}

uint64_t reset_request_count(void)
{
	return atomic_load(&requests);
}

void vm_reset_request(struct vm *vm)
{
	reset_restart_fn fn = atomic_load(&restart_fn);

	atomic_fetch_add(&requests, 1);
	if (atomic_load(&action) == REBOOT_RESTART) {
		if (fn) {
			fprintf(stderr, "vmm: guest requested reset: restarting "
				"(--on-reboot restart)\n");
			fn(vm);
			return;
		}
		fprintf(stderr, "vmm: guest requested reset: nothing to restart with, "
			"exiting (--on-reboot restart)\n");
	} else {
		fprintf(stderr, "vmm: guest requested reset: exiting (--on-reboot exit)\n");
	}
	vm_request_exit(vm, 0);
}

static bool reset_pio(void *opaque, uint64_t addr, void *m)
{
	struct reset_dev *dev = opaque;
	struct msg_pio *msg = m;

	(void)addr;
	if (msg->size != 1) {
		if (!msg->write)
			msg->value = 0xffffffffu;
		return true;
	}
	if (!msg->write) {
		msg->value = dev->rcr;
		return true;
	}
	dev->rcr = msg->value & (RCR_SYS_RST | RCR_FULL_RST);
	if (msg->value & RCR_RST_CPU)
		vm_reset_request(dev->vm);
	return true;
}

static void reset_destroy(void *opaque)
{
	struct reset_dev *dev = opaque;

	range_bus_remove(dev->vm->bus.pio, RESET_PORT);
	atomic_store(&the_dev, NULL);
	free(dev);
}

static int reset_create(struct vm *vm, const char *args)
{
	struct reset_dev *dev, *none = NULL;

	if (*args) {
		pr_err("reset: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->vm = vm;
	if (!atomic_compare_exchange_strong(&the_dev, &none, dev)) {
		pr_err("reset: only one per process");
		free(dev);
		return -EEXIST;
	}
	if (range_bus_add(vm->bus.pio, RESET_PORT, 1, reset_pio, false, dev)) {
		pr_err("reset: port %#x taken", RESET_PORT);
		atomic_store(&the_dev, NULL);
		free(dev);
		return -EEXIST;
	}
	vm_at_exit(vm, reset_destroy, dev);
	return 0;
}

DEVICE_MODEL(reset_model,
	.name = "reset",
	.help = "reset  Reset Control Register at 0xcf9 (bit 2 resets; --on-reboot decides)",
	.create = reset_create);
