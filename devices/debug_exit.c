/*
 * debugexit: a port that ends the VM, as QEMU's isa-debug-exit does.
 *
 * State: stable.
 * Features: writes of 1, 2 or 4 bytes anywhere in the port range; a
 *   written value v stops the VM with status (v << 1) | 1.  The status is
 *   always odd, so a harness tells a guest's own verdict (v = 0 is status 1)
 *   from a VMM that exited 0 or died for another reason.
 * Missing: reads are not decoded; they read as an empty port (all ones).
 * Spec: the port protocol of QEMU's hw/misc/debugexit.c.
 * Args: "debugexit:port,size", default "0xf4,1" (size in ports: 1, 2 or 4).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "bus/message.h"
#include "bus/range.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

struct debug_exit {
	struct vm *vm;
};

static bool debug_exit_pio(void *dev, uint64_t addr, void *msg)
{
	struct debug_exit *de = dev;
	struct msg_pio *m = msg;
	uint32_t v = m->value;

	(void)addr;
	if (!m->write)
		return false;
	if (m->size < 4)
		v &= (1u << (8 * m->size)) - 1;
	pr_info("debugexit: guest wrote %#x, exit status %#x", v, (v << 1) | 1);
	vm_request_exit(de->vm, (int)((v << 1) | 1));
	return true;
}

/* "port,size": either may be empty for its default. */
static int debug_exit_parse(const char *args, unsigned long *port, unsigned long *size)
{
	const char *p = args ? args : "";
	char *end;

	*port = 0xf4;
	*size = 1;
	if (*p && *p != ',') {
		*port = strtoul(p, &end, 0);
		if (end == p || (*end && *end != ','))
			return -EINVAL;
		p = end;
	}
	if (*p == ',') {
		p++;
		if (*p) {
			*size = strtoul(p, &end, 0);
			if (end == p || *end)
				return -EINVAL;
		}
	}
	if (*size != 1 && *size != 2 && *size != 4)
		return -EINVAL;
	if (*port > 0x10000 - *size)
		return -EINVAL;
	return 0;
}

static int debug_exit_create(struct vm *vm, const char *args)
{
	unsigned long port, size;
	struct debug_exit *de;
	int err = debug_exit_parse(args, &port, &size);

	if (err) {
		pr_err("debugexit: bad arguments '%s' (want port,size)", args);
		return err;
	}
	de = calloc(1, sizeof(*de));
	if (!de)
		return -ENOMEM;
	de->vm = vm;
	err = range_bus_add(vm->bus.pio, port, size, debug_exit_pio, false, de);
	if (err) {
		pr_err("debugexit: ports %#lx+%lu are taken", port, size);
		free(de);
		return err;
	}
	vm_at_exit(vm, free, de);
	return 0;
}

DEVICE_MODEL(debug_exit_model,
	.name = "debugexit",
	.help = "debugexit:port,size  guest write of v exits the VMM with (v<<1)|1 (default 0xf4,1)",
	.create = debug_exit_create)
