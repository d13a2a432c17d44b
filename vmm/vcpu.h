/*
 * A virtual CPU: one KVM vCPU run by one host thread.
 *
 * Other threads never touch a vCPU's KVM state.  They post events into its
 * pending-event word and kick it (vcpu_post); the vCPU thread consumes the
 * events before each entry.  The interrupt controller of the vCPU (its
 * LAPIC) plugs in through struct vcpu_irq_ops, called on the vCPU thread.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>
#include "bus/bus.h"
#include "vmm/runstate.h"

struct vm;

/* Bits of the pending-event word; the upper 16 bits are a version. */
enum {
	VCPU_EV_IRQ = 1u << 0,   /* the interrupt controller has something new */
	VCPU_EV_NMI = 1u << 1,
	VCPU_EV_INIT = 1u << 2,
	VCPU_EV_SIPI = 1u << 3,  /* vector in vcpu->sipi_vector */
	VCPU_EV_EXIT = 1u << 4,  /* the VM is shutting down */
	VCPU_EV_STOP = 1u << 5,  /* pause requested */
	VCPU_EV_MASK = 0xffffu,
	VCPU_EV_VERSION = 1u << 16,
};

/* Where a vCPU thread is: used by kickers and for accounting. */
enum vcpu_mode { VCPU_OUTSIDE_GUEST, VCPU_IN_GUEST, VCPU_EXITING };

/* The state machine of the vCPU loop. */
enum vcpu_state {
	VCPU_PARKED,       /* AP waiting for INIT-SIPI */
	VCPU_HALTED,       /* HLT: waiting for an interrupt */
	VCPU_RUNNING,      /* about to enter, or inside KVM_RUN */
	VCPU_SERVICE,      /* handling an exit */
	VCPU_COMPLETING,   /* must re-enter once to finish an I/O instruction */
	VCPU_STOPPED,      /* left the loop */
};

/*
 * The interrupt controller of a vCPU.  All three are called on the vCPU
 * thread only.
 */
struct vcpu_irq_ops {
	/*
	 * Fold posted interrupts in and say whether one is ready for delivery
	 * now: an opaque token >= 0, or -1.  Called before every entry and
	 * after every exit (the interrupt-window exit comes late here).
	 */
	int (*pending)(void *ctx);
	/*
	 * The vCPU is about to inject the interrupt @token stands for (the
	 * guest has IF set and KVM is ready): commit it (IRR -> ISR, or INTA
	 * at the 8259 for ExtINT) and return the vector, or -1 if it vanished.
	 */
	int (*acknowledge)(void *ctx, int token);
	/* INIT: reset to the power-on state (may be NULL). */
	void (*reset)(void *ctx);
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	_Atomic pid_t tid;
	int host_cpu;                 /* pinned core, -1 if not pinned */
	uint32_t tsc_khz;             /* cached KVM_GET_TSC_KHZ */
	bool nmi_in_flight;           /* KVM_NMI issued, maybe not delivered yet */
	bool init_seen;               /* INIT came, SIPI not yet (vCPU thread, or paused) */
	_Atomic bool started;         /* read by pause and dump threads */
	uint64_t frozen_tsc;          /* the guest TSC while the VM is paused (vmm/pause.c) */
	bool tsc_frozen;              /* @frozen_tsc is set: resume applies it */

	_Atomic int mode;             /* enum vcpu_mode */
	_Atomic uint32_t events;      /* VCPU_EV_* plus version */
	_Atomic uint32_t sipi_vector;
	_Atomic int state;            /* enum vcpu_state */

	struct bus *bus;              /* struct msg_cpu: MSRs this vCPU traps */
	const struct vcpu_irq_ops *irq;
	void *irq_ctx;

	/* Statistics, written by the vCPU thread only. */
	uint64_t exits;
	struct vcpu_runstate runstate;
	uint64_t runstate_since;      /* when the current accounting interval began */
};

struct vcpu *vcpu_create(struct vm *vm, unsigned id);
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu, int host_cpu);
void vcpu_join(struct vcpu *vcpu);

/* Any thread: add events and kick the vCPU out of the guest or a halt. */
void vcpu_post(struct vcpu *vcpu, uint32_t events);
/* Any thread: deliver a Startup IPI with @vector. */
void vcpu_post_sipi(struct vcpu *vcpu, uint8_t vector);
/* The vCPU of the calling thread, or NULL. */
struct vcpu *vcpu_current(void);

void vcpu_set_irq_ops(struct vcpu *vcpu, const struct vcpu_irq_ops *ops, void *ctx);

/*
 * The guest TSC.  KVM vCPU ioctls: call on the vCPU's own thread, or while
 * the VM is paused.  0 or -errno.
 */
int vcpu_tsc_khz(struct vcpu *vcpu, uint32_t *khz);
int vcpu_guest_tsc(struct vcpu *vcpu, uint64_t *tsc, uint32_t *khz);
/* KVM_VCPU_TSC_OFFSET: guest TSC = scaled host TSC + offset. */
int vcpu_tsc_offset(struct vcpu *vcpu, uint64_t *offset);
/* Move the guest TSC by @delta ticks (KVM_VCPU_TSC_OFFSET: IA32_TSC writes are ignored here). */
int vcpu_tsc_offset_add(struct vcpu *vcpu, int64_t delta);
