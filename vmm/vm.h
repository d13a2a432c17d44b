/*
 * The virtual machine: KVM handles, guest RAM, the buses every device
 * talks through, the vCPUs and the I/O mode that serializes devices.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "bus/bus.h"
#include "bus/range.h"
#include "vmm/memory.h"

#define VM_MAX_VCPUS 64

enum io_mode {
	IO_MODE_THREAD,   /* one I/O thread owns every unclaimed device */
	IO_MODE_LOCK,     /* unclaimed devices run on the caller under the global lock */
};

struct vcpu;
struct iothread;
struct timer_service;

struct vm_buses {
	struct range_bus *pio;     /* struct msg_pio, keyed by port */
	struct range_bus *mmio;    /* struct msg_mmio, keyed by address */
	struct bus *irq;           /* struct msg_irq: GSI lines */
	struct bus *legacy;        /* struct msg_legacy: INTR/INTA/NMI/INIT/SIPI */
	struct bus *apic;          /* struct msg_apic: deliveries to LAPICs */
	struct bus *eoi;           /* struct msg_eoi: LAPIC EOI broadcast */
	struct bus *timer;         /* struct msg_timer: expiries */
	struct bus *console;       /* struct msg_console: host terminal input */
	struct bus *restore;       /* struct msg_restore: devices save/load (vmm/snapshot.h) */
};

/* See vmm/pause.h. */
struct vm_pause {
	pthread_mutex_t lock;         /* serializes pause and resume callers */
	unsigned depth;               /* nested pauses, under @lock */
	_Atomic bool requested;       /* vCPUs stay at their pause point */
	_Atomic uint32_t resume_gen;  /* futex: bumped when they may go on */
	_Atomic uint32_t quiet;       /* futex: vCPUs at a pause point or finished */
	uint64_t kvmclock;            /* KVM_GET_CLOCK at the stop */
};

/* A model's one instance on this VM, for models that find each other. */
#define VM_MAX_NAMED_DEVICES 16
struct vm_named_device {
	const char *name;
	void *dev;
};

struct vm_exit_hook {
	void (*fn)(void *ctx);
	void *ctx;
	struct vm_exit_hook *next;
};

struct vm {
	int kvm_fd;               /* -1 when running without KVM (unit tests) */
	int vm_fd;
	struct guest_memory mem;
	unsigned ncpus;
	struct vcpu *vcpu[VM_MAX_VCPUS];
	enum io_mode io_mode;
	struct iothread *iothread;
	struct timer_service *timers;
	struct vm_buses bus;
	struct vm_exit_hook *exit_hooks;
	struct vm_pause pause;
	/* Told of a guest crash on the crashing vCPU's thread (QMP's event). */
	void (*crash_hook)(const char *what);
	pthread_mutex_t named_lock;
	struct vm_named_device named[VM_MAX_NAMED_DEVICES];

	_Atomic bool exiting;     /* set once; every vCPU leaves its loop */
	int exit_status;
	pthread_mutex_t exit_lock;
	pthread_cond_t exit_cond;
};

/* Buses, timers and the I/O mode, without KVM: enough for device tests. */
int vm_init_buses(struct vm *vm, enum io_mode mode);
void vm_fini_buses(struct vm *vm);

/* Request that the VM stops with @status (first request wins). */
void vm_request_exit(struct vm *vm, int status);
/* Block until an exit was requested; returns the status. */
int vm_wait_exit(struct vm *vm);
/* Run @fn at teardown, in reverse order of registration. */
void vm_at_exit(struct vm *vm, void (*fn)(void *ctx), void *ctx);
void vm_run_exit_hooks(struct vm *vm);
