/*
 * The restore-bus receiver of a device model (vmm/snapshot.h, struct
 * msg_restore): RESTORE_SAVE calls @save(dev, stream), which writes the
 * device's sections; RESTORE_LOAD calls @load(dev, stream), which reads
 * and checks them and returns 0 or the error it recorded with
 * stream_fail().  Nothing runs after a device failed.  The bus is driven
 * only while the VM is paused: no vCPU, timer or device callback runs
 * beside save or load.
 *
 *   RESTORE_RECEIVER(pit_restore_receive, struct pit, pit_save, pit_load)
 *   bus_attach(vm->bus.restore, pit_restore_receive, NULL, pit);
 */
#pragma once
#include <stdbool.h>
#include "bus/message.h"
#include "vmm/stream.h"

#define RESTORE_RECEIVER(fn, dev_type, save, load)                      \
	static bool fn(void *dev, void *msg)                            \
	{                                                               \
		struct msg_restore *m = msg;                            \
		dev_type *d = dev;                                      \
                                                                        \
		if (m->error)                                           \
			return true;                                    \
		if (m->type == RESTORE_SAVE)                            \
			save(d, m->s);                                  \
		else                                                    \
			m->error = load(d, m->s);                       \
		return true;                                            \
	}
