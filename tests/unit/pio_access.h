/*
 * Port accesses for device tests, straight through a VM's port bus, each
 * asserting that some device answered.  Include after <cmocka.h>.
 */
#pragma once
#include <stdint.h>
#include "bus/message.h"
#include "bus/range.h"
#include "vmm/vm.h"

static inline uint32_t vm_pio_in(struct vm *vm, uint16_t port, unsigned size)
{
	/* A poisoned value: a device that forgets to answer shows up. */
	struct msg_pio m = { .port = port, .size = (uint8_t)size, .value = 0xdeadbeef };

	assert_true(range_bus_send(vm->bus.pio, port, &m));
	return m.value;
}

static inline void vm_pio_out(struct vm *vm, uint16_t port, unsigned size, uint32_t v)
{
	struct msg_pio m = { .port = port, .size = (uint8_t)size, .write = true, .value = v };

	assert_true(range_bus_send(vm->bus.pio, port, &m));
}
