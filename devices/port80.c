/*
 * Port 0x80: the POST code port of the PC.
 *
 * State:    stable.
 * Features: writes are counted and the last byte is kept; reads return it
 *           (0xff before the first write), as POST code cards that latch
 *           the port do.  Wider accesses write their low byte; their upper
 *           bytes read as an empty bus.
 * Missing:  nothing to emulate: the port has no effect on a PC.  The
 *           codes are not shown anywhere (see the counters).
 * Spec:     IBM PC/AT Technical Reference (the POST checkpoint port);
 *           Linux uses the port for I/O delays (outb to 0x80 after slow
 *           ISA accesses, "io_delay=0x80").
 *
 * Snapshot: section "port80" instance 0: the last byte (guest-visible)
 *           and the write count.
 *
 * Claimed: Linux hammers this port for I/O delays, so it must not queue
 * behind the I/O thread.  Its state is two atomics; relaxed order is
 * enough because nothing else is published through them.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "bus/message.h"
#include "bus/range.h"
#include "devices/port80.h"
#include "devices/restore.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/vm.h"

struct port80 {
	struct vm *vm;
	_Atomic uint8_t last;
	_Atomic uint64_t writes;
};

static bool port80_pio(void *dev, uint64_t addr, void *m)
{
	struct port80 *p = dev;
	struct msg_pio *msg = m;

	(void)addr;
	if (msg->write) {
		atomic_store_explicit(&p->last, (uint8_t)msg->value, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->writes, 1, memory_order_relaxed);
	} else {
		msg->value = 0xffffff00u | atomic_load_explicit(&p->last, memory_order_relaxed);
		if (msg->size < 4)
			msg->value &= (1u << (8 * msg->size)) - 1;
	}
	return true;
}

/* Snapshots: with the VM paused no access races the atomics. */
#define PORT80_STATE_VERSION 1

static void port80_save(struct port80 *p, struct stream *s)
{
	stream_section_begin(s, "port80", 0, PORT80_STATE_VERSION);
	stream_put_u8(s, port80_last(p));
	stream_put_u64(s, port80_writes(p));
	stream_section_end(s);
}

static int port80_load(struct port80 *p, struct stream *s)
{
	uint8_t last;
	uint64_t writes;

	if (stream_section_open(s, "port80", 0, PORT80_STATE_VERSION, NULL))
		return stream_error(s);
	last = stream_get_u8(s);
	writes = stream_get_u64(s);
	if (stream_section_close(s))
		return stream_error(s);
	atomic_store(&p->last, last);
	atomic_store(&p->writes, writes);
	return 0;
}

RESTORE_RECEIVER(port80_restore_receive, struct port80, port80_save, port80_load)

struct port80 *port80_create(struct vm *vm)
{
	struct port80 *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->vm = vm;
	atomic_init(&p->last, 0xff);
	if (range_bus_add(vm->bus.pio, PORT80_PORT, 1, port80_pio, true, p)) {
		free(p);
		return NULL;
	}
	if (bus_attach(vm->bus.restore, port80_restore_receive, NULL, p)) {
		range_bus_remove(vm->bus.pio, PORT80_PORT);
		free(p);
		return NULL;
	}
	return p;
}

void port80_destroy(struct port80 *p)
{
	if (!p)
		return;
	bus_detach(p->vm->bus.restore, port80_restore_receive, p);
	range_bus_remove(p->vm->bus.pio, PORT80_PORT);
	pr_info("port80: %llu writes, last %#x", (unsigned long long)port80_writes(p),
		port80_last(p));
	free(p);
}

uint64_t port80_writes(const struct port80 *p)
{
	return atomic_load_explicit(&p->writes, memory_order_relaxed);
}

uint8_t port80_last(const struct port80 *p)
{
	return atomic_load_explicit(&p->last, memory_order_relaxed);
}

static void port80_destroy_hook(void *ctx)
{
	port80_destroy(ctx);
}

static int port80_model_create(struct vm *vm, const char *args)
{
	struct port80 *p;

	if (*args) {
		pr_err("port80: takes no arguments ('%s')", args);
		return -EINVAL;
	}
	p = port80_create(vm);
	if (!p) {
		pr_err("port80: port 0x80 taken or no memory");
		return -EEXIST;
	}
	vm_at_exit(vm, port80_destroy_hook, p);
	return 0;
}

DEVICE_MODEL(port80_model,
	.name = "port80",
	.help = "port80  POST code port 0x80: writes kept and counted, reads the last (claimed)",
	.create = port80_model_create);
