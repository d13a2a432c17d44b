/*
 * The machine-independent part of a VM: its buses, the serializer of the
 * chosen I/O mode, the timer service, and the exit request.
 */
#include <errno.h>
#include <stdlib.h>
#include "bus/message.h"
#include "vmm/global_lock.h"
#include "vmm/iothread.h"
#include "vmm/log.h"
#include "vmm/pause.h"
#include "vmm/timer.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static void set_serializers(struct vm *vm, const struct bus_serializer *ser)
{
	struct bus *plain[] = { vm->bus.irq, vm->bus.legacy, vm->bus.apic,
				vm->bus.eoi, vm->bus.timer, vm->bus.console };

	range_bus_set_serializer(vm->bus.pio, ser);
	range_bus_set_serializer(vm->bus.mmio, ser);
	for (unsigned i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		bus_set_serializer(plain[i], ser);
}

int vm_init_buses(struct vm *vm, enum io_mode mode)
{
	const struct bus_serializer *ser;

	if (!vm->ncpus)
		vm->ncpus = 1;
	vm->io_mode = mode;
	pthread_mutex_init(&vm->exit_lock, NULL);
	pthread_mutex_init(&vm->pause.lock, NULL);
	pthread_mutex_init(&vm->named_lock, NULL);
	pthread_cond_init(&vm->exit_cond, NULL);
	vm->bus.pio = range_bus_create("pio", sizeof(struct msg_pio));
	vm->bus.mmio = range_bus_create("mmio", sizeof(struct msg_mmio));
	vm->bus.irq = bus_create("irq", sizeof(struct msg_irq));
	vm->bus.legacy = bus_create("legacy", sizeof(struct msg_legacy));
	vm->bus.apic = bus_create("apic", sizeof(struct msg_apic));
	vm->bus.eoi = bus_create("eoi", sizeof(struct msg_eoi));
	vm->bus.timer = bus_create("timer", sizeof(struct msg_timer));
	vm->bus.console = bus_create("console", sizeof(struct msg_console));
	/* No serializer: a paused VM's control thread runs the receivers. */
	vm->bus.restore = bus_create("restore", sizeof(struct msg_restore));
	if (!vm->bus.restore || !vm->bus.pio || !vm->bus.mmio || !vm->bus.irq || !vm->bus.legacy ||
	    !vm->bus.apic || !vm->bus.eoi || !vm->bus.timer || !vm->bus.console)
		goto fail;
	bus_thread_enter();
	if (mode == IO_MODE_THREAD) {
		vm->iothread = iothread_start();
		if (!vm->iothread)
			goto fail;
		ser = iothread_serializer(vm->iothread);
	} else {
		ser = global_lock_serializer();
	}
	set_serializers(vm, ser);
	if (!timer_service_start(vm))
		goto fail;
	return 0;
fail:
	vm_fini_buses(vm);
	return -ENOMEM;
}

void vm_fini_buses(struct vm *vm)
{
	/* Timers first: they send into the I/O thread. */
	timer_service_stop(vm->timers);
	iothread_stop(vm->iothread);
	vm->iothread = NULL;
	range_bus_destroy(vm->bus.pio);
	range_bus_destroy(vm->bus.mmio);
	bus_destroy(vm->bus.irq);
	bus_destroy(vm->bus.legacy);
	bus_destroy(vm->bus.apic);
	bus_destroy(vm->bus.eoi);
	bus_destroy(vm->bus.timer);
	bus_destroy(vm->bus.console);
	bus_destroy(vm->bus.restore);
	vm->bus = (struct vm_buses){ 0 };
	bus_thread_exit();
}

void vm_request_exit(struct vm *vm, int status)
{
	bool expected = false;

	pthread_mutex_lock(&vm->exit_lock);
	if (atomic_compare_exchange_strong(&vm->exiting, &expected, true))
		vm->exit_status = status;
	pthread_cond_broadcast(&vm->exit_cond);
	pthread_mutex_unlock(&vm->exit_lock);
	for (unsigned i = 0; i < vm->ncpus; i++)
		if (vm->vcpu[i])
			vcpu_post(vm->vcpu[i], VCPU_EV_EXIT);
	vm_pause_release_for_exit(vm);
}

int vm_wait_exit(struct vm *vm)
{
	int status;

	pthread_mutex_lock(&vm->exit_lock);
	while (!atomic_load(&vm->exiting))
		pthread_cond_wait(&vm->exit_cond, &vm->exit_lock);
	status = vm->exit_status;
	pthread_mutex_unlock(&vm->exit_lock);
	return status;
}

void vm_at_exit(struct vm *vm, void (*fn)(void *ctx), void *ctx)
{
	struct vm_exit_hook *h = malloc(sizeof(*h));

	if (!h)
		abort();
	*h = (struct vm_exit_hook){ .fn = fn, .ctx = ctx, .next = vm->exit_hooks };
	vm->exit_hooks = h;
}

void vm_run_exit_hooks(struct vm *vm)
{
	while (vm->exit_hooks) {
		struct vm_exit_hook *h = vm->exit_hooks;

		vm->exit_hooks = h->next;
		h->fn(h->ctx);
		free(h);
	}
}
